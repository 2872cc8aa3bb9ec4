"""Every SQLModel table of the chatbot, in one module (Alembic autogenerates from here).

Column types are portable (String, Text, JSON, sqlmodel's UTCDateTime over DateTime) so the
same models run on SQLite and PostgreSQL. Ids are random uuid4 hex strings, so they cannot be
guessed or enumerated; timestamps are timezone-aware UTC. There are no ORM relationships on
purpose: rows leave the repository detached, and nothing can lazy-load behind a caller's back.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import JSON, CheckConstraint, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from chatbot.domain import Rating, Role

UserRole = Literal["user", "admin"]
USER_ROLES: tuple[UserRole, ...] = ("user", "admin")
MESSAGE_ROLES: tuple[Role, ...] = ("user", "assistant")
RATINGS: tuple[Rating, ...] = ("up", "down")

DEFAULT_TITLE = "New conversation"
ID_LENGTH = 32
USERNAME_MAX_LENGTH = 64
TITLE_MAX_LENGTH = 200
AUTO_TITLE_LENGTH = 60
COMMENT_MAX_LENGTH = 2000


def new_id() -> str:
    """A random, unguessable id (uuid4 as 32 hex characters)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def _id_field() -> Any:
    return Field(default_factory=new_id, primary_key=True, sa_type=String(ID_LENGTH))


def _fk(target: str, *, index: bool = True) -> Any:
    return Field(foreign_key=target, ondelete="CASCADE", index=index, sa_type=String(ID_LENGTH))


class User(SQLModel, table=True):
    """A person (or an anonymous visitor) who chats; ``password_hash`` is never exported."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('user', 'admin')", name="ck_users_role"),)

    id: str = _id_field()
    username: str = Field(unique=True, index=True, sa_type=String(USERNAME_MAX_LENGTH))
    password_hash: str | None = Field(default=None, sa_type=String(255))
    role: UserRole = Field(default="user", sa_type=String(16))
    is_anonymous: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    personalisation_enabled: bool = True


class Conversation(SQLModel, table=True):
    """A chat thread; ``updated_at`` is the time of its latest message."""

    __tablename__ = "conversations"

    id: str = _id_field()
    user_id: str = _fk("users.id")
    title: str = Field(default=DEFAULT_TITLE, sa_type=String(TITLE_MAX_LENGTH))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Message(SQLModel, table=True):
    """One turn; ``user_id`` repeats the conversation's owner for one-row ownership checks."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'assistant')", name="ck_messages_role"),
        # Serves as the conversation_id index and orders a conversation's messages.
        Index("ix_messages_conversation_id_created_at", "conversation_id", "created_at"),
    )

    id: str = _id_field()
    conversation_id: str = _fk("conversations.id", index=False)
    user_id: str = _fk("users.id")
    role: Role = Field(sa_type=String(16))
    content: str = Field(sa_type=Text)
    citations: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    refused: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class TurnTrace(SQLModel, table=True):
    """How an assistant message was produced; ``data`` is opaque to the persistence layer."""

    __tablename__ = "turn_traces"

    message_id: str = Field(
        foreign_key="messages.id",
        ondelete="CASCADE",
        primary_key=True,
        sa_type=String(ID_LENGTH),
    )
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow)


class Interest(SQLModel, table=True):
    """One interest of a user's profile, with where it came from (evidence) and how sure we are.

    ``weight`` is stored as of ``updated_at``; readers apply the time decay.
    """

    __tablename__ = "profile_interests"
    __table_args__ = (UniqueConstraint("user_id", "term", name="uq_interest_user_term"),)

    id: str = _id_field()
    user_id: str = _fk("users.id", index=False)
    term: str = Field(sa_type=String(100))
    label: str = Field(sa_type=String(100))
    weight: float = 0.0
    confidence: float = 0.0
    explicit: bool = False
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ProfileFacts(SQLModel, table=True):
    """A user's stated or learned preferences: language, level, answer style, persona."""

    __tablename__ = "profile_facts"

    user_id: str = Field(
        foreign_key="users.id", ondelete="CASCADE", primary_key=True, sa_type=String(ID_LENGTH)
    )
    language: str | None = Field(default=None, sa_type=String(16))
    expertise: str | None = Field(default=None, sa_type=String(16))
    style: str | None = Field(default=None, sa_type=String(16))
    persona: str | None = Field(default=None, sa_type=String(100))
    provenance: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    updated_at: datetime = Field(default_factory=utcnow)


