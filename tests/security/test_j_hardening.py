"""J. Gradio and platform hardening: known-CVE-free versions, closed file routes, upload limits,
no /monitoring, strict CORS, cookie flags, throttled login, security headers (guide J1-J10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from tests.security.advisories import ABSENT, FLOORS
from tests.security.live import PASSWORD, Live, live_server

EVIL = "https://evil.example"


def test_j1_dependency_audit(tmp_path: Path) -> None:
    """pip-audit when a vulnerability DB is reachable; always the offline floor of advisories."""
    audit = Path(sys.executable).with_name("pip-audit")
    reachable = False
    if audit.exists():
        try:
            run = subprocess.run(
                [str(audit), "--progress-spinner", "off", "-l", "-f", "json", "--timeout", "10"],
                capture_output=True, text=True, timeout=180,
            )  # fmt: skip
            report = json.loads(run.stdout or "{}")
            deps = report.get("dependencies", [])
            audited = [d for d in deps if "skip_reason" not in d]
            reachable = len(audited) > len(deps) // 2
            if reachable:
                vulnerable = {
                    d["name"]: [v["id"] for v in d["vulns"]] for d in audited if d["vulns"]
                }
                assert not vulnerable, f"pip-audit: {vulnerable}"
        except (subprocess.TimeoutExpired, json.JSONDecodeError):
            reachable = False
    (tmp_path / "pip-audit.txt").write_text(f"vulnerability DB reachable: {reachable}\n")
    too_old = []
    for package, floor, advisory, _source in FLOORS:
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
        if Version(installed.split("+")[0]) < Version(floor):
            too_old.append(f"{package} {installed} < {floor}: {advisory}")
    assert not too_old, too_old
    for package, why in ABSENT:
        with pytest.raises(metadata.PackageNotFoundError):
            metadata.version(package)
            pytest.fail(f"{package} is installed: {why}")


FILE_PROBES = [
    "/ui/gradio_api/file=/etc/passwd",
    "/ui/gradio_api/file=/tmp/gradio/../../etc/passwd",
    "/ui/gradio_api/file=%2Fetc%2Fpasswd",
    "/ui/gradio_api/file=..%2F..%2F..%2Fetc%2Fpasswd",
    "/ui/gradio_api/file/etc/passwd",
    "/ui/gradio_api/file=http://169.254.169.254/latest/meta-data/",
    "/ui/gradio_api/proxy=http://169.254.169.254/",
    "/ui/file=/etc/passwd",
    "/ui/gradio_api/file=pyproject.toml",
    "/static/../pyproject.toml",
    "/static/%2e%2e/pyproject.toml",
]


def test_j2_file_routes_are_closed(live: Live) -> None:
    alice = live.accounts["alice"].client
    probes = [*FILE_PROBES, f"/ui/gradio_api/file={live.data_dir / 'chatbot.db'}"]
    with live.client() as anonymous:
        for path in probes:
            for client in (alice, anonymous):
                r = client.get(path)
                assert r.status_code in (400, 401, 403, 404), (path, r.status_code)
                assert "root:" not in r.text and "SQLite format" not in r.text


def test_j3_upload_limits(live: Live) -> None:
    alice = live.accounts["alice"].client
    big = b"a" * 1_300_000  # the live server allows 1 MB
    r = alice.post("/api/documents", files={"file": ("big.txt", big, "text/plain")})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    r = alice.post("/ui/gradio_api/upload", files={"files": ("big.txt", big, "text/plain")})
    assert r.status_code == 413
    with live.client() as anonymous:
        r = anonymous.post("/ui/gradio_api/upload", files={"files": ("a.txt", b"a", "text/plain")})
        assert r.status_code in (401, 403)


@pytest.mark.timeout(120)
def test_j4_monitoring_and_dev_routes_are_off(live: Live) -> None:
    """``dev/reload`` was an endless event stream for any signed-in user (fixed: closed)."""
    alice = live.accounts["alice"].client
    for path in ("/ui/monitoring", "/ui/gradio_api/monitoring", "/ui/gradio_api/dev/reload",
                 "/ui/gradio_api/vibe-code", "/ui/gradio_api/runs",
                 "/ui/gradio_api/run-history/buckets"):  # fmt: skip
        with alice.stream("GET", path, timeout=10) as r:
            assert r.status_code in (401, 403, 404, 405), (path, r.status_code)


@pytest.mark.parametrize("path", ["/ui/config", "/ui/gradio_api/info", "/api/me", "/openapi.json",
                                  "/api/conversations", "/ui/"])  # fmt: skip
def test_j5_cors_never_echoes_a_foreign_origin(live: Live, path: str) -> None:
    alice = live.accounts["alice"].client
    for host in ("chat.example.com", "127.0.0.1", "localhost"):
        headers = {"origin": EVIL, "host": host}
        r = alice.get(path, headers=headers)
        assert "access-control-allow-origin" not in r.headers, (path, host)
        assert "access-control-allow-credentials" not in r.headers, (path, host)
        pre = alice.options(path, headers={**headers, "access-control-request-method": "GET"})
        assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers


def test_j6_session_cookie_flags(live: Live, tmp_path: Path) -> None:
    with live.client() as client:
        name = f"cookie-{uuid.uuid4().hex[:6]}"
        r = client.post("/api/auth/signup", json={"username": name, "password": PASSWORD})
        cookies = r.headers.get_list("set-cookie")
        assert len(cookies) == 1, cookies
        cookie = cookies[0].lower()
        assert cookie.startswith("chatbot_session=")
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        assert "secure" not in cookie, "plain http on loopback: Secure only when over https"
        client.get("/ui/")
        assert all(not c.startswith("access-token") for c in client.cookies), "gradio auth cookies"
    from fastapi.testclient import TestClient

    from chatbot.container import Container
    from chatbot.web.app import create_app
    from tests.security.live import make_settings

    container = Container(make_settings(tmp_path / "d", cookie_secure="always"))
    with TestClient(create_app(container, ui=False), base_url="https://chat.example.com") as tc:
        r = tc.post("/api/auth/signup", json={"username": "sec", "password": PASSWORD})
        cookie = r.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie
        assert "strict-transport-security" in r.headers
    container.close()


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(tmp_path_factory.mktemp("throttle"), ui=False, accounts=()) as server:
        yield server


def test_j7_login_is_throttled_per_account_and_per_address(throttled: Live) -> None:
    with throttled.client() as client:
        client.post("/api/auth/signup", json={"username": "victim", "password": PASSWORD})
        codes = [
            client.post(
                "/api/auth/login", json={"username": "victim", "password": f"wrong{i}"}
            ).status_code
            for i in range(7)
        ]
        assert codes[:5] == [401] * 5 and codes[5:] == [429, 429], codes
        right = client.post("/api/auth/login", json={"username": "victim", "password": PASSWORD})
        assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1
        codes = [
            client.post(
                "/api/auth/login", json={"username": f"nobody{i}", "password": "x"}
            ).status_code
            for i in range(25)
        ]
        assert 429 in codes and codes.index(429) <= 20, codes


HEADER_PATHS = ["/", "/login", "/ui/", "/api/health", "/api/me", "/openapi.json", "/docs",
                "/widget.js", "/nope", "/api/nope", "/ui/gradio_api/file=/etc/passwd"]  # fmt: skip


def test_j8_security_headers_everywhere(live: Live) -> None:
    alice = live.accounts["alice"].client
    responses = {p: alice.get(p, follow_redirects=False) for p in HEADER_PATHS}
    responses["413"] = alice.post(
        "/api/chat", content=b"x" * 40_000, headers={"content-type": "application/json"}
    )
    responses["422"] = alice.post("/api/chat", json={"nope": 1})
    responses["sse"] = alice.post("/api/chat", json={"message": "How do I clean my chain?"})
    for name, r in responses.items():
        assert r.headers.get("x-content-type-options") == "nosniff", name
        assert "content-security-policy" in r.headers, name
        assert "frame-ancestors" in r.headers["content-security-policy"], name
        assert r.headers.get("referrer-policy") == "no-referrer", name
    assert responses["sse"].headers.get("cache-control") == "no-store"


def test_j9_server_binds_loopback_by_default() -> None:
    from chatbot.settings import Settings

    assert Settings().server.host == "127.0.0.1"
    assert os.environ.get("CHATBOT_SERVER__HOST") in (None, "127.0.0.1")


def test_j10_no_route_takes_a_url_to_fetch(live: Live) -> None:
    spec = live.accounts["alice"].client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for op in ops.values():
            for param in op.get("parameters", []):
                assert param["name"].lower() not in ("url", "uri", "href", "link", "source_url"), (
                    path
                )
    routes: list[str] = sorted(spec["paths"])
    assert not [
        r for r in routes if "url" in r.lower() or "fetch" in r.lower() or "crawl" in r.lower()
    ]


def _unused(x: Any) -> None:  # keeps imports honest for ruff when tests are trimmed
    del x
