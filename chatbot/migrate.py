"""Move an embedded deployment (SQLite + LanceDB) to PostgreSQL + Milvus.

``chatbot migrate --to-database URL --to-milvus URI`` copies, from the store and database the
current settings name:

1. every relational row (users, conversations, messages, feedback, profiles, web sessions,
   widget sites and usage ...) into ``URL`` after ``alembic upgrade head`` there, table by
   table in foreign-key order, in one transaction;
2. every document with its chunks, keyword terms and stored vectors into a Milvus collection
   at ``URI`` and a PostgreSQL catalog (by default in the same database as ``URL``), without
   re-embedding anything.

The source is only read. The target database must not hold users yet (no merging), so a
failed run can simply be repeated after dropping the target. Uploaded files under
``data/uploads`` are not moved: put that folder on storage every app process mounts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import SQLModel

from chatbot.db.engine import init_db, make_engine
from chatbot.index.catalog import Catalog, ChunkRecord
from chatbot.index.catalog_api import is_postgres_url
from chatbot.index.storage import ChunkStore, PreparedDocument
from chatbot.index.vectors import LanceOps
from chatbot.settings import Settings, StoreSettings

_ROWS = 1000
_CHUNKS = 512


@dataclass
class MigrationReport:
    rows: dict[str, int] = field(default_factory=dict)
    documents: int = 0
    chunks: int = 0
    vectors: int = 0
    missing_vectors: list[str] = field(default_factory=list)

    def target_settings(self, database: str, milvus: str, catalog: str) -> dict[str, str]:
        """The environment that points the app at the migrated deployment."""
        return {
            "CHATBOT_DATABASE__URL": database,
            "CHATBOT_STORE__BACKEND": "milvus",
            "CHATBOT_STORE__URI": milvus,
            "CHATBOT_STORE__CATALOG_URL": catalog,
        }


def migrate(
    settings: Settings,
    *,
    to_database: str,
    to_milvus: str,
    to_catalog: str | None = None,
    collection: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> MigrationReport:
    """Copy the relational data and the store named by ``settings`` to the targets.

    Raises:
        ValueError: The source is not the embedded store, or the target already has users.
    """
    if settings.store.backend != "lancedb" or settings.store.catalog_url:
        raise ValueError("the source must be the embedded store (lancedb + SQLite catalog)")
    catalog_url = to_catalog or to_database
    if not is_postgres_url(catalog_url):
        raise ValueError("the target catalog must be PostgreSQL (--to-catalog or --to-database)")
    report = MigrationReport()
    source_engine = make_engine(settings.database_url)
    target_engine = make_engine(to_database)
    try:
        init_db(source_engine)
        init_db(target_engine)
        report.rows = copy_rows(source_engine, target_engine, progress)
    finally:
        source_engine.dispose()
        target_engine.dispose()
    target_store = settings.store.model_copy(
        update={
            "backend": "milvus",
            "uri": to_milvus,
            "catalog_url": catalog_url,
            "table": collection or settings.store.table,
            "dim": settings.embedding.dim,
        }
    )
    copy_store(settings.index_dir, settings.store, target_store, report, progress)
    return report


def copy_rows(source: Engine, target: Engine, progress: Callable[[str], None]) -> dict[str, int]:
    """Copy every model table, parents before children, in one target transaction."""
    tables = SQLModel.metadata.sorted_tables
    counts: dict[str, int] = {}
    with source.connect() as src, target.begin() as dst:
        users = SQLModel.metadata.tables["users"]
        if dst.execute(select(func.count()).select_from(users)).scalar_one():
            raise ValueError("the target database already has users; migrate into an empty one")
        for table in tables:
            copied = 0
            result = src.execution_options(stream_results=True).execute(select(table))
            for batch in result.mappings().partitions(_ROWS):
                dst.execute(table.insert(), [dict(row) for row in batch])
                copied += len(batch)
            counts[table.name] = copied
            if copied:
                progress(f"{table.name}: {copied} rows")
    return counts


def copy_store(
    index_dir: Any,
    source_settings: StoreSettings,
    target_settings: StoreSettings,
    report: MigrationReport,
    progress: Callable[[str], None],
) -> None:
    """Copy documents, chunks, terms and vectors; the target is written like an ingestion."""
    source = ChunkStore(index_dir, source_settings)
    target = ChunkStore(index_dir, target_settings)
    try:
        catalog = source.catalog
        ops = source._ops
        if not isinstance(catalog, Catalog) or not isinstance(ops, LanceOps):
            raise ValueError("the source must be the embedded store")
        pending: list[PreparedDocument] = []
        size = 0
        for doc in catalog.documents():
            ids = catalog.chunk_ids_of([doc.doc_id])
            records = catalog.chunks(ids)
            terms = catalog.chunk_terms(ids)
            vectors = ops.embeddings(ids)
            chunks: list[ChunkRecord] = []
            embeddings: list[list[float]] = []
            for chunk_id in ids:
                if chunk_id not in vectors:  # never acknowledged with a vector: re-ingest it
                    report.missing_vectors.append(chunk_id)
                    continue
                r = records[chunk_id]
                chunks.append(
                    ChunkRecord(
                        r.chunk_id,
                        r.doc_id,
                        r.acl,
                        r.chunk_index,
                        r.text,
                        r.keywords,
                        r.start_char,
                        r.end_char,
                        terms.get(chunk_id, ()),
                    )
                )
                embeddings.append(vectors[chunk_id])
            pending.append(PreparedDocument(doc, chunks, embeddings))
            size += len(chunks)
            report.documents += 1
            report.chunks += len(chunks)
            if size >= _CHUNKS:
                target.write(pending)
                pending, size = [], 0
                progress(f"store: {report.documents} documents, {report.chunks} chunks")
        target.write(pending)
        target.optimize()
        report.vectors = target.vector_count()
        progress(f"store: {report.documents} documents, {report.vectors} vectors in Milvus")
    finally:
        source.close()
        target.close()
