"""The embeddable widget's server side: site keys, exact origins, quotas, visitor identities.

A request speaks for a widget when it carries ``X-Site-Key``. Then its ``Origin`` must be one of
the site's origins exactly (scheme, host and port; an empty list allows nothing), chats count
against the site's per-minute limit and daily quota in the database (so several server
processes agree), and the visitor is one anonymous user row per visitor token, scoped to the
site. A host site can instead pass a user token it signed with the site secret
(``<user id>.<expiry>.<HMAC-SHA256 hex>``) so its signed-in users keep their identity.
Cookies are ignored for widget requests, and CORS never allows credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from fastapi import Request

from chatbot.domain import InvalidInputError
from chatbot.settings import WebSettings
from chatbot.web.auth import Principal, token_hash
from chatbot.web.client_address import client_address, limit_key
from chatbot.web.errors import ApiError

SITE_KEY_HEADER = "x-site-key"
VISITOR_HEADER = "x-visitor-token"
USER_TOKEN_HEADER = "x-user-token"
HOST_USER_ID = re.compile(r"^[A-Za-z0-9._@:-]{1,100}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class SiteRow(Protocol):
    id: str
    key: str
    secret: str
    origins: list[str]
    rate_per_minute: int
    daily_quota: int


def normalise_origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case without a default port; InvalidInputError if not."""
    text = value.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidInputError(f"origin must look like https://example.org, not {value!r}")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInputError(f"origin must not have a path, query or user: {value!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError(f"origin has an invalid port: {value!r}") from exc
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def origin_matches(origin: str | None, allowed: list[str]) -> bool:
    """Exact match of a request's Origin against an allow-list (empty allows nothing)."""
    if not origin or not allowed:
        return False
    try:
        return normalise_origin(origin) in allowed
    except InvalidInputError:
        return False


def sign_user_token(secret: str, user_id: str, expires_at: int) -> str:
    """What a host site computes for its signed-in user (documented for integrators)."""
    payload = f"{user_id}.{expires_at}"
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{digest}"


def verify_user_token(secret: str, token: str, *, now: float, max_age_s: int) -> str | None:
    """The host's user id if the token is well-formed, authentic and current, else None."""
    try:
        user_id, expires, digest = token.rsplit(".", 2)
        expires_at = int(expires)
    except ValueError:
        return None
    if not HOST_USER_ID.match(user_id) or not now < expires_at <= now + max_age_s:
        return None
    expected = sign_user_token(secret, user_id, expires_at).rsplit(".", 1)[1]
    return user_id if hmac.compare_digest(expected, digest) else None


def new_site_credentials() -> tuple[str, str]:
    """A fresh public site key and a signing secret."""
    return "sk_" + secrets.token_urlsafe(24), secrets.token_urlsafe(32)


class WidgetGate:
    """Turns a widget request into a Principal, or refuses it with 401/403/429."""

    def __init__(self, repo: Any, settings: WebSettings) -> None:
        """``repo`` is the container's Repository."""
        self.repo = repo
        self.settings = settings

    def client(self, request: Request) -> str:
        """The request's client address (``X-Forwarded-For`` only from a trusted proxy)."""
        peer = request.client.host if request.client else "unknown"
        return client_address(
            peer, request.headers.get("x-forwarded-for"), self.settings.trusted_proxies
        )

    def is_widget_request(self, request: Request) -> bool:
        return SITE_KEY_HEADER in request.headers

    def allowed_origin(self, origin: str) -> bool:
        """True if any enabled site allows this origin (decides CORS preflights)."""
        try:
            return normalise_origin(origin) in self.repo.widget_origins()
        except InvalidInputError:
            return False

    def site(self, request: Request) -> SiteRow:
        """The site of the request's key, if the request comes from one of its origins."""
        key = request.headers.get(SITE_KEY_HEADER, "").strip()
        site: SiteRow | None = self.repo.get_widget_site(key=key) if 0 < len(key) <= 64 else None
        if site is None:
            raise ApiError(403, "unknown or disabled site key", code="bad_site_key")
        if not origin_matches(request.headers.get("origin"), site.origins):
            raise ApiError(
                403, "this site is not allowed to use the chat widget", code="origin_not_allowed"
            )
        return site

    def principal(self, request: Request, *, chat: bool = False) -> Principal:
        """Who the widget speaks for; a chat also counts against the site's limits.

        A chat from a visitor without a (known) token creates a new anonymous user and returns
        the new token in ``Principal.visitor_token``; other requests need a known visitor.
        """
        site = self.site(request)
        if chat:
            self._count_chat(site, limit_key(self.client(request)))
        user_token = request.headers.get(USER_TOKEN_HEADER)
        if user_token:
            host_user = verify_user_token(
                site.secret,
                user_token,
                now=time.time(),
                max_age_s=self.settings.widget_user_token_max_s,
            )
            if host_user is None:
                raise ApiError(401, "the user token is invalid or expired", code="bad_user_token")
            return self._identity(site, f"user:{host_user}", None)
        visitor = request.headers.get(VISITOR_HEADER, "")
        subject = f"visitor:{token_hash(visitor)}" if 16 <= len(visitor) <= 128 else ""
        user_id = self.repo.widget_identity(site_id=site.id, subject=subject) if subject else None
        if user_id is not None:
            return self._principal(user_id, site, None)
        if not chat:
            raise ApiError(401, "unknown visitor; start a chat first", code="unknown_visitor")
        visitor = secrets.token_urlsafe(24)
        return self._identity(site, f"visitor:{token_hash(visitor)}", visitor)

    def _identity(self, site: SiteRow, subject: str, new_token: str | None) -> Principal:
        user_id = self.repo.widget_identity(site_id=site.id, subject=subject)
        if user_id is None:
            user_id = self.repo.add_widget_identity(
                site_id=site.id, subject=subject, username=f"anon-{secrets.token_hex(16)}"
            )
        return self._principal(user_id, site, new_token)

    def _principal(self, user_id: str, site: SiteRow, new_token: str | None) -> Principal:
        user = self.repo.get_user(user_id=user_id)
        if user is None:  # the user was deleted; the visitor starts over
            raise ApiError(401, "unknown visitor; start a chat first", code="unknown_visitor")
        return Principal.of(user, site_id=site.id, visitor_token=new_token)

    def _count_chat(self, site: SiteRow, client: str) -> None:
        """Count a chat against the site's limits and this client's share of them, or 429."""
        now = datetime.now(UTC)
        minute, day = now.strftime("%Y%m%d%H%M"), now.strftime("%Y%m%d")
        # stored as a keyed hash: neither reversible by trying all IPv4s nor linkable across sites
        # (16 hex digits: "vm:<minute>:<hash>" must fit BUCKET_MAX_LENGTH, 32; the repository
        # refuses longer names on every backend)
        who = hmac.new(site.secret.encode(), client.encode(), hashlib.sha256).hexdigest()[:16]
        web = self.settings
        limits = {
            f"vm:{minute}:{who}": (
                web.widget_visitor_rate_per_minute,
                "you have reached",
                "minute",
            ),
            f"vd:{day}:{who}": (web.widget_visitor_daily_quota, "you have used up", "day"),
            f"m:{minute}": (site.rate_per_minute, "this site has reached", "minute"),
            f"d:{day}": (site.daily_quota, "this site has used up", "day"),
        }
        full = self.repo.consume_widget_quota(
            site_id=site.id, limits=[(bucket, limit) for bucket, (limit, _, _) in limits.items()]
        )
        if full is None:
            return
        limit, whose, period = limits[full]
        if period == "minute":
            wait = 60 - now.second
            message = f"{whose} the chat limit of {limit} per minute"
        else:
            midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            wait = math.ceil((midnight - now).total_seconds())
            message = f"{whose} the daily quota of {limit} chats"
        raise ApiError(
            429, f"{message}; try again in {wait} s", headers={"Retry-After": str(max(wait, 1))}
        )
