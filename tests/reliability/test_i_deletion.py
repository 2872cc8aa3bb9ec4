"""I. Retention and deletion, verified by observation: after a delete, the canary is found
nowhere (database file and its WAL, catalog and BM25 index, LanceDB files, uploads, caches,
logs), raw bytes included (guide I1-I5, section 3.5)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.live import Live, chat, done, grep_tree, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(tmp_path_factory.mktemp("deletion"), accounts=("alice", "carol")) as live:
        yield live


def _everywhere(live: Live, needles: list[str]) -> dict[str, list[str]]:
    found = grep_tree(live.data_dir, needles)
    log = live.log_path.read_bytes()
    for needle in needles:
        if needle.encode() in log:
            found.setdefault(needle, []).append("server.log")
    gradio_tmp = Path(tempfile.gettempdir()) / "gradio"
    if gradio_tmp.is_dir():
        for needle, files in grep_tree(gradio_tmp, needles).items():
            found.setdefault(needle, []).extend(f"gradio:{f}" for f in files)
    return found


def test_i1_a_deleted_users_canaries_are_nowhere(server: Live) -> None:
    carol = server.accounts["carol"]
    canaries = list(carol.canaries.values())
    before = _everywhere(server, canaries)
    assert set(before) >= {
        carol.canaries["doc"],
        carol.canaries["chat"],
        carol.canaries["feedback"],
    }, "positive control: the canaries were stored"
    # more of carol: a second conversation and a widget-free export
    done(chat(carol.client, f"ECHO {carol.topic} {carol.canaries['chat']}"))
    removed = server.container.privacy.delete(carol.id)
    assert removed["documents"] == 2 and removed["files"] == 2
    left = _everywhere(server, canaries)
    assert not left, f"canaries of the deleted user remain: {left}"
    # the deleted user is gone from every API and can no longer sign in
    assert carol.client.get("/api/me").status_code == 401
    with server.client() as c:
        r = c.post(
            "/api/auth/login", json={"username": "carol", "password": "correct horse battery"}
        )
        assert r.status_code == 401
    log = server.data_dir / "deletions.jsonl"
    assert json.loads(log.read_text().splitlines()[-1])["id"] == carol.id


def test_i2_a_deleted_document_is_gone_from_every_store(server: Live) -> None:
    alice = server.accounts["alice"]
    needle = alice.canaries["doc"]
    assert grep_tree(server.data_dir, [needle]), "positive control"
    assert alice.client.delete(f"/api/documents/{alice.doc_ids[0]}").status_code == 204
    assert not _everywhere(server, [needle]), "the deleted document's text remains on disk"
    assert server.container.store.vector_count_for(alice.doc_ids[0]) == 0


def test_i3_a_deleted_conversation_is_gone_from_the_database_and_its_wal(server: Live) -> None:
    alice = server.accounts["alice"]
    needles = [alice.canaries["chat"], alice.canaries["feedback"]]
    assert grep_tree(server.data_dir, needles), "positive control"
    r = alice.client.delete(f"/api/conversations/{alice.conversation_id}")
    assert r.status_code == 204
    left = _everywhere(server, needles)
    assert not left, f"deleted conversation text remains: {left}"
