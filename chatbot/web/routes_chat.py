"""``/api/chat`` (Server-Sent Events), ``/api/feedback`` and ``/api/conversations``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from chatbot.domain import (
    FEEDBACK_REASONS,
    ChatEvent,
    DoneEvent,
    InvalidInputError,
    NotFoundError,
    SourcesEvent,
    TokenEvent,
)
from chatbot.web.auth import Principal
from chatbot.web.context import AnyCaller, Ctx, WebContext, current_principal
from chatbot.web.errors import ApiError, storage_problem
from chatbot.web.gate import QueueFull, Ticket
from chatbot.web.sse import (
    chunk_public,
    conversation_public,
    done_public,
    message_public,
    sse,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["chat"])

_END = object()
_QUEUE_PING_S = 5.0
_FIRST_SLOT_WAIT_S = 0.2


class ChatRequest(BaseModel):
    message: str = Field(
        min_length=1, max_length=8000, examples=["How often should I oil my chain?"]
    )
    conversation_id: str | None = Field(None, max_length=64)
    personalise: bool = Field(
        True, description="false: answer without your profile (to compare with the usual answer)"
    )


class FeedbackRequest(BaseModel):
    message_id: str = Field(max_length=64)
    rating: Literal["up", "down"]
    reason: str | None = Field(None, description=f"One of: {', '.join(FEEDBACK_REASONS)}")
    comment: str | None = Field(None, max_length=2000)


class RenameRequest(BaseModel):
    title: str = Field(min_length=1, max_length=200)


def _check_message(context: WebContext, text: str) -> str:
    clean = text.replace("\x00", "").strip()
    limit = context.container.settings.chat.max_message_chars
    if not clean:
        raise InvalidInputError("the message is empty")
    if len(clean) > limit:
        raise InvalidInputError(f"the message is too long ({len(clean)} characters; limit {limit})")
    return clean


@router.post(
    "/chat",
    summary="Ask a question; the answer streams as Server-Sent Events",
    response_description="text/event-stream: `queue` while waiting for a generation slot "
    "(requests waiting, generating, estimated wait), `sources`, `token`..., then `done` or "
    "`error`",
    responses={429: {"description": "widget rate limit"}, 503: {"description": "queue full"}},
)
def chat(body: ChatRequest, request: Request, context: Ctx) -> StreamingResponse:
    message = _check_message(context, body.message)
    if context.widget.is_widget_request(request):
        principal = context.widget.principal(request, chat=True)
    else:
        principal = current_principal(request, context)
    if body.conversation_id:
        context.repo.get_conversation(
            user_id=principal.user_id, conversation_id=body.conversation_id
        )
    try:
        ticket = context.gate.reserve()
    except QueueFull as full:
        raise ApiError(503, str(full), headers={"Retry-After": str(full.retry_after)}) from full

    def events() -> Iterator[ChatEvent]:
        return context.container.chat.stream(
            user_id=principal.user_id,
            message=message,
            acls=principal.acls,
            conversation_id=body.conversation_id,
            personalise=body.personalise,
        )

    return StreamingResponse(
        _stream(ticket, events, principal),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(ticket: Ticket, events: Any, principal: Principal) -> AsyncIterator[str]:
    """Wait for a generation slot (with keep-alive comments), then relay the chat events."""
    iterator: Iterator[ChatEvent] | None = None
    try:
        # Honest queueing: a caller without a free slot is told the line at once, then again
        # every few seconds (which also keeps proxies from closing the idle stream).
        step = _FIRST_SLOT_WAIT_S
        while not await anyio.to_thread.run_sync(ticket.wait, step):
            yield sse("queue", ticket.status())
            step = _QUEUE_PING_S
        iterator = iter(events())
        while True:
            event = await anyio.to_thread.run_sync(next, iterator, _END)
            if event is _END:
                break
            yield _frame(event, principal)  # type: ignore[arg-type]
    except QueueFull as full:
        yield sse("error", {"error": {"code": "busy", "message": str(full)}})
    except (InvalidInputError, NotFoundError) as exc:
        code = "not_found" if isinstance(exc, NotFoundError) else "invalid_input"
        yield sse("error", {"error": {"code": code, "message": str(exc)}})
    except Exception as exc:
        problem = storage_problem(exc)
        if problem is not None:
            log.error("chat stream failed: %s: %s", problem[1], exc)
            yield sse("error", {"error": {"code": problem[1], "message": problem[2]}})
            return
        log.exception("chat stream failed")
        yield sse("error", {"error": {"code": "internal_error", "message": "the answer failed"}})
    finally:
        if iterator is not None and hasattr(iterator, "close"):
            iterator.close()
        ticket.release()


def _frame(event: ChatEvent, principal: Principal) -> str:
    if isinstance(event, TokenEvent):
        return sse("token", {"text": event.text})
    if isinstance(event, SourcesEvent):
        return sse("sources", {"sources": [chunk_public(c) for c in event.chunks]})
    assert isinstance(event, DoneEvent)
    return sse("done", done_public(event, visitor_token=principal.visitor_token))


@router.post("/feedback", summary="Rate one of your answers (a second rating replaces the first)")
def feedback(body: FeedbackRequest, principal: AnyCaller, context: Ctx) -> dict[str, Any]:
    row = context.container.chat.rate(
        user_id=principal.user_id,
        message_id=body.message_id,
        rating=body.rating,
        reason=body.reason or None,
        comment=body.comment,
    )
    return {
        "feedback": {
            "message_id": row.message_id,
            "rating": row.rating,
            "reason": row.reason,
            "comment": row.comment,
        }
    }


@router.get("/conversations", summary="Your conversations, most recent first")
def list_conversations(principal: AnyCaller, context: Ctx) -> dict[str, Any]:
    rows = context.repo.list_conversations(user_id=principal.user_id)
    return {"conversations": [conversation_public(c) for c in rows]}


@router.get("/conversations/{conversation_id}", summary="One of your conversations")
def get_conversation(conversation_id: str, principal: AnyCaller, context: Ctx) -> dict[str, Any]:
    row = context.repo.get_conversation(user_id=principal.user_id, conversation_id=conversation_id)
    return {"conversation": conversation_public(row)}


@router.patch("/conversations/{conversation_id}", summary="Rename a conversation")
def rename_conversation(
    conversation_id: str, body: RenameRequest, principal: AnyCaller, context: Ctx
) -> dict[str, Any]:
    row = context.repo.rename_conversation(
        user_id=principal.user_id, conversation_id=conversation_id, title=body.title
    )
    return {"conversation": conversation_public(row)}


@router.delete(
    "/conversations/{conversation_id}",
    status_code=204,
    summary="Delete a conversation with its messages and ratings",
)
def delete_conversation(conversation_id: str, principal: AnyCaller, context: Ctx) -> Response:
    context.repo.delete_conversation(user_id=principal.user_id, conversation_id=conversation_id)
    return Response(status_code=204)


@router.get("/conversations/{conversation_id}/messages", summary="A conversation's messages")
def list_messages(conversation_id: str, principal: AnyCaller, context: Ctx) -> dict[str, Any]:
    rows = context.repo.list_messages(user_id=principal.user_id, conversation_id=conversation_id)
    ratings = context.repo.feedback_for_messages(
        user_id=principal.user_id, message_ids=[m.id for m in rows if m.role == "assistant"]
    )
    return {
        "messages": [
            message_public(m, ratings[m.id].rating if m.id in ratings else None) for m in rows
        ]
    }
