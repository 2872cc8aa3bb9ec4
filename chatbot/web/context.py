"""What the routes and the UI share: one ``WebContext`` per app, and request identities.

``current_principal`` is the only way a route learns who is asking: a widget request (with
``X-Site-Key``) is checked by the WidgetGate and never uses cookies; anything else needs the
session cookie, and a state-changing request with a foreign ``Origin`` is refused (CSRF).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request

from chatbot.container import Container
from chatbot.web.auth import SESSION_COOKIE, Accounts, Principal
from chatbot.web.documents import Ingester, UserDocuments
from chatbot.web.errors import ApiError
from chatbot.web.gate import GenerationGate
from chatbot.web.widget import WidgetGate

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class WebContext:
    """Services of the web layer, built once by ``create_app``."""

    container: Container
    accounts: Accounts
    widget: WidgetGate
    documents: UserDocuments
    gate: GenerationGate
    ingester: Ingester | None = None
    project_root: Path = PROJECT_ROOT

    @property
    def repo(self) -> Any:
        return self.container.repo

    @classmethod
    def build(cls, container: Container, ingester: Ingester | None) -> WebContext:
        settings = container.settings
        web = settings.web
        external, slots = None, web.max_concurrent_chats
        if settings.llm.mode == "local":
            from chatbot.models.local_chat import queue_depth

            # The local model generates one answer at a time (a process-wide lock): a second
            # slot would only move the wait out of sight, into the model's lock, where the
            # caller is told nothing (load test: p95 after the reported wait 3.9x -> see docs).
            slots = 1

            external = queue_depth
        return cls(
            container=container,
            accounts=Accounts(
                container.repo, web, secret_key=settings.secret_key.get_secret_value()
            ),
            widget=WidgetGate(container.repo, web),
            documents=UserDocuments(
                container.store,
                settings.data_dir / "uploads",
                ingester,
                int(web.max_upload_mb * 1_000_000),
            ),
            gate=GenerationGate(
                slots=slots,
                max_waiting=web.max_queued_chats,
                timeout_s=web.queue_timeout_s,
                external_depth=external,
            ),
            ingester=ingester,
        )


def get_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context


Ctx = Annotated[WebContext, Depends(get_context)]


def own_origin(request: Request) -> str:
    """This server's origin as the browser sees it (scheme + Host header)."""
    return f"{request.url.scheme}://{request.headers.get('host', '')}".lower()


def client_ip(request: Request) -> str:
    """The client's address; ``X-Forwarded-For`` counts only from ``web.trusted_proxies``."""
    return get_context(request).widget.client(request)


def session_principal(context: WebContext, token: str | None) -> Principal | None:
    """The signed-in user of a session cookie value, or None."""
    user = context.accounts.user_for_session(token)
    return Principal.of(user) if user is not None else None


def current_principal(request: Request, context: Ctx) -> Principal:
    """The caller of an API route (widget visitor or signed-in user); 401/403 otherwise."""
    if context.widget.is_widget_request(request):
        return context.widget.principal(request)
    origin = request.headers.get("origin")
    if request.method not in SAFE_METHODS and origin and origin.lower() != own_origin(request):
        raise ApiError(403, "cross-origin requests need a site key", code="cross_origin")
    principal = session_principal(context, request.cookies.get(SESSION_COOKIE))
    if principal is None:
        raise ApiError(401, "sign in first (POST /api/auth/login)")
    return principal


def current_user(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """A signed-in account (widget visitors are refused)."""
    if principal.site_id is not None:
        raise ApiError(403, "not available to widget visitors")
    return principal


AnyCaller = Annotated[Principal, Depends(current_principal)]
SignedIn = Annotated[Principal, Depends(current_user)]
