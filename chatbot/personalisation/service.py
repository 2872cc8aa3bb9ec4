"""The profile service: learns from turns and ratings, feeds ranking and prompts, explains."""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chatbot.domain import (
    Citation,
    InterestUpdate,
    InvalidInputError,
    Recommendation,
    RetrievedChunk,
    readable_acls,
)
from chatbot.personalisation.learning import explicit_statements, rating_interests, turn_interests
from chatbot.personalisation.recommend import DocumentInfo, recommend
from chatbot.ports import PersonalSignals
from chatbot.settings import PersonalisationSettings
from chatbot.text import normalise_term

STYLE_TEXT = {
    "brief": "Answer in one or two short sentences.",
    "detailed": "Give a thorough answer, with steps where useful.",
}
LEVEL_TEXT = {
    "beginner": "The user is a beginner: explain simply and avoid jargon.",
    "intermediate": "The user knows the basics.",
    "expert": "The user is an expert: be precise and technical.",
}
DEFAULT_STYLE = "Keep the answer short: one to three sentences."
_CJK = re.compile(r"[\u3400-\u9fff]")
VOCABULARY_TTL_S = 300.0  # how long a category's vocabulary per reader is reused
# How long everyone's summed ratings (the small global prior) are reused between turns: reading
# every relevance signal on every turn grows with the ratings of all users. Ratings given
# through this process refresh it at once; those of other processes show within this time.
GLOBAL_PRIOR_TTL_S = 60.0
NEGATIVE_REASONS = frozenset({"not_relevant", "wrong", "bad_citation"})  # they lower a document


class ProfileStore(Protocol):
    def interests(self, *, user_id: str) -> Sequence[Any]: ...
    def add_interest_evidence(self, *, user_id: str, updates: Sequence[InterestUpdate]) -> None: ...
    def set_interest(self, *, user_id: str, interest_id: str, weight: float) -> Any: ...
    def delete_interest(self, *, user_id: str, interest_id: str) -> None: ...
    def facts(self, *, user_id: str) -> Any: ...
    def set_fact(
        self, *, user_id: str, field: str, value: str | None, provenance: dict[str, Any]
    ) -> Any: ...
    def add_signal(self, *, user_id: str, doc_ids: Sequence[str], delta: float) -> None: ...
    def signals(
        self, *, user_id: str | None, doc_ids: Sequence[str] | None = None
    ) -> dict[str, float]: ...
    def popular_documents(self, *, limit: int = 20) -> list[tuple[str, float]]: ...
    def record_citation_open(self, *, user_id: str, message_id: str, chunk_id: str) -> None: ...
    def export(self, *, user_id: str) -> dict[str, Any]: ...
    def reset(self, *, user_id: str) -> None: ...


class DocumentLister(Protocol):
    def documents_for(self, acls: Sequence[str]) -> Sequence[DocumentInfo]: ...
    def document(self, doc_id: str) -> DocumentInfo | None: ...


@dataclass(frozen=True)
class AnswerPreferences:
    style: str
    language: str | None
    applied: tuple[str, ...] = ()  # what the profile set, readable ("answer style: brief")


