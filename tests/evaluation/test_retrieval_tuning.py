"""The retriever changes the evaluation justified (see docs/evaluation.md)."""

from __future__ import annotations

from pathlib import Path

from chatbot.domain import readable_acls
from chatbot.index.catalog import ChunkRecord
from chatbot.index.retriever import HybridRetriever, _Candidate, _to_chunk
from chatbot.ports import RetrievalQuery
from chatbot.settings import RetrievalSettings
from ingest.jobs import IngestJob

TOPICS = ["chain", "tyre", "brake", "saddle", "gear", "wheel", "pump", "light"]


def test_english_only_embeddings_are_ignored_for_chinese_queries(container) -> None:  # type: ignore[no-untyped-def]
    retriever = container.retriever
    object.__setattr__(retriever.embed_model, "model_name", "all-MiniLM-L6-v2")
    assert retriever._vector_trust("en") == 1.0
    assert retriever._vector_trust("und") == 1.0
    assert retriever._vector_trust("zh") == 0.0
    object.__setattr__(retriever.embed_model, "model_name", "/models/multilingual-e5")
    assert retriever._vector_trust("zh") == 1.0


def test_top_5_is_the_prefix_of_top_10(container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, topic in enumerate(TOPICS):
        text = " ".join(
            f"The {topic} needs care number {j}: check the {topic} and the {TOPICS[(i + j) % 8]} "
            f"every {j + 2} weeks, and clean the {topic} after rain."
            for j in range(40)
        )
        (corpus / f"{topic}.txt").write_text(f"{topic.title()} care\n\n{text}", encoding="utf-8")
    settings = container.settings
    IngestJob(store=container.store, embedder=container.embed_model, settings=settings.ingest).run(
        [corpus]
    )  # type: ignore[arg-type]
    retriever: HybridRetriever = container.retriever
    acls = tuple(readable_acls(None))
    for question in ("how often to check the chain and the tyre", "clean the brake after rain"):
        ten = retriever.retrieve(RetrievalQuery(question, acls, top_k=10)).chunks
        five = retriever.retrieve(RetrievalQuery(question, acls, top_k=5)).chunks
        assert len(ten) == 10
        assert [(c.chunk_id, c.text) for c in five] == [(c.chunk_id, c.text) for c in ten[:5]]


def _records(texts: list[str], doc_id: str = "d1") -> dict[str, ChunkRecord]:
    """Chunks of one document, each overlapping the previous one by its last word."""
    out, pos = {}, 0
    for i, text in enumerate(texts):
        start = pos
        out[f"{doc_id}-{i}"] = ChunkRecord(
            f"{doc_id}-{i}", doc_id, "public", i, text, ("k",), start, start + len(text)
        )
        pos = start + len(text) - len(text.split()[-1])
    return out


def _retriever(**overrides: object) -> HybridRetriever:
    settings = RetrievalSettings().model_copy(update={"mmr_lambda": 1.0, **overrides})
    return HybridRetriever(store=None, embed_model=None, settings=settings)  # type: ignore[arg-type]


def _candidates(scores: dict[str, float]) -> list[_Candidate]:
    return [_Candidate(cid, fused=s) for cid, s in sorted(scores.items(), key=lambda x: -x[1])]


def test_neighbouring_chunks_are_merged_into_one_passage() -> None:
    texts = ["alpha beta gamma", "gamma delta epsilon", "epsilon zeta eta", "eta theta iota"]
    records = _records(texts) | _records(["other words here"], "d2")
    ranked = _candidates({"d1-1": 0.9, "d1-2": 0.8, "d2-0": 0.7, "d1-0": 0.6, "d1-3": 0.5})
    selected = _retriever(merge_neighbours=3)._diversify(ranked, records, top_k=2)
    assert [c.chunk_id for c in selected] == ["d1-1", "d2-0"]
    # d1-2 and d1-0 fold into d1-1 (three chunks); d1-3 would make four, so it does not
    assert [m.chunk_id for m in selected[0].merged] == ["d1-2", "d1-0"]
    chunk = _to_chunk(selected[0], records, None)
    assert chunk.chunk_id == "d1-1"
    assert chunk.text == "alpha beta gamma delta epsilon zeta eta"
    assert (chunk.start_char, chunk.end_char) == (0, records["d1-2"].end_char)


def test_merging_can_be_switched_off() -> None:
    records = _records(["alpha beta", "beta gamma", "gamma delta"])
    ranked = _candidates({"d1-0": 0.9, "d1-1": 0.8, "d1-2": 0.7})
    selected = _retriever(merge_neighbours=1)._diversify(ranked, records, top_k=3)
    assert [c.chunk_id for c in selected] == ["d1-0", "d1-1", "d1-2"]
    assert all(not c.merged for c in selected)
    assert _to_chunk(selected[1], records, None).text == "beta gamma"


def test_chunks_that_are_not_neighbours_are_not_merged() -> None:
    records = _records(["a b", "b c", "c d", "d e"])
    ranked = _candidates({"d1-0": 0.9, "d1-2": 0.8})
    selected = _retriever(merge_neighbours=3)._diversify(ranked, records, top_k=2)
    assert [c.chunk_id for c in selected] == ["d1-0", "d1-2"]
