"""The default LLM in-process (transformers) vs served by llama.cpp, same prompts, same run.

The default model (Qwen2.5-Coder-1.5B-Instruct) ships as a Q4_K_M GGUF. In-process
(``llm.mode: local``) it is dequantised once and run by torch in the ``auto`` dtype; a llama.cpp
server (``llm.mode: openai``) runs the GGUF itself. Both are built by the factory production
uses (``chatbot.providers.make_chat_model``) and get the real answer prompt
(``prompts/answer.yaml``): a sample question with four sample documents as its sources, each cut
at ``chat.source_max_chars`` as in a real turn. Greedy decoding; runs alternate between the two
so machine load hits both alike. Prints time to first token, decode tokens/s and the whole
answer per runtime, the ratios, and how many answers are word-for-word the same.

Usage: ``python bench/llm_runtime.py [--questions 3] [--llamacpp-python PATH]``. The llama.cpp
server needs xllamacpp in a separate interpreter: ``bash .ci/services.sh`` installs it into
``.venv-llamacpp`` (the default PATH).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatbot.domain import RetrievedChunk  # noqa: E402
from chatbot.hardware import has_fast_bfloat16, resolve_dtype  # noqa: E402
from chatbot.models.local_chat import load_local_model, to_chat_messages  # noqa: E402
from chatbot.pipeline.answer import DEFAULT_STYLE, format_sources, language_name  # noqa: E402
from chatbot.prompt_loader import load_prompt  # noqa: E402
from chatbot.providers import make_chat_model  # noqa: E402
from chatbot.settings import LLMSettings, Settings  # noqa: E402
from tests.scaleout.llama_server import model_gguf, running  # noqa: E402

SAMPLES = ROOT / "data" / "samples"


def prompts(settings: Settings, n: int) -> list[tuple[str, Any]]:
    """(question, prompt messages) for the first ``n`` answerable English sample questions."""
    template = load_prompt("answer", settings.prompts_dir).template
    rows = [json.loads(line) for line in (SAMPLES / "questions.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["answerable"] and r["language"] == "en" and r["source_files"]]
    out = []
    for row in rows[:: max(1, len(rows) // n)][:n]:
        gold = SAMPLES / row["source_files"][0]
        others = sorted(
            p for p in gold.parent.iterdir() if p != gold and p.suffix in {".md", ".txt"}
        )
        chunks = [
            RetrievedChunk(str(i), str(i), p.read_text(encoding="utf-8"), p.name, p.stem, "en")
            for i, p in enumerate([gold, *others[:3]])
        ]
        messages = template.format_messages(
            language_name=language_name("en"),
            style=DEFAULT_STYLE,
            sources=format_sources(chunks, settings.chat.source_max_chars),
            question=row["question"],
        )
        out.append((row["question"], messages))
    return out


def timed_stream(model: Any, messages: Any) -> tuple[float, float, str]:
    """(seconds to the first text, seconds in all, answer)."""
    start, first, parts = time.perf_counter(), None, []
    for chunk in model.stream(messages):
        if chunk.content and first is None:
            first = time.perf_counter() - start
        parts.append(str(chunk.content))
    total = time.perf_counter() - start
    return first if first is not None else total, total, "".join(parts).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--llamacpp-python", type=Path, default=ROOT / ".venv-llamacpp/bin/python")
    args = parser.parse_args()
    if not args.llamacpp_python.exists():
        raise SystemExit(f"{args.llamacpp_python} not found: run `bash .ci/services.sh` first")
    settings = Settings()
    name = settings.llm.model
    gguf = model_gguf(name, settings.models_dir / ".gguf")
    local = make_chat_model(settings.llm, settings.models_dir)
    work = prompts(settings, args.questions)
    local.invoke(work[0][1][:1])  # load the weights before timing
    results: dict[str, list[tuple[float, float, str]]] = {"in-process": [], "llama.cpp": []}
    with running(args.llamacpp_python, gguf, n_ctx=8192) as url:
        served = make_chat_model(
            LLMSettings(
                mode="openai",
                base_url=url,
                model=name,
                timeout_s=600.0,
                max_new_tokens=settings.llm.max_new_tokens,
            ),
            settings.models_dir,
        )
        for question, messages in work:
            for label, model in (("in-process", local), ("llama.cpp", served)):
                first, total, answer = timed_stream(model, messages)
                results[label].append((first, total, answer))
                print(f"{label:>10} {first:6.1f} s first, {total:6.1f} s all | {question[:50]}")
    tokenizer = load_local_model(local.model_dir, local.threads, local.dtype).tokenizer  # type: ignore[attr-defined]
    dtype = resolve_dtype(settings.llm.dtype)
    prompt_tokens = statistics.median(
        len(tokenizer.encode(text))
        for _, m in work
        for text in [
            tokenizer.apply_chat_template(
                to_chat_messages(m), tokenize=False, add_generation_prompt=True
            )
        ]
    )
    print(
        f"\nCPU native bfloat16: {has_fast_bfloat16()}; in-process dtype {dtype}; "
        f"{len(work)} questions, prompt {prompt_tokens:.0f} tokens p50, {os.cpu_count()} cores\n"
    )
    print(
        "| runtime | first token p50, s | prefill tokens/s | decode tokens/s p50 "
        "| whole answer p50, s |"
    )
    print("|---|---|---|---|---|")
    summary = {}
    for label, runs in results.items():
        rates = [(len(tokenizer.encode(a)) - 1) / (t - f) for f, t, a in runs if a and t > f]
        row = (
            statistics.median(f for f, _, _ in runs),
            statistics.median(rates) if rates else 0.0,
            statistics.median(t for _, t, _ in runs),
        )
        summary[label] = row
        prefill = prompt_tokens / row[0]
        print(f"| {label} | {row[0]:.1f} | {prefill:.0f} | {row[1]:.1f} | {row[2]:.1f} |")
    a, b = summary["in-process"], summary["llama.cpp"]
    same = sum(
        x[2] == y[2] for x, y in zip(results["in-process"], results["llama.cpp"], strict=True)
    )
    print(
        f"\nllama.cpp vs in-process: first token {a[0] / b[0]:.1f}x sooner, whole answer "
        f"{a[2] / b[2]:.1f}x sooner; {same} of {len(work)} answers word-for-word the same"
    )
    for (q, _), x, y in zip(work, results["in-process"], results["llama.cpp"], strict=True):
        print(f"\nQ: {q}\n  in-process: {x[2][:200]}\n  llama.cpp:  {y[2][:200]}")


if __name__ == "__main__":
    main()
