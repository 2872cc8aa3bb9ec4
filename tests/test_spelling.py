"""Typo tolerance of the keyword search (chatbot/spelling.py and the retriever)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from chatbot.domain import readable_acls
from chatbot.ports import RetrievalQuery
from chatbot.spelling import edit_distance, respell
from chatbot.text import tokenize, unmatched_words
from ingest.jobs import IngestJob


def test_edit_distance_counts_a_swap_as_one_edit_and_caps() -> None:
    assert edit_distance("influenza", "influenza", 2) == 0
    assert edit_distance("infleunza", "influenza", 2) == 1  # neighbours swapped
    assert edit_distance("carageenan", "carrageenan", 2) == 1
    assert edit_distance("zanamavir", "zanamivir", 1) == 1
    assert edit_distance("kitten", "sitting", 2) == 3  # capped at limit + 1
    assert edit_distance("abc", "abcdef", 1) == 2


def test_respell_only_terms_the_vocabulary_lacks() -> None:
    vocabulary = Counter(tokenize("Influenza and carrageenan; zanamivir trials; Aedes aegypti"))
    query = tokenize("Is carageenan better than Zanamavir against Influenze in trials?")
    assert respell(query, vocabulary) == {
        "carageenan": "carrageenan",
        "zanamavir": "zanamivir",
        "influenz": "influenza",
    }
    # known words, short words, numbers and Chinese words are left alone
    assert respell(tokenize("trials of aegypti 2019 flu 流感"), vocabulary) == {}
    # nothing close enough: a real unknown word is not forced onto another one
    assert respell(tokenize("caliber"), vocabulary) == {}


def test_short_words_need_their_first_letter_and_the_closest_commonest_wins() -> None:
    vocabulary = Counter({"bottl": 1, "cattl": 5, "battl": 3})
    assert respell(["mattl"], vocabulary) == {}  # one edit away, but not from its first letter
    assert respell(["battel"], vocabulary) == {"battel": "battl"}  # swap, length 6
    assert respell(["bettl"], vocabulary) == {"bettl": "battl"}  # battl (3) beats bottl (1)


def test_a_misspelt_question_finds_the_passage_by_keyword(container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "nasal.txt").write_text(
        "Nasal sprays\n\nA carrageenan nasal spray reduced colds in the trial.", encoding="utf-8"
    )
    for i, topic in enumerate(["gardening", "baking", "cycling", "sailing"]):
        (corpus / f"{topic}.txt").write_text(
            f"{topic.title()}\n\nThe {topic} spray: spray it, spray again, a spray a week ({i}).",
            encoding="utf-8",
        )
    IngestJob(
        store=container.store, embedder=container.embed_model, settings=container.settings.ingest
    ).run([corpus])
    result = container.retriever.retrieve(
        RetrievalQuery("what did the carageenan spray do?", tuple(readable_acls(None)), top_k=3)
    )
    nasal = [c for c in result.chunks if c.source.endswith("nasal.txt")]
    assert nasal and nasal[0].scores["bm25_rank"] == 1  # the respelt word is the rare match
    assert result.trace["respelt"] == {"carageenan": "carrageenan"}
    spelt_right = container.retriever.retrieve(
        RetrievalQuery("what did the carrageenan spray do?", tuple(readable_acls(None)), top_k=3)
    )
    assert "respelt" not in spelt_right.trace
    nasal = [c for c in spelt_right.chunks if c.source.endswith("nasal.txt")]
    assert nasal and nasal[0].scores["bm25_rank"] == 1


def test_possessives_search_as_the_plain_word() -> None:
    assert tokenize("Jackie's sister and Austria’s figures") == tokenize(
        "Jackie sister Austria figures"
    )
    assert tokenize("the authors' view, O'Neil") == ["author", "view", "o'neil"]


def test_unmatched_words_are_the_question_words_no_text_contains() -> None:
    texts = ["The Bullet of Light is a gun.", "Jackie and her brother; carrageenan sprays."]
    question = (
        "What caliber is the Bullet of Light? Does Jackie's carageenan help siblings in 2019?"
    )
    # function words, short words and numbers are not checked; possessives and plurals match
    # their plain word; a misspelling of a contained word counts as contained
    assert unmatched_words(question, texts) == ["caliber", "help", "siblings"]
    assert unmatched_words("光之子弹的口径是多少？", texts) == []
