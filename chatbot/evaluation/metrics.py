"""Metric functions: pure, per question, no I/O.

Answer text is normalised SQuAD-style for English (lower case, ASCII punctuation and the
articles a/an/the removed, split on white space) and CMRC-2018-style for Chinese (punctuation
and spaces removed, every CJK character one token, runs of other letters/digits one token each).
Retrieval metrics take the ranked source files of the retrieved chunks and the gold files.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCT = frozenset(string.punctuation)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CITATION = re.compile(r"\[\d{1,2}(?:\s*[,，]\s*\d{1,2})*\]")
_SPACE = re.compile(r"\s+")


# --------------------------------------------------------------------------- answer text


def strip_citations(text: str) -> str:
    """Remove ``[n]`` citation markers, which are not part of the answer."""
    return _CITATION.sub("", text)


def normalize_tokens(text: str, language: str) -> list[str]:
    """Tokens of ``text`` after the language's normalisation (see the module docstring)."""
    if language == "zh":
        return _zh_tokens(text)
    lowered = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCT)
    return _ARTICLES.sub(" ", lowered).split()


def _zh_tokens(text: str) -> list[str]:
    tokens: list[str] = []
    word: list[str] = []
    for ch in text.lower():
        if _is_punct(ch) or ch.isspace():
            _flush(word, tokens)
        elif _CJK.match(ch):
            _flush(word, tokens)
            tokens.append(ch)
        else:
            word.append(ch)
    _flush(word, tokens)
    return tokens


def _flush(word: list[str], tokens: list[str]) -> None:
    if word:
        tokens.append("".join(word))
        word.clear()


def _is_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch)[0] in "PS"


def token_f1(prediction: str, references: Sequence[str], language: str) -> float:
    """Best token-overlap F1 of the prediction against any reference."""
    pred = normalize_tokens(prediction, language)
    return max((_f1(pred, normalize_tokens(r, language)) for r in references), default=0.0)


def _f1(pred: list[str], ref: list[str]) -> float:
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_recall(prediction: str, references: Sequence[str], language: str) -> float:
    """Best share of a reference's tokens that the prediction contains (with multiplicity).

    Unlike F1 it does not penalise a correct answer for being a whole sentence: "Gamma- and
    delta-CoVs mainly infect birds." against "birds" scores 1.0 (F1 0.29). Adlakha et al.
    (2023, "Evaluating Correctness and Faithfulness of Instruction-Following Models for
    Question Answering") found it the lexical metric closest to human judgement of chat
    answers. A long answer can game it, so read it next to F1 and ``grounded``.
    """
    pred = Counter(normalize_tokens(prediction, language))
    best = 0.0
    for reference in references:
        ref = normalize_tokens(reference, language)
        if ref:
            best = max(best, sum((pred & Counter(ref)).values()) / len(ref))
    return best


def rouge_l(prediction: str, references: Sequence[str], language: str) -> float:
    """Best ROUGE-L F1 (longest common subsequence of tokens) against any reference."""
    pred = normalize_tokens(prediction, language)
    best = 0.0
    for reference in references:
        ref = normalize_tokens(reference, language)
        if not pred or not ref:
            best = max(best, float(pred == ref))
            continue
        lcs = lcs_length(pred, ref)
        if lcs:
            precision, recall = lcs / len(pred), lcs / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(len(a)·len(b)) time, O(len(b)) memory)."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def exact_match(prediction: str, references: Sequence[str], language: str) -> float:
    pred = normalize_tokens(prediction, language)
    return float(any(pred == normalize_tokens(r, language) for r in references))


def contains_answer(prediction: str, references: Sequence[str], language: str) -> float:
    """1 if the normalised tokens of some reference occur contiguously in the prediction."""
    pred = normalize_tokens(prediction, language)
    for reference in references:
        ref = normalize_tokens(reference, language)
        if ref and any(pred[i : i + len(ref)] == ref for i in range(len(pred) - len(ref) + 1)):
            return 1.0
    return 0.0


