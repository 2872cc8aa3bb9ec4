"""The one FastAPI app: UI at /ui, HTTP API under /api (docs at /docs), widget at /widget.js.

Routes are thin: they resolve who is asking (``context``) and call ``ChatService``, the
Repository or ``UserDocuments``; nothing here knows how answers are made.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from chatbot import __version__
from chatbot.container import Container
from chatbot.web import pages, routes_auth, routes_chat, routes_documents, routes_profile
from chatbot.web.context import Ctx, WebContext
from chatbot.web.documents import Ingester
from chatbot.web.errors import install_error_handlers
from chatbot.web.middleware import WebSecurityMiddleware
from chatbot.web.pages import STATIC_DIR, LoginRedirect

DESCRIPTION = """Grounded, cited answers over your documents.

* Sign in with `POST /api/auth/login` (or sign up); the session is an HttpOnly cookie.
* `POST /api/chat` streams Server-Sent Events: `sources`, `token`..., then `done` (or `error`);
  `done` has `recommendations` and the personalisation `explanation`.
* `/api/profile` shows and edits what personalisation learned; `/api/me/export` and
  `DELETE /api/me` give your data / erase it.
* Widget requests carry `X-Site-Key` (and `X-Visitor-Token` or a host-signed `X-User-Token`)
  and must come from one of the site's origins.
* Errors are always `{"error": {"code": ..., "message": ...}}`.
"""


def create_app(
    container: Container, *, ingester: Ingester | None = None, ui: bool = True
) -> FastAPI:
    """Build the app. ``ingester`` enables uploads and re-ingestion; ``ui=False`` skips Gradio."""
    context = WebContext.build(container, ingester)
    app = FastAPI(
        title="chatbot",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    app.state.container = container
    app.state.web = context
    install_error_handlers(app)
    for module in (pages, routes_auth, routes_chat, routes_documents, routes_profile):
        app.include_router(module.router)

    @app.get("/api/health", tags=["service"], summary="Liveness, store size and queue depth")
    def health(context: Ctx) -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "store": container.store.stats(),
            "queue": context.gate.stats(),
        }

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="chatbot API")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if ui:
        from chatbot.web.ui import mount_ui

        mount_ui(app, context)
    app.add_middleware(LoginRedirect, context=context)
    web = container.settings.web
    app.add_middleware(
        WebSecurityMiddleware,
        origin_allowed=context.widget.allowed_origin,
        frame_ancestors=web.frame_ancestors,
        json_limit=web.max_json_kb * 1024,
        upload_limit=int(web.max_upload_mb * 1_000_000),
    )
    return app
