"""Runs one evaluation: index the dataset for every system, ask every question, score it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from chatbot.evaluation.baselines import BASELINES, make_baseline
from chatbot.evaluation.cache import IndexCache
from chatbot.evaluation.datasets import Dataset, QAItem, load_dataset, select
from chatbot.evaluation.ours import OursSystem
from chatbot.evaluation.provenance import git_commit
from chatbot.evaluation.scoring import (
    ANSWER_METRICS,
    RETRIEVAL_METRICS,
    latency_summary,
    score_answer,
    score_retrieval,
    summarise,
)
from chatbot.evaluation.systems import Shared, System
from chatbot.settings import Settings

log = logging.getLogger(__name__)

Mode = Literal["retrieval", "answer"]
RETRIEVAL_K = 10


@dataclass(frozen=True)
class EvalOptions:
    dataset_dir: Path
    mode: Mode = "retrieval"
    limit: int = 0
    baselines: tuple[str, ...] = BASELINES
    out_dir: Path | None = None
    docs: Path | None = None
    questions: Path | None = None
    exclude_ambiguous: bool = False
    floors: Path | None = None
    use_cache: bool = True


@dataclass
class EvalRun:
    options: EvalOptions
    dataset: Dataset
    items: list[QAItem]
    systems: list[str]
    started_at: str
    setup: dict[str, dict[str, Any]] = field(default_factory=dict)
    questions: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)
    runtime_s: dict[str, float] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    git_commit: str | None = None  # read when the run starts: a long run may outlive HEAD

    @property
    def metric_names(self) -> tuple[str, ...]:
        return RETRIEVAL_METRICS if self.options.mode == "retrieval" else ANSWER_METRICS


def run_eval(options: EvalOptions, settings: Settings, console: Console) -> EvalRun:
    dataset = load_dataset(options.dataset_dir, docs=options.docs, questions=options.questions)
    items = select(dataset.items, limit=options.limit, exclude_ambiguous=options.exclude_ambiguous)
    cache = IndexCache(settings.data_dir / "eval-cache" if options.use_cache else None)
    shared = Shared(settings=settings, dataset=dataset, cache=cache, console=console)
    systems: list[System] = [OursSystem(shared)]
    systems += [make_baseline(b, shared) for b in dict.fromkeys(options.baselines)]
    run = EvalRun(
        options=options,
        dataset=dataset,
        items=items,
        systems=[s.name for s in systems],
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        git_commit=git_commit(),
    )
    started = time.perf_counter()
    console.print(
        f"[bold]eval[/] {dataset.name}: {len(dataset.files)} documents, {len(items)} of "
        f"{len(dataset.items)} questions, mode {options.mode}, systems {', '.join(run.systems)}"
    )
    try:
        for system in systems:
            console.print(f"[bold]index[/] {system.name} ...")
            run.setup[system.name] = system.prepare()
            run.runtime_s[f"index.{system.name}"] = run.setup[system.name]["index_seconds"]
        _ask_all(run, systems, console)
    finally:
        for system in systems:
            system.close()
        cache.close()
    run.runtime_s["total"] = round(time.perf_counter() - started, 1)
    _summarise(run)
    return run


def _ask_all(run: EvalRun, systems: list[System], console: Console) -> None:
    seconds = dict.fromkeys(run.systems, 0.0)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(run.options.mode, total=len(run.items), status="")
        for item in run.items:
            record: dict[str, Any] = {
                "id": item.id,
                "question": item.question,
                "language": item.language,
                "question_type": item.question_type,
                "answerable": item.answerable,
                "reference_answer": item.reference_answer,
                "source_files": list(item.source_files),
                "systems": {},
            }
            for system in systems:
                progress.update(task, status=f"{system.name} · {item.id}")
                t = time.perf_counter()
                record["systems"][system.name] = _ask_one(run, system, item)
                seconds[system.name] += time.perf_counter() - t
            run.questions.append(record)
            progress.advance(task)
            if not console.is_terminal:  # a log file gets one line per question instead
                console.print(f"{len(run.questions)}/{len(run.items)} {item.id}", highlight=False)
    for name, value in seconds.items():
        run.runtime_s[f"questions.{name}"] = round(value, 1)


def _ask_one(run: EvalRun, system: System, item: QAItem) -> dict[str, Any]:
    try:
        if run.options.mode == "retrieval":
            out = system.retrieve(item, RETRIEVAL_K)
            return {
                "scores": score_retrieval(item, out),
                "latency_ms": out.latency_ms,
                "retrieved": [[p.file, p.start, p.end] for p in out.passages],
                **out.extra,
            }
        answer = system.answer(item)
        return {
            "scores": score_answer(item, answer),
            "latency_ms": answer.latency_ms,
            "answer": answer.text,
            "refused": answer.refused,
            "context": [[p.file, p.start, p.end] for p in answer.context],
            "cited": None if answer.cited is None else [p.file for p in answer.cited],
            **answer.extra,
        }
    except Exception as exc:  # one broken question must not lose a long run
        log.exception("%s failed on %s", system.name, item.id)
        run.errors.append({"system": system.name, "id": item.id, "error": repr(exc)})
        return {"scores": {}, "latency_ms": {}, "error": repr(exc)}


def _summarise(run: EvalRun) -> None:
    by_id = {q.id: q for q in run.items}
    for name in run.systems:
        rows = [(by_id[r["id"]], r["systems"][name]["scores"]) for r in run.questions]
        run.summary[name] = summarise(rows, run.metric_names)
        run.latency[name] = latency_summary(r["systems"][name]["latency_ms"] for r in run.questions)
