"""The two retriever changes the evaluation justified (see docs/evaluation.md)."""

from __future__ import annotations

from pathlib import Path

from chatbot.domain import readable_acls
from chatbot.index.retriever import HybridRetriever
from chatbot.ports import RetrievalQuery
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
            for j in range(12)
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
        assert [c.chunk_id for c in five] == [c.chunk_id for c in ten[:5]]
