"""Widget requests: site keys, exact origins, DB quotas with 429, visitor and host identities."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chatbot.web.widget import normalise_origin, sign_user_token, verify_user_token
from tests.web.conftest import done_of, parse_sse, signup

ORIGIN = "https://shop.example"


def make_site(repo: Any, origins: list[str], **limits: int) -> Any:
    return repo.create_widget_site(
        key=f"sk_{len(repo.list_widget_sites())}", secret="host-secret", origins=origins, **limits
    )


def widget(key: str, origin: str | None = ORIGIN, **extra: str) -> dict[str, str]:
    headers = {"x-site-key": key, **extra}
    if origin:
        headers["origin"] = origin
    return headers


def chat(
    client: Any, headers: dict[str, str], message: str = "How do I clean my chain?", **body: Any
) -> Any:
    return client.post("/api/chat", json={"message": message, **body}, headers=headers)


def test_origin_normalisation_is_exact() -> None:
    assert normalise_origin("HTTPS://Shop.Example:443/") == "https://shop.example"
    assert normalise_origin("http://127.0.0.1:8001") == "http://127.0.0.1:8001"
    for bad in ("shop.example", "ftp://x.org", "https://x.org/path", "https://u:p@x.org", "*"):
        with pytest.raises(ValueError):
            normalise_origin(bad)


def test_visitor_gets_an_isolated_identity_and_a_token(client: Any, web_container: Any) -> None:
    site = make_site(web_container.repo, [ORIGIN])
    r = chat(client, widget(site.key))
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ORIGIN
    done = done_of(parse_sse(r.text))
    token = done["visitor_token"]
    assert done["citations"]
    # the same visitor continues the conversation and can read it back
    headers = widget(site.key, **{"x-visitor-token": token})
    again = done_of(parse_sse(chat(client, headers, conversation_id=done["conversation_id"]).text))
    assert "visitor_token" not in again and again["conversation_id"] == done["conversation_id"]
    messages = client.get(f"/api/conversations/{done['conversation_id']}/messages", headers=headers)
    assert len(messages.json()["messages"]) == 4
    fb = client.post(
        "/api/feedback", json={"message_id": done["message_id"], "rating": "up"}, headers=headers
    )
    assert fb.status_code == 200
    # another visitor (no token) is someone else and cannot read it
    other = done_of(parse_sse(chat(client, widget(site.key)).text))
    other_headers = widget(site.key, **{"x-visitor-token": other["visitor_token"]})
    r = client.get(f"/api/conversations/{done['conversation_id']}/messages", headers=other_headers)
    assert r.status_code == 404
    users = web_container.repo.list_users(include_anonymous=True)
    assert sum(1 for u in users if u.is_anonymous) == 2


def test_widget_visitors_cannot_use_account_routes(client: Any, web_container: Any) -> None:
    site = make_site(web_container.repo, [ORIGIN])
    done = done_of(parse_sse(chat(client, widget(site.key)).text))
    headers = widget(site.key, **{"x-visitor-token": done["visitor_token"]})
    assert client.get("/api/documents", headers=headers).status_code == 403
    assert client.get("/api/me", headers=headers).json()["user"]["site_id"] == site.id


def test_wrong_origin_missing_origin_and_bad_key_are_403(client: Any, web_container: Any) -> None:
    site = make_site(web_container.repo, [ORIGIN])
    for headers in (
        widget(site.key, "https://evil.example"),
        widget(site.key, "http://shop.example"),
        widget(site.key, None),
        widget("sk_nope"),
    ):
        r = chat(client, headers)
        assert r.status_code == 403, headers
        assert r.json()["error"]["code"] in ("origin_not_allowed", "bad_site_key")
        assert "access-control-allow-origin" not in r.headers or headers.get("origin") == ORIGIN


def test_an_empty_allow_list_allows_nothing(client: Any, web_container: Any) -> None:
    site = make_site(web_container.repo, [])
    assert chat(client, widget(site.key)).status_code == 403
    preflight = client.options(
        "/api/chat", headers={"origin": ORIGIN, "access-control-request-method": "POST"}
    )
    assert preflight.status_code == 403


def test_per_minute_limit_gives_429_with_retry_after(client: Any, web_container: Any) -> None:
    site = make_site(web_container.repo, [ORIGIN], rate_per_minute=2, daily_quota=100)
    assert chat(client, widget(site.key)).status_code == 200
    assert chat(client, widget(site.key)).status_code == 200
    r = chat(client, widget(site.key))
    if r.status_code == 200:  # the minute rolled over between calls; one more hits the limit
        r = chat(client, widget(site.key))
        r = chat(client, widget(site.key)) if r.status_code == 200 else r
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "per minute" in r.json()["error"]["message"]
    assert r.headers["access-control-allow-origin"] == ORIGIN, "the widget can read the 429"
    assert "retry-after" in r.headers["access-control-expose-headers"].lower()


def test_daily_quota_is_shared_by_all_processes(client: Any, web_container: Any) -> None:
    from fastapi.testclient import TestClient

    from chatbot.container import Container
    from chatbot.web.app import create_app

    site = make_site(web_container.repo, [ORIGIN], rate_per_minute=100, daily_quota=3)
    other = Container(web_container.settings)
    with TestClient(create_app(other, ui=False)) as second:
        codes = [chat(c, widget(site.key)).status_code for c in (client, second, client, second)]
    other.close()
    assert codes == [200, 200, 200, 429]


def test_one_visitor_cannot_use_up_the_site_quota(app: Any, web_container: Any) -> None:
    from fastapi.testclient import TestClient

    from chatbot.settings import WebSettings

    gate = app.state.web.widget
    gate.settings = gate.settings.model_copy(update={"widget_visitor_daily_quota": 2})
    site = make_site(web_container.repo, [ORIGIN], rate_per_minute=100, daily_quota=100)
    with (
        TestClient(app, client=("203.0.113.7", 4000)) as one,
        TestClient(app, client=("203.0.113.8", 4000)) as two,
    ):
        codes = [chat(one, widget(site.key)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = chat(one, widget(site.key, **{"x-forwarded-for": "198.51.100.1"}))
        assert r.status_code == 429, "a forged X-Forwarded-For from a non-proxy is ignored"
        assert "you have used up the daily quota of 2 chats" in r.json()["error"]["message"]
        assert int(r.headers["retry-after"]) >= 1
        assert chat(two, widget(site.key)).status_code == 200, "other visitors still chat"
        # behind a trusted reverse proxy, its X-Forwarded-For names the visitor
        proxies = WebSettings(trusted_proxies=["203.0.113.7"]).trusted_proxies
        gate.settings = gate.settings.model_copy(update={"trusted_proxies": proxies})
        behind = widget(site.key, **{"x-forwarded-for": "198.51.100.1"})
        assert [chat(one, behind).status_code for _ in range(3)] == [200, 200, 429]
    from sqlmodel import Session, select

    from chatbot.db.models import WidgetUsage

    with Session(web_container.repo._engine) as session:
        buckets = [u.bucket for u in session.exec(select(WidgetUsage))]
    width = WidgetUsage.__table__.c.bucket.type.length  # type: ignore[attr-defined]
    assert len(buckets) >= 6 and all(len(b) <= width for b in buckets), buckets  # PostgreSQL
    assert not any("203.0.113" in b or "198.51.100" in b for b in buckets), "addresses stored"


def test_host_signed_user_token_keeps_the_host_identity(client: Any, web_container: Any) -> None:
    site = make_site(web_container.repo, [ORIGIN])
    token = sign_user_token("host-secret", "customer-42", int(time.time()) + 600)
    first = done_of(parse_sse(chat(client, widget(site.key, **{"x-user-token": token})).text))
    assert "visitor_token" not in first
    # a new browser of the same host user sees the same conversation
    listed = client.get("/api/conversations", headers=widget(site.key, **{"x-user-token": token}))
    assert [c["id"] for c in listed.json()["conversations"]] == [first["conversation_id"]]
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    r = chat(client, widget(site.key, **{"x-user-token": forged}))
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_user_token"


def test_user_token_validation() -> None:
    now = time.time()
    good = sign_user_token("k", "u1", int(now) + 60)
    assert verify_user_token("k", good, now=now, max_age_s=3600) == "u1"
    assert verify_user_token("other", good, now=now, max_age_s=3600) is None
    expired = sign_user_token("k", "u1", int(now) - 1)
    assert verify_user_token("k", expired, now=now, max_age_s=3600) is None
    too_long = sign_user_token("k", "u1", int(now) + 10 * 86400)
    assert verify_user_token("k", too_long, now=now, max_age_s=3600) is None
    assert verify_user_token("k", "garbage", now=now, max_age_s=3600) is None


def test_widget_headers_never_borrow_the_cookie_session(client: Any, web_container: Any) -> None:
    signup(client, "alice")  # the browser has a session cookie
    site = make_site(web_container.repo, [ORIGIN])
    done = done_of(parse_sse(chat(client, widget(site.key)).text))
    alice = web_container.repo.get_user_by_name(username="alice")
    assert web_container.repo.list_conversations(user_id=alice.id) == []
    assert done["visitor_token"]


def test_sites_cli_adds_lists_and_removes(web_container: Any) -> None:
    from typer.testing import CliRunner

    from chatbot.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app,
        ["sites", "add", "--origin", "https://a.example/", "--origin", "http://localhost:8080",
         "--rate-per-minute", "5", "--daily-quota", "50"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert 'data-site-key="sk_' in result.output
    (site,) = web_container.repo.list_widget_sites()
    assert site.origins == ["https://a.example", "http://localhost:8080"]
    assert (site.rate_per_minute, site.daily_quota) == (5, 50)
    bad = runner.invoke(app, ["sites", "add", "--origin", "a.example"])
    assert bad.exit_code == 2 and "origin must look like" in bad.output
    assert runner.invoke(app, ["sites", "remove", site.key]).exit_code == 0
    assert web_container.repo.list_widget_sites() == []
