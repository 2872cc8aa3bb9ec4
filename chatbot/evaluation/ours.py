"""Our system as users get it: IngestJob into a store, then the retriever or the chat service."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatbot.container import Container
from chatbot.domain import DoneEvent, SourcesEvent, readable_acls
from chatbot.evaluation.datasets import QAItem
from chatbot.evaluation.metrics import Passage
from chatbot.evaluation.systems import AnswerOutput, RetrievalOutput, Shared
from chatbot.hardware import resolve_dtype
from chatbot.ports import RetrievalQuery
from chatbot.settings import DatabaseSettings, Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from chatbot.domain import RetrievedChunk

NAME = "ours"
_INGEST_KEYS = {"chunk_tokens", "chunk_overlap_tokens", "max_file_mb", "keywords_per_chunk"}
_EMBEDDING_KEYS = {"mode", "model", "dim", "dtype", "max_tokens"}
_INDEXING_CODE = ("ingest", "chatbot/text.py", "chatbot/index", "chatbot/embeddings.py")
_QUERY_TIME_ONLY = frozenset({"retriever.py"})  # never changes an index


def _code_hash() -> str:
    """sha256 of the source files that decide what an index holds."""
    import hashlib

    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for entry in _INDEXING_CODE:
        path = root / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            if file.is_file() and file.name not in _QUERY_TIME_ONLY:
                h.update(file.read_bytes())
    return h.hexdigest()[:16]


@dataclass
class EvalContainer(Container):
    """A container over a throwaway data dir that borrows the run's already-loaded models."""

    shared: Shared | None = None

    @cached_property
    def embed_model(self) -> BaseEmbedding:
        assert self.shared is not None
        return self.shared.embed_model

    @cached_property
    def chat_model(self) -> BaseChatModel:
        assert self.shared is not None
        return self.shared.chat_model


class OursSystem:
    name = NAME

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.container: EvalContainer | None = None
        self._asked = 0

    def _settings(self, data_dir: Path) -> Settings:
        db = self.shared.cache.temp_dir("eval-db-") / "chatbot.db"
        return self.shared.settings.model_copy(
            update={"data_dir": data_dir, "database": DatabaseSettings(url=f"sqlite:///{db}")}
        )

    def cache_key(self) -> dict[str, Any]:
        """What the built index depends on (query-time settings excluded).

        The documents, the settings that shape chunks and vectors, and the code that reads,
        chunks and tokenises.
        """
        s = self.shared.settings
        return {
            "docs": str(self.shared.dataset.docs_dir),
            "content": self.shared.dataset.content_hash(),
            "ingest": s.ingest.model_dump(mode="json", include=_INGEST_KEYS),
            "embedding": {
                **s.embedding.model_dump(mode="json", include=_EMBEDDING_KEYS),
                "dtype": resolve_dtype(s.embedding.dtype),  # what "auto" means on this CPU
            },
            "store": s.store.model_dump(mode="json", include={"backend", "table", "ann_min_rows"}),
            "code": _code_hash(),
        }

    def prepare(self) -> dict[str, Any]:
        from ingest.cli import RichProgress
        from ingest.jobs import IngestJob

        chunks = 0

        def build(folder: Path) -> None:
            nonlocal chunks
            container = EvalContainer(self._settings(folder), shared=self.shared)
            progress = RichProgress(self.shared.console)
            job = IngestJob(
                store=container.store,
                embedder=container.embed_model,  # type: ignore[arg-type]
                settings=container.settings.ingest,
                progress=progress,
            )
            try:
                report = job.run(list(self.shared.dataset.files))
            finally:
                progress.stop()
                container.close()
            chunks = report.chunks

        started = time.perf_counter()
        folder, cached = self.shared.cache.get(NAME, self.cache_key(), build)
        self.container = EvalContainer(self._settings(folder), shared=self.shared)
        stats = self.container.store.stats()
        return {
            "index_dir": str(folder),
            "cached": cached,
            "index_seconds": round(time.perf_counter() - started, 1),
            "chunks": stats.get("chunks", chunks),
            "documents": stats.get("documents"),
        }

    def retrieve(self, item: QAItem, k: int) -> RetrievalOutput:
        assert self.container is not None
        result = self.container.retriever.retrieve(
            RetrievalQuery(
                text=item.question, acls=tuple(readable_acls(None)), top_k=k, language=item.language
            )
        )
        gate = self.container.settings.chat.min_relevance
        refused = result.best_vector_similarity < gate and result.keyword_matches == 0
        return RetrievalOutput(
            passages=[self._passage(c) for c in result.chunks],
            latency_ms=dict(result.trace.get("latency_ms", {})),
            extra={
                "gate_refusal": refused,
                "best_vector_similarity": round(result.best_vector_similarity, 4),
            },
        )

    def answer(self, item: QAItem) -> AnswerOutput:
        assert self.container is not None
        chat = self.container.chat
        # Every question comes from a new user, as in retrieval mode: one user asking all the
        # questions would build a profile from unrelated questions, and personalisation would
        # then tilt later rankings (STICI: 3 of 40 gold documents lost from the context).
        # The personalisation lift is measured on its own (`chatbot eval --personalisation`).
        self._asked += 1
        user_id = self.container.repo.ensure_user(username=f"eval-{self._asked}").id
        context: tuple[RetrievedChunk, ...] = ()
        done: DoneEvent | None = None
        for event in chat.stream(
            user_id=user_id, message=item.question, acls=readable_acls(user_id)
        ):
            if isinstance(event, SourcesEvent):
                context = event.chunks
            elif isinstance(event, DoneEvent):
                done = event
        assert done is not None
        by_id = {c.chunk_id: c for c in context}
        trace = done.trace
        latency = dict(trace.get("latency_ms", {}))
        retrieval_latency = (trace.get("retrieval") or {}).get("latency_ms", {})
        for stage in ("embed_ms", "search_ms"):
            if stage in retrieval_latency:
                latency[f"retrieve.{stage}"] = retrieval_latency[stage]
        return AnswerOutput(
            text=done.answer,
            refused=done.refused,
            context=[self._passage(c) for c in context],
            cited=[self._passage(by_id[c.chunk_id]) for c in done.citations if c.chunk_id in by_id],
            latency_ms=latency,
            extra={"gate": trace.get("gate"), "prompts": trace.get("prompts")},
        )

    def _passage(self, chunk: RetrievedChunk) -> Passage:
        return self.shared.mapper(chunk.source, chunk.text, chunk.start_char, chunk.end_char)

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
