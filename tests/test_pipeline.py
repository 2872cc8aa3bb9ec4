"""Pipeline stages with fakes: history rewrite, hybrid retrieval with ownership, citations."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from chatbot.domain import HistoryTurn, RetrievedChunk, Understanding, readable_acls
from chatbot.pipeline.citations import (
    cited_numbers,
    closest_passage,
    extract_citations,
    is_refusal,
    says_nothing,
)
from chatbot.pipeline.understand import build_understand, needs_rewrite
from chatbot.prompt_loader import PromptError, load_prompt
from tests.conftest import ROOT

PROMPTS = ROOT / "prompts"


def scripted(*replies: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(content=r) for r in replies]))


def test_every_prompt_loads_and_declares_its_variables(tmp_path: Path) -> None:
    for name in ("understand", "answer"):
        prompt = load_prompt(name, PROMPTS)
        assert prompt.version >= 1 and prompt.variables
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nversion: 1\nvariables: [a]\nmessages:\n  - role: system\n    content: '{b}'\n"
    )
    with pytest.raises(PromptError, match="declare"):
        load_prompt("bad", tmp_path)


def test_follow_up_is_rewritten_with_history() -> None:
    llm = scripted("How often should I lubricate a bike chain?")
    understand = build_understand(llm, load_prompt("understand", PROMPTS))
    history = [
        HistoryTurn("user", "How do I clean a bike chain?"),
        HistoryTurn("assistant", "Use a degreaser and a brush [1]."),
    ]
    u = understand.invoke({"message": "and how often should I oil it?", "history": history})
    assert u == Understanding("How often should I lubricate a bike chain?", "en", "question", True)


def test_first_message_and_chitchat_skip_the_model() -> None:
    llm = scripted()  # any call would raise StopIteration
    understand = build_understand(llm, load_prompt("understand", PROMPTS))
    assert (
        understand.invoke({"message": "What is a sinking fund?", "history": []}).rewritten is False
    )
    hello = understand.invoke({"message": "你好！", "history": []})
    assert hello.intent == "chitchat" and hello.language == "zh"
    zh = understand.invoke({"message": "番茄幼苗什么时候移栽到室外？", "history": []})
    assert zh.language == "zh"


def test_needs_rewrite_only_for_short_dependent_follow_ups() -> None:
    history = [HistoryTurn("user", "x")]
    assert needs_rewrite("what about it?", history)
    assert not needs_rewrite("what about it?", [])
    assert not needs_rewrite(
        "What is the recommended tyre pressure for a road bike with 25 mm tyres?", history
    )


def _chunk(i: int, text: str) -> RetrievedChunk:
    return RetrievedChunk(f"c{i}", f"d{i}", text, f"/docs/{i}.md", f"Doc {i}", "en")


def test_citations_map_numbers_to_chunks_with_quotes() -> None:
    chunks = [
        _chunk(1, "Clean the chain every 300 km. Use a degreaser."),
        _chunk(2, "Lubricate after rain. One drop per roller is enough."),
    ]
    answer = "Clean it every 300 km [1] and put one drop on each roller [2][9]."
    citations = extract_citations(answer, chunks)
    assert [(c.number, c.chunk_id) for c in citations] == [(1, "c1"), (2, "c2")]
    assert citations[0].quote == "Clean the chain every 300 km."
    assert "One drop per roller" in citations[1].quote
    assert cited_numbers("see [1, 3] and [2]") == [1, 3, 2]


def test_uncited_answer_is_attributed_and_refusals_cite_nothing() -> None:
    chunks = [_chunk(1, "Tomatoes need eight hours of sun."), _chunk(2, "Chains need lube.")]
    assert [c.chunk_id for c in extract_citations("Chains need lube often.", chunks)] == ["c2"]
    assert extract_citations("I don't know.", chunks) == ()
    assert is_refusal("The context does not mention the head librarian.")
    assert is_refusal("我不知道。") and not is_refusal("Tomatoes need sun [1].")


def test_hybrid_retrieval_never_returns_other_users_private_chunks(container) -> None:  # type: ignore[no-untyped-def]
    from ingest.jobs import IngestJob

    docs = Path(container.settings.data_dir) / "docs"
    (docs / "alice").mkdir(parents=True)
    (docs / "public.md").write_text("# Chains\n\nLubricate the bike chain every 300 km.")
    (docs / "alice" / "secret.md").write_text(
        "# Alice\n\nCANARY-alice: lubricate the chain with olive oil."
    )
    job = IngestJob(
        store=container.store, embedder=container.embed_model, settings=container.settings.ingest
    )
    job.run([docs / "public.md"])
    job.run([docs / "alice"], user="alice-id")
    from chatbot.ports import RetrievalQuery

    bob = container.retriever.retrieve(
        RetrievalQuery("how to lubricate the chain", tuple(readable_acls("bob-id")))
    )
    assert bob.chunks and all("CANARY" not in c.text for c in bob.chunks)
    alice = container.retriever.retrieve(
        RetrievalQuery("lubricate chain olive oil", tuple(readable_acls("alice-id")))
    )
    assert any("CANARY-alice" in c.text for c in alice.chunks)
    assert alice.trace["selected"] and "rrf" in alice.trace["selected"][0]


def test_replies_without_words_and_the_passage_shown_instead() -> None:
    chunks = [
        _chunk(
            1,
            "Intro text about tools. The tool had the following requirements: it must run "
            "offline, it must be fast, and it must log every step.",
        ),
        _chunk(2, "Unrelated."),
    ]
    assert says_nothing("[1] [2]") and says_nothing(" [1], [2]. ")
    assert not says_nothing("Offline [1]") and not says_nothing("是 [1]")
    # a title can be the answer (CMRC: the official name of a tournament is its page's title)
    assert not says_nothing("Doc 2 [2]") and not says_nothing("香港公开羽毛球锦标赛")
    number, passage = closest_passage("[1] [2]", "What were the requirements of the tool?", chunks)
    assert number == 1
    assert passage.startswith("The tool had the following requirements:")
    assert passage.endswith("log every step."), "the list after the heading is kept"
    assert closest_passage("[2]", "requirements?", chunks)[0] == 2, "the source the model named"
    long_number, long_passage = closest_passage("[1]", "tools", [_chunk(1, "tools " * 200)])
    assert long_number == 1 and len(long_passage) <= 401 and long_passage.endswith("…")


@pytest.mark.parametrize(
    "message",
    [
        "What topics does this knowledge base cover?",
        "What can you help me with?",
        "How many documents do you have?",
        "What's in the knowledge base?",
        "What kind of questions can you answer?",
        "list your sources",
        "知识库里有哪些内容？",
        "你能回答什么问题",
    ],
)
def test_questions_about_the_collection_are_recognised(message: str) -> None:
    from chatbot.pipeline.understand import classify

    assert classify(message) == "overview"


@pytest.mark.parametrize(
    "message",
    [
        "What topics does the budget rule cover?",
        "What do you know about compost?",
        "Which documents mention tyres?",
        "What are the documents required for a mortgage?",
        "What is step 5?",
        "What is this about?",
        "你知道什么是复利吗？",
        "知识库里有哪些关于自行车的文档？",
    ],
)
def test_questions_that_name_something_else_are_not(message: str) -> None:
    from chatbot.pipeline.understand import classify

    assert classify(message) == "question"


def test_the_collection_overview_groups_titles_and_prefers_the_users_language() -> None:
    from dataclasses import dataclass

    from chatbot.pipeline.overview import describe_collection
    from chatbot.prompt_loader import load_prompt

    @dataclass
    class Doc:
        title: str
        category: str
        language: str

    texts = load_prompt("answer", Path(__file__).parents[1] / "prompts").extras["overview"]
    docs = [Doc("faq", "cycling", "en"), Doc("自行车刹车", "cycling", "zh")]
    docs += [Doc(f"Tyre guide {i}", "cycling", "en") for i in range(4)]
    docs += [Doc("Compost *now* [click](http://x)", "", "en")]
    en = describe_collection(docs, "en", texts["en"])
    assert en.splitlines()[0] == "I answer from 7 documents, in these areas:"
    cycling = en.splitlines()[1]
    assert cycling.startswith("- **Cycling** (6): Tyre guide 0 · Tyre guide 1 · Tyre guide 2")
    assert cycling.endswith("and 3 more") and "faq" not in cycling, "telling titles first"
    assert "- **Other** (1): Compost \\*now\\* \\[click\\](http://x)" in en, "titles stay text"
    zh = describe_collection(docs, "zh", texts["zh"])
    assert "自行车刹车 · Tyre guide 0" in zh and "其他" in zh
    assert describe_collection([], "en", texts["en"]).startswith("No documents")
