"""Retrieval-settings sweep on a dataset's cached index (no re-embedding between settings).

Opens (or builds once) the same cached index ``chatbot eval`` uses, then scores every
answerable question under each retrieval setting given on the command line, e.g.

    .venv/bin/python bench/eval_sweep.py ../shared/eval/covidqa \
        'mmr_lambda=0.8' 'mmr_lambda=1.0' 'max_per_document=2,mmr_lambda=0.9'

Query embeddings are computed once and reused. Prints doc hit@1/@5, MRR@10, span hit@5 and
the relevance gate's refusals per setting. Chat settings (``chat.min_relevance=0.2``) may be
given with the ``chat.`` prefix.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse(spec: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in filter(None, spec.split(",")):
        key, _, value = part.partition("=")
        out[key.strip()] = float(value) if "." in value else int(value)
    return out


def main() -> None:
    from rich.console import Console

    from chatbot.evaluation.cache import IndexCache
    from chatbot.evaluation.datasets import load_dataset, select
    from chatbot.evaluation.metrics import mean
    from chatbot.evaluation.ours import OursSystem
    from chatbot.evaluation.scoring import score_retrieval
    from chatbot.evaluation.systems import Shared
    from chatbot.index.retriever import HybridRetriever
    from chatbot.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("settings", nargs="*", default=[""])
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_intermixed_args()

    base = Settings()
    dataset = load_dataset(args.dataset)
    items = select(dataset.items, limit=args.limit)
    shared = Shared(base, dataset, IndexCache(base.data_dir / "eval-cache"), Console(stderr=True))
    ours = OursSystem(shared)
    ours.prepare()
    assert ours.container is not None
    embed = ours.container.embed_model
    cache: dict[str, list[float]] = {}
    real = embed.get_query_embedding

    def cached(text: str) -> list[float]:
        if text not in cache:
            cache[text] = real(text)
        return cache[text]

    object.__setattr__(embed, "get_query_embedding", cached)
    for spec in args.settings or [""]:
        overrides = parse(spec)
        chat = {k[5:]: v for k, v in overrides.items() if k.startswith("chat.")}
        retrieval = {k: v for k, v in overrides.items() if not k.startswith("chat.")}
        ours.container.settings = base.model_copy(
            update={
                "retrieval": base.retrieval.model_copy(update=retrieval),
                "chat": base.chat.model_copy(update=chat),
            }
        )
        ours.container.__dict__["retriever"] = HybridRetriever(
            ours.container.store, embed, ours.container.settings.retrieval
        )
        started = time.perf_counter()
        scores = [score_retrieval(q, ours.retrieve(q, 10)) for q in items]
        names = ("doc_hit@1", "doc_hit@5", "mrr@10", "span_hit@5", "gate_refusal_accuracy")
        values = {n: mean(s[n] for s in scores) for n in names}
        shown = " ".join(f"{n}={'-' if v is None else f'{v:.3f}'}" for n, v in values.items())
        print(f"{spec or 'defaults':45s} {shown} ({time.perf_counter() - started:.0f} s)")
    ours.close()
    shared.cache.close()


if __name__ == "__main__":
    main()
