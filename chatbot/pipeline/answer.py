"""Answer: a grounded, cited answer streamed from the chat model."""

from __future__ import annotations

import re
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


# Invisible characters that only hide payloads: Unicode tags, zero-width space, word joiner and
# invisible operators, BOM, and bidirectional overrides (ZWJ/ZWNJ stay: scripts need them).
INVISIBLE = re.compile("[\U000e0000-\U000e007f\u200b\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069]")
_PROMPT_STRUCTURE = re.compile(
    r"^([ \t]*)(\[\d{1,3}\]|(?:question|sources?|last message|standalone question|conversation)"
    r"[ \t]*[:：]|问题[ \t]*[:：])",
    re.I | re.M,
)


def as_data(text: str) -> str:
    """Untrusted source text made unable to forge the prompt's structure.

    Invisible payload characters are removed, and lines that look like the prompt's own
    delimiters (a source header ``[n]``, ``Question:``, ``Sources:``) are quoted with ``> ``,
    so the only such lines the model sees are the template's (security guide B1).
    """
    return _PROMPT_STRUCTURE.sub(r"\1> \2", INVISIBLE.sub("", text))


def format_sources(chunks: Sequence[RetrievedChunk], max_chars: int) -> str:
    """Numbered sources, each with its title, as the model sees them (text delimited as data).

    Each text is cut at ``max_chars`` (``chat.source_max_chars``).
    """
    blocks = []
    for i, c in enumerate(chunks, 1):
        text = c.text if len(c.text) <= max_chars else c.text[:max_chars] + " …"
        title = " ".join(as_data(c.title).split())
        blocks.append(f"[{i}] {title}\n{as_data(text)}")
    return "\n\n".join(blocks)


def build_answer(llm: BaseChatModel, prompt: Prompt) -> Runnable[dict[str, Any], str]:
    """Input: the prompt variables (language_name, style, sources, question); streams text."""
    return (prompt.template | llm | StrOutputParser()).with_config(run_name="answer")
