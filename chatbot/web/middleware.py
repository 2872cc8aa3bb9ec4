"""Our own ASGI middleware: strict CORS, request size limits and security headers.

* CORS exists only under ``/api`` and only for the exact origins of enabled widget sites, never
  with credentials. Any ``Access-Control-*`` header from below (Gradio's CORS middleware echoes
  any origin with credentials when the Host is not localhost, see the security guide 1.4) is
  removed, and preflights outside ``/api`` are refused.
* Bodies larger than the limit get 413 before the app reads them (Content-Length) or as soon as
  the stream passes the limit (chunked uploads).
* Every response gets nosniff, a Referrer-Policy and a CSP suited to the path; ``/ui`` may be
  framed only by the configured origins (``frame-ancestors 'none'`` by default).
* Gradio's file and proxy routes under ``/ui`` (``file=``, ``file/``, ``proxy=``) are closed:
  Gradio serves its upload cache to every signed-in user who knows a path (security guide 1.4,
  measured again by tests/security C5), and our UI never needs them. So are its developer
  routes (``dev/reload`` is an endless event stream polling 20 times a second, open to any
  signed-in user; ``vibe-*``, ``run-history``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CORS_METHODS = "GET, POST, PATCH, DELETE"
CORS_HEADERS = "Content-Type, X-Site-Key, X-Visitor-Token, X-User-Token"
CORS_EXPOSE = "Retry-After"
_ORIGIN_CACHE_S = 2.0

UI_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self'; media-src 'self' blob:; worker-src 'self' blob:; frame-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'"
)
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: "
    "https://fastapi.tiangolo.com; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'"
CLOSED_UI_ROUTES = (
    "/file=",
    "/file/",
    "/proxy=",
    "/dev/",
    "/vibe-",
    "/undo-vibe-edit",
    "/run-history",
)


class WebSecurityMiddleware:
    """CORS, body limits and security headers for the whole app (outermost middleware)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        origin_allowed: Callable[[str], bool],
        frame_ancestors: list[str],
        json_limit: int,
        upload_limit: int,
    ) -> None:
        """``origin_allowed`` decides CORS (exact widget origins); limits are in bytes."""
        self.app = app
        self.origin_allowed = origin_allowed
        self.frame_ancestors = " ".join(frame_ancestors) or "'none'"
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self._cache: dict[str, tuple[float, bool]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        is_api = path == "/api" or path.startswith("/api/")
        if scope["method"] == "OPTIONS" and origin and "access-control-request-method" in headers:
            await self._preflight(is_api and await self._allowed(origin), origin, path, send)
            return
        if _closed_ui_route(path):
            body = {"error": {"code": "not_found", "message": "not found"}}
            await _respond(send, 404, json.dumps(body).encode(), {}, path, self)
            return
        limit = self._limit(path, scope["method"])
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit, send, path, self)
            return
        cors_origin = origin if is_api and origin and await self._allowed(origin) else None
        state = {"received": 0, "too_large": False, "started": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["too_large"] = True
                    return {"type": "http.disconnect"}
            return message

        async def secured_send(message: Message) -> None:
            if state["too_large"]:
                return  # the 413 is sent below instead of whatever the app says
            if message["type"] == "http.response.start":
                state["started"] = True
                self._secure(MutableHeaders(scope=message), path, cors_origin, scope)
            await send(message)

        try:
            await self.app(scope, limited_receive, secured_send)
        except Exception:
            if not state["too_large"]:
                raise
        if state["too_large"] and not state["started"]:
            await _too_large(limit, send, path, self)

    def _limit(self, path: str, method: str) -> int:
        if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return self.json_limit
        if path == "/api/documents" or path.endswith("/gradio_api/upload"):
            return self.upload_limit + 65_536  # multipart framing
        if path.startswith("/api/"):
            return self.json_limit
        return max(self.json_limit, 4_000_000)  # Gradio posts event payloads as JSON

    async def _allowed(self, origin: str) -> bool:
        now = time.monotonic()
        cached = self._cache.get(origin)
        if cached is not None and now - cached[0] < _ORIGIN_CACHE_S:
            return cached[1]
        allowed = await anyio.to_thread.run_sync(self.origin_allowed, origin)
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[origin] = (now, allowed)
        return allowed

    async def _preflight(self, allowed: bool, origin: str, path: str, send: Send) -> None:
        if allowed:
            headers = {
                "access-control-allow-origin": origin,
                "access-control-allow-methods": CORS_METHODS,
                "access-control-allow-headers": CORS_HEADERS,
                "access-control-max-age": "600",
                "vary": "Origin",
            }
            await _respond(send, 204, b"", headers, path, self)
            return
        body = {"error": {"code": "origin_not_allowed", "message": "cross-origin request refused"}}
        await _respond(send, 403, json.dumps(body).encode(), {}, path, self)

    def _secure(
        self,
        headers: MutableHeaders,
        path: str,
        cors_origin: str | None,
        scope: Scope,
        *,
        strip: bool = True,
    ) -> None:
        if strip:  # whatever CORS the app below decided (Gradio) is replaced by ours
            for name in {key.decode().lower() for key, _ in headers.raw}:
                if name.startswith("access-control-"):
                    del headers[name]
        if cors_origin:
            headers["Access-Control-Allow-Origin"] = cors_origin
            headers["Access-Control-Expose-Headers"] = CORS_EXPOSE
            headers.add_vary_header("Origin")
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        if scope.get("scheme") == "https":
            headers["Strict-Transport-Security"] = "max-age=31536000"
        for name, value in self.policy(path).items():
            headers[name] = value

    def policy(self, path: str) -> dict[str, str]:
        """The per-path headers: CSP, framing, resource policy."""
        if path == "/ui" or path.startswith("/ui/"):
            csp = f"{UI_CSP}; frame-ancestors {self.frame_ancestors}"
            extra = {"X-Frame-Options": "DENY"} if self.frame_ancestors == "'none'" else {}
            return {
                "Content-Security-Policy": csp,
                "Cross-Origin-Opener-Policy": "same-origin",
            } | extra
        if path == "/widget.js":
            return {
                "Content-Security-Policy": API_CSP,
                "Cross-Origin-Resource-Policy": "cross-origin",
            }
        if path in ("/docs", "/docs/oauth2-redirect"):
            return {"Content-Security-Policy": DOCS_CSP, "X-Frame-Options": "DENY"}
        if path.startswith("/api/") or path == "/openapi.json":
            return {"Content-Security-Policy": API_CSP, "X-Frame-Options": "DENY"}
        return {
            "Content-Security-Policy": PAGE_CSP,
            "X-Frame-Options": "DENY",
            "Cross-Origin-Opener-Policy": "same-origin",
        }


def _closed_ui_route(path: str) -> bool:
    """Gradio's routes that serve files from its shared cache or proxy URLs (never needed)."""
    if not (path == "/ui" or path.startswith("/ui/")):
        return False
    rest = path[3:]
    rest = rest.removeprefix("/gradio_api")
    return rest.startswith(CLOSED_UI_ROUTES)


async def _respond(
    send: Send, status: int, body: bytes, headers: dict[str, str], path: str, mw: Any
) -> None:
    raw = MutableHeaders(headers=headers)
    raw["content-length"] = str(len(body))
    if body:
        raw["content-type"] = "application/json"
    message: Message = {"type": "http.response.start", "status": status, "headers": raw.raw}
    mw._secure(MutableHeaders(scope=message), path, None, {}, strip=False)
    await send(message)
    await send({"type": "http.response.body", "body": body})


async def _too_large(limit: int, send: Send, path: str, mw: Any) -> None:
    message = f"the request body is larger than the limit of {limit} bytes"
    body = json.dumps({"error": {"code": "too_large", "message": message}}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    mw._secure(MutableHeaders(scope=start), path, None, {}, strip=False)  # CSP, nosniff, ...
    await send(start)
    await send({"type": "http.response.body", "body": body})
