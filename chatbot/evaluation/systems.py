"""What every evaluated system returns, and the shared pieces they are built from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from chatbot.evaluation.datasets import Dataset, QAItem
from chatbot.evaluation.metrics import Passage
from chatbot.settings import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from rich.console import Console

    from chatbot.evaluation.cache import IndexCache


@dataclass
class RetrievalOutput:
    passages: list[Passage]
    latency_ms: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnswerOutput:
    text: str
    refused: bool
    context: list[Passage]
    cited: list[Passage] | None  # None: the system does not cite at all
    latency_ms: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)


class System(Protocol):
    name: str

    def prepare(self) -> dict[str, Any]:
        """Index the documents (or open a cached index); returns facts for the report."""
        ...

    def retrieve(self, item: QAItem, k: int) -> RetrievalOutput: ...

    def answer(self, item: QAItem) -> AnswerOutput: ...

    def close(self) -> None: ...


@dataclass
class Shared:
    """Models and helpers shared by every system of one run (each loaded once)."""

    settings: Settings
    dataset: Dataset
    cache: IndexCache
    console: Console

    @cached_property
    def embed_model(self) -> BaseEmbedding:
        from chatbot.providers import make_embed_model

        return make_embed_model(self.settings.embedding)

    @cached_property
    def chat_model(self) -> BaseChatModel:
        """The one LLM every system answers with (weights from the main models folder)."""
        from chatbot.providers import make_chat_model

        return make_chat_model(self.settings.llm, self.settings.models_dir)

    @cached_property
    def mapper(self) -> PassageMapper:
        return PassageMapper(self.dataset)


class PassageMapper:
    """Turns a chunk (its file, text and offsets) into a :class:`Passage` for the metrics.

    Offsets are kept only where they index the raw file exactly (``raw[start:end] == text``);
    readers that transform the text (HTML, JSON, Markdown links) shift them.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._raw: dict[str, str] = {}

    def __call__(
        self, source: str | Path, text: str, start: int | None, end: int | None
    ) -> Passage:
        rel = self.dataset.relpath(source)
        if start is not None and end is not None and self._raw_text(rel)[start:end] != text:
            start = end = None
        return Passage(file=rel, text=text, start=start, end=end)

    def _raw_text(self, rel: str) -> str:
        if rel not in self._raw:
            path = self.dataset.docs_dir / rel
            try:
                self._raw[rel] = path.read_bytes().decode("utf-8", errors="replace")
            except OSError:
                self._raw[rel] = ""
        return self._raw[rel]


def timed_stream(pieces: Callable[[], Any], latency: dict[str, float], started: float) -> str:
    """Join a stream of text pieces, recording first-token and total answer time in ms."""
    import time

    parts: list[str] = []
    for piece in pieces():
        text = piece if isinstance(piece, str) else str(getattr(piece, "content", "") or "")
        if not text:
            continue
        if not parts:
            latency["first_token_ms"] = round((time.perf_counter() - started) * 1000, 1)
        parts.append(text)
    latency["answer_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return "".join(parts).strip()
