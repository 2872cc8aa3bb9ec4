"""Fixtures of the reliability battery (crash, disk, deletion, backup, concurrency)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
