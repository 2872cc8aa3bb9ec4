"""F. Concurrency: streamed chats while documents are ingested (0 errors, exact counts), and
SQLite under 8 concurrent writer processes (0 "database is locked", 0 lost updates)
(guide F1-F7, 4.1)."""

from __future__ import annotations

import concurrent.futures
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from chatbot.db.models import Feedback, Message, WidgetUsage
from tests.security.live import Live, live_server, signup
from tests.web.conftest import make_ingester, parse_sse

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(tmp_path_factory.mktemp("concurrency"), ui=False, accounts=(),
                     max_concurrent_chats=4, max_queued_chats=32) as live:  # fmt: skip
        yield live


def _corpus(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        text = " ".join(f"topic{i} cassette derailleur word{i}x{j}" for j in range(80))
        (folder / f"f{i:03d}.md").write_text(f"# F {i}\n\n{text}\n", encoding="utf-8")
    return folder


def test_f1_streamed_chats_while_ingesting(server: Live, tmp_path: Path) -> None:
    users = [signup(server.url, f"reader{i}") for i in range(6)]
    _, uploader = signup(server.url, "uploader")
    ingester = make_ingester(server.container)
    before = server.container.store.stats()["documents"]
    stop = threading.Event()
    ingest_errors: list[BaseException] = []

    def ingest() -> None:
        try:
            ingester([_corpus(tmp_path / "bulk", 30)], user=None)
            for i in range(3):
                r = uploader.post(
                    "/api/documents",
                    files={
                        "file": (
                            f"u{i}.md",
                            f"# U{i}\n\nprivate {i} pump".encode(),
                            "text/markdown",
                        )
                    },
                )
                assert r.status_code == 201, r.text
        except BaseException as exc:
            ingest_errors.append(exc)
        finally:
            stop.set()

    def reader(index: int) -> tuple[int, int, float]:
        _, client = users[index]
        ok = failed = 0
        worst = 0.0
        deadline = time.monotonic() + 120
        rounds = 0
        while (not stop.is_set() or rounds < 3) and time.monotonic() < deadline and rounds < 40:
            t = time.monotonic()
            r = client.post(
                "/api/chat", json={"message": f"How do I adjust the derailleur {index}?"}
            )
            events = parse_sse(r.text) if r.status_code == 200 else []
            if any(e == "done" for e, _ in events) and not any(e == "error" for e, _ in events):
                ok += 1
            else:
                failed += 1
            worst = max(worst, time.monotonic() - t)
            rounds += 1
        return ok, failed, worst

    worker = threading.Thread(target=ingest)
    worker.start()
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(reader, range(6)))
    worker.join(timeout=180)
    assert not ingest_errors, ingest_errors
    assert sum(r[1] for r in results) == 0, results
    ok = sum(r[0] for r in results)
    assert ok >= 18 and max(r[2] for r in results) < 30, results
    store = server.container.store
    assert store.stats()["documents"] == before + 33
    assert store.vector_ids() == store.catalog.all_chunk_ids()
    with Session(server.container.repo.engine) as session:
        readers = [uid for uid, _ in users]
        n = session.exec(
            select(func.count()).select_from(Message).where(Message.user_id.in_(readers))
        ).one()  # type: ignore[attr-defined]
    assert n == 2 * ok, "every answered chat stored exactly one question and one answer"
    for _, client in users:
        client.close()
    uploader.close()


def test_f4_sqlite_with_8_concurrent_writer_processes(tmp_path: Path) -> None:
    from chatbot.db.engine import init_db, make_engine
    from chatbot.db.repos import Repository

    url = f"sqlite:///{tmp_path / 'contention.db'}"
    engine = make_engine(url)
    init_db(engine)
    repo = Repository(engine)
    user = repo.create_user(username="writer")
    conversation = repo.create_conversation(user_id=user.id)
    answer = repo.add_message(
        user_id=user.id, conversation_id=conversation.id, role="assistant", content="a"
    )
    site = repo.create_widget_site(key="sk_c", secret="s", origins=[])
    rounds, workers = 40, 8
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.reliability.writers",
                url,
                site.id,
                user.id,
                conversation.id,
                answer.id,
                str(w),
                str(rounds),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    locked = other = 0
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        a, b = map(int, out.split())
        locked, other = locked + a, other + b
    assert locked == 0, f'{locked} "database is locked"'
    assert other == 0
    with Session(engine) as session:
        usage = session.exec(select(WidgetUsage).where(WidgetUsage.site_id == site.id)).one()
        assert usage.count == rounds * workers, "lost quota updates"
        messages = session.exec(
            select(func.count())
            .select_from(Message)
            .where(Message.conversation_id == conversation.id)
        ).one()
        assert messages == rounds * workers + 1, "lost messages"
        feedback = session.exec(
            select(func.count()).select_from(Feedback).where(Feedback.message_id == answer.id)
        ).one()
        assert feedback == 1, "one feedback row per (user, message)"
    assert session is not None
    engine.dispose()


SOAK_S = float(os.environ.get("CHATBOT_SOAK_SECONDS", "1800"))


@pytest.mark.slow
def test_f6_soak(server: Live, tmp_path: Path) -> None:
    """make test-long: chats from 4 clients plus ingestion every minute for CHATBOT_SOAK_SECONDS;
    0 errors and bounded memory growth."""
    users = [signup(server.url, f"soak{i}") for i in range(4)]
    ingester = make_ingester(server.container)
    deadline = time.monotonic() + SOAK_S
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    errors = chats = 0
    round_ = 0
    while time.monotonic() < deadline:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            codes = list(
                pool.map(
                    lambda u: u[1].post("/api/chat", json={"message": "How do I clean my chain?"}),
                    users,
                )
            )
        chats += len(codes)
        errors += sum(1 for r in codes if r.status_code != 200 or "event: error" in r.text)
        if round_ % 30 == 0:
            ingester([_corpus(tmp_path / f"soak{round_ % 3}", 5)], user=None)
        round_ += 1
    rss_end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert errors == 0, f"{errors} of {chats}"
    assert rss_end < rss_start * 2 + 500_000, (rss_start, rss_end)
