"""One chat turn of the Gradio UI, without Gradio: streams an answer into the UI state.

``turn`` appends the question and the growing answer to ``state["messages"]`` and yields a
``Frame`` whenever the chat should be redrawn; ``ui.py`` maps frames to component updates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from chatbot.domain import DoneEvent, InvalidInputError, NotFoundError, SourcesEvent, TokenEvent
from chatbot.web import views
from chatbot.web.auth import Principal
from chatbot.web.context import WebContext
from chatbot.web.gate import QueueFull
from chatbot.web.sse import answer_language, recommendation_public
from chatbot.web.views import safe_markdown

THINKING = "…"
REASK_PREFIX = "*Without personalisation:*\n\n"


@dataclass(frozen=True)
class Frame:
    """Redraw the chat.

    ``start``: the turn began; ``box``: put this back in the question box (after a failure);
    ``done``: the final answer (the state is already updated).
    """

    start: bool = False
    box: str = ""
    done: DoneEvent | None = None


def empty_state() -> dict[str, Any]:
    return {
        "conversation_id": None,
        "messages": [],
        "ids": [],
        "rated": None,
        "question": None,
        "recommendations": [],
    }


def message_at(state: dict[str, Any], index: int | tuple[int, ...] | list[int]) -> str | None:
    """The id of the assistant message at a chat position (None for questions and drafts)."""
    i = index if isinstance(index, int) else index[0]
    ids = state["ids"]
    return ids[i] if 0 <= i < len(ids) else None


def turn(
    context: WebContext, state: dict[str, Any], p: Principal, text: str, personalise: bool
) -> Iterator[Frame]:
    """Answer ``text`` (``personalise=False``: without the profile, shown as a comparison)."""
    shown = text if personalise else f"↺ {text} (without personalisation)"
    messages = state["messages"]
    messages += [
        {"role": "user", "content": safe_markdown(shown)},
        {"role": "assistant", "content": THINKING},
    ]
    state["ids"] += [None, None]
    yield Frame(start=True)
    try:
        ticket = context.gate.reserve()
    except QueueFull as full:
        messages[-1]["content"] = f"⏳ {full}"
        yield Frame(box=text)
        return
    streamed, done = "", None
    try:
        while not ticket.wait(2.0):  # tell the user where they are in line
            line = ticket.status()
            messages[-1]["content"] = (
                f"⏳ Waiting in line: {line['waiting']} waiting, about {line['estimated_wait_s']} s"
            )
            yield Frame()
        with ticket:
            for event in context.container.chat.stream(
                user_id=p.user_id,
                message=text,
                acls=p.acls,
                conversation_id=state["conversation_id"],
                personalise=personalise,
            ):
                if isinstance(event, SourcesEvent):
                    messages[-1]["content"] = f"{THINKING} ({len(event.chunks)} passages found)"
                elif isinstance(event, TokenEvent):
                    streamed += event.text
                    messages[-1]["content"] = safe_markdown(streamed)
                elif isinstance(event, DoneEvent):
                    done = event
                    continue
                yield Frame()
    except (InvalidInputError, NotFoundError, QueueFull) as exc:
        messages[-1]["content"] = f"⚠️ {safe_markdown(str(exc))}"
        yield Frame(box=text)
        return
    assert done is not None
    citations = [asdict(c) for c in done.citations]
    answer = views.answer_markdown(done.answer, citations, done.refused, done.message_id)
    messages[-1]["content"] = answer if personalise else REASK_PREFIX + answer
    state["ids"][-1] = done.message_id
    language = answer_language(done)
    state.update(
        conversation_id=done.conversation_id,
        question=text,
        recommendations=[recommendation_public(r, language) for r in done.recommendations],
    )
    yield Frame(done=done)
