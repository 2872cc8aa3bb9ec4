"""Personalisation lift with simulated users over the sample corpus (same run: off vs on).

    .venv/bin/python bench/personalisation.py [--llm fake|local]

Embeddings are the real default model; the LLM defaults to the fake (answers do not affect
ranking, and the profile learns from retrieval and citations), `--llm local` uses the real one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", choices=["fake", "local"], default="fake")
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "samples")
    args = parser.parse_args()

    from chatbot.container import Container
    from chatbot.evaluation.personalisation import markdown_table, run
    from chatbot.settings import Settings
    from ingest.jobs import IngestJob

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "models").symlink_to((ROOT / "data" / "models").resolve(), target_is_directory=True)
        settings = Settings(data_dir=data, llm={"mode": args.llm}, embedding={"mode": "local"})
        container = Container(settings)
        IngestJob(
            store=container.store, embedder=container.embed_model, settings=settings.ingest
        ).run([args.corpus])  # type: ignore[arg-type]
        result = run(
            container,
            args.corpus,
            args.corpus / "questions.jsonl",
            progress=lambda m: print("..", m),
        )
        container.close()
    print(json.dumps(result, indent=2))
    print()
    print(markdown_table(result))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
