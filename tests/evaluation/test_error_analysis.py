"""The report's "worst answers" section: order, escaping, and which questions it lists."""

from __future__ import annotations

from typing import Any

from chatbot.evaluation.error_analysis import TEXT_CHARS, worst_answers


def _q(qid: str, answerable: bool, answer: str, refused: bool, **scores: Any) -> dict[str, Any]:
    return {
        "id": qid,
        "question": f"question q{qid}?",
        "answerable": answerable,
        "reference_answer": f"reference {qid}",
        "systems": {"ours": {"answer": answer, "refused": refused, "scores": scores}},
    }


def test_worst_answers_lists_low_f1_first_then_answered_unanswerables() -> None:
    """A report written before token recall existed is ranked by F1."""
    questions = [
        _q("good", True, "right", False, f1=0.9, context_doc_hit=1.0, grounded=1.0),
        _q("bad", True, "a | b " + "x" * 300, False, f1=0.1, context_doc_hit=0.0, grounded=0.5),
        _q("worse", True, "[1]", False, f1=0.0, context_doc_hit=1.0, grounded=None),
        _q("declined", False, "I don't know.", True, refusal_accuracy=1.0),
        _q("made-up", False, "A shotgun.", False, refusal_accuracy=0.0, grounded=0.0),
    ]
    text = "\n".join(worst_answers(questions))
    rows = [line for line in text.splitlines() if line.startswith("| question q")]
    assert rows[0].startswith("| question qworse?") and rows[1].startswith("| question qbad?")
    assert rows[2].startswith("| question qgood?")
    assert "a \\| b" in rows[1], "pipes in answers must not break the table"
    assert max(len(cell) for cell in rows[1].split(" | ")) <= TEXT_CHARS + 2
    assert "| – | 0.00 | yes | – |" in rows[0] and "| – | 0.10 | no | 0.50 |" in rows[1]
    assert "Unanswerable questions that ours answered (1)" in text
    assert "| question qmade-up? | A shotgun. | 0.00 |" in text
    assert "question qdeclined?" not in text, "a refused unanswerable question is right"


def test_worst_answers_rank_by_token_recall_not_f1() -> None:
    """A right answer in a whole sentence (low F1, full recall) is not listed before a wrong one."""
    questions = [
        _q("sentence", True, "Gamma-CoVs mainly infect birds.", False, f1=0.29, token_recall=1.0),
        _q("wrong", True, "60.8%", False, f1=0.5, token_recall=0.5),
    ]
    rows = [
        line
        for line in "\n".join(worst_answers(questions)).splitlines()
        if line.startswith("| question q")
    ]
    assert rows[0].startswith("| question qwrong?") and "| 0.50 | 0.50 |" in rows[0]
    assert rows[1].startswith("| question qsentence?") and "| 1.00 | 0.29 |" in rows[1]


def test_no_section_without_scored_answers() -> None:
    assert worst_answers([_q("x", False, "I don't know.", True, refusal_accuracy=1.0)]) == []
