"""Pure types and constants shared by every layer (stdlib and pydantic only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# Chunk metadata keys: written by ingestion, read by retrieval and personalisation.
DOC_ID = "doc_id"
SOURCE = "source"
TITLE = "title"
LANGUAGE = "language"
KEYWORDS = "keywords"
CATEGORY = "category"
ACL = "acl"
CHUNK_INDEX = "chunk_index"
START_CHAR = "start_char"
END_CHAR = "end_char"

METADATA_KEYS = (DOC_ID, SOURCE, TITLE, LANGUAGE, KEYWORDS, CATEGORY, ACL, CHUNK_INDEX)

PUBLIC = "public"


def acl_for(*, user: str | None = None, group: str | None = None) -> str:
    """The access-control label of a document: public, one user's, or one group's."""
    if user and group:
        raise ValueError("a document belongs to a user or a group, not both")
    if user:
        return f"user:{user}"
    if group:
        return f"group:{group}"
    return PUBLIC


def readable_acls(user: str | None, groups: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Every ACL label a user may read: public, their own, and their groups'."""
    acls = [PUBLIC]
    if user:
        acls.append(f"user:{user}")
    acls.extend(f"group:{g}" for g in groups)
    return acls


@dataclass(frozen=True)
class RetrievedChunk:
    """One chunk returned by retrieval, with where it came from and why it ranked."""

    chunk_id: str
    doc_id: str
    text: str
    source: str
    title: str
    language: str
    keywords: tuple[str, ...] = ()
    category: str = ""
    score: float = 0.0
    start_char: int = 0
    end_char: int = 0
    scores: dict[str, float] = field(default_factory=dict)


class NotFoundError(LookupError):
    """The object does not exist or is not the caller's (deliberately indistinguishable)."""


class InvalidInputError(ValueError):
    """The request is malformed; the message says what to fix."""


Role = Literal["user", "assistant"]
Rating = Literal["up", "down"]
FEEDBACK_REASONS = ("wrong", "incomplete", "not_relevant", "bad_citation", "too_long", "other")


@dataclass(frozen=True)
class HistoryTurn:
    role: Role
    content: str


@dataclass(frozen=True)
class Understanding:
    """What the user asked, in a form retrieval can use."""

    standalone_question: str
    language: str
    intent: Literal["question", "chitchat", "overview", "out_of_scope"] = "question"
    rewritten: bool = False


@dataclass(frozen=True)
class Citation:
    number: int
    chunk_id: str
    doc_id: str
    source: str
    title: str
    quote: str


@dataclass(frozen=True)
class InterestUpdate:
    """Evidence that a user is (or is not) interested in a term."""

    term: str
    label: str
    delta: float
    evidence: dict[str, Any]
    explicit: bool = False


@dataclass(frozen=True)
class Recommendation:
    """A suggested document or follow-up question, with why it was suggested."""

    kind: Literal["document", "question"]
    text: str
    doc_id: str = ""
    source: str = ""
    reason: str = ""


@dataclass(frozen=True)
class TokenEvent:
    text: str
    type: Literal["token"] = "token"


@dataclass(frozen=True)
class SourcesEvent:
    """Retrieved passages, sent before the answer streams so the UI can show progress."""

    chunks: tuple[RetrievedChunk, ...]
    type: Literal["sources"] = "sources"


@dataclass(frozen=True)
class DoneEvent:
    """The end of an answer: what was cited, ids to rate it, and what happened."""

    conversation_id: str
    message_id: str
    answer: str
    citations: tuple[Citation, ...]
    refused: bool
    trace: dict[str, Any]
    recommendations: tuple[Recommendation, ...] = ()
    explanation: tuple[str, ...] = ()
    type: Literal["done"] = "done"


ChatEvent = TokenEvent | SourcesEvent | DoneEvent
