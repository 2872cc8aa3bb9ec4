"""Atheris harness for the document readers: ``python fuzz_readers.py KIND CORPUS [libFuzzer
flags]``. The contract under test: a reader returns text or raises ``SkipFile``; anything else
(another exception, a hang past -timeout, resident memory past FUZZ_RSS_MB) is a crash.

libFuzzer's own ``-rss_limit_mb`` reads the peak RSS from ``getrusage``, which Linux carries
over from the parent across ``fork``/``exec`` (a 5 GB pytest process made every run "OOM" at
once), so run with ``-rss_limit_mb=0``: this harness checks its own current RSS instead.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path

import atheris

KIND = sys.argv[1] if len(sys.argv) > 1 else "pdf"
LIBRARY = {"pdf": "pypdf", "docx": "docx", "html": "trafilatura", "json": "json", "text": "json"}
with atheris.instrument_imports():
    from ingest import readers

    importlib.import_module(LIBRARY[KIND])  # coverage feedback from the parser library too

RSS_LIMIT = int(os.environ.get("FUZZ_RSS_MB", "3072")) * 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
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


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * PAGE


def main() -> None:
    corpus = Path(sys.argv[2])
    if KIND == "docx":
        import io

        import docx

        document = docx.Document()
        document.add_paragraph("Pump notes")
        buffer = io.BytesIO()
        document.save(buffer)
        SEEDS["docx"] = [buffer.getvalue()]
    for i, seed in enumerate(SEEDS[KIND]):
        (corpus / f"seed{i}").write_bytes(seed)
    suffix = SUFFIX[KIND]
    alternative = ".jsonl" if KIND == "json" else ".txt" if KIND == "text" else suffix
    path = Path(f"/fuzzed{suffix}")
    runs = [0]

    def one(data: bytes) -> None:
        name = path if not data or data[0] % 2 == 0 else path.with_suffix(alternative)
        with contextlib.suppress(readers.SkipFile):
            readers.parse_bytes(data, name)
        runs[0] += 1
        if runs[0] % 50 == 0 and _rss() > RSS_LIMIT:
            raise MemoryError(f"resident memory {_rss() >> 20} MB after {len(data)} input bytes")

    atheris.Setup([sys.argv[0], str(corpus), *sys.argv[3:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
