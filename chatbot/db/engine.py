"""Engine and session setup; SQLite is tuned for concurrent writers.

SQLite allows one writer at a time. A DEFERRED transaction that reads and then writes can fail
with "database is locked" when it upgrades its lock, and the busy timeout does not help then;
it can also lose read-modify-write updates. So every SQLite transaction begins IMMEDIATE (it
takes the write lock up front and waits up to ``busy_timeout`` for it), except sessions opened
with ``read_only=True``, which begin DEFERRED and in WAL mode never block or wait for writers.
This is the SQLAlchemy-documented recipe: the driver's own BEGIN handling is switched off on
connect and a ``begin`` listener emits ours. See the security guide, section 4.1.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, event, make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

import chatbot.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)

READ_ONLY_OPTION = "chatbot_read_only"
"""Execution option that makes the SQLite ``begin`` listener emit a DEFERRED BEGIN."""

BUSY_TIMEOUT_MS = 30_000

NO_SYNC = {"synchronize_session": False}
"""Execution options of bulk deletes: nothing they touch is loaded in the session."""

_SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",  # first: switching to WAL may have to wait
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA secure_delete=ON",  # deleted rows are zeroed, not left in the file's free pages
)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and IMMEDIATE transactions.

    In-memory SQLite (``sqlite://``) uses one shared connection (StaticPool) so every session
    sees the same database; it suits single-threaded tests, not concurrent writers.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if _is_memory(parsed):
        kwargs["poolclass"] = StaticPool
    else:
        _create_parent_folder(parsed)
    engine = create_engine(parsed, **kwargs)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def init_db(engine: Engine) -> None:
    """Create or upgrade the schema: ``alembic upgrade head`` (see ``chatbot.db.schema``)."""
    from chatbot.db.schema import upgrade

    upgrade(engine)


@contextmanager
def session_scope(engine: Engine, *, read_only: bool = False) -> Iterator[Session]:
    """A session that commits on success and rolls back on error.

    Objects stay readable after the block (``expire_on_commit=False``) and come out detached.
    A ``read_only`` session begins DEFERRED on SQLite and is closed without committing, so
    anything written in it is discarded.
    """
    session = Session(engine, expire_on_commit=False)
    try:
        if read_only:
            session.connection(execution_options={READ_ONLY_OPTION: True})
        yield session
        if not read_only:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _is_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def _create_parent_folder(url: URL) -> None:
    database = url.database or ""
    if not database.startswith("file:"):  # URI filenames are left to the caller
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _on_sqlite_connect(dbapi_connection: sqlite3.Connection, connection_record: object) -> None:
    # Stop the sqlite3 driver from emitting BEGIN itself; _on_sqlite_begin does it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
    conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")
