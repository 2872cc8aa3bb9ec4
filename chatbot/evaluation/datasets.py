"""Evaluation datasets: a folder of documents plus one question a line (qa.jsonl schema).

Layouts understood:

* ``DIR/docs/`` + ``DIR/qa.jsonl`` (the shared evaluation sets);
* ``DIR/`` itself as the documents + ``DIR/questions.jsonl`` (``data/samples``);
* any folder and file given with ``--docs`` and ``--questions``.

``source_files`` and ``answer_spans[].file`` are paths relative to the documents folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.evaluation.metrics import Span
from ingest.jobs import discover

QUESTION_FILES = ("qa.jsonl", "questions.jsonl")


class DatasetError(ValueError):
    """The dataset folder or its questions file is unusable; the message says why."""


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    language: str
    answerable: bool
    reference_answer: str | None
    reference_answers: tuple[str, ...]
    reference_contexts: tuple[str, ...]
    source_files: tuple[str, ...]
    spans: tuple[Span, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ambiguous(self) -> bool:
        return bool(self.meta.get("ambiguous"))

    @property
    def question_type(self) -> str | None:
        """``meta.question_type`` (e.g. STICI's single_passage / multi_passage / no_answer)."""
        kind = self.meta.get("question_type")
        return str(kind) if kind else None

    @property
    def references(self) -> tuple[str, ...]:
        if self.reference_answers:
            return self.reference_answers
        return (self.reference_answer,) if self.reference_answer else ()


@dataclass(frozen=True)
class Dataset:
    name: str
    docs_dir: Path
    questions_path: Path
    files: tuple[Path, ...]
    items: tuple[QAItem, ...]

    def relpath(self, path: str | Path) -> str:
        """A document path relative to the documents folder (as the labels use)."""
        p = Path(path).resolve()
        root = self.docs_dir.resolve()
        return p.relative_to(root).as_posix() if p.is_relative_to(root) else p.name

    def content_hash(self) -> str:
        """sha256 over every document's relative path and bytes (the cache key's core)."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(self.relpath(f).encode())
            h.update(b"\0")
            h.update(hashlib.sha256(f.read_bytes()).digest())
        return h.hexdigest()


def load_dataset(path: Path, *, docs: Path | None = None, questions: Path | None = None) -> Dataset:
    """Find the documents and questions of a dataset folder (overrides win)."""
    path = path.resolve()
    if questions is None:
        found = [path / n for n in QUESTION_FILES if (path / n).is_file()]
        if not found:
            raise DatasetError(f"no {' or '.join(QUESTION_FILES)} in {path}; pass --questions")
        questions = found[0]
    if docs is None:
        docs = path / "docs" if (path / "docs").is_dir() else path
    docs, questions = docs.resolve(), questions.resolve()
    if not docs.is_dir():
        raise DatasetError(f"documents folder {docs} does not exist")
    found_files, _skipped = discover([docs])
    files = tuple(sorted(f.resolve() for f, _root in found_files if f.resolve() != questions))
    if not files:
        raise DatasetError(f"no supported documents in {docs}")
    items = tuple(parse_items(questions))
    if not items:
        raise DatasetError(f"{questions} holds no questions")
    name = path.name if path.name != "docs" else path.parent.name
    return Dataset(name=name, docs_dir=docs, questions_path=questions, files=files, items=items)


def parse_items(questions: Path) -> list[QAItem]:
    items = []
    for number, line in enumerate(questions.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            items.append(_item(raw))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(f"{questions}:{number}: not a question record ({exc})") from exc
    return items


def _item(raw: dict[str, Any]) -> QAItem:
    spans = tuple(
        Span(file=s["file"], start=int(s["start"]), end=int(s["end"]), text=s.get("text", ""))
        for s in raw.get("answer_spans") or []
    )
    answer = raw.get("reference_answer")
    return QAItem(
        id=str(raw["id"]),
        question=str(raw["question"]),
        language=str(raw.get("language") or "en"),
        answerable=bool(raw.get("answerable", answer is not None)),
        reference_answer=answer,
        reference_answers=tuple(raw.get("reference_answers") or ()),
        reference_contexts=tuple(raw.get("reference_contexts") or ()),
        source_files=tuple(raw.get("source_files") or ()),
        spans=spans,
        meta=dict(raw.get("meta") or {}),
    )


def select(
    items: tuple[QAItem, ...], *, limit: int = 0, exclude_ambiguous: bool = False
) -> list[QAItem]:
    """The questions a run uses.

    Questions with empty text are left out (the chat refuses empty messages). ``limit`` takes
    that many questions evenly spaced through the file, so that every part of a file sorted by
    question type is represented; the choice is deterministic.
    """
    chosen = [
        q
        for q in items
        if q.question.strip() and not (exclude_ambiguous and q.ambiguous)  # nothing to ask
    ]
    if 0 < limit < len(chosen):
        step = len(chosen) / limit
        chosen = [chosen[int(i * step)] for i in range(limit)]
    return chosen
