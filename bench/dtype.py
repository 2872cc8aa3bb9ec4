"""float32 vs bfloat16 on this CPU, same run: what ``dtype: auto`` should pick, and why.

For each dtype: MiniLM embedding throughput (chunks/s over the sample documents, 1,000-character
chunks) and, unless ``--no-llm``, the local LLM's prefill of the ~600-token RAG prompt of
``bench/chat.py`` (time to first token) and greedy decode speed. Prints a table, the CPU's native
bfloat16 support and what ``auto`` resolves to here. The LLM is loaded once per dtype
(float32 needs twice the memory: ~6 GB for the 1.5B model).

Usage: ``python bench/dtype.py [--runs 2] [--max-new-tokens 32] [--no-llm]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from chat import build_messages  # bench/chat.py: the same ~600-token RAG prompt

from chatbot.embeddings import SentenceTransformerEmbedding, resolve_model_path
from chatbot.hardware import has_fast_bfloat16, resolve_dtype

# chatbot.hardware and chatbot.models.local_chat set OMP_WAIT_POLICY=PASSIVE before torch loads.
from chatbot.models.local_chat import load_local_model, to_chat_messages
from chatbot.models.local_weights import ensure_local_model

ROOT = Path(__file__).resolve().parents[1]
DTYPES = ("float32", "bfloat16")


def sample_chunks(limit: int = 128) -> list[str]:
    chunks: list[str] = []
    for path in sorted((ROOT / "data" / "samples").rglob("*")):
        if path.suffix in {".md", ".txt"}:
            text = path.read_text(encoding="utf-8", errors="replace")
            chunks += [text[i : i + 1000] for i in range(0, len(text), 1000)]
    return (chunks * (1 + limit // max(len(chunks), 1)))[:limit]


def embed_rate(dtype: str, chunks: list[str]) -> float:
    model = SentenceTransformerEmbedding(
        model_path=resolve_model_path("all-MiniLM-L6-v2"), dtype=dtype, embed_batch_size=64
    )
    model.encode(chunks[:8])  # load and warm up
    started = time.perf_counter()
    model.encode(chunks)
    return len(chunks) / (time.perf_counter() - started)


def llm_speed(model_dir: Path, dtype: str, runs: int, new_tokens: int) -> tuple[float, float]:
    """p50 prefill seconds of the RAG prompt and p50 decode tokens/s."""
    import torch

    loaded = load_local_model(model_dir, dtype=dtype)
    chat = to_chat_messages(build_messages())
    ids = loaded.tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=True)
    input_ids = torch.tensor([ids["input_ids"]])
    prefill, decode = [], []
    with torch.inference_mode():
        loaded.model(input_ids=input_ids[:, :16], logits_to_keep=1)  # warm-up
        for _ in range(runs):
            started = time.perf_counter()
            loaded.model(input_ids=input_ids, logits_to_keep=1)
            prefill.append(time.perf_counter() - started)
            started = time.perf_counter()
            loaded.model.generate(
                input_ids=input_ids[:, -8:],
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=loaded.pad_token_id,
            )
            decode.append(new_tokens / (time.perf_counter() - started))
    return statistics.median(prefill), statistics.median(decode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--no-llm", action="store_true", help="embedding only")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "data" / "models")
    args = parser.parse_args(argv)
    print(f"native bfloat16 on this CPU: {has_fast_bfloat16()}; auto -> {resolve_dtype('auto')}")
    chunks = sample_chunks()
    model_dir = (
        None if args.no_llm else ensure_local_model("qwen2.5-coder-1.5b-instruct", args.models_dir)
    )
    rows = {}
    for dtype in DTYPES:
        rate = embed_rate(dtype, chunks)
        prefill, tps = (
            (None, None)
            if model_dir is None
            else llm_speed(model_dir, dtype, args.runs, args.max_new_tokens)
        )
        rows[dtype] = (rate, prefill, tps)
        print(
            f"{dtype}: embed {rate:.1f} chunks/s"
            + ("" if prefill is None else f", LLM prefill {prefill:.1f} s, decode {tps:.2f} tok/s"),
            flush=True,
        )
    (e32, p32, d32), (e16, p16, d16) = rows["float32"], rows["bfloat16"]
    print()
    print("| | float32 | bfloat16 | bfloat16 / float32 |")
    print("|---|---|---|---|")
    print(f"| MiniLM embed, chunks/s | {e32:.1f} | {e16:.1f} | {e16 / e32:.2f}x |")
    if p32 is not None and p16 is not None and d32 is not None and d16 is not None:
        print(f"| LLM prefill (RAG prompt), s | {p32:.1f} | {p16:.1f} | {p16 / p32:.2f}x |")
        print(f"| LLM decode, tokens/s | {d32:.2f} | {d16:.2f} | {d16 / d32:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
