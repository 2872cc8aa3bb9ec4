"""What a turn, a rating or a statement tells us about a user (pure functions, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from chatbot.domain import Citation, InterestUpdate, RetrievedChunk
from chatbot.text import normalise_term, tokenize

QUESTION_WEIGHT = 1.0
CITATION_OPEN_WEIGHT = 0.5
RATING_WEIGHT = 1.5


def turn_interests(
    *,
    message_id: str,
    question: str,
    context: Sequence[RetrievedChunk],
    citations: Sequence[Citation],
) -> list[InterestUpdate]:
    """Interests shown by asking a question that was answered from these sources.

    The categories of the cited (or best) sources count fully; their keywords count when the
    question itself used them, so interests stay in the corpus's own vocabulary.
    """
    cited_ids = {c.chunk_id for c in citations}
    used = [c for c in context if c.chunk_id in cited_ids] or list(context[:1])
    question_terms = set(tokenize(question))
    updates: dict[str, InterestUpdate] = {}
    evidence = {"kind": "message", "id": message_id}
    for chunk in used:
        if chunk.category:
            _add(updates, chunk.category, QUESTION_WEIGHT, evidence)
        for keyword in chunk.keywords:
            if set(tokenize(keyword)) & question_terms:
                _add(updates, keyword, QUESTION_WEIGHT / 2, evidence)
    return list(updates.values())


def rating_interests(
    *, feedback_id: str, rating: str, reason: str | None, categories: Sequence[str]
) -> list[InterestUpdate]:
    """A thumbs-up strengthens the topics of the cited sources; 'not relevant' weakens them."""
    if rating == "up":
        delta = RATING_WEIGHT
    elif reason == "not_relevant":
        delta = -RATING_WEIGHT / 2
    else:
        return []  # a wrong or incomplete answer says nothing against the topic
    updates: dict[str, InterestUpdate] = {}
    for category in dict.fromkeys(categories):
        if category:
            _add(updates, category, delta, {"kind": "rating", "id": feedback_id})
    return list(updates.values())


def _add(
    updates: dict[str, InterestUpdate], label: str, delta: float, evidence: dict[str, str]
) -> None:
    term = normalise_term(label)
    if not term:
        return
    old = updates.get(term)
    updates[term] = InterestUpdate(
        term, label.strip(), (old.delta if old else 0.0) + delta, evidence
    )


@dataclass(frozen=True)
class Statement:
    field: str
    value: str | None


_LEVELS = {
    "beginner": "beginner",
    "novice": "beginner",
    "new to": "beginner",
    "newbie": "beginner",
    "expert": "expert",
    "professional": "expert",
    "advanced": "expert",
    "intermediate": "intermediate",
    "初学者": "beginner",
    "新手": "beginner",
    "小白": "beginner",
    "专家": "expert",
    "专业": "expert",
}
_PERSONA = re.compile(
    r"\b(?:i am|i'm|im) (?:a|an) ([a-z][a-z -]{2,40}?)(?:[.,!;]|$| and | who )", re.I
)
_PERSONA_ZH = re.compile(r"我是(?:一名|一个|一位)?([\u4e00-\u9fff]{2,8}?)(?:[，。！,.!]|$)")
_BRIEF = re.compile(
    r"\b(answer|be|keep it|reply) (briefly|brief|short|shorter|concise)\b|简短|简洁|简单点", re.I
)
_DETAILED = re.compile(
    r"\b(more detail|in detail|detailed|explain (more|fully)|longer answers?)\b|详细", re.I
)
_LANG = [
    (
        re.compile(
            r"\b(answer|reply|respond|speak) in (chinese|mandarin)\b|用中文|说中文|中文回答", re.I
        ),
        "zh",
    ),
    (re.compile(r"\b(answer|reply|respond|speak) in english\b|用英文|英文回答|用英语", re.I), "en"),
]
_INTEREST = re.compile(r"\b(?:i'?m|i am) (?:interested in|into) ([a-z][a-z -]{2,40})", re.I)


def explicit_statements(text: str) -> list[Statement]:
    """Preferences the user states outright ("I'm a nurse", "answer briefly", "用中文回答")."""
    found: list[Statement] = []
    lowered = text.lower()
    for pattern, code in _LANG:
        if pattern.search(text):
            found.append(Statement("language", code))
    if _BRIEF.search(text):
        found.append(Statement("style", "brief"))
    elif _DETAILED.search(text):
        found.append(Statement("style", "detailed"))
    for word, level in _LEVELS.items():
        if re.search(rf"\b(?:i'?m|i am|as)\b[^.!?]{{0,40}}?\b{word}\b", lowered) or (
            not word.isascii() and f"我是{word}" in text
        ):
            found.append(Statement("expertise", level))
            break
    persona = _PERSONA.search(text) or _PERSONA_ZH.search(text)
    if persona and persona.group(1).strip().lower() not in _LEVELS:
        found.append(Statement("persona", persona.group(1).strip()))
    interest = _INTEREST.search(text)
    if interest:
        found.append(Statement("interest", interest.group(1).strip()))
    return found
