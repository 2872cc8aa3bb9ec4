"""The catalog in PostgreSQL: documents, chunk texts and full-text search over our own terms.

Every app process of a scaled-out deployment reads and writes the same tables, so the keyword
half of hybrid retrieval keeps no per-process state. The chunk terms are the ones the SQLite
catalog indexes (``chatbot.text.tokenize``: stemmed English, jieba-segmented Chinese) joined by
spaces; PostgreSQL indexes them with ``to_tsvector('simple', terms)`` (no stemming, no stop
words, so our tokens stay as they are) in a stored generated column with a GIN index, and
ranks matches with ``ts_rank_cd`` (cover density, normalised by document length). The query
is the OR of the query terms, parsed by the same ``simple`` configuration. ACL labels are
filtered inside the query, as in SQLite.

Ranking differs from FTS5's BM25 (``ts_rank_cd`` has no inverse document frequency), so the
keyword ranking, and therefore fused results, can differ slightly between the two catalogs;
filtering and matching are the same.

Tables are prefixed ``catalog_`` and created on first use (they are an index that
``chatbot ingest`` rebuilds, not application data, so Alembic leaves them alone).
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text

from chatbot.index.catalog import ChunkRecord, DocumentRecord, document_from_row

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS catalog_documents(
      doc_id TEXT PRIMARY KEY,
      source TEXT NOT NULL,
      title TEXT NOT NULL DEFAULT '',
      acl TEXT NOT NULL,
      language TEXT NOT NULL DEFAULT '',
      category TEXT NOT NULL DEFAULT '',
      topics TEXT NOT NULL DEFAULT '[]',
      content_hash TEXT NOT NULL,
      n_chunks INTEGER NOT NULL,
      size_bytes BIGINT NOT NULL DEFAULT 0,
      ingested_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS catalog_documents_source ON catalog_documents(source)",
    "CREATE INDEX IF NOT EXISTS catalog_documents_acl ON catalog_documents(acl)",
    """CREATE TABLE IF NOT EXISTS catalog_chunks(
      chunk_id TEXT PRIMARY KEY,
      doc_id TEXT NOT NULL REFERENCES catalog_documents(doc_id) ON DELETE CASCADE,
      acl TEXT NOT NULL,
      chunk_index INTEGER NOT NULL,
      text TEXT NOT NULL,
      keywords TEXT NOT NULL DEFAULT '[]',
      start_char INTEGER NOT NULL DEFAULT 0,
      end_char INTEGER NOT NULL DEFAULT 0,
      terms TEXT NOT NULL DEFAULT '',
      tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', terms)) STORED)""",
    "CREATE INDEX IF NOT EXISTS catalog_chunks_doc ON catalog_chunks(doc_id)",
    "CREATE INDEX IF NOT EXISTS catalog_chunks_acl ON catalog_chunks(acl)",
    "CREATE INDEX IF NOT EXISTS catalog_chunks_tsv ON catalog_chunks USING GIN (tsv)",
)

_LOCK_KEY = zlib.crc32(b"chatbot catalog writers")
"""Advisory-lock key that serialises store writers across processes."""

_DOC_COLUMNS = (
    "doc_id, source, title, acl, language, category, topics, content_hash, n_chunks,"
    " size_bytes, ingested_at"
)
_IN_CHUNK = 1000


