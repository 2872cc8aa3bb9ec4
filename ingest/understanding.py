"""Content understanding: keywords per chunk and topics per document.

Keywords are scored TF-IDF style inside the document (a term frequent in this chunk but not in
every chunk of the document scores high), with bigrams for English phrases; Chinese uses jieba's
segmentation. Keywords are kept readable (unstemmed surface forms) because the profile shows
them to users ("you often ask about tomato pruning").
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence

from chatbot.text import _CJK_RUN, EN_STOPWORDS, segment_chinese, stem

_CLAUSE = re.compile(r'[.,;:!?()\[\]"/\n]+')
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’-]{2,}")
_GENERIC = frozenset(
    [
        "also",
        "use",
        "used",
        "using",
        "make",
        "made",
        "many",
        "much",
        "well",
        "way",
        "ways",
        "one",
        "two",
        "three",
        "first",
        "second",
        "new",
        "good",
        "like",
        "get",
        "got",
        "need",
        "needs",
        "take",
        "takes",
        "often",
        "every",
        "even",
        "just",
        "still",
        "since",
        "per",
        "within",
        "without",
        "around",
        "another",
        "usually",
        "example",
        "important",
        "different",
        "however",
        "should",
        "could",
        "would",
    ]
)


def candidate_terms(text: str) -> list[str]:
    """Readable candidate keywords: English words and bigrams, Chinese words (len >= 2)."""
    terms: list[str] = []
    for run in _CJK_RUN.findall(text):
        terms.extend(w for w in segment_chinese(run) if len(w) >= 2)
    for clause in _CLAUSE.split(text):
        words = [w.lower().strip("'’-") for w in _WORD.findall(clause)]
        content = [w if (w not in EN_STOPWORDS and w not in _GENERIC) else "" for w in words]
        terms.extend(w for w in content if w)
        terms.extend(f"{a} {b}" for a, b in itertools.pairwise(content) if a and b)
    return terms


def _key(term: str) -> str:
    return " ".join(stem(w) for w in term.split()) if term.isascii() else term


def chunk_keywords(chunks: Sequence[str], top_n: int) -> list[list[str]]:
    """Top keywords of each chunk, scored against the other chunks of the same document."""
    if top_n <= 0:
        return [[] for _ in chunks]
    per_chunk = [Counter(_key_surface(candidate_terms(c))) for c in chunks]
    df: Counter[tuple[str, str]] = Counter()
    total: Counter[tuple[str, str]] = Counter()
    for counts in per_chunk:
        df.update(counts.keys())
        total.update(counts)
    # a phrase is a keyword only if the document repeats it
    for counts in per_chunk:
        for term in [t for t in counts if " " in t[1] and total[t] < 2]:
            del counts[term]
    n = len(chunks)
    result = []
    for counts in per_chunk:
        scored = []
        for (key, surface), tf in counts.items():
            idf = math.log(1 + (n + 1) / (df[(key, surface)] + 0.5))
            bonus = 1.2 if " " in surface else 1.0
            scored.append((tf * idf * bonus, surface))
        scored.sort(key=lambda s: (-s[0], s[1]))
        seen: set[str] = set()
        picked: list[str] = []
        for _score, surface in scored:
            parts = _key(surface).split()
            if _key(surface) in seen or (len(parts) == 1 and parts[0] in seen):
                continue
            seen.add(_key(surface))
            seen.update(parts)
            picked.append(surface)
            if len(picked) == top_n:
                break
        result.append(picked)
    return result


def _key_surface(terms: list[str]) -> list[tuple[str, str]]:
    return [(_key(t), t) for t in terms]


def document_topics(keywords: Sequence[Sequence[str]], title: str, top_n: int = 6) -> list[str]:
    """Topics of a document: keywords recurring across its chunks, title words first."""
    votes: dict[str, float] = {}
    for chunk_kw in keywords:
        for rank, kw in enumerate(chunk_kw):
            votes[kw] = votes.get(kw, 0.0) + 1.0 / (1 + rank)
    title_terms = set(candidate_terms(title))
    for kw in list(votes):
        if kw in title_terms:
            votes[kw] += 2.0
    for term in title_terms:
        votes[term] = votes.get(term, 0.0) + 1.0
    return sorted(votes, key=lambda k: (-votes[k], k))[:top_n]
