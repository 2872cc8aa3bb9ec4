"""Typo tolerance for keyword search: respell query terms from the retrieved passages' words.

A misspelt search term ("Influenze", "carageenan", "Zanamavir") matches no passage, so BM25
loses exactly the rare word that would have found the answer. The vector search, which reads
word pieces, usually still brings passages spelling it right among its candidates. A query
term that occurs in none of the candidates is therefore respelt to the candidates' closest
word (one edit for words of 5-7 letters, two from 8), and the keyword search runs again with
both spellings.

The vocabulary is only the candidates' own words, which the reader's ACL already filtered:
a respelling can never reveal a word of a document the reader may not see.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

MIN_LENGTH = 5
TWO_EDITS_FROM = 8


def respellable(term: str) -> bool:
    """Only English words of ``MIN_LENGTH`` letters or more are ever respelt."""
    return len(term) >= MIN_LENGTH and term.isascii() and term.isalpha()


def respell(terms: Iterable[str], vocabulary: Counter[str]) -> dict[str, str]:
    """``{query term: closest vocabulary word}`` for the alphabetic terms the vocabulary lacks."""
    out: dict[str, str] = {}
    for term in dict.fromkeys(terms):
        if term in vocabulary or not respellable(term):
            continue
        limit = 2 if len(term) >= TWO_EDITS_FROM else 1
        best: tuple[int, int, str] | None = None
        for word, count in vocabulary.items():
            if abs(len(word) - len(term)) > limit or (limit == 1 and word[0] != term[0]):
                continue
            distance = edit_distance(term, word, limit)
            if distance <= limit and (best is None or (distance, -count, word) < best):
                best = (distance, -count, word)
        if best is not None:
            out[term] = best[2]
    return out


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap of two neighbours is one edit), capped.

    Returns ``limit + 1`` as soon as the distance must exceed ``limit``.
    """
    if a == b:
        return 0
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return min(previous[-1], limit + 1)
