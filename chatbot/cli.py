"""The ``chatbot`` command: thin wrappers that build the container and call services."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chatbot.container import Container
from chatbot.domain import DoneEvent, InvalidInputError, NotFoundError, TokenEvent
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
    for noisy in ("llama_index", "sentence_transformers", "httpx", "jieba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
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
    owner = container.repo.ensure_user(username=user).id if user else None
    report = run_ingest(container, paths, user=owner, group=group, prune=prune, console=console)
    container.close()
    if report.failed and not (report.added or report.updated or report.unchanged):
        raise typer.Exit(1)


def _print_done(done: DoneEvent) -> None:
    typer.echo("")
    if done.citations:
        typer.echo("\nSources:")
        for c in done.citations:
            typer.echo(f"  [{c.number}] {c.title} — {c.source}")
            typer.echo(f"      “{c.quote}”")
    console.print(
        f"[dim]conversation {done.conversation_id} · message {done.message_id} · "
        f"{done.trace['latency_ms'].get('total_ms', 0) / 1000:.1f} s[/]"
    )


def _answer(
    container: Container, user_id: str, question: str, conversation: str | None
) -> DoneEvent:
    from chatbot.domain import readable_acls

    done: DoneEvent | None = None
    for event in container.chat.stream(
        user_id=user_id, message=question, acls=readable_acls(user_id), conversation_id=conversation
    ):
        if isinstance(event, TokenEvent):
            typer.echo(event.text, nl=False)
        elif isinstance(event, DoneEvent):
            done = event
    assert done is not None
    _print_done(done)
    return done


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    user: Annotated[str, typer.Option(help="Ask as this user (created if new).")] = "cli",
    conversation: Annotated[
        str | None, typer.Option(help="Continue this conversation (id printed after answers).")
    ] = None,
) -> None:
    """Ask one question; the answer streams, followed by its sources."""
    container = _container()
    try:
        user_id = container.repo.ensure_user(username=user).id
        _answer(container, user_id, question, conversation)
    except (InvalidInputError, NotFoundError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    finally:
        container.close()


@app.command()
def chat(user: Annotated[str, typer.Option(help="Chat as this user.")] = "cli") -> None:
    """Interactive chat in the terminal (/new starts over, /up or /down rates, /quit leaves)."""
    container = _container()
    user_id = container.repo.ensure_user(username=user).id
    conversation: str | None = None
    last: DoneEvent | None = None
    console.print("[bold]Ask a question.[/] Commands: /new, /up, /down [reason], /quit")
    while True:
        try:
            line = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if line in {"/quit", "/exit"}:
            break
        if line == "/new":
            conversation, last = None, None
            continue
        if line.startswith(("/up", "/down")):
            if last is None:
                console.print("nothing to rate yet")
                continue
            rating, _, reason = line[1:].partition(" ")
            try:
                container.chat.rate(
                    user_id=user_id,
                    message_id=last.message_id,
                    rating=rating,
                    reason=reason or None,
                )
                console.print("thanks, rating saved")
            except InvalidInputError as exc:
                console.print(f"[red]error:[/] {exc}")
            continue
        if not line:
            continue
        try:
            last = _answer(container, user_id, line, conversation)
            conversation = last.conversation_id
        except InvalidInputError as exc:
            console.print(f"[red]error:[/] {exc}")
    container.close()


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
