"""Baselines run beside our system, on the same documents and with the same LLM.

* ``llamaindex-default``: ``VectorStoreIndex.from_documents`` with LlamaIndex's defaults
  (SimpleDirectoryReader, SentenceSplitter 1024/200), the same embedding model, top 2 chunks
  for answers, and LlamaIndex's default text-QA prompt.
* ``bm25``: plain BM25 over fixed character chunks (see ``bm25.py``) and our answer prompt.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatbot.evaluation.bm25 import (
    EN_CHUNK_CHARS,
    ZH_CHUNK_CHARS,
    BM25Index,
    bm25_tokens,
    char_chunks,
)
from chatbot.evaluation.datasets import QAItem
from chatbot.evaluation.metrics import Passage
from chatbot.evaluation.systems import AnswerOutput, RetrievalOutput, Shared, timed_stream
from chatbot.pipeline.citations import extract_citations, is_refusal

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from chatbot.domain import RetrievedChunk

LLAMAINDEX = "llamaindex-default"
BM25 = "bm25"
BASELINES = (LLAMAINDEX, BM25)
LLAMAINDEX_ANSWER_TOP_K = 2  # as_query_engine()'s default similarity_top_k


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


class LlamaIndexDefault:
    name = LLAMAINDEX

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.index: Any = None

    def _embed_model(self) -> BaseEmbedding:
        """HuggingFaceEmbedding on the local MiniLM when we run it; else our (fake) model."""
        from chatbot.embeddings import BUILTIN_MODELS, resolve_model_path

        emb = self.shared.settings.embedding
        if emb.mode != "local":
            return self.shared.embed_model
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding

        name = emb.model if emb.model not in BUILTIN_MODELS else resolve_model_path(emb.model)
        return HuggingFaceEmbedding(model_name=name, device="cpu")

    def prepare(self) -> dict[str, Any]:
        from importlib.metadata import version

        from llama_index.core import Settings as LlamaSettings
        from llama_index.core import (
            SimpleDirectoryReader,
            StorageContext,
            VectorStoreIndex,
            load_index_from_storage,
        )
        from llama_index.core.llms import MockLLM

        # Never let LlamaIndex fall back to its OpenAI defaults (``Settings.llm = None`` is the
        # same MockLLM, announced on stdout); the embedding model is always passed explicitly.
        LlamaSettings.llm = MockLLM()
        # SimpleDirectoryReader warns once per file that optional readers are not installed.
        logging.getLogger("llama_index.core.readers.file.base").setLevel(logging.ERROR)
        embed = self._embed_model()
        files = [str(f) for f in self.shared.dataset.files]

        def build(folder: Path) -> None:
            docs = SimpleDirectoryReader(input_files=files).load_data()
            index = VectorStoreIndex.from_documents(docs, embed_model=embed)
            index.storage_context.persist(persist_dir=str(folder))

        key = {
            "docs": str(self.shared.dataset.docs_dir),
            "content": self.shared.dataset.content_hash(),
            "embed": f"{type(embed).__name__}:{getattr(embed, 'model_name', '')}",
            "llama_index": version("llama-index-core"),
        }
        started = time.perf_counter()
        folder, cached = self.shared.cache.get(LLAMAINDEX, key, build)
        storage = StorageContext.from_defaults(persist_dir=str(folder))
        self.index = load_index_from_storage(storage, embed_model=embed)
        return {
            "index_dir": str(folder),
            "cached": cached,
            "index_seconds": round(time.perf_counter() - started, 1),
            "chunks": len(self.index.docstore.docs),
            "embed_model": key["embed"],
        }

    def _nodes(self, question: str, k: int) -> list[Any]:
        return list(self.index.as_retriever(similarity_top_k=k).retrieve(question))

    def _passage(self, hit: Any) -> Passage:
        from llama_index.core.schema import MetadataMode

        node = hit.node
        source = node.metadata.get("file_path") or node.metadata.get("file_name") or ""
        text = node.get_content(metadata_mode=MetadataMode.NONE)
        return self.shared.mapper(source, text, node.start_char_idx, node.end_char_idx)

    def retrieve(self, item: QAItem, k: int) -> RetrievalOutput:
        started = time.perf_counter()
        nodes = self._nodes(item.question, k)
        latency = {"total_ms": _ms(started)}
        return RetrievalOutput([self._passage(n) for n in nodes], latency)

    def answer(self, item: QAItem) -> AnswerOutput:
        from langchain_core.messages import HumanMessage
        from llama_index.core.prompts.default_prompts import DEFAULT_TEXT_QA_PROMPT_TMPL
        from llama_index.core.schema import MetadataMode

        started = time.perf_counter()
        nodes = self._nodes(item.question, LLAMAINDEX_ANSWER_TOP_K)
        latency = {"retrieve_ms": _ms(started)}
        context = "\n\n".join(n.node.get_content(metadata_mode=MetadataMode.LLM) for n in nodes)
        prompt = DEFAULT_TEXT_QA_PROMPT_TMPL.format(context_str=context, query_str=item.question)
        t = time.perf_counter()
        llm = self.shared.chat_model
        text = timed_stream(lambda: llm.stream([HumanMessage(prompt)]), latency, t)
        latency["total_ms"] = _ms(started)
        return AnswerOutput(
            text=text,
            refused=is_refusal(text),
            context=[self._passage(n) for n in nodes],
            cited=None,
            latency_ms=latency,
        )

    def close(self) -> None:
        self.index = None


class BM25Baseline:
    name = BM25

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.index = BM25Index()
        self.chunks: list[RetrievedChunk] = []
        self._answer: Any = None

    def prepare(self) -> dict[str, Any]:
        from chatbot.domain import RetrievedChunk
        from chatbot.text import cjk_ratio
        from ingest.readers import SkipFile, read_file

        started = time.perf_counter()
        for path in self.shared.dataset.files:
            try:
                parsed = read_file(
                    path, max_bytes=int(self.shared.settings.ingest.max_file_mb * 1e6)
                )
            except SkipFile:
                continue
            zh = cjk_ratio(parsed.text) > 0.3
            size = ZH_CHUNK_CHARS if zh else EN_CHUNK_CHARS
            for i, (a, b) in enumerate(char_chunks(parsed.text, size)):
                self.chunks.append(
                    RetrievedChunk(
                        chunk_id=f"{path.name}#{i}",
                        doc_id=str(path),
                        text=parsed.text[a:b],
                        source=str(path),
                        title=parsed.title,
                        language="zh" if zh else "en",
                        start_char=a,
                        end_char=b,
                    )
                )
        self.index.fit([bm25_tokens(c.text) for c in self.chunks])
        return {
            "cached": False,
            "index_seconds": round(time.perf_counter() - started, 1),
            "chunks": len(self.chunks),
        }

    def _search(self, question: str, k: int) -> list[RetrievedChunk]:
        return [self.chunks[i] for i, _ in self.index.search(bm25_tokens(question), k)]

    def _passage(self, chunk: RetrievedChunk) -> Passage:
        return self.shared.mapper(chunk.source, chunk.text, chunk.start_char, chunk.end_char)

    def retrieve(self, item: QAItem, k: int) -> RetrievalOutput:
        started = time.perf_counter()
        chunks = self._search(item.question, k)
        return RetrievalOutput([self._passage(c) for c in chunks], {"total_ms": _ms(started)})

    def answer(self, item: QAItem) -> AnswerOutput:
        from chatbot.pipeline.answer import (
            DEFAULT_STYLE,
            build_answer,
            format_sources,
            language_name,
        )
        from chatbot.prompt_loader import load_prompt
        from chatbot.text import detect_language

        if self._answer is None:
            prompt = load_prompt("answer", self.shared.settings.prompts_dir)
            self._answer = build_answer(self.shared.chat_model, prompt)
        started = time.perf_counter()
        chunks = self._search(item.question, self.shared.settings.chat.context_chunks)
        latency = {"retrieve_ms": _ms(started)}
        variables = {
            "language_name": language_name(detect_language(item.question)),
            "style": DEFAULT_STYLE,
            "sources": format_sources(chunks, self.shared.settings.chat.source_max_chars),
            "question": item.question,
        }
        t = time.perf_counter()
        text = timed_stream(lambda: self._answer.stream(variables), latency, t)
        latency["total_ms"] = _ms(started)
        by_id = {c.chunk_id: c for c in chunks}
        citations = extract_citations(text, chunks)
        return AnswerOutput(
            text=text,
            refused=is_refusal(text),
            context=[self._passage(c) for c in chunks],
            cited=[self._passage(by_id[c.chunk_id]) for c in citations],
            latency_ms=latency,
        )

    def close(self) -> None:
        self.chunks = []


def make_baseline(name: str, shared: Shared) -> LlamaIndexDefault | BM25Baseline:
    if name == LLAMAINDEX:
        return LlamaIndexDefault(shared)
    if name == BM25:
        return BM25Baseline(shared)
    raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
