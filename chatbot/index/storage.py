"""The one module that knows how the store is laid out (shared by ingestion and retrieval).

``<index_dir>/lancedb/`` holds chunk vectors, written and read through LlamaIndex's
``LanceDBVectorStore``; ``<index_dir>/catalog.db`` holds documents, chunk texts and the BM25
keyword index. Write order makes a crash harmless: new vectors first, then the catalog commit
(the acknowledgement), then removal of replaced vectors. Vectors without a catalog row are
ignored by searches and removed by :meth:`ChunkStore.reconcile`.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

from chatbot import domain
from chatbot.index.catalog import Catalog, ChunkRecord, DocumentRecord
from chatbot.index.lance import FixedLanceDBVectorStore, sql_quote
from chatbot.settings import StoreSettings

log = logging.getLogger(__name__)


@dataclass
class PreparedDocument:
    """A parsed, chunked and embedded document ready to be written."""

    record: DocumentRecord
    chunks: list[ChunkRecord]
    embeddings: list[list[float]]


@dataclass(frozen=True)
class VectorHit:
    chunk_id: str
    similarity: float
    embedding: tuple[float, ...]


class ChunkStore:
    """Vectors through LlamaIndex plus the keyword catalog, kept consistent."""

    def __init__(self, index_dir: Path, settings: StoreSettings) -> None:
        self.index_dir = index_dir
        self.settings = settings
        index_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(index_dir / "catalog.db")
        self.vectors = FixedLanceDBVectorStore(  # type: ignore[call-arg]
            uri=str(index_dir / "lancedb"),
            table_name=settings.table,
            nprobes=settings.nprobes,
            refine_factor=settings.refine_factor,
            mode="create",
        )
        self._write_lock = threading.Lock()

    # -- writing -----------------------------------------------------------------------------

    def write(self, docs: Sequence[PreparedDocument]) -> None:
        """Add documents (replacing earlier versions) as one acknowledged batch."""
        if not docs:
            return
        with self._write_lock:
            nodes: list[BaseNode] = [
                _node(doc.record, chunk, emb)
                for doc in docs
                for chunk, emb in zip(doc.chunks, doc.embeddings, strict=True)
            ]
            if nodes:
                self.vectors.add(nodes)
            replaced = self.catalog.replace_documents([(d.record, d.chunks) for d in docs])
            new_ids = {c.chunk_id for d in docs for c in d.chunks}
            stale = [cid for cid in replaced if cid not in new_ids]
            self.vectors.delete_nodes(stale)

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Remove documents from the catalog and their vectors; returns chunks removed."""
        with self._write_lock:
            removed = self.catalog.delete_documents(doc_ids)
            for doc_id in doc_ids:
                self.vectors.delete(doc_id)
            return len(removed)

    def reconcile(self) -> int:
        """Delete vectors that no committed document owns (left by an interrupted write)."""
        with self._write_lock:
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
        table = self._table()
        if table is None:
            return
        with self._write_lock:
            rows = table.count_rows()
            if rows >= self.settings.ann_min_rows and not self._has_vector_index(table):
                partitions = max(16, min(1024, int(rows**0.5)))
                table.create_index(
                    metric="cosine",
                    vector_column_name="vector",
                    index_type="IVF_HNSW_SQ",
                    num_partitions=partitions,
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                table.optimize(cleanup_older_than=timedelta(0 if purge else 60))

    # -- reading -----------------------------------------------------------------------------

    def vector_search(
        self, embedding: Sequence[float], acls: Sequence[str], top_k: int
    ) -> list[VectorHit]:
        """Nearest chunks among those the ACLs may read, filtered inside the vector query."""
        if not acls or top_k <= 0:
            return []
        filters = MetadataFilters(
            filters=[MetadataFilter(key=domain.ACL, value=list(acls), operator=FilterOperator.IN)]
        )
        query = VectorStoreQuery(
            query_embedding=list(embedding), similarity_top_k=top_k, filters=filters
        )
        result = self.vectors.query(query)
        hits = []
        for node in result.nodes or []:
            emb = node.embedding or []
            sim = float(sum(a * b for a, b in zip(emb, embedding, strict=False)))
            hits.append(VectorHit(node.node_id, sim, tuple(emb)))
        return hits

    def keyword_search(
        self, terms: Sequence[str], acls: Sequence[str], top_k: int
    ) -> list[tuple[str, float]]:
        return self.catalog.keyword_search(terms, acls, top_k)

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, ChunkRecord]:
        return self.catalog.chunks(chunk_ids)

    def document(self, doc_id: str) -> DocumentRecord | None:
        return self.catalog.document(doc_id)

    def documents(self, *, acl: str | None = None) -> list[DocumentRecord]:
        return self.catalog.documents(acl=acl)

    def vector_count(self) -> int:
        table = self._table()
        return int(table.count_rows()) if table is not None else 0

    def vector_ids(self) -> set[str]:
        table = self._table()
        if table is None:
            return set()
        column = table.to_lance().to_table(columns=["id"]).column("id")
        return set(column.to_pylist())

    def vector_count_for(self, doc_id: str) -> int:
        table = self._table()
        if table is None:
            return 0
        return int(table.count_rows(f"{self.vectors.doc_id_key} = {sql_quote(doc_id)}"))

    def stats(self) -> dict[str, Any]:
        return {**self.catalog.stats(), "vectors": self.vector_count()}

    def close(self) -> None:
        self.catalog.close()

    def _table(self) -> Any:
        try:
            return self.vectors.table
        except Exception:  # table not created yet
            return None

    @staticmethod
    def _has_vector_index(table: Any) -> bool:
        return any("vector" in (idx.columns or []) for idx in table.list_indices())


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
