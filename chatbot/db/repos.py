"""One ``Repository`` for users, chats, feedback and privacy.

It inherits the web and admin queries from ``web_access`` and ``admin_queries``; the
``chatbot.db`` package is the only place that runs queries.

Every method opens and closes its own session, takes keyword-only arguments and returns
detached model instances or plain data, so Gradio handlers and API routes share one code path
and never hold a session. Anything that is missing or belongs to someone else raises the same
``NotFoundError`` with the same message, so ids cannot be probed. Malformed input raises
``InvalidInputError`` with a message that says what to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from chatbot.db.admin_queries import AdminQueries
from chatbot.db.engine import NO_SYNC, session_scope
from chatbot.db.models import (
    DEFAULT_TITLE,
    Conversation,
    Feedback,
    Message,
    TurnTrace,
    User,
    new_id,
    utcnow,
)
from chatbot.db.validation import (
    USER_NOT_FOUND,
    auto_title,
    check_feedback,
    check_message,
    valid_title,
    valid_user_role,
    valid_username,
)
from chatbot.db.web_access import WebAccessQueries
from chatbot.domain import InvalidInputError, NotFoundError

logger = logging.getLogger(__name__)

CONVERSATION_NOT_FOUND = "conversation not found"
MESSAGE_NOT_FOUND = "message not found"
TRACE_NOT_FOUND = "trace not found"

EXPORT_FORMAT = "chatbot-export/1"
_IN_CHUNK = 500  # ids per IN (...) list, well under SQLite's bound-parameter limit


class Repository(WebAccessQueries, AdminQueries):
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
            username=valid_username(username),
            password_hash=password_hash,
            role=valid_user_role(role),
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
        name = valid_username(username)
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
                user.role = valid_user_role(role)
            if password_hash is not None:
                user.password_hash = password_hash
            session.add(user)
        return user

    # ---------------------------------------------------------- conversations

    def create_conversation(self, *, user_id: str, title: str = DEFAULT_TITLE) -> Conversation:
        """A new, empty conversation of an existing user."""
        clean = valid_title(title)
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
        clean = valid_title(title)
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
                execution_options=NO_SYNC,
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
        message_role = check_message(role, content, trace)
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
                conversation.title = auto_title(content) or conversation.title
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
        clean_comment = check_feedback(rating, reason, comment)
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
                execution_options=NO_SYNC,
            )
            _delete_message_rows(session, message_ids)
            for statement in (
                delete(Conversation).where(col(Conversation.user_id) == user_id),
                delete(User).where(col(User.id) == user_id),
            ):
                session.exec(statement, execution_options=NO_SYNC)
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
    session.exec(delete(Feedback).where(in_messages), execution_options=NO_SYNC)
    session.exec(
        delete(TurnTrace).where(col(TurnTrace.message_id).in_(message_ids)),
        execution_options=NO_SYNC,
    )
    session.exec(delete(Message).where(col(Message.id).in_(message_ids)), execution_options=NO_SYNC)


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
