"""Measured lift of personalisation with simulated users (``bench/personalisation.py``).

Each simulated user cares about one topic (a top-level folder of the corpus). They first ask a
few unambiguous questions of their topic (the profile learns from those turns), then ambiguous
questions whose key term appears in documents of several topics. A retrieved document is
relevant to the user when it belongs to their topic and contains the term. We compare hit@5
and MRR with personalisation off, on, and on after a round of simulated ratings, check that
unambiguous questions of other topics lose nothing, and score the recommendations (precision,
recall, catalogue coverage, intra-list diversity).

Nothing gold reaches a profile: the simulated user's topic only chooses which questions they
ask, the profile learns from what the product retrieved and cited, and a rating is the user's
own judgement of the cited document. Ratings are given on half of the ambiguous questions;
the ``held_out`` block scores the other half only, so the after-ratings figure is not just the
rated questions asked again. Run it with ``chatbot eval DATASET --personalisation`` or
``bench/personalisation.py``; both call :func:`evaluate_personalisation`.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.container import Container
from chatbot.domain import DoneEvent, readable_acls
from chatbot.ports import RetrievalQuery
from chatbot.settings import DatabaseSettings, Settings
from chatbot.text import detect_language, tokenize

# (question, term stem that must occur in a relevant document)
AMBIGUOUS: tuple[tuple[str, str], ...] = (
    ("How can I increase my yield?", "yield"),
    ("What is a good yield?", "yield"),
    ("How often should I check the chain?", "chain"),
    ("What should I know about the chain?", "chain"),
    ("When is the right time for pruning?", "prun"),
    ("What slows down growth?", "growth"),
    ("How does growth build up over time?", "growth"),
    ("Which pump should I buy?", "pump"),
    ("What maintenance should I plan for each year?", "maintenance"),
    ("How do I choose the right gearing?", "gear"),
    ("What does leverage mean?", "lever"),
    ("What should I change with the seasons?", "season"),
    ("How should I keep a bank?", "bank"),
    ("我应该怎样修剪？", "修剪"),
    ("保养要注意什么？", "保养"),
)
WARM_UP_QUESTIONS = 4
# the targets: >= 10 points hit@5 lift on ambiguous questions, <= 1 point loss elsewhere
TARGET_LIFT = 0.10
TARGET_MAX_LOSS = 0.01


@dataclass
class Scores:
    hits: list[float] = field(default_factory=list)
    rr: list[float] = field(default_factory=list)

    def add(self, ranked_docs: Sequence[str], relevant: set[str]) -> None:
        self.hits.append(float(any(d in relevant for d in ranked_docs[:5])))
        self.rr.append(
            next((1 / (i + 1) for i, d in enumerate(ranked_docs[:10]) if d in relevant), 0.0)
        )

    def summary(self) -> dict[str, float]:
        return {
            "hit@5": round(statistics.fmean(self.hits), 4) if self.hits else 0.0,
            "mrr@10": round(statistics.fmean(self.rr), 4) if self.rr else 0.0,
            "n": len(self.hits),
        }


def _doc_index(container: Container, root: Path) -> dict[str, dict[str, Any]]:
    docs = {}
    for d in container.store.documents():
        text = " ".join(
            c.text
            for c in container.store.chunks(
                container.store.catalog.chunk_ids_of([d.doc_id])
            ).values()
        )
        rel = Path(d.source).resolve().relative_to(root.resolve()).as_posix()
        docs[d.doc_id] = {
            "category": d.category,
            "text": text.lower(),
            "rel": rel,
            "title": d.title,
        }
    return docs


def _ranked_docs(container: Container, user_id: str, question: str, personal: bool) -> list[str]:
    signals = container.profiles.signals(user_id) if personal else None
    result = container.retriever.retrieve(
        RetrievalQuery(
            question,
            tuple(readable_acls(user_id)),
            top_k=10,
            language=detect_language(question),  # as the chat pipeline's understanding step does
            personal=signals,
        )
    )
    return [c.doc_id for c in result.chunks]  # one entry per retrieved chunk, in rank order


def run(
    container: Container,
    corpus: Path,
    questions_file: Path,
    progress: Callable[[str], None] = lambda _m: None,
    ambiguous: Sequence[tuple[str, str]] = AMBIGUOUS,
) -> dict[str, Any]:
    """Simulate one user per topic and return the measured table (see module docstring)."""
    docs = _doc_index(container, corpus)
    topics = sorted({d["category"] for d in docs.values() if d["category"]})
    labelled = [
        json.loads(line)
        for line in questions_file.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    unambiguous = [q for q in labelled if q["answerable"] and not q["meta"].get("ambiguous")]
    by_rel = {d["rel"]: doc_id for doc_id, d in docs.items()}

    off, on, rated = Scores(), Scores(), Scores()
    held_off, held_on, held_rated = Scores(), Scores(), Scores()
    unamb_off, unamb_on = Scores(), Scores()
    rec_lists: list[list[str]] = []
    rec_precision: list[float] = []
    rec_recall: list[float] = []
    for topic in topics:
        progress(f"user interested in {topic}")
        user = container.repo.ensure_user(username=f"sim-{topic}")
        container.profiles.reset(user_id=user.id)
        own = [q for q in unambiguous if q["meta"].get("topic") == topic]
        recommended: set[str] = set()
        topic_docs = {doc_id for doc_id, d in docs.items() if d["category"] == topic}
        for q in own[:WARM_UP_QUESTIONS]:
            done = _ask(container, user.id, q["question"])
            recs = [r.doc_id for r in done.recommendations if r.kind == "document" and r.doc_id]
            rec_lists.append(recs)
            recommended.update(recs)
            if recs:
                rec_precision.append(sum(r in topic_docs for r in recs) / len(recs))
        rec_recall.append(len(recommended & topic_docs) / len(topic_docs) if topic_docs else 0.0)

        cases = _ambiguous_cases(docs, topic, ambiguous)
        train, test = cases[::2], cases[1::2]
        for i, (question, relevant) in enumerate(cases):
            ranked_off = _ranked_docs(container, user.id, question, personal=False)
            ranked_on = _ranked_docs(container, user.id, question, personal=True)
            off.add(ranked_off, relevant)
            on.add(ranked_on, relevant)
            if i % 2:  # the half that will not be rated
                held_off.add(ranked_off, relevant)
                held_on.add(ranked_on, relevant)
        # a round of ratings on half the ambiguous questions, then score the other half too
        for question, relevant in train:
            done = _ask(container, user.id, question)
            cited = {c.doc_id for c in done.citations}
            if cited:
                good = bool(cited & relevant)
                container.chat.rate(
                    user_id=user.id,
                    message_id=done.message_id,
                    rating="up" if good else "down",
                    reason=None if good else "not_relevant",
                )
        for i, (question, relevant) in enumerate(cases):
            ranked = _ranked_docs(container, user.id, question, personal=True)
            rated.add(ranked, relevant)
            if i % 2:
                held_rated.add(ranked, relevant)
        del test

        for q in unambiguous:
            if q["meta"].get("topic") == topic:
                continue
            gold = {by_rel[f] for f in q["source_files"] if f in by_rel}
            unamb_off.add(_ranked_docs(container, user.id, q["question"], personal=False), gold)
            unamb_on.add(_ranked_docs(container, user.id, q["question"], personal=True), gold)

    coverage = len({d for recs in rec_lists for d in recs}) / len(docs) if docs else 0.0
    result: dict[str, Any] = {
        "ambiguous": {
            "off": off.summary(),
            "on": on.summary(),
            "on_after_ratings": rated.summary(),
        },
        "ambiguous_held_out": {
            "off": held_off.summary(),
            "on": held_on.summary(),
            "on_after_ratings": held_rated.summary(),
        },
        "unambiguous_other_topics": {"off": unamb_off.summary(), "on": unamb_on.summary()},
        "recommendations": {
            "precision": round(statistics.fmean(rec_precision), 4) if rec_precision else 0.0,
            "recall": round(statistics.fmean(rec_recall), 4) if rec_recall else 0.0,
            "catalogue_coverage": round(coverage, 4),
            "intra_list_diversity": round(_diversity(rec_lists, docs), 4),
        },
        "users": len(topics),
    }
    result["targets"] = targets(result)
    return result


def targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's two targets, each with its measured value and whether it is met."""
    a, u = result["ambiguous"], result["unambiguous_other_topics"]
    lift = round(a["on"]["hit@5"] - a["off"]["hit@5"], 4)
    loss = round(u["off"]["hit@5"] - u["on"]["hit@5"], 4)
    return {
        "ambiguous_hit@5_lift": {
            "value": lift,
            "target": f">= {TARGET_LIFT}",
            "met": a["on"]["n"] > 0 and lift >= TARGET_LIFT - 1e-9,
        },
        "unambiguous_hit@5_loss": {
            "value": loss,
            "target": f"<= {TARGET_MAX_LOSS}",
            "met": loss <= TARGET_MAX_LOSS + 1e-9,
        },
    }