class PostgresCatalog:
    """Documents, chunks and full-text terms in PostgreSQL; safe to share between threads."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or create_engine(url, pool_pre_ping=True, pool_size=5)
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            for statement in SCHEMA:
                conn.execute(text(statement))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """A session-level advisory lock: one store writer at a time in the whole deployment."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                conn.commit()

    # -- documents ---------------------------------------------------------------------------

    def document(self, doc_id: str) -> DocumentRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text(f"SELECT {_DOC_COLUMNS} FROM catalog_documents WHERE doc_id = :d"),
                {"d": doc_id},
            ).fetchone()
        return document_from_row(row) if row else None

    def documents_by_id(self, doc_ids: Iterable[str]) -> dict[str, DocumentRecord]:
        ids = list(dict.fromkeys(doc_ids))
        out: dict[str, DocumentRecord] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                rows = conn.execute(
                    text(f"SELECT {_DOC_COLUMNS} FROM catalog_documents WHERE doc_id = ANY(:ids)"),
                    {"ids": ids[start : start + _IN_CHUNK]},
                )
                for row in rows:
                    doc = document_from_row(row)
                    out[doc.doc_id] = doc
        return out

    def documents(self, *, acl: str | None = None) -> list[DocumentRecord]:
        sql = f"SELECT {_DOC_COLUMNS} FROM catalog_documents"
        args: dict[str, Any] = {}
        if acl is not None:
            sql, args = sql + " WHERE acl = :acl", {"acl": acl}
        with self.engine.connect() as conn:
            return [
                document_from_row(r) for r in conn.execute(text(sql + " ORDER BY source"), args)
            ]

    def documents_for(self, acls: Sequence[str]) -> list[DocumentRecord]:
        if not acls:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT {_DOC_COLUMNS} FROM catalog_documents WHERE acl = ANY(:acls)"
                    " ORDER BY source"
                ),
                {"acls": list(acls)},
            )
            return [document_from_row(r) for r in rows]

    def chunk_ids_of(self, doc_ids: Iterable[str]) -> list[str]:
        ids = list(doc_ids)
        if not ids:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT chunk_id FROM catalog_chunks WHERE doc_id = ANY(:ids)"
                    " ORDER BY doc_id, chunk_index"
                ),
                {"ids": ids},
            )
            return [r[0] for r in rows]

    def replace_documents(
        self, docs: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]
    ) -> list[str]:
        """Write documents with their chunks in one transaction; returns the replaced chunk ids."""
        replaced: list[str] = []
        with self.engine.begin() as conn:
            for doc, _ in docs:
                replaced += _delete_doc(conn, doc.doc_id)
            doc_rows = [_doc_params(doc) for doc, _ in docs]
            if doc_rows:
                conn.execute(
                    text(
                        f"INSERT INTO catalog_documents ({_DOC_COLUMNS}) VALUES (:doc_id, :source,"
                        " :title, :acl, :language, :category, :topics, :content_hash, :n_chunks,"
                        " :size_bytes, :ingested_at)"
                    ),
                    doc_rows,
                )
            chunk_rows = [_chunk_params(c) for _, chunks in docs for c in chunks]
            if chunk_rows:
                conn.execute(
                    text(
                        "INSERT INTO catalog_chunks (chunk_id, doc_id, acl, chunk_index, text,"
                        " keywords, start_char, end_char, terms) VALUES (:chunk_id, :doc_id, :acl,"
                        " :chunk_index, :text, :keywords, :start_char, :end_char, :terms)"
                    ),
                    chunk_rows,
                )
        return replaced

    def delete_documents(self, doc_ids: Iterable[str]) -> list[str]:
        """Delete documents; returns the chunk ids whose vectors must go too."""
        removed: list[str] = []
        with self.engine.begin() as conn:
            for doc_id in doc_ids:
                removed += _delete_doc(conn, doc_id)
        return removed

    # -- chunks and search -------------------------------------------------------------------

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, ChunkRecord]:
        out: dict[str, ChunkRecord] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(chunk_ids), _IN_CHUNK):
                rows = conn.execute(
                    text(
                        "SELECT chunk_id, doc_id, acl, chunk_index, text, keywords, start_char,"
                        " end_char FROM catalog_chunks WHERE chunk_id = ANY(:ids)"
                    ),
                    {"ids": list(chunk_ids[start : start + _IN_CHUNK])},
                )
                for r in rows:
                    out[r[0]] = ChunkRecord(
                        r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5])), r[6], r[7]
                    )
        return out

    def all_chunk_ids(self) -> set[str]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(text("SELECT chunk_id FROM catalog_chunks"))}

    def keyword_search(
        self, terms: Sequence[str], acls: Sequence[str], top_k: int
    ) -> list[tuple[str, float]]:
        """Full-text matches among the readable chunks; (chunk_id, score), higher = better.

        A term with a space is a phrase: its words must be neighbours in the chunk's terms.
        """
        unique = list(dict.fromkeys(t for t in terms if t))[:64]
        if not unique or not acls or top_k <= 0:
            return []
        words = [t for t in unique if " " not in t]
        phrases = [t for t in unique if " " in t]
        # plainto_tsquery ANDs the words; '&' never occurs inside a 'simple' lexeme, so
        # replacing it turns the query into the OR of the words. ts_rank_cd ignores phrase
        # operators, so each phrase (phraseto_tsquery: its words in order, next to each other)
        # is a query of its own whose rank adds where it matches, like a rare word in BM25.
        queries = {f"p{i}": f"phraseto_tsquery('simple', :p{i})" for i in range(len(phrases))}
        if words:
            queries["w"] = (
                "CAST(replace(CAST(plainto_tsquery('simple', :query) AS text), '&', '|') AS tsquery)"
            )
        score = " + ".join(
            f"CASE WHEN tsv @@ s.{q} THEN ts_rank_cd(tsv, s.{q}, 1) ELSE 0 END" for q in queries
        )
        sql = text(
            f"SELECT chunk_id, {score} AS score FROM catalog_chunks,"
            f" (SELECT {', '.join(f'{expr} AS {q}' for q, expr in queries.items())}) AS s"
            f" WHERE acl = ANY(:acls) AND tsv @@ ({' || '.join(f's.{q}' for q in queries)})"
            " ORDER BY score DESC, chunk_id LIMIT :k"
        )
        params: dict[str, object] = {"query": " ".join(words), "acls": list(acls), "k": top_k}
        params.update({f"p{i}": phrase for i, phrase in enumerate(phrases)})
        with self.engine.connect() as conn:
            rows = conn.execute(sql, params)
            return [(r[0], float(r[1])) for r in rows]

    def stats(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            docs = conn.execute(text("SELECT count(*) FROM catalog_documents")).scalar_one()
            chunks = conn.execute(text("SELECT count(*) FROM catalog_chunks")).scalar_one()
        return {"documents": int(docs), "chunks": int(chunks)}

    def purge(self) -> None:
        """Make deletions physical: VACUUM the catalog tables (dead tuples are reclaimed)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM catalog_chunks"))
            conn.execute(text("VACUUM catalog_documents"))


def _delete_doc(conn: Connection, doc_id: str) -> list[str]:
    rows = conn.execute(
        text("DELETE FROM catalog_chunks WHERE doc_id = :d RETURNING chunk_id"), {"d": doc_id}
    )
    removed = [r[0] for r in rows]
    conn.execute(text("DELETE FROM catalog_documents WHERE doc_id = :d"), {"d": doc_id})
    return removed


def _doc_params(doc: DocumentRecord) -> dict[str, Any]:
    return {
        "doc_id": doc.doc_id,
        "source": doc.source,
        "title": doc.title,
        "acl": doc.acl,
        "language": doc.language,
        "category": doc.category,
        "topics": json.dumps(list(doc.topics), ensure_ascii=False),
        "content_hash": doc.content_hash,
        "n_chunks": doc.n_chunks,
        "size_bytes": doc.size_bytes,
        "ingested_at": doc.ingested_at or time.time(),
    }


def _chunk_params(c: ChunkRecord) -> dict[str, Any]:
    return {
        "chunk_id": c.chunk_id,
        "doc_id": c.doc_id,
        "acl": c.acl,
        "chunk_index": c.chunk_index,
        "text": c.text.replace("\x00", ""),  # PostgreSQL text cannot hold NUL
        "keywords": json.dumps(list(c.keywords), ensure_ascii=False),
        "start_char": c.start_char,
        "end_char": c.end_char,
        "terms": " ".join(c.terms).replace("\x00", ""),
    }
