"""Citations: map [n] markers to chunks, quote the supporting span, recognise refusals."""

from __future__ import annotations

import re
from collections.abc import Sequence

from chatbot.domain import Citation, RetrievedChunk
from chatbot.text import tokenize

_MARKER = re.compile(r"\[(\d{1,2})(?:\s*[,，]\s*(\d{1,2}))*\]")
_SENTENCE = re.compile(r"[^.!?。！？；\n]+[.!?。！？；]?")
_REFUSAL = re.compile(
    r"\b(i don'?t know|i do not know|not (mentioned|provided|specified|stated) in|"
    r"(the )?(given |provided )?(sources?|context|documents?|information) (does not|doesn'?t|do not|don'?t) "
    r"(contain|mention|say|provide|include|specify))\b"
    r"|不知道|没有(提到|提及|相关信息|说明)|无法(回答|确定)",
    re.I,
)


def is_refusal(answer: str) -> bool:
    return bool(_REFUSAL.search(answer[:300]))


def cited_numbers(answer: str) -> list[int]:
    numbers: list[int] = []
    for match in _MARKER.finditer(answer):
        for n in re.findall(r"\d+", match.group(0)):
            if int(n) not in numbers:
                numbers.append(int(n))
    return numbers


def best_quote(chunk_text: str, answer: str, max_chars: int = 300) -> str:
    """The sentence of the chunk that shares the most terms with the answer."""
    answer_terms = set(tokenize(_MARKER.sub("", answer)))
    best, best_score = "", -1.0
    for sentence in _SENTENCE.findall(chunk_text):
        terms = set(tokenize(sentence))
        if not terms:
            continue
        score = len(terms & answer_terms) / (len(terms) ** 0.5)
        if score > best_score:
            best, best_score = sentence.strip(), score
    return (best or chunk_text.strip())[:max_chars]


def says_nothing(answer: str) -> bool:
    """True when the answer is only citation markers, e.g. "[1] [2]".

    A source title alone is not treated as empty: it may be the answer ("What is the official
    name?" -> the page's title).
    """
    return not re.search(r"\w", _MARKER.sub(" ", answer))


def closest_passage(
    answer: str, question: str, chunks: Sequence[RetrievedChunk], max_chars: int = 400
) -> tuple[int, str]:
    """The source the answer cited first (else source 1) and its passage closest to the question.

    The passage starts at the sentence sharing the most terms with the question and runs on
    for up to ``max_chars`` (cut at a word), so a heading like "The requirements were:" keeps
    the list after it.
    """
    numbers = [n for n in cited_numbers(answer) if 1 <= n <= len(chunks)] or [1]
    text = chunks[numbers[0] - 1].text.strip()
    start = text.find(best_quote(text, question, max_chars=len(text)))
    passage = text[max(start, 0) :]
    if len(passage) > max_chars:
        passage = passage[:max_chars].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
    return numbers[0], " ".join(passage.split())


def extract_citations(answer: str, chunks: Sequence[RetrievedChunk]) -> tuple[Citation, ...]:
    """Citations for the [n] markers in the answer.

    If the model cited nothing, the answer is attributed to the source it overlaps most
    (never for refusals).
    """
    if is_refusal(answer):
        return ()
    numbers = [n for n in cited_numbers(answer) if 1 <= n <= len(chunks)]
    if not numbers and chunks:
        terms = set(tokenize(answer))
        overlaps = [len(terms & set(tokenize(c.text))) for c in chunks]
        if max(overlaps, default=0) >= 2:
            numbers = [overlaps.index(max(overlaps)) + 1]
    return tuple(
        Citation(
            number=n,
            chunk_id=chunks[n - 1].chunk_id,
            doc_id=chunks[n - 1].doc_id,
            source=chunks[n - 1].source,
            title=chunks[n - 1].title,
            quote=best_quote(chunks[n - 1].text, answer),
        )
        for n in numbers
    )
