"""Hybrid retrieval: BM25 + vectors, reciprocal-rank fusion, personal boosts, MMR diversity.

Ownership is enforced inside both queries (the ACL filter), never after the fact. Each stage
records what it did in the result's trace so a turn can be replayed and explained.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from llama_index.core.base.embeddings.base import BaseEmbedding

from chatbot.domain import RetrievedChunk
from chatbot.index.catalog import ChunkRecord, DocumentRecord
from chatbot.index.storage import ChunkStore
from chatbot.ports import RetrievalQuery, RetrievalResult
from chatbot.settings import RetrievalSettings
from chatbot.spelling import respell, respellable
from chatbot.text import normalise_term, tokenize

ENGLISH_ONLY_EMBEDDINGS = frozenset({"all-MiniLM-L6-v2"})
MMR_POOL = 40
PREFIX_STABLE_K = 10
# a question of at most this many search terms says too little to be clear on its own
SHORT_QUESTION_TERMS = 3
# the expanded search can raise a passage's relevance (for the boosts' gate) by at most this
EXPANSION_RELEVANCE_MARGIN = 0.25


@dataclass
class _Candidate:
    chunk_id: str
    scores: dict[str, float] = field(default_factory=dict)
    fused: float = 0.0
    terms: frozenset[str] = frozenset()
    notes: dict[str, list[str]] = field(default_factory=dict)
    # neighbouring chunks of the same document folded into this one (see _diversify)
    merged: list[_Candidate] = field(default_factory=list)


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
        phrases = phrase_terms(terms) if self.settings.phrases else []
        keyword_hits = self.store.keyword_search([*terms, *phrases], query.acls, k)
        timings["search_ms"] = _ms(t)

        candidates = self._fuse(vector_hits, keyword_hits, query.language)
        records = self.store.chunks([c.chunk_id for c in candidates])
        words: dict[str, list[str]] = {}  # chunk id -> its search terms, tokenised once
        respelt: dict[str, str] = {}
        if any(respellable(term) for term in terms):  # e.g. never for a Chinese question
            vocabulary = Counter(w for r in records.values() for w in _words(words, r))
            respelt = respell(terms, vocabulary)
        if respelt:
            t = time.perf_counter()
            searched = [*terms, *respelt.values(), *phrases]  # the store keeps the first 64
            keyword_hits = self.store.keyword_search(searched, query.acls, k)
            candidates = self._fuse(vector_hits, keyword_hits, query.language)
            new = [c.chunk_id for c in candidates if c.chunk_id not in records]
            records.update(self.store.chunks(new) if new else {})
            timings["respell_ms"] = _ms(t)
        candidates = [c for c in candidates if c.chunk_id in records]  # drop orphans
        docs = self._documents({r.doc_id for r in records.values()}, {})
        t = time.perf_counter()
        candidates, expansion = self._expand(candidates, records, docs, query)
        if expansion:
            timings["expansion_ms"] = _ms(t)
        boosted = self._boost(candidates, records, docs, query)
        selected = self._diversify(boosted, records, query.top_k, words)
        chunks = tuple(_to_chunk(c, records, docs[records[c.chunk_id].doc_id]) for c in selected)
        timings["total_ms"] = _ms(started)
        return RetrievalResult(
            chunks=chunks,
            best_vector_similarity=max((h.similarity for h in vector_hits), default=0.0),
            keyword_matches=len(keyword_hits),
            trace={
                "query": query.text,
                "vector_hits": len(vector_hits),
                "keyword_hits": len(keyword_hits),
                "selected": [_trace_entry(c) for c in selected],
                **({"expansion": expansion} if expansion else {}),
                **({"respelt": respelt} if respelt else {}),
                "latency_ms": timings,
            },
        )

    def _fuse(
        self,
        vector_hits: list,  # type: ignore[type-arg]
        keyword_hits: list[tuple[str, float]],
        language: str = "en",
    ) -> list[_Candidate]:
        s = self.settings
        vector_weight = s.vector_weight * self._vector_trust(language)
        by_id: dict[str, _Candidate] = {}
        for rank, hit in enumerate(vector_hits, 1):
            c = by_id.setdefault(hit.chunk_id, _Candidate(hit.chunk_id))
            c.scores["vector"] = hit.similarity
            c.scores["vector_rank"] = rank
            c.fused += vector_weight / (s.rrf_k + rank)
        for rank, (chunk_id, score) in enumerate(keyword_hits, 1):
            c = by_id.setdefault(chunk_id, _Candidate(chunk_id))
            c.scores["bm25"] = score
            c.scores["bm25_rank"] = rank
            c.fused += s.keyword_weight / (s.rrf_k + rank)
        for c in by_id.values():
            c.scores["rrf"] = c.fused
        return sorted(by_id.values(), key=lambda c: -c.fused)

    def _vector_trust(self, language: str) -> float:
        """0 when the embedding model cannot read the query's language, else 1.

        An English-only model ranks Chinese queries close to chance (CMRC 2018: doc hit@5 0.35
        from vectors alone vs 0.99 from BM25), and fusing that noise in halves hit@1.
        """
        name = Path(str(getattr(self.embed_model, "model_name", ""))).name
        if name in ENGLISH_ONLY_EMBEDDINGS and language not in ("en", "und", ""):
            return 0.0
        return 1.0

    def _documents(
        self, doc_ids: set[str], known: dict[str, DocumentRecord | None]
    ) -> dict[str, DocumentRecord | None]:
        """The documents not in ``known`` yet, in one catalog query; ``None`` for vanished ones."""
        missing = [d for d in doc_ids if d not in known]
        found = self.store.documents_by_id(missing) if missing else {}
        return {d: found.get(d) for d in missing}

    def _expand(
        self,
        candidates: list[_Candidate],
        records: dict[str, ChunkRecord],
        docs: dict[str, DocumentRecord | None],
        query: RetrievalQuery,
    ) -> tuple[list[_Candidate], dict[str, object] | None]:
        """Personalised query expansion: search an ambiguous question again, with interests.

        The user's interests (in the question's language, those the question does not already
        contain) are appended to the question, and what that search finds is fused into the
        candidates at a bounded weight: re-ranking a fixed candidate list cannot surface a
        passage the question alone does not retrieve ("What does leverage mean?" for a
        cyclist); the expanded search can. It runs only when the question is ambiguous (the
        signal the boosts use) or short (at most ``SHORT_QUESTION_TERMS`` search terms).
        ``records`` and ``docs`` are completed in place for the candidates it adds.
        """
        personal = query.personal
        if personal is None or personal.expansion_weight <= 0 or not candidates:
            return candidates, None
        language = query.language if query.language in personal.expansion else "en"
        with_vectors = self._vector_trust(query.language) > 0
        relevance = {c.chunk_id: _relevance(c, candidates, with_vectors) for c in candidates}
        best = max(relevance.values()) or 1.0
        ambiguity = _ambiguity(candidates, relevance, records, docs, best)
        asked = set(tokenize(query.text))
        short = len(asked) <= SHORT_QUESTION_TERMS
        if ambiguity <= personal.gate and not short:
            return candidates, None
        terms: list[tuple[str, str]] = []
        for term, because in personal.expansion.get(language, ()):
            words = set(tokenize(term))
            if words and not words <= asked:
                terms.append((term, because))
                asked |= words
            if len(terms) >= personal.expansion_terms:
                break
        if not terms:
            return candidates, None
        text = " ".join([query.text, *(t for t, _ in terms)])
        k = self.settings.candidates
        vector_hits = (
            self.store.vector_search(self.embed_model.get_query_embedding(text), query.acls, k)
            if with_vectors
            else []
        )
        keyword_hits = self.store.keyword_search(tokenize(text), query.acls, k)
        by_id = {c.chunk_id: c for c in candidates}
        added = []
        for c in self._fuse(vector_hits, keyword_hits, query.language):
            if c.chunk_id not in by_id:
                by_id[c.chunk_id] = _Candidate(c.chunk_id)
                added.append(c.chunk_id)
            target = by_id[c.chunk_id]
            gain = personal.expansion_weight * c.fused
            target.fused += gain
            target.scores["expansion_rrf"] = round(gain, 6)
            for name in ("vector", "bm25"):
                if name in c.scores:
                    target.scores[f"expansion_{name}"] = c.scores[name]
        records.update(self.store.chunks(added))
        docs.update(self._documents({r.doc_id for r in records.values()}, docs))
        pool = [c for c in by_id.values() if c.chunk_id in records]
        expanded = [c for c in pool if "expansion_rrf" in c.scores]
        question = set(tokenize(query.text))
        for c in pool:
            c.scores["rrf"] = c.fused
        for c in expanded:
            # how relevant the passage is to the personalised question, for the boosts' gate;
            # only for passages that share a term with the question itself, so the interests
            # alone (a finance passage for any question) never count as relevance
            if question & set(tokenize(records[c.chunk_id].text)):
                personal_relevance = min(
                    _relevance(c, expanded, with_vectors, prefix="expansion_"),
                    relevance.get(c.chunk_id, 0.0) / best + EXPANSION_RELEVANCE_MARGIN,
                )
                c.scores["expansion_relevance"] = round(personal_relevance, 4)
        trace = {
            "terms": [t for t, _ in terms],
            "because": dict(terms),
            "ambiguity": round(ambiguity, 4),
            "short": short,
            "weight": personal.expansion_weight,
            "added": [a for a in added if a in records],
        }
        return sorted(pool, key=lambda c: -c.fused), trace

    def _boost(
        self,
        candidates: list[_Candidate],
        records: dict[str, ChunkRecord],
        docs: dict[str, DocumentRecord | None],
        query: RetrievalQuery,
    ) -> list[_Candidate]:
        """Re-rank by the user's interests and feedback; every adjustment lands in the scores.

        A boost acts in proportion to two things: how close the candidate's own relevance is
        to the best one (nothing below ``gate`` x best) and how ambiguous the question is — how
        strongly the best candidate of a *second* topic competes with the best of the leading
        topic. A question that one topic answers clearly keeps its ranking whatever the user
        likes; a question several topics answer equally well resolves toward the user's.
        """
        personal = query.personal
        if personal is None or not candidates:
            return candidates
        # vector scores count only where the embedding model can read the question's language
        with_vectors = self._vector_trust(query.language) > 0
        relevance = {
            # an expanded search (see _expand) also counts: relevance to the personal question
            c.chunk_id: max(
                _relevance(c, candidates, with_vectors), c.scores.get("expansion_relevance", 0.0)
            )
            for c in candidates
        }
        best = max(relevance.values()) or 1.0
        ambiguity = _ambiguity(candidates, relevance, records, docs, best)
        # the runner-up topic must itself clear the gate for the question to count as ambiguous
        spread = _ramp(ambiguity, personal.gate)
        for c in candidates:
            record = records[c.chunk_id]
            # fully for candidates as relevant as the best one, not at all below the gate
            closeness = min(1.0, _ramp(relevance[c.chunk_id] / best, personal.gate))
            strength = spread * math.sqrt(closeness)
            factor = 1.0
            feedback = personal.doc_factors.get(record.doc_id, 1.0)
            if feedback != 1.0 and strength > 0:
                factor = feedback**strength  # ratings move contested candidates, not others
                c.scores["feedback_factor"] = round(factor, 4)
            if personal.interests and strength > 0:
                match, terms = _interest_match(personal.interests, record, docs.get(record.doc_id))
                if match > 0:
                    c.scores["interest_match"] = round(match, 4)
                    c.notes["interest_terms"] = terms
                    factor *= 1 + personal.alpha * match * strength
            if factor != 1.0:
                c.scores["ambiguity"] = round(ambiguity, 4)
                c.scores["boost"] = round(factor, 4)
                c.fused *= factor
        return sorted(candidates, key=lambda c: -c.fused)

    def _diversify(
        self,
        candidates: list[_Candidate],
        records: dict[str, ChunkRecord],
        top_k: int,
        words: dict[str, list[str]] | None = None,
    ) -> list[_Candidate]:
        """MMR over term overlap, with a cap on chunks per document.

        A pick next to an already selected chunk of the same document (chunk index one
        before or after) is folded into it, up to ``merge_neighbours`` chunks per passage,
        instead of taking a slot: two neighbouring chunks are one longer passage, often the
        one that holds a whole answer cut at a chunk border, and the slot goes to the next
        candidate (often another document).
        """
        lam = self.settings.mmr_lambda
        words = {} if words is None else words
        span = self.settings.merge_neighbours
        # A pool and a number of passages that do not depend on top_k for top_k <= 10 keep
        # the greedy selection prefix-stable: the top 5 of a top-10 request are the top 5 of a
        # top-5 request, passage texts included (a later pick may fold into an earlier one).
        wanted = max(top_k, PREFIX_STABLE_K)
        pool = candidates[: max(wanted * 4, MMR_POOL)]
        if not pool:
            return []
        top = pool[0].fused or 1.0
        for c in pool:
            c.terms = frozenset(_words(words, records[c.chunk_id]))
            c.merged = []
        selected: list[_Candidate] = []
        per_doc: dict[str, int] = {}
        while pool and len(selected) < wanted:

            def mmr(c: _Candidate) -> float:
                overlap = max(
                    (_jaccard(c.terms, m.terms) for s in selected for m in (s, *s.merged)),
                    default=0.0,
                )
                return lam * (c.fused / top) - (1 - lam) * overlap

            best = max(pool, key=mmr)
            pool.remove(best)
            host = _neighbour_of(best, selected, records, span)
            if host is not None:
                host.merged.append(best)
                host.notes["merged"] = [m.chunk_id for m in host.merged]
                continue
            doc = records[best.chunk_id].doc_id
            if per_doc.get(doc, 0) >= self.settings.max_per_document:
                continue
            per_doc[doc] = per_doc.get(doc, 0) + 1
            best.scores["mmr"] = mmr(best)
            selected.append(best)
        return selected[:top_k]


def phrase_terms(terms: list[str]) -> list[str]:
    """Each two neighbouring English search terms as one two-word phrase term.

    Stop words are already gone from both the question's and the chunks' terms, so "male to
    female ratio" gives "male femal" and "femal ratio", which match "ratio of male to female"
    as well. BM25 scores a phrase like a rare word: passages that keep the question's words
    together rank above passages that merely contain them. Chinese terms are left alone (their
    segmentation already groups characters into words; CMRC did not gain from pairs).
    """
    return [f"{a} {b}" for a, b in itertools.pairwise(terms) if a.isascii() and b.isascii()]


def _neighbour_of(
    c: _Candidate, selected: list[_Candidate], records: dict[str, ChunkRecord], span: int
) -> _Candidate | None:
    """The selected passage ``c`` directly extends, if the result stays within ``span`` chunks."""
    if span <= 1:
        return None
    record = records[c.chunk_id]
    for s in selected:
        members = [records[m.chunk_id] for m in (s, *s.merged)]
        if members[0].doc_id != record.doc_id:
            continue
        low = min(m.chunk_index for m in members)
        high = max(m.chunk_index for m in members)
        if low - 1 <= record.chunk_index <= high + 1:
            if max(high, record.chunk_index) - min(low, record.chunk_index) < span:
                return s
            return None
    return None


def _trace_entry(c: _Candidate) -> dict[str, object]:
    return {"chunk_id": c.chunk_id, **{k: round(v, 4) for k, v in c.scores.items()}, **c.notes}


def _relevance(
    c: _Candidate, pool: list[_Candidate], with_vectors: bool = True, prefix: str = ""
) -> float:
    """Score-based relevance in [0, 1]: vector and BM25 scores relative to the pool's best.

    ``prefix="expansion_"`` reads the scores of the personalised (expanded) search instead.
    """
    vec, kw = f"{prefix}vector", f"{prefix}bm25"
    if not with_vectors:
        best_kw = max((p.scores.get(kw, 0.0) for p in pool), default=0.0) or 1.0
        return c.scores.get(kw, 0.0) / best_kw
    best_vec = max((p.scores.get(vec, 0.0) for p in pool), default=0.0) or 1.0
    best_kw = max((p.scores.get(kw, 0.0) for p in pool), default=0.0) or 1.0
    return 0.5 * max(c.scores.get(vec, 0.0), 0.0) / best_vec + 0.5 * c.scores.get(kw, 0.0) / best_kw


def _ramp(value: float, gate: float) -> float:
    """0 at or below ``gate``, rising linearly to 1 at 1."""
    return max(0.0, (value - gate) / max(1e-9, 1 - gate))


def _ambiguity(
    candidates: list[_Candidate],
    relevance: dict[str, float],
    records: dict[str, ChunkRecord],
    docs: dict[str, DocumentRecord | None],
    best: float,
) -> float:
    """How ambiguous the question is (0..1): the best relevance of the runner-up topic.

    A topic is a document's category, else its first topic, else the document itself.
    """
    per_topic: dict[str, float] = {}
    for c in candidates:
        record = records[c.chunk_id]
        doc = docs.get(record.doc_id)
        topic = (doc.category or next(iter(doc.topics), "")) if doc else ""
        key = normalise_term(topic) or record.doc_id
        per_topic[key] = max(per_topic.get(key, 0.0), relevance[c.chunk_id] / best)
    ranked = sorted(per_topic.values(), reverse=True)
    return ranked[1] if len(ranked) > 1 else 0.0


def _interest_match(
    interests: dict[str, float], record: ChunkRecord, doc: DocumentRecord | None
) -> tuple[float, list[str]]:
    """How strongly a chunk's category, topics and keywords match the interests (0..1)."""
    features = {normalise_term(k) for k in record.keywords}
    if doc is not None:
        features |= {normalise_term(t) for t in (*doc.topics, doc.category) if t}
    matched = sorted((t for t in features if t in interests), key=lambda t: -interests[t])
    if not matched:
        return 0.0, []
    score = 1 - math.prod(1 - interests[t] for t in matched[:5])
    return min(1.0, score), matched[:5]


