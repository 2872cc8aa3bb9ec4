"""Private documents: uploads go to ``<data_dir>/uploads/<user id>/``, ingested for that user.

They get the ACL ``user:<id>`` and go through the same ingestion job as ``chatbot ingest``. The web package may not import ``ingest`` (a layer contract), so the job comes in as an
``Ingester`` callable from the entry point (``chatbot serve``, or a test). Uploaded files are
never served back.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from chatbot.domain import PUBLIC, InvalidInputError, NotFoundError, acl_for
from chatbot.web.errors import ApiError, UnavailableError

ALLOWED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".json", ".jsonl")
DOCUMENT_NOT_FOUND = "document not found"
_COPY_CHUNK = 1 << 20


class IngestOutcome(Protocol):
    """What the ingestion job reports (``ingest.jobs.IngestReport`` fits)."""

    added: int
    updated: int
    unchanged: int
    chunks: int
    skipped: list[tuple[str, str]]
    failed: list[tuple[str, str]]


class Ingester(Protocol):
    """Runs the ingestion job over paths, as private documents of ``user`` (None = public)."""

    def __call__(self, paths: Sequence[Path], *, user: str | None) -> IngestOutcome: ...


@dataclass(frozen=True)
class DocumentInfo:
    id: str
    title: str
    filename: str
    language: str
    chunks: int
    size_bytes: int
    ingested_at: str


@dataclass(frozen=True)
class UploadResult:
    document: DocumentInfo
    status: str  # added, updated or unchanged


class UserDocuments:
    """List, add and delete a user's private documents."""

    def __init__(
        self, store: Any, uploads_dir: Path, ingester: Ingester | None, max_bytes: int
    ) -> None:
        """``store`` is the container's ChunkStore."""
        self.store = store
        self.uploads_dir = uploads_dir
        self.ingester = ingester
        self.max_bytes = max_bytes

    def list(self, user_id: str) -> list[DocumentInfo]:
        docs = self.store.documents(acl=acl_for(user=user_id))
        return sorted((_info(d) for d in docs), key=lambda d: d.filename.casefold())

    def public_count(self) -> int:
        return len(self.store.documents(acl=PUBLIC))

    def add(self, user_id: str, filename: str, data: BinaryIO) -> UploadResult:
        """Store and ingest one upload; InvalidInputError if it cannot be used."""
        if self.ingester is None:
            raise UnavailableError("document upload is not enabled on this server")
        name = safe_filename(filename)
        folder = self.uploads_dir / user_id
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / name
        self._write(data, dest)
        report = self.ingester([dest], user=user_id)
        problems = [*report.failed, *report.skipped]
        if problems:
            self._forget(user_id, dest)
            reason = problems[0][1]
            raise InvalidInputError(f"{name} could not be ingested: {reason}")
        doc = self._document_at(user_id, dest)
        if doc is None:
            raise InvalidInputError(f"{name} could not be ingested: no text found")
        status = "added" if report.added else "updated" if report.updated else "unchanged"
        return UploadResult(_info(doc), status)

    def delete(self, user_id: str, doc_id: str) -> None:
        """Delete one of the user's documents: chunks, vectors and the uploaded file.

        The store is purged too (old vector versions, the BM25 index's tombstones, the catalog's
        WAL), so the text is gone from disk, not only from queries (tests/reliability I2).
        """
        doc = self.store.document(doc_id) if len(doc_id) <= 64 else None
        if doc is None or doc.acl != acl_for(user=user_id):
            raise NotFoundError(DOCUMENT_NOT_FOUND)
        self.store.delete_documents([doc_id])
        self.store.optimize(purge=True)
        path = Path(doc.source)
        if path.is_relative_to((self.uploads_dir / user_id).resolve()):
            path.unlink(missing_ok=True)

    def _write(self, data: BinaryIO, dest: Path) -> None:
        """Copy to a temp file beside ``dest``, enforcing the size limit, then rename."""
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".upload-")
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := data.read(_COPY_CHUNK):
                    written += len(chunk)
                    if written > self.max_bytes:
                        raise ApiError(
                            413, f"the file is larger than {self.max_bytes // 1_000_000} MB"
                        )
                    out.write(chunk)
            if written == 0:
                raise InvalidInputError("the file is empty")
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _document_at(self, user_id: str, path: Path) -> Any | None:
        source = str(path.resolve())
        docs = self.store.documents(acl=acl_for(user=user_id))
        return next((d for d in docs if d.source == source), None)

    def _forget(self, user_id: str, path: Path) -> None:
        doc = self._document_at(user_id, path)
        if doc is not None:
            self.store.delete_documents([doc.doc_id])
        path.unlink(missing_ok=True)


def safe_filename(filename: str) -> str:
    """A plain file name: no folders, no control characters, an allowed extension."""
    base = unicodedata.normalize("NFC", Path(filename.replace("\\", "/")).name).strip()
    base = re.sub(r"[\x00-\x1f\x7f/:*?\"<>|]+", "_", base).lstrip(".")
    stem, suffix = os.path.splitext(base)
    if suffix.lower() not in ALLOWED_SUFFIXES:
        allowed = " ".join(ALLOWED_SUFFIXES)
        raise InvalidInputError(f"unsupported file type {suffix or '(none)'!r}; allowed: {allowed}")
    stem = stem[:120] or "document"
    return f"{stem}{suffix.lower()}"


def remove_temp_copy(path: Path) -> None:
    """Delete Gradio's temporary copy of an upload and its now-empty folder."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # only succeeds if empty


def _info(doc: Any) -> DocumentInfo:
    return DocumentInfo(
        id=doc.doc_id,
        title=doc.title or Path(doc.source).name,
        filename=Path(doc.source).name,
        language=doc.language,
        chunks=doc.n_chunks,
        size_bytes=doc.size_bytes,
        ingested_at=datetime.fromtimestamp(doc.ingested_at, UTC).isoformat(timespec="seconds"),
    )
