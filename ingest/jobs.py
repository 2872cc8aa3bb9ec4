"""The ingestion job: files → parsed text → chunks + keywords → embeddings → the store.

Incremental and idempotent: a document's id comes from its owner and path, and the hash of
its bytes and of how they are indexed (``IngestJob.recipe``) decides whether anything needs
doing, so a change of chunk size, embedding model or ``INDEX_FORMAT`` re-indexes each document
once on the next run. Documents are written in batches; each batch is
acknowledged by one catalog commit, so a crash loses at most the batch in flight.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Protocol

from chatbot import domain
from chatbot.index.catalog import ChunkRecord, DocumentRecord
from chatbot.index.storage import ChunkStore, PreparedDocument
from chatbot.settings import IngestSettings
from chatbot.text import detect_language, tokenize
from ingest.chunking import chunk_text
from ingest.readers import SUPPORTED, SkipFile, read_file
from ingest.understanding import chunk_keywords, document_topics

IGNORE_FILE = ".ingestignore"
# Bump when a change to reading, chunking, keywords or search terms changes what a document's
# index holds (2: possessives are indexed as the plain word), so existing stores catch up.
INDEX_FORMAT = 2


class Embedder(Protocol):
    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kw: Any
    ) -> list[list[float]]: ...
    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


@dataclass
class IngestReport:
    files: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    pruned: int = 0
    chunks: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    orphans_removed: int = 0

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0


class Progress(Protocol):
    def start(self, total_files: int) -> None: ...
    def advance(self, path: Path, chunks: int) -> None: ...


class _NoProgress:
    def start(self, total_files: int) -> None:
        pass

    def advance(self, path: Path, chunks: int) -> None:
        pass


def document_id(acl: str, path: Path) -> str:
    """Stable id from the owner and the absolute path of the file."""
    return hashlib.sha256(f"{acl}\n{path.resolve()}".encode()).hexdigest()[:32]


def discover(
    paths: Iterable[Path], exclude: Sequence[Path] = ()
) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """(file, root) pairs to ingest and (path, reason) pairs skipped before reading."""
    excluded = [e.resolve() for e in exclude]
    found: list[tuple[Path, Path]] = []
    skipped: list[tuple[str, str]] = []
    for root in paths:
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root):
                ignored = _ignore_patterns(Path(dirpath))
                dirnames[:] = sorted(
                    d
                    for d in dirnames
                    if not d.startswith(".") and (Path(dirpath) / d).resolve() not in excluded
                )
                for name in sorted(filenames):
                    file = Path(dirpath) / name
                    if name.startswith(".") or any(fnmatch(name, p) for p in ignored):
                        continue
                    if file.suffix.lower() in SUPPORTED:
                        found.append((file, root))
                    else:
                        skipped.append(
                            (str(file), f"unsupported file type {file.suffix or '(none)'}")
                        )
        elif root.is_file():
            found.append((root, root.parent))
        else:
            skipped.append((str(root), "no such file or directory"))
    return found, skipped


def _ignore_patterns(folder: Path) -> list[str]:
    """File-name patterns listed in the folder's ``.ingestignore`` (one per line, # comments)."""
    try:
        lines = (folder / IGNORE_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@dataclass
class IngestJob:
    store: ChunkStore
    embedder: Embedder
    settings: IngestSettings
    progress: Progress = field(default_factory=_NoProgress)
    on_batch: Callable[[list[str]], None] | None = None  # called with acknowledged sources

    @property
    def recipe(self) -> bytes:
        """How this job indexes a file; part of each document's hash (see the module doc)."""
        s = self.settings
        model = Path(str(getattr(self.embedder, "model_name", type(self.embedder).__name__)))
        return (
            f"format={INDEX_FORMAT};chunk={s.chunk_tokens}/{s.chunk_overlap_tokens};"
            f"keywords={s.keywords_per_chunk};embedding={model.name}\n"
        ).encode()

    def run(
        self,
        paths: Sequence[Path],
        *,
        user: str | None = None,
        group: str | None = None,
        prune: bool = False,
    ) -> IngestReport:
        started = time.perf_counter()
        acl = domain.acl_for(user=user, group=group)
        report = IngestReport()
        report.orphans_removed = self.store.reconcile()
        files, report.skipped = discover(paths, exclude=[self.store.index_dir])
        report.files = len(files)
        self.progress.start(len(files))
        pending: list[PreparedDocument] = []
        pending_chunks = 0
        for path, root in files:
            prepared = self._prepare(path, root, acl, report)
            self.progress.advance(path, len(prepared.chunks) if prepared else 0)
            if prepared is None:
                continue
            pending.append(prepared)
            pending_chunks += len(prepared.chunks)
            if pending_chunks >= self.settings.batch_chunks:
                self._flush(pending, report)
                pending, pending_chunks = [], 0
        self._flush(pending, report)
        if prune:
            report.pruned = self._prune(paths, acl)
        if report.added or report.updated or report.pruned:
            self.store.optimize()
        report.seconds = time.perf_counter() - started
        return report

    def _prepare(
        self, path: Path, root: Path, acl: str, report: IngestReport
    ) -> PreparedDocument | None:
        doc_id = document_id(acl, path)
        try:
            size = path.stat().st_size
            if size > self.settings.max_file_mb * 1e6:
                report.skipped.append(
                    (
                        str(path),
                        f"too large: {size / 1e6:.1f} MB > {self.settings.max_file_mb:g} MB limit",
                    )
                )
                return None
            raw = path.read_bytes()
        except OSError as exc:
            report.failed.append((str(path), f"unreadable: {exc.strerror or exc}"))
            return None
        content_hash = hashlib.sha256(self.recipe + raw).hexdigest()
        existing = self.store.document(doc_id)
        if existing is not None and existing.content_hash == content_hash:
            report.unchanged += 1
            return None
        try:
            parsed = read_file(path, max_bytes=int(self.settings.max_file_mb * 1e6))
            prepared = self._understand(
                path, root, acl, doc_id, content_hash, len(raw), parsed.text, parsed.title
            )
        except SkipFile as exc:
            report.skipped.append((str(path), str(exc)))
            return None
        except Exception as exc:  # a parser bug must not stop the batch
            report.failed.append((str(path), f"{type(exc).__name__}: {exc}"))
            return None
        if existing is None:
            report.added += 1
        else:
            report.updated += 1
        return prepared

    def _understand(
        self,
        path: Path,
        root: Path,
        acl: str,
        doc_id: str,
        content_hash: str,
        size: int,
        text: str,
        title: str,
    ) -> PreparedDocument:
        language = detect_language(text)
        pieces = chunk_text(
            text,
            max_tokens=self.settings.chunk_tokens,
            overlap_tokens=self.settings.chunk_overlap_tokens,
            count=self.embedder.count_tokens,
        )
        if not pieces:
            raise SkipFile("no text content")
        keywords = chunk_keywords([p.text for p in pieces], self.settings.keywords_per_chunk)
        rel = (
            path.resolve().relative_to(root.resolve())
            if path.resolve().is_relative_to(root.resolve())
            else Path(path.name)
        )
        category = rel.parts[0] if len(rel.parts) > 1 else ""
        record = DocumentRecord(
            doc_id=doc_id,
            source=str(path.resolve()),
            title=title,
            acl=acl,
            language=language,
            category=category,
            topics=tuple(document_topics(keywords, title)),
            content_hash=content_hash,
            n_chunks=len(pieces),
            size_bytes=size,
            ingested_at=time.time(),
        )
        chunks = [
            ChunkRecord(
                chunk_id=f"{doc_id}-{content_hash[:8]}-{i:05d}",
                doc_id=doc_id,
                acl=acl,
                chunk_index=i,
                text=p.text,
                keywords=tuple(kw),
                start_char=p.start,
                end_char=p.end,
                terms=tuple(tokenize(f"{title}\n{p.text}" if i == 0 else p.text)),
            )
            for i, (p, kw) in enumerate(zip(pieces, keywords, strict=True))
        ]
        return PreparedDocument(record=record, chunks=chunks, embeddings=[])

    def _flush(self, docs: list[PreparedDocument], report: IngestReport) -> None:
        if not docs:
            return
        texts = [embed_text(d.record, c) for d in docs for c in d.chunks]
        vectors = self.embedder.get_text_embedding_batch(texts)
        it: Iterator[list[float]] = iter(vectors)
        for doc in docs:
            doc.embeddings = [next(it) for _ in doc.chunks]
        self.store.write(docs)
        report.chunks += len(texts)
        if self.on_batch is not None:
            self.on_batch([d.record.source for d in docs])

    def _prune(self, paths: Sequence[Path], acl: str) -> int:
        roots = [p.resolve() for p in paths]
        gone = [
            d.doc_id
            for d in self.store.documents(acl=acl)
            if any(Path(d.source).is_relative_to(r) for r in roots) and not Path(d.source).exists()
        ]
        if gone:
            self.store.delete_documents(gone)
        return len(gone)


def embed_text(doc: DocumentRecord, chunk: ChunkRecord) -> str:
    """The text that gets embedded: the document title gives every chunk its context."""
    if doc.title and not chunk.text.startswith(doc.title):
        return f"{doc.title}\n{chunk.text}"
    return chunk.text
