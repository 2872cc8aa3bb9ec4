"""The one module that knows how the store is laid out (shared by ingestion and retrieval).

``<index_dir>/lancedb/`` holds chunk vectors, written and read through LlamaIndex's
``LanceDBVectorStore`` (or a Milvus collection through ``MilvusVectorStore``, ``store.backend``);
``<index_dir>/catalog.db`` holds documents, chunk texts and the BM25 keyword index (or
PostgreSQL tables, ``store.catalog_url``; see ``catalog_api``). Write order makes a crash harmless: new vectors first, then the catalog commit
(the acknowledgement), then removal of replaced vectors. Vectors without a catalog row are
ignored by searches and removed by :meth:`ChunkStore.reconcile`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo, TextNode

from chatbot import domain
from chatbot.index.catalog import ChunkRecord, DocumentRecord
from chatbot.index.catalog_api import open_catalog
from chatbot.index.vectors import VectorHit, has_vector_index, open_vectors
from chatbot.settings import StoreSettings

__all__ = ["ChunkStore", "PreparedDocument", "VectorHit"]

log = logging.getLogger(__name__)


@dataclass
class PreparedDocument:
    """A parsed, chunked and embedded document ready to be written."""

    record: DocumentRecord
    chunks: list[ChunkRecord]
    embeddings: list[list[float]]


class ChunkStore:
    """Vectors through LlamaIndex plus the keyword catalog, kept consistent."""

    def __init__(self, index_dir: Path, settings: StoreSettings) -> None:
        self.index_dir = index_dir
        self.settings = settings
        index_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = open_catalog(settings.catalog_url, index_dir)
        self.vectors, self._ops = open_vectors(index_dir, settings)
        self._local_lock = threading.Lock()

    @contextmanager
    def _write_lock_all(self) -> Iterator[None]:
        """This process's lock, then the catalog's lock shared by every process."""
        with self._local_lock, self.catalog.write_lock():
            yield

    @contextmanager
    def write_locked(self) -> Iterator[None]:
        """Hold the store's write lock: no writer in any process commits meanwhile (backups)."""
        with self._write_lock_all():
            yield

    # -- writing -----------------------------------------------------------------------------

    def write(self, docs: Sequence[PreparedDocument]) -> None:
        """Add documents (replacing earlier versions) as one acknowledged batch."""
        if not docs:
            return
        with self._write_lock_all():
            nodes: list[BaseNode] = [
                _node(doc.record, chunk, emb)
                for doc in docs
                for chunk, emb in zip(doc.chunks, doc.embeddings, strict=True)
            ]
            existing = set(self.catalog.chunks([n.node_id for n in nodes]))
            self._ops.add(nodes, existing)
            replaced = self.catalog.replace_documents([(d.record, d.chunks) for d in docs])
            new_ids = {c.chunk_id for d in docs for c in d.chunks}
            stale = [cid for cid in replaced if cid not in new_ids]
            self.vectors.delete_nodes(stale)

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Remove documents from the catalog and their vectors; returns chunks removed."""
        with self._write_lock_all():
            removed = self.catalog.delete_documents(doc_ids)
            for doc_id in doc_ids:
                self.vectors.delete(doc_id)
            return len(removed)

    def reconcile(self) -> int:
        """Delete vectors that no committed document owns (left by an interrupted write)."""
        with self._write_lock_all():
            vector_ids = self.vector_ids()
            orphans = sorted(vector_ids - self.catalog.all_chunk_ids())
            self.vectors.delete_nodes(orphans)
            if orphans:
                log.info("removed %d orphan vectors left by an interrupted ingestion", len(orphans))
            return len(orphans)

    def optimize(self, *, purge: bool = False) -> None:
        """Compact the vector table and index new rows.

        Old table versions (which still hold deleted rows) are dropped after a minute, so that
        concurrent readers of the previous version finish; ``purge`` drops them at once, for
        deletions that must leave nothing behind.
        """
        if purge:
            self.catalog.purge()
        with self._write_lock_all():
            self._ops.optimize(purge=purge)

    # -- reading -----------------------------------------------------------------------------

    def vector_search(
        self, embedding: Sequence[float], acls: Sequence[str], top_k: int
    ) -> list[VectorHit]:
        """Nearest chunks among those the ACLs may read, filtered inside the vector query."""
        if not acls or top_k <= 0:
            return []
        return self._ops.search(embedding, acls, top_k)

    def keyword_search(
        self, terms: Sequence[str], acls: Sequence[str], top_k: int
    ) -> list[tuple[str, float]]:
        return self.catalog.keyword_search(terms, acls, top_k)

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, ChunkRecord]:
        return self.catalog.chunks(chunk_ids)

    def document(self, doc_id: str) -> DocumentRecord | None:
        return self.catalog.document(doc_id)

    def documents_by_id(self, doc_ids: Iterable[str]) -> dict[str, DocumentRecord]:
        """Many documents in one round-trip (per batch) instead of one query each."""
        return self.catalog.documents_by_id(doc_ids)

    def documents(self, *, acl: str | None = None) -> list[DocumentRecord]:
        return self.catalog.documents(acl=acl)

    def documents_for(self, acls: Sequence[str]) -> list[DocumentRecord]:
        return self.catalog.documents_for(acls)

    def vector_count(self) -> int:
        return self._ops.count()

    def vector_ids(self) -> set[str]:
        return self._ops.ids()

    def vector_count_for(self, doc_id: str) -> int:
        return self._ops.count_for(doc_id)

    def stats(self) -> dict[str, Any]:
        return {**self.catalog.stats(), "vectors": self.vector_count()}

    def close(self) -> None:
        self.catalog.close()

    @staticmethod
    def _has_vector_index(table: Any) -> bool:
        return has_vector_index(table)


def _node(doc: DocumentRecord, chunk: ChunkRecord, embedding: list[float]) -> TextNode:
    node = TextNode(
        id_=chunk.chunk_id,
        text=chunk.text,
        embedding=embedding,
        metadata={
            domain.DOC_ID: doc.doc_id,
            domain.ACL: doc.acl,
            domain.SOURCE: doc.source,
            domain.LANGUAGE: doc.language,
            domain.CHUNK_INDEX: chunk.chunk_index,
        },
    )
    node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc.doc_id)
    return node
