"""Factories that pick model implementations by ``mode``; provider packages load lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatbot.hardware import resolve_dtype

if TYPE_CHECKING:
    from pathlib import Path

    from langchain_core.language_models import BaseChatModel
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from chatbot.settings import EmbeddingSettings, LLMSettings


def make_chat_model(settings: LLMSettings, models_dir: Path) -> BaseChatModel:
    """The chat model the settings ask for (local transformers, OpenAI-compatible, or fake)."""
    match settings.mode:
        case "local":
            from chatbot.models.local_chat import LocalChatModel
            from chatbot.models.local_weights import ensure_local_model

            folder = ensure_local_model(settings.model, models_dir)
            return LocalChatModel(
                model_dir=str(folder),
                dtype=resolve_dtype(settings.dtype),
                max_new_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                threads=settings.threads,
            )
        case "fake":
            from chatbot.fakes import ExtractiveFakeChatModel

            return ExtractiveFakeChatModel()
        case "openai":
            from chatbot.models.openai_compat import make_openai_chat

            return make_openai_chat(settings)


def make_embed_model(settings: EmbeddingSettings) -> BaseEmbedding:
    """The embedding model the settings ask for (local, OpenAI-compatible, or fake)."""
    match settings.mode:
        case "local":
            from chatbot.embeddings import SentenceTransformerEmbedding, resolve_model_path

            return SentenceTransformerEmbedding(
                model_path=resolve_model_path(settings.model),
                dtype=resolve_dtype(settings.dtype),
                max_tokens=settings.max_tokens,
                embed_batch_size=settings.batch_size,
                model_name=settings.model,
            )
        case "fake":
            from chatbot.fakes import HashEmbedding

            return HashEmbedding(dim=settings.dim, model_name="hash", embed_batch_size=256)
        case "openai":
            from chatbot.models.openai_compat import make_openai_embedding

            return make_openai_embedding(settings)
