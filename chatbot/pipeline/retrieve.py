"""Retrieve: the Retriever port as a pipeline stage."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from chatbot.domain import Understanding
from chatbot.ports import RetrievalQuery, RetrievalResult, Retriever


def build_retrieve(retriever: Retriever) -> Runnable[dict[str, Any], RetrievalResult]:
    """Input: {"understanding", "acls", "top_k", "personal"?}."""

    def run(inputs: dict[str, Any]) -> RetrievalResult:
        understanding: Understanding = inputs["understanding"]
        query = RetrievalQuery(
            text=understanding.standalone_question,
            acls=tuple(inputs["acls"]),
            top_k=inputs["top_k"],
            language=understanding.language,
            personal=inputs.get("personal"),
        )
        return retriever.retrieve(query)

    return RunnableLambda(run, name="retrieve")
