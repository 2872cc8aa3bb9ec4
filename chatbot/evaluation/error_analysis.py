"""The questions to read first after an answer run: where ours scored worst, and why it might be.

Averages say how much; these rows say what went wrong. Each row shows the question, the
reference, ours' answer and the scores that explain it (was a gold passage in the context?
were the answer's words in it?), so a reader can tell a retrieval miss from a made-up answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WORST_ROWS = 10
TEXT_CHARS = 140


def worst_answers(questions: Sequence[dict[str, Any]], system: str = "ours") -> list[str]:
    """Markdown: least-recall answerable questions, then unanswerable ones that got an answer.

    Ranked by token recall (F1 for reports written before it existed): a correct answer in a
    whole sentence has a low F1 but full recall, and is not what a reader should look at first.
    """
    answerable, answered_anyway = [], []
    for q in questions:
        out = q["systems"].get(system) or {}
        scores = out.get("scores") or {}
        key = scores.get("token_recall", scores.get("f1"))
        if q["answerable"] and key is not None:
            answerable.append((key, scores.get("f1") or 0.0, q, out))
        elif not q["answerable"] and out and not out.get("refused", True):
            answered_anyway.append((scores.get("grounded") or 0.0, q, out))
    if not answerable and not answered_anyway:
        return []
    lines = [
        "",
        f"## Worst answers of {system}",
        "",
        "Lowest token recall first (the share of the reference's words in the answer). `ctx` = "
        "a gold document was among the passages given to the "
        "model; `grounded` = share of the answer's new words found in those passages (low: made "
        "up or from the model's memory).",
        "",
        "| question | reference | answer | recall | f1 | ctx | grounded |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, _, q, out in sorted(answerable, key=lambda r: (r[0], r[1]))[:WORST_ROWS]:
        scores = out["scores"]
        lines.append(
            f"| {_cell(q['question'])} | {_cell(q.get('reference_answer') or '')} | "
            f"{_cell(out.get('answer', ''))} | {_number(scores.get('token_recall'))} | "
            f"{_number(scores.get('f1'))} | {_yes_no(scores.get('context_doc_hit'))} | "
            f"{_number(scores.get('grounded'))} |"
        )
    if answered_anyway:
        lines += [
            "",
            f"Unanswerable questions that {system} answered ({len(answered_anyway)}), least "
            "grounded first:",
            "",
            "| question | answer | grounded |",
            "|---|---|---|",
        ]
        for _, q, out in sorted(answered_anyway, key=lambda r: r[0])[:WORST_ROWS]:
            grounded = (out.get("scores") or {}).get("grounded")
            lines.append(
                f"| {_cell(q['question'])} | {_cell(out.get('answer', ''))} | {_number(grounded)} |"
            )
    return lines


def _cell(text: str) -> str:
    """One table cell: one line, pipes escaped, at most TEXT_CHARS characters."""
    flat = " ".join(str(text).split()).replace("|", "\\|")
    return flat if len(flat) <= TEXT_CHARS else flat[: TEXT_CHARS - 1] + "…"


def _yes_no(value: float | None) -> str:
    return "–" if value is None else ("yes" if value else "no")


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
