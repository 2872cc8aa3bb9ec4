"""Local LLM latency: raw ``model.generate`` vs ``LocalChatModel.stream``, same model, same run.

Both paths stream through ``TextIteratorStreamer`` from a generate thread over one loaded copy of
the model, on the same ~600-token RAG prompt with greedy decoding; runs alternate between them so
machine load hits both alike. Reports p50 time to first token (TTFT), p50 decode tokens/s, the
ratio ours/raw, and the process's peak RSS.

Usage: ``python bench/chat.py [--model NAME_OR_DIR] [--runs 3] [--max-new-tokens 64]``
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

# Imported before anything loads torch: sets OMP_WAIT_POLICY=PASSIVE unless already set.
from chatbot.models.local_chat import LoadedModel, LocalChatModel, to_chat_messages
from chatbot.models.local_weights import ensure_local_model

SYSTEM = (
    "You are a helpful assistant for question answering. Answer the question using ONLY the "
    "information in the context. If the context does not contain the answer, reply exactly: "
    "I don't know. Answer in the same language as the question."
)
CONTEXT = [
    "Harbour Town Library, annual report. The town library reopened in May after a complete "
    "renovation of the 1920s building on Quay Street. The renovation took 18 months and cost "
    "4.2 million euros, of which 2.5 million came from a regional heritage grant and the rest "
    "from the municipal budget. The architects kept the original brick facade and the oak "
    "staircase, replaced the roof, and added a glass extension facing the harbour.",
    "The new reading room has 120 seats, 40 of them with power outlets, and stays open until "
    "22:00 on weekdays. A quiet study area on the second floor can be booked in two-hour slots "
    "through the library website or at the front desk. Group rooms for up to eight people are "
    "available on the ground floor and must be booked at least one day in advance.",
    "The children's section moved to the ground floor next to the garden. Story hours take place "
    "every Wednesday and Saturday at 10:30, in Dutch and in English on alternating weeks. A "
    "maker space with two 3D printers, a laser cutter and sewing machines opens in September; "
    "using the machines requires a one-hour safety course, which is free for members.",
    "Membership is free for residents under 18 and costs 25 euros a year for adults. Members may "
    "borrow up to 15 items at a time for three weeks, and renew each item twice online unless "
    "another member has reserved it. Late fees were abolished in January; instead, borrowing is "
    "blocked while an item is more than four weeks overdue.",
    "The library's digital collection includes 18,000 e-books and 6,500 audiobooks, available "
    "through the library app. The local history archive, with maps, photographs and newspapers "
    "from 1850 onwards, is open to researchers on Tuesdays and Thursdays by appointment. Staff "
    "can scan up to 20 pages per request at no charge.",
    "Visitor numbers in the first three months after the reopening averaged 1,450 a day, nearly "
    "twice the figure before the renovation. The most borrowed title was a cookbook of regional "
    "fish recipes. The library plans to extend Sunday opening hours from next spring if the "
    "municipal council approves the additional staffing budget in its autumn session.",
    "Accessibility was a priority of the project: the building now has a lift to every floor, "
    "step-free entrances on both sides, induction loops at the front desk and in the lecture "
    "hall, and large-print and braille editions of the most requested titles.",
]
QUESTION = (
    "Summarise what the context says about the renovation, the reading room, membership and "
    "the opening hours."
)  # an answer long enough to measure decoding over --max-new-tokens


@dataclass(frozen=True)
class Sample:
    """One timed generation."""

    ttft_s: float
    decode_tps: float
    new_tokens: int
    text: str


def build_messages() -> list[BaseMessage]:
    """The benchmark prompt: a RAG system prompt plus six context passages and a question."""
    context = "\n\n".join(f"[{i}] {p}" for i, p in enumerate(CONTEXT, start=1))
    return [
        SystemMessage(SYSTEM),
        HumanMessage(f"Context:\n{context}\n\nQuestion: {QUESTION}"),
    ]


def _sample(started: float, first: float | None, ended: float, tokens: int, text: str) -> Sample:
    first = ended if first is None else first
    decode = (tokens - 1) / (ended - first) if tokens > 1 and ended > first else 0.0
    return Sample(ttft_s=first - started, decode_tps=decode, new_tokens=tokens, text=text)


def run_raw(loaded: LoadedModel, messages: list[BaseMessage], max_new_tokens: int) -> Sample:
    """Plain transformers: chat template, generate thread, TextIteratorStreamer."""
    from transformers import TextIteratorStreamer

    tok = loaded.tokenizer
    chat = to_chat_messages(messages)
    inputs = tok.apply_chat_template(
        chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
    result: dict[str, Any] = {}
    kwargs = {
        **inputs,
        "max_new_tokens": max_new_tokens,
        "do_sample": False,
        "eos_token_id": list(loaded.eos_token_ids),
        "pad_token_id": loaded.pad_token_id,
        "streamer": streamer,
    }
    thread = threading.Thread(target=lambda: result.update(ids=loaded.model.generate(**kwargs)))
    started, first, pieces = time.perf_counter(), None, []
    thread.start()
    for text in streamer:
        if text and first is None:
            first = time.perf_counter()
        pieces.append(text)
    ended = time.perf_counter()
    thread.join()
    tokens = int(result["ids"].shape[-1] - inputs["input_ids"].shape[-1])
    return _sample(started, first, ended, tokens, "".join(pieces))


def run_ours(llm: LocalChatModel, messages: list[BaseMessage]) -> Sample:
    """The same prompt through ``LocalChatModel.stream`` (LangChain callbacks and all)."""
    started, first, pieces, tokens = time.perf_counter(), None, [], 0
    for chunk in llm.stream(messages):
        if chunk.content and first is None:
            first = time.perf_counter()
        pieces.append(chunk.text)
        if chunk.usage_metadata:
            tokens = chunk.usage_metadata["output_tokens"]
    ended = time.perf_counter()
    return _sample(started, first, ended, tokens, "".join(pieces))


def pipeline_variables() -> dict[str, str]:
    """The same passages and question as the answer stage's prompt variables."""
    return {
        "language_name": "English",
        "style": "Keep the answer short: one to three sentences.",
        "sources": "\n\n".join(f"[{i}] Library report\n{p}" for i, p in enumerate(CONTEXT, 1)),
        "question": QUESTION,
    }


