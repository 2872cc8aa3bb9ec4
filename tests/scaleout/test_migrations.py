"""Alembic owns the schema: models and migrations never drift, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlmodel import SQLModel

from chatbot.db import schema
from chatbot.db.engine import init_db, make_engine
from chatbot.db.repos import Repository
from tests.scaleout.conftest import Services


def _url(kind: str, services: Services, tmp_path: Path) -> str:
    return services.database() if kind == "postgresql" else f"sqlite:///{tmp_path / 'app.db'}"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_models_and_migrations_do_not_drift(kind: str, services: Services, tmp_path: Path) -> None:
    """Fails when chatbot/db/models.py changed without a migration: run `chatbot db revision`."""
    engine = make_engine(_url(kind, services, tmp_path))
    init_db(engine)
    assert schema.current(engine) == schema.head()
    assert schema.drift(engine) == []
    assert set(SQLModel.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_concurrent_startups_migrate_once(kind: str, services: Services, tmp_path: Path) -> None:
    url = _url(kind, services, tmp_path)
    errors: list[BaseException] = []

    def start() -> None:
        engine = make_engine(url)
        try:
            init_db(engine)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    engine = make_engine(url)
    assert schema.current(engine) == schema.head() and schema.drift(engine) == []
    engine.dispose()


def test_database_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    """A database that create_all made (no alembic_version) keeps its rows and gets stamped."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    SQLModel.metadata.create_all(engine)
    user = Repository(engine).create_user(username="early")
    init_db(engine)
    assert schema.current(engine) == schema.head()
    assert Repository(engine).get_user(user_id=user.id) is not None
    assert schema.drift(engine) == []
    engine.dispose()