def _words(cache: dict[str, list[str]], record: ChunkRecord) -> list[str]:
    """The search terms of a chunk, tokenised at most once per retrieval."""
    if record.chunk_id not in cache:
        cache[record.chunk_id] = tokenize(record.text)
    return cache[record.chunk_id]


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


def _to_chunk(
    c: _Candidate, records: dict[str, ChunkRecord], doc: DocumentRecord | None
) -> RetrievedChunk:
    """The passage of a selected candidate: its chunk, joined with any merged neighbours."""
    r = records[c.chunk_id]
    parts = sorted((records[m.chunk_id] for m in (c, *c.merged)), key=lambda p: p.chunk_index)
    text = parts[0].text
    for prev, part in itertools.pairwise(parts):
        if prev.end_char > part.start_char:  # overlapping chunks: skip the repeated text
            text += part.text[prev.end_char - part.start_char :]
        else:
            text += "\n" + part.text
    return RetrievedChunk(
        chunk_id=r.chunk_id,
        doc_id=r.doc_id,
        text=text,
        source=doc.source if doc else "",
        title=doc.title if doc else "",
        language=doc.language if doc else "",
        keywords=tuple(dict.fromkeys(k for p in parts for k in p.keywords)),
        category=doc.category if doc else "",
        score=c.fused,
        start_char=parts[0].start_char,
        end_char=parts[-1].end_char,
        scores=dict(c.scores),
    )
