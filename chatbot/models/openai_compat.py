"""Chat and embedding models served by any OpenAI-compatible endpoint (vLLM, llama.cpp, Ollama).

Chat goes through LangChain's standard ``ChatOpenAI`` (langchain-openai, which resolves with
the pinned langchain-core 1.7.2); embeddings through a small LlamaIndex ``BaseEmbedding`` over
``POST /v1/embeddings`` with httpx. Both use the configured timeout and retries, and turn
"server down / too slow / wrong model / bad key" into a :class:`ModelServerError` whose message
names the URL and the settings to check, instead of a transport traceback.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import openai
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import Field, PrivateAttr

from chatbot.models.server_errors import ModelServerError, unreachable
from chatbot.settings import EmbeddingSettings, LLMSettings

_LLM_ENV = "CHATBOT_LLM__"
_EMBED_ENV = "CHATBOT_EMBEDDING__"


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else "not-needed"


def _require_url(url: str | None, env_prefix: str) -> str:
    if not url:
        raise ModelServerError(
            f"mode is openai but no server is configured: set {env_prefix}BASE_URL, "
            "e.g. http://127.0.0.1:8000/v1"
        )
    return url.rstrip("/")


def _translate(exc: Exception, url: str, model: str) -> Exception:
    """A ModelServerError for the OpenAI client's errors; other exceptions unchanged."""
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return unreachable("LLM", url, type(exc).__name__, _LLM_ENV)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ModelServerError(f"the LLM server at {url} refused the key: check {_LLM_ENV}API_KEY")
    if isinstance(exc, openai.NotFoundError):
        return ModelServerError(
            f"the LLM server at {url} does not serve model {model!r}: check {_LLM_ENV}MODEL "
            f"against {url}/models"
        )
    if isinstance(exc, openai.APIStatusError):
        return ModelServerError(f"the LLM server at {url} answered HTTP {exc.status_code}: {exc}")
    return exc


class OpenAICompatibleChat(ChatOpenAI):
    """``ChatOpenAI`` whose transport failures become an actionable ``ModelServerError``."""

    def _describe(self) -> tuple[str, str]:
        return str(self.openai_api_base or ""), str(self.model_name)

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return super()._generate(*args, **kwargs)
        except Exception as exc:
            raise _translate(exc, *self._describe()) from exc

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        try:
            yield from super()._stream(*args, **kwargs)
        except Exception as exc:
            raise _translate(exc, *self._describe()) from exc

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return await super()._agenerate(*args, **kwargs)
        except Exception as exc:
            raise _translate(exc, *self._describe()) from exc

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        try:
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
        except Exception as exc:
            raise _translate(exc, *self._describe()) from exc


def make_openai_chat(settings: LLMSettings) -> OpenAICompatibleChat:
    """The chat model for ``llm.mode: openai``."""
    url = _require_url(settings.base_url, _LLM_ENV)
    return OpenAICompatibleChat(
        model=settings.model,
        base_url=url,
        api_key=_secret(settings.api_key),
        temperature=settings.temperature,
        max_tokens=settings.max_new_tokens,
        timeout=settings.timeout_s,
        max_retries=settings.max_retries,
        stream_usage=False,
    )


class OpenAICompatibleEmbedding(BaseEmbedding):
    """Embeddings from ``POST {base_url}/embeddings``; vectors are L2-normalised."""

    base_url: str = Field(description="Base URL, e.g. http://127.0.0.1:8080/v1.")
    api_key: str = Field(default="not-needed", description="Bearer token.")
    dim: int = Field(description="Expected vector size (must match store and index).")
    timeout_s: float = Field(default=60.0, description="Request timeout in seconds.")
    max_retries: int = Field(default=2, description="Retries on connection errors and 5xx/429.")
    _client: httpx.Client = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._client = httpx.Client(
            timeout=self.timeout_s, headers={"Authorization": f"Bearer {self.api_key}"}
        )

    @classmethod
    def class_name(cls) -> str:
        return "OpenAICompatibleEmbedding"

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Approximate token counts (the server's tokenizer is not available here)."""
        return [_approx_tokens(t) for t in texts]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One request per call; raises ModelServerError with the URL when it fails."""
        if not texts:
            return []
        url = f"{self.base_url}/embeddings"
        body = {"model": self.model_name, "input": list(texts)}
        response = self._post(url, body)
        data = sorted(response.json()["data"], key=lambda d: d["index"])
        vectors = [_normalise(d["embedding"]) for d in data]
        if len(vectors) != len(texts):
            raise ModelServerError(f"{url} returned {len(vectors)} vectors for {len(texts)} texts")
        if vectors and len(vectors[0]) != self.dim:
            raise ModelServerError(
                f"the embedding server at {self.base_url} returns {len(vectors[0])}-dimensional "
                f"vectors but {_EMBED_ENV}DIM is {self.dim}: set {_EMBED_ENV}DIM="
                f"{len(vectors[0])} (and re-ingest into a new collection/index)"
            )
        return vectors

    def _post(self, url: str, body: dict[str, Any]) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self._client.post(url, json=body)
            except httpx.TransportError as exc:
                if last:
                    raise unreachable(
                        "embedding", self.base_url, type(exc).__name__, _EMBED_ENV
                    ) from exc
            else:
                if response.status_code < 400:
                    return response
                retryable = response.status_code == 429 or response.status_code >= 500
                if not retryable or last:
                    raise ModelServerError(
                        f"the embedding server at {self.base_url} answered HTTP "
                        f"{response.status_code} for model {self.model_name!r}: "
                        f"{response.text[:300]} (check {_EMBED_ENV}MODEL and {_EMBED_ENV}API_KEY)"
                    )
            time.sleep(min(8.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.embed([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.embed(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def make_openai_embedding(settings: EmbeddingSettings) -> OpenAICompatibleEmbedding:
    """The embedding model for ``embedding.mode: openai``."""
    return OpenAICompatibleEmbedding(
        base_url=_require_url(settings.base_url, _EMBED_ENV),
        api_key=_secret(settings.api_key),
        model_name=settings.model,
        dim=settings.dim,
        timeout_s=settings.timeout_s,
        max_retries=settings.max_retries,
        embed_batch_size=settings.batch_size,
    )


def _normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [float(v) / norm for v in vector]


def _approx_tokens(text: str) -> int:
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    return cjk + int(len(text.split()) * 1.3) + 1
