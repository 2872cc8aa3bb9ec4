"""Experiment: sentence-level vectors as an extra ranking in the hybrid fusion (not shipped).

MiniLM was trained on sentence pairs, and a 200-token chunk's single vector blurs the one
sentence a question asks about. This splits every chunk of a dataset's cached eval index into
sentences, embeds them once (cached under ``/tmp``), and for each question ranks chunks by
their best sentence's cosine. That ranking is fused into the shipped retriever's RRF list with
weight ``w`` (the same ``rrf_k``), either as a third list of the top ``k`` chunks
(``mode=add``, which needs a sentence index in production) or only over the first ``top``
fused candidates (``mode=rerank``, which could embed those chunks' sentences at query time).
Everything after the fusion (boosts, MMR, merging) is the shipped code.

    .venv/bin/python bench/sentence_vectors.py ../shared/eval/covidqa w=0 w=0.5,k=20 \
        w=0.5,mode=rerank,top=15

Prints doc hit@1/@5, MRR@10 and span hit@5 per variant, then each variant against the
first (``w=0``: the shipped retriever) with the paired 95 % bootstrap interval of
``chatbot eval-compare`` (``chatbot.evaluation.stats``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
METRICS = ("doc_hit@1", "doc_hit@5", "mrr@10", "span_hit@5")


def sentences(texts: dict[str, str]) -> tuple[list[str], np.ndarray]:
    """Every sentence of at least 25 characters, and the id of the chunk it came from."""
    out, owners = [], []
    for chunk_id, text in texts.items():
        for sentence in SENTENCE_END.split(text):
            if len(sentence.strip()) >= 25:
                out.append(sentence.strip())
                owners.append(chunk_id)
    return out, np.array(owners)


def paired(base: list[dict[str, Any]], other: list[dict[str, Any]], metric: str) -> str:
    """``other`` minus ``base`` in points, its paired 95 % interval, questions better / worse."""
    from chatbot.evaluation.stats import paired_delta, score_pairs

    pairs = score_pairs(other, base, metric)
    delta = paired_delta(pairs)
    if delta is None:
        return "-"
    better, worse = sum(o > b for o, b in pairs), sum(o < b for o, b in pairs)
    return (
        f"{100 * delta.delta:+.1f} [{100 * delta.low:+.1f}, {100 * delta.high:+.1f}]"
        f" ({better} better, {worse} worse)"
    )


def main() -> None:
    from rich.console import Console

    from chatbot.evaluation.cache import IndexCache
    from chatbot.evaluation.datasets import load_dataset, select
    from chatbot.evaluation.metrics import mean
    from chatbot.evaluation.ours import OursSystem
    from chatbot.evaluation.scoring import score_retrieval
    from chatbot.evaluation.systems import Shared
    from chatbot.index.retriever import HybridRetriever, _Candidate
    from chatbot.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("variants", nargs="*", default=["w=0", "w=0.5,k=20"])
    args = parser.parse_args()

    base = Settings()
    dataset = load_dataset(args.dataset)
    items = select(dataset.items, limit=0)
    shared = Shared(base, dataset, IndexCache(base.data_dir / "eval-cache"), Console(stderr=True))
    ours = OursSystem(shared)
    ours.prepare()
    container = ours.container
    assert container is not None
    embed, catalog = container.embed_model, container.store.catalog
    records = catalog.chunks(sorted(catalog.all_chunk_ids()))
    texts, owners = sentences({cid: r.text for cid, r in records.items()})
    started = time.perf_counter()
    cached = Path("/tmp") / f"sentence-vectors-{args.dataset.name}-{len(texts)}.npy"
    hit = cached.exists()
    if hit:
        vectors = np.load(cached)
    else:
        vectors = np.asarray(embed.get_text_embedding_batch(texts), dtype=np.float32)
        np.save(cached, vectors)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    how = f"read from {cached}" if hit else f"embedded in {time.perf_counter() - started:.0f} s"
    print(f"{len(records)} chunks, {len(texts)} sentences, {how}")

    query_vectors: dict[str, list[float]] = {}
    last: list[list[float]] = []
    real = embed.get_query_embedding

    def remembered(text: str) -> list[float]:
        if text not in query_vectors:
            query_vectors[text] = real(text)
        last[:] = [query_vectors[text]]
        return query_vectors[text]

    object.__setattr__(embed, "get_query_embedding", remembered)

    def by_best_sentence(allowed: set[str] | None, k: int) -> list[str]:
        sims = vectors @ np.asarray(last[0], dtype=np.float32)
        ranked: dict[str, None] = {}  # insertion-ordered set
        for i in np.argsort(-sims):
            chunk_id = str(owners[i])
            if chunk_id not in ranked and (allowed is None or chunk_id in allowed):
                ranked[chunk_id] = None
                if len(ranked) == k:
                    break
        return list(ranked)

    class SentenceFused(HybridRetriever):
        variant: dict[str, str]

        def _fuse(self, vector_hits: list, keyword_hits: Any, language: str = "en") -> Any:  # type: ignore[type-arg]
            fused = super()._fuse(vector_hits, keyword_hits, language)
            v = self.variant
            weight = float(v.get("w", 0))
            if weight == 0 or language != "en":  # MiniLM reads English only
                return fused
            by_id = {c.chunk_id: c for c in fused}
            rerank = v.get("mode", "add") == "rerank"
            allowed = {c.chunk_id for c in fused[: int(v.get("top", 10**6))]} if rerank else None
            ranked = by_best_sentence(allowed, int(v.get("k", 40)) if not rerank else 10**6)
            for rank, chunk_id in enumerate(ranked, 1):
                c = by_id.setdefault(chunk_id, _Candidate(chunk_id))
                c.fused += weight / (self.settings.rrf_k + rank)
                c.scores["rrf"] = c.fused
            return sorted(by_id.values(), key=lambda c: -c.fused)

    results: dict[str, list[dict[str, Any]]] = {}
    for spec in args.variants:
        retriever = SentenceFused(container.store, embed, container.settings.retrieval)
        retriever.variant = dict(part.split("=") for part in spec.split(","))
        container.__dict__["retriever"] = retriever
        started = time.perf_counter()
        results[spec] = [score_retrieval(q, ours.retrieve(q, 10)) for q in items]
        shown = " ".join(
            f"{n}={'-' if v is None else f'{v:.3f}'}"
            for n in METRICS
            for v in [mean(s[n] for s in results[spec])]
        )
        print(f"{spec:28s} {shown} ({time.perf_counter() - started:.0f} s)", flush=True)
    first, *others = args.variants
    for spec in others:
        for name in ("doc_hit@1", "doc_hit@5", "span_hit@5"):
            print(f"{spec} vs {first}: {name} {paired(results[first], results[spec], name)}")
    ours.close()
    shared.cache.close()


if __name__ == "__main__":
    main()
