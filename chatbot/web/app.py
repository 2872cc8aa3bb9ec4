"""The one FastAPI app: API under /api, UI at /ui, widget at /widget.js."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse

from chatbot import __version__
from chatbot.container import Container


def create_app(container: Container) -> FastAPI:
    app = FastAPI(title="chatbot", version=__version__, docs_url="/docs")
    app.state.container = container

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui")

    @app.get("/api/health")
    def health() -> dict[str, object]:
        return {"status": "ok", "version": __version__, "store": container.store.stats()}

    @app.get("/ui", include_in_schema=False)
    def ui() -> HTMLResponse:
        stats = container.store.stats()
        return HTMLResponse(
            f"<!doctype html><title>chatbot</title><h1>chatbot {__version__}</h1>"
            f"<p>{stats['documents']} documents, {stats['chunks']} chunks indexed.</p>"
        )

    return app
