"""The admin dashboard's data and plots (matplotlib, rendered server-side; no Gradio here)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from chatbot.web.context import WebContext

matplotlib.rcParams["font.sans-serif"] = [
    "DejaVu Sans",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "sans-serif",
]
UP, DOWN = "#2e7d32", "#c62828"
REPORT = Path("reports") / "latest" / "report.md"


def dashboard(context: WebContext) -> tuple[Any, ...]:
    """Everything the admin tab shows: store and queue, public documents, feedback, report."""
    store, repo = context.container.store, context.repo
    public = [
        [d.title, Path(d.source).name, d.language, d.n_chunks, d.category]
        for d in store.documents(acl="public")
    ]
    rows = repo.feedback_dashboard()
    refused = repo.refused_answers(limit=50)
    return (
        {**store.stats(), "queue": context.gate.stats()},
        public,
        summary(rows, len(refused)),
        satisfaction_figure(rows),
        by_document_figure(rows),
        reasons_table(rows),
        refused_table(refused),
        latest_report(context.project_root, context.container.settings.data_dir),
    )


def reingest_samples(context: WebContext) -> str:
    """Run the ingestion job over data/samples again (unchanged files are skipped)."""
    if context.ingester is None:
        return "⚠️ ingestion is not enabled on this server"
    samples = context.project_root / "data" / "samples"
    report = context.ingester([samples], user=None)
    return (
        f"Re-ingested `{samples.name}`: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.failed)} failed."
    )


def satisfaction_figure(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Share of 👍 per day, with the number of ratings as bars."""
    by_day: dict[date, Counter[str]] = defaultdict(Counter)
    for row in rows:
        by_day[row["updated_at"].date()][row["rating"]] += 1
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.set_title("Satisfaction over time")
    if not by_day:
        return _empty(fig, ax, "no ratings yet")
    days = [d.isoformat() for d in sorted(by_day)]
    counts = [by_day[d] for d in sorted(by_day)]
    totals = [sum(c.values()) for c in counts]
    share = [c["up"] / t * 100 for c, t in zip(counts, totals, strict=True)]
    ax.bar(days, totals, color="#90a4ae", alpha=0.5, label="ratings")
    ax.set_ylabel("ratings per day")
    twin = ax.twinx()
    twin.plot(days, share, marker="o", color=UP, label="% thumbs up")
    twin.set_ylim(0, 105)
    twin.set_ylabel("% thumbs up")
    fig.autofmt_xdate()
    return fig


def by_document_figure(rows: Sequence[Mapping[str, Any]], top: int = 10) -> Figure:
    """👍 and 👎 per cited document (the documents with most ratings)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        titles = {str(c.get("title") or c.get("source") or "?") for c in row["citations"] or []}
        for title in titles or {"(no citation)"}:
            counts[title][row["rating"]] += 1
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.set_title("Ratings by cited document")
    if not counts:
        return _empty(fig, ax, "no ratings yet")
    ranked = sorted(counts, key=lambda t: -sum(counts[t].values()))[:top][::-1]
    ups = [counts[t]["up"] for t in ranked]
    downs = [counts[t]["down"] for t in ranked]
    labels = [t if len(t) <= 40 else t[:39] + "…" for t in ranked]
    ax.barh(labels, ups, color=UP, label="thumbs up")
    ax.barh(labels, downs, left=ups, color=DOWN, label="thumbs down")
    ax.set_xlabel("ratings")
    ax.legend(loc="lower right")
    return fig


def reasons_table(rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """How often each 👎 reason was given, most frequent first."""
    reasons = Counter(str(r["reason"] or "(none)") for r in rows if r["rating"] == "down")
    return [[reason, n] for reason, n in reasons.most_common()]


def refused_table(rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Questions answered "I don't know", newest first."""
    return [[r["at"].strftime("%Y-%m-%d %H:%M"), r["question"]] for r in rows]


def latest_report(project_root: Path, data_dir: Path) -> str:
    """The newest evaluation report (markdown), or a hint how to make one."""
    found = [p for p in (project_root / REPORT, data_dir / REPORT) if p.is_file()]
    if not found:
        return f"*No evaluation report yet. Run an evaluation to create `{REPORT}`.*"
    newest = max(found, key=lambda p: p.stat().st_mtime)
    return newest.read_text(encoding="utf-8", errors="replace")[:200_000]


def summary(rows: Sequence[Mapping[str, Any]], refused: int) -> str:
    ups = sum(1 for r in rows if r["rating"] == "up")
    total = len(rows)
    share = f"{ups / total * 100:.0f}% 👍" if total else "no ratings yet"
    noun = "rating" if total == 1 else "ratings"
    return f'**{total}** {noun} · {share} · **{refused}** recent "I don\'t know" answers'


def _empty(fig: Figure, ax: Any, text: str) -> Figure:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_axis_off()
    return fig
