"""Operations commands: ``chatbot db ...`` (schema migrations) and ``chatbot migrate``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from chatbot.settings import get_settings

db_app = typer.Typer(help="The relational schema (Alembic migrations).", no_args_is_help=True)
console = Console(stderr=True)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create or upgrade the database schema (the server also does this at start)."""
    from chatbot.db import schema
    from chatbot.db.engine import make_engine

    engine = make_engine(get_settings().database_url)
    schema.upgrade(engine, revision)
    console.print(f"database at revision {schema.current(engine)}")
    engine.dispose()


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the newest one in this version of the code."""
    from chatbot.db import schema
    from chatbot.db.engine import make_engine

    engine = make_engine(get_settings().database_url)
    typer.echo(json.dumps({"database": schema.current(engine), "head": schema.head()}))
    engine.dispose()


@db_app.command("check")
def db_check() -> None:
    """Exit 1 if the models differ from the migrated database (a migration is missing)."""
    from chatbot.db import schema
    from chatbot.db.engine import make_engine

    engine = make_engine(get_settings().database_url)
    diffs = schema.drift(engine)
    engine.dispose()
    for diff in diffs:
        console.print(f"[red]drift:[/] {diff}")
    if diffs:
        raise typer.Exit(1)
    console.print("models and migrations agree")


@db_app.command("revision")
def db_revision(message: Annotated[str, typer.Option("-m", help="What changed.")]) -> None:
    """Autogenerate a migration from the difference between the models and head."""
    from chatbot.db import schema

    console.print(f"wrote {schema.autogenerate(message)}; review it before committing")


def migrate_command(
    to_database: Annotated[
        str, typer.Option(help="Target SQLAlchemy URL, e.g. postgresql+psycopg://u:p@host/db.")
    ],
    to_milvus: Annotated[str, typer.Option(help="Target Milvus URI, e.g. http://host:19530.")],
    to_catalog: Annotated[
        str | None, typer.Option(help="PostgreSQL URL of the catalog (default: --to-database).")
    ] = None,
    collection: Annotated[
        str | None, typer.Option(help="Milvus collection (default: store.table).")
    ] = None,
) -> None:
    """Copy this embedded deployment (SQLite + LanceDB) to PostgreSQL + Milvus."""
    from chatbot.migrate import migrate

    settings = get_settings()
    try:
        report = migrate(
            settings,
            to_database=to_database,
            to_milvus=to_milvus,
            to_catalog=to_catalog,
            collection=collection,
            progress=console.print,
        )
    except (ValueError, ConnectionError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    if report.missing_vectors:
        console.print(f"[yellow]{len(report.missing_vectors)} chunks had no vector (skipped)")
    console.print("[bold]done.[/] Point every app process at the new deployment with:")
    env = report.target_settings(to_database, to_milvus, to_catalog or to_database)
    for key, value in env.items():
        typer.echo(f"{key}={value}")
