"""PNG plots of a run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chatbot.evaluation.runner import EvalRun
from chatbot.evaluation.stats import mean_interval

PLOTTED = {
    "retrieval": ("doc_hit@1", "doc_hit@5", "mrr@10", "ndcg@10", "span_hit@5", "all_gold@5"),
    "answer": (
        "f1",
        "token_recall",
        "rouge_l",
        "contains_answer",
        "refusal_accuracy",
        "wrong_refusal",
        "context_doc_hit",
        "citation_span",
        "grounded",
    ),
}


def write_plots(run: EvalRun, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    return [_metric_bars(run, out_dir / "metrics.png"), _latency(run, out_dir / "latency.png")]


def _metric_bars(run: EvalRun, path: Path) -> Path:
    import matplotlib.pyplot as plt

    blocks: list[tuple[str, str | None, dict[str, Any]]] = [
        ("all", None, {s: run.summary[s]["all"] for s in run.systems})
    ]
    languages = sorted({lang for s in run.systems for lang in run.summary[s]["by_language"]})
    if len(languages) > 1:
        for lang in languages:
            blocks.append(
                (
                    lang,
                    lang,
                    {
                        s: run.summary[s]["by_language"].get(lang, {"metrics": {}})
                        for s in run.systems
                    },
                )
            )
    names = [
        m
        for m in PLOTTED[run.options.mode]
        if any(b[s]["metrics"].get(m) is not None for _, _, b in blocks for s in run.systems)
    ]
    fig, axes = plt.subplots(
        len(blocks), 1, figsize=(max(6, 1.4 * len(names) + 2), 3.2 * len(blocks)), squeeze=False
    )
    width = 0.8 / max(1, len(run.systems))
    for ax, (title, language, block) in zip(axes[:, 0], blocks, strict=True):
        for i, system in enumerate(run.systems):
            means = [block[system]["metrics"].get(m) for m in names]
            values = [v or 0.0 for v in means]
            low, high = _error_bars(run, system, names, values, language)
            xs = [x + (i - (len(run.systems) - 1) / 2) * width for x in range(len(names))]
            bars = ax.bar(xs, values, width, label=system, yerr=[low, high], capsize=2)
            labels = ["n/a" if v is None else f"{v:.2f}" for v in means]
            ax.bar_label(bars, labels=labels, fontsize=6, padding=1)
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_ylim(0, 1.1)
        ax.set_title(f"{run.dataset.name} · {run.options.mode} · {title}", fontsize=9)

    axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.text(0.01, 0.005, "whiskers: 95 % bootstrap interval of the mean", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _error_bars(
    run: EvalRun, system: str, names: list[str], values: list[float], language: str | None
) -> tuple[list[float], list[float]]:
    """Distances from each bar's top to its interval's ends (zero where nothing applies)."""
    low, high = [], []
    for metric, value in zip(names, values, strict=True):
        scores = [
            q["systems"][system]["scores"].get(metric)
            for q in run.questions
            if system in q["systems"] and language in (None, q.get("language"))
        ]
        interval = mean_interval([float(v) for v in scores if v is not None])
        low.append(max(0.0, value - interval[0]) if interval else 0.0)
        high.append(max(0.0, interval[1] - value) if interval else 0.0)
    return low, high


def _latency(run: EvalRun, path: Path) -> Path:
    import matplotlib.pyplot as plt

    totals = {
        s: [
            float(q["systems"][s]["latency_ms"]["total_ms"])
            for q in run.questions
            if "total_ms" in q["systems"][s].get("latency_ms", {})
        ]
        for s in run.systems
    }
    systems = [s for s in run.systems if totals[s]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if systems:
        left.boxplot([totals[s] for s in systems], tick_labels=systems, showfliers=True)
        left.set_yscale("log")
    left.set_ylabel("total latency per question (ms, log)")
    left.set_title("latency distribution", fontsize=9)
    stages = sorted({st for s in run.systems for st in run.latency.get(s, {}) if st != "total_ms"})
    width = 0.8 / max(1, len(run.systems))
    for i, system in enumerate(run.systems):
        values = [(run.latency[system].get(st) or {}).get("p50") or 0.0 for st in stages]
        xs = [x + (i - (len(run.systems) - 1) / 2) * width for x in range(len(stages))]
        right.bar(xs, values, width, label=system)
    right.set_xticks(range(len(stages)), stages, rotation=30, ha="right", fontsize=7)
    right.set_ylabel("p50 ms")
    right.set_title("p50 per stage", fontsize=9)
    if stages:
        right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
