"""K. Backup and restore: an online backup taken while the server runs and ingests is one
consistent generation, restores to a working service, and a user deleted after the backup
stays deleted after the restore (the deletion log is replayed) (guide K1-K2, 3.6)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from chatbot.backup import BackupError, backup, restore, verify
from tests.security import fakes
from tests.security.live import PASSWORD, grep_tree, live_server, make_settings
from tests.web.conftest import make_ingester, parse_sse
from tests.web.live import free_port, serve_app


def _corpus(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"doc{i:03d}.md").write_text(
            f"# Document {i}\n\n" + " ".join(f"word{i}x{j} bicycle chain care" for j in range(60)),
            encoding="utf-8",
        )
    return folder


def _consistent(index_dir: Path) -> tuple[int, int]:
    """(catalog chunks, vectors) of a store folder; every catalog chunk must have its vector."""
    from chatbot.index.storage import ChunkStore
    from chatbot.settings import StoreSettings

    store = ChunkStore(index_dir, StoreSettings())
    try:
        chunk_ids = store.catalog.all_chunk_ids()
        vector_ids = store.vector_ids()
        assert chunk_ids <= vector_ids, (
            f"{len(chunk_ids - vector_ids)} acknowledged chunks lack vectors"
        )
        return len(chunk_ids), len(vector_ids)
    finally:
        store.close()


def test_k1_k2_online_backup_restore_and_deletions_stay_deleted(tmp_path: Path) -> None:
    dest = tmp_path / "backup"
    with live_server(tmp_path / "srv", ui=False, accounts=("alice", "carol")) as live:
        alice, carol = live.accounts["alice"], live.accounts["carol"]
        settings = live.container.settings
        ingester = make_ingester(live.container)
        folder = _corpus(tmp_path / "more", 40)
        errors: list[BaseException] = []

        def ingest() -> None:
            try:
                ingester([folder], user=None)
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=ingest)
        worker.start()
        manifest = backup(settings, dest)  # a second store handle, like `chatbot backup`
        worker.join(timeout=120)
        assert not errors and not worker.is_alive()
        chunks, _vectors = _consistent(dest / "index")
        assert chunks == manifest["store"]["chunks"]
        # after the backup: carol is erased, alice keeps chatting
        live.container.privacy.delete(carol.id)
        later = alice.client.post("/api/chat", json={"message": "How do I clean my chain?"})
        assert later.status_code == 200
        data_dir = live.data_dir
    with pytest.raises(BackupError):
        backup(settings, dest)  # never into a non-empty folder
    report = restore(settings, dest)
    assert report.replayed_deletions == [carol.id]
    assert report.chunks <= report.vectors
    left = grep_tree(data_dir, list(carol.canaries.values()))
    assert not left, f"the restore brought back a deleted user: {left}"
    assert not (data_dir / ".pre-restore").exists()
    for db in (data_dir / "chatbot.db", data_dir / "index" / "catalog.db"):
        assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # K2: the restored data serves
    from chatbot.container import Container
    from chatbot.web.app import create_app

    container = Container(make_settings(data_dir))
    fakes.install(container)
    try:
        with (
            serve_app(create_app(container, ui=False), free_port()) as url,
            httpx.Client(base_url=url, timeout=60) as c,
        ):
            assert (
                c.post(
                    "/api/auth/login", json={"username": "alice", "password": PASSWORD}
                ).status_code
                == 200
            )
            assert (
                c.post(
                    "/api/auth/login", json={"username": "carol", "password": PASSWORD}
                ).status_code
                == 401
            )
            conversations = [x["id"] for x in c.get("/api/conversations").json()["conversations"]]
            assert alice.conversation_id in conversations
            assert {d["id"] for d in c.get("/api/documents").json()["documents"]} == set(
                alice.doc_ids
            )
            r = c.post("/api/chat", json={"message": f"ECHO {alice.topic}"})
            assert alice.canaries["doc"] in json.dumps(parse_sse(r.text))
    finally:
        container.close()


def test_k1_a_damaged_backup_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    from chatbot.container import Container

    container = Container(settings)
    make_ingester(container)([_corpus(tmp_path / "c", 3)], user=None)
    container.repo.create_user(username="dave")
    container.close()
    manifest = backup(settings, tmp_path / "b")
    assert manifest["store"]["documents"] == 3
    (tmp_path / "b" / "chatbot.db").write_bytes(b"garbage")
    with pytest.raises(BackupError, match="modified or damaged"):
        restore(settings, tmp_path / "b")
    with pytest.raises(BackupError):
        verify(tmp_path)
    container = Container(settings)
    assert container.repo.get_user_by_name(username="dave") is not None
    assert container.store.stats()["documents"] == 3
    container.close()


def test_k_cli_backup_and_restore(tmp_path: Path, settings: Any) -> None:
    from chatbot.cli import app
    from chatbot.container import Container

    container = Container(settings)
    make_ingester(container)([_corpus(tmp_path / "c", 2)], user=None)
    container.repo.create_user(username="erin")
    container.close()
    runner = CliRunner()
    out = runner.invoke(app, ["backup", str(tmp_path / "bk")])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["users", "delete", "erin", "--yes"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["restore", str(tmp_path / "bk"), "--yes"])
    assert out.exit_code == 0, out.output
    assert '"replayed_deletions"' in out.output
    container = Container(settings)
    assert container.repo.get_user_by_name(username="erin") is None
    assert container.store.stats()["documents"] == 2
    container.close()
    bad = runner.invoke(app, ["backup", str(settings.data_dir / "inside")])
    assert bad.exit_code == 2 and "inside the data folder" in bad.output
