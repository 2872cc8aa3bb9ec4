"""Regression gate: compare a run's averages with floors recorded in a committed JSON file.

The file looks like ``{"system": "ours", "floors": {"doc_hit@5": 0.9}, ...}``; other keys
(what was measured when the floor was set, and why) are documentation only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from chatbot.evaluation.runner import EvalRun


@dataclass(frozen=True)
class Breach:
    metric: str
    value: float | None
    floor: float

    def __str__(self) -> str:
        shown = "missing" if self.value is None else f"{self.value:.3f}"
        return f"{self.metric} = {shown} is below the floor {self.floor:.3f}"


def check_floors(run: EvalRun, floors_file: Path) -> list[Breach]:
    spec = json.loads(floors_file.read_text(encoding="utf-8"))
    system = spec.get("system", "ours")
    means = run.summary[system]["all"]["metrics"]
    breaches = []
    for metric, floor in spec["floors"].items():
        value = means.get(metric)
        if value is None or value < float(floor):
            breaches.append(Breach(metric, value, float(floor)))
    return breaches
