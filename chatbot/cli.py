"""The ``chatbot`` command: thin wrappers that build the container and call services."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chatbot.container import Container
from chatbot.settings import Settings, get_settings, masked_dump

app = typer.Typer(
    help="Personalised RAG question-answering chatbot.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
console = Console(stderr=True)

SAMPLES_DIR = Path("data/samples")


def _container() -> Container:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    return Container(settings)


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (YAML defaults + env overrides), secrets masked."""
    typer.echo(json.dumps(masked_dump(get_settings()), indent=2, ensure_ascii=False))


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    prune: Annotated[bool, typer.Option(help="Remove documents whose files are gone.")] = False,
    user: Annotated[
        str | None, typer.Option(help="Ingest as private documents of this user.")
    ] = None,
    group: Annotated[
        str | None, typer.Option(help="Ingest as private documents of this group.")
    ] = None,
) -> None:
    """Chunk, understand and embed documents into the store (incremental, idempotent)."""
    if user and group:
        raise typer.BadParameter("give --user or --group, not both")
    from ingest.cli import run_ingest

    container = _container()
    report = run_ingest(container, paths, user=user, group=group, prune=prune, console=console)
    container.close()
    if report.failed and not (report.added or report.updated or report.unchanged):
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """Show what the store holds."""
    container = _container()
    stats = container.store.stats()
    typer.echo(json.dumps(stats, indent=2))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    ingest_samples: Annotated[
        bool, typer.Option(help="Ingest data/samples first when the store is empty.")
    ] = False,
) -> None:
    """Serve the chat UI, the HTTP API and the widget."""
    import uvicorn

    from chatbot.web.app import create_app

    container = _container()
    if ingest_samples and container.store.stats()["documents"] == 0 and SAMPLES_DIR.is_dir():
        from ingest.cli import run_ingest

        console.print("[bold]Store is empty: ingesting data/samples ...")
        run_ingest(container, [SAMPLES_DIR], user=None, group=None, prune=False, console=console)
    settings: Settings = container.settings
    uvicorn.run(
        create_app(container),
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level="info",
    )


def main() -> None:
    """Console-script entry point."""
    app()
