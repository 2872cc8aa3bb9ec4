"""Test defaults: fake models through the production factory, a temp data dir, no network."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests (soak, long fuzzing, 100 crash trials) run only under ``make test-long``."""
    if os.environ.get("CHATBOT_TEST_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="slow: runs under make test-long (CHATBOT_TEST_LONG=1)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        if host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return True  # unix sockets


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection to a non-loopback address fails the test."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if not _is_loopback(address):
            raise RuntimeError(f"network access attempted in a test: {address!r}")
        real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _fake_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Unit tests run on the fakes and a private data dir unless a test says otherwise."""
    for key in list(os.environ):
        if key.startswith("CHATBOT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CHATBOT_ENVIRONMENT", "test")
    monkeypatch.setenv("CHATBOT_LLM__MODE", "fake")
    monkeypatch.setenv("CHATBOT_EMBEDDING__MODE", "fake")
    monkeypatch.setenv("CHATBOT_DATA_DIR", str(tmp_path / "data"))
    from chatbot.settings import get_settings

    get_settings.cache_clear()
    if os.environ.get("TEST_DEPLOYMENT") == "scaleout":  # make test-scaleout: PostgreSQL + Milvus
        from tests.scaleout.conftest import scaleout_env

        yield from scaleout_env(monkeypatch)
    else:
        yield


@pytest.fixture
def settings():  # type: ignore[no-untyped-def]
    from chatbot.settings import Settings

    return Settings()


@pytest.fixture
def container(settings) -> Iterator[object]:  # type: ignore[no-untyped-def]
    from chatbot.container import Container

    c = Container(settings)
    yield c
    c.close()
