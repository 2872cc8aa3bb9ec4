"""Queries of the web layer: login sessions, the login throttle and embedding sites.

``Repository`` inherits these; they live apart to keep each module readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from chatbot.db import models as m
from chatbot.db.engine import NO_SYNC, session_scope
from chatbot.db.models import User, utcnow
from chatbot.db.validation import USER_NOT_FOUND, valid_username
from chatbot.domain import InvalidInputError, NotFoundError


class WebAccessQueries:
    """Sessions, failed logins, widget sites, their quotas and visitor identities."""

    _engine: Engine

    def create_web_session(self, *, user_id: str, token_hash: str, expires_at: datetime) -> None:
        """Store a login session (only the hash of its cookie token); drops expired ones."""
        with session_scope(self._engine) as session:
            if session.get(User, user_id) is None:
                raise NotFoundError(USER_NOT_FOUND)
            session.exec(
                delete(m.WebSession).where(col(m.WebSession.expires_at) < utcnow()),
                execution_options=NO_SYNC,
            )
            session.add(m.WebSession(token_hash=token_hash, user_id=user_id, expires_at=expires_at))

    def user_for_web_session(self, *, token_hash: str) -> User | None:
        """The user of an unexpired session, or None."""
        statement = (
            select(User)
            .join(m.WebSession, col(m.WebSession.user_id) == col(User.id))
            .where(m.WebSession.token_hash == token_hash, col(m.WebSession.expires_at) > utcnow())
        )
        with session_scope(self._engine, read_only=True) as session:
            return session.exec(statement).first()

    def delete_web_session(self, *, token_hash: str) -> None:
        """End a session (logout); unknown tokens are ignored."""
        with session_scope(self._engine) as session:
            session.exec(
                delete(m.WebSession).where(col(m.WebSession.token_hash) == token_hash),
                execution_options=NO_SYNC,
            )

    def login_failures(self, *, keys: Sequence[str], since: datetime) -> dict[str, list[datetime]]:
        """Times of the failed logins under each key since ``since``, oldest first."""
        statement = (
            select(m.LoginFailure.key, m.LoginFailure.created_at)
            .where(col(m.LoginFailure.key).in_(list(keys)), col(m.LoginFailure.created_at) >= since)
            .order_by(col(m.LoginFailure.created_at))
        )
        found: dict[str, list[datetime]] = {key: [] for key in keys}
        with session_scope(self._engine, read_only=True) as session:
            for key, created_at in session.exec(statement):
                found[key].append(created_at)
        return found

    def record_login_failure(self, *, keys: Sequence[str], forget_before: datetime) -> None:
        """Count one failed login under every key; forget failures older than ``forget_before``."""
        with session_scope(self._engine) as session:
            session.exec(
                delete(m.LoginFailure).where(col(m.LoginFailure.created_at) < forget_before),
                execution_options=NO_SYNC,
            )
            session.add_all([m.LoginFailure(key=key) for key in keys])

    def create_widget_site(
        self,
        *,
        key: str,
        secret: str,
        origins: Sequence[str],
        name: str = "",
        rate_per_minute: int = 20,
        daily_quota: int = 1000,
    ) -> Any:
        """Register a site that may embed the widget (origins are stored as given)."""
        if rate_per_minute < 1 or daily_quota < 1:
            raise InvalidInputError("rate_per_minute and daily_quota must be at least 1")
        site = m.WidgetSite(
            key=key,
            secret=secret,
            name=name.strip(),
            origins=list(dict.fromkeys(origins)),
            rate_per_minute=rate_per_minute,
            daily_quota=daily_quota,
        )
        with session_scope(self._engine) as session:
            session.add(site)
        return site

    def list_widget_sites(self) -> list[Any]:
        """Every registered widget site, oldest first."""
        statement = select(m.WidgetSite).order_by(col(m.WidgetSite.created_at))
        with session_scope(self._engine, read_only=True) as session:
            return list(session.exec(statement).all())

    def get_widget_site(self, *, key: str) -> Any | None:
        """The enabled site with this public key, or None."""
        statement = select(m.WidgetSite).where(
            m.WidgetSite.key == key, col(m.WidgetSite.enabled).is_(True)
        )
        with session_scope(self._engine, read_only=True) as session:
            return session.exec(statement).first()

    def delete_widget_site(self, *, key: str) -> None:
        """Remove a site with its usage counters and visitor mappings (users stay)."""
        with session_scope(self._engine) as session:
            site = session.exec(select(m.WidgetSite).where(m.WidgetSite.key == key)).first()
            if site is None:
                raise NotFoundError("site not found")
            for table in (m.WidgetIdentity, m.WidgetUsage):
                session.exec(
                    delete(table).where(col(table.site_id) == site.id),
                    execution_options=NO_SYNC,
                )
            session.exec(
                delete(m.WidgetSite).where(col(m.WidgetSite.id) == site.id),
                execution_options=NO_SYNC,
            )

    def widget_origins(self) -> set[str]:
        """The union of the allowed origins of every enabled site (for CORS preflights)."""
        statement = select(m.WidgetSite.origins).where(col(m.WidgetSite.enabled).is_(True))
        with session_scope(self._engine, read_only=True) as session:
            return {origin for origins in session.exec(statement) for origin in origins}

    def consume_widget_quota(
        self, *, site_id: str, limits: Sequence[tuple[str, int]]
    ) -> str | None:
        """Count one chat in every (bucket, limit) pair, all or nothing.

        Returns None if counted, else the first bucket that was full (nothing is counted then).
        Each bucket is one row bumped by ``UPDATE ... SET count = count + 1 WHERE count < limit``
        inside one write transaction, so concurrent processes never exceed a limit. Buckets are
        named ``kind:period[:who]``; the first row of a new period removes the rows of that kind
        from earlier periods.
        """

        class _QuotaFull(Exception):
            def __init__(self, bucket: str) -> None:
                self.bucket = bucket

        usage = m.WidgetUsage
        too_long = [bucket for bucket, _ in limits if len(bucket) > m.BUCKET_MAX_LENGTH]
        if too_long:  # SQLite would store them; PostgreSQL would fail the chat
            raise InvalidInputError(
                f"quota bucket names must be at most {m.BUCKET_MAX_LENGTH} characters: {too_long}"
            )
        try:
            with session_scope(self._engine) as session:
                dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
                for bucket, limit in limits:
                    new = dialect.insert(usage).values(site_id=site_id, bucket=bucket, count=0)
                    if session.exec(new.on_conflict_do_nothing()).rowcount:  # type: ignore[attr-defined]
                        kind, _, rest = bucket.partition(":")
                        period = rest.split(":", 1)[0]
                        session.exec(
                            delete(usage).where(
                                col(usage.site_id) == site_id,
                                col(usage.bucket).like(f"{kind}:%"),
                                col(usage.bucket) != f"{kind}:{period}",
                                col(usage.bucket).not_like(f"{kind}:{period}:%"),
                            ),
                            execution_options=NO_SYNC,
                        )
                    bump = (
                        update(usage)
                        .where(
                            col(usage.site_id) == site_id,
                            col(usage.bucket) == bucket,
                            col(usage.count) < limit,
                        )
                        .values(count=col(usage.count) + 1)
                    )
                    if not session.exec(bump, execution_options=NO_SYNC).rowcount:  # type: ignore[call-overload]
                        raise _QuotaFull(bucket)
        except _QuotaFull as full:
            return full.bucket
        return None

    def widget_identity(self, *, site_id: str, subject: str) -> str | None:
        """The user id mapped to this visitor or host user of the site, or None."""
        statement = select(m.WidgetIdentity.user_id).where(
            m.WidgetIdentity.site_id == site_id, m.WidgetIdentity.subject == subject
        )
        with session_scope(self._engine, read_only=True) as session:
            return session.exec(statement).first()

    def add_widget_identity(self, *, site_id: str, subject: str, username: str) -> str:
        """Map a subject of the site to a new anonymous user row; returns the user id.

        If another request mapped the same subject first, that mapping wins.
        """
        user = User(username=valid_username(username), is_anonymous=True)
        try:
            with session_scope(self._engine) as session:
                session.add(user)
                session.flush()
                session.add(m.WidgetIdentity(site_id=site_id, subject=subject, user_id=user.id))
        except IntegrityError:
            existing = self.widget_identity(site_id=site_id, subject=subject)
            if existing is None:
                raise
            return existing
        return user.id
