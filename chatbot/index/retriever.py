"""Hybrid retrieval: BM25 + vectors, reciprocal-rank fusion, personal boosts, MMR diversity.

Ownership is enforced inside both queries (the ACL filter), never after the fact. Each stage
records what it did in the result's trace so a turn can be replayed and explained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from llama_index.core.base.embeddings.base import BaseEmbedding

from chatbot.domain import RetrievedChunk
from chatbot.index.catalog import ChunkRecord, DocumentRecord
from chatbot.index.storage import ChunkStore
from chatbot.ports import RetrievalQuery, RetrievalResult
from chatbot.settings import RetrievalSettings
from chatbot.text import tokenize


@dataclass
class _Candidate:
    chunk_id: str
    scores: dict[str, float] = field(default_factory=dict)
    fused: float = 0.0
    terms: frozenset[str] = frozenset()


class HybridRetriever:
    """Implements the ``Retriever`` port over a :class:`ChunkStore`."""

    def __init__(
        self, store: ChunkStore, embed_model: BaseEmbedding, settings: RetrievalSettings
    ) -> None:
        self.store = store
        self.embed_model = embed_model
        self.settings = settings

    def retrieve(self, query: RetrievalQuery) -> RetrievalResult:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        qvec = self.embed_model.get_query_embedding(query.text)
        timings["embed_ms"] = _ms(started)

        t = time.perf_counter()
        k = self.settings.candidates
        vector_hits = self.store.vector_search(qvec, query.acls, k)
        terms = tokenize(query.text)
        keyword_hits = self.store.keyword_search(terms, query.acls, k)
        timings["search_ms"] = _ms(t)

        candidates = self._fuse(vector_hits, keyword_hits)
        records = self.store.chunks([c.chunk_id for c in candidates])
        candidates = [c for c in candidates if c.chunk_id in records]  # drop orphans
        docs = {d: self.store.document(d) for d in {r.doc_id for r in records.values()}}
        boosted = self._boost(candidates, records, query)
        selected = self._diversify(boosted, records, query.top_k)
        chunks = tuple(
            _to_chunk(c, records[c.chunk_id], docs[records[c.chunk_id].doc_id]) for c in selected
        )
        timings["total_ms"] = _ms(started)
        return RetrievalResult(
            chunks=chunks,
            best_vector_similarity=max((h.similarity for h in vector_hits), default=0.0),
            keyword_matches=len(keyword_hits),
            trace={
                "query": query.text,
                "vector_hits": len(vector_hits),
                "keyword_hits": len(keyword_hits),
                "selected": [
                    {"chunk_id": c.chunk_id, **{k: round(v, 4) for k, v in c.scores.items()}}
                    for c in selected
                ],
                "latency_ms": timings,
            },
        )

    def _fuse(self, vector_hits: list, keyword_hits: list[tuple[str, float]]) -> list[_Candidate]:  # type: ignore[type-arg]
        s = self.settings
        by_id: dict[str, _Candidate] = {}
        for rank, hit in enumerate(vector_hits, 1):
            c = by_id.setdefault(hit.chunk_id, _Candidate(hit.chunk_id))
            c.scores["vector"] = hit.similarity
            c.scores["vector_rank"] = rank
            c.fused += s.vector_weight / (s.rrf_k + rank)
        for rank, (chunk_id, score) in enumerate(keyword_hits, 1):
            c = by_id.setdefault(chunk_id, _Candidate(chunk_id))
            c.scores["bm25"] = score
            c.scores["bm25_rank"] = rank
            c.fused += s.keyword_weight / (s.rrf_k + rank)
        for c in by_id.values():
            c.scores["rrf"] = c.fused
        return sorted(by_id.values(), key=lambda c: -c.fused)

    @staticmethod
    def _boost(
        candidates: list[_Candidate], records: dict[str, ChunkRecord], query: RetrievalQuery
    ) -> list[_Candidate]:
        """Apply personal multipliers (per chunk id or doc id) recorded in the scores."""
        if not query.boosts:
            return candidates
        for c in candidates:
            factor = query.boosts.get(c.chunk_id, 1.0) * query.boosts.get(
                records[c.chunk_id].doc_id, 1.0
            )
            if factor != 1.0:
                c.scores["boost"] = factor
                c.fused *= factor
        return sorted(candidates, key=lambda c: -c.fused)

    def _diversify(
        self, candidates: list[_Candidate], records: dict[str, ChunkRecord], top_k: int
    ) -> list[_Candidate]:
        """MMR over term overlap, with a cap on chunks per document."""
        lam = self.settings.mmr_lambda
        pool = candidates[: max(top_k * 4, 20)]
        if not pool:
            return []
        top = pool[0].fused or 1.0
        for c in pool:
            c.terms = frozenset(tokenize(records[c.chunk_id].text))
        selected: list[_Candidate] = []
        per_doc: dict[str, int] = {}
        while pool and len(selected) < top_k:

            def mmr(c: _Candidate) -> float:
                overlap = max((_jaccard(c.terms, s.terms) for s in selected), default=0.0)
                return lam * (c.fused / top) - (1 - lam) * overlap

            best = max(pool, key=mmr)
            pool.remove(best)
            doc = records[best.chunk_id].doc_id
            if per_doc.get(doc, 0) >= self.settings.max_per_document:
                continue
            per_doc[doc] = per_doc.get(doc, 0) + 1
            best.scores["mmr"] = mmr(best)
            selected.append(best)
        return selected


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


def _to_chunk(c: _Candidate, r: ChunkRecord, doc: DocumentRecord | None) -> RetrievedChunk:
    return RetrievedChunk(
        chunk_id=r.chunk_id,
        doc_id=r.doc_id,
        text=r.text,
        source=doc.source if doc else "",
        title=doc.title if doc else "",
        language=doc.language if doc else "",
        keywords=r.keywords,
        category=doc.category if doc else "",
        score=c.fused,
        start_char=r.start_char,
        end_char=r.end_char,
        scores=dict(c.scores),
    )
