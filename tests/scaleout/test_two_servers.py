"""Two ``chatbot serve`` processes on one PostgreSQL + Milvus serve the same users consistently.

Each server gets its own (empty) data folder, so anything that only lived on one machine's
disk or in one process's memory would show up as a failure: sessions, conversations,
feedback, the login throttle and the widget quota must all hold across both.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.scaleout.conftest import Services, need_milvus

ROOT = Path(__file__).resolve().parents[2]
CHATBOT = Path(sys.executable).with_name("chatbot")
PASSWORD = "correct horse battery"
ORIGIN = "https://host.example"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _events(body: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in body.split("\n\n"):
        lines = dict(
            line.split(": ", 1)
            for line in frame.splitlines()
            if ": " in line and not line.startswith(":")
        )
        if "event" in lines:
            out.append((lines["event"], json.loads(lines.get("data", "{}"))))
    return out


def _chat(
    client: httpx.Client, message: str, conversation: str | None = None, **headers: str
) -> dict[str, Any]:
    body = {"message": message, **({"conversation_id": conversation} if conversation else {})}
    response = client.post("/api/chat", json=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    events = _events(response.text)
    assert events and events[-1][0] == "done", events
    return events[-1][1]


@pytest.fixture(scope="module")
def module_services() -> Iterator[Services]:
    made = Services([], [])
    yield made
    made.cleanup()


@pytest.fixture(scope="module")
def deployment(
    module_services: Services, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    services = module_services
    tmp_path = tmp_path_factory.mktemp("deployment")
    database = services.database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOT_")}
    env.update(
        CHATBOT_ENVIRONMENT="test",
        CHATBOT_LLM__MODE="fake",
        CHATBOT_EMBEDDING__MODE="fake",
        CHATBOT_DATABASE__URL=database,
        CHATBOT_STORE__BACKEND="milvus",
        CHATBOT_STORE__URI=need_milvus(),
        CHATBOT_STORE__TABLE=services.collection(),
        CHATBOT_STORE__CATALOG_URL=database,
        CHATBOT_SECRET_KEY="two-servers-test-secret",
        GRADIO_ANALYTICS_ENABLED="False",
    )
    # the documents, ingested once by a CLI process with its own data dir
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "chain.md").write_text(
        "# Chain care\n\nClean the bike chain every 300 km with a degreaser."
    )
    (docs / "tomato.md").write_text("# Tomatoes\n\nTomato seedlings are transplanted at 15 cm.")
    subprocess.run(
        [str(CHATBOT), "ingest", str(docs)],
        env={**env, "CHATBOT_DATA_DIR": str(tmp_path / "ingest-data")},
        check=True,
        timeout=300,
        capture_output=True,
    )
    return env


@pytest.fixture(scope="module")
def servers(
    deployment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    tmp_path = tmp_path_factory.mktemp("servers")
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for name in ("a", "b"):
            port = _free_port()
            env = {**deployment, "CHATBOT_DATA_DIR": str(tmp_path / f"server-{name}")}
            log = open(tmp_path / f"server-{name}.log", "wb")  # noqa: SIM115 (closed with the process)
            procs.append(
                subprocess.Popen(
                    [str(CHATBOT), "serve", "--port", str(port)],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc, name in zip(urls, procs, "ab", strict=True):
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log_text = (tmp_path / f"server-{name}.log").read_text(errors="replace")[-3000:]
                    pytest.fail(f"server {name} did not start:\n{log_text}")
                time.sleep(0.5)
        yield urls
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def test_conversation_started_on_one_server_continues_on_the_other(servers: list[str]) -> None:
    a = httpx.Client(base_url=servers[0])
    response = a.post("/api/auth/signup", json={"username": "roamer", "password": PASSWORD})
    assert response.status_code == 201, response.text
    b = httpx.Client(base_url=servers[1], cookies=a.cookies)  # the same browser, other replica
    assert b.get("/api/me").json()["user"]["username"] == "roamer"

    first = _chat(a, "How often should I clean the bike chain?")
    assert "300 km" in first["answer"]
    second = _chat(b, "And with what?", first["conversation_id"])
    assert second["conversation_id"] == first["conversation_id"]
    messages = a.get(f"/api/conversations/{first['conversation_id']}/messages").json()
    items = messages["messages"] if isinstance(messages, dict) else messages
    assert [m["role"] for m in items] == ["user", "assistant", "user", "assistant"]

    rated = b.post("/api/feedback", json={"message_id": first["message_id"], "rating": "up"})
    assert rated.status_code == 200, rated.text
    titles = [c["title"] for c in a.get("/api/conversations").json()["conversations"]]
    assert len(titles) == 1

    assert a.post("/api/auth/logout").status_code == 204  # ends the session on both replicas
    assert b.get("/api/me").status_code == 401


def test_login_throttle_and_widget_quota_hold_across_servers(
    servers: list[str], deployment: dict[str, str]
) -> None:
    a, b = httpx.Client(base_url=servers[0]), httpx.Client(base_url=servers[1])
    assert (
        a.post("/api/auth/signup", json={"username": "target", "password": PASSWORD}).status_code
        == 201
    )
    for i in range(5):  # 5 failures a minute lock the name: spread over both replicas
        client = (a, b)[i % 2]
        bad = client.post(
            "/api/auth/login", json={"username": "target", "password": "wrong-password"}
        )
        assert bad.status_code == 401, bad.text
    locked = b.post("/api/auth/login", json={"username": "target", "password": PASSWORD})
    assert locked.status_code == 429, locked.text

    from chatbot.db.engine import make_engine
    from chatbot.db.repos import Repository

    engine = make_engine(deployment["CHATBOT_DATABASE__URL"])
    Repository(engine).create_widget_site(
        key="sk_two_servers", secret="s" * 32, origins=[ORIGIN], rate_per_minute=100, daily_quota=3
    )
    engine.dispose()
    headers = {"X-Site-Key": "sk_two_servers", "Origin": ORIGIN}
    for i in range(3):
        _chat((a, b)[i % 2], "How often should I clean the bike chain?", **headers)
    over = a.post("/api/chat", json={"message": "one more"}, headers=headers, timeout=60)
    assert over.status_code == 429, over.text
    assert (
        b.post("/api/chat", json={"message": "one more"}, headers=headers, timeout=60).status_code
        == 429
    )
