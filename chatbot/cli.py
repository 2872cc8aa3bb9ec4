"""The ``chatbot`` command: thin wrappers that build the container and call services."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from chatbot.backup_cli import backup_command, restore_command
from chatbot.container import Container
from chatbot.domain import DoneEvent, InvalidInputError, NotFoundError, TokenEvent
from chatbot.models.server_errors import ModelServerError
from chatbot.ops_cli import db_app, migrate_command
from chatbot.settings import Settings, get_settings, masked_dump
from chatbot.web.sites_cli import add_account_commands, sites_app

app = typer.Typer(
    help="Personalised RAG question-answering chatbot.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
users_app = typer.Typer(help="Users and their data (export, delete).", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(sites_app, name="sites")
app.add_typer(db_app, name="db")
app.command("migrate")(migrate_command)
app.command("backup")(backup_command)
app.command("restore")(restore_command)
add_account_commands(users_app)
console = Console(stderr=True)

SAMPLES_DIR = Path("data/samples")


def _container() -> Container:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("llama_index", "sentence_transformers", "httpx", "jieba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from chatbot.container import DataDirError

    try:
        return Container(settings)
    except DataDirError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc


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
    if done.recommendations:
        typer.echo("\nYou might also like:")
        for r in done.recommendations:
            typer.echo(f"  - {r.text} ({r.reason})")
    console.print(
        f"[dim]conversation {done.conversation_id} · message {done.message_id} · "
        f"{done.trace['latency_ms'].get('total_ms', 0) / 1000:.1f} s[/]"
    )


def _answer(
    container: Container,
    user_id: str,
    question: str,
    conversation: str | None,
    personalise: bool = True,
) -> DoneEvent:
    from chatbot.domain import readable_acls

    done: DoneEvent | None = None
    streamed = []
    for event in container.chat.stream(
        user_id=user_id,
        message=question,
        acls=readable_acls(user_id),
        conversation_id=conversation,
        personalise=personalise,
    ):
        if isinstance(event, TokenEvent):
            typer.echo(event.text, nl=False)
            streamed.append(event.text)
        elif isinstance(event, DoneEvent):
            done = event
    assert done is not None
    if not done.answer.startswith("".join(streamed).strip()):  # replaced, e.g. "[1] [2]"
        typer.echo(f"\n{done.answer}", nl=False)
    _print_done(done)
    return done


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    user: Annotated[str, typer.Option(help="Ask as this user (created if new).")] = "cli",
    conversation: Annotated[
        str | None, typer.Option(help="Continue this conversation (id printed after answers).")
    ] = None,
    personalise: Annotated[
        bool, typer.Option(help="Use the user's profile (--no-personalise to compare).")
    ] = True,
    explain: Annotated[bool, typer.Option(help="Say what personalisation changed.")] = False,
) -> None:
    """Ask one question; the answer streams, followed by its sources."""
    container = _container()
    try:
        user_id = container.repo.ensure_user(username=user).id
        done = _answer(container, user_id, question, conversation, personalise)
        if explain:
            typer.echo("\nWhy this answer:")
            for line in done.explanation:
                typer.echo(f"  - {line}")
    except (InvalidInputError, NotFoundError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    except ModelServerError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(3) from exc
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


def _user_id(container: Container, username: str) -> str:
    user = container.repo.get_user_by_name(username=username)
    if user is None:
        console.print(f"[red]error:[/] no user named {username!r}")
        raise typer.Exit(2)
    return user.id


@users_app.command("export")
def users_export(
    username: Annotated[str, typer.Argument(help="The user's name.")],
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """All of a user's data as JSON: profile with provenance, conversations, feedback."""
    container = _container()
    data = container.privacy.export(_user_id(container, username))
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if out:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")
    else:
        typer.echo(text)


