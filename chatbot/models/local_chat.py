"""LangChain chat model over a local transformers model folder (the offline default LLM).

* The tokenizer and weights are loaded lazily, once per process and folder, and shared by every
  :class:`LocalChatModel` instance.
* Generation is serialised by one process-wide lock: on a CPU box two concurrent generations
  only slow each other down. Callers queue; :func:`queue_depth` tells how many are waiting or
  running.
* Streaming yields real tokens as they are decoded (``TextIteratorStreamer`` fed by a generate
  thread). If the consumer stops early, the generate thread is cancelled at the next token.

torch is imported lazily; ``OMP_WAIT_POLICY=PASSIVE`` is set (unless already set) when this
module is imported, because with the default spin-wait policy decoding collapses 5-20x as soon
as another process uses a core. It only takes effect if torch has not been imported yet.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ChatMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from chatbot.hardware import Dtype, resolve_dtype

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
"""Used when the conversation has no leading system message (Qwen would inject its own)."""

_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
}


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class LoadedModel:
    """A tokenizer and model pair, plus the ids that end a reply."""

    tokenizer: Any
    model: Any
    eos_token_ids: tuple[int, ...]
    pad_token_id: int | None


_LOAD_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str], LoadedModel] = {}


def load_local_model(model_dir: str | Path, threads: int = 0, dtype: str = "auto") -> LoadedModel:
    """Return the process-wide copy of the model in ``model_dir``, loading it on first use.

    ``dtype`` is the compute dtype: ``float32``, ``bfloat16`` or ``auto`` (bfloat16 only where
    the CPU has it natively; see ``chatbot.hardware``).
    """
    path = str(Path(model_dir).expanduser().resolve())
    dtype = resolve_dtype(dtype)
    with _LOAD_LOCK:
        loaded = _LOADED.get((path, dtype))
        if loaded is None:
            loaded = _load(path, threads, dtype)
            _LOADED[(path, dtype)] = loaded
    return loaded


def _load(path: str, threads: int, dtype: str) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    _apply_threads(threads)
    log.info("Loading local model from %s in %s", path, dtype)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model: Any = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch_dtype, local_files_only=True
    )
    model.eval()
    eos = _eos_token_ids(tokenizer, model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    return LoadedModel(tokenizer=tokenizer, model=model, eos_token_ids=eos, pad_token_id=pad)


def _eos_token_ids(tokenizer: Any, model: Any) -> tuple[int, ...]:
    configured = model.generation_config.eos_token_id
    ids = [configured] if isinstance(configured, int) else list(configured or [])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    if not ids:
        raise ValueError("the model folder defines no end-of-sequence token")
    return tuple(dict.fromkeys(int(i) for i in ids))


def _apply_threads(threads: int) -> None:
    if threads > 0:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


# --------------------------------------------------------------------------- queueing


class _GenerationQueue:
    """One generation at a time per process; counts callers waiting or running."""

    def __init__(self) -> None:
        self._run_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._depth = 0

    @property
    def depth(self) -> int:
        return self._depth

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        self._add(1)
        try:
            with self._run_lock:
                yield
        finally:
            self._add(-1)

    def _add(self, delta: int) -> None:
        with self._count_lock:
            self._depth += delta


_QUEUE = _GenerationQueue()


def queue_depth() -> int:
    """Callers of the local model that are generating or waiting to generate, process-wide."""
    return _QUEUE.depth


# --------------------------------------------------------------------------- prompt


def to_chat_messages(
    messages: Sequence[BaseMessage], system_prompt: str = DEFAULT_SYSTEM_PROMPT
) -> list[dict[str, str]]:
    """Convert LangChain messages to chat-template dicts, always starting with a system turn.

    Raises:
        ValueError: A message type other than system, human or ai.
    """
    chat = [{"role": _role(message), "content": message.text} for message in messages]
    if not chat or chat[0]["role"] != "system":
        chat.insert(0, {"role": "system", "content": system_prompt})
    return chat


def _role(message: BaseMessage) -> str:
    kind = message.role if isinstance(message, ChatMessage) else message.type
    role = _ROLES.get(kind)
    if role is None:
        raise ValueError(
            f"LocalChatModel supports system, human and ai messages, not {kind!r} messages"
        )
    return role


class _StopFilter:
    """Cuts streamed text at the first stop sequence, holding back possible partial matches."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if not self._stops:
            return text
        buffer = self._held + text
        hits = [i for i in (buffer.find(s) for s in self._stops) if i >= 0]
        if hits:
            self.stopped = True
            self._held = ""
            return buffer[: min(hits)]
        keep = self._partial_suffix(buffer)
        self._held = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held

    def _partial_suffix(self, buffer: str) -> int:
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), longest, -1):
                if buffer.endswith(stop[:size]):
                    longest = size
                    break
        return longest


