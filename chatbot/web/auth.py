"""Accounts shared by the UI and the API: argon2 passwords, DB sessions, a login throttle.

The session cookie carries a random token; the database keeps only its SHA-256, so a leaked
database does not leak live sessions, and logout or expiry ends a session everywhere. Failed
logins are rows in the database, so the throttle holds across server processes; a row holds a
keyed hash (HMAC with ``secret_key``) of the name or the address (IPv6 by /64), not the name or
address itself.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from chatbot.domain import InvalidInputError, readable_acls
from chatbot.settings import WebSettings
from chatbot.web.client_address import limit_key
from chatbot.web.errors import ApiError

SESSION_COOKIE = "chatbot_session"
PASSWORD_MIN = 8
PASSWORD_MAX = 256
RESERVED_PREFIXES = ("anon-", "widget-", "site-")
USERNAME_CHARS = set("._-@")


class UserRow(Protocol):
    """What the web layer reads from a user row."""

    id: str
    username: str
    role: str
    is_anonymous: bool
    password_hash: str | None


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in user, or a widget visitor of one site."""

    user_id: str
    username: str
    role: str = "user"
    is_anonymous: bool = False
    site_id: str | None = None
    visitor_token: str | None = None  # set when this request issued a new visitor token
    groups: tuple[str, ...] = field(default=())

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and self.site_id is None

    @property
    def acls(self) -> list[str]:
        """The ACL labels this principal may read (public, own, groups)."""
        return readable_acls(self.user_id, self.groups)

    @classmethod
    def of(cls, user: UserRow, **extra: Any) -> Principal:
        return cls(
            user_id=user.id,
            username=user.username,
            role=user.role,
            is_anonymous=user.is_anonymous,
            **extra,
        )


def token_hash(token: str) -> str:
    """The SHA-256 hex digest stored in place of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Sign-up, login with throttling, sessions and password changes."""

    def __init__(self, repo: Any, settings: WebSettings, *, secret_key: str) -> None:
        """``repo`` is the container's Repository; ``secret_key`` keys the throttle's hashes."""
        self.repo = repo
        self.settings = settings
        self._throttle_key = secret_key.encode()
        self.hasher = PasswordHasher()

    @cached_property
    def _dummy_hash(self) -> str:
        return self.hasher.hash(secrets.token_hex(8))

    # -- passwords -----------------------------------------------------------------------------

    def hash_password(self, password: str) -> str:
        """An argon2id hash of a valid new password."""
        if len(password) < PASSWORD_MIN:
            raise InvalidInputError(f"password must be at least {PASSWORD_MIN} characters")
        if len(password) > PASSWORD_MAX:
            raise InvalidInputError(f"password must be at most {PASSWORD_MAX} characters")
        return self.hasher.hash(password)

    def verify_password(self, stored: str | None, password: str) -> bool:
        """True if ``password`` matches; takes the same time when there is no hash."""
        try:
            return self.hasher.verify(stored or self._dummy_hash, password[:PASSWORD_MAX]) and (
                stored is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    # -- accounts ------------------------------------------------------------------------------

    def signup(self, username: str, password: str, *, role: str = "user") -> UserRow:
        """Create an account; InvalidInputError says what is wrong with the name or password."""
        name = check_new_username(username)
        user: UserRow = self.repo.create_user(
            username=name, password_hash=self.hash_password(password), role=role
        )
        return user

    def login(self, username: str, password: str, *, client_ip: str) -> UserRow:
        """The user if the password is right; 401 if not, 429 when throttled."""
        name = username.strip()[:64]
        keys = [
            self._throttle_id("user", name.casefold()),
            self._throttle_id("ip", limit_key(client_ip)),
        ]
        self._check_throttle(keys)
        user: UserRow | None = self.repo.get_user_by_name(username=name) if name else None
        stored = user.password_hash if user is not None and not user.is_anonymous else None
        if user is None or not self.verify_password(stored, password):
            now = datetime.now(UTC)
            self.repo.record_login_failure(
                keys=keys, forget_before=now - timedelta(seconds=self.settings.login_window_s * 2)
            )
            raise ApiError(401, "wrong username or password", code="invalid_credentials")
        if self.hasher.check_needs_rehash(stored or ""):
            self.repo.update_account(user_id=user.id, password_hash=self.hasher.hash(password))
        return user

    def _throttle_id(self, kind: str, value: str) -> str:
        """``kind:`` and a keyed hash of ``value``: equal values count together, unreadably."""
        digest = hmac.new(self._throttle_key, value.encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{digest[:40]}"

    def _check_throttle(self, keys: list[str]) -> None:
        window = self.settings.login_window_s
        now = datetime.now(UTC)
        failures = self.repo.login_failures(keys=keys, since=now - timedelta(seconds=window))
        limits = (self.settings.login_failures_per_user, self.settings.login_failures_per_ip)
        for key, limit in zip(keys, limits, strict=True):
            times: list[datetime] = failures.get(key, [])
            if len(times) >= limit:
                oldest = _aware(times[-limit])
                wait = max(1, math.ceil(window - (now - oldest).total_seconds()))
                what = "this account" if key.startswith("user:") else "your address"
                raise ApiError(
                    429,
                    f"too many failed logins for {what}; try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )

    # -- sessions ------------------------------------------------------------------------------

    def start_session(self, user_id: str) -> tuple[str, int]:
        """A new session token for the cookie and its lifetime in seconds."""
        token = secrets.token_urlsafe(32)
        lifetime = timedelta(days=self.settings.session_days)
        self.repo.create_web_session(
            user_id=user_id, token_hash=token_hash(token), expires_at=datetime.now(UTC) + lifetime
        )
        return token, int(lifetime.total_seconds())

    def user_for_session(self, token: str | None) -> UserRow | None:
        """The signed-in user of a session cookie, or None."""
        if not token or len(token) > 128:
            return None
        user: UserRow | None = self.repo.user_for_web_session(token_hash=token_hash(token))
        return user

    def end_session(self, token: str | None) -> None:
        if token and len(token) <= 128:
            self.repo.delete_web_session(token_hash=token_hash(token))


def check_new_username(username: str) -> str:
    """A valid name for a new account: 2-64 letters, digits or ``._-@``, not a reserved prefix."""
    name = username.strip()
    if not 2 <= len(name) <= 64:
        raise InvalidInputError("username must be 2 to 64 characters")
    if not all(ch.isalnum() or ch in USERNAME_CHARS for ch in name):
        raise InvalidInputError("username may contain only letters, digits and . _ - @")
    if name.casefold().startswith(RESERVED_PREFIXES):
        raise InvalidInputError("usernames starting with anon-, widget- or site- are reserved")
    return name


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
