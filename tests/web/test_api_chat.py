"""The chat API: SSE format, feedback, conversations, and identical 404s for others' objects."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import ask, done_of, signup


def test_chat_streams_sources_then_tokens_then_done(client: Any) -> None:
    signup(client, "alice")
    events = ask(client, "How often should I clean the bicycle chain?")
    kinds = [event for event, _ in events]
    assert kinds[0] == "sources"
    assert kinds[-1] == "done"
    assert kinds.count("token") >= 3, "the answer arrives in pieces"
    assert set(kinds) == {"sources", "token", "done"}
    sources = events[0][1]["sources"]
    assert sources and {"chunk_id", "doc_id", "title", "source", "score", "quote"} <= set(
        sources[0]
    )
    assert all("/" not in s["source"] for s in sources), "server paths never leave the server"
    done = done_of(events)
    assert done["citations"] and done["citations"][0]["title"] == "Chain care"
    assert done["message_id"] and done["conversation_id"]
    assert "recommendations" in done
    tokens = "".join(data["text"] for event, data in events if event == "token")
    assert tokens.strip() == done["answer"]


def test_sse_frames_are_well_formed_utf8(client: Any) -> None:
    signup(client, "alice")
    response = client.post("/api/chat", json={"message": "绿茶的水温应该是多少？"})
    raw = response.content.decode("utf-8")
    for frame in filter(None, raw.split("\n\n")):
        lines = frame.split("\n")
        assert lines[0].startswith(("event: ", ":")), frame
    assert "八十度" in raw  # Chinese stays readable, not \\u-escaped


def test_follow_up_continues_the_conversation(client: Any) -> None:
    signup(client, "alice")
    first = done_of(ask(client, "How often should I clean the bicycle chain?"))
    second = done_of(ask(client, "And lubricate it?", conversation_id=first["conversation_id"]))
    assert second["conversation_id"] == first["conversation_id"]
    messages = client.get(f"/api/conversations/{first['conversation_id']}/messages").json()
    assert [m["role"] for m in messages["messages"]] == ["user", "assistant"] * 2


def test_feedback_is_stored_once_and_replaced(client: Any, web_container: Any) -> None:
    user = signup(client, "alice")
    done = done_of(ask(client, "How often should I clean the bicycle chain?"))
    body = {"message_id": done["message_id"], "rating": "down", "reason": "wrong", "comment": "no"}
    assert client.post("/api/feedback", json=body).status_code == 200
    body.update(rating="up", reason=None, comment=None)
    assert client.post("/api/feedback", json=body).status_code == 200
    rows = web_container.repo.list_feedback(user_id=user["id"])
    assert len(rows) == 1 and rows[0].rating == "up"
    messages = client.get(f"/api/conversations/{done['conversation_id']}/messages").json()
    assert messages["messages"][1]["rating"] == "up"


def test_bad_feedback_is_a_clear_400_or_422(client: Any) -> None:
    signup(client, "alice")
    done = done_of(ask(client, "How often should I clean the bicycle chain?"))
    bad_reason = {"message_id": done["message_id"], "rating": "down", "reason": "meh"}
    r = client.post("/api/feedback", json=bad_reason)
    assert r.status_code == 400 and "reason must be one of" in r.json()["error"]["message"]
    r = client.post("/api/feedback", json={"message_id": done["message_id"], "rating": "meh"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert "rating" in r.json()["error"]["message"]


def test_conversations_list_rename_delete(client: Any) -> None:
    signup(client, "alice")
    done = done_of(ask(client, "How often should I clean the bicycle chain?"))
    cid = done["conversation_id"]
    listed = client.get("/api/conversations").json()["conversations"]
    assert [c["id"] for c in listed] == [cid]
    assert listed[0]["title"].startswith("How often")
    renamed = client.patch(f"/api/conversations/{cid}", json={"title": "链条保养"})
    assert renamed.json()["conversation"]["title"] == "链条保养"
    assert client.get(f"/api/conversations/{cid}").json()["conversation"]["title"] == "链条保养"
    assert client.delete(f"/api/conversations/{cid}").status_code == 204
    assert client.get(f"/api/conversations/{cid}").status_code == 404
    assert client.get("/api/conversations").json()["conversations"] == []


def test_other_users_objects_give_the_same_404_as_missing_ones(new_client: Any) -> None:
    alice, bob = new_client(), new_client()
    signup(alice, "alice")
    signup(bob, "bob")
    done = done_of(ask(alice, "How often should I clean the bicycle chain?"))
    cid, mid = done["conversation_id"], done["message_id"]
    missing = "0" * 32
    probes = [
        ("get", "/api/conversations/{}", None),
        ("get", "/api/conversations/{}/messages", None),
        ("patch", "/api/conversations/{}", {"title": "mine"}),
        ("delete", "/api/conversations/{}", None),
    ]
    for method, template, body in probes:
        theirs = getattr(bob, method)(template.format(cid), **({"json": body} if body else {}))
        nothing = getattr(bob, method)(template.format(missing), **({"json": body} if body else {}))
        assert theirs.status_code == nothing.status_code == 404, template
        assert theirs.json() == nothing.json()
    for target in (mid, missing):
        r = bob.post("/api/feedback", json={"message_id": target, "rating": "down"})
        assert r.status_code == 404 and r.json()["error"]["message"] == "message not found"
    r = bob.post("/api/chat", json={"message": "hi there", "conversation_id": cid})
    assert r.status_code == 404
    # and alice still has everything
    assert alice.get(f"/api/conversations/{cid}/messages").status_code == 200


def test_chat_input_errors(client: Any, web_container: Any) -> None:
    assert client.post("/api/chat", json={"message": "hello"}).status_code == 401
    signup(client, "alice")
    r = client.post("/api/chat", json={"message": "   "})
    assert r.status_code == 400 and r.json()["error"]["message"] == "the message is empty"
    r = client.post("/api/chat", json={})
    assert r.status_code == 422 and "message" in r.json()["error"]["message"]
    r = client.post("/api/chat", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    limit = web_container.settings.chat.max_message_chars
    r = client.post("/api/chat", json={"message": "x" * (limit + 1)})
    assert r.status_code == 400 and "too long" in r.json()["error"]["message"]


def test_unknown_api_route_is_a_json_404(client: Any) -> None:
    r = client.get("/api/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
