"""Fixtures of the security battery: one live server per session (see ``live.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.live import Live, live_server

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests of this folder run only under ``make test-long`` (CHATBOT_TEST_LONG=1)."""
    if os.environ.get("CHATBOT_TEST_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="slow: runs under make test-long (CHATBOT_TEST_LONG=1)")
    for item in items:
        if "slow" in item.keywords and Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(tmp_path_factory.mktemp("security")) as server:
        yield server
