"""The only module that runs queries: one ``Repository`` for users, chats, feedback and privacy.

Every method opens and closes its own session, takes keyword-only arguments and returns
detached model instances or plain data, so Gradio handlers and API routes share one code path
and never hold a session. Anything that is missing or belongs to someone else raises the same
``NotFoundError`` with the same message, so ids cannot be probed. Malformed input raises
``InvalidInputError`` with a message that says what to fix.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from chatbot.db.engine import session_scope
from chatbot.db.models import (
    AUTO_TITLE_LENGTH,
    COMMENT_MAX_LENGTH,
    DEFAULT_TITLE,
    MESSAGE_ROLES,
    RATINGS,
    TITLE_MAX_LENGTH,
    USER_ROLES,
    USERNAME_MAX_LENGTH,
    Conversation,
    Feedback,
    Message,
    TurnTrace,
    User,
    UserRole,
    new_id,
    utcnow,
)
from chatbot.domain import FEEDBACK_REASONS, InvalidInputError, NotFoundError, Role

logger = logging.getLogger(__name__)

USER_NOT_FOUND = "user not found"
CONVERSATION_NOT_FOUND = "conversation not found"
MESSAGE_NOT_FOUND = "message not found"
TRACE_NOT_FOUND = "trace not found"

EXPORT_FORMAT = "chatbot-export/1"
_IN_CHUNK = 500  # ids per IN (...) list, well under SQLite's bound-parameter limit
_NO_SYNC = {"synchronize_session": False}  # bulk deletes: nothing is loaded in the session


class Repository:
    """Typed access to the relational store; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        """Use ``engine`` (from ``make_engine``) for every session."""
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The engine, for sibling repositories that share the database."""
        return self._engine

    # ------------------------------------------------------------------ users

    def create_user(
        self,
        *,
        username: str,
        password_hash: str | None = None,
        role: str = "user",
        is_anonymous: bool = False,
    ) -> User:
        """A new user; InvalidInputError if the name is invalid or taken."""
        user = User(
            username=_valid_username(username),
            password_hash=password_hash,
            role=_valid_user_role(role),
            is_anonymous=is_anonymous,
        )
        try:
            with session_scope(self._engine) as session:
                if _user_by_name(session, user.username) is not None:
                    raise InvalidInputError("username is already taken")
                session.add(user)
        except IntegrityError as exc:  # lost a race with another create of the same name
            raise InvalidInputError("username is already taken") from exc
        return user

    def get_user(self, *, user_id: str) -> User | None:
        """The user with this id, or None."""
        with session_scope(self._engine, read_only=True) as session:
            return session.get(User, user_id)

    def get_user_by_name(self, *, username: str) -> User | None:
        """The user with this name (surrounding spaces ignored), or None."""
        with session_scope(self._engine, read_only=True) as session:
            return _user_by_name(session, username.strip())

    def ensure_user(self, *, username: str) -> User:
        """The user with this name, created if missing; concurrent callers get the same row."""
        name = _valid_username(username)
        existing = self.get_user_by_name(username=name)
        if existing is not None:
            return existing
        try:
            return self.create_user(username=name)
        except InvalidInputError:  # someone else created it in between
            existing = self.get_user_by_name(username=name)
            if existing is None:
                raise
            return existing

    def set_personalisation(self, *, user_id: str, enabled: bool) -> User:
        """Switch personalisation on or off for a user."""
        with session_scope(self._engine) as session:
            user = session.get(User, user_id, with_for_update=True)
            if user is None:
                raise NotFoundError(USER_NOT_FOUND)
            user.personalisation_enabled = enabled
            session.add(user)
        return user

    # ---------------------------------------------------------- conversations

    def create_conversation(self, *, user_id: str, title: str = DEFAULT_TITLE) -> Conversation:
        """A new, empty conversation of an existing user."""
        clean = _valid_title(title)
        with session_scope(self._engine) as session:
            if session.get(User, user_id) is None:
                raise NotFoundError(USER_NOT_FOUND)
            conversation = Conversation(user_id=user_id, title=clean)
            conversation.updated_at = conversation.created_at
            session.add(conversation)
        return conversation

    def list_conversations(self, *, user_id: str) -> list[Conversation]:
        """The user's conversations, most recently active first."""
        statement = (
            select(Conversation)
            .where(Conversation.user_id == user_id)
            .order_by(
                col(Conversation.updated_at).desc(),
                col(Conversation.created_at).desc(),
                col(Conversation.id),
            )
        )
        with session_scope(self._engine, read_only=True) as session:
            return list(session.exec(statement).all())

    def get_conversation(self, *, user_id: str, conversation_id: str) -> Conversation:
        """The conversation if it exists and is the user's; otherwise NotFoundError."""
        with session_scope(self._engine, read_only=True) as session:
            return _owned_conversation(session, user_id, conversation_id)

    def rename_conversation(
        self, *, user_id: str, conversation_id: str, title: str
    ) -> Conversation:
        """Give a conversation a new title (does not change its place in the list)."""
        clean = _valid_title(title)
        with session_scope(self._engine) as session:
            conversation = _owned_conversation(session, user_id, conversation_id, lock=True)
            conversation.title = clean
            session.add(conversation)
        return conversation

    def delete_conversation(self, *, user_id: str, conversation_id: str) -> None:
        """Delete a conversation with its messages, their traces and all feedback on them.

        Like ``delete_user``, the WAL is then checkpointed and truncated: until a checkpoint the
        main file still holds the pages as they were before the delete (tests/reliability I3).
        """
        with session_scope(self._engine) as session:
            _owned_conversation(session, user_id, conversation_id, lock=True)
            message_ids = select(Message.id).where(Message.conversation_id == conversation_id)
            _delete_message_rows(session, message_ids)
            session.exec(
                delete(Conversation).where(col(Conversation.id) == conversation_id),
                execution_options=_NO_SYNC,
            )
        self._truncate_sqlite_wal()

    # --------------------------------------------------------------- messages

    def add_message(
        self,
        *,
        user_id: str,
        conversation_id: str,
        role: str,
        content: str,
        citations: Sequence[Mapping[str, Any]] | None = None,
        refused: bool = False,
        trace: Mapping[str, Any] | None = None,
    ) -> Message:
        """Append a message to one of the user's conversations.

        Bumps the conversation's ``updated_at``, stores ``trace`` (assistant messages only)
        and titles a still-default conversation after its first user message. Timestamps
        within a conversation strictly increase, so ordering by time is the order of adding.
        """
        message_role = _check_message(role, content, trace)
        with session_scope(self._engine) as session:
            conversation = _owned_conversation(session, user_id, conversation_id, lock=True)
            message = Message(
                conversation_id=conversation_id,
                user_id=user_id,
                role=message_role,
                content=content,
                citations=[dict(c) for c in citations or ()],
                refused=refused,
                created_at=_next_timestamp(session, conversation_id),
            )
            if role == "user" and _is_untitled(session, conversation):
                conversation.title = _auto_title(content) or conversation.title
            conversation.updated_at = message.created_at
            session.add_all([message, conversation])
            if trace is not None:
                session.flush()  # the trace's foreign key needs the message row first
                session.add(TurnTrace(message_id=message.id, data=dict(trace)))
        return message

    def list_messages(
        self, *, user_id: str, conversation_id: str, limit: int | None = None
    ) -> list[Message]:
        """The conversation's messages, oldest first; only the last ``limit`` if given."""
        if limit is not None and limit < 0:
            raise InvalidInputError("limit must not be negative")
        statement = (
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(col(Message.created_at).desc(), col(Message.id).desc())
            .limit(limit)
        )
        with session_scope(self._engine, read_only=True) as session:
            _owned_conversation(session, user_id, conversation_id)
            newest_first = list(session.exec(statement).all())
        return newest_first[::-1]

    def get_message(self, *, user_id: str, message_id: str) -> Message:
        """The message if it exists and is the user's; otherwise NotFoundError."""
        with session_scope(self._engine, read_only=True) as session:
            return _owned_message(session, user_id, message_id)

    def get_trace(self, *, user_id: str, message_id: str) -> dict[str, Any]:
        """The trace stored with one of the user's assistant messages."""
        with session_scope(self._engine, read_only=True) as session:
            _owned_message(session, user_id, message_id)
            trace = session.get(TurnTrace, message_id)
            if trace is None:
                raise NotFoundError(TRACE_NOT_FOUND)
            return dict(trace.data)

    # --------------------------------------------------------------- feedback

    def rate_message(
        self,
        *,
        user_id: str,
        message_id: str,
        rating: str,
        reason: str | None = None,
        comment: str | None = None,
    ) -> Feedback:
        """Rate one of the user's assistant messages; a second rating replaces the first.

        One row per (user, message) even under concurrent calls: a single
        INSERT ... ON CONFLICT DO UPDATE on SQLite and PostgreSQL (inside an IMMEDIATE
        transaction on SQLite), a locked read-then-write on other databases.
        """
        clean_comment = _check_feedback(rating, reason, comment)
        values = {"rating": rating, "reason": reason, "comment": clean_comment}
        try:
            with session_scope(self._engine) as session:
                _owned_message(session, user_id, message_id, assistant_only=True)
                _upsert_feedback(session, user_id, message_id, values)
                return _feedback_row(session, user_id, message_id)
        except IntegrityError as exc:  # the message was deleted concurrently
            raise NotFoundError(MESSAGE_NOT_FOUND) from exc

    def list_feedback(
        self, *, user_id: str | None = None, since: datetime | None = None
    ) -> list[Feedback]:
        """Feedback, most recently changed first; optionally one user's, changed since ``since``."""
        statement = select(Feedback).order_by(col(Feedback.updated_at).desc(), col(Feedback.id))
        if user_id is not None:
            statement = statement.where(Feedback.user_id == user_id)
        if since is not None:
            if since.utcoffset() is None:
                raise InvalidInputError("since must be timezone-aware")
            statement = statement.where(col(Feedback.updated_at) >= since)
        with session_scope(self._engine, read_only=True) as session:
            return list(session.exec(statement).all())

    def feedback_for_messages(
        self, *, user_id: str, message_ids: Iterable[str]
    ) -> dict[str, Feedback]:
        """The user's feedback on these messages, keyed by message id (unrated ones absent)."""
        ids = list(dict.fromkeys(message_ids))
        found: dict[str, Feedback] = {}
        with session_scope(self._engine, read_only=True) as session:
            for start in range(0, len(ids), _IN_CHUNK):
                statement = select(Feedback).where(
                    Feedback.user_id == user_id,
                    col(Feedback.message_id).in_(ids[start : start + _IN_CHUNK]),
                )
                found.update((row.message_id, row) for row in session.exec(statement))
        return found

    # ---------------------------------------------------------------- privacy

    def export_user_data(self, *, user_id: str) -> dict[str, Any]:
        """Everything stored about a user as JSON-ready data (never the password hash)."""
        with session_scope(self._engine, read_only=True) as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFoundError(USER_NOT_FOUND)
            return {
                "format": EXPORT_FORMAT,
                "exported_at": utcnow().isoformat().replace("+00:00", "Z"),
                "user": user.model_dump(mode="json", exclude={"password_hash"}),
                "conversations": _export_conversations(session, user_id),
                "feedback": [
                    row.model_dump(mode="json")
                    for row in session.exec(
                        select(Feedback)
                        .where(Feedback.user_id == user_id)
                        .order_by(col(Feedback.created_at), col(Feedback.id))
                    )
                ],
            }

    def delete_user(self, *, user_id: str) -> None:
        """Erase a user and everything of theirs, children first.

        On SQLite the write-ahead log is then checkpointed and truncated so the deleted
        content is not left in the ``-wal`` file (``secure_delete`` zeroes it in the main file).
        """
        with session_scope(self._engine) as session:
            if session.get(User, user_id, with_for_update=True) is None:
                raise NotFoundError(USER_NOT_FOUND)
            conversation_ids = select(Conversation.id).where(Conversation.user_id == user_id)
            message_ids = select(Message.id).where(
                or_(
                    col(Message.user_id) == user_id,
                    col(Message.conversation_id).in_(conversation_ids),
                )
            )
            session.exec(
                delete(Feedback).where(col(Feedback.user_id) == user_id),
                execution_options=_NO_SYNC,
            )
            _delete_message_rows(session, message_ids)
            for statement in (
                delete(Conversation).where(col(Conversation.user_id) == user_id),
                delete(User).where(col(User.id) == user_id),
            ):
                session.exec(statement, execution_options=_NO_SYNC)
        self._truncate_sqlite_wal()

    def _truncate_sqlite_wal(self) -> None:
        """Checkpoint the WAL into the main file and truncate it (best effort, SQLite only)."""
        if self._engine.dialect.name != "sqlite":
            return
        raw = self._engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = cursor.fetchone()
            cursor.close()
        finally:
            raw.close()
        if row is not None and row[0]:
            logger.warning("WAL checkpoint was blocked by readers; deleted data stays in -wal")

    # ------------------------------------------- web: sessions, login throttle, users, widget

    def create_web_session(self, *, user_id: str, token_hash: str, expires_at: datetime) -> None:
        """Store a login session (only the hash of its cookie token); drops expired ones."""
        from chatbot.db import models as m

        with session_scope(self._engine) as session:
            if session.get(User, user_id) is None:
                raise NotFoundError(USER_NOT_FOUND)
            session.exec(
                delete(m.WebSession).where(col(m.WebSession.expires_at) < utcnow()),
                execution_options=_NO_SYNC,
            )
            session.add(m.WebSession(token_hash=token_hash, user_id=user_id, expires_at=expires_at))

    def user_for_web_session(self, *, token_hash: str) -> User | None:
        """The user of an unexpired session, or None."""
        from chatbot.db import models as m

        statement = (
            select(User)
            .join(m.WebSession, col(m.WebSession.user_id) == col(User.id))
            .where(m.WebSession.token_hash == token_hash, col(m.WebSession.expires_at) > utcnow())
        )
        with session_scope(self._engine, read_only=True) as session:
            return session.exec(statement).first()

    def delete_web_session(self, *, token_hash: str) -> None:
        """End a session (logout); unknown tokens are ignored."""
        from chatbot.db import models as m

        with session_scope(self._engine) as session:
            session.exec(
                delete(m.WebSession).where(col(m.WebSession.token_hash) == token_hash),
                execution_options=_NO_SYNC,
            )

    def login_failures(self, *, keys: Sequence[str], since: datetime) -> dict[str, list[datetime]]:
        """Times of the failed logins under each key since ``since``, oldest first."""
        from chatbot.db import models as m

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
        from chatbot.db import models as m

        with session_scope(self._engine) as session:
            session.exec(
                delete(m.LoginFailure).where(col(m.LoginFailure.created_at) < forget_before),
                execution_options=_NO_SYNC,
            )
            session.add_all([m.LoginFailure(key=key) for key in keys])

    def list_users(self, *, include_anonymous: bool = False) -> list[User]:
        """All users by name (anonymous widget visitors only if asked)."""
        statement = select(User).order_by(col(User.username))
        if not include_anonymous:
            statement = statement.where(col(User.is_anonymous).is_(False))
        with session_scope(self._engine, read_only=True) as session:
            return list(session.exec(statement).all())

    def update_account(
        self, *, user_id: str, role: str | None = None, password_hash: str | None = None
    ) -> User:
        """Change a user's role and/or password hash."""
        with session_scope(self._engine) as session:
            user = session.get(User, user_id, with_for_update=True)
            if user is None:
                raise NotFoundError(USER_NOT_FOUND)
            if role is not None:
                user.role = _valid_user_role(role)
            if password_hash is not None:
                user.password_hash = password_hash
            session.add(user)
        return user

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
        from chatbot.db import models as m

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
        from chatbot.db import models as m

        statement = select(m.WidgetSite).order_by(col(m.WidgetSite.created_at))
        with session_scope(self._engine, read_only=True) as session:
            return list(session.exec(statement).all())

    def get_widget_site(self, *, key: str) -> Any | None:
        """The enabled site with this public key, or None."""
        from chatbot.db import models as m

        statement = select(m.WidgetSite).where(
            m.WidgetSite.key == key, col(m.WidgetSite.enabled).is_(True)
        )
        with session_scope(self._engine, read_only=True) as session:
            return session.exec(statement).first()

    def delete_widget_site(self, *, key: str) -> None:
        """Remove a site with its usage counters and visitor mappings (users stay)."""
        from chatbot.db import models as m

        with session_scope(self._engine) as session:
            site = session.exec(select(m.WidgetSite).where(m.WidgetSite.key == key)).first()
            if site is None:
                raise NotFoundError("site not found")
            for table in (m.WidgetIdentity, m.WidgetUsage):
                session.exec(
                    delete(table).where(col(table.site_id) == site.id),
                    execution_options=_NO_SYNC,
                )
            session.exec(
                delete(m.WidgetSite).where(col(m.WidgetSite.id) == site.id),
                execution_options=_NO_SYNC,
            )

    def widget_origins(self) -> set[str]:
        """The union of the allowed origins of every enabled site (for CORS preflights)."""
        from chatbot.db import models as m

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
        from sqlalchemy import update

        from chatbot.db import models as m

        class _QuotaFull(Exception):
            def __init__(self, bucket: str) -> None:
                self.bucket = bucket

        usage = m.WidgetUsage
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
                            execution_options=_NO_SYNC,
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
                    if not session.exec(bump, execution_options=_NO_SYNC).rowcount:  # type: ignore[call-overload]
                        raise _QuotaFull(bucket)
        except _QuotaFull as full:
            return full.bucket
        return None

    def widget_identity(self, *, site_id: str, subject: str) -> str | None:
        """The user id mapped to this visitor or host user of the site, or None."""
        from chatbot.db import models as m

        statement = select(m.WidgetIdentity.user_id).where(
            m.WidgetIdentity.site_id == site_id, m.WidgetIdentity.subject == subject
        )
        with session_scope(self._engine, read_only=True) as session:
            return session.exec(statement).first()

    def add_widget_identity(self, *, site_id: str, subject: str, username: str) -> str:
        """Map a subject of the site to a new anonymous user row; returns the user id.

        If another request mapped the same subject first, that mapping wins.
        """
        from chatbot.db import models as m

        user = User(username=_valid_username(username), is_anonymous=True)
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

    def feedback_dashboard(self) -> list[dict[str, Any]]:
        """Every rating with the time, reason and the rated answer's citations and refusal."""
        statement = (
            select(Feedback, Message.citations, Message.refused)
            .join(Message, col(Message.id) == col(Feedback.message_id))
            .order_by(col(Feedback.updated_at))
        )
        with session_scope(self._engine, read_only=True) as session:
            return [
                {
                    "rating": row.rating,
                    "reason": row.reason,
                    "comment": row.comment,
                    "updated_at": row.updated_at,
                    "citations": citations,
                    "refused": refused,
                }
                for row, citations, refused in session.exec(statement)
            ]

    def refused_answers(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """The latest "I don't know" answers with the question that led to each."""
        answers = (
            select(Message)
            .where(Message.role == "assistant", col(Message.refused).is_(True))
            .order_by(col(Message.created_at).desc())
            .limit(limit)
        )
        with session_scope(self._engine, read_only=True) as session:
            rows = []
            for answer in session.exec(answers).all():
                question = session.exec(
                    select(Message.content)
                    .where(
                        Message.conversation_id == answer.conversation_id,
                        Message.role == "user",
                        col(Message.created_at) < answer.created_at,
                    )
                    .order_by(col(Message.created_at).desc())
                    .limit(1)
                ).first()
                rows.append(
                    {"question": question or "", "answer": answer.content, "at": answer.created_at}
                )
            return rows


# ---------------------------------------------------------------------- validation


def _has_control_chars(text: str) -> bool:
    """Control, format (zero-width), surrogate, private-use or unassigned characters."""
    return any(unicodedata.category(ch).startswith("C") or ch in "\u2028\u2029" for ch in text)


def _valid_username(username: str) -> str:
    name = username.strip()
    if not name:
        raise InvalidInputError("username must not be empty")
    if len(name) > USERNAME_MAX_LENGTH:
        raise InvalidInputError(f"username must be at most {USERNAME_MAX_LENGTH} characters")
    if _has_control_chars(name):
        raise InvalidInputError("username must not contain control or invisible characters")
    return name


def _valid_title(title: str) -> str:
    clean = title.strip()
    if not clean:
        raise InvalidInputError("title must not be empty")
    if len(clean) > TITLE_MAX_LENGTH:
        raise InvalidInputError(f"title must be at most {TITLE_MAX_LENGTH} characters")
    if _has_control_chars(clean):
        raise InvalidInputError("title must not contain control or invisible characters")
    return clean


def _auto_title(content: str) -> str:
    """The first words of a message as a one-line title of at most AUTO_TITLE_LENGTH chars."""
    visible = "".join(" " if _has_control_chars(ch) else ch for ch in content)
    words = " ".join(visible.split())
    if len(words) <= AUTO_TITLE_LENGTH:
        return words
    return words[: AUTO_TITLE_LENGTH - 1].rstrip() + "…"


def _valid_user_role(role: str) -> UserRole:
    if role not in USER_ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(USER_ROLES)}")
    return role