def _ask(container: Container, user_id: str, question: str) -> DoneEvent:
    return container.chat.ask(user_id=user_id, message=question, acls=readable_acls(user_id))


def _ambiguous_cases(
    docs: dict[str, dict[str, Any]], topic: str, ambiguous: Sequence[tuple[str, str]] = AMBIGUOUS
) -> list[tuple[str, set[str]]]:
    cases = []
    for question, term in ambiguous:
        holders = {doc_id for doc_id, d in docs.items() if term in d["text"]}
        categories = {docs[d]["category"] for d in holders}
        relevant = {d for d in holders if docs[d]["category"] == topic}
        if relevant and len(categories) >= 2:
            cases.append((question, relevant))
    return cases


def _diversity(lists: list[list[str]], docs: dict[str, dict[str, Any]]) -> float:
    """Mean pairwise dissimilarity (1 - Jaccard of title words) within recommendation lists."""
    values = []
    for recs in lists:
        words = [set(tokenize(docs[d]["title"])) for d in recs]
        pairs = [(a, b) for i, a in enumerate(words) for b in words[i + 1 :]]
        if pairs:
            values.append(statistics.fmean(1 - len(a & b) / (len(a | b) or 1) for a, b in pairs))
    return statistics.fmean(values) if values else 0.0


