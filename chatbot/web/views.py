"""Text the chat UI shows, built without Gradio: answers with their sources, "why this answer".

Model output is untrusted: HTML is escaped before Gradio's markdown sees it and image syntax is
defused, so an answer cannot load remote images (an exfiltration channel) or inject markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chatbot.web.sse import citation_public, display_source

_IMAGE = re.compile(r"!\[")
LATENCY_LABELS = (
    ("understand_ms", "understand"),
    ("retrieve_ms", "retrieve"),
    ("first_token_ms", "first token"),
    ("answer_ms", "answer"),
    ("total_ms", "total"),
)


def safe_markdown(text: str) -> str:
    """Model text made inert: HTML escaped, images turned into plain text."""
    return _IMAGE.sub(r"!\\[", html.escape(text, quote=False))


def sources_html(citations: Sequence[Mapping[str, Any]], message_id: str | None = None) -> str:
    """Cited passages as a collapsed list; each source expands to its quote (all text escaped).

    Each source carries ``value="<message id> <chunk id>"`` (Gradio's sanitiser drops data-*
    attributes but keeps ``value``), so opening it can be reported to
    ``POST /api/citations/open`` (``static/ui.js``).
    """
    if not citations:
        return ""
    items = []
    for raw in citations:
        c = citation_public(raw)
        ids = ""
        if message_id and c["chunk_id"]:
            ids = ' value="{}"'.format(html.escape(f"{message_id} {c['chunk_id']}"))
        items.append(
            f'<li><details class="source"{ids}><summary><b>[{c["number"]}] '
            f"{html.escape(c['title'] or c['source'])}</b> <small>{html.escape(c['source'])}"
            f"</small></summary><blockquote>{html.escape(c['quote'])}</blockquote></details></li>"
        )
    return (
        f'\n\n<details class="sources"><summary>Sources ({len(items)})</summary>'
        f"<ol>{''.join(items)}</ol></details>"
    )


def answer_markdown(
    answer: str,
    citations: Sequence[Mapping[str, Any]],
    refused: bool,
    message_id: str | None = None,
) -> str:
    """The assistant message as shown in the chat: answer, then its sources."""
    note = "\n\n*No source answered this; try rephrasing or upload a document.*" if refused else ""
    return safe_markdown(answer) + note + sources_html(citations, message_id)


def history_messages(messages: Sequence[Any]) -> list[dict[str, str]]:
    """Stored messages as Gradio chat messages (role + markdown content)."""
    shown = []
    for m in messages:
        if m.role == "assistant":
            content = answer_markdown(m.content, m.citations or [], m.refused, m.id)
        else:
            content = safe_markdown(m.content)
        shown.append({"role": m.role, "content": content})
    return shown


def trace_markdown(
    trace: Mapping[str, Any] | None, title_of: Callable[[str], str] | None = None
) -> str:
    """Why this answer: the question as understood, the passages with scores, the timings."""
    if not trace:
        return "*Ask a question, then open this panel to see how the answer was made.*"
    understanding = trace.get("understanding") or {}
    question = safe_markdown(str(understanding.get("standalone_question", "")))
    lines = [
        f"**Question as understood:** {question}",
        f"**Language:** {understanding.get('language', '?')} · **intent:** "
        f"{understanding.get('intent', '?')} · **rewritten from the conversation:** "
        f"{'yes' if understanding.get('rewritten') else 'no'}",
    ]
    gate = trace.get("gate")
    if gate == "low_relevance":
        lines.append("**Outcome:** no passage was relevant enough, so the model was not asked.")
    elif gate == "chitchat":
        lines.append("**Outcome:** small talk; no documents were searched.")
    elif gate == "overview":
        lines.append(
            "**Outcome:** a question about the collection itself, answered from the list of "
            "documents you can read; no passages were searched."
        )
    elif gate == "closest_passage":
        lines.append(
            "**Outcome:** the model replied with source numbers only, so the passage of the "
            "source it named that is closest to the question is shown instead."
        )
    if trace.get("refused"):
        lines.append("**Answered:** I don't know.")
    retrieval = trace.get("retrieval") or {}
    respelt = retrieval.get("respelt") or {}
    if respelt:
        pairs = ", ".join(
            f"{safe_markdown(str(a))} → {safe_markdown(str(b))}" for a, b in respelt.items()
        )
        lines.append(f"**Keyword search also tried the spelling:** {pairs}")
    if trace.get("unmatched_words"):
        words = ", ".join(safe_markdown(str(w)) for w in trace["unmatched_words"])
        lines.append(f"**Not in any passage given to the model:** {words}")
    selected = retrieval.get("selected") or []
    used = set(trace.get("context_chunk_ids") or [])
    if selected:
        lines += [
            "",
            f"**Passages found** ({retrieval.get('vector_hits', 0)} by meaning (vector), "
            f"{retrieval.get('keyword_hits', 0)} by keywords (BM25); ✓ = given to the model):",
            "",
            "| | source | vector | BM25 | rank (vector / BM25) |",
            "|---|---|---|---|---|",
        ]
        for entry in selected:
            chunk_id = str(entry.get("chunk_id", ""))
            title = title_of(chunk_id) if title_of else chunk_id
            lines.append(
                f"| {'✓' if chunk_id in used else ''} | {html.escape(title)} | "
                f"{_num(entry.get('vector'))} | {_num(entry.get('bm25'))} | "
                f"{entry.get('vector_rank', '–')} / {entry.get('bm25_rank', '–')} |"
            )
    latency = trace.get("latency_ms") or {}
    timings = [f"{label} {latency[key]:.0f} ms" for key, label in LATENCY_LABELS if key in latency]
    if timings:
        lines.append("**Timings:** " + " · ".join(timings))
    lines.append(
        f"**Model:** `{trace.get('model', '?')}` · **prompts:** "
        + ", ".join(f"`{p}`" for p in trace.get("prompts") or [])
    )
    return "\n\n".join(_paragraphs(lines))


def _paragraphs(lines: list[str]) -> list[str]:
    """Separate paragraphs, but keep a table's rows together."""
    out: list[str] = []
    for line in lines:
        if line.startswith("|") and out and out[-1].startswith("|"):
            out[-1] += "\n" + line
        elif line:
            out.append(line)
    return out


def title_lookup(store: Any) -> Callable[[str], str]:
    """Chunk id → the title (or file name) of its document, from the store."""

    def title_of(chunk_id: str) -> str:
        record = store.chunks([chunk_id]).get(chunk_id)
        doc = store.document(record.doc_id) if record is not None else None
        if doc is None:
            return "(deleted document)"
        return str(doc.title or display_source(doc.source))

    return title_of


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "–"
