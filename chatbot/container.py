"""Composition root: the only place that builds concrete components from the settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from chatbot.settings import Settings

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from chatbot.index.storage import ChunkStore


def _offline_environment() -> None:
    # Nothing may reach a model hub: fail fast instead of retrying for a minute.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@dataclass
class Container:
    """Everything the entry points need, built lazily and once."""

    settings: Settings
    _closed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        _offline_environment()

    @cached_property
    def embed_model(self) -> BaseEmbedding:
        from chatbot.providers import make_embed_model

        return make_embed_model(self.settings.embedding)

    @cached_property
    def store(self) -> ChunkStore:
        from chatbot.index.storage import ChunkStore

        return ChunkStore(self.settings.index_dir, self.settings.store)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