def markdown_table(result: dict[str, Any]) -> str:
    a, u, r = result["ambiguous"], result["unambiguous_other_topics"], result["recommendations"]
    held = result.get("ambiguous_held_out", {})
    lines = [
        "| questions | personalisation | hit@5 | MRR@10 | n |",
        "|---|---|---|---|---|",
        *(
            f"| ambiguous | {k.replace('_', ' ')} | {v['hit@5']:.3f} | {v['mrr@10']:.3f} | {v['n']} |"
            for k, v in a.items()
        ),
        *(
            f"| ambiguous, not rated (held out) | {k.replace('_', ' ')} | {v['hit@5']:.3f} "
            f"| {v['mrr@10']:.3f} | {v['n']} |"
            for k, v in held.items()
        ),
        *(
            f"| unambiguous (other topics) | {k} | {v['hit@5']:.3f} | {v['mrr@10']:.3f} | {v['n']} |"
            for k, v in u.items()
        ),
        "",
        f"Lift on ambiguous questions: hit@5 {100 * (a['on']['hit@5'] - a['off']['hit@5']):+.1f} points "
        f"(after ratings {100 * (a['on_after_ratings']['hit@5'] - a['off']['hit@5']):+.1f}); "
        f"unambiguous change {100 * (u['on']['hit@5'] - u['off']['hit@5']):+.1f} points.",
        "",
        "| recommendations | precision | recall | catalogue coverage | intra-list diversity |",
        "|---|---|---|---|---|",
        f"| {result['users']} simulated users | {r['precision']:.3f} | {r['recall']:.3f} | {r['catalogue_coverage']:.3f} | {r['intra_list_diversity']:.3f} |",
    ]
    if "targets" in result:
        lines += ["", "| target | measured | wanted | met |", "|---|---|---|---|"]
        lines += [
            f"| {name} | {t['value']:+.3f} | {t['target']} | {'yes' if t['met'] else 'NO'} |"
            for name, t in result["targets"].items()
        ]
    return "\n".join(lines)


