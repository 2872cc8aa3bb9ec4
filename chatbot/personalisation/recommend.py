"""Content-based recommendations with novelty and diversity; popular and diverse at cold start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chatbot.domain import Recommendation, RetrievedChunk
from chatbot.ports import CatalogueEntry
from chatbot.text import normalise_term, tokenize


class DocumentInfo(CatalogueEntry, Protocol):
    """A catalogue entry with what recommendations need besides (title, category, language)."""

    @property
    def doc_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def topics(self) -> tuple[str, ...]: ...


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
    follow_up = _follow_up(context, language, docs)
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


def _follow_up(
    context: Sequence[RetrievedChunk], language: str, docs: Sequence[DocumentInfo] = ()
) -> Recommendation | None:
    """A follow-up question on a topic phrase of the best source, else on its title.

    Only noun-like phrases qualify: multi-word keywords and single keywords that are also the
    document's topics, minus verbs, adverbs and other words no one asks "about" ("check",
    "never"); Chinese keywords must be nouns (jieba's part-of-speech tags). A Chinese question
    gets a Chinese suggestion.
    """
    if not context:
        return None
    best = context[0]
    doc = next((d for d in docs if d.doc_id == best.doc_id), None)
    topics = {normalise_term(t) for t in (doc.topics if doc else ())}
    phrase = _topic_phrase(best.keywords, topics, chinese_ok=language == "zh")
    title = best.title.strip()
    if phrase:
        text = (
            f"关于“{phrase}”还有什么要注意的？"
            if language == "zh"
            else f"What else should I know about {phrase}?"
        )
    elif _good_title(title, best.source):
        text = (
            f"《{title}》还讲了哪些内容？"
            if language == "zh"
            else f"What else does “{title}” cover?"
        )
    else:
        return None
    return Recommendation("question", text, best.doc_id, best.source, "follow-up on this answer")


# words that are keywords of a chunk but not things to ask "about": instructions and qualifiers
_NOT_A_TOPIC_WORDS = """
about above add after again against also always apply ask avoid back bad before best better
big buy can change check choose clean come cut day days do does done each early easy enough
every exactly fast few find first fit full get give go good great half help high inside
keep kind last late least left less let like little long look lot low make many may more
most much must need never new next often old once only other over part per put quick rather
real really remove replace right run same see set should show small some start still stop
sure take tell than then thing things time times too top try turn two under until use used
usually very want way ways well what when where which while whole work worn year years yes
"""
_NOT_A_TOPIC = frozenset(_NOT_A_TOPIC_WORDS.split())


def _topic_phrase(keywords: Sequence[str], topics: set[str], *, chinese_ok: bool) -> str | None:
    """The first multi-word keyword, else the first single-word topic keyword, that is a noun."""
    multi: list[str] = []
    single: list[str] = []
    for keyword in keywords:
        keyword = keyword.strip()
        if len(keyword) < 2 or not tokenize(keyword):
            continue
        if not keyword.isascii():  # Chinese: nouns only, and only in a Chinese suggestion
            if chinese_ok and _chinese_noun(keyword):
                single.append(keyword)
            continue
        words = keyword.lower().split()
        if any(_not_a_topic(w) for w in words):
            continue
        if len(words) > 1:
            multi.append(keyword)
        elif len(keyword) >= 3 and normalise_term(keyword) in topics:
            single.append(keyword)
    return next(iter(multi or single), None)


def _not_a_topic(word: str) -> bool:
    return (
        word in _NOT_A_TOPIC
        or len(word) < 3
        or word.endswith("ly")
        or (word.endswith("ed") and len(word) > 4)
        or any(ch.isdigit() for ch in word)
    )


def _chinese_noun(word: str) -> bool:
    """True when jieba tags every part of ``word`` as a noun (n, nr, ns, nz, ...)."""
    import jieba.posseg

    parts = jieba.posseg.lcut(word)
    return bool(parts) and all(p.flag.startswith("n") for p in parts)


def _good_title(title: str, source: str) -> bool:
    """A real title, not a file name or a one-word label such as "faq"."""
    stem = source.rsplit("/", 1)[-1].split(".", 1)[0]
    return (len(title) >= 4 and title.lower() != stem.lower() and " " in title) or (
        not title.isascii() and len(title) >= 4
    )
