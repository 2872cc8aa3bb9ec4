"""``chatbot eval CORPUS --personalisation`` on the fakes: report files, shape, failing targets."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

DOCS = {
    "gardening/tomato-yield.md": "# Tomato yield\n\nPinch out side shoots to raise the yield of "
    "tomato plants. Feed tomatoes weekly with potash.",
    "gardening/soil.md": "# Garden soil\n\nCompost improves garden soil for tomato plants.",
    "finance/dividend-yield.md": "# Dividend yield\n\nThe dividend yield of a share is the annual "
    "dividend divided by the share price.",
    "finance/budget.md": "# Budget\n\nThe 50/30/20 budget splits income into needs and savings.",
}
QUESTIONS = [
    ("What improves garden soil?", "gardening/soil.md", "gardening"),
    ("How often should tomatoes be fed?", "gardening/tomato-yield.md", "gardening"),
    ("How does the 50/30/20 budget split income?", "finance/budget.md", "finance"),
    ("How is the dividend yield of a share computed?", "finance/dividend-yield.md", "finance"),
]


def _corpus(root: Path) -> Path:
    for rel, text in DOCS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    lines = [
        {
            "id": f"p-{i}",
            "question": q,
            "source_files": [source],
            "answerable": True,
            "language": "en",
            "meta": {"topic": topic, "ambiguous": False},
        }
        for i, (q, source, topic) in enumerate(QUESTIONS)
    ]
    (root / "questions.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return root


def test_eval_personalisation_writes_the_report(tmp_path: Path) -> None:
    from chatbot.cli import app

    corpus = _corpus(tmp_path / "corpus")
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["eval", str(corpus), "--personalisation", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| ambiguous | off |" in result.output
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.md", "personalisation.png"}
    report = json.loads((out / "report.json").read_text())
    assert set(report["ambiguous"]) == {"off", "on", "on_after_ratings"}
    assert set(report["ambiguous_held_out"]) == {"off", "on", "on_after_ratings"}
    assert set(report["unambiguous_other_topics"]) == {"off", "on"}
    assert report["users"] == 2 and report["ambiguous"]["off"]["n"] == 4  # 2 yield questions x 2
    assert report["unambiguous_other_topics"]["on"]["n"] == 4
    for key in ("precision", "recall", "catalogue_coverage", "intra_list_diversity"):
        assert 0.0 <= report["recommendations"][key] <= 1.0
    for target in report["targets"].values():
        assert set(target) == {"value", "target", "met"} and isinstance(target["met"], bool)
    assert "| target | measured | wanted | met |" in (out / "report.md").read_text()


def test_a_personalisation_target_can_fail(tmp_path: Path) -> None:
    from chatbot.evaluation.personalisation import evaluate_personalisation, targets
    from chatbot.settings import Settings

    corpus = _corpus(tmp_path / "corpus")
    # no ambiguous question applies: nothing can be lifted, so the lift target is missed
    result, written = evaluate_personalisation(
        corpus, corpus / "questions.jsonl", Settings(), None, ambiguous=()
    )
    assert written == [] and result["ambiguous"]["on"]["n"] == 0
    assert result["targets"]["ambiguous_hit@5_lift"]["met"] is False
    assert result["targets"]["unambiguous_hit@5_loss"]["met"] is True
    losing = {
        "ambiguous": {"off": {"hit@5": 0.5, "n": 10}, "on": {"hit@5": 0.7, "n": 10}},
        "unambiguous_other_topics": {"off": {"hit@5": 1.0}, "on": {"hit@5": 0.95}},
    }
    verdict = targets(losing)
    assert verdict["ambiguous_hit@5_lift"]["met"] is True
    assert verdict["unambiguous_hit@5_loss"] == {"value": 0.05, "target": "<= 0.01", "met": False}
