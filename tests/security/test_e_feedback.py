"""E. Feedback: only your own existing assistant messages, validated values, exactly one row per
(user, message) even under concurrency (guide E1-E6)."""

from __future__ import annotations

import concurrent.futures
import uuid
from typing import Any

import pytest
from sqlmodel import Session, select

from chatbot.db.models import Feedback
from tests.security.live import Live, chat, done, signup


@pytest.fixture(scope="module")
def rater(live: Live) -> dict[str, Any]:
    user_id, client = signup(live.url, f"rater-{uuid.uuid4().hex[:6]}")
    answer = done(chat(client, "How do I clean my chain?"))
    messages = client.get(f"/api/conversations/{answer['conversation_id']}/messages").json()
    user_message = next(m["id"] for m in messages["messages"] if m["role"] == "user")
    yield {"client": client, "id": user_id, "answer": answer, "user_message": user_message}
    client.close()


def _rows(live: Live, user_id: str, message_id: str) -> list[Feedback]:
    with Session(live.container.repo.engine) as session:
        return list(
            session.exec(
                select(Feedback).where(
                    Feedback.user_id == user_id, Feedback.message_id == message_id
                )
            )
        )


def test_e1_e2_missing_foreign_and_user_messages_are_the_same_404(
    live: Live, rater: dict[str, Any]
) -> None:
    client = rater["client"]
    alice = live.accounts["alice"]
    bodies = {
        "missing": {"message_id": "0" * 32, "rating": "up"},
        "foreign": {"message_id": alice.message_id, "rating": "up"},
        "own user message": {"message_id": rater["user_message"], "rating": "up"},
    }
    answers = {name: client.post("/api/feedback", json=body) for name, body in bodies.items()}
    assert {r.status_code for r in answers.values()} == {404}, answers
    assert len({r.text for r in answers.values()}) == 1, "the three cases must be indistinguishable"
    assert not _rows(live, rater["id"], alice.message_id)


BAD = [
    {"message_id": "x", "rating": "meh"},
    {"message_id": "x", "rating": "UP"},
    {"message_id": "x", "rating": None},
    {"message_id": "x", "rating": 1},
    {"message_id": "x" * 65, "rating": "up"},
    {"message_id": 5, "rating": "up"},
    {"rating": "up"},
    {"message_id": "x"},
    {"message_id": "{id}", "rating": "down", "reason": "because"},
    {"message_id": "{id}", "rating": "down", "comment": "c" * 2001},
    {"message_id": "{id}", "rating": "down", "comment": "nul\x00byte"},
    {"message_id": "{id}", "rating": "down", "reason": ["wrong"]},
    [],
    "up",
]


@pytest.mark.parametrize("body", BAD, ids=range(len(BAD)))
def test_e3_malformed_values_are_4xx_and_write_nothing(
    live: Live, rater: dict[str, Any], body: Any
) -> None:
    message_id = rater["answer"]["message_id"]
    if isinstance(body, dict):
        body = {
            k: (v.format(id=message_id) if isinstance(v, str) and "{id}" in v else v)
            for k, v in body.items()
        }
    before = [(f.rating, f.reason, f.comment) for f in _rows(live, rater["id"], message_id)]
    r = rater["client"].post("/api/feedback", json=body)
    assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
    assert r.json()["error"]["code"]
    assert [(f.rating, f.reason, f.comment) for f in _rows(live, rater["id"], message_id)] == before


def test_e4_a_second_rating_replaces_the_first(live: Live, rater: dict[str, Any]) -> None:
    message_id = rater["answer"]["message_id"]
    client = rater["client"]
    assert (
        client.post("/api/feedback", json={"message_id": message_id, "rating": "up"}).status_code
        == 200
    )
    r = client.post(
        "/api/feedback",
        json={"message_id": message_id, "rating": "down", "reason": "wrong", "comment": " typo "},
    )
    assert r.status_code == 200 and r.json()["feedback"]["comment"] == "typo"
    (row,) = _rows(live, rater["id"], message_id)
    assert (row.rating, row.reason, row.comment) == ("down", "wrong", "typo")


def test_e5_one_row_per_user_and_message_under_concurrency(live: Live) -> None:
    user_id, client = signup(live.url, f"racer-{uuid.uuid4().hex[:6]}")
    message_id = done(chat(client, "How do I clean my chain?"))["message_id"]
    cookies = dict(client.cookies)
    client.close()

    def rate(i: int) -> int:
        with live.client(cookies=cookies) as c:
            body = {
                "message_id": message_id,
                "rating": "up" if i % 2 else "down",
                "comment": f"c{i}",
            }
            return c.post("/api/feedback", json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(rate, range(24)))
    assert codes == [200] * 24, codes
    rows = _rows(live, user_id, message_id)
    assert len(rows) == 1, "duplicate feedback rows"


def test_e6_widget_visitors_rate_only_their_own_answers(live: Live) -> None:
    from tests.security.live import W1_ORIGIN
    from tests.web.conftest import parse_sse

    site = live.container.repo.create_widget_site(
        key="sk_" + uuid.uuid4().hex[:12], secret="x", origins=[W1_ORIGIN]
    )
    headers = {"x-site-key": site.key, "origin": W1_ORIGIN}
    with live.client() as c:
        first = done(
            parse_sse(c.post("/api/chat", json={"message": "chain?"}, headers=headers).text)
        )
        mine = {**headers, "x-visitor-token": first["visitor_token"]}
        ok = c.post(
            "/api/feedback", json={"message_id": first["message_id"], "rating": "up"}, headers=mine
        )
        assert ok.status_code == 200
        alice = live.accounts["alice"]
        foreign = c.post(
            "/api/feedback", json={"message_id": alice.message_id, "rating": "up"}, headers=mine
        )
        assert foreign.status_code == 404
