"""CORS, security headers, request size limits, CSRF, and Gradio's CORS neutralised."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import make_ingester, signup

SITE = "https://shop.example"
EVIL = "https://evil.example"


@pytest.fixture
def site_key(web_container: Any) -> str:
    site = web_container.repo.create_widget_site(key="sk_test", secret="s3cret", origins=[SITE])
    return str(site.key)


def test_preflight_only_for_exact_widget_origins_and_never_with_credentials(
    client: Any, site_key: str
) -> None:
    ask = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-site-key",
    }
    ok = client.options("/api/chat", headers={"origin": SITE, **ask})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == SITE
    assert "access-control-allow-credentials" not in ok.headers
    assert "x-site-key" in ok.headers["access-control-allow-headers"].lower()
    for origin in (EVIL, "https://shop.example:8443", "http://shop.example", "null", "*"):
        refused = client.options("/api/chat", headers={"origin": origin, **ask})
        assert refused.status_code == 403, origin
        assert "access-control-allow-origin" not in refused.headers


def test_simple_responses_echo_only_allowed_origins(client: Any, site_key: str) -> None:
    r = client.get("/api/health", headers={"origin": SITE})
    assert r.headers["access-control-allow-origin"] == SITE
    assert "origin" in r.headers["vary"].lower()
    assert "access-control-allow-credentials" not in r.headers
    r = client.get("/api/health", headers={"origin": EVIL})
    assert "access-control-allow-origin" not in r.headers


def test_security_headers_everywhere(client: Any) -> None:
    for path in ("/api/health", "/login", "/widget.js", "/docs", "/openapi.json"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "no-referrer", path
        assert "content-security-policy" in r.headers, path
    login_csp = client.get("/login").headers["content-security-policy"]
    assert (
        "script-src 'self'" in login_csp
        and "unsafe-inline" not in login_csp.split("script-src")[1].split(";")[0]
    )
    assert "frame-ancestors 'none'" in login_csp
    widget = client.get("/widget.js")
    assert widget.headers["content-type"].startswith("text/javascript")
    assert widget.headers["cross-origin-resource-policy"] == "cross-origin"


def test_json_bodies_over_16kb_get_413(client: Any) -> None:
    signup(client, "alice")
    big = {"message": "x" * 20_000}
    r = client.post("/api/chat", json=big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"


def test_chunked_bodies_are_cut_off_too(client: Any) -> None:
    """No Content-Length: the limit is enforced while reading the stream."""
    signup(client, "alice")

    def body() -> Iterator[bytes]:
        yield b'{"message": "'
        for _ in range(40):
            yield b"y" * 1000
        yield b'"}'

    r = client.post("/api/chat", content=body(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_cookie_requests_from_another_origin_are_refused(client: Any) -> None:
    signup(client, "alice")
    r = client.post("/api/chat", json={"message": "hello"}, headers={"origin": EVIL})
    assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin"
    r = client.post(
        "/api/auth/login",
        json={"username": "alice", "password": "password123"},
        headers={"origin": EVIL},
    )
    assert r.status_code == 403


def test_root_redirects_to_ui_and_docs_exist(client: Any) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/ui/"
    spec = client.get("/openapi.json").json()
    for path in ("/api/chat", "/api/feedback", "/api/conversations", "/api/documents",
                 "/api/auth/login", "/api/me", "/api/health"):  # fmt: skip
        assert path in spec["paths"], path


@pytest.fixture
def ui_client(web_container: Any) -> Iterator[TestClient]:
    from chatbot.web.app import create_app

    app = create_app(web_container, ingester=make_ingester(web_container))
    with TestClient(app) as c:
        yield c


def test_ui_needs_login_and_gradio_cors_is_neutralised(ui_client: TestClient) -> None:
    r = ui_client.get("/ui/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    signup(ui_client, "alice")
    page = ui_client.get("/ui/")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "img-src 'self' data: blob:" in csp
    assert page.headers["x-frame-options"] == "DENY"
    # Security guide 1.4: Gradio echoed any Origin with credentials when Host is not localhost.
    probe = {"host": "chat.example.com", "origin": EVIL}
    config = ui_client.get("/ui/config", headers=probe)
    assert "access-control-allow-origin" not in config.headers
    assert "access-control-allow-credentials" not in config.headers
    preflight = ui_client.options(
        "/ui/config", headers={**probe, "access-control-request-method": "GET"}
    )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers


def test_gradio_file_routes_do_not_serve_data(ui_client: TestClient, web_container: Any) -> None:
    signup(ui_client, "alice")
    db = web_container.settings.data_dir / "chatbot.db"
    for path in (f"/ui/gradio_api/file={db}", "/ui/gradio_api/file=/etc/passwd"):
        r = ui_client.get(path)
        assert r.status_code in (403, 404), (path, r.status_code)
    assert ui_client.get("/ui/monitoring").status_code in (401, 403, 404)


def test_ui_session_is_the_api_session(ui_client: TestClient) -> None:
    signup(ui_client, "alice")
    assert ui_client.get("/ui/gradio_api/login_check").status_code == 200
    ui_client.post("/api/auth/logout")
    assert ui_client.get("/ui/gradio_api/login_check").status_code == 401
