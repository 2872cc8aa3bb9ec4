import itertools

from chatbot.fakes import HashEmbedding
from ingest.chunking import chunk_text, split_sentences

count = HashEmbedding().count_tokens


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


def test_english_sentences() -> None:
    assert sentences("Ask Dr. Who? Nope. It is 3.5 km away! Really.\n\nNew paragraph") == [
        "Ask Dr. Who?",
        "Nope.",
        "It is 3.5 km away!",
        "Really.",
        "New paragraph",
    ]


def test_chinese_sentences_split_without_spaces() -> None:
    text = "番茄需要充足的阳光。每天浇水吗？不需要！土壤要保持湿润；但不能积水"
    assert sentences(text) == [
        "番茄需要充足的阳光。",
        "每天浇水吗？",
        "不需要！",
        "土壤要保持湿润；",
        "但不能积水",
    ]


def test_chunks_respect_budget_keep_offsets_and_overlap() -> None:
    text = " ".join(f"Sentence number {i} talks about tomatoes and sun." for i in range(60))
    text += "\n\n" + "".join(f"第{i}句话讲的是自行车链条的保养。" for i in range(60))
    chunks = chunk_text(text, max_tokens=50, overlap_tokens=12, count=count)
    assert len(chunks) > 10
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert count([c.text])[0] <= 50
    # adjacent chunks overlap by whole sentences, and everything is covered
    assert any(b.start < a.end for a, b in itertools.pairwise(chunks))
    covered = {i for c in chunks for i in range(c.start, c.end)}
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_over_long_sentence_is_cut() -> None:
    text = "，".join(["很长的句子没有句号"] * 200)
    chunks = chunk_text(text, max_tokens=40, overlap_tokens=0, count=count)
    assert len(chunks) > 5 and all(count([c.text])[0] <= 40 for c in chunks)


def test_empty_text_gives_no_chunks() -> None:
    assert chunk_text("   \n ", max_tokens=50, overlap_tokens=5, count=count) == []
