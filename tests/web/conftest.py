"""Web fixtures: an app on the fake models with a tiny corpus, API clients, SSE parsing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"

CHAIN_DOC = """# Chain care

Clean and lubricate the bicycle chain every 300 kilometres. Use a degreaser and a stiff brush,
let the chain dry, then put one drop of lubricant on each roller and wipe off the excess.
"""
TEA_DOC = """# 绿茶冲泡

冲泡绿茶的水温应在八十度左右。水太烫会让茶叶变苦，水太凉则香气不足。
"""


def make_ingester(container: Any) -> Callable[..., Any]:
    """What ``chatbot serve`` hands to create_app: the real ingestion job on the container."""
    from ingest.jobs import IngestJob

    def run(paths: Sequence[Path], *, user: str | None) -> Any:
        job = IngestJob(
            store=container.store,
            embedder=container.embed_model,
            settings=container.settings.ingest,
        )
        return job.run(list(paths), user=user)

    return run


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chain-care.md").write_text(CHAIN_DOC, encoding="utf-8")
    (folder / "green-tea.md").write_text(TEA_DOC, encoding="utf-8")
    return folder


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """SSE frames as (event, data) pairs; comments (keep-alives) are skipped."""
    events = []
    for frame in text.split("\n\n"):
        event, data = "message", ""
        for line in frame.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
        if data:
            events.append((event, json.loads(data)))
    return events


@pytest.fixture
def web_container(container: Any, tmp_path: Path) -> Any:
    ingest = make_ingester(container)
    ingest([write_corpus(tmp_path / "corpus")], user=None)
    return container


@pytest.fixture
def app(web_container: Any) -> Any:
    from chatbot.web.app import create_app

    return create_app(web_container, ingester=make_ingester(web_container), ui=False)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def new_client(app: Any) -> Iterator[Callable[[], TestClient]]:
    """Separate cookie jars (one per simulated browser) on the same app."""
    made: list[TestClient] = []

    def make() -> TestClient:
        made.append(TestClient(app))
        return made[-1]

    yield make
    for c in made:
        c.close()


def signup(client: TestClient, name: str, password: str = "password123") -> dict[str, Any]:
    response = client.post("/api/auth/signup", json={"username": name, "password": password})
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()["user"]
    return user


def ask(client: TestClient, message: str, **extra: Any) -> list[tuple[str, dict[str, Any]]]:
    response = client.post("/api/chat", json={"message": message, **extra})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


def done_of(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    done = [data for event, data in events if event == "done"]
    assert done, events
    return done[-1]