# --------------------------------------------------------------------------- generation


@cache
def _cancel_criteria_class() -> type[Any]:
    import torch
    from transformers import StoppingCriteria

    class CancelCriteria(StoppingCriteria):
        """Stops generation at the next token once ``event`` is set."""

        def __init__(self, event: threading.Event) -> None:
            self.event = event

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            stop = self.event.is_set()
            return torch.full(
                (input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device
            )

    return CancelCriteria


class _GenerateJob:
    """``model.generate`` on a background thread, feeding a ``TextIteratorStreamer``."""

    def __init__(self, loaded: LoadedModel, inputs: Any, options: dict[str, Any]) -> None:
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        self.cancelled = threading.Event()
        self.streamer: Any = TextIteratorStreamer(
            loaded.tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        self.output: Any = None
        self.error: BaseException | None = None
        criteria = StoppingCriteriaList([_cancel_criteria_class()(self.cancelled)])
        kwargs = {**inputs, **options, "streamer": self.streamer, "stopping_criteria": criteria}
        self._thread = threading.Thread(
            target=self._run, args=(loaded.model, kwargs), name="local-llm-generate", daemon=True
        )

    def start(self) -> _GenerateJob:
        self._thread.start()
        return self

    def _run(self, model: Any, kwargs: dict[str, Any]) -> None:
        try:
            self.output = model.generate(**kwargs)
        except BaseException as exc:  # re-raised in the consumer by raise_if_failed()
            self.error = exc
            self.streamer.end()  # unblock the consumer

    def stop(self) -> None:
        """Cancel at the next token (a no-op if generation already ended) and wait."""
        self.cancelled.set()
        self._thread.join()

    def raise_if_failed(self) -> None:
        """Re-raise, in the consumer's thread, an exception of the generate thread."""
        if self.error is not None:
            raise RuntimeError("local model generation failed") from self.error

    def generated_ids(self, prompt_tokens: int) -> list[int]:
        if self.output is None:
            return []
        return [int(i) for i in self.output[0, prompt_tokens:]]


@dataclass
class _Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"

    def usage_metadata(self) -> UsageMetadata:
        return UsageMetadata(
            input_tokens=self.prompt_tokens,
            output_tokens=self.completion_tokens,
            total_tokens=self.prompt_tokens + self.completion_tokens,
        )

    def token_usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


class LocalChatModel(BaseChatModel):
    """Chat model backed by a local transformers folder (see ``local_weights``).

    Example:
        >>> llm = LocalChatModel(model_dir="data/models/qwen2.5-coder-1.5b-instruct")
        >>> for chunk in llm.stream("Hello"):  # doctest: +SKIP
        ...     print(chunk.content, end="")
    """

    model_dir: str
    """Folder holding a transformers causal LM and its tokenizer."""
    max_new_tokens: int = Field(default=320, ge=1)
    """Upper bound on reply length in tokens."""
    temperature: float = Field(default=0.0, ge=0.0)
    """Sampling temperature; 0 means greedy decoding."""
    threads: int = Field(default=0, ge=0)
    """torch threads (process-wide); 0 leaves torch's default."""
    dtype: Dtype = "auto"
    """Compute dtype (``auto``: bfloat16 only where the CPU has it natively)."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    """System message used when the conversation does not start with one."""

    @property
    def _llm_type(self) -> str:
        return "local-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_dir": self.model_dir,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "dtype": resolve_dtype(self.dtype),
        }

    @property
    def model_name(self) -> str:
        """Name reported in response metadata (the folder name)."""
        return Path(self.model_dir).name

    def load(self) -> LoadedModel:
        """Load the model now (it is otherwise loaded by the first call)."""
        return load_local_model(self.model_dir, self.threads, self.dtype)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        usage = _Usage()
        with contextlib.closing(self._iter_text(messages, stop, usage, kwargs)) as pieces:
            text = "".join(pieces)
        message = AIMessage(
            content=text,
            usage_metadata=usage.usage_metadata(),
            response_metadata=self._response_metadata(usage),
        )
        llm_output = {"token_usage": usage.token_usage(), "model_name": self.model_name}
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output=llm_output)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        usage = _Usage()
        with contextlib.closing(self._iter_text(messages, stop, usage, kwargs)) as pieces:
            for text in pieces:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                if run_manager is not None:
                    run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk
        final = AIMessageChunk(
            content="",
            usage_metadata=usage.usage_metadata(),
            response_metadata=self._response_metadata(usage),
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=final)

    def _response_metadata(self, usage: _Usage) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "finish_reason": usage.finish_reason,
            "token_usage": usage.token_usage(),
        }

    def _iter_text(
        self,
        messages: Sequence[BaseMessage],
        stop: Sequence[str] | None,
        usage: _Usage,
        overrides: dict[str, Any],
    ) -> Generator[str, None, None]:
        """Yield reply text as it is generated; fill ``usage`` once generation has ended."""
        loaded = self.load()
        chat = to_chat_messages(messages, self.system_prompt)  # fails before queueing
        stop_filter = _StopFilter(stop or ())
        with _QUEUE.slot():  # the tokenizer is not safe to share between threads either
            inputs = self._encode(loaded, chat)
            usage.prompt_tokens = int(inputs["input_ids"].shape[-1])
            _apply_threads(self.threads)
            job = _GenerateJob(loaded, inputs, self._options(loaded, overrides)).start()
            try:
                for piece in job.streamer:
                    text = stop_filter.feed(piece)
                    if text:
                        yield text
                    if stop_filter.stopped:
                        break
            finally:
                job.stop()
        job.raise_if_failed()
        if tail := stop_filter.flush():
            yield tail
        self._fill_usage(usage, job.generated_ids(usage.prompt_tokens), loaded, stop_filter)

    @staticmethod
    def _encode(loaded: LoadedModel, chat: list[dict[str, str]]) -> Any:
        return loaded.tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def _options(self, loaded: LoadedModel, overrides: dict[str, Any]) -> dict[str, Any]:
        max_new_tokens = int(overrides.get("max_new_tokens", self.max_new_tokens))
        temperature = float(overrides.get("temperature", self.temperature))
        options: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "eos_token_id": list(loaded.eos_token_ids),
            "pad_token_id": loaded.pad_token_id,
        }
        if temperature > 0:
            options.update(do_sample=True, temperature=temperature)
        else:  # greedy; clear sampling knobs the folder's generation_config may carry
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return options

    @staticmethod
    def _fill_usage(
        usage: _Usage, new_ids: list[int], loaded: LoadedModel, stop_filter: _StopFilter
    ) -> None:
        usage.completion_tokens = len(new_ids)
        ended = stop_filter.stopped or (bool(new_ids) and new_ids[-1] in loaded.eos_token_ids)
        usage.finish_reason = "stop" if ended else "length"
