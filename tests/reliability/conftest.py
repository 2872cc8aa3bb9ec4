"""Fixtures of the reliability battery (crash, disk, deletion, backup, concurrency)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests of this folder run only under ``make test-long`` (CHATBOT_TEST_LONG=1)."""
    if os.environ.get("CHATBOT_TEST_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="slow: runs under make test-long (CHATBOT_TEST_LONG=1)")
    for item in items:
        if "slow" in item.keywords and Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(skip)
