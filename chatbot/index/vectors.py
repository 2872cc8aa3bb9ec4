"""Vector backends behind :class:`chatbot.index.storage.ChunkStore`.

Both keep their vectors in a LlamaIndex vector store (``ChunkStore.vectors``): LanceDB files
under the index folder (embedded default) or a Milvus server (scale-out). What the LlamaIndex
interface does not cover (counting, listing ids, index maintenance, the search call with our
ACL filter) lives in a small ``VectorOps`` object per backend, so the store facade stays the
same for ingestion and retrieval.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

from chatbot import domain
from chatbot.index.lance import FixedLanceDBVectorStore, sql_quote
from chatbot.settings import StoreSettings

ACL_COLUMN = f"metadata.{domain.ACL}"


@dataclass(frozen=True)
class VectorHit:
    chunk_id: str
    similarity: float
    embedding: tuple[float, ...]


class VectorOps(Protocol):
    """Backend-specific operations beside the LlamaIndex vector-store interface."""

    def add(self, nodes: Sequence[BaseNode], existing: set[str]) -> None:
        """Write ``nodes``; ``existing`` are ids that already have a vector (rewrite in place)."""
        ...

    def search(
        self, embedding: Sequence[float], acls: Sequence[str], top_k: int
    ) -> list[VectorHit]:
        """Nearest vectors whose ACL label is one of ``acls`` (filtered inside the query)."""
        ...

    def count(self) -> int: ...
    def ids(self) -> set[str]: ...
    def count_for(self, doc_id: str) -> int: ...
    def optimize(self, *, purge: bool) -> None:
        """Make recent writes fully indexed (and, with ``purge``, deletions physical)."""
        ...


def acl_filter(acls: Sequence[str]) -> MetadataFilters:
    """The metadata filter every vector query carries: the reader's ACL labels."""
    return MetadataFilters(
        filters=[MetadataFilter(key=domain.ACL, value=list(acls), operator=FilterOperator.IN)]
    )


def open_vectors(
    index_dir: Path, settings: StoreSettings
) -> tuple[BasePydanticVectorStore, VectorOps]:
    """The LlamaIndex vector store and its operations for ``settings.backend``."""
    if settings.backend == "milvus":
        from chatbot.index.milvus import open_milvus

        return open_milvus(settings)
    store = FixedLanceDBVectorStore(  # type: ignore[call-arg]
        uri=str(index_dir / "lancedb"),
        table_name=settings.table,
        nprobes=settings.nprobes,
        refine_factor=settings.refine_factor,
        ef=settings.ef,
        mode="create",
    )
    return store, LanceOps(store, settings)


class LanceOps:
    """LanceDB: appends, so rewritten ids are deleted first; ANN index built past a size."""

    def __init__(self, store: FixedLanceDBVectorStore, settings: StoreSettings) -> None:
        self.store = store
        self.settings = settings

    def add(self, nodes: Sequence[BaseNode], existing: set[str]) -> None:
        if existing:  # LanceDB would keep both rows of an id
            self.store.delete_nodes(sorted(existing))
        if nodes:
            self.store.add(list(nodes))

    def search(
        self, embedding: Sequence[float], acls: Sequence[str], top_k: int
    ) -> list[VectorHit]:
        query = VectorStoreQuery(
            query_embedding=list(embedding), similarity_top_k=top_k, filters=acl_filter(acls)
        )
        result = self.store.query(query)
        hits = []
        for node in result.nodes or []:
            emb = node.embedding or []
            sim = float(sum(a * b for a, b in zip(emb, embedding, strict=False)))
            hits.append(VectorHit(node.node_id, sim, tuple(emb)))
        return hits

    def table(self) -> Any:
        try:
            return self.store.table
        except Exception:  # table not created yet
            return None

    def count(self) -> int:
        table = self.table()
        return int(table.count_rows()) if table is not None else 0

    def ids(self) -> set[str]:
        table = self.table()
        if table is None:
            return set()
        column = table.to_lance().to_table(columns=["id"]).column("id")
        return set(column.to_pylist())

    def count_for(self, doc_id: str) -> int:
        table = self.table()
        if table is None:
            return 0
        return int(table.count_rows(f"{self.store.doc_id_key} = {sql_quote(doc_id)}"))

    def embeddings(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """The stored vectors of ``ids`` (for copying the store to another backend)."""
        table = self.table()
        if table is None or not ids:
            return {}
        where = "id IN (" + ",".join(sql_quote(i) for i in ids) + ")"
        rows = table.to_lance().to_table(columns=["id", "vector"], filter=where).to_pylist()
        return {str(r["id"]): [float(x) for x in r["vector"]] for r in rows}

    def optimize(self, *, purge: bool) -> None:
        """Compact the table and index new rows; old versions go after a minute (or now)."""
        table = self.table()
        if table is None:
            return
        rows = table.count_rows()
        if rows >= self.settings.ann_min_rows and not has_vector_index(table):
            # IVF_HNSW: an HNSW graph inside each partition, so a few large partitions that the
            # query probes all of (nprobes) keep recall ~1.0; sqrt(N) partitions with
            # nprobes=64 gave recall@5 0.31 at 200k chunks.
            partitions = max(4, min(self.settings.nprobes, rows // 4096))
            table.create_index(
                metric="cosine",
                vector_column_name="vector",
                index_type="IVF_HNSW_SQ",
                num_partitions=partitions,
            )
        if rows >= self.settings.ann_min_rows and not has_scalar_index(table, ACL_COLUMN):
            # The ACL filter runs before the vector search (prefilter); without an index it
            # scans every row's label (~100 ms at 200k chunks), with a BTree it is a lookup.
            table.create_scalar_index(ACL_COLUMN, index_type="BTREE")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            table.optimize(cleanup_older_than=timedelta(0 if purge else 60))


def has_scalar_index(table: Any, column: str) -> bool:
    """Whether a LanceDB table has an index on ``column``."""
    return any(column in (idx.columns or []) for idx in table.list_indices())


def has_vector_index(table: Any) -> bool:
    """Whether a LanceDB table has an ANN index on its vector column."""
    return any("vector" in (idx.columns or []) for idx in table.list_indices())
