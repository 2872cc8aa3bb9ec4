"""The catalog beside the vectors: documents, chunk texts and a BM25 keyword index.

One SQLite file (WAL, synchronous=FULL) under the index folder. A document counts as ingested
("acknowledged") only once its catalog transaction has committed; vectors whose chunk id is not
in the catalog are orphans from an interrupted run and are removed by ``ChunkStore.reconcile``.
The keyword index is SQLite FTS5 over our own pre-tokenised terms (stemmed English,
jieba-segmented Chinese), so BM25 works for both languages and survives ``kill -9``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents(
  doc_id TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  title TEXT NOT NULL DEFAULT '',
  acl TEXT NOT NULL,
  language TEXT NOT NULL DEFAULT '',
  category TEXT NOT NULL DEFAULT '',
  topics TEXT NOT NULL DEFAULT '[]',
  content_hash TEXT NOT NULL,
  n_chunks INTEGER NOT NULL,
  size_bytes INTEGER NOT NULL DEFAULT 0,
  ingested_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE INDEX IF NOT EXISTS documents_acl ON documents(acl);
CREATE TABLE IF NOT EXISTS chunks(
  rowid INTEGER PRIMARY KEY,
  chunk_id TEXT NOT NULL UNIQUE,
  doc_id TEXT NOT NULL,
  acl TEXT NOT NULL,
  chunk_index INTEGER NOT NULL,
  text TEXT NOT NULL,
  keywords TEXT NOT NULL DEFAULT '[]',
  start_char INTEGER NOT NULL DEFAULT 0,
  end_char INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms USING fts5(terms, acl);
"""


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    source: str
    title: str
    acl: str
    language: str
    category: str
    topics: tuple[str, ...]
    content_hash: str
    n_chunks: int
    size_bytes: int
    ingested_at: float


@dataclass(frozen=True)
class ChunkRecord:
    chunk_id: str
    doc_id: str
    acl: str
    chunk_index: int
    text: str
    keywords: tuple[str, ...]
    start_char: int
    end_char: int
    terms: tuple[str, ...] = ()


def acl_token(acl: str) -> str:
    """A single FTS token standing for an ACL label (labels contain ':' and free text)."""
    return "a" + hashlib.sha1(acl.encode()).hexdigest()[:16]


def _fts_phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


