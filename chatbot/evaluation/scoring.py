"""Per-question scores from a system's output, and their averages.

Every score is a number in 0..1 or ``None`` when it does not apply to the question (e.g. F1 on
an unanswerable question, span hit without span labels); averages skip ``None``. That is how
unanswerable questions stay out of the retrieval and F1 averages, and how refusal accuracy is
averaged over unanswerable questions only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from chatbot.evaluation import metrics as m
from chatbot.evaluation.datasets import QAItem
from chatbot.evaluation.systems import AnswerOutput, RetrievalOutput

RETRIEVAL_METRICS = (
    "doc_hit@1",
    "doc_hit@5",
    "mrr@10",
    "ndcg@10",
    "span_hit@5",
    "all_gold@5",
    "gate_refusal_accuracy",
    "gate_wrong_refusal",
)
ANSWER_METRICS = (
    "f1",
    "token_recall",
    "rouge_l",
    "exact_match",
    "contains_answer",
    "refusal_accuracy",
    "wrong_refusal",
    "context_doc_hit",
    "context_span_hit",
    "cited",
    "citation_gold_doc",
    "citation_span",
    "grounded",
)
# Lower is better for these; everything else is higher-is-better.
LOWER_IS_BETTER = frozenset({"wrong_refusal", "gate_wrong_refusal"})


def score_retrieval(item: QAItem, out: RetrievalOutput) -> dict[str, float | None]:
    """Retrieval scores; for unanswerable questions only whether the relevance gate refused."""
    gate = out.extra.get("gate_refusal")
    gated = float(gate) if gate is not None else None
    if not item.answerable:
        scores: dict[str, float | None] = dict.fromkeys(RETRIEVAL_METRICS)
        scores["gate_refusal_accuracy"] = gated
        return scores
    files = [p.file for p in out.passages]
    gold = item.source_files
    return {
        "doc_hit@1": m.hit_at_k(files, gold, 1),
        "doc_hit@5": m.hit_at_k(files, gold, 5),
        "mrr@10": m.mrr_at_k(files, gold, 10),
        "ndcg@10": m.ndcg_at_k(files, gold, 10),
        "span_hit@5": m.span_hit_at_k(
            out.passages, item.spans, item.reference_contexts, item.reference_answer, 5
        ),
        "all_gold@5": m.all_gold_at_k(files, gold, 5) if len(set(gold)) > 1 else None,
        "gate_refusal_accuracy": None,
        "gate_wrong_refusal": gated,
    }


def score_answer(item: QAItem, out: AnswerOutput) -> dict[str, float | None]:
    scores: dict[str, float | None] = dict.fromkeys(ANSWER_METRICS)
    if not out.refused:
        scores["grounded"] = m.grounding(out.text, item.question, out.context, item.language)
    if not item.answerable:
        scores["refusal_accuracy"] = float(out.refused)
        return scores
    text = m.strip_citations(out.text)
    refs, lang = item.references, item.language
    files = [p.file for p in out.context]
    has_evidence = bool(item.spans or item.reference_contexts)
    scores.update(
        f1=m.token_f1(text, refs, lang),
        token_recall=m.token_recall(text, refs, lang),
        rouge_l=m.rouge_l(text, refs, lang),
        exact_match=m.exact_match(text, refs, lang),
        contains_answer=m.contains_answer(text, refs, lang),
        wrong_refusal=float(out.refused),
        context_doc_hit=m.hit_at_k(files, item.source_files, len(files)),
        context_span_hit=m.span_hit_at_k(
            out.context, item.spans, item.reference_contexts, item.reference_answer, len(files)
        ),
    )
    if out.cited is not None and not out.refused:
        scores["cited"] = float(bool(out.cited))
        if out.cited:
            gold = set(item.source_files)
            scores["citation_gold_doc"] = sum(p.file in gold for p in out.cited) / len(out.cited)
            if has_evidence:
                scores["citation_span"] = float(
                    any(
                        m.passage_supports(
                            p, item.spans, item.reference_contexts, item.reference_answer
                        )
                        for p in out.cited
                    )
                )
    return scores


def summarise(
    rows: Sequence[tuple[QAItem, dict[str, float | None]]], names: Sequence[str]
) -> dict[str, Any]:
    """Averages over all questions, per language and per question type, with counts.

    Question types come from ``meta.question_type`` when the dataset has one.
    """

    def block(selected: Sequence[dict[str, float | None]]) -> dict[str, Any]:
        means = {n: m.mean(s.get(n) for s in selected) for n in names}
        counts = {n: sum(s.get(n) is not None for s in selected) for n in names}
        return {"n_questions": len(selected), "metrics": means, "counts": counts}

    by_lang: dict[str, list[dict[str, float | None]]] = defaultdict(list)
    by_type: dict[str, list[dict[str, float | None]]] = defaultdict(list)
    for item, scores in rows:
        by_lang[item.language].append(scores)
        if item.question_type:
            by_type[item.question_type].append(scores)
    return {
        "all": block([s for _, s in rows]),
        "by_language": {lang: block(v) for lang, v in sorted(by_lang.items())},
        "by_question_type": {kind: block(v) for kind, v in sorted(by_type.items())},
    }


def latency_summary(latencies: Iterable[dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """p50 / p95 / mean per stage (ms) over the questions that recorded that stage."""
    stages: dict[str, list[float]] = defaultdict(list)
    for lat in latencies:
        for stage, value in lat.items():
            if isinstance(value, int | float):
                stages[stage].append(float(value))
    return {
        stage: {
            "p50": m.percentile(values, 50),
            "p95": m.percentile(values, 95),
            "mean": sum(values) / len(values),
            "n": len(values),
        }
        for stage, values in sorted(stages.items())
    }
