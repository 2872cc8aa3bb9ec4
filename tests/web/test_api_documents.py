"""Private documents: upload → private ingest, listing, isolation, deletion, limits."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import ask, done_of, signup

CANARY = "CANARY-alice-doc-7f3a"
PRIVATE = f"# Alice's bike notes\n\nMy secret saddle height is 74 centimetres. {CANARY} saddle."


def upload(client: Any, name: str, data: bytes) -> Any:
    return client.post("/api/documents", files={"file": (name, data, "text/markdown")})


def test_upload_is_private_and_used_in_answers(new_client: Any, web_container: Any) -> None:
    alice, bob = new_client(), new_client()
    alice_id = signup(alice, "alice")["id"]
    signup(bob, "bob")
    r = upload(alice, "../../notes.md", PRIVATE.encode())
    assert r.status_code == 201, r.text
    doc = r.json()["document"]
    assert r.json()["status"] == "added" and doc["filename"] == "notes.md"
    stored = web_container.settings.data_dir / "uploads" / alice_id / "notes.md"
    assert stored.read_text(encoding="utf-8") == PRIVATE
    listed = alice.get("/api/documents").json()
    assert [d["id"] for d in listed["documents"]] == [doc["id"]]
    assert listed["public_count"] == 2
    answer = done_of(ask(alice, "What is my saddle height?"))
    assert any(c["doc_id"] == doc["id"] for c in answer["citations"])
    # bob neither sees nor retrieves it, and cannot delete it
    assert bob.get("/api/documents").json()["documents"] == []
    events = ask(bob, f"What is the saddle height? {CANARY}")
    assert CANARY not in str(events)
    r = bob.delete(f"/api/documents/{doc['id']}")
    missing = bob.delete("/api/documents/" + "0" * 32)
    assert r.status_code == missing.status_code == 404 and r.json() == missing.json()


def test_delete_removes_chunks_and_the_file(client: Any, web_container: Any) -> None:
    user_id = signup(client, "alice")["id"]
    doc = upload(client, "notes.md", PRIVATE.encode()).json()["document"]
    assert client.delete(f"/api/documents/{doc['id']}").status_code == 204
    assert web_container.store.document(doc["id"]) is None
    assert not (web_container.settings.data_dir / "uploads" / user_id / "notes.md").exists()
    assert client.get("/api/documents").json()["documents"] == []


def test_reupload_updates_the_same_document(client: Any) -> None:
    signup(client, "alice")
    first = upload(client, "notes.md", PRIVATE.encode()).json()
    second = upload(client, "notes.md", (PRIVATE + "\nMore.").encode()).json()
    assert second["status"] == "updated" and second["document"]["id"] == first["document"]["id"]


def test_bad_uploads_are_clear_errors(client: Any, web_container: Any) -> None:
    signup(client, "alice")
    r = upload(client, "run.exe", b"MZ")
    assert r.status_code == 400 and "unsupported file type" in r.json()["error"]["message"]
    r = upload(client, "empty.md", b"")
    assert r.status_code == 400 and "empty" in r.json()["error"]["message"]
    limit = int(web_container.settings.web.max_upload_mb * 1_000_000)
    r = upload(client, "huge.txt", b"a" * (limit + 100_000))
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert client.get("/api/documents").json()["documents"] == []


def test_uploads_need_an_account(client: Any) -> None:
    assert upload(client, "notes.md", PRIVATE.encode()).status_code == 401


def test_without_an_ingester_uploads_say_so(web_container: Any) -> None:
    from fastapi.testclient import TestClient

    from chatbot.web.app import create_app

    with TestClient(create_app(web_container, ui=False)) as c:
        signup(c, "alice")
        r = upload(c, "notes.md", PRIVATE.encode())
        assert r.status_code == 503 and "not enabled" in r.json()["error"]["message"]