@users_app.command("delete")
def users_delete(
    username: Annotated[str, typer.Argument(help="The user's name.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a user everywhere: database, private document vectors, uploads."""
    container = _container()
    user_id = _user_id(container, username)
    if not yes:
        typer.confirm(f"Delete {username!r} and all their data?", abort=True)
    removed = container.privacy.delete(user_id)
    console.print(f"deleted {username!r}: {removed}")


@app.command()
def status() -> None:
    """Show what the store holds."""
    container = _container()
    stats = container.store.stats()
    typer.echo(json.dumps(stats, indent=2))


def _web_ingester(container: Container) -> Any:
    """Uploads and the admin's re-ingest run the same IngestJob as ``chatbot ingest``.

    ``chatbot.web`` may not import ``ingest`` (a layer contract), so the job is handed in here.
    """
    from ingest.jobs import IngestJob

    def run(paths: Sequence[Path], *, user: str | None) -> Any:
        job = IngestJob(
            store=container.store,
            embedder=container.embed_model,  # type: ignore[arg-type]
            settings=container.settings.ingest,
        )
        return job.run(list(paths), user=user)

    return run


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
    if settings.llm.mode == "local":
        _prepare_local_model(container)
    uvicorn.run(
        create_app(container, ingester=_web_ingester(container)),
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level="info",
    )


def _prepare_local_model(container: Container) -> None:
    """Convert the local LLM before serving (once, ~1-2 min) and load it in the background."""
    import threading

    from chatbot.models.local_weights import ensure_local_model

    settings = container.settings
    ensure_local_model(settings.llm.model, settings.models_dir, progress=console.print)

    def warm_up() -> None:
        try:
            container.embed_model.get_query_embedding("warm up")
            load = getattr(container.chat_model, "load", None)
            if callable(load):
                load()
        except Exception as exc:  # the first request will report it properly
            console.print(f"[yellow]warm-up failed:[/] {exc}")

    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()


@app.command("eval")
def eval_(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (docs/ + qa.jsonl).")],
    mode: Annotated[str, typer.Option(help="retrieval or answer.")] = "retrieval",
    limit: Annotated[int, typer.Option(help="Use N questions, evenly spaced (0 = all).")] = 0,
    baseline: Annotated[
        list[str] | None,
        typer.Option(help="llamaindex-default, bm25 or none; repeatable (default: both)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder.")] = None,
    docs: Annotated[Path | None, typer.Option(help="Documents folder override.")] = None,
    questions: Annotated[Path | None, typer.Option(help="Questions file override.")] = None,
    exclude_ambiguous: Annotated[bool, typer.Option(help="Skip meta.ambiguous items.")] = False,
    floors: Annotated[Path | None, typer.Option(help="Exit 1 below these floors.")] = None,
    cache: Annotated[bool, typer.Option(help="Reuse indexes of unchanged docs.")] = True,
    personalisation: Annotated[
        bool,
        typer.Option(
            "--personalisation",
            help="Measure personalisation lift instead: DATASET is a corpus with topic folders "
            "and questions.jsonl (e.g. data/samples); simulated users, off vs on vs after ratings.",
        ),
    ] = False,
) -> None:
    """Evaluate retrieval or answers on a labelled dataset against baselines; writes a report."""
    from chatbot.evaluation.baselines import BASELINES
    from chatbot.evaluation.command import evaluate, evaluate_personalisation_command
    from chatbot.evaluation.runner import EvalOptions

    if personalisation:
        container = _container()
        code = evaluate_personalisation_command(
            docs or dataset,
            questions or dataset / "questions.jsonl",
            container.settings,
            out,
            console,
        )
        raise typer.Exit(code)
    if mode not in ("retrieval", "answer"):
        raise typer.BadParameter("--mode must be retrieval or answer")
    chosen = tuple(b for b in (baseline or BASELINES) if b != "none")
    container = _container()  # logging set-up, settings
    options = EvalOptions(
        dataset_dir=dataset,
        mode=mode,  # type: ignore[arg-type]
        limit=limit,
        baselines=chosen,
        out_dir=out,
        docs=docs,
        questions=questions,
        exclude_ambiguous=exclude_ambiguous,
        floors=floors,
        use_cache=cache,
    )
    raise typer.Exit(evaluate(options, container.settings, console))


@app.command("eval-compare")
def eval_compare(
    before: Annotated[Path, typer.Argument(help="Report folder or report.json of the old run.")],
    after: Annotated[Path, typer.Argument(help="Report folder or report.json of the new run.")],
    system: Annotated[str, typer.Option(help="Which system of the reports to compare.")] = "ours",
    top: Annotated[int, typer.Option(help="Questions listed per direction.")] = 10,
    out: Annotated[Path | None, typer.Option(help="Also write the Markdown here.")] = None,
) -> None:
    """Compare two eval reports: paired deltas with 95 % intervals, changed settings, movers."""
    from chatbot.evaluation.compare import CompareError, compare, load_report

    try:
        text = compare(load_report(before), load_report(after), system=system, top=top)
    except CompareError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(text, markup=False, highlight=False, soft_wrap=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")


def main() -> None:
    """Console-script entry point."""
    app()
