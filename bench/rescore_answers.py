"""Re-score the stored answers of an answer-mode report with today's text metrics.

    .venv/bin/python bench/rescore_answers.py REPORT_DIR_OR_JSON DATASET_DIR

A metric added after a run (``token_recall``) can be read off the answers the report already
holds, without asking the LLM again: every system's answers are scored against the dataset's
references (all of them, as ``chatbot eval`` does), and ours is paired with each other system
(Δ in points, 95 % bootstrap interval). Only text metrics; context and citation metrics need
the passages, which a report keeps as offsets only.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, before bench/ingest.py

from chatbot.evaluation import metrics as m
from chatbot.evaluation.compare import load_report
from chatbot.evaluation.datasets import load_dataset
from chatbot.evaluation.stats import format_delta, paired_delta

TEXT_METRICS = {
    "f1": m.token_f1,
    "token_recall": m.token_recall,
    "contains_answer": m.contains_answer,
}


def rescore(report: dict, dataset_dir: Path) -> list[str]:  # type: ignore[type-arg]
    items = {item.id: item for item in load_dataset(dataset_dir).items}
    systems = report["systems"]
    scores: dict[str, list[dict[str, float]]] = {s: [] for s in systems}
    for q in report["questions"]:
        item = items.get(q["id"])
        if item is None or not item.answerable:
            continue
        for s in systems:
            out = q["systems"].get(s) or {}
            text = m.strip_citations(out.get("answer") or "")  # refusals too, as in the run
            scores[s].append(
                {
                    name: fn(text, item.references, item.language)
                    for name, fn in TEXT_METRICS.items()
                }
            )
    lines = [
        f"# {report['dataset']['name']}: {len(scores['ours'])} answerable questions "
        f"(commit {report.get('git_commit')})",
        "",
        "| metric | " + " | ".join(systems) + " |",
        "|---|" + "---|" * len(systems),
    ]
    for name in TEXT_METRICS:
        cells = []
        for s in systems:
            value = sum(r[name] for r in scores[s]) / max(1, len(scores[s]))
            if s == "ours":
                cells.append(f"{value:.3f}")
                continue
            pairs = [(a[name], b[name]) for a, b in zip(scores["ours"], scores[s], strict=True)]
            delta = paired_delta(pairs)
            cells.append(f"{value:.3f} (ours {format_delta(delta.as_dict() if delta else None)})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print("\n".join(rescore(load_report(Path(sys.argv[1])), Path(sys.argv[2]))))