def evaluate_personalisation(
    corpus: Path,
    questions: Path,
    settings: Settings,
    out_dir: Path | None = None,
    *,
    llm_mode: str = "fake",
    progress: Callable[[str], None] = lambda _m: None,
    ambiguous: Sequence[tuple[str, str]] = AMBIGUOUS,
) -> tuple[dict[str, Any], list[Path]]:
    """Index ``corpus`` into a throw-away data folder, simulate the users, write the report.

    The embedding model is the configured one; the LLM defaults to the fake (answers do not
    affect ranking: the profile learns from what was retrieved and cited). Returns the result
    and the files written to ``out_dir`` (report.json, report.md, personalisation.png).
    """
    from chatbot.container import Container
    from ingest.jobs import IngestJob

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="personalisation-") as tmp:
        data = Path(tmp)
        if settings.models_dir.is_dir():
            (data / "models").symlink_to(settings.models_dir.resolve(), target_is_directory=True)
        run_settings = settings.model_copy(
            update={
                "data_dir": data,
                "database": DatabaseSettings(url=f"sqlite:///{data / 'chatbot.db'}"),
                "llm": settings.llm.model_copy(update={"mode": llm_mode}),
            }
        )
        container = Container(run_settings)
        try:
            progress(f"indexing {corpus}")
            IngestJob(
                store=container.store,
                embedder=container.embed_model,  # type: ignore[arg-type]
                settings=run_settings.ingest,
            ).run([corpus])
            result = run(container, corpus, questions, progress=progress, ambiguous=ambiguous)
        finally:
            container.close()
    result["setup"] = {
        "corpus": str(corpus),
        "questions": str(questions),
        "embedding": f"{settings.embedding.mode}:{getattr(settings.embedding, 'model', '')}",
        "llm": llm_mode,
        "interest_gate": settings.personalisation.interest_gate,
        "interest_alpha": settings.personalisation.interest_alpha,
        "runtime_s": round(time.perf_counter() - started, 1),
    }
    written: list[Path] = []
    if out_dir is not None:
        written = write_report(result, out_dir)
    return result, written


def write_report(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """report.json, report.md and a bar plot of hit@5 / MRR per condition."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    md_path = out_dir / "report.md"
    setup = result.get("setup", {})
    md_path.write_text(
        "# Personalisation lift\n\n"
        + "".join(f"- {k}: `{v}`\n" for k, v in setup.items())
        + "\n"
        + markdown_table(result)
        + "\n",
        encoding="utf-8",
    )
    return [json_path, md_path, _plot(result, out_dir / "personalisation.png")]


def _plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [
        ("ambiguous", result["ambiguous"]),
        ("ambiguous, held out", result.get("ambiguous_held_out", {})),
        ("unambiguous, other topics", result["unambiguous_other_topics"]),
    ]
    groups = [(title, block) for title, block in groups if block]
    fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.4), squeeze=False)
    for ax, (title, block) in zip(axes[0], groups, strict=True):
        conditions = list(block)
        width = 0.8 / len(conditions)
        for i, condition in enumerate(conditions):
            values = [block[condition]["hit@5"], block[condition]["mrr@10"]]
            xs = [x + (i - (len(conditions) - 1) / 2) * width for x in range(2)]
            bars = ax.bar(xs, values, width, label=condition.replace("_", " "))
            ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=6, padding=1)
        ax.set_xticks(range(2), ["hit@5", "MRR@10"], fontsize=8)
        ax.set_ylim(0, 1.15)
        ax.set_title(f"{title} (n={block[conditions[0]]['n']})", fontsize=9)
        ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
