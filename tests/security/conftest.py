"""Fixtures of the security battery: one live server per session (see ``live.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.live import Live, live_server

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(tmp_path_factory.mktemp("security")) as server:
        yield server
