"""Compact Markdown tables from one or more ``report.json`` files (for docs/evaluation.md).

    .venv/bin/python bench/eval_summary.py reports/final/*/report.json

One row per dataset × language × system; deltas of ours against each baseline in points.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = {
    "retrieval": ("doc_hit@1", "doc_hit@5", "mrr@10", "ndcg@10", "span_hit@5", "all_gold@5"),
    "answer": (
        "f1",
        "token_recall",
        "rouge_l",
        "contains_answer",
        "refusal_accuracy",
        "wrong_refusal",
        "context_doc_hit",
        "citation_gold_doc",
        "citation_span",
    ),
}


def fmt(value: float | None, ours: float | None = None, system: str = "ours") -> str:
    if value is None:
        return "–"
    if system == "ours" or ours is None:
        return f"{value:.3f}"
    return f"{value:.3f} ({(ours - value) * 100:+.1f})"


def rows(report: dict) -> list[str]:  # type: ignore[type-arg]
    mode = report["mode"]
    columns = COLUMNS[mode]
    blocks = [("all", {s: report["metrics"][s]["all"] for s in report["systems"]})]
    languages = sorted(report["metrics"]["ours"]["by_language"])
    if len(languages) > 1:
        blocks += [
            (lang, {s: report["metrics"][s]["by_language"].get(lang) for s in report["systems"]})
            for lang in languages
        ]
    out = []
    for lang, block in blocks:
        ours = block["ours"]["metrics"]
        n = f"{block['ours']['counts'][columns[0]]}/{block['ours']['n_questions']}"
        for system in report["systems"]:
            metrics = (block.get(system) or {}).get("metrics", {})
            cells = [fmt(metrics.get(c), ours.get(c), system) for c in columns]
            name = report["dataset"]["name"]
            out.append(f"| {name} | {lang} ({n}) | {system} | " + " | ".join(cells) + " |")
    return out


def main() -> None:
    reports = [json.loads(Path(p).read_text()) for p in sys.argv[1:]]
    for mode in ("retrieval", "answer"):
        chosen = [r for r in reports if r["mode"] == mode]
        if not chosen:
            continue
        header = ["dataset", "lang (answerable/all)", "system", *COLUMNS[mode]]
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for report in chosen:
            print("\n".join(rows(report)))
        print()
        for report in chosen:
            lat = report["latency_ms"]
            parts = [
                f"{s} total p50 {lat[s]['total_ms']['p50']:.0f} / p95 {lat[s]['total_ms']['p95']:.0f} ms"
                for s in report["systems"]
                if "total_ms" in lat.get(s, {})
            ]
            print(f"- {report['dataset']['name']}: " + "; ".join(parts))
            print(f"  run time {report['runtime_s']}")
        print()


if __name__ == "__main__":
    main()
