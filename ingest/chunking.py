"""Sentence-aware chunking for English and Chinese, measured in embedding-model wordpieces.

Sentences end at ``. ! ?`` followed by space (English) or at ``。！？；`` (Chinese, no spaces),
and at paragraph breaks. Sentences are packed into chunks up to the token budget with an overlap
of whole trailing sentences; an over-long sentence is cut at clause marks, then hard-cut.
Every chunk keeps its character offsets in the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TokenCounter = Callable[[Sequence[str]], list[int]]

# A sentence ends after terminal punctuation (plus closing quotes/brackets) or a blank line.
_SENTENCE_END = re.compile(
    r"""(?:[.!?]+["'”’)\]]*(?=\s)|[。！？；]+["'”’）)\]」』]*|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)]|#)\s))"""
)
_LAST_WORD = re.compile(r"(\w+)\.$")
_ABBREVIATIONS = frozenset(
    [
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "st",
        "vs",
        "etc",
        "eg",
        "ie",
        "fig",
        "no",
        "approx",
        "dept",
        "est",
        "jr",
        "sr",
    ]
)
_CLAUSE_END = re.compile(r"[,;:，、：]\s*")


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int
    end: int


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (whitespace trimmed, empties dropped)."""
    spans, pos = [], 0
    for match in _SENTENCE_END.finditer(text):
        word = _LAST_WORD.search(text, max(0, match.start() - 12), match.start() + 1)
        if word and word.group(1).lower() in _ABBREVIATIONS:
            continue
        spans.append((pos, match.end()))
        pos = match.end()
    spans.append((pos, len(text)))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s[1] > s[0]]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cut_long(
    text: str, span: tuple[int, int], limit: int, count: TokenCounter
) -> list[tuple[int, int]]:
    """Split one over-long sentence at clause marks, then by characters."""
    start, end = span
    pieces, pos = [], start
    for match in _CLAUSE_END.finditer(text, start, end):
        pieces.append((pos, match.end()))
        pos = match.end()
    pieces.append((pos, end))
    out: list[tuple[int, int]] = []
    for a, b in pieces:
        if count([text[a:b]])[0] <= limit:
            out.append((a, b))
            continue
        tokens = count([text[a:b]])[0]
        step = max(1, int((b - a) * limit / max(tokens, 1) * 0.9))
        out.extend((i, min(i + step, b)) for i in range(a, b, step))
    return [s for s in (_trim(text, a, b) for a, b in out) if s[1] > s[0]]


def chunk_text(
    text: str, *, max_tokens: int, overlap_tokens: int, count: TokenCounter
) -> list[Chunk]:
    """Pack sentences into chunks of at most ``max_tokens`` wordpieces."""
    spans = split_sentences(text)
    if not spans:
        return []
    lengths = count([text[a:b] for a, b in spans])
    units: list[tuple[int, int, int]] = []
    for (a, b), n in zip(spans, lengths, strict=True):
        if n <= max_tokens:
            units.append((a, b, n))
        else:
            parts = _cut_long(text, (a, b), max_tokens, count)
            units.extend(
                (pa, pb, n2)
                for (pa, pb), n2 in zip(
                    parts, count([text[pa:pb] for pa, pb in parts]), strict=True
                )
            )

    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, used = i, 0
        while j < len(units) and (j == i or used + units[j][2] <= max_tokens):
            used += units[j][2]
            j += 1
        start, end = units[i][0], units[j - 1][1]
        chunks.append(Chunk(text[start:end], start, end))
        if j >= len(units):
            break
        # step back over whole sentences to overlap, but always make progress
        k, back = j, 0
        while k - 1 > i and back + units[k - 1][2] <= overlap_tokens:
            k -= 1
            back += units[k][2]
        i = k
    return chunks
