"""C. Cross-user isolation: 0 canary leaks across users in retrieval, prompts, APIs, files, logs,
exports (guide C1-C9). Positive controls show that each canary is reachable by its owner, so an
absence means isolation, not a broken probe."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.security.live import Live, chat, done


def _leaks(text: str, live: Live, owner: str, typed: str = "") -> list[str]:
    """The owner's canaries found in ``text``, except those the asker typed themselves."""
    return [c for c in live.all_canaries(owner) if c in text and c not in typed]


def test_c1_retrieval_and_prompt_never_carry_another_users_private_chunks(live: Live) -> None:
    alice = live.accounts["alice"]
    # positive control: alice's own echo prompt contains her private document
    own = chat(alice.client, f"ECHO how often does the {alice.topic} need care?")
    assert alice.canaries["doc"] in json.dumps(own, ensure_ascii=False)
    probes = [
        f"ECHO how often does the {alice.topic} need care?",
        f"ECHO what is the code word {alice.canaries['doc']}",
        f"ECHO {alice.canaries['pdfbody']} {alice.canaries['pdfmeta']} report",
        f"ECHO {alice.canaries['persona']} {alice.canaries['interest']} {alice.canaries['chat']}",
    ]
    eve = signup_attacker(live)  # probes that type alice's canaries must not pollute bob's data
    for probe in probes:
        events = chat(eve, probe)
        text = json.dumps(events, ensure_ascii=False)
        assert not _leaks(text, live, "alice", typed=probe), probe
        assert not any(d in text for d in alice.doc_ids), "alice's document ids leaked"
    eve.close()


def signup_attacker(live: Live) -> Any:
    import uuid

    from tests.security.live import signup

    return signup(live.url, f"eve-{uuid.uuid4().hex[:8]}")[1]


def test_c3_scoping_fields_in_the_request_are_ignored(live: Live) -> None:
    alice, bob = live.accounts["alice"], live.accounts["bob"]
    body = {
        "message": f"ECHO {alice.topic} code word",
        "acls": ["public", f"user:{alice.id}"],
        "user_id": alice.id,
        "acl": f"user:{alice.id}",
        "filters": {"acl": f"user:{alice.id}"},
    }
    eve = signup_attacker(live)
    r = eve.post("/api/chat", json=body)
    eve.close()
    assert r.status_code in (200, 422)
    assert not _leaks(r.text, live, "alice", typed=body["message"])
    r = bob.client.post(
        "/api/documents",
        files={"file": ("pub.md", b"# public?\n\nbob tries to publish", "text/markdown")},
        data={"acl": "public", "user": alice.id, "group": "staff"},
    )
    assert r.status_code == 201
    doc = live.container.store.document(r.json()["document"]["id"])
    assert doc.acl == f"user:{bob.id}", "uploads are always private to the uploader (B3/LLM04)"
    assert bob.client.delete(f"/api/documents/{doc.doc_id}").status_code == 204


OBJECT_ROUTES = [
    ("GET", "/api/conversations/{conv}"),
    ("GET", "/api/conversations/{conv}/messages"),
    ("PATCH", "/api/conversations/{conv}"),
    ("DELETE", "/api/conversations/{conv}"),
    ("DELETE", "/api/documents/{doc}"),
    ("PATCH", "/api/profile/interests/{interest}"),
    ("DELETE", "/api/profile/interests/{interest}"),
]


def _interest_of(live: Live, user_id: str) -> str:
    return str(live.container.profiles.store.interests(user_id=user_id)[0].id)


@pytest.mark.parametrize(("method", "route"), OBJECT_ROUTES)
def test_c2_every_object_route_rechecks_ownership(live: Live, method: str, route: str) -> None:
    alice, bob = live.accounts["alice"], live.accounts["bob"]
    kwargs: dict[str, Any] = {}
    if method == "PATCH":
        kwargs["json"] = {"weight": 1.0} if "interest" in route else {"title": "pwned"}
    interest = _interest_of(live, alice.id)
    foreign = route.format(conv=alice.conversation_id, doc=alice.doc_ids[0], interest=interest)
    missing = route.format(conv="0" * 32, doc="0" * 32, interest="0" * 32)
    r_foreign = bob.client.request(method, foreign, **kwargs)
    r_missing = bob.client.request(method, missing, **kwargs)
    assert r_foreign.status_code == r_missing.status_code == 404
    assert r_foreign.json() == r_missing.json(), "foreign and missing ids must be indistinguishable"
    assert not _leaks(r_foreign.text, live, "alice")
    # the object is untouched and still alice's
    conv = alice.client.get(f"/api/conversations/{alice.conversation_id}")
    assert conv.status_code == 200 and conv.json()["conversation"]["title"] != "pwned"
    assert live.container.store.document(alice.doc_ids[0]) is not None
    assert _interest_of(live, alice.id) == interest


def test_c2_citation_open_on_a_foreign_message_is_refused(live: Live) -> None:
    alice, bob = live.accounts["alice"], live.accounts["bob"]
    body = {"message_id": alice.message_id, "chunk_id": "x"}
    r = bob.client.post("/api/citations/open", json=body)
    missing = bob.client.post("/api/citations/open", json={**body, "message_id": "0" * 32})
    assert r.status_code == missing.status_code and r.json() == missing.json()
    assert r.status_code in (200, 404)
    if r.status_code == 200:
        assert not r.json()["learned"]