def _check_message(role: str, content: str, trace: Mapping[str, Any] | None) -> Role:
    """Validate a new message; returns its role."""
    if role not in MESSAGE_ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(MESSAGE_ROLES)}")
    if "\x00" in content:  # PostgreSQL text cannot hold NUL
        raise InvalidInputError("content must not contain NUL characters")
    if trace is not None and role != "assistant":
        raise InvalidInputError("only assistant messages carry a trace")
    return role


def _check_feedback(rating: str, reason: str | None, comment: str | None) -> str | None:
    """Validate a rating; returns the comment stripped, or None if it is blank."""
    if rating not in RATINGS:
        raise InvalidInputError(f"rating must be one of {', '.join(RATINGS)}")
    if reason is not None and reason not in FEEDBACK_REASONS:
        raise InvalidInputError(f"reason must be one of {', '.join(FEEDBACK_REASONS)}")
    if comment is None or not comment.strip():
        return None
    clean = comment.strip()
    if len(clean) > COMMENT_MAX_LENGTH:
        raise InvalidInputError(f"comment must be at most {COMMENT_MAX_LENGTH} characters")
    if "\x00" in clean:
        raise InvalidInputError("comment must not contain NUL characters")
    return clean


# ------------------------------------------------------------------- query helpers


def _user_by_name(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def _owned_conversation(
    session: Session, user_id: str, conversation_id: str, *, lock: bool = False
) -> Conversation:
    """The user's conversation (row-locked on PostgreSQL if ``lock``), else NotFoundError."""
    statement = select(Conversation).where(
        Conversation.id == conversation_id, Conversation.user_id == user_id
    )
    if lock:
        statement = statement.with_for_update()
    conversation = session.exec(statement).first()
    if conversation is None:
        raise NotFoundError(CONVERSATION_NOT_FOUND)
    return conversation


def _owned_message(
    session: Session, user_id: str, message_id: str, *, assistant_only: bool = False
) -> Message:
    statement = select(Message).where(Message.id == message_id, Message.user_id == user_id)
    if assistant_only:
        statement = statement.where(Message.role == "assistant")
    message = session.exec(statement).first()
    if message is None:
        raise NotFoundError(MESSAGE_NOT_FOUND)
    return message


def _next_timestamp(session: Session, conversation_id: str) -> datetime:
    """Now, or just after the conversation's latest message if the clock has not moved on."""
    latest = session.exec(
        select(Message.created_at)
        .where(Message.conversation_id == conversation_id)
        .order_by(col(Message.created_at).desc())
        .limit(1)
    ).first()
    now = utcnow()
    if latest is not None and now <= latest:
        return latest + timedelta(microseconds=1)
    return now


def _is_untitled(session: Session, conversation: Conversation) -> bool:
    """True while the conversation has its default title and no user message yet."""
    if conversation.title != DEFAULT_TITLE:
        return False
    earlier = session.exec(
        select(Message.id)
        .where(Message.conversation_id == conversation.id, Message.role == "user")
        .limit(1)
    ).first()
    return earlier is None


def _upsert_feedback(
    session: Session, user_id: str, message_id: str, values: dict[str, Any]
) -> None:
    """Insert the (user, message) feedback row, or update it if it exists."""
    now = utcnow()
    row = {"user_id": user_id, "message_id": message_id, "updated_at": now, **values}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        pg = postgresql.insert(Feedback).values(id=new_id(), created_at=now, **row)
        update = {key: pg.excluded[key] for key in (*values, "updated_at")}
        session.exec(
            pg.on_conflict_do_update(index_elements=["user_id", "message_id"], set_=update)
        )
    elif dialect == "sqlite":
        lite = sqlite.insert(Feedback).values(id=new_id(), created_at=now, **row)
        update = {key: lite.excluded[key] for key in (*values, "updated_at")}
        session.exec(
            lite.on_conflict_do_update(index_elements=["user_id", "message_id"], set_=update)
        )
    else:
        _locked_upsert_feedback(session, row)


def _locked_upsert_feedback(session: Session, row: dict[str, Any]) -> None:
    """Portable fallback: lock the existing row (SELECT ... FOR UPDATE), then write."""
    existing = session.exec(
        select(Feedback)
        .where(Feedback.user_id == row["user_id"], Feedback.message_id == row["message_id"])
        .with_for_update()
    ).first()
    if existing is None:
        session.add(Feedback(created_at=row["updated_at"], **row))
    else:
        for key, value in row.items():
            setattr(existing, key, value)
        session.add(existing)
    session.flush()


def _feedback_row(session: Session, user_id: str, message_id: str) -> Feedback:
    statement = (
        select(Feedback)
        .where(Feedback.user_id == user_id, Feedback.message_id == message_id)
        .execution_options(populate_existing=True)
    )
    return session.exec(statement).one()


def _delete_message_rows(session: Session, message_ids: Any) -> None:
    """Delete the messages selected by the ``message_ids`` subquery, children first."""
    in_messages = col(Feedback.message_id).in_(message_ids)
    session.exec(delete(Feedback).where(in_messages), execution_options=_NO_SYNC)
    session.exec(
        delete(TurnTrace).where(col(TurnTrace.message_id).in_(message_ids)),
        execution_options=_NO_SYNC,
    )
    session.exec(
        delete(Message).where(col(Message.id).in_(message_ids)), execution_options=_NO_SYNC
    )


def _export_conversations(session: Session, user_id: str) -> list[dict[str, Any]]:
    conversations = session.exec(
        select(Conversation)
        .where(Conversation.user_id == user_id)
        .order_by(col(Conversation.created_at), col(Conversation.id))
    ).all()
    messages = session.exec(
        select(Message)
        .where(Message.user_id == user_id)
        .order_by(col(Message.created_at), col(Message.id))
    ).all()
    traces = {
        trace.message_id: trace.data
        for trace in session.exec(
            select(TurnTrace)
            .join(Message, col(Message.id) == col(TurnTrace.message_id))
            .where(Message.user_id == user_id)
        )
    }
    by_conversation: dict[str, list[dict[str, Any]]] = {c.id: [] for c in conversations}
    for message in messages:
        item = message.model_dump(mode="json")
        item["trace"] = traces.get(message.id)
        by_conversation.setdefault(message.conversation_id, []).append(item)
    return [{**c.model_dump(mode="json"), "messages": by_conversation[c.id]} for c in conversations]
