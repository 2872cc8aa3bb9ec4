"""Measured lift of personalisation with simulated users (``bench/personalisation.py``).

Each simulated user cares about one topic (a top-level folder of the corpus). They first ask a
few unambiguous questions of their topic (the profile learns from those turns), then ambiguous
questions whose key term appears in documents of several topics. A retrieved document is
relevant to the user when it belongs to their topic and contains the term. We compare hit@5
and MRR with personalisation off, on, and on after a round of simulated ratings, check that
unambiguous questions of other topics lose nothing, and score the recommendations (precision,
recall, catalogue coverage, intra-list diversity).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.container import Container
from chatbot.domain import DoneEvent, readable_acls
from chatbot.ports import RetrievalQuery
from chatbot.text import tokenize

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
        RetrievalQuery(question, tuple(readable_acls(user_id)), top_k=10, personal=signals)
    )
    return [c.doc_id for c in result.chunks]  # one entry per retrieved chunk, in rank order


def run(
    container: Container,
    corpus: Path,
    questions_file: Path,
    progress: Callable[[str], None] = lambda _m: None,
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

        cases = _ambiguous_cases(docs, topic)
        train, test = cases[::2], cases[1::2]
        for question, relevant in cases:
            off.add(_ranked_docs(container, user.id, question, personal=False), relevant)
            on.add(_ranked_docs(container, user.id, question, personal=True), relevant)
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
        for question, relevant in cases:
            rated.add(_ranked_docs(container, user.id, question, personal=True), relevant)
        del test

        for q in unambiguous:
            if q["meta"].get("topic") == topic:
                continue
            gold = {by_rel[f] for f in q["source_files"] if f in by_rel}
            unamb_off.add(_ranked_docs(container, user.id, q["question"], personal=False), gold)
            unamb_on.add(_ranked_docs(container, user.id, q["question"], personal=True), gold)

    coverage = len({d for recs in rec_lists for d in recs}) / len(docs) if docs else 0.0
    return {
        "ambiguous": {
            "off": off.summary(),
            "on": on.summary(),
            "on_after_ratings": rated.summary(),
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


def _ask(container: Container, user_id: str, question: str) -> DoneEvent:
    return container.chat.ask(user_id=user_id, message=question, acls=readable_acls(user_id))


def _ambiguous_cases(docs: dict[str, dict[str, Any]], topic: str) -> list[tuple[str, set[str]]]:
    cases = []
    for question, term in AMBIGUOUS:
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
    lines = [
        "| questions | personalisation | hit@5 | MRR@10 | n |",
        "|---|---|---|---|---|",
        *(
            f"| ambiguous | {k.replace('_', ' ')} | {v['hit@5']:.3f} | {v['mrr@10']:.3f} | {v['n']} |"
            for k, v in a.items()
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
    return "\n".join(lines)
