"""Plain Okapi BM25 over fixed-size character chunks (the reference baseline of the dev sets).

Chunks are 800 characters for English documents and 300 for Chinese ones, without overlap.
Tokens: lower-cased letter/digit words for English, character unigrams plus bigrams for runs
of CJK characters. No stemming, no stop words.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+")

EN_CHUNK_CHARS = 800
ZH_CHUNK_CHARS = 300


def bm25_tokens(text: str) -> list[str]:
    """English words and Chinese character unigrams + bigrams."""
    lowered = text.lower()
    tokens: list[str] = []
    pos = 0
    for match in _CJK_RUN.finditer(lowered):
        tokens.extend(_WORD.findall(lowered[pos : match.start()]))
        run = match.group()
        tokens.extend(run)
        tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
        pos = match.end()
    tokens.extend(_WORD.findall(lowered[pos:]))
    return tokens


def char_chunks(text: str, size: int) -> list[tuple[int, int]]:
    """(start, end) windows of ``size`` characters covering ``text``."""
    return [(i, min(i + size, len(text))) for i in range(0, len(text), size)]


@dataclass
class BM25Index:
    """An inverted index with precomputed per-posting BM25 weights."""

    k1: float = 1.5
    b: float = 0.75

    def __post_init__(self) -> None:
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.size = 0

    def fit(self, documents: Sequence[Sequence[str]]) -> BM25Index:
        self.size = len(documents)
        lengths = np.array([len(d) for d in documents], dtype=np.float64)
        avg = float(lengths.mean()) if self.size else 0.0
        raw: dict[str, tuple[list[int], list[int]]] = {}
        for i, tokens in enumerate(documents):
            for term, count in Counter(tokens).items():
                ids, counts = raw.setdefault(term, ([], []))
                ids.append(i)
                counts.append(count)
        for term, (ids, counts) in raw.items():
            idx = np.array(ids, dtype=np.int64)
            tf = np.array(counts, dtype=np.float64)
            idf = math.log(1 + (self.size - len(ids) + 0.5) / (len(ids) + 0.5))
            norm = tf + self.k1 * (1 - self.b + self.b * lengths[idx] / max(avg, 1e-9))
            self._postings[term] = (idx, idf * tf * (self.k1 + 1) / norm)
        return self

    def search(self, query: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Top-k (document index, score) with a positive score, best first."""
        scores = np.zeros(self.size, dtype=np.float64)
        for term, count in Counter(query).items():
            posting = self._postings.get(term)
            if posting is not None:
                scores[posting[0]] += count * posting[1]
        if not self.size:
            return []
        top = np.argpartition(-scores, min(k, self.size) - 1)[: min(k, self.size)]
        ranked = sorted(top.tolist(), key=lambda i: (-scores[i], i))
        return [(i, float(scores[i])) for i in ranked if scores[i] > 0]
