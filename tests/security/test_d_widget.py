"""D. Widget origin checks: exact match, empty list denies, missing or ``null`` Origin is refused,
a spoofed Origin (any non-browser client can send one) is still bound by the key's scope and
the site's quotas (guide D1-D10, section 3.3)."""

from __future__ import annotations

import concurrent.futures
import uuid
from typing import Any

import httpx
import pytest

from tests.security.live import W1_ORIGIN, Live, done, signup
from tests.web.conftest import parse_sse


def _headers(site: Any, origin: str | None = W1_ORIGIN, **extra: str) -> dict[str, str]:
    headers = {"x-site-key": site.key, **extra}
    if origin is not None:
        headers["origin"] = origin
    return headers


def _ask(
    client: httpx.Client, headers: dict[str, str], message: str = "How do I clean my chain?"
) -> httpx.Response:
    return client.post("/api/chat", json={"message": message}, headers=headers)


@pytest.fixture
def site(live: Live) -> Any:
    """A fresh W1-like site per test, so quotas do not leak between tests."""
    return live.container.repo.create_widget_site(
        key="sk_" + uuid.uuid4().hex[:12], secret="s-" + uuid.uuid4().hex, origins=[W1_ORIGIN],
        rate_per_minute=4, daily_quota=100,
    )  # fmt: skip


NOT_MATCHING = [
    "http://a.example",  # scheme
    "https://a.example:8443",  # port
    "https://evil.a.example",  # subdomain
    "https://a.example.evil.com",  # suffix
    "https://a.examplex",
    "https://xa.example",
    "https://a.example.",  # trailing dot
    "https://user@a.example",
    "https://a.example/path",
    "null",
    "*",
    "",
    "file://",
    "https://a.example, https://evil.example",
]


@pytest.mark.parametrize("origin", NOT_MATCHING)
def test_d1_d3_only_the_exact_origin_is_accepted(live: Live, site: Any, origin: str) -> None:
    with live.client() as client:
        r = _ask(client, _headers(site, origin))
        assert r.status_code == 403, (origin, r.status_code)
        assert "access-control-allow-origin" not in r.headers
        pre = client.options(
            "/api/chat",
            headers={"origin": origin or "null", "access-control-request-method": "POST"},
        )
        assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers


def test_d1_exact_origin_with_equivalent_spelling_is_accepted(live: Live, site: Any) -> None:
    with live.client() as client:
        for origin in (W1_ORIGIN, "HTTPS://A.EXAMPLE", "https://a.example:443"):
            r = _ask(client, _headers(site, origin))
            assert r.status_code == 200, (origin, r.text)
            assert r.headers["access-control-allow-origin"] == origin
            assert "access-control-allow-credentials" not in r.headers


def test_d2_an_empty_allow_list_denies_everything(live: Live) -> None:
    w2 = live.sites["W2"]
    with live.client() as client:
        for origin in (W1_ORIGIN, "http://127.0.0.1", "null", None):
            assert _ask(client, _headers(w2, origin)).status_code == 403


def test_d3_missing_origin_is_refused(live: Live, site: Any) -> None:
    with live.client() as client:
        assert _ask(client, _headers(site, None)).status_code == 403


def test_d4_spoofed_origin_stays_inside_the_key_scope(live: Live, site: Any) -> None:
    """Origin is not authentication: a script that forges it gets a visitor, nothing more."""
    alice = live.accounts["alice"]
    with live.client() as client:
        r = _ask(client, _headers(site), f"what about the {alice.topic}?")
        assert r.status_code == 200
        events = parse_sse(r.text)
        token = done(events)["visitor_token"]
        assert not any(c in r.text for c in live.all_canaries("alice"))
        assert not any(d in r.text for d in alice.doc_ids)
        visitor = _headers(site, **{"x-visitor-token": token})
        assert client.get("/api/documents", headers=visitor).status_code == 403
        assert (
            client.post(
                "/api/documents", headers=visitor, files={"file": ("a.md", b"x")}
            ).status_code
            == 403
        )
        r = client.get(f"/api/conversations/{alice.conversation_id}", headers=visitor)
        assert r.status_code == 404
        # the widget key never borrows a cookie session, even a valid one
        client.cookies.update(alice.client.cookies)
        me = client.get("/api/me", headers=visitor).json()["user"]
        assert me["site_id"] == site.id and me["id"] != alice.id


def test_d5_a_key_for_another_site_is_not_accepted_from_this_origin(live: Live, site: Any) -> None:
    other = live.container.repo.create_widget_site(
        key="sk_" + uuid.uuid4().hex[:12], secret="x", origins=["https://b.example"]
    )
    with live.client() as client:
        assert _ask(client, _headers(other, W1_ORIGIN)).status_code == 403
        assert (
            _ask(client, {"x-site-key": "sk_" + "0" * 12, "origin": W1_ORIGIN}).status_code == 403
        )
        assert _ask(client, {"x-site-key": "x" * 500, "origin": W1_ORIGIN}).status_code == 403


def test_d6_forged_visitor_tokens_and_user_tokens_get_no_one_elses_data(
    live: Live, site: Any
) -> None:
    with live.client() as client:
        first = done(parse_sse(_ask(client, _headers(site)).text))
        for forged in ("A" * 32, first["visitor_token"][:-1] + "x", "", "x" * 2000):
            h = _headers(site, **{"x-visitor-token": forged})
            r = client.get(f"/api/conversations/{first['conversation_id']}", headers=h)
            assert r.status_code in (401, 404), forged
        bad_user = _headers(site, **{"x-user-token": "admin.9999999999.deadbeef"})
        assert _ask(client, bad_user).status_code == 401


def test_d7_quotas_hold_under_concurrency_and_spoofing(live: Live) -> None:
    site = live.container.repo.create_widget_site(
        key="sk_" + uuid.uuid4().hex[:12], secret="x", origins=[W1_ORIGIN],
        rate_per_minute=1000, daily_quota=5,
    )  # fmt: skip

    def one(i: int) -> int:
        with live.client() as client:
            extra = {"x-forwarded-for": f"10.0.0.{i}", "x-real-ip": f"10.0.1.{i}"}
            return _ask(client, _headers(site, **extra)).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(12)))
    assert codes.count(200) == 5 and codes.count(429) == 7, codes
    with live.client() as client:
        r = _ask(client, _headers(site))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.headers["access-control-allow-origin"] == W1_ORIGIN
    (row,) = [u for u in live.container.repo.list_widget_sites() if u.id == site.id]
    assert row.daily_quota == 5


def test_d7_per_minute_limit(live: Live, site: Any) -> None:
    with live.client() as client:
        codes = [_ask(client, _headers(site)).status_code for _ in range(6)]
    assert codes.count(429) >= 1 and codes.count(200) <= 5, codes


def test_d9_widget_script_and_ui_framing(live: Live) -> None:
    with live.client() as client:
        js = client.get("/widget.js")
        assert (
            js.status_code == 200 and js.headers["cross-origin-resource-policy"] == "cross-origin"
        )
        assert 'credentials: "omit"' in js.text or 'credentials:"omit"' in js.text
    alice = live.accounts["alice"].client
    ui = alice.get("/ui/")
    assert "frame-ancestors 'none'" in ui.headers["content-security-policy"]


def test_d10_a_widget_visitor_is_not_a_signed_in_user(live: Live, site: Any) -> None:
    _, client = signup(live.url, f"victim-{uuid.uuid4().hex[:6]}")
    r = client.post("/api/chat", json={"message": "hi"}, headers={"origin": "https://evil.example"})
    client.close()
    assert r.status_code == 403, "cookie + foreign Origin is CSRF"
