"""Plain pages outside Gradio: sign-in/sign-up at /login, /logout, and the redirect to them."""

from __future__ import annotations

from pathlib import Path

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from chatbot.web.auth import SESSION_COOKIE
from chatbot.web.context import Ctx, WebContext, session_principal

STATIC_DIR = Path(__file__).resolve().parent / "static"
router = APIRouter(include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/login")
def login_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "login.html", headers={"Cache-Control": "no-store"})


@router.get("/logout")
def logout_page(request: Request, context: Ctx) -> RedirectResponse:
    """End the session (same-site navigations only) and go back to the sign-in page."""
    if request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none"):
        context.accounts.end_session(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/widget.js")
def widget_script() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "widget.js",
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )


class LoginRedirect:
    """Send people who are not signed in from the UI page to /login instead of a bare 401."""

    def __init__(self, app: ASGIApp, context: WebContext) -> None:
        """Wraps the whole app; only GET /ui and /ui/ are looked at."""
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] in ("/ui", "/ui/")
        ):
            token = _cookie(Headers(scope=scope), SESSION_COOKIE)
            principal = await anyio.to_thread.run_sync(session_principal, self.context, token)
            if principal is None:
                response = RedirectResponse("/login?next=/ui/", status_code=303)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
