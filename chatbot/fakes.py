"""In-package fakes selected by ``mode: fake``: a hashing embedding and a scripted chat model.

They back the unit tests and an offline demo, and go through the same factory as the real
models (``chatbot.providers``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import Field

from chatbot.text import tokenize


class HashEmbedding(BaseEmbedding):
    """Hashed bag of stemmed words and character trigrams, L2-normalised.

    Texts that share words are similar, so ranking tests mean something (unlike a constant
    mock embedding).
    """

    dim: int = Field(default=384, description="Vector dimension.")

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    def embed(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for feature, weight in _features(text):
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            idx = int.from_bytes(digest[:4], "little") % self.dim
            sign = 1.0 if digest[4] & 1 else -1.0
            vec[idx] += sign * weight
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Approximate wordpiece counts (one per word or CJK character)."""
        return [_approx_tokens(t) for t in texts]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.embed(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embed(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [self.embed(t) for t in texts]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self.embed(query)


def _features(text: str) -> Iterable[tuple[str, float]]:
    for term in tokenize(text):
        yield "w:" + term, 1.0
        if len(term) > 4:
            for i in range(len(term) - 2):
                yield "c:" + term[i : i + 3], 0.3


def _approx_tokens(text: str) -> int:
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    return cjk + int(len(text.split()) * 1.3) + 1
