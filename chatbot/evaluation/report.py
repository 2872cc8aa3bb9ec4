"""report.json (everything, machine-readable) and report.md (tables: ours vs baselines)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from chatbot.evaluation.error_analysis import worst_answers
from chatbot.evaluation.plots import write_plots
from chatbot.evaluation.provenance import package_versions
from chatbot.evaluation.runner import EvalRun
from chatbot.evaluation.scoring import LOWER_IS_BETTER
from chatbot.evaluation.stats import format_delta, system_deltas
from chatbot.hardware import has_fast_bfloat16, resolve_dtype
from chatbot.settings import Settings, masked_dump

log = logging.getLogger(__name__)

OURS = "ours"
LATENCY_STAGES = (
    "understand_ms",
    "retrieve_ms",
    "retrieve.embed_ms",
    "retrieve.search_ms",
    "embed_ms",
    "search_ms",
    "first_token_ms",
    "answer_ms",
    "total_ms",
)


def to_json(run: EvalRun, settings: Settings) -> dict[str, Any]:
    o = run.options
    return {
        "dataset": {
            "name": run.dataset.name,
            "docs_dir": str(run.dataset.docs_dir),
            "questions": str(run.dataset.questions_path),
            "documents": len(run.dataset.files),
            "questions_total": len(run.dataset.items),
            "questions_used": len(run.items),
            "answerable_used": sum(q.answerable for q in run.items),
        },
        "mode": o.mode,
        "options": {
            "limit": o.limit,
            "baselines": list(o.baselines),
            "exclude_ambiguous": o.exclude_ambiguous,
            "use_cache": o.use_cache,
        },
        "started_at": run.started_at,
        "systems": run.systems,
        "setup": run.setup,
        "runtime_s": run.runtime_s,
        "metrics": run.summary,
        "deltas_vs_ours": deltas(run),
        "latency_ms": run.latency,
        "errors": run.errors,
        "config": masked_dump(settings),
        "versions": package_versions(),
        "compute": {  # what "auto" resolved to on the machine that ran the eval
            "llm_dtype": resolve_dtype(settings.llm.dtype),
            "embedding_dtype": resolve_dtype(settings.embedding.dtype),
            "native_bfloat16": has_fast_bfloat16(),
        },
        "git_commit": run.git_commit,
        "questions": run.questions,
    }


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def deltas(run: EvalRun, where: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Ours minus each baseline per metric, paired over questions, with 95 % bootstrap intervals."""
    return {
        name: system_deltas(run.questions, OURS, name, run.metric_names, where)
        for name in run.systems
        if name != OURS
    }


def metrics_table(
    run: EvalRun, block: dict[str, dict[str, Any]], where: dict[str, Any] | None = None
) -> list[str]:
    """One row per metric: ours, then each baseline with ours' lead in points and its interval."""
    others = [s for s in run.systems if s != OURS]
    lead = deltas(run, where)
    header = ["metric", "n", OURS]
    for name in others:
        header += [name, f"Δ vs {name} (pts) [95% CI]"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metric in run.metric_names:
        ours = block[OURS]["metrics"].get(metric)
        if ours is None and all(block[s]["metrics"].get(metric) is None for s in others):
            continue
        row = [metric, str(block[OURS]["counts"].get(metric, 0)), _fmt(ours)]
        for name in others:
            other = block[name]["metrics"].get(metric)
            row += [
                _fmt(other),
                format_delta(lead[name].get(metric), metric in LOWER_IS_BETTER),
            ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def latency_table(run: EvalRun) -> list[str]:
    lines = ["| system | stage | n | p50 ms | p95 ms |", "|---|---|---|---|---|"]
    for name in run.systems:
        stages = run.latency.get(name, {})
        for stage in [s for s in LATENCY_STAGES if s in stages] + sorted(
            s for s in stages if s not in LATENCY_STAGES
        ):
            v = stages[stage]
            lines.append(f"| {name} | {stage} | {v['n']} | {v['p50']:.1f} | {v['p95']:.1f} |")
    return lines


def to_markdown(run: EvalRun, settings: Settings, plots: list[str]) -> str:
    o, d = run.options, run.dataset
    answerable = sum(q.answerable for q in run.items)
    lines = [
        f"# Evaluation: {d.name} ({o.mode} mode)",
        "",
        f"- started {run.started_at}, commit `{run.git_commit or 'unknown'}`",
        f"- {len(d.files)} documents; {len(run.items)} of {len(d.items)} questions "
        f"({answerable} answerable){f', --limit {o.limit}' if o.limit else ''}"
        f"{', ambiguous questions excluded' if o.exclude_ambiguous else ''}",
        f"- LLM `{settings.llm.mode}:{settings.llm.model}`, embedding "
        f"`{settings.embedding.mode}:{settings.embedding.model}`; retrieval "
        f"{settings.retrieval.model_dump()}; chat {settings.chat.model_dump()}; "
        f"ingest {settings.ingest.model_dump()}",
        "- Δ = ours minus baseline in percentage points, paired over the same questions, with a "
        "95 % bootstrap interval; ✓ marks where ours is better and the interval excludes zero.",
        "",
        "## All questions",
        "",
        *metrics_table(run, {s: run.summary[s]["all"] for s in run.systems}),
    ]
    for key, field, title in (
        ("by_language", "language", "Language"),
        ("by_question_type", "question_type", "Question type"),
    ):
        groups = sorted({g for s in run.systems for g in run.summary[s].get(key, {})})
        if len(groups) < 2:
            continue
        for group in groups:
            block = {
                s: run.summary[s][key].get(group, {"metrics": {}, "counts": {}})
                for s in run.systems
            }
            lines += ["", f"## {title}: {group}", ""]
            lines += metrics_table(run, block, {field: group})
    if o.mode == "answer":
        lines += worst_answers(run.questions)
    lines += ["", "## Latency", "", *latency_table(run), "", "## Setup and run time", ""]
    lines += ["| system | chunks | index cached | index s | questions s |", "|---|---|---|---|---|"]
    for name in run.systems:
        s = run.setup.get(name, {})
        lines.append(
            f"| {name} | {s.get('chunks', '–')} | {s.get('cached', '–')} | "
            f"{s.get('index_seconds', '–')} | {run.runtime_s.get(f'questions.{name}', '–')} |"
        )
    lines += ["", f"Total run time: {run.runtime_s.get('total', 0):.1f} s."]
    if run.errors:
        lines += ["", f"## Errors ({len(run.errors)})", ""]
        lines += [f"- {e['system']} on {e['id']}: {e['error']}" for e in run.errors[:20]]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def write_report(run: EvalRun, settings: Settings, out_dir: Path) -> list[Path]:
    """report.json first (the results of a long run must survive), then plots and report.md.

    A failure while plotting is logged and the report is written without plots.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(
        json.dumps(to_json(run, settings), indent=1, ensure_ascii=False, default=str),
        encoding="utf-8",
    )
    try:
        plots = write_plots(run, out_dir)
    except Exception:
        log.exception("plotting failed; %s is written without plots", out_dir / "report.md")
        plots = []
    (out_dir / "report.md").write_text(
        to_markdown(run, settings, [p.name for p in plots]), encoding="utf-8"
    )
    return [out_dir / "report.json", out_dir / "report.md", *plots]
