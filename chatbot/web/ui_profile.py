"""Text and rows for the Profile tab and the recommendation chips, built without Gradio.

``ui.py`` only wires components to these. A chip asks its recommendation's ``ask``: a follow-up
chip its question, a document chip "Tell me about <title>" (请介绍一下《<title>》 after a Chinese
answer), so that answer comes from the document with citations, like any other answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chatbot.domain import InvalidInputError, RetrievedChunk
from chatbot.web import profile
from chatbot.web.context import WebContext
from chatbot.web.views import safe_markdown, trace_markdown

LANGUAGE_CHOICES = [("Automatic", ""), ("English", "en"), ("中文 (Chinese)", "zh")]
LEVEL_CHOICES = [("Not set", ""), ("Beginner", "beginner"), ("Intermediate", "intermediate"),
                 ("Expert", "expert")]  # fmt: skip
STYLE_CHOICES = [("Not set (short answers)", ""), ("Brief", "brief"), ("Detailed", "detailed")]
INTEREST_HEADERS = ["interest", "weight", "confidence", "where from"]


def status_markdown(view: Mapping[str, Any], note: str = "") -> str:
    if not view["personalisation_available"]:
        state = "Personalisation is **switched off on this server**; nothing is learned or used."
    elif view["personalisation"]:
        state = (
            "Personalisation is **on**: your questions, ratings and the sources you open teach "
            "the interests below, which lift matching passages in your answers."
        )
    else:
        state = "Personalisation is **off**: answers ignore this profile and nothing is learned."
    return state + (f"\n\n✅ {safe_markdown(note)}" if note else "")


def interest_rows(view: Mapping[str, Any]) -> list[list[Any]]:
    return [
        [i["label"], i["weight"], f"{i['confidence']:.0%}", i["source"]] for i in view["interests"]
    ]


def interest_choices(view: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(f"{i['label']} ({i['weight']:g})", i["id"]) for i in view["interests"]]


def interest_weight(view: Mapping[str, Any], interest_id: str | None) -> float:
    found = [i["weight"] for i in view["interests"] if i["id"] == interest_id]
    return float(found[0]) if found else 0.0


def fact_values(view: Mapping[str, Any]) -> tuple[str, str, str, str]:
    facts = view["facts"]
    return tuple(facts.get(f) or "" for f in ("language", "expertise", "style", "persona"))  # type: ignore[return-value]


def chip_label(rec: Mapping[str, Any]) -> str:
    return ("💬 " if rec["kind"] == "question" else "📄 ") + str(rec["text"])


def chip_question(state: Mapping[str, Any], index: int) -> str | None:
    """What clicking the ``index``-th chip asks (None when there is no such suggestion)."""
    recs = state.get("recommendations") or []
    return str(recs[index]["ask"]) if 0 <= index < len(recs) else None


def chip_labels(recs: Sequence[Mapping[str, Any]], slots: int) -> list[str | None]:
    """One label per chip slot (None = hide that chip)."""
    labels: list[str | None] = [chip_label(r) for r in recs[:slots]]
    return labels + [None] * (slots - len(labels))


def stored_explanation(
    explain: Callable[[dict[str, Any], Sequence[RetrievedChunk]], tuple[str, ...]],
    trace: Mapping[str, Any] | None,
    title_of: Callable[[str], str],
) -> tuple[str, ...]:
    """The explanation of a stored answer, rebuilt from its trace (titles from the store)."""
    if not trace or trace.get("gate") == "chitchat":
        return ()
    chunks = [
        RetrievedChunk(chunk_id=c, doc_id="", text="", source="", title=title_of(c), language="")
        for c in trace.get("context_chunk_ids") or []
    ]
    return explain(dict(trace), chunks)


def why_markdown(
    explanation: Sequence[str],
    trace: Mapping[str, Any] | None,
    title_of: Callable[[str], str],
) -> str:
    """The "why this answer" panel: what the profile changed, then how the answer was made."""
    text = trace_markdown(trace, title_of)
    if not explanation:
        return text
    lines = "\n".join(f"- {safe_markdown(line)}" for line in explanation)
    return f"**Your profile and this answer:**\n\n{lines}\n\n{text}"


class ProfileActions:
    """The Profile tab's edits for the signed-in user; each returns a note for the status line.

    Domain errors (InvalidInputError, NotFoundError) propagate; ``ui.py`` shows them.
    """

    def __init__(self, context: WebContext) -> None:
        self.context = context

    def personalise(self, user_id: str, on: bool) -> str:
        profile.update_profile(self.context, user_id, {"personalisation": bool(on)})
        return f"Personalisation switched {'on' if on else 'off'}."

    def weight(self, user_id: str, interest_id: str | None, weight: float) -> str:
        profile.edit_interest(self.context, user_id, _picked(interest_id), float(weight))
        return f"Weight set to {float(weight):g}; it no longer fades over time."

    def weight_of(self, user_id: str, interest_id: str | None) -> float:
        return interest_weight(profile.profile_public(self.context, user_id), interest_id)

    def forget(self, user_id: str, interest_id: str | None) -> str:
        profiles = self.context.container.profiles
        profiles.delete_interest(user_id=user_id, interest_id=_picked(interest_id))
        return "Interest deleted."

    def facts(self, user_id: str, language: str, level: str, style: str, persona: str) -> str:
        values = (language, level, style, persona)
        profile.update_profile(
            self.context, user_id, dict(zip(profile.FACT_FIELDS, values, strict=True))
        )
        return "Preferences saved."

    def reset(self, user_id: str) -> str:
        self.context.container.profiles.reset(user_id=user_id)
        return "Profile reset: everything learned about you is forgotten."


def _picked(interest_id: str | None) -> str:
    if not interest_id:
        raise InvalidInputError("Pick an interest first.")
    return interest_id
