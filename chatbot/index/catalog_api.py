"""The catalog interface: documents, chunk texts and the keyword (BM25-style) index.

Two implementations share it: :class:`chatbot.index.catalog.Catalog` (SQLite + FTS5, one file
under the index folder: the embedded default) and
:class:`chatbot.index.catalog_pg.PostgresCatalog` (PostgreSQL full-text search over the same
pre-tokenised terms: shared by every app process of a scaled-out deployment).
``store.catalog_url`` picks one; see :func:`open_catalog`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from chatbot.index.catalog import ChunkRecord, DocumentRecord


class CatalogBackend(Protocol):
    """What :class:`chatbot.index.storage.ChunkStore` needs from a catalog."""

    def document(self, doc_id: str) -> DocumentRecord | None: ...
    def documents_by_id(self, doc_ids: Iterable[str]) -> dict[str, DocumentRecord]: ...
    def documents(self, *, acl: str | None = None) -> list[DocumentRecord]: ...
    def documents_for(self, acls: Sequence[str]) -> list[DocumentRecord]: ...
    def chunk_ids_of(self, doc_ids: Iterable[str]) -> list[str]: ...
    def replace_documents(
        self, docs: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]
    ) -> list[str]: ...
    def delete_documents(self, doc_ids: Iterable[str]) -> list[str]: ...
    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, ChunkRecord]: ...
    def all_chunk_ids(self) -> set[str]: ...
    def keyword_search(
        self, terms: Sequence[str], acls: Sequence[str], top_k: int
    ) -> list[tuple[str, float]]: ...
    def stats(self) -> dict[str, int]: ...
    def purge(self) -> None: ...
    def write_lock(self) -> AbstractContextManager[None]:
        """Serialise writers across processes (vector writes + catalog commit + reconcile)."""
        ...

    def close(self) -> None: ...


def is_postgres_url(url: str | None) -> bool:
    """Whether ``url`` names a PostgreSQL database (any SQLAlchemy driver)."""
    return bool(url) and str(url).split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def open_catalog(url: str | None, index_dir: Path) -> CatalogBackend:
    """The catalog named by ``url``: PostgreSQL, a SQLite file, or ``<index_dir>/catalog.db``.

    Raises:
        ValueError: ``url`` is neither PostgreSQL nor SQLite.
    """
    if is_postgres_url(url):
        from chatbot.index.catalog_pg import PostgresCatalog

        return PostgresCatalog(str(url))
    from chatbot.index.catalog import Catalog

    if not url:
        return Catalog(index_dir / "catalog.db")
    if url.startswith("sqlite:///"):
        return Catalog(Path(url.removeprefix("sqlite:///")))
    raise ValueError(
        f"store.catalog_url {url!r} is not supported: use postgresql+psycopg://USER@HOST/DB "
        "or sqlite:///PATH (or leave it empty for <data_dir>/index/catalog.db)"
    )
