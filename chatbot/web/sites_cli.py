"""``chatbot sites ...`` (widget site keys) and ``chatbot users add|set-role|list`` (accounts).

Admins are made here, never by signing up first: ``chatbot users add NAME --admin`` (or
``chatbot users set-role NAME admin`` for an existing account). The CLI registers these with
``app.add_typer(sites_app, name="sites")`` and ``add_account_commands(users_app)``.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from chatbot.domain import InvalidInputError, NotFoundError

sites_app = typer.Typer(help="Sites allowed to embed the chat widget.", no_args_is_help=True)


def _repo() -> Any:
    from chatbot.container import Container
    from chatbot.settings import get_settings

    return Container(get_settings()).repo


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


@sites_app.command("add")
def sites_add(
    origin: Annotated[
        list[str],
        typer.Option(
            "--origin", help="Exact origin allowed to embed (repeatable), e.g. https://example.org"
        ),
    ],
    name: Annotated[str, typer.Option(help="A label for people.")] = "",
    rate_per_minute: Annotated[
        int | None, typer.Option(help="Chats per minute (all visitors).")
    ] = None,
    daily_quota: Annotated[
        int | None, typer.Option(help="Chats per UTC day (all visitors).")
    ] = None,
) -> None:
    """Register a site: prints its public key, its secret and the snippet to paste."""
    from chatbot.settings import get_settings
    from chatbot.web.widget import new_site_credentials, normalise_origin

    web = get_settings().web
    try:
        origins = [normalise_origin(o) for o in origin]
        key, secret = new_site_credentials()
        site = _repo().create_widget_site(
            key=key,
            secret=secret,
            origins=origins,
            name=name,
            rate_per_minute=rate_per_minute or web.widget_rate_per_minute,
            daily_quota=daily_quota or web.widget_daily_quota,
        )
    except InvalidInputError as exc:
        raise _fail(exc) from exc
    typer.echo(f"site key:  {site.key}")
    typer.echo(f"secret:    {site.secret}   (signs host user tokens; keep it on the server)")
    typer.echo(f"origins:   {' '.join(site.origins)}")
    typer.echo(f"limits:    {site.rate_per_minute}/minute, {site.daily_quota}/day")
    typer.echo("snippet:")
    typer.echo(
        f'  <script src="https://YOUR-CHATBOT-HOST/widget.js" data-site-key="{site.key}" async></script>'
    )


@sites_app.command("list")
def sites_list() -> None:
    """Registered sites (without secrets)."""
    rows = [
        {
            "key": s.key,
            "name": s.name,
            "origins": s.origins,
            "rate_per_minute": s.rate_per_minute,
            "daily_quota": s.daily_quota,
            "enabled": s.enabled,
        }
        for s in _repo().list_widget_sites()
    ]
    typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))


@sites_app.command("remove")
def sites_remove(key: Annotated[str, typer.Argument(help="The site key.")]) -> None:
    """Remove a site; its widget stops working at once."""
    try:
        _repo().delete_widget_site(key=key)
    except NotFoundError as exc:
        raise _fail(exc) from exc
    typer.echo("removed")


@sites_app.command("token")
def sites_token(
    key: Annotated[str, typer.Argument(help="The site key.")],
    user_id: Annotated[str, typer.Argument(help="The host site's id for its user.")],
    ttl: Annotated[int, typer.Option(help="Seconds the token stays valid.")] = 3600,
) -> None:
    """Print a host-signed user token (what the host site's server computes)."""
    from chatbot.web.widget import sign_user_token

    site = _repo().get_widget_site(key=key)
    if site is None:
        raise _fail(NotFoundError("site not found"))
    typer.echo(sign_user_token(site.secret, user_id, int(time.time()) + ttl))


def users_add(
    name: Annotated[str, typer.Argument(help="Username.")],
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role.")] = False,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="Password.")
    ] = "",
) -> None:
    """Create an account (the way to make the first administrator)."""
    from chatbot.settings import get_settings
    from chatbot.web.auth import Accounts

    repo = _repo()
    try:
        settings = get_settings()
        accounts = Accounts(repo, settings.web, secret_key=settings.secret_key.get_secret_value())
        user = accounts.signup(name, password, role="admin" if admin else "user")
    except InvalidInputError as exc:
        raise _fail(exc) from exc
    typer.echo(f"created {user.username} ({user.role})")


def users_set_role(
    name: Annotated[str, typer.Argument(help="Username.")],
    role: Annotated[str, typer.Argument(help="user or admin.")],
) -> None:
    """Make an account an administrator, or take the role away."""
    repo = _repo()
    user = repo.get_user_by_name(username=name)
    try:
        if user is None:
            raise NotFoundError("user not found")
        repo.update_account(user_id=user.id, role=role)
    except (InvalidInputError, NotFoundError) as exc:
        raise _fail(exc) from exc
    typer.echo(f"{name} is now {role}")


def users_list() -> None:
    """Accounts (anonymous widget visitors are not listed)."""
    for user in _repo().list_users():
        typer.echo(f"{user.username}\t{user.role}")


def add_account_commands(users: typer.Typer) -> None:
    """Add ``add``, ``set-role`` and ``list`` to the CLI's ``users`` group."""
    users.command("add")(users_add)
    users.command("set-role")(users_set_role)
    users.command("list")(users_list)
