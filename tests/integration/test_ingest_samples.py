"""The real embedding model over the shipped samples, through the CLI as a user runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatbot.domain import readable_acls
from chatbot.text import tokenize
from tests.conftest import SAMPLES

pytestmark = pytest.mark.integration


def test_ingest_samples_then_find_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHATBOT_EMBEDDING__MODE", "local")
    from chatbot.cli import app
    from chatbot.container import Container
    from chatbot.settings import Settings, get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(SAMPLES)])
    assert result.exit_code == 0, result.output
    assert "Ingestion summary" in result.output and "chunks/s" in result.output
    again = runner.invoke(app, ["ingest", str(SAMPLES)])
    assert re.search(r"unchanged\s*│\s*39\b", again.output), again.output

    container = Container(Settings())
    store = container.store
    docs = store.documents()
    assert len(docs) == 39
    assert {d.language for d in docs} == {"en", "zh"}
    assert {d.category for d in docs} == {"gardening", "finance", "cycling"}
    assert store.vector_count() == store.stats()["chunks"]

    questions = [
        json.loads(line) for line in (SAMPLES / "questions.jsonl").read_text().splitlines()
    ]
    answerable = [q for q in questions if q["answerable"] and not q["meta"].get("ambiguous")]
    hits = 0
    for q in answerable:
        qvec = container.embed_model.get_query_embedding(q["question"])
        ids = [h.chunk_id for h in store.vector_search(qvec, readable_acls(None), 5)]
        ids += [
            cid for cid, _ in store.keyword_search(tokenize(q["question"]), readable_acls(None), 5)
        ]
        sources = {
            Path(store.document(c.doc_id).source).relative_to(SAMPLES.resolve()).as_posix()  # type: ignore[union-attr]
            for c in store.chunks(ids).values()
        }
        hits += bool(sources & set(q["source_files"]))
    assert hits / len(answerable) >= 0.9, f"{hits}/{len(answerable)}"
    container.close()
