"""The profile API: view/edit/reset, citation opens, export and erasure, personalise=false."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import ask, done_of, make_ingester, parse_sse, signup
from tests.web.test_api_widget import make_site, widget

CANARY = "CANARY-web-export-5d1e"
EVIL = "https://evil.example"
FILES = {
    "gardening/yield.md": "# Tomato yield\n\nPinch out side shoots to raise the yield of tomato "
    "plants. Feed tomatoes weekly.",
    "gardening/soil.md": "# Garden soil\n\nCompost improves garden soil for tomato plants and "
    "vegetables.",
    "finance/yield.md": "# Dividend yield\n\nThe dividend yield of shares is the annual dividend "
    "divided by the share price.",
    "finance/budget.md": "# Budget\n\nThe 50/30/20 budget splits income into needs, wants and "
    "savings.",
    "cycling/chain.md": "# Chain care\n\nClean the bike chain every 300 km and lubricate each "
    "roller.",
}
BUDGET_QUESTIONS = (
    "What is the 50/30/20 budget?",
    "How do savings fit a budget?",
    "What are needs and wants in a budget?",
)


@pytest.fixture
def topics(container: Any, tmp_path: Path) -> Any:
    """A corpus with topics (folders), so interests can be learned."""
    root = tmp_path / "topics"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    make_ingester(container)([root], user=None)
    return container


@pytest.fixture
def app(topics: Any) -> Any:
    """The API (no UI) over the topics corpus; ``new_client`` uses it too."""
    from chatbot.web.app import create_app

    return create_app(topics, ingester=make_ingester(topics), ui=False)


@pytest.fixture
def profile_client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def profile_of(client: TestClient) -> dict[str, Any]:
    r = client.get("/api/profile")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["profile"]
    return data


def interest(client: TestClient, label: str) -> dict[str, Any]:
    found = [i for i in profile_of(client)["interests"] if i["label"] == label]
    assert found, profile_of(client)["interests"]
    return found[0]


def error_of(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()["error"]
    assert set(body) == {"code", "message"}
    return body


def test_profile_shows_learned_interests_with_provenance(profile_client: TestClient) -> None:
    signup(profile_client, "alice")
    fresh = profile_of(profile_client)
    assert fresh["interests"] == [] and fresh["personalisation"] is True
    assert fresh["personalisation_available"] is True and fresh["facts"]["language"] is None
    first = done_of(ask(profile_client, BUDGET_QUESTIONS[0]))
    done_of(ask(profile_client, BUDGET_QUESTIONS[1]))
    finance = interest(profile_client, "finance")
    assert finance["weight"] >= 2 and 0 < finance["confidence"] < 1
    assert not finance["explicit"]
    assert finance["evidence"][0]["kind"] == "message"
    assert finance["evidence"][0]["id"] == first["message_id"]
    assert finance["source"].startswith("from 2 of your questions (latest on 20")


def test_patch_profile_sets_facts_and_the_switch_and_validates(
    profile_client: TestClient,
) -> None:
    signup(profile_client, "alice")
    r = profile_client.patch(
        "/api/profile",
        json={"language": "zh", "expertise": "beginner", "style": "brief", "persona": " nurse "},
    )
    assert r.status_code == 200, r.text
    facts = r.json()["profile"]["facts"]
    assert (facts["language"], facts["expertise"], facts["style"], facts["persona"]) == (
        "zh",
        "beginner",
        "brief",
        "nurse",
    )
    assert facts["provenance"]["language"]["kind"] == "edit"
    # null clears one field, the others stay
    facts = profile_client.patch("/api/profile", json={"language": None}).json()["profile"]["facts"]
    assert facts["language"] is None and facts["style"] == "brief"
    for bad in ({"language": "fr"}, {"style": "long"}, {"persona": "x" * 101}, {"colour": "red"}):
        body = error_of(profile_client.patch("/api/profile", json=bad), 422)
        assert body["code"] == "invalid_request"
    assert (
        "language"
        in error_of(profile_client.patch("/api/profile", json={"language": "fr"}), 422)["message"]
    )
    assert (
        "nothing to change"
        in error_of(profile_client.patch("/api/profile", json={}), 400)["message"]
    )

    # switched off: nothing is learned and the explanation says the profile was not used
    off = profile_client.patch("/api/profile", json={"personalisation": False})
    assert off.json()["profile"]["personalisation"] is False
    done = done_of(ask(profile_client, BUDGET_QUESTIONS[0]))
    assert profile_of(profile_client)["interests"] == []
    assert done["explanation"] == ["Personalisation did not change this answer."]
    on = profile_client.patch("/api/profile", json={"personalisation": True})
    assert on.json()["profile"]["personalisation"] is True


def test_interest_weight_delete_and_the_same_404_for_others(
    new_client: Any, profile_client: TestClient
) -> None:
    alice = profile_client
    signup(alice, "alice")
    done_of(ask(alice, BUDGET_QUESTIONS[0]))
    finance = interest(alice, "finance")
    path = f"/api/profile/interests/{finance['id']}"

    bob = new_client()
    signup(bob, "bob")
    missing = "/api/profile/interests/does-not-exist"
    for method, body in (("PATCH", {"weight": 3}), ("DELETE", None)):
        theirs = bob.request(method, path, json=body)
        nothing = bob.request(method, missing, json=body)
        assert error_of(theirs, 404) == error_of(nothing, 404)
    assert interest(alice, "finance")["weight"] == finance["weight"], "bob changed nothing"

    r = alice.patch(path, json={"weight": 7})
    assert r.status_code == 200, r.text
    edited = interest(alice, "finance")
    assert edited["weight"] == 7 and edited["explicit"] and edited["confidence"] == 1
    assert edited["source"].startswith("set by you on ")
    for bad in ({"weight": 30}, {"weight": "heavy"}, {}):
        assert error_of(alice.patch(path, json=bad), 422)["code"] == "invalid_request"
    assert alice.delete(path).status_code == 204
    assert all(i["id"] != finance["id"] for i in profile_of(alice)["interests"])
    assert error_of(alice.delete(path), 404)["code"] == "not_found"


def test_reset_forgets_everything_learned_but_keeps_conversations(
    profile_client: TestClient,
) -> None:
    signup(profile_client, "alice")
    done_of(ask(profile_client, "I'm a nurse. What is the 50/30/20 budget?"))
    before = profile_of(profile_client)
    assert before["interests"] and before["facts"]["persona"] == "nurse"
    r = profile_client.post("/api/profile/reset")
    assert r.status_code == 200
    after = r.json()["profile"]
    assert after["interests"] == [] and after["facts"]["persona"] is None
    assert len(profile_client.get("/api/conversations").json()["conversations"]) == 1


def test_opening_a_cited_source_is_learned_and_checked(
    new_client: Any, profile_client: TestClient
) -> None:
    alice = profile_client
    signup(alice, "alice")
    done = done_of(ask(alice, "How often should I clean the bike chain?"))
    citation = done["citations"][0]
    body = {"message_id": done["message_id"], "chunk_id": citation["chunk_id"]}
    r = alice.post("/api/citations/open", json=body)
    assert r.status_code == 200 and r.json() == {"learned": True}
    evidence = interest(alice, "cycling")["evidence"]
    assert {"kind": "citation_open", "id": done["message_id"], "delta": 0.5} == {
        k: evidence[-1][k] for k in ("kind", "id", "delta")
    }
    assert "from a source you opened on 20" in interest(alice, "cycling")["source"]

    # another user's message and a missing one look the same
    bob = new_client()
    signup(bob, "bob")
    theirs = bob.post("/api/citations/open", json=body)
    nothing = bob.post("/api/citations/open", json={**body, "message_id": "nope"})
    assert error_of(theirs, 404) == error_of(nothing, 404)
    # a chunk the answer did not cite, and the question (not an answer), are not found either
    other = alice.post("/api/citations/open", json={**body, "chunk_id": "other-chunk"})
    assert error_of(other, 404)["message"] == "citation not found"
    messages = alice.get(f"/api/conversations/{done['conversation_id']}/messages").json()
    question_id = messages["messages"][0]["id"]
    asked = alice.post("/api/citations/open", json={**body, "message_id": question_id})
    assert error_of(asked, 404)["code"] == "not_found"
    assert error_of(alice.post("/api/citations/open", json={"message_id": "x"}), 422)
    # while personalisation is off nothing is recorded
    alice.patch("/api/profile", json={"personalisation": False})
    assert alice.post("/api/citations/open", json=body).json() == {"learned": False}


def test_chat_without_personalisation_and_done_carries_recommendations_and_explanation(
    profile_client: TestClient,
) -> None:
    signup(profile_client, "investor")
    for question in BUDGET_QUESTIONS:
        done_of(ask(profile_client, question))
    weight = interest(profile_client, "finance")["weight"]
    personal_events = ask(profile_client, "How can I increase the yield?")
    plain_events = ask(profile_client, "How can I increase the yield?", personalise=False)
    personal, plain = done_of(personal_events), done_of(plain_events)

    def dividend_score(events: list[tuple[str, dict[str, Any]]]) -> float:
        (sources,) = [d["sources"] for e, d in events if e == "sources"]
        return float(next(s["score"] for s in sources if s["title"] == "Dividend yield"))

    assert personal["citations"][0]["title"] == "Dividend yield"
    assert dividend_score(personal_events) > 1.2 * dividend_score(plain_events), "boosted"
    assert any("you often ask about finance" in line for line in personal["explanation"])
    assert plain["explanation"] == ["Personalisation did not change this answer."]
    assert interest(profile_client, "finance")["weight"] < weight + 1.5, "plain re-ask not learned"
    recs = personal["recommendations"]
    assert recs and {"kind", "text", "ask", "doc_id", "source", "reason"} == set(recs[0])
    assert all("/" not in r["source"] for r in recs), "server paths never leave the server"
    assert {r["kind"] for r in recs} <= {"document", "question"}
    r = profile_client.post("/api/chat", json={"message": "hi", "personalise": "sometimes"})
    assert error_of(r, 422)["code"] == "invalid_request"


def test_export_is_a_json_download_with_everything_of_mine_only(
    new_client: Any, profile_client: TestClient
) -> None:
    signup(profile_client, "alice")
    done_of(ask(profile_client, f"{CANARY}: what is a budget?"))
    r = profile_client.get("/api/me/export")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["cache-control"] == "no-store"
    assert CANARY in r.text and "password_hash" not in r.text
    data = json.loads(r.text)
    assert data["user"]["username"] == "alice"
    assert data["conversations"] and data["profile"]["interests"]
    bob = new_client()
    signup(bob, "bob")
    assert CANARY not in bob.get("/api/me/export").text


def test_delete_me_erases_the_user_and_ends_every_session(
    new_client: Any, profile_client: TestClient, topics: Any
) -> None:
    user = signup(profile_client, "alice")
    done_of(ask(profile_client, f"{CANARY}: what is a budget?"))
    other_browser = new_client()
    login = other_browser.post(
        "/api/auth/login", json={"username": "alice", "password": "password123"}
    )
    assert login.status_code == 200
    refused = profile_client.delete("/api/me", headers={"origin": EVIL})
    assert error_of(refused, 403)["code"] == "cross_origin"

    r = profile_client.delete("/api/me")
    assert r.status_code == 204
    assert "chatbot_session" in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    assert topics.repo.get_user(user_id=user["id"]) is None
    assert error_of(profile_client.get("/api/me"), 401)["code"] == "not_authenticated"
    assert error_of(other_browser.get("/api/profile"), 401)["code"] == "not_authenticated"
    for c in (profile_client, other_browser):
        c.cookies.clear()
    failed = profile_client.post(
        "/api/auth/login", json={"username": "alice", "password": "password123"}
    )
    assert failed.status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/profile"),
        ("PATCH", "/api/profile"),
        ("PATCH", "/api/profile/interests/x"),
        ("DELETE", "/api/profile/interests/x"),
        ("POST", "/api/profile/reset"),
        ("GET", "/api/me/export"),
        ("DELETE", "/api/me"),
        ("POST", "/api/citations/open"),
    ],
)
def test_new_routes_need_a_session(profile_client: TestClient, method: str, path: str) -> None:
    r = profile_client.request(method, path, json={"weight": 1, "message_id": "m", "chunk_id": "c"})
    assert error_of(r, 401)["code"] == "not_authenticated"


def test_widget_visitors_cannot_reach_profiles_or_erasure(
    profile_client: TestClient, topics: Any
) -> None:
    headers = widget(make_site(topics.repo, ["https://shop.example"]).key)
    first = profile_client.post("/api/chat", json={"message": "What is a budget?"}, headers=headers)
    done = done_of(parse_sse(first.text))
    headers["x-visitor-token"] = done["visitor_token"]
    for method, path in (("GET", "/api/profile"), ("GET", "/api/me/export"), ("DELETE", "/api/me")):
        assert error_of(profile_client.request(method, path, headers=headers), 403)
    # but opening a source of its own answer is learned, like its ratings
    body = {"message_id": done["message_id"], "chunk_id": done["citations"][0]["chunk_id"]}
    r = profile_client.post("/api/citations/open", json=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"learned": True}
