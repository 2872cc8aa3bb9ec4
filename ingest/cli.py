"""Terminal front end of the ingestion job: a rich progress bar and a summary table."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from chatbot.container import Container
from ingest.jobs import IngestJob, IngestReport


class RichProgress:
    """Progress over files, with the running chunk count."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files · {task.fields[chunks]} chunks · {task.fields[current]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = self.bar.add_task("ingest", total=0, chunks=0, current="")
        self.chunks = 0

    def start(self, total_files: int) -> None:
        self.bar.update(self.task, total=total_files)
        self.bar.start()

    def advance(self, path: Path, chunks: int) -> None:
        self.chunks += chunks
        self.bar.update(self.task, advance=1, chunks=self.chunks, current=path.name[:40])

    def stop(self) -> None:
        self.bar.stop()


def run_ingest(
    container: Container,
    paths: list[Path],
    *,
    user: str | None,
    group: str | None,
    prune: bool,
    console: Console,
) -> IngestReport:
    progress = RichProgress(console)
    job = IngestJob(
        store=container.store,
        embedder=container.embed_model,  # type: ignore[arg-type]
        settings=container.settings.ingest,
        progress=progress,
    )
    try:
        report = job.run(paths, user=user, group=group, prune=prune)
    finally:
        progress.stop()
    print_report(report, console)
    return report


def print_report(report: IngestReport, console: Console) -> None:
    table = Table(title="Ingestion summary", show_header=False)
    rows = [
        ("files", report.files),
        ("added", report.added),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
        ("pruned", report.pruned),
        ("chunks embedded", report.chunks),
        ("skipped", len(report.skipped)),
        ("failed", len(report.failed)),
        ("seconds", f"{report.seconds:.1f}"),
        ("chunks/s", f"{report.chunks_per_second:.1f}"),
    ]
    if report.orphans_removed:
        rows.append(("orphan vectors removed", report.orphans_removed))
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)
    for label, items in (("skipped", report.skipped), ("failed", report.failed)):
        for path, reason in items:
            console.print(f"[yellow]{label}[/]: {path}: {reason}")
