"""Answer: a grounded, cited answer streamed from the chat model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable

from chatbot.domain import RetrievedChunk
from chatbot.prompt_loader import Prompt

LANGUAGE_NAMES = {
    "en": "English",
    "zh": "Simplified Chinese (简体中文)",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "ja": "Japanese",
}
DEFAULT_STYLE = "Keep the answer short: one to three sentences."


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, "the language of the question")


def format_sources(chunks: Sequence[RetrievedChunk], max_chars: int = 1200) -> str:
    """Numbered sources, each with its title, as the model sees them."""
    blocks = []
    for i, c in enumerate(chunks, 1):
        text = c.text if len(c.text) <= max_chars else c.text[:max_chars] + " …"
        blocks.append(f"[{i}] {c.title}\n{text}")
    return "\n\n".join(blocks)


def build_answer(llm: BaseChatModel, prompt: Prompt) -> Runnable[dict[str, Any], str]:
    """Input: the prompt variables (language_name, style, sources, question); streams text."""
    return (prompt.template | llm | StrOutputParser()).with_config(run_name="answer")