def run_pipeline(stage: Any, loaded: LoadedModel) -> Sample:
    """Through the pipeline's answer stage (prompt template | LocalChatModel | parser)."""
    started, first, pieces = time.perf_counter(), None, []
    for piece in stage.stream(pipeline_variables()):
        if piece and first is None:
            first = time.perf_counter()
        pieces.append(piece)
    ended = time.perf_counter()
    text = "".join(pieces)
    tokens = len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"]) + 1
    return _sample(started, first, ended, tokens, text)


def p50(values: list[float]) -> float:
    """Median."""
    return statistics.median(values)


def print_table(title: str, raw: list[Sample], ours: list[Sample]) -> None:
    """Print p50 TTFT and decode speed for both paths and their ratio."""
    rows = [
        ("TTFT s (p50)", p50([s.ttft_s for s in raw]), p50([s.ttft_s for s in ours])),
        ("decode tok/s (p50)", p50([s.decode_tps for s in raw]), p50([s.decode_tps for s in ours])),
        ("new tokens (p50)", p50([s.new_tokens for s in raw]), p50([s.new_tokens for s in ours])),
    ]
    print(f"{'metric':<20} {'raw generate':>13} {title:>15} {'ours/raw':>9}")
    for name, raw_value, our_value in rows:
        ratio = our_value / raw_value if raw_value else float("nan")
        print(f"{name:<20} {raw_value:>13.2f} {our_value:>15.2f} {ratio:>9.3f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct", help="name or folder")
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    model_dir = ensure_local_model(args.model, args.models_dir, progress=print)
    llm = LocalChatModel(
        model_dir=str(model_dir), max_new_tokens=args.max_new_tokens, threads=args.threads
    )
    started = time.perf_counter()
    loaded = llm.load()
    import torch

    print(f"model: {model_dir}  load: {time.perf_counter() - started:.1f} s")
    messages = build_messages()
    encoded = loaded.tokenizer.apply_chat_template(to_chat_messages(messages), return_dict=True)
    prompt_tokens = len(encoded["input_ids"])
    print(
        f"prompt tokens: {prompt_tokens}  torch threads: {torch.get_num_threads()}  "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}  runs: {args.runs}"
    )
    from chatbot.pipeline.answer import build_answer
    from chatbot.prompt_loader import load_prompt

    prompt = load_prompt("answer", Path(__file__).resolve().parents[1] / "prompts")
    stage = build_answer(llm, prompt)
    stage_messages = prompt.template.invoke(pipeline_variables()).to_messages()
    run_raw(loaded, [*messages[:1], HumanMessage("Hi")], 4)  # warm-up (oneDNN kernels)
    raw, ours, raw_stage, piped = [], [], [], []
    for i in range(args.runs):
        raw.append(run_raw(loaded, messages, args.max_new_tokens))
        ours.append(run_ours(llm, messages))
        raw_stage.append(run_raw(loaded, stage_messages, args.max_new_tokens))
        piped.append(run_pipeline(stage, loaded))
        print(
            f"run {i + 1}: raw ttft {raw[-1].ttft_s:.2f} s {raw[-1].decode_tps:.2f} tok/s | "
            f"ours ttft {ours[-1].ttft_s:.2f} s {ours[-1].decode_tps:.2f} tok/s | "
            f"pipeline ttft {piped[-1].ttft_s:.2f} s {piped[-1].decode_tps:.2f} tok/s"
        )
    print()
    print_table("LocalChatModel", raw, ours)
    print()
    print("answer stage of the pipeline (prompts/answer.yaml), raw generate on the same messages:")
    print_table("pipeline", raw_stage, piped)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mib:.0f} MiB")
    print(f"same text both ways: {all(r.text == o.text for r, o in zip(raw, ours, strict=True))}")
    print(f"answer: {ours[-1].text!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
