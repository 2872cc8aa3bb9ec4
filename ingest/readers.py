"""Readers: one file in, plain text and a title out, or a clear reason to skip it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPPORTED = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".json", ".jsonl")


class SkipFile(Exception):
    """The file cannot be ingested; the message says why."""


@dataclass(frozen=True)
class ParsedFile:
    text: str
    title: str


def read_file(path: Path, *, max_bytes: int) -> ParsedFile:
    """Parse a supported file; raises ``SkipFile`` with a reason for anything unusable."""
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise SkipFile(f"unsupported file type {suffix or '(none)'}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SkipFile(f"unreadable: {exc.strerror or exc}") from exc
    if size == 0:
        raise SkipFile("empty file")
    if size > max_bytes:
        raise SkipFile(f"too large: {size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB limit")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SkipFile(f"unreadable: {exc.strerror or exc}") from exc
    return parse_bytes(data, path)


def parse_bytes(data: bytes, path: Path) -> ParsedFile:
    """Parse file content of the type ``path``'s suffix names; only ever raises ``SkipFile``.

    Parser libraries raise whatever they like on hostile input (``zlib.error`` from a damaged
    DOCX, ``RecursionError`` from deeply nested JSON, found by the fuzzer in tests/security);
    every such failure becomes a SkipFile with the reason.
    """
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise SkipFile(f"unsupported file type {path.suffix or '(none)'}")
    kind = path.suffix.lower().lstrip(".").upper()
    try:
        parsed = reader(data, path)
        text = _normalise(parsed.text)
    except SkipFile:
        raise
    except RecursionError as exc:
        raise SkipFile(f"corrupt {kind}: nested too deeply") from exc
    except MemoryError as exc:
        raise SkipFile(f"corrupt {kind}: too large when parsed") from exc
    except Exception as exc:
        raise SkipFile(f"corrupt {kind}: {type(exc).__name__}: {exc}"[:300]) from exc
    if not text.strip():
        raise SkipFile("no text content")
    return ParsedFile(text=text, title=(parsed.title or path.stem).strip()[:300])


def _decode_text(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise SkipFile("binary content (NUL bytes) in a text file")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SkipFile("not valid UTF-8 or GB18030 text")
    sample = text[:8192]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t\f")
    if sample and controls / len(sample) > 0.02:
        raise SkipFile("binary content (control characters) in a text file")
    return text


def _first_heading(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip().lstrip("#").strip()
        if stripped:
            return stripped[:200]
    return ""


def _read_text(data: bytes, path: Path) -> ParsedFile:
    text = _decode_text(data)
    return ParsedFile(text, _first_heading(text))


def _read_markdown(data: bytes, path: Path) -> ParsedFile:
    text = _decode_text(data)
    text = re.sub(r"^---\n.*?\n---\n", "", text, flags=re.S)  # front matter
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)  # images -> alt text
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links -> link text
    return ParsedFile(text, _first_heading(text))


def _read_html(data: bytes, path: Path) -> ParsedFile:
    import trafilatura

    html = _decode_text(data)
    text = trafilatura.extract(
        html, include_comments=False, include_tables=True, favor_precision=True, deduplicate=True
    )
    meta = trafilatura.extract_metadata(html)
    title = (meta.title if meta is not None and meta.title else "") or ""
    if not text:
        raise SkipFile("no main text found in HTML")
    return ParsedFile(text, title or _first_heading(text))


def _read_pdf(data: bytes, path: Path) -> ParsedFile:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise SkipFile("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str(reader.metadata.get("/Title") or "") if reader.metadata else ""
    except SkipFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise SkipFile(f"corrupt PDF: {exc}") from exc
    return ParsedFile("\n\n".join(pages), title)


DOCX_MAX_INFLATED = 200_000_000  # bytes the archive may expand to (zip bombs)


def _read_docx(data: bytes, path: Path) -> ParsedFile:
    import io
    import zipfile

    import docx

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            # zipfile never inflates a member past its declared size, so this bound holds
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise SkipFile(f"corrupt DOCX: {exc}") from exc
    if inflated > DOCX_MAX_INFLATED:
        limit = DOCX_MAX_INFLATED / 1e6
        raise SkipFile(f"DOCX expands to {inflated / 1e6:.0f} MB (limit {limit:.0f} MB)")
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise SkipFile(f"corrupt DOCX: {exc}") from exc
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    title = document.core_properties.title or ""
    return ParsedFile("\n\n".join(parts), title)


def _record_to_text(value: Any, depth: int = 0) -> str:
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            rendered = _record_to_text(item, depth + 1)
            lines.append(f"{key}: {rendered}" if "\n" not in rendered else f"{key}:\n{rendered}")
        return "\n".join(lines)
    if isinstance(value, list):
        return "\n\n".join(_record_to_text(v, depth + 1) for v in value)
    return "" if value is None else str(value)


def _read_json(data: bytes, path: Path) -> ParsedFile:
    try:
        value = json.loads(_decode_text(data))
    except json.JSONDecodeError as exc:
        raise SkipFile(f"invalid JSON: {exc.msg} at line {exc.lineno}") from exc
    title = value.get("title", "") if isinstance(value, dict) else ""
    return ParsedFile(_record_to_text(value), str(title))


def _read_jsonl(data: bytes, path: Path) -> ParsedFile:
    records = []
    for number, line in enumerate(_decode_text(data).splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise SkipFile(f"invalid JSON on line {number}: {exc.msg}") from exc
    return ParsedFile("\n\n".join(_record_to_text(r) for r in records), "")


# Characters that only hide text (Unicode tags, zero-width space, word joiner, BOM, bidi
# overrides) are dropped at ingestion: they carry invisible prompt injections (guide LLM01).
_INVISIBLE = re.compile(
    "[\U000e0000-\U000e007f\u200b\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069]"
)


def _normalise(text: str) -> str:
    text = _INVISIBLE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


_READERS: dict[str, Callable[[bytes, Path], ParsedFile]] = {
    ".txt": _read_text,
    ".md": _read_markdown,
    ".markdown": _read_markdown,
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
    ".docx": _read_docx,
    ".json": _read_json,
    ".jsonl": _read_jsonl,
}
