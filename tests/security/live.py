"""The security battery's live target: the real app under uvicorn on 127.0.0.1 (fake models).

``live_server`` builds a data dir, a container with the battery's fake model, a small public
corpus, three accounts (alice, bob, admin) whose private objects carry canaries, two widget
sites (W1 allows ``https://a.example``, W2 has an empty allow-list), and serves the app with the
Gradio UI on a free loopback port. Everything the server logs at INFO goes to ``log_path`` so
tests can grep it for canaries.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import make_pdf
from tests.security import fakes
from tests.web.conftest import make_ingester, parse_sse, write_corpus
from tests.web.live import free_port, serve_app

PASSWORD = "correct horse battery"
W1_ORIGIN = "https://a.example"
TOPICS = {
    "alice": "zebrafish aquarium pump",
    "bob": "violin bow rosin",
    "carol": "sourdough starter hydration",
}
LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "chatbot", "gradio")


def canary(user: str, kind: str) -> str:
    return f"CANARY-{user}-{kind}-{uuid.uuid4().hex}"


@dataclass
class Account:
    name: str
    id: str
    client: httpx.Client
    canaries: dict[str, str] = field(default_factory=dict)
    doc_ids: list[str] = field(default_factory=list)
    conversation_id: str = ""
    message_id: str = ""

    @property
    def topic(self) -> str:
        return TOPICS.get(self.name, "bicycle chain")


@dataclass
class Live:
    url: str
    container: Any
    data_dir: Path
    log_path: Path
    accounts: dict[str, Account]
    sites: dict[str, Any]

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)

    def all_canaries(self, owner: str) -> list[str]:
        return list(self.accounts[owner].canaries.values())


def make_settings(data_dir: Path, **web: Any) -> Any:
    from chatbot.settings import EmbeddingSettings, LLMSettings, Settings, WebSettings

    return Settings(
        environment="test",
        data_dir=data_dir,
        llm=LLMSettings(mode="fake"),
        embedding=EmbeddingSettings(mode="fake"),
        web=WebSettings(**{"max_upload_mb": 1.0, **web}),
    )


def chat(client: httpx.Client, message: str, **body: Any) -> list[tuple[str, dict[str, Any]]]:
    r = client.post("/api/chat", json={"message": message, **body})
    assert r.status_code == 200, r.text
    return parse_sse(r.text)


def done(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    found = [data for event, data in events if event == "done"]
    assert found, events
    return found[-1]


def signup(url: str, name: str) -> tuple[str, httpx.Client]:
    client = httpx.Client(base_url=url, timeout=60)
    r = client.post("/api/auth/signup", json={"username": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return r.json()["user"]["id"], client


def plant(live_url: str, container: Any, name: str, tmp: Path) -> Account:
    """An account whose document, PDF metadata, conversation, feedback and profile hold canaries."""
    user_id, client = signup(live_url, name)
    acct = Account(name, user_id, client)
    c = acct.canaries
    for kind in ("doc", "pdfmeta", "pdfbody", "chat", "feedback", "persona", "interest"):
        c[kind] = canary(name, kind)
    note = f"# {name} private notes\n\nThe {acct.topic} needs care every 9 days. Code word {c['doc']}.\n"
    r = client.post("/api/documents", files={"file": ("notes.md", note.encode(), "text/markdown")})
    assert r.status_code == 201, r.text
    acct.doc_ids.append(r.json()["document"]["id"])
    pdf = make_pdf(
        tmp / f"{name}-report.pdf", [f"{acct.topic} report {c['pdfbody']}"], c["pdfmeta"]
    )
    r = client.post(
        "/api/documents", files={"file": ("report.pdf", pdf.read_bytes(), "application/pdf")}
    )
    assert r.status_code == 201, r.text
    acct.doc_ids.append(r.json()["document"]["id"])
    answer = done(chat(client, f"My project codename is {c['chat']}. How do I clean my chain?"))
    acct.conversation_id, acct.message_id = answer["conversation_id"], answer["message_id"]
    r = client.post(
        "/api/feedback",
        json={
            "message_id": acct.message_id,
            "rating": "down",
            "reason": "other",
            "comment": c["feedback"],
        },
    )
    assert r.status_code == 200, r.text
    container.profiles.set_fact(user_id=user_id, field="persona", value=c["persona"])
    from chatbot.domain import InterestUpdate

    container.profiles.store.add_interest_evidence(
        user_id=user_id,
        updates=[InterestUpdate(c["interest"].lower(), c["interest"], 3.0, {"kind": "test"}, True)],
    )
    return acct


@contextlib.contextmanager
def capture_logs(path: Path) -> Iterator[None]:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:  # INFO everywhere, whatever earlier tests or the CLI set
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.close()


@contextlib.contextmanager
def live_server(
    base: Path, *, ui: bool = True, accounts: tuple[str, ...] = ("alice", "bob"), **web: Any
) -> Iterator[Live]:
    from chatbot.container import Container
    from chatbot.web.app import create_app

    data = base / "data"
    settings = make_settings(data, **web)
    container = Container(settings)
    fakes.install(container)
    ingester = make_ingester(container)
    ingester([write_corpus(base / "corpus")], user=None)
    app = create_app(container, ingester=ingester, ui=ui)
    log_path = base / "server.log"
    sites = {
        "W1": container.repo.create_widget_site(
            key="sk_w1_" + uuid.uuid4().hex[:8],
            secret="w1-secret",
            origins=[W1_ORIGIN],
            rate_per_minute=5,
            daily_quota=50,
        ),
        "W2": container.repo.create_widget_site(
            key="sk_w2_" + uuid.uuid4().hex[:8], secret="w2-secret", origins=[]
        ),
    }
    with capture_logs(log_path), serve_app(app, free_port()) as url:
        made = {name: plant(url, container, name, base) for name in accounts}
        admin_id, admin_client = signup(url, "admin")
        container.repo.update_account(user_id=admin_id, role="admin")
        made["admin"] = Account("admin", admin_id, admin_client)
        live = Live(url, container, data, log_path, made, sites)
        try:
            yield live
        finally:
            for acct in made.values():
                acct.client.close()
            time.sleep(0.05)
    container.close()


def grep_tree(root: Path, needles: list[str]) -> dict[str, list[str]]:
    """Raw-byte search of every file under ``root``: needle -> files containing it."""
    found: dict[str, list[str]] = {}
    encoded = [(n, n.encode()) for n in needles]
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for needle, raw in encoded:
            if raw in data or needle.lower().encode() in data:
                found.setdefault(needle, []).append(str(path.relative_to(root)))
    return found
