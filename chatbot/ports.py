"""Small interfaces the pipeline and services depend on (implemented in index/ and db/)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatbot.domain import RetrievedChunk


@dataclass(frozen=True)
class PersonalSignals:
    """What a user's profile contributes to ranking (built by the personalisation service)."""

    interests: dict[str, float] = field(default_factory=dict)  # normalised term -> 0..1
    labels: dict[str, str] = field(default_factory=dict)  # term -> readable label
    doc_factors: dict[str, float] = field(default_factory=dict)  # doc id -> bounded multiplier
    doc_reasons: dict[str, str] = field(default_factory=dict)  # doc id -> why
    alpha: float = 1.0  # largest interest boost: x(1 + alpha)
    gate: float = 0.5  # candidates less relevant than gate x best are not re-ranked by interest
    # personalised query expansion: language -> (term, the interest it stands for), best first;
    # an ambiguous question is searched a second time with these terms appended
    expansion: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    expansion_weight: float = 0.0  # weight of the expanded search in the fusion (0 = off)
    expansion_terms: int = 3  # terms appended (those the question does not already use)


@dataclass(frozen=True)
class RetrievalQuery:
    text: str
    acls: tuple[str, ...]
    top_k: int = 5
    language: str = "en"
    personal: PersonalSignals | None = None


@dataclass(frozen=True)
class RetrievalResult:
    chunks: tuple[RetrievedChunk, ...]
    best_vector_similarity: float
    keyword_matches: int
    trace: dict[str, Any] = field(default_factory=dict)


class Retriever(Protocol):
    def retrieve(self, query: RetrievalQuery) -> RetrievalResult: ...


class HasId(Protocol):
    @property
    def id(self) -> str: ...


class MessageLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def content(self) -> str: ...


class ConversationStore(Protocol):
    """Conversations, messages with their traces, and feedback (implemented by db.repos)."""

    def get_conversation(self, *, user_id: str, conversation_id: str) -> HasId: ...
    def create_conversation(self, *, user_id: str, title: str = ...) -> HasId: ...
    def list_messages(
        self, *, user_id: str, conversation_id: str, limit: int | None = None
    ) -> Sequence[MessageLike]: ...
    def add_message(
        self,
        *,
        user_id: str,
        conversation_id: str,
        role: str,
        content: str,
        citations: list[dict[str, Any]] | None = None,
        refused: bool = False,
        trace: dict[str, Any] | None = None,
    ) -> HasId: ...
    def get_message(self, *, user_id: str, message_id: str) -> Any: ...
    def rate_message(
        self,
        *,
        user_id: str,
        message_id: str,
        rating: str,
        reason: str | None = None,
        comment: str | None = None,
    ) -> Any: ...


class CatalogueEntry(Protocol):
    """One document as the catalogue lists it."""

    @property
    def title(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def language(self) -> str: ...


class Catalogue(Protocol):
    """The documents a reader may see (implemented by the document store)."""

    def documents_for(self, acls: Sequence[str]) -> Sequence[CatalogueEntry]: ...
