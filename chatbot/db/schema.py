"""The relational schema is owned by Alembic migrations (``chatbot/db/migrations``).

``upgrade`` runs ``alembic upgrade head`` programmatically on one connection, inside one
transaction that first takes a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on
PostgreSQL), so several app processes starting at once migrate exactly once. A database made
before migrations existed (tables created by ``create_all``, no ``alembic_version``) is
brought up to the baseline with ``create_all`` and stamped, then upgraded. ``drift`` compares
the models with the migrated database: it is empty unless a model changed without a migration.

New migration after changing ``chatbot/db/models.py``:
``chatbot db revision -m "what changed"`` (autogenerate against a scratch SQLite database),
then review the file under ``chatbot/db/migrations/versions/``.
"""

from __future__ import annotations

import tempfile
import zlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlmodel import SQLModel

import chatbot.db.models  # noqa: F401  (registers every table on SQLModel.metadata)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"
"""The first revision: the schema that ``create_all`` made before migrations existed."""
IGNORED_PREFIXES = ("catalog_",)
"""Tables of the store's PostgreSQL catalog, which may share the database (not Alembic's)."""
_LOCK_KEY = zlib.crc32(b"chatbot schema migrations")


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic filter: leave the store catalog's tables alone."""
    return not (type_ == "table" and name and name.startswith(IGNORED_PREFIXES))


def config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision in the package."""
    revision = ScriptDirectory.from_config(config()).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS_DIR}")
    return revision


def current(engine: Engine) -> str | None:
    """The revision the database is at (None = not under Alembic yet)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision``; safe to call from many processes at once."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        tables = set(inspect(conn).get_table_names())
        if "alembic_version" not in tables and "users" in tables:
            SQLModel.metadata.create_all(conn)  # pre-migration database: complete, then stamp
            command.stamp(config(conn), BASELINE)
        command.upgrade(config(conn), revision)


def drift(engine: Engine) -> list[Any]:
    """Differences between the models and the database (empty when migrations are complete)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_name": include_name, "compare_type": True}
        )
        return list(compare_metadata(context, SQLModel.metadata))


def autogenerate(message: str, *, revision_id: str | None = None) -> Path:
    """Write a new migration with the difference between the models and ``head``.

    Runs against a scratch SQLite database upgraded to ``head``; review the file afterwards
    (SQLite and PostgreSQL must both accept it).
    """
    from chatbot.db.engine import make_engine

    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.db")
        try:
            with engine.begin() as conn:
                command.upgrade(config(conn), "head")
                script = command.revision(
                    config(conn), message=message, autogenerate=True, rev_id=revision_id
                )
        finally:
            engine.dispose()
    if script is None or isinstance(script, list):
        raise RuntimeError("alembic did not write exactly one revision")
    return Path(script.path)
