"""Atheris harness for the document readers: ``python fuzz_readers.py KIND CORPUS [libFuzzer
flags]``. The contract under test: a reader returns text or raises ``SkipFile``; anything else
(another exception, a hang past -timeout, memory past -rss_limit_mb) is a crash."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from ingest import readers

SEEDS = {
    "pdf": [
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    ],
    "docx": [],
    "html": [
        b"<html><head><title>t</title></head><body><main><p>Pump notes here.</p></main></body></html>"
    ],
    "json": [b'{"title": "t", "body": ["a", {"b": null}]}', b'{"a": 1}\n{"b": 2}\n'],
    "text": [b"# Title\n\nSome text.\n", "水泵".encode("gb18030")],
}
SUFFIX = {"pdf": ".pdf", "docx": ".docx", "html": ".html", "json": ".json", "text": ".md"}


def main() -> None:
    kind, corpus = sys.argv[1], Path(sys.argv[2])
    if kind == "docx":
        import io

        import docx

        document = docx.Document()
        document.add_paragraph("Pump notes")
        buffer = io.BytesIO()
        document.save(buffer)
        SEEDS["docx"] = [buffer.getvalue()]
    for i, seed in enumerate(SEEDS[kind]):
        (corpus / f"seed{i}").write_bytes(seed)
    suffix = SUFFIX[kind]
    alternative = ".jsonl" if kind == "json" else ".txt" if kind == "text" else suffix
    path = Path(f"/fuzzed{suffix}")

    def one(data: bytes) -> None:
        name = path if not data or data[0] % 2 == 0 else path.with_suffix(alternative)
        with contextlib.suppress(readers.SkipFile):
            readers.parse_bytes(data, name)

    atheris.Setup([sys.argv[0], str(corpus), *sys.argv[3:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
