"""Personalisation lift with simulated users over the sample corpus (same run: off vs on).

    .venv/bin/python bench/personalisation.py [--llm fake|local] [--out reports/personalisation]

A thin wrapper over ``chatbot.evaluation.personalisation`` — the same code as
``chatbot eval data/samples --personalisation``. Embeddings are the real default model; the LLM
defaults to the fake (answers do not affect ranking, and the profile learns from retrieval and
citations), `--llm local` uses the real one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", choices=["fake", "local"], default="fake")
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "samples")
    parser.add_argument("--out", type=Path, default=None, help="write report.json/.md/.png here")
    args = parser.parse_args()

    from chatbot.evaluation.personalisation import evaluate_personalisation, markdown_table
    from chatbot.settings import Settings

    settings = Settings(data_dir=ROOT / "data", embedding={"mode": "local"})
    result, written = evaluate_personalisation(
        args.corpus,
        args.corpus / "questions.jsonl",
        settings,
        args.out,
        llm_mode=args.llm,
        progress=lambda m: print("..", m),
    )
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print()
    print(markdown_table(result))
    for path in written:
        print("wrote", path)
    print(f"\n{result['setup']['runtime_s']:.0f} s")


if __name__ == "__main__":
    main()
