"""Composition root: the only place that builds concrete components from the settings."""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from chatbot.settings import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from chatbot.db.repos import Repository
    from chatbot.index.retriever import HybridRetriever
    from chatbot.index.storage import ChunkStore
    from chatbot.personalisation.service import ProfileService
    from chatbot.pipeline.chain import Pipeline
    from chatbot.privacy import PrivacyService
    from chatbot.services import ChatService


def _offline_environment() -> None:
    # Nothing may reach a model hub: fail fast instead of retrying for a minute.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class DataDirError(RuntimeError):
    """The data directory cannot be written (read-only mount, permissions, full disk)."""


def check_data_dir(path: Path) -> None:
    """Fail fast with a clear message when the data directory is not writable.

    A WAL database on a read-only mount cannot even be opened for reading (security guide
    4.6), so without this check the first query fails with "unable to open database file".
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        why = {
            errno.EROFS: "is on a read-only file system",
            errno.EACCES: "is not writable by this user",
            errno.EPERM: "is not writable by this user",
            errno.ENOSPC: "is on a full disk",
        }.get(exc.errno or 0, f"cannot be written ({exc.strerror or exc})")
        hint = "remount it read-write" if exc.errno == errno.EROFS else "fix it"
        raise DataDirError(
            f"the data directory {path} {why} (read-only storage is not supported: "
            f"{hint}, or point CHATBOT_DATA_DIR elsewhere); nothing was changed"
        ) from exc


@dataclass
class Container:
    """Everything the entry points need, built lazily and once."""

    settings: Settings
    _closed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        _offline_environment()
        check_data_dir(self.settings.data_dir)

    @cached_property
    def embed_model(self) -> BaseEmbedding:
        from chatbot.providers import make_embed_model

        return make_embed_model(self.settings.embedding)

    @cached_property
    def store(self) -> ChunkStore:
        from chatbot.index.storage import ChunkStore

        # a new Milvus collection gets the embedding model's vector size
        store = self.settings.store.model_copy(update={"dim": self.settings.embedding.dim})
        return ChunkStore(self.settings.index_dir, store)

    @cached_property
    def chat_model(self) -> BaseChatModel:
        from chatbot.providers import make_chat_model

        return make_chat_model(self.settings.llm, self.settings.models_dir)

    @cached_property
    def retriever(self) -> HybridRetriever:
        from chatbot.index.retriever import HybridRetriever

        return HybridRetriever(self.store, self.embed_model, self.settings.retrieval)

    @cached_property
    def repo(self) -> Repository:
        from chatbot.db.engine import init_db, make_engine
        from chatbot.db.repos import Repository

        engine = make_engine(self.settings.database_url)
        init_db(engine)
        return Repository(engine)

    @cached_property
    def pipeline(self) -> Pipeline:
        from chatbot.pipeline.chain import build_pipeline

        llm = self.settings.llm
        name = f"{llm.mode}:{llm.model}"
        return build_pipeline(self.chat_model, self.retriever, self.settings.prompts_dir, name)

    @cached_property
    def profiles(self) -> ProfileService:
        from chatbot.db.profiles import ProfileRepository
        from chatbot.personalisation.service import ProfileService

        settings = self.settings.personalisation
        repo = self.repo
        store = ProfileRepository(repo.engine, half_life_days=settings.half_life_days)

        def enabled(user_id: str) -> bool:
            user = repo.get_user(user_id=user_id)
            return bool(user and user.personalisation_enabled)

        return ProfileService(store, self.store, settings, user_enabled=enabled)

    @cached_property
    def chat(self) -> ChatService:
        from chatbot.services import ChatService

        return ChatService(
            pipeline=self.pipeline,
            conversations=self.repo,
            settings=self.settings.chat,
            top_k=self.settings.retrieval.top_k,
            profiles=self.profiles,
            catalogue=self.store,
        )

    @cached_property
    def privacy(self) -> PrivacyService:
        from chatbot.privacy import DELETION_LOG, PrivacyService

        data = self.settings.data_dir
        return PrivacyService(
            self.repo, self.profiles.store, self.store, data / "uploads", data / DELETION_LOG
        )

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
