"""``chatbot backup DIR`` and ``chatbot restore DIR`` (see ``chatbot.backup``)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chatbot.settings import get_settings

console = Console(stderr=True)


def backup_command(
    dest: Annotated[Path, typer.Argument(help="A new, empty folder outside the data folder.")],
) -> None:
    """Back up the database, the store (one generation, taken under its write lock) and uploads."""
    from chatbot.backup import BackupError, backup

    try:
        manifest = backup(get_settings(), dest)
    except BackupError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"backup written to {dest} in {manifest['seconds']} s: {manifest['store']}")


def restore_command(
    src: Annotated[Path, typer.Argument(help="A folder written by `chatbot backup`.")],
    deletion_log: Annotated[
        list[Path] | None,
        typer.Option(help="More deletion logs to replay (e.g. from a newer backup); repeatable."),
    ] = None,
    keep_previous: Annotated[
        bool, typer.Option(help="Keep the replaced data in <data_dir>/.pre-restore/.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace the current data with a backup, then erase again every user deleted since."""
    from chatbot.backup import BackupError, restore

    settings = get_settings()
    if not yes:
        typer.confirm(
            f"Replace the data in {settings.data_dir} with {src}? Stop the server first.",
            abort=True,
        )
    try:
        report = restore(
            settings,
            src,
            deletion_logs=deletion_log or [],
            keep_previous=keep_previous,
            progress=console.print,
        )
    except BackupError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(asdict(report), indent=2))
