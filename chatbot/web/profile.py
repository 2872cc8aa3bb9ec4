"""What the Profile tab and ``/api/profile`` share: the profile as shown, edits, citation opens.

Built on ``container.profiles`` (ProfileService) and the Repository; no Gradio, no FastAPI.
Every function takes the caller's user id, so one user can never reach another's profile: an
interest or message of someone else is "not found", exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from chatbot.domain import InvalidInputError, NotFoundError, RetrievedChunk
from chatbot.web.context import WebContext

FACT_CHOICES: dict[str, tuple[str, ...]] = {
    "language": ("en", "zh"),
    "expertise": ("beginner", "intermediate", "expert"),
    "style": ("brief", "detailed"),
}
FACT_FIELDS = ("language", "expertise", "style", "persona")
PERSONA_MAX = 100
WEIGHT_MAX = 25.0
CITATION_NOT_FOUND = "citation not found"


def _day(at: Any) -> str:
    """The date of an ISO timestamp (YYYY-MM-DD), or '' when there is none."""
    try:
        return datetime.fromisoformat(str(at)).date().isoformat()
    except ValueError:
        return ""


def _on(at: Any) -> str:
    day = _day(at)
    return f" on {day}" if day else ""


def evidence_text(evidence: Sequence[Mapping[str, Any]]) -> str:
    """Where an interest came from, newest first: "from your 👍; from your question on 2025-05-03"."""
    parts: list[str] = []
    questions = sum(1 for e in evidence if e.get("kind") == "message")
    for e in reversed(evidence):
        kind, delta, on = e.get("kind"), float(e.get("delta") or 0), _on(e.get("at"))
        if kind == "message":
            many = f"from {questions} of your questions (latest{on})"
            text = many if questions > 1 else f"from your question{on}"
        elif kind == "rating":
            text = "from your 👍" if delta > 0 else "from your 👎 (not relevant)"
        elif kind == "citation_open":
            text = f"from a source you opened{on}"
        elif kind == "statement":
            text = f"you said so{on}"
        elif kind == "edit":
            text = f"set by you{on}"
        else:
            continue
        if not any(p.split(" on ")[0] == text.split(" on ")[0] for p in parts):
            parts.append(text)
    return "; ".join(parts) or "learned"


def profile_public(context: WebContext, user_id: str) -> dict[str, Any]:
    """The profile as ``GET /api/profile`` returns it and the Profile tab shows it."""
    user = context.repo.get_user(user_id=user_id)
    if user is None:
        raise NotFoundError("user not found")
    profiles = context.container.profiles
    view = profiles.view(user_id)
    interests = [{**i, "source": evidence_text(i["evidence"])} for i in view["interests"]]
    return {
        "personalisation": bool(user.personalisation_enabled),
        "personalisation_available": bool(profiles.settings.enabled),
        "interests": interests,
        "facts": view["facts"],
    }


def check_fact(field: str, value: str | None) -> str | None:
    """A fact value as stored (None clears it); InvalidInputError when it is not allowed."""
    if field not in FACT_FIELDS:
        raise InvalidInputError(f"unknown profile field {field!r}; one of {', '.join(FACT_FIELDS)}")
    clean = " ".join((value or "").replace("\x00", "").split()) or None
    if clean is None:
        return None
    if field in FACT_CHOICES and clean not in FACT_CHOICES[field]:
        raise InvalidInputError(f"{field} must be one of: {', '.join(FACT_CHOICES[field])}")
    if len(clean) > PERSONA_MAX:
        raise InvalidInputError(f"{field} is limited to {PERSONA_MAX} characters")
    return clean


def update_profile(context: WebContext, user_id: str, changes: Mapping[str, Any]) -> None:
    """Set facts (``None`` or "" clears one) and/or switch personalisation on or off."""
    facts = {f: check_fact(f, changes[f]) for f in FACT_FIELDS if f in changes}
    profiles = context.container.profiles
    for field, value in facts.items():
        profiles.set_fact(user_id=user_id, field=field, value=value)
    if changes.get("personalisation") is not None:
        context.repo.set_personalisation(user_id=user_id, enabled=bool(changes["personalisation"]))


def edit_interest(context: WebContext, user_id: str, interest_id: str, weight: float) -> None:
    if not -WEIGHT_MAX <= weight <= WEIGHT_MAX:
        raise InvalidInputError(f"weight must be between {-WEIGHT_MAX:g} and {WEIGHT_MAX:g}")
    context.container.profiles.edit_interest(
        user_id=user_id, interest_id=interest_id, weight=weight
    )


def open_citation(context: WebContext, user_id: str, message_id: str, chunk_id: str) -> bool:
    """The user opened one of the sources cited by one of their answers; learn from it.

    NotFoundError when the message is not the user's (or missing) or does not cite the chunk.
    Returns whether anything was learned (nothing while personalisation is off).
    """
    message = context.repo.get_message(user_id=user_id, message_id=message_id)
    citation = next(
        (c for c in message.citations or [] if c.get("chunk_id") == chunk_id),
        None,
    )
    if message.role != "assistant" or citation is None:
        raise NotFoundError(CITATION_NOT_FOUND)
    profiles = context.container.profiles
    if not profiles.active(user_id):
        return False
    doc = context.container.store.document(str(citation.get("doc_id", "")))
    chunk = RetrievedChunk(
        chunk_id=chunk_id,
        doc_id=str(citation.get("doc_id", "")),
        text=str(citation.get("quote", "")),
        source=str(citation.get("source", "")),
        title=str(citation.get("title", "")),
        language=doc.language if doc is not None else "",
        category=doc.category if doc is not None else "",
    )
    profiles.learn_from_citation_open(user_id=user_id, message_id=message_id, chunk=chunk)
    return True