def test_c2_lists_show_only_your_own_objects(live: Live) -> None:
    alice, bob = live.accounts["alice"], live.accounts["bob"]
    for path in (
        "/api/conversations",
        "/api/documents",
        "/api/me",
        "/api/profile",
        "/api/me/export",
    ):
        r = bob.client.get(path)
        assert r.status_code == 200
        assert not _leaks(r.text, live, "alice")
        assert alice.conversation_id not in r.text and alice.doc_ids[0] not in r.text
    assert alice.conversation_id in alice.client.get("/api/conversations").text


def test_c2_feedback_on_a_foreign_message_is_404(live: Live) -> None:
    alice, bob = live.accounts["alice"], live.accounts["bob"]
    body = {"message_id": alice.message_id, "rating": "up", "comment": "bob was here"}
    r = bob.client.post("/api/feedback", json=body)
    assert r.status_code == 404
    rows = live.container.repo.list_feedback(user_id=bob.id)
    assert all(f.message_id != alice.message_id for f in rows)


def test_c4_profiles_and_recommendations_stay_with_their_owner(live: Live) -> None:
    alice, bob = live.accounts["alice"], live.accounts["bob"]
    own = json.dumps(chat(alice.client, "ECHO how do I clean my chain?"), ensure_ascii=False)
    assert alice.canaries["persona"] in own, "positive control: the persona reaches alice's prompt"
    events = chat(bob.client, "ECHO how do I clean my chain?")
    text = json.dumps(events, ensure_ascii=False)
    assert not _leaks(text, live, "alice")
    recs = done(events).get("recommendations") or []
    assert not any(d in json.dumps(recs) for d in alice.doc_ids)
    profile = live.container.profiles.view(bob.id)
    assert not _leaks(json.dumps(profile, ensure_ascii=False), live, "alice")


def test_c5_files_are_never_served_back(live: Live) -> None:
    alice, bob = live.accounts["alice"], live.accounts["bob"]
    uploads = live.data_dir / "uploads" / alice.id
    paths = [p for p in uploads.iterdir() if p.is_file()]
    assert paths
    for client in (alice.client, bob.client):
        for path in paths:
            for route in (f"/ui/gradio_api/file={path}", f"/static/../uploads/{alice.id}/{path.name}",
                          f"/ui/file={path}"):  # fmt: skip
                r = client.get(route)
                assert r.status_code in (400, 403, 404), (route, r.status_code)
                assert not _leaks(r.text, live, "alice")


def test_c5_a_gradio_upload_is_not_readable_by_another_user(live: Live) -> None:
    """Security guide 1.4: Gradio's cache is shared by all users; a path is only a capability."""
    alice, bob = live.accounts["alice"], live.accounts["bob"]
    secret = alice.canaries["doc"].encode()
    r = alice.client.post(
        "/ui/gradio_api/upload",
        files={"files": ("secret.md", b"# s\n\n" + secret, "text/markdown")},
    )
    assert r.status_code == 200, r.text
    (path,) = r.json()
    fetched = bob.client.get(f"/ui/gradio_api/file={path}")
    assert fetched.status_code in (403, 404), "bob read alice's upload from Gradio's cache"
    assert secret not in fetched.content


def test_c6_logs_hold_no_canary(live: Live) -> None:
    import logging

    chat(live.accounts["alice"].client, f"ECHO {live.accounts['alice'].topic}")
    logging.getLogger("chatbot.battery").info("log capture probe")
    text = live.log_path.read_text(encoding="utf-8", errors="replace")
    assert "log capture probe" in text, "the log capture works"
    for owner in ("alice", "bob"):
        assert not _leaks(text, live, owner), "a private object reached the log at INFO"


def test_c7_exports_hold_only_the_users_own_data(live: Live) -> None:
    bob = live.accounts["bob"]
    exported = json.dumps(live.container.privacy.export(bob.id), ensure_ascii=False, default=str)
    assert bob.canaries["chat"] in exported and bob.canaries["feedback"] in exported
    assert bob.canaries["persona"] in exported
    assert not _leaks(exported, live, "alice")
    assert "password_hash" not in exported and "argon2" not in exported


def test_c8_traces_and_sources_name_only_readable_chunks(live: Live) -> None:
    alice, bob = live.accounts["alice"], live.accounts["bob"]
    answer = done(chat(bob.client, f"what about the {alice.topic}?"))
    trace = live.container.repo.get_trace(user_id=bob.id, message_id=answer["message_id"])
    text = json.dumps(trace, ensure_ascii=False)
    assert not any(d in text for d in alice.doc_ids)
    messages = bob.client.get(f"/api/conversations/{answer['conversation_id']}/messages")
    assert not _leaks(messages.text, live, "alice")


def test_c9_widget_visitors_see_only_public_documents(live: Live) -> None:
    from tests.security.live import W1_ORIGIN

    alice = live.accounts["alice"]
    site = live.sites["W1"]
    with live.client() as visitor:
        r = visitor.post(
            "/api/chat",
            json={"message": f"ECHO {alice.topic} code word {alice.canaries['doc']}"},
            headers={"x-site-key": site.key, "origin": W1_ORIGIN},
        )
        assert r.status_code in (200, 429)
        assert not _leaks(r.text, live, "alice", typed=alice.canaries["doc"])
        assert not any(d in r.text for d in alice.doc_ids)
        r = visitor.get(
            f"/api/conversations/{alice.conversation_id}/messages",
            headers={"x-site-key": site.key, "origin": W1_ORIGIN, "x-visitor-token": "x" * 32},
        )
        assert r.status_code in (401, 404)
