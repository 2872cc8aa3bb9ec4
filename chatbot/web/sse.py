"""Server-Sent Events for ``POST /api/chat`` and the public (JSON) shape of chat objects.

The stream is ``sources`` (the passages found), ``token`` (answer text as it is generated),
then ``done`` (final answer, citations, ids, recommendations and the personalisation
``explanation`` lines) or ``error``. Server file paths never leave the
server: a source is shown by its file name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import PurePath
from typing import Any

from chatbot.domain import Citation, DoneEvent, Recommendation, RetrievedChunk

QUOTE_CHARS = 400


def sse(event: str, data: Mapping[str, Any]) -> str:
    """One SSE frame; the JSON keeps non-ASCII text as it is (not escaped)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def display_source(source: str) -> str:
    """The file name of a document source (never the server path)."""
    return PurePath(source).name or source


def chunk_public(chunk: RetrievedChunk) -> dict[str, Any]:
    return {
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "title": chunk.title,
        "source": display_source(chunk.source),
        "score": round(chunk.score, 4),
        "quote": _clip(chunk.text),
    }


def citation_public(citation: Citation | Mapping[str, Any]) -> dict[str, Any]:
    data = asdict(citation) if isinstance(citation, Citation) else dict(citation)
    return {
        "number": data.get("number"),
        "chunk_id": data.get("chunk_id"),
        "doc_id": data.get("doc_id"),
        "title": data.get("title", ""),
        "source": display_source(str(data.get("source", ""))),
        "quote": _clip(str(data.get("quote", ""))),
    }


def done_public(done: DoneEvent, *, visitor_token: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "conversation_id": done.conversation_id,
        "message_id": done.message_id,
        "answer": done.answer,
        "citations": [citation_public(c) for c in done.citations],
        "refused": done.refused,
        "recommendations": [
            recommendation_public(r, answer_language(done)) for r in done.recommendations
        ],
        "explanation": list(done.explanation),
    }
    if visitor_token:
        data["visitor_token"] = visitor_token
    return data


def message_public(message: Any, rating: str | None = None) -> dict[str, Any]:
    """A stored message as the API returns it."""
    citations: Sequence[Mapping[str, Any]] = message.citations or []
    return {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "citations": [citation_public(c) for c in citations],
        "refused": message.refused,
        "rating": rating,
        "created_at": message.created_at.isoformat(),
    }


def conversation_public(conversation: Any) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
    }


def recommendation_public(rec: Recommendation, language: str = "en") -> dict[str, Any]:
    """A suggested document or follow-up question (a file name, never the server path).

    ``ask`` is what clicking it asks: the follow-up question itself, or for a document
    "Tell me about <title>" (请介绍一下《<title>》 after a Chinese answer).
    """
    if rec.kind == "question":
        ask = rec.text
    elif language == "zh":
        ask = f"请介绍一下《{rec.text}》"
    else:
        ask = f"Tell me about {rec.text}"
    return {
        "kind": rec.kind,
        "text": rec.text,
        "ask": ask,
        "doc_id": rec.doc_id,
        "source": display_source(rec.source) if rec.source else "",
        "reason": rec.reason,
    }


def answer_language(done: DoneEvent) -> str:
    understanding = done.trace.get("understanding") or {}
    return str(understanding.get("language") or "en")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + "…"
