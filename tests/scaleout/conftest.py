"""Fixtures for the scale-out backends: real Milvus and PostgreSQL, never mocks.

``.ci/services.sh run -- ...`` (``make test-scaleout``) starts both servers and exports
``MILVUS_URI``, ``TEST_POSTGRES_URL`` and ``TEST_POSTGRES_ADMIN_URL``; without them the
Milvus and PostgreSQL cases skip and the embedded ones still run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, make_url, text

MILVUS_URI = os.environ.get("MILVUS_URI", "")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "")


def need_milvus() -> str:
    if not MILVUS_URI:
        pytest.skip("MILVUS_URI is not set (make test-scaleout starts a real Milvus)")
    return MILVUS_URI


def need_postgres() -> str:
    if not (POSTGRES_URL and POSTGRES_ADMIN_URL):
        pytest.skip("TEST_POSTGRES_URL is not set (make test-scaleout starts a real PostgreSQL)")
    return POSTGRES_ADMIN_URL


@dataclass
class Services:
    """Fresh, isolated resources on the shared servers for one test."""

    database_urls: list[str]
    collections: list[str]

    def database(self) -> str:
        """A new, empty PostgreSQL database; dropped after the test."""
        admin = need_postgres()
        name = "t_" + uuid.uuid4().hex[:12]
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        engine.dispose()
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)
        self.database_urls.append(url)
        return url

    def collection(self) -> str:
        """A Milvus collection name no other test uses; dropped after the test."""
        need_milvus()
        name = "t_" + uuid.uuid4().hex[:12]
        self.collections.append(name)
        return name

    def cleanup(self) -> None:
        """Drop what this test made (collections, databases)."""
        if self.collections:
            from pymilvus import MilvusClient

            client = MilvusClient(uri=MILVUS_URI)
            for name in self.collections:
                if client.has_collection(name):
                    client.drop_collection(name)
            client.close()
        if self.database_urls:
            engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                for url in self.database_urls:
                    name = make_url(url).database
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            engine.dispose()


@pytest.fixture
def services() -> Iterator[Services]:
    made = Services([], [])
    yield made
    made.cleanup()


def scaleout_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the CHATBOT_* settings at a fresh database and collection on the real servers.

    Used by the root conftest when TEST_DEPLOYMENT=scaleout, so the service, personalisation
    and web suites run unchanged against PostgreSQL + Milvus.
    """
    made = Services([], [])
    database = made.database()
    for key, value in {
        "CHATBOT_DATABASE__URL": database,
        "CHATBOT_STORE__BACKEND": "milvus",
        "CHATBOT_STORE__URI": need_milvus(),
        "CHATBOT_STORE__TABLE": made.collection(),
        "CHATBOT_STORE__CATALOG_URL": database,
    }.items():
        monkeypatch.setenv(key, value)
    from chatbot.settings import get_settings

    get_settings.cache_clear()
    try:
        yield
    finally:
        made.cleanup()
