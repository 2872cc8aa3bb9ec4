"""``chatbot eval-compare BEFORE AFTER``: did a change help, beyond noise, and where?

Reads two ``report.json`` files of the same dataset and mode, pairs the questions both runs
asked (by id) and prints, for one system: every metric before and after with the paired
difference and its 95 % bootstrap interval, the settings that differ between the runs, and the
questions whose key metric moved most, worse first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chatbot.evaluation.scoring import ANSWER_METRICS, LOWER_IS_BETTER, RETRIEVAL_METRICS
from chatbot.evaluation.stats import format_delta, paired_delta, score_pairs

KEY_METRIC = {"retrieval": "doc_hit@5", "answer": "f1"}


class CompareError(ValueError):
    """The two reports cannot be compared (missing, unreadable, different dataset or mode)."""


def load_report(path: Path) -> dict[str, Any]:
    """A report folder or its ``report.json``."""
    file = path / "report.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CompareError(f"no report at {file}") from exc
    except (OSError, ValueError) as exc:
        raise CompareError(f"cannot read {file}: {exc}") from exc
    if not isinstance(data, dict) or "questions" not in data or "mode" not in data:
        raise CompareError(f"{file} is not a report.json written by chatbot eval")
    return data


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """``key: old → new`` for every setting that differs."""
    a, b = _flatten(before.get("config") or {}), _flatten(after.get("config") or {})
    return [
        f"{key}: {a.get(key, '–')} → {b.get(key, '–')}"
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    ]


def compare(
    before: dict[str, Any], after: dict[str, Any], system: str = "ours", top: int = 10
) -> str:
    """The comparison as Markdown."""
    if before["mode"] != after["mode"]:
        raise CompareError(f"different modes: {before['mode']} vs {after['mode']}")
    name_a = before.get("dataset", {}).get("name")
    name_b = after.get("dataset", {}).get("name")
    if name_a != name_b:
        raise CompareError(f"different datasets: {name_a} vs {name_b}")
    mode = after["mode"]
    by_id = {q["id"]: q for q in before["questions"] if system in q["systems"]}
    rows = [
        (by_id[q["id"]], q)
        for q in after["questions"]
        if q["id"] in by_id and system in q["systems"]
    ]
    if not rows:
        raise CompareError(f"the reports share no question answered by system {system!r}")
    old = [a["systems"][system]["scores"] for a, _ in rows]
    new = [b["systems"][system]["scores"] for _, b in rows]
    lines = [
        f"# {name_b} · {mode} · {system}: before → after",
        "",
        f"- before: commit `{before.get('git_commit')}`, started {before.get('started_at')}",
        f"- after: commit `{after.get('git_commit')}`, started {after.get('started_at')}",
        f"- {len(rows)} questions in both runs; Δ = after minus before in points, paired, with a "
        "95 % bootstrap interval; ✓ = better and the interval excludes zero",
        "",
        "| metric | n | before | after | Δ (pts) [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for metric in RETRIEVAL_METRICS if mode == "retrieval" else ANSWER_METRICS:
        delta = paired_delta(score_pairs(new, old, metric))
        if delta is None:
            continue
        lines.append(
            f"| {metric} | {delta.n} | {delta.b:.3f} | {delta.a:.3f} | "
            f"{format_delta(delta.as_dict(), metric in LOWER_IS_BETTER)} |"
        )
    changes = config_changes(before, after)
    lines += ["", "## Settings that differ", ""]
    lines += [f"- `{c}`" for c in changes] if changes else ["- none"]
    lines += _movers(rows, system, KEY_METRIC[mode], top)
    return "\n".join(lines) + "\n"


def _movers(
    rows: list[tuple[dict[str, Any], dict[str, Any]]], system: str, metric: str, top: int
) -> list[str]:
    moved = []
    for a, b in rows:
        va = a["systems"][system]["scores"].get(metric)
        vb = b["systems"][system]["scores"].get(metric)
        if va is not None and vb is not None and va != vb:
            moved.append((vb - va, a["id"], a["question"]))
    worse = sorted(m for m in moved if m[0] < 0)[:top]
    better = sorted((m for m in moved if m[0] > 0), reverse=True)[:top]
    lines = [
        "",
        f"## Questions whose {metric} moved",
        "",
        f"{sum(m[0] < 0 for m in moved)} worse, {sum(m[0] > 0 for m in moved)} better "
        f"(of {len(rows)}).",
    ]
    for title, group in (("Worse", worse), ("Better", better)):
        if group:
            lines += ["", f"{title}:", ""]
            lines += [f"- {d:+.2f} `{qid}` {q}" for d, qid, q in group]
    return lines
