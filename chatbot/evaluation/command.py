"""The ``chatbot eval`` command's logic: run, write the report, print a summary, check floors."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from chatbot.evaluation.datasets import DatasetError
from chatbot.evaluation.gate import check_floors
from chatbot.evaluation.report import OURS, write_report
from chatbot.evaluation.runner import EvalOptions, EvalRun, run_eval
from chatbot.settings import Settings

REPORTS_DIR = Path("reports")


def default_out_dir(run: EvalRun) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return REPORTS_DIR / f"{run.dataset.name}-{run.options.mode}-{stamp}"


def print_summary(run: EvalRun, console: Console) -> None:
    table = Table(title=f"{run.dataset.name} · {run.options.mode} · {len(run.items)} questions")
    table.add_column("metric")
    for name in run.systems:
        table.add_column(name, justify="right")
    for metric in run.metric_names:
        values = [run.summary[s]["all"]["metrics"].get(metric) for s in run.systems]
        if all(v is None for v in values):
            continue
        table.add_row(metric, *("–" if v is None else f"{v:.3f}" for v in values))
    console.print(table)


def evaluate(options: EvalOptions, settings: Settings, console: Console) -> int:
    """Run an evaluation end to end; the exit code is 1 if a floor is breached, 2 on bad input."""
    try:
        run = run_eval(options, settings, console)
    except DatasetError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    out_dir = options.out_dir or default_out_dir(run)
    written = write_report(run, settings, out_dir)
    if options.out_dir is None:
        latest = REPORTS_DIR / "latest"
        shutil.rmtree(latest, ignore_errors=True)
        shutil.copytree(out_dir, latest)
    print_summary(run, console)
    console.print(f"report: {written[1]} ({run.runtime_s.get('total', 0):.1f} s)")
    if run.errors:
        console.print(f"[yellow]{len(run.errors)} question(s) failed; see the report[/]")
    if options.floors is not None:
        breaches = check_floors(run, options.floors)
        for breach in breaches:
            console.print(f"[red]regression:[/] {OURS} {breach}")
        if breaches:
            return 1
        console.print(f"[green]floors of {options.floors} hold[/]")
    return 0


def evaluate_personalisation_command(
    corpus: Path, questions: Path, settings: Settings, out_dir: Path | None, console: Console
) -> int:
    """``chatbot eval CORPUS --personalisation``: the lift table, written to ``out_dir``.

    Exit code 0 (the report says whether each target is met), 2 on bad input.
    """
    from chatbot.evaluation.personalisation import evaluate_personalisation, markdown_table

    if not corpus.is_dir() or not questions.is_file():
        console.print(f"[red]error:[/] need a corpus folder and {questions.name} ({questions})")
        return 2
    out = out_dir or REPORTS_DIR / f"personalisation-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    result, written = evaluate_personalisation(
        corpus, questions, settings, out, progress=lambda m: console.print(f"[dim]{m}[/]")
    )
    console.print(markdown_table(result), soft_wrap=True)
    console.print(f"report: {written[1]} ({result['setup']['runtime_s']:.1f} s)")
    return 0
