"""Language detection and tokenisation shared by ingestion (BM25, keywords) and queries."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from chatbot.spelling import respell

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
# "Jackie's" searches as "jackie" (the stemmer would keep "jackie'", which no plain word matches)
_POSSESSIVE = re.compile(r"'s$")

# A compact English stop-word list (function words only; content words stay searchable).
EN_STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren't",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "cannot",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "don't",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "s",
        "t",
        "can't",
        "isn't",
        "it's",
        "i'm",
        "you're",
        "we're",
        "they're",
        "i've",
        "you've",
        "what's",
        "there's",
        "may",
        "might",
        "must",
        "shall",
        "also",
        "however",
        "etc",
        "e.g",
        "i.e",
        "via",
        "per",
    ]
)
ZH_STOPWORDS = frozenset(
    [
        "的",
        "了",
        "和",
        "是",
        "在",
        "就",
        "都",
        "而",
        "及",
        "与",
        "着",
        "或",
        "一个",
        "没有",
        "我们",
        "你们",
        "他们",
        "它们",
        "这",
        "那",
        "之",
        "于",
        "也",
        "为",
        "以",
        "对",
        "把",
        "被",
        "让",
        "从",
        "到",
        "向",
        "上",
        "下",
        "中",
        "个",
        "吗",
        "呢",
        "吧",
        "啊",
        "么",
        "什么",
        "怎么",
        "如何",
        "哪",
        "哪些",
        "多少",
        "是否",
        "可以",
        "这个",
        "那个",
        "其",
        "并",
        "等",
        "将",
        "还",
        "又",
        "很",
        "更",
        "最",
        "因为",
        "所以",
        "但是",
        "如果",
        "我",
        "你",
        "他",
        "她",
        "它",
    ]
)


def cjk_ratio(text: str) -> float:
    """Share of CJK ideographs among the letters of ``text``."""
    sample = text[:4000]
    letters = sum(1 for ch in sample if ch.isalpha())
    return len(_CJK.findall(sample)) / letters if letters else 0.0


def detect_language(text: str) -> str:
    """ISO 639-1 code of the main language of ``text`` ("und" when there is nothing to tell)."""
    sample = text[:4000].strip()
    if not sample:
        return "und"
    if cjk_ratio(sample) > 0.3:
        return "zh"
    import py3langid

    lang, _score = py3langid.classify(sample)
    return str(lang)


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Porter stem of an English word (cached: the vocabulary is small)."""
    return str(_stemmer().stem(word))


def segment_chinese(text: str) -> list[str]:
    """Chinese words for search: jieba's search mode, stop words removed."""
    words = _jieba().cut_for_search(text)
    return [w for w in words if w.strip() and w not in ZH_STOPWORDS and _CJK.search(w)]


def tokenize(text: str) -> list[str]:
    """Search terms of ``text``: stemmed English words and segmented Chinese words."""
    lowered = text.lower()
    terms: list[str] = []
    pos = 0
    for match in _CJK_RUN.finditer(lowered):
        terms.extend(_latin_terms(lowered[pos : match.start()]))
        terms.extend(segment_chinese(match.group()))
        pos = match.end()
    terms.extend(_latin_terms(lowered[pos:]))
    return terms


def _latin_terms(text: str) -> list[str]:
    return [
        stem(_plain(w))
        for w in _WORD.findall(text)
        if w not in EN_STOPWORDS and (len(w) > 1 or w.isdigit())
    ]


def _plain(word: str) -> str:
    """A matched word with a straight apostrophe and without a possessive "'s"."""
    return _POSSESSIVE.sub("", word.replace("’", "'"))


def normalise_term(term: str) -> str:
    """The matching key of a keyword/topic/interest: lowercased, English words stemmed."""
    lowered = term.strip().lower()
    if _CJK.search(lowered):
        return lowered
    return " ".join(stem(w) for w in _WORD.findall(lowered))


def unmatched_words(question: str, texts: Iterable[str]) -> list[str]:
    """English words of ``question`` (4+ letters, not function words) that no text contains.

    A word counts as contained when its stem occurs, or a word one or two edits from it does
    (a misspelling the keyword search respells). Chinese and numbers are not checked.
    """
    present = Counter(t for text in texts for t in tokenize(text))
    missing: dict[str, str] = {}
    for word in _WORD.findall(question.lower()):
        plain = _plain(word)
        if plain in EN_STOPWORDS or len(plain) < 4 or not plain.isalpha():
            continue
        term = stem(plain)
        if term not in present:
            missing.setdefault(term, plain)
    respelt = respell(missing, present)
    return [word for term, word in missing.items() if term not in respelt]