# --------------------------------------------------------------------------- retrieval


def hit_at_k(files: Sequence[str], gold: Iterable[str], k: int) -> float:
    """1 if any of the top-k retrieved chunks comes from a gold file."""
    gold_set = set(gold)
    return float(any(f in gold_set for f in files[:k]))


def mrr_at_k(files: Sequence[str], gold: Iterable[str], k: int) -> float:
    """1/rank of the first chunk from a gold file within the top k, else 0."""
    gold_set = set(gold)
    for rank, f in enumerate(files[:k], 1):
        if f in gold_set:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(files: Sequence[str], gold: Iterable[str], k: int) -> float:
    """Binary-relevance nDCG@k over the ranked list of distinct documents."""
    gold_set = set(gold)
    if not gold_set:
        return 0.0
    docs = list(dict.fromkeys(files))[:k]
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(docs) if d in gold_set)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(gold_set), k)))
    return dcg / ideal


def all_gold_at_k(files: Sequence[str], gold: Iterable[str], k: int) -> float:
    """1 if every gold file has a chunk in the top k."""
    return float(set(gold) <= set(files[:k]))


@dataclass(frozen=True)
class Span:
    file: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk as the metrics see it.

    ``start``/``end`` are offsets into the raw file, or ``None`` when the chunker's offsets do
    not map back to the raw file (e.g. parsed HTML).
    """

    file: str
    text: str
    start: int | None = None
    end: int | None = None


def squash(text: str) -> str:
    """Case-folded text with white space runs collapsed (for substring tests)."""
    return _SPACE.sub(" ", text).strip().casefold()


def passage_supports(
    passage: Passage,
    spans: Sequence[Span],
    contexts: Sequence[str] = (),
    reference: str | None = None,
    min_coverage: float = 0.5,
) -> bool:
    """Whether a passage holds the answer evidence.

    With answer spans: the passage is from the span's file and contains the span text, or its
    raw-file offsets cover at least ``min_coverage`` of the span. Without spans: it contains
    the reference answer or one of the reference contexts.
    """
    text = squash(passage.text)
    if spans:
        for span in spans:
            if span.file != passage.file:
                continue
            if squash(span.text) in text:
                return True
            if passage.start is not None and passage.end is not None and span.end > span.start:
                overlap = min(span.end, passage.end) - max(span.start, passage.start)
                if overlap >= min_coverage * (span.end - span.start):
                    return True
        return False
    needles = [squash(c) for c in contexts] + ([squash(reference)] if reference else [])
    return any(n and n in text for n in needles)


def span_hit_at_k(
    passages: Sequence[Passage],
    spans: Sequence[Span],
    contexts: Sequence[str],
    reference: str | None,
    k: int,
) -> float | None:
    """1 if a top-k passage supports the answer; ``None`` when there is no evidence label."""
    if not spans and not contexts:
        return None
    return float(any(passage_supports(p, spans, contexts, reference) for p in passages[:k]))


# --------------------------------------------------------------------------- aggregation


def grounding(
    answer: str, question: str, passages: Sequence[Passage], language: str
) -> float | None:
    """Share of the answer's tokens, other than the question's, that occur in the passages.

    A cheap faithfulness proxy (no judge model): words that are neither in the question nor
    in what the model was shown came from somewhere else, i.e. were made up or remembered.
    ``None`` when the answer has no such tokens (e.g. it only repeats the question).
    """
    asked = set(normalize_tokens(question, language))
    tokens = [t for t in normalize_tokens(strip_citations(answer), language) if t not in asked]
    if not tokens:
        return None
    shown = set(normalize_tokens(" ".join(p.text for p in passages), language))
    return sum(t in shown for t in tokens) / len(tokens)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not ``None`` (``None`` if there are none)."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..100), as numpy's default."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
