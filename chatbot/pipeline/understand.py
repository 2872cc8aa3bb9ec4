"""Understand: language, intent, and a standalone question for follow-ups."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnableLambda

from chatbot.domain import HistoryTurn, Understanding
from chatbot.pipeline.overview import is_overview_question
from chatbot.prompt_loader import Prompt
from chatbot.text import detect_language

_GREETING = re.compile(
    r"^\s*(hi|hello|hey|good (morning|afternoon|evening)|thanks?( you)?|thank you|bye|"
    r"你好|您好|谢谢|再见|早上好|晚上好)[\s!.,。！，]*$",
    re.I,
)
_FOLLOW_UP = re.compile(
    r"\b(it|its|that|this|those|these|they|them|he|she|one|ones|there|what about|how about|and)\b"
    r"|它|这个|那个|这些|那些|他们|她|他|呢",
    re.I,
)


def classify(message: str) -> str:
    """Question / chitchat / overview (a question about the collection itself).

    Out of scope is decided by retrieval finding nothing relevant.
    """
    if _GREETING.match(message):
        return "chitchat"
    return "overview" if is_overview_question(message) else "question"


def needs_rewrite(message: str, history: list[HistoryTurn]) -> bool:
    """Only follow-ups that lean on the conversation go through the (slow) LLM rewrite."""
    return (
        bool(history)
        and (len(message.split()) <= 12 or len(message) <= 30)
        and bool(_FOLLOW_UP.search(message) or len(message.split()) <= 4)
    )


def format_history(history: list[HistoryTurn], max_chars: int = 1500) -> str:
    lines = [f"{t.role}: {t.content.strip()}" for t in history]
    text = "\n".join(lines)
    return text[-max_chars:]


def build_understand(llm: BaseChatModel, prompt: Prompt) -> Runnable[dict[str, Any], Understanding]:
    """Input: {"message": str, "history": list[HistoryTurn], "language": str | None}."""
    rewrite = prompt.template | llm | StrOutputParser()

    def run(inputs: dict[str, Any]) -> Understanding:
        message: str = inputs["message"].strip()
        history: list[HistoryTurn] = inputs.get("history") or []
        language = (
            detect_language(message)
            if len(message) >= 12
            else inputs.get("language") or detect_language(message)
        )
        if language == "und":
            language = inputs.get("language") or "en"
        intent = classify(message)
        if intent == "question" and needs_rewrite(message, history):
            standalone = rewrite.invoke({"history": format_history(history), "message": message})
            standalone = (
                standalone.strip().splitlines()[0].strip() if standalone.strip() else message
            )
            return Understanding(standalone, language, "question", rewritten=standalone != message)
        return Understanding(message, language, intent)  # type: ignore[arg-type]

    return RunnableLambda(run, name="understand")
