"""H. Disk full and a read-only data directory: clear errors, previous data intact and readable,
recovery once space returns (guide H1-H5, 4.6). Mounts a small tmpfs; skipped with the reason
when mounting is not permitted."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.security import fakes
from tests.security.live import PASSWORD, make_settings
from tests.web.conftest import make_ingester, parse_sse, write_corpus
from tests.web.live import free_port, serve_app

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or result.returncode})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Fill the file system until ENOSPC; returns the filler file."""
    filler = folder / "filler.bin"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
            handle.truncate(handle.tell() - handle.tell() % 65536)
    return filler


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_h1_disk_full_gives_clear_errors_keeps_data_and_recovers(tmp_path: Path) -> None:
    from chatbot.container import Container
    from chatbot.web.app import create_app

    with tmpfs(tmp_path / "mnt", "12m") as mnt:
        data = mnt / "data"
        container = Container(make_settings(data))
        fakes.install(container)
        ingester = make_ingester(container)
        ingester([write_corpus(tmp_path / "corpus")], user=None)
        with serve_app(create_app(container, ingester=ingester, ui=False), free_port()) as url:
            client = httpx.Client(base_url=url, timeout=60)
            assert (
                client.post(
                    "/api/auth/signup", json={"username": "alice", "password": PASSWORD}
                ).status_code
                == 201
            )
            first = parse_sse(
                client.post("/api/chat", json={"message": "How do I clean my chain?"}).text
            )
            conversation = next(d for e, d in first if e == "done")["conversation_id"]
            doc = client.post(
                "/api/documents",
                files={"file": ("a.md", b"# A\n\nalpha pump notes", "text/markdown")},
            )
            assert doc.status_code == 201
            before = container.store.stats()
            filler = _fill(mnt)
            # writes fail with a clear error, never a hang or a crash
            big = ("# B\n\n" + "beta pump notes " * 20000).encode()
            r = client.post("/api/documents", files={"file": ("b.md", big, "text/markdown")})
            assert r.status_code == 507, r.text
            assert r.json()["error"]["code"] == "storage_full", r.text
            chat = client.post(
                "/api/chat",
                json={"message": "How do I clean my chain?", "conversation_id": conversation},
            )
            if chat.status_code == 200:
                events = parse_sse(chat.text)
                errors = [d for e, d in events if e == "error"]
                assert errors and errors[0]["error"]["code"] == "storage_full", events
            else:
                assert chat.status_code == 507 and chat.json()["error"]["code"] == "storage_full"
            signup = client.post(
                "/api/auth/signup",
                json={"username": f"u{uuid.uuid4().hex[:6]}", "password": PASSWORD},
            )
            assert signup.status_code == 507
            # reads keep working and the previous data is intact
            assert client.get("/api/conversations").status_code == 200
            assert [d["filename"] for d in client.get("/api/documents").json()["documents"]] == [
                "a.md"
            ]
            assert container.store.stats() == before
            assert not list((data / "uploads").rglob(".upload-*")), "no temp file is left behind"
            # recovery
            filler.unlink()
            r = client.post("/api/documents", files={"file": ("b.md", big[:5000], "text/markdown")})
            assert r.status_code == 201, r.text
            again = parse_sse(
                client.post(
                    "/api/chat",
                    json={"message": "How do I clean my chain?", "conversation_id": conversation},
                ).text
            )
            assert any(e == "done" for e, _ in again)
            client.close()
        container.store.reconcile()
        assert container.store.vector_ids() == container.store.catalog.all_chunk_ids()
        container.close()
        assert _integrity(data / "chatbot.db") == "ok"
        assert _integrity(data / "index" / "catalog.db") == "ok"


def test_h2_read_only_data_dir_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    from chatbot.container import Container

    data, view = tmp_path / "data", tmp_path / "ro-view"
    container = Container(make_settings(data))
    make_ingester(container)([write_corpus(tmp_path / "corpus")], user=None)
    container.repo.create_user(username="alice")
    stats = container.store.stats()
    container.close()
    view.mkdir()
    bound = subprocess.run(
        ["mount", "--bind", str(data), str(view)], capture_output=True, text=True
    )
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here ({bound.stderr.strip() or bound.returncode})")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
        env = {**os.environ, "CHATBOT_DATA_DIR": str(view), "CHATBOT_LLM__MODE": "fake",
               "CHATBOT_EMBEDDING__MODE": "fake"}  # fmt: skip
        for command in (["status"], ["serve", "--port", "1"]):
            run = subprocess.run(
                [sys.executable, "-m", "chatbot", *command], env=env, cwd=ROOT,
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert run.returncode == 2, (command, run.returncode, run.stderr[-2000:])
            assert "read-only" in run.stderr and "ro-view" in run.stderr, run.stderr[-2000:]
            assert "Traceback" not in run.stderr, run.stderr[-2000:]
    finally:
        subprocess.run(["umount", "-l", str(view)], capture_output=True)
    container = Container(make_settings(data))  # recovery: writable again, data intact
    assert container.store.stats() == stats
    assert container.repo.get_user_by_name(username="alice") is not None
    container.close()
