"""In-package fakes selected by ``mode: fake``: a hashing embedding and a scripted chat model.

They back the unit tests and an offline demo, and go through the same factory as the real
models (``chatbot.providers``).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
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


class ExtractiveFakeChatModel(BaseChatModel):
    """A deterministic stand-in for the LLM, streamed word by word.

    For the answer prompt it quotes the first sentence of source [1] and cites it; with no
    sources it declines; for the rewrite prompt it returns the last message unchanged. Tests
    that need exact replies use LangChain's ``GenericFakeChatModel`` through the same factory.
    """

    @property
    def _llm_type(self) -> str:
        return "fake-extractive"

    def _reply(self, messages: list[BaseMessage]) -> str:
        prompt = str(messages[-1].content) if messages else ""
        if "Last message:" in prompt:
            return prompt.split("Last message:", 1)[1].split("Standalone question:")[0].strip()
        match = re.search(r"^\[1\][^\n]*\n?(.*?)(?:\n\[2\]|\n\nQuestion:)", prompt, re.S | re.M)
        if not match or not match.group(1).strip():
            return "I don't know."
        first = re.split(r"(?<=[.!?。！？])\s*", match.group(1).strip(), maxsplit=1)[0]
        return f"{first.strip()} [1]"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self._reply(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for piece in re.findall(r"\S+\s*|\s+", self._reply(messages)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
