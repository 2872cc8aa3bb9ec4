"""The only module that knows the order of the stages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from chatbot.domain import Understanding
from chatbot.pipeline.answer import build_answer
from chatbot.pipeline.retrieve import build_retrieve
from chatbot.pipeline.understand import build_understand
from chatbot.ports import RetrievalResult, Retriever
from chatbot.prompt_loader import Prompt, load_prompt


@dataclass(frozen=True)
class Pipeline:
    """The stages as LCEL runnables; the service runs them in order and logs the turn."""

    understand: Runnable[dict[str, Any], Understanding]
    retrieve: Runnable[dict[str, Any], RetrievalResult]
    answer: Runnable[dict[str, Any], str]
    understand_prompt: Prompt
    answer_prompt: Prompt
    model_name: str


def build_pipeline(
    llm: BaseChatModel, retriever: Retriever, prompts_dir: Path, model_name: str
) -> Pipeline:
    understand_prompt = load_prompt("understand", prompts_dir)
    answer_prompt = load_prompt("answer", prompts_dir)
    return Pipeline(
        understand=build_understand(llm, understand_prompt),
        retrieve=build_retrieve(retriever),
        answer=build_answer(llm, answer_prompt),
        understand_prompt=understand_prompt,
        answer_prompt=answer_prompt,
        model_name=model_name,
    )
