"""Content-based recommendations with novelty and diversity; popular and diverse at cold start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chatbot.domain import Recommendation, RetrievedChunk
from chatbot.text import normalise_term, tokenize


class DocumentInfo(Protocol):
    @property
    def doc_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def topics(self) -> tuple[str, ...]: ...
    @property
    def language(self) -> str: ...


DIVERSITY_PENALTY = 0.2


def _features(doc: DocumentInfo) -> set[str]:
    return {normalise_term(t) for t in (*doc.topics, doc.category) if t}


def recommend(
    *,
    docs: Sequence[DocumentInfo],
    interests: dict[str, float],
    popular: dict[str, float],
    context: Sequence[RetrievedChunk],
    seen: set[str],
    language: str,
    limit: int = 3,
) -> tuple[Recommendation, ...]:
    """Up to ``limit`` suggestions: documents first, then one follow-up question."""
    if limit <= 0:
        return ()
    topic = {normalise_term(k) for c in context[:3] for k in (*c.keywords, c.category) if k}
    top_interest = max(interests.values(), default=0.0) or 1.0
    top_pop = max(popular.values(), default=0.0) or 1.0
    scored = []
    for doc in docs:
        if doc.doc_id in seen:
            continue
        features = _features(doc)
        interest = sum(interests.get(f, 0.0) for f in features) / top_interest
        relevance = len(features & topic) / (len(topic) or 1)
        popularity = popular.get(doc.doc_id, 0.0) / top_pop
        same_language = 0.1 if doc.language == language else 0.0
        score = 0.45 * min(interest, 1.0) + 0.4 * relevance + 0.15 * popularity + same_language
        scored.append((score, doc))
    scored.sort(key=lambda s: (-s[0], s[1].title))
    picked: list[Recommendation] = []
    categories: list[str] = []
    documents_wanted = max(1, limit - 1)
    while scored and len(picked) < documents_wanted:
        # MMR-style: a document from a topic already suggested pays a diversity penalty
        best = max(scored, key=lambda s: s[0] - DIVERSITY_PENALTY * categories.count(s[1].category))
        scored.remove(best)
        score, doc = best
        categories.append(doc.category)
        reason = _reason(score, doc, interests, topic)
        picked.append(
            Recommendation("document", doc.title or doc.source, doc.doc_id, doc.source, reason)
        )
    follow_up = _follow_up(context, language)
    if follow_up and len(picked) < limit:
        picked.append(follow_up)
    return tuple(picked[:limit])


def _reason(score: float, doc: DocumentInfo, interests: dict[str, float], topic: set[str]) -> str:
    features = _features(doc)
    if features & set(interests):
        return "matches your interests"
    if features & topic:
        return "related to this answer"
    return "popular with other users" if score > 0 else "something different to explore"


def _follow_up(context: Sequence[RetrievedChunk], language: str) -> Recommendation | None:
    """A follow-up question about a keyword of the best source the answer didn't dwell on."""
    if not context:
        return None
    best = context[0]
    for keyword in best.keywords:
        if len(keyword) < 3 or not tokenize(keyword):
            continue
        if language == "zh":
            text = f"关于“{keyword}”还有什么要注意的？"
        else:
            text = f"What else should I know about {keyword}?"
        return Recommendation(
            "question", text, best.doc_id, best.source, "follow-up on this answer"
        )
    return None
