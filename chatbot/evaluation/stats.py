"""Paired differences between two systems (or two runs) with bootstrap confidence intervals.

A difference measured on 12 or 100 questions can be noise. Both systems answer the same
questions, so the honest interval is a *paired* bootstrap: resample questions with replacement
and recompute the mean of the per-question differences. Deterministic (fixed seed), numpy only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Delta:
    """Mean of (a - b) over the questions both scored, in 0..1 units, with its interval."""

    n: int
    a: float
    b: float
    delta: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _interval(values: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """Bootstrap interval (percentile method, ``LEVEL``) of the mean of ``values``."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_delta(
    pairs: Sequence[tuple[float, float]], resamples: int = RESAMPLES, seed: int = 0
) -> Delta | None:
    """The mean paired difference and its bootstrap interval."""
    if not pairs:
        return None
    arr = np.asarray(pairs, dtype=float)
    diffs = arr[:, 0] - arr[:, 1]
    low, high = _interval(diffs, resamples, seed)
    return Delta(
        n=len(diffs),
        a=float(arr[:, 0].mean()),
        b=float(arr[:, 1].mean()),
        delta=float(diffs.mean()),
        low=low,
        high=high,
    )


def mean_interval(
    values: Sequence[float], resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """Bootstrap interval of one system's mean score."""
    return _interval(np.asarray(values, dtype=float), resamples, seed) if values else None


def score_pairs(
    a: Iterable[Mapping[str, Any]], b: Iterable[Mapping[str, Any]], metric: str
) -> list[tuple[float, float]]:
    """Per-question (a, b) values of ``metric`` where both scored it (``None`` = not applicable)."""
    pairs = []
    for sa, sb in zip(a, b, strict=True):
        va, vb = sa.get(metric), sb.get(metric)
        if va is not None and vb is not None:
            pairs.append((float(va), float(vb)))
    return pairs


def system_deltas(
    questions: Sequence[Mapping[str, Any]],
    a: str,
    b: str,
    metrics: Sequence[str],
    where: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, float | int]]:
    """Paired deltas of system ``a`` over ``b`` in one run's per-question results.

    Only questions whose fields match ``where`` count (e.g. ``{"language": "zh"}``).
    """
    rows = [
        q
        for q in questions
        if a in q["systems"]
        and b in q["systems"]
        and all(q.get(k) == v for k, v in (where or {}).items())
    ]
    out: dict[str, dict[str, float | int]] = {}
    for metric in metrics:
        delta = paired_delta(
            score_pairs(
                (q["systems"][a]["scores"] for q in rows),
                (q["systems"][b]["scores"] for q in rows),
                metric,
            )
        )
        if delta is not None:
            out[metric] = delta.as_dict()
    return out


def format_delta(d: Mapping[str, float | int] | None, lower_is_better: bool = False) -> str:
    """``+12.6 [+3.1, +22.0] ✓`` in points; ✓ when better and the interval excludes zero."""
    if not d:
        return "–"
    diff, low, high = (float(d[k]) * 100 for k in ("delta", "low", "high"))
    significant = low > 0 or high < 0
    better = diff < 0 if lower_is_better else diff > 0
    mark = " ✓" if better and significant else ""
    return f"{diff:+.1f} [{low:+.1f}, {high:+.1f}]{mark}"