class ProfileService:
    """Everything personal about a user, behind one object the chat service calls."""

    def __init__(
        self,
        store: ProfileStore,
        documents: DocumentLister,
        settings: PersonalisationSettings,
        user_enabled: Callable[[str], bool] = lambda _user_id: True,
    ) -> None:
        self.store = store
        self.documents = documents
        self.settings = settings
        self.user_enabled = user_enabled
        # acls -> (built at, category -> language -> topics, most salient first)
        self._vocabulary: dict[tuple[str, ...], tuple[float, dict[str, dict[str, list[str]]]]] = {}
        self._everyone: tuple[float, dict[str, float]] | None = None  # (read at, doc -> signal)

    def active(self, user_id: str) -> bool:
        """Personalisation is on for this deployment and this user."""
        return self.settings.enabled and self.user_enabled(user_id)

    # -- reading the profile -----------------------------------------------------------------

    def view(self, user_id: str) -> dict[str, Any]:
        """The profile as the user sees it: interests with provenance, facts, settings."""
        return {
            "interests": [
                {
                    "id": i.id,
                    "label": i.label,
                    "weight": round(i.weight, 3),
                    "confidence": i.confidence,
                    "explicit": i.explicit,
                    "evidence": i.evidence,
                    "updated_at": i.updated_at.isoformat(),
                }
                for i in self.store.interests(user_id=user_id)
                if abs(i.weight) >= 0.05
            ],
            "facts": self.store.facts(user_id=user_id).model_dump(mode="json", exclude={"user_id"}),
        }

    def signals(self, user_id: str, acls: Sequence[str] | None = None) -> PersonalSignals | None:
        """Ranking inputs from the profile; None when personalisation is switched off.

        ``acls`` (default: what the user may read) bounds the documents whose vocabulary the
        query expansion may borrow.
        """
        s = self.settings
        if not self.active(user_id):
            return None
        interests = [i for i in self.store.interests(user_id=user_id) if i.weight > 0][
            : s.max_interests
        ]
        weights = {i.term: min(1.0, i.weight / s.interest_saturation) for i in interests}
        labels = {i.term: i.label for i in interests}
        own = self.store.signals(user_id=user_id)
        everyone = self._everyones_signals()
        factors: dict[str, float] = {}
        reasons: dict[str, str] = {}
        for doc_id in {*own, *everyone}:
            mine = s.feedback_weight * math.tanh(own.get(doc_id, 0.0))
            prior = s.global_prior_weight * math.tanh(
                (everyone.get(doc_id, 0.0) - own.get(doc_id, 0.0)) / 3
            )
            if mine or prior:
                factors[doc_id] = round((1 + mine) * (1 + prior), 4)
                reasons[doc_id] = (
                    "your ratings" if abs(mine) >= abs(prior) else "other users' ratings"
                )
        if not weights and not factors:
            return None
        expansion = {}
        if s.query_expansion and weights:
            expansion = self._expansion(
                weights, labels, readable_acls(user_id) if acls is None else acls
            )
        return PersonalSignals(
            weights,
            labels,
            factors,
            reasons,
            alpha=s.interest_alpha,
            gate=s.interest_gate,
            expansion=expansion,
            expansion_weight=s.expansion_weight if expansion else 0.0,
            expansion_terms=s.expansion_terms,
        )

    def _expansion(
        self, weights: dict[str, float], labels: dict[str, str], acls: Sequence[str]
    ) -> dict[str, tuple[tuple[str, str], ...]]:
        """Query-expansion terms per language, each with the interest it stands for.

        An interest counts in the language it is written in; an interest that is a category
        of the corpus also brings that category's most salient document topics in each
        language, so a Chinese question of a user whose interests were learned in English
        ("finance") is expanded with how the corpus says it in Chinese (存款, 记账, ...).
        """
        vocabulary = self._category_vocabulary(acls)
        # language -> normalised term -> [score, readable term, the interest it stands for]
        scores: dict[str, dict[str, list[Any]]] = defaultdict(dict)

        def add(language: str, term: str, score: float, because: str) -> None:
            entry = scores[language].setdefault(normalise_term(term), [0.0, term, because])
            entry[0] += score

        for term, weight in weights.items():
            label = labels.get(term, term)
            add("zh" if _CJK.search(label) else "en", label, weight, label)
            for language, topics in vocabulary.get(term, {}).items():
                for rank, topic in enumerate(topics):
                    add(language, topic, weight / (rank + 2), label)
        return {
            language: tuple(
                (name, because)
                for _score, name, because in sorted(terms.values(), key=lambda e: -e[0])[:20]
            )
            for language, terms in scores.items()
        }

    def _everyones_signals(self) -> dict[str, float]:
        """All users' decayed signals per document, re-read at most every GLOBAL_PRIOR_TTL_S."""
        cached = self._everyone
        if cached is None or time.monotonic() - cached[0] >= GLOBAL_PRIOR_TTL_S:
            cached = self._everyone = (time.monotonic(), self.store.signals(user_id=None))
        return cached[1]

    def _category_vocabulary(self, acls: Sequence[str]) -> dict[str, dict[str, list[str]]]:
        """Category (normalised) -> language -> its documents' topics, most salient first.

        Built from the documents the reader may see, and reused for a few minutes.
        """
        key = tuple(sorted(acls))
        cached = self._vocabulary.get(key)
        if cached and time.monotonic() - cached[0] < VOCABULARY_TTL_S:
            return cached[1]
        salience: dict[str, dict[str, dict[str, float]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(float))
        )
        for doc in self.documents.documents_for(list(acls)):
            category = normalise_term(doc.category or "")
            if not category:
                continue
            for rank, topic in enumerate(doc.topics[:3]):  # a document's leading topics
                salience[category][doc.language or "en"][topic] += 1 / (rank + 1)
        vocabulary = {
            category: {
                language: [t for t, _ in sorted(topics.items(), key=lambda kv: -kv[1])[:10]]
                for language, topics in by_language.items()
            }
            for category, by_language in salience.items()
        }
        if len(self._vocabulary) > 256:
            self._vocabulary.clear()
        self._vocabulary[key] = (time.monotonic(), vocabulary)
        return vocabulary

    def preferences(self, user_id: str) -> AnswerPreferences:
        facts = self.store.facts(user_id=user_id)
        parts = [STYLE_TEXT.get(facts.style or "", DEFAULT_STYLE)]
        applied = []
        if facts.style in STYLE_TEXT:
            applied.append(f"answer style: {facts.style}")
        if facts.expertise in LEVEL_TEXT:
            parts.append(LEVEL_TEXT[facts.expertise])
            applied.append(f"level: {facts.expertise}")
        if facts.persona:
            parts.append(f"The user describes themselves as: {facts.persona[:60]}.")
            applied.append(f"you as: {facts.persona[:60]}")
        if facts.language:
            applied.append(f"language: {facts.language}")
        return AnswerPreferences(" ".join(parts), facts.language, tuple(applied))

    # -- learning ----------------------------------------------------------------------------

    def learn_from_turn(
        self,
        *,
        user_id: str,
        message_id: str,
        user_message: str,
        question: str,
        context: Sequence[RetrievedChunk],
        citations: Sequence[Citation],
        refused: bool,
    ) -> list[str]:
        """Update the profile after an answer; returns the facts the user stated."""
        stated = []
        for statement in explicit_statements(user_message):
            if statement.field == "interest" and statement.value:
                self.store.add_interest_evidence(
                    user_id=user_id,
                    updates=[
                        InterestUpdate(
                            normalise_term(statement.value),
                            statement.value,
                            5.0,
                            {"kind": "statement", "id": message_id},
                            explicit=True,
                        )
                    ],
                )
            else:
                self.store.set_fact(
                    user_id=user_id,
                    field=statement.field,
                    value=statement.value,
                    provenance={"kind": "statement", "id": message_id},
                )
            stated.append(f"{statement.field}={statement.value}")
        if not refused and context:
            self.store.add_interest_evidence(
                user_id=user_id,
                updates=turn_interests(
                    message_id=message_id, question=question, context=context, citations=citations
                ),
            )
        return stated

    def learn_from_rating(
        self,
        *,
        user_id: str,
        feedback_id: str,
        rating: str,
        reason: str | None,
        doc_ids: Sequence[str],
    ) -> None:
        doc_ids = list(dict.fromkeys(doc_ids))
        docs = [self.documents.document(d) for d in doc_ids]
        categories = [d.category for d in docs if d is not None]
        delta = 1.0 if rating == "up" else -1.0 if reason in NEGATIVE_REASONS else 0.0
        if delta:
            self.store.add_signal(user_id=user_id, doc_ids=doc_ids, delta=delta)
            self._everyone = None  # this process's next turn sees the rating
        self.store.add_interest_evidence(
            user_id=user_id,
            updates=rating_interests(
                feedback_id=feedback_id, rating=rating, reason=reason, categories=categories
            ),
        )

    def learn_from_citation_open(
        self, *, user_id: str, message_id: str, chunk: RetrievedChunk
    ) -> None:
        self.store.record_citation_open(
            user_id=user_id, message_id=message_id, chunk_id=chunk.chunk_id
        )
        if chunk.category:
            self.store.add_interest_evidence(
                user_id=user_id,
                updates=[
                    InterestUpdate(
                        normalise_term(chunk.category),
                        chunk.category,
                        0.5,
                        {"kind": "citation_open", "id": message_id},
                    )
                ],
            )

    # -- editing -----------------------------------------------------------------------------

    def edit_interest(self, *, user_id: str, interest_id: str, weight: float) -> None:
        self.store.set_interest(user_id=user_id, interest_id=interest_id, weight=weight)

    def delete_interest(self, *, user_id: str, interest_id: str) -> None:
        self.store.delete_interest(user_id=user_id, interest_id=interest_id)

    def set_fact(self, *, user_id: str, field: str, value: str | None) -> None:
        if value is not None and len(value) > 100:
            raise InvalidInputError("profile values are limited to 100 characters")
        self.store.set_fact(user_id=user_id, field=field, value=value, provenance={"kind": "edit"})

    def reset(self, *, user_id: str) -> None:
        self.store.reset(user_id=user_id)
        self._everyone = None

    # -- explanations and recommendations ----------------------------------------------------

    def explain(self, trace: dict[str, Any], chunks: Sequence[RetrievedChunk]) -> tuple[str, ...]:
        """Plain-language lines saying what personalisation changed in this answer."""
        titles = {c.chunk_id: c.title or c.source for c in chunks}
        personal = trace.get("personalisation") or {}
        labels: dict[str, str] = personal.get("labels", {})
        lines = []
        expansion = (trace.get("retrieval") or {}).get("expansion") or {}
        by_interest: dict[str, list[str]] = {}
        for term in expansion.get("terms", []):
            because = expansion.get("because", {}).get(term, term)
            by_interest.setdefault(labels.get(because, because), []).append(term)
        for interest, terms in by_interest.items():
            searched = ", ".join(f"“{t}”" for t in terms)
            lines.append(f"Also searched for {searched} because you often ask about {interest}.")
        for entry in (trace.get("retrieval") or {}).get("selected", []):
            title = titles.get(entry["chunk_id"])
            if not title:
                continue
            if entry.get("interest_terms"):
                about = ", ".join(labels.get(t, t) for t in entry["interest_terms"][:3])
                lines.append(f"“{title}” ranked higher because you often ask about {about}.")
            factor = entry.get("feedback_factor")
            if factor and factor != 1:
                direction = "higher" if factor > 1 else "lower"
                why = personal.get("doc_reasons", {}).get(
                    entry["chunk_id"].split("-")[0], "ratings"
                )
                lines.append(f"“{title}” ranked {direction} because of {why}.")
        if personal.get("style"):  # only what the profile actually set (style, level, ...)
            lines.append(f"Answer shaped by your profile ({personal['style']}).")
        if not lines:
            lines.append("Personalisation did not change this answer.")
        return tuple(dict.fromkeys(lines))

    def recommend(
        self,
        *,
        user_id: str,
        acls: Sequence[str],
        context: Sequence[RetrievedChunk],
        seen_doc_ids: Sequence[str],
        language: str,
    ) -> tuple[Recommendation, ...]:
        docs = self.documents.documents_for(acls)
        interests: dict[str, float] = {}
        if self.active(user_id):
            interests = {
                i.term: i.weight for i in self.store.interests(user_id=user_id) if i.weight > 0
            }
        popular = dict(self.store.popular_documents(limit=50))
        return recommend(
            docs=docs,
            interests=interests,
            popular=popular,
            context=context,
            seen=set(seen_doc_ids),
            language=language,
            limit=self.settings.recommendations,
        )
