"""Accounts: sign-up, login, logout, the session cookie and the DB-backed login throttle."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import signup


def test_signup_sets_a_strict_session_cookie_and_me_works(client: Any) -> None:
    response = client.post(
        "/api/auth/signup", json={"username": "alice", "password": "password123"}
    )
    assert response.status_code == 201
    cookie = response.headers["set-cookie"]
    assert "chatbot_session=" in cookie
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    me = client.get("/api/me").json()["user"]
    assert me["username"] == "alice" and me["role"] == "user" and me["site_id"] is None


def test_password_is_stored_as_argon2_hash(client: Any, web_container: Any) -> None:
    signup(client, "alice", "a much longer secret")
    stored = web_container.repo.get_user_by_name(username="alice").password_hash
    assert stored.startswith("$argon2id$")
    assert "a much longer secret" not in stored


def test_login_logout_and_the_session_ends_server_side(new_client: Any) -> None:
    first = new_client()
    signup(first, "alice")
    second = new_client()
    assert second.get("/api/me").status_code == 401
    response = second.post("/api/auth/login", json={"username": "alice", "password": "password123"})
    assert response.status_code == 200
    token = second.cookies.get("chatbot_session")
    assert second.get("/api/me").status_code == 200
    assert second.post("/api/auth/logout").status_code == 204
    # replaying the old cookie after logout does not work: the session row is gone
    third = new_client()
    third.cookies.set("chatbot_session", token)
    assert third.get("/api/me").status_code == 401


def test_bad_signups_say_what_is_wrong(client: Any) -> None:
    cases = {
        ("al", "short"): "password must be at least 8",
        ("anon-123", "password123"): "reserved",
        ("a b", "password123"): "may contain only",
    }
    for (name, password), expected in cases.items():
        response = client.post("/api/auth/signup", json={"username": name, "password": password})
        assert response.status_code == 400, response.text
        assert expected in response.json()["error"]["message"]
    signup(client, "alice")
    again = client.post("/api/auth/signup", json={"username": "alice", "password": "password123"})
    assert again.status_code == 400 and "taken" in again.json()["error"]["message"]


def test_wrong_password_and_unknown_user_look_the_same(client: Any) -> None:
    signup(client, "alice")
    wrong = client.post("/api/auth/login", json={"username": "alice", "password": "nope-nope"})
    unknown = client.post("/api/auth/login", json={"username": "nobody", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_five_failures_a_minute_lock_the_name_with_retry_after(new_client: Any) -> None:
    signup(new_client(), "alice")
    attacker = new_client()
    for _ in range(5):
        r = attacker.post("/api/auth/login", json={"username": "alice", "password": "wrong-pass"})
        assert r.status_code == 401
    blocked = attacker.post(
        "/api/auth/login", json={"username": "alice", "password": "password123"}
    )
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert blocked.json()["error"]["code"] == "rate_limited"


def test_throttle_is_in_the_database_so_another_process_sees_it(
    client: Any, web_container: Any
) -> None:
    """A second app on the same database (another worker process) refuses too."""
    from fastapi.testclient import TestClient

    from chatbot.container import Container
    from chatbot.web.app import create_app

    signup(client, "alice")
    for _ in range(5):
        client.post("/api/auth/login", json={"username": "alice", "password": "wrong-pass"})
    other = Container(web_container.settings)
    with TestClient(create_app(other, ui=False)) as second:
        r = second.post("/api/auth/login", json={"username": "alice", "password": "password123"})
        assert r.status_code == 429
    other.close()


def test_per_ip_throttle_covers_many_names(client: Any, web_container: Any) -> None:
    limit = web_container.settings.web.login_failures_per_ip
    for i in range(limit):
        client.post("/api/auth/login", json={"username": f"user{i}", "password": "wrong-pass"})
    r = client.post("/api/auth/login", json={"username": "someone-else", "password": "wrong-pass"})
    assert r.status_code == 429 and "your address" in r.json()["error"]["message"]


def test_throttle_rows_hold_keyed_hashes_and_count_ipv6_by_slash_64(
    app: Any, web_container: Any
) -> None:
    from fastapi.testclient import TestClient
    from sqlmodel import Session, select

    from chatbot.db.models import LoginFailure

    limit = web_container.settings.web.login_failures_per_ip
    for i in range(limit):  # a new address of the same /64 for every try
        with TestClient(app, client=(f"2001:db8:7:7::{i + 1:x}", 4000)) as c:
            c.post("/api/auth/login", json={"username": f"mallory{i}", "password": "wrong-pass"})
    with TestClient(app, client=("2001:db8:7:7:ffff::9", 4000)) as c:
        r = c.post("/api/auth/login", json={"username": "fresh", "password": "wrong-pass"})
    assert r.status_code == 429 and "your address" in r.json()["error"]["message"]
    with TestClient(app, client=("2001:db8:7:8::1", 4000)) as c:  # the next /64 is not blocked
        r = c.post("/api/auth/login", json={"username": "fresh", "password": "wrong-pass"})
    assert r.status_code == 401
    with Session(web_container.repo.engine) as session:
        keys = [row.key for row in session.exec(select(LoginFailure))]
    assert len(keys) == 2 * (limit + 1)
    assert all(k.split(":", 1)[0] in ("user", "ip") and len(k.split(":", 1)[1]) == 40 for k in keys)
    assert not any("mallory" in k or "fresh" in k or "2001" in k for k in keys)


def test_signup_can_be_disabled(monkeypatch: Any, tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from chatbot.container import Container
    from chatbot.settings import Settings
    from chatbot.web.app import create_app

    monkeypatch.setenv("CHATBOT_WEB__ALLOW_SIGNUP", "false")
    container = Container(Settings())
    with TestClient(create_app(container, ui=False)) as c:
        r = c.post("/api/auth/signup", json={"username": "alice", "password": "password123"})
        assert r.status_code == 403
    container.close()


def test_cli_makes_admins(web_container: Any, monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from chatbot.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["users", "add", "root", "--admin", "--password", "password123"])
    assert result.exit_code == 0, result.output
    assert web_container.repo.get_user_by_name(username="root").role == "admin"
    result = runner.invoke(app, ["users", "set-role", "root", "user"])
    assert result.exit_code == 0, result.output
    assert web_container.repo.get_user_by_name(username="root").role == "user"
