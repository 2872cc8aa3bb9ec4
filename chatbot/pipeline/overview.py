"""Questions about the knowledge base itself, answered from the document catalogue.

"What topics does this knowledge base cover?" names no topic, so passage retrieval can only
return some passage that happens to share a word. The catalogue knows the answer: which
documents the user may read, grouped by category. A question counts as one about the
collection only when every word of it is about asking, the assistant or the collection, so a
question that names anything else ("What topics does the budget rule cover?") is retrieved
as usual.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence

from chatbot.ports import CatalogueEntry

# Words a question about the collection is made of; the anchors must appear at least once.
_META = frozenset(
    [
        "a",
        "able",
        "about",
        "all",
        "an",
        "and",
        "answer",
        "answers",
        "any",
        "are",
        "areas",
        "area",
        "ask",
        "assistant",
        "available",
        "base",
        "be",
        "bot",
        "can",
        "chatbot",
        "collection",
        "contain",
        "contains",
        "content",
        "contents",
        "corpus",
        "could",
        "cover",
        "covered",
        "covers",
        "data",
        "database",
        "do",
        "docs",
        "document",
        "documents",
        "does",
        "else",
        "file",
        "files",
        "for",
        "from",
        "give",
        "handle",
        "has",
        "have",
        "help",
        "here",
        "how",
        "i",
        "in",
        "include",
        "includes",
        "info",
        "information",
        "is",
        "it",
        "kb",
        "kind",
        "kinds",
        "know",
        "knowledge",
        "knowledgebase",
        "library",
        "list",
        "main",
        "many",
        "me",
        "my",
        "of",
        "on",
        "other",
        "please",
        "questions",
        "question",
        "show",
        "site",
        "sort",
        "sorts",
        "source",
        "sources",
        "stuff",
        "subject",
        "subjects",
        "tell",
        "that",
        "the",
        "there",
        "these",
        "things",
        "thing",
        "this",
        "to",
        "topic",
        "topics",
        "type",
        "types",
        "us",
        "we",
        "what",
        "which",
        "with",
        "you",
        "your",
        "s",
        "re",
        "ll",
        "ve",
        "d",
        "t",
        "m",
        "don",
    ]  # the last line: what is left of "what's", "you're", "don't"
)
_ANCHORS = frozenset(
    [
        "areas",
        "cover",
        "covered",
        "covers",
        "collection",
        "corpus",
        "docs",
        "document",
        "documents",
        "files",
        "kb",
        "knowledge",
        "knowledgebase",
        "library",
        "site",
        "sources",
        "subjects",
        "topics",
        "help",
        "know",
        "questions",
    ]
)
_OPENERS = frozenset(
    ["what", "which", "list", "show", "tell", "how", "can", "could", "give", "do", "does"]
)
_WORD = re.compile(r"[a-z]+")
_ZH = re.compile(
    r"^(请问)?(你|您)(能|可以|会)(做|回答|解答|帮我?做?)(些)?(什么|哪些)(问题|事情?)?"
    r"|^(请问)?(这个)?(知识库|文档库|资料库|文档|资料)(里|中)?(都)?(有|包含|涵盖|覆盖|包括)"
    r"(哪些|什么)(内容|主题|话题|文档|资料|方面)?"
    r"|^(请问)?(你|您)(都)?(知道|了解)(些)?(什么|哪些)(内容|东西)?"
    r"|^(请问)?(你|您)?(有|能查到)(哪些|什么)(文档|资料|主题|话题)"
)
_ZH_END = re.compile(r"^[\s?？。！!吗呢啊呀]*$")


def is_overview_question(message: str) -> bool:
    """True for a short question about what the assistant knows, and nothing more specific."""
    text = message.strip().lower()
    if len(text) > 120:
        return False
    zh = _ZH.match(text)
    if zh:
        return bool(_ZH_END.match(text[zh.end() :]))
    words = _WORD.findall(text)
    if not words or len(words) > 16 or words[0] not in _OPENERS:
        return False
    if re.search(r"[0-9\u3400-\u9fff]", text):
        return False
    return all(w in _META for w in words) and any(w in _ANCHORS for w in words)


_MARKDOWN = re.compile(r"([\\`*_\[\]#|~])")
MAX_AREAS = 8
TITLES_PER_AREA = 3


def describe_collection(
    docs: Sequence[CatalogueEntry], language: str, texts: Mapping[str, str]
) -> str:
    """Markdown: how many documents, then each category with a few titles, user's language first.

    ``texts`` holds the localised phrases (``prompts/answer.yaml``, ``overview``): ``intro``,
    ``area``, ``more``, ``more_areas``, ``outro``, ``empty``, ``other``.
    """
    if not docs:
        return texts["empty"]
    areas: dict[str, list[CatalogueEntry]] = defaultdict(list)
    for doc in docs:
        areas[doc.category.strip()].append(doc)
    ordered = sorted(areas.items(), key=lambda kv: (-len(kv[1]), kv[0] == "", kv[0]))
    lines = [texts["intro"].format(documents=len(docs), areas=len(areas))]
    for name, members in ordered[:MAX_AREAS]:
        picked = sorted(members, key=lambda d: (d.language != language, not _telling(d.title)))
        titles = [_plain(d.title) for d in picked[:TITLES_PER_AREA]]
        if len(members) > TITLES_PER_AREA:
            titles.append(texts["more"].format(n=len(members) - TITLES_PER_AREA))
        label = _plain(name.replace("_", " ").replace("-", " ")) if name else texts["other"]
        if language == "en":
            label = label[:1].upper() + label[1:]
        lines.append(texts["area"].format(area=label, n=len(members), titles=" · ".join(titles)))
    if len(ordered) > MAX_AREAS:
        lines.append(texts["more_areas"].format(n=len(ordered) - MAX_AREAS))
    lines.append(texts["outro"])
    return "\n".join(lines)


def _telling(title: str) -> bool:
    """A title that says something ("Fixing a Flat Tyre"), unlike a bare file name ("faq")."""
    return len(title.split()) >= 2 or bool(re.search(r"[\u3400-\u9fff]{4}", title))


def _plain(text: str) -> str:
    """A title shown as text: markdown characters backslash-escaped (the UIs escape HTML)."""
    return _MARKDOWN.sub(r"\\\1", " ".join(text.split()))