class RelevanceSignal(SQLModel, table=True):
    """A user's accumulated feedback on a document (positive boosts, negative demotes).

    The sum over all users, bounded and decayed, is the global prior; deleting a user removes
    their contribution to it as well.
    """

    __tablename__ = "relevance_signals"
    __table_args__ = (UniqueConstraint("user_id", "doc_id", name="uq_signal_user_doc"),)

    id: str = _id_field()
    user_id: str = _fk("users.id", index=False)
    doc_id: str = Field(index=True, sa_type=String(64))
    value: float = 0.0
    updated_at: datetime = Field(default_factory=utcnow)


class CitationOpen(SQLModel, table=True):
    """A user opened a cited source (a weak positive signal)."""

    __tablename__ = "citation_opens"

    id: str = _id_field()
    user_id: str = _fk("users.id")
    message_id: str = _fk("messages.id", index=False)
    chunk_id: str = Field(sa_type=String(128))
    created_at: datetime = Field(default_factory=utcnow)


class Feedback(SQLModel, table=True):
    """A user's rating of one assistant message; one row per (user, message)."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("user_id", "message_id", name="uq_feedback_user_message"),
        CheckConstraint("rating IN ('up', 'down')", name="ck_feedback_rating"),
    )

    id: str = _id_field()
    user_id: str = _fk("users.id", index=False)  # the unique constraint's index covers it
    message_id: str = _fk("messages.id")
    rating: Rating = Field(sa_type=String(8))
    reason: str | None = Field(default=None, sa_type=String(32))
    comment: str | None = Field(default=None, sa_type=String(COMMENT_MAX_LENGTH))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


# ------------------------------------------------------------- web: sessions, login throttle, widget

SITE_KEY_LENGTH = 64
SUBJECT_MAX_LENGTH = 128
BUCKET_MAX_LENGTH = 32


class WebSession(SQLModel, table=True):
    """A signed-in browser session; the cookie holds a random token, the row only its SHA-256."""

    __tablename__ = "web_sessions"

    token_hash: str = Field(primary_key=True, sa_type=String(64))
    user_id: str = _fk("users.id")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(default_factory=utcnow, index=True)


class LoginFailure(SQLModel, table=True):
    """One failed login, counted under ``user:<name>`` and ``ip:<address>`` by the throttle."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_created_at", "key", "created_at"),)

    id: str = _id_field()
    key: str = Field(sa_type=String(160))
    created_at: datetime = Field(default_factory=utcnow)


class WidgetSite(SQLModel, table=True):
    """A host site allowed to embed the widget: public key, exact origins, limits.

    ``secret`` verifies host-signed user tokens (HMAC-SHA256), so it is stored as given.
    An empty ``origins`` list allows no origin at all.
    """

    __tablename__ = "widget_sites"

    id: str = _id_field()
    key: str = Field(unique=True, index=True, sa_type=String(SITE_KEY_LENGTH))
    secret: str = Field(sa_type=String(128))
    name: str = Field(default="", sa_type=String(TITLE_MAX_LENGTH))
    origins: list[str] = Field(default_factory=list, sa_type=JSON)
    rate_per_minute: int = 20
    daily_quota: int = 1000
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class WidgetUsage(SQLModel, table=True):
    """Chats counted per site and time bucket, and per client address within them.

    Buckets: ``m:<UTC minute>``, ``d:<UTC date>``, ``vm:<minute>:<hash>``, ``vd:<date>:<hash>``.
    """

    __tablename__ = "widget_usage"

    site_id: str = Field(
        foreign_key="widget_sites.id",
        ondelete="CASCADE",
        primary_key=True,
        sa_type=String(ID_LENGTH),
    )
    bucket: str = Field(primary_key=True, sa_type=String(BUCKET_MAX_LENGTH))
    count: int = 0


class WidgetIdentity(SQLModel, table=True):
    """A widget visitor, or a host site's signed-in user, mapped to a user row of one site."""

    __tablename__ = "widget_identities"
    __table_args__ = (UniqueConstraint("site_id", "subject", name="uq_widget_identities"),)

    id: str = _id_field()
    site_id: str = _fk("widget_sites.id", index=False)
    subject: str = Field(sa_type=String(SUBJECT_MAX_LENGTH))
    user_id: str = _fk("users.id")
    created_at: datetime = Field(default_factory=utcnow)