class Catalog:
    """Documents, chunks and BM25 terms in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA secure_delete=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """An exclusive lock file beside the database: one store writer at a time on this host."""
        with open(self.path.with_name(self.path.name + ".lock"), "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- documents ---------------------------------------------------------------------------

    def document(self, doc_id: str) -> DocumentRecord | None:
        row = self._conn().execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return document_from_row(row) if row else None

    def documents_by_id(self, doc_ids: Iterable[str]) -> dict[str, DocumentRecord]:
        """The documents of these ids in one query per 500 (unknown ids are left out)."""
        ids = list(dict.fromkeys(doc_ids))
        out: dict[str, DocumentRecord] = {}
        conn = self._conn()
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            for row in conn.execute(f"SELECT * FROM documents WHERE doc_id IN ({marks})", batch):
                doc = document_from_row(row)
                out[doc.doc_id] = doc
        return out

    def documents(self, *, acl: str | None = None) -> list[DocumentRecord]:
        sql, args = "SELECT * FROM documents", cast(tuple[str, ...], ())
        if acl is not None:
            sql, args = sql + " WHERE acl = ?", (acl,)
        return [document_from_row(r) for r in self._conn().execute(sql + " ORDER BY source", args)]

    def documents_for(self, acls: Sequence[str]) -> list[DocumentRecord]:
        """Documents readable with any of the ACL labels."""
        if not acls:
            return []
        marks = ",".join("?" * len(acls))
        rows = self._conn().execute(
            f"SELECT * FROM documents WHERE acl IN ({marks}) ORDER BY source", list(acls)
        )
        return [document_from_row(r) for r in rows]

    def chunk_ids_of(self, doc_ids: Iterable[str]) -> list[str]:
        conn, out = self._conn(), []
        for doc_id in doc_ids:
            out += [
                r[0] for r in conn.execute("SELECT chunk_id FROM chunks WHERE doc_id=?", (doc_id,))
            ]
        return out

    def replace_documents(
        self, docs: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]
    ) -> list[str]:
        """Write documents with their chunks in one transaction; returns the replaced chunk ids."""
        replaced: list[str] = []
        with self._tx() as conn:
            for doc, chunks in docs:
                replaced += _delete_doc(conn, doc.doc_id)
                conn.execute(
                    "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        doc.doc_id,
                        doc.source,
                        doc.title,
                        doc.acl,
                        doc.language,
                        doc.category,
                        json.dumps(list(doc.topics), ensure_ascii=False),
                        doc.content_hash,
                        doc.n_chunks,
                        doc.size_bytes,
                        doc.ingested_at or time.time(),
                    ),
                )
                token = acl_token(doc.acl)
                for c in chunks:
                    cur = conn.execute(
                        "INSERT INTO chunks(chunk_id, doc_id, acl, chunk_index, text, keywords,"
                        " start_char, end_char) VALUES (?,?,?,?,?,?,?,?)",
                        (
                            c.chunk_id,
                            c.doc_id,
                            c.acl,
                            c.chunk_index,
                            c.text,
                            json.dumps(list(c.keywords), ensure_ascii=False),
                            c.start_char,
                            c.end_char,
                        ),
                    )
                    conn.execute(
                        "INSERT INTO chunk_terms(rowid, terms, acl) VALUES (?,?,?)",
                        (cur.lastrowid, " ".join(c.terms), token),
                    )
        return replaced

    def delete_documents(self, doc_ids: Iterable[str]) -> list[str]:
        """Delete documents; returns the chunk ids whose vectors must go too."""
        removed: list[str] = []
        with self._tx() as conn:
            for doc_id in doc_ids:
                removed += _delete_doc(conn, doc_id)
        return removed

    # -- chunks and search -------------------------------------------------------------------

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, ChunkRecord]:
        out: dict[str, ChunkRecord] = {}
        conn = self._conn()
        for start in range(0, len(chunk_ids), 500):
            batch = list(chunk_ids[start : start + 500])
            marks = ",".join("?" * len(batch))
            for r in conn.execute(
                "SELECT chunk_id, doc_id, acl, chunk_index, text, keywords, start_char, end_char"
                f" FROM chunks WHERE chunk_id IN ({marks})",
                batch,
            ):
                out[r[0]] = ChunkRecord(
                    r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5])), r[6], r[7]
                )
        return out

    def chunk_terms(self, chunk_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """The indexed keyword terms of chunks (for copying the catalog elsewhere)."""
        out: dict[str, tuple[str, ...]] = {}
        conn = self._conn()
        for start in range(0, len(chunk_ids), 500):
            batch = list(chunk_ids[start : start + 500])
            marks = ",".join("?" * len(batch))
            for chunk_id, terms in conn.execute(
                "SELECT c.chunk_id, t.terms FROM chunks c JOIN chunk_terms t ON t.rowid = c.rowid"
                f" WHERE c.chunk_id IN ({marks})",
                batch,
            ):
                out[chunk_id] = tuple(terms.split())
        return out

    def all_chunk_ids(self) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT chunk_id FROM chunks")}

    def keyword_search(
        self, terms: Sequence[str], acls: Sequence[str], top_k: int
    ) -> list[tuple[str, float]]:
        """BM25 over the readable chunks; returns (chunk_id, score) with higher = better.

        A term with a space is a phrase: its words must be neighbours in the chunk's terms.
        """
        unique = list(dict.fromkeys(t for t in terms if t))[:64]
        if not unique or not acls:
            return []
        match = (
            "terms : ("
            + " OR ".join(_fts_phrase(t) for t in unique)
            + ") AND acl : ("
            + " OR ".join(acl_token(a) for a in acls)
            + ")"
        )
        rows = (
            self._conn()
            .execute(
                "SELECT c.chunk_id, bm25(chunk_terms, 1.0, 0.0) AS s FROM chunk_terms"
                " JOIN chunks c ON c.rowid = chunk_terms.rowid"
                " WHERE chunk_terms MATCH ? ORDER BY s LIMIT ?",
                (match, top_k),
            )
            .fetchall()
        )
        return [(r[0], -float(r[1])) for r in rows]

    def stats(self) -> dict[str, int]:
        conn = self._conn()
        return {
            "documents": conn.execute("SELECT count(*) FROM documents").fetchone()[0],
            "chunks": conn.execute("SELECT count(*) FROM chunks").fetchone()[0],
        }

    def purge(self) -> None:
        """Make deletions physical: merge the FTS index and checkpoint the WAL into the file."""
        conn = self._conn()
        conn.execute("INSERT INTO chunk_terms(chunk_terms) VALUES ('optimize')")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def backup_to(self, dest: Path) -> None:
        """A consistent copy through SQLite's online backup API."""
        target = sqlite3.connect(dest)
        with target:
            self._conn().backup(target)
        target.close()


def _delete_doc(conn: sqlite3.Connection, doc_id: str) -> list[str]:
    rows = conn.execute("SELECT rowid, chunk_id FROM chunks WHERE doc_id = ?", (doc_id,)).fetchall()
    for rowid, _ in rows:
        conn.execute("DELETE FROM chunk_terms WHERE rowid = ?", (rowid,))
    conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
    conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
    return [r[1] for r in rows]


def document_from_row(row: Any) -> DocumentRecord:
    """A documents row (columns in schema order) as a record; shared by both catalogs."""
    return DocumentRecord(
        doc_id=row[0],
        source=row[1],
        title=row[2],
        acl=row[3],
        language=row[4],
        category=row[5],
        topics=tuple(json.loads(row[6])),
        content_hash=row[7],
        n_chunks=row[8],
        size_bytes=row[9],
        ingested_at=row[10],
    )
