"""Two-word phrases in the keyword search (retrieval.phrases; chatbot/index/retriever.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.domain import readable_acls
from chatbot.index.retriever import phrase_terms
from chatbot.ports import RetrievalQuery
from chatbot.text import tokenize
from ingest.jobs import IngestJob
from tests.helpers import PHRASE_QUESTION, WORDS_APART, WORDS_TOGETHER


def test_neighbouring_english_terms_pair_up_and_chinese_ones_do_not() -> None:
    terms = tokenize(PHRASE_QUESTION)
    assert phrase_terms(terms) == ["male femal", "femal ratio"]
    assert phrase_terms(tokenize("ratio")) == []
    assert phrase_terms(tokenize("链条怎么润滑")) == []
    assert phrase_terms(tokenize("GPU 显卡 prices")) == []  # never across a Chinese word


@pytest.mark.parametrize("enabled", [True, False])
def test_the_retriever_searches_phrases_when_enabled(  # type: ignore[no-untyped-def]
    enabled: bool, container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "cohort.txt").write_text(f"Cohort\n\n{WORDS_TOGETHER}", encoding="utf-8")
    (corpus / "staff.txt").write_text(f"Staff\n\n{WORDS_APART}", encoding="utf-8")
    IngestJob(
        store=container.store, embedder=container.embed_model, settings=container.settings.ingest
    ).run([corpus])
    container.settings.retrieval.phrases = enabled
    searched: list[list[str]] = []
    search = container.store.keyword_search

    def spy(terms, acls, k):  # type: ignore[no-untyped-def]
        searched.append(list(terms))
        return search(terms, acls, k)

    monkeypatch.setattr(container.store, "keyword_search", spy)
    query = RetrievalQuery(PHRASE_QUESTION, tuple(readable_acls(None)), 2)
    result = container.retriever.retrieve(query)
    assert ("male femal" in searched[0]) is enabled
    assert searched[0][:3] == ["male", "femal", "ratio"]
    best_keyword_match = max(result.chunks, key=lambda c: c.scores.get("bm25", 0.0))
    # the neighbouring words win with phrases; without them the repeated words do
    expected = "cohort.txt" if enabled else "staff.txt"
    assert Path(best_keyword_match.source).name == expected
