"""Factories that pick model implementations by ``mode``; provider packages load lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from chatbot.settings import EmbeddingSettings


def make_embed_model(settings: EmbeddingSettings) -> BaseEmbedding:
    """The embedding model the settings ask for (local, OpenAI-compatible, or fake)."""
    match settings.mode:
        case "local":
            from chatbot.embeddings import SentenceTransformerEmbedding, resolve_model_path

            return SentenceTransformerEmbedding(
                model_path=resolve_model_path(settings.model),
                dtype=settings.dtype,
                max_tokens=settings.max_tokens,
                embed_batch_size=settings.batch_size,
                model_name=settings.model,
            )
        case "fake":
            from chatbot.fakes import HashEmbedding

            return HashEmbedding(dim=settings.dim, model_name="hash", embed_batch_size=256)
        case "openai":
            raise NotImplementedError("OpenAI-compatible embeddings arrive with the scale-out work")
