"""Gradio-free pieces of the personalisation UI: provenance text, chips, sources, explanations."""

from __future__ import annotations

from typing import Any

from chatbot.domain import DoneEvent, Recommendation
from chatbot.web import ui_profile, views
from chatbot.web.profile import check_fact, evidence_text
from chatbot.web.sse import done_public, recommendation_public

AT = "2025-05-03T10:00:00+00:00"


def test_evidence_text_says_where_an_interest_came_from() -> None:
    assert evidence_text([{"kind": "message", "id": "m", "delta": 1, "at": AT}]) == (
        "from your question on 2025-05-03"
    )
    both = evidence_text(
        [
            {"kind": "message", "id": "m1", "delta": 1, "at": "2025-05-01T00:00:00"},
            {"kind": "message", "id": "m2", "delta": 1, "at": AT},
            {"kind": "rating", "id": "f", "delta": 1.5, "at": AT},
        ]
    )
    assert both == "from your 👍; from 2 of your questions (latest on 2025-05-03)"
    assert evidence_text([{"kind": "rating", "delta": -0.75}]) == "from your 👎 (not relevant)"
    assert evidence_text([{"kind": "citation_open", "at": AT}]) == (
        "from a source you opened on 2025-05-03"
    )
    assert evidence_text([{"kind": "statement", "at": AT}]) == "you said so on 2025-05-03"
    assert evidence_text([{"kind": "edit", "at": "garbage"}]) == "set by you"
    assert evidence_text([]) == "learned"


def test_fact_values_are_checked() -> None:
    assert check_fact("language", " zh ") == "zh"
    assert check_fact("persona", "  a   nurse ") == "a nurse"
    assert check_fact("style", "") is None
    for field, value in (("language", "fr"), ("expertise", "guru"), ("persona", "x" * 101)):
        try:
            check_fact(field, value)
        except ValueError as exc:
            assert field in str(exc)
        else:
            raise AssertionError(f"{field}={value!r} was accepted")


def test_chips_ask_the_question_or_about_the_document_in_the_answer_language() -> None:
    doc = Recommendation("document", "番茄整枝与修剪", "d1", "/srv/data/garden/tomato.zh.md", "r")
    question = Recommendation("question", "What else should I know about chains?", "d2", "", "f")
    zh = recommendation_public(doc, "zh")
    assert zh["ask"] == "请介绍一下《番茄整枝与修剪》" and zh["source"] == "tomato.zh.md"
    assert recommendation_public(doc, "en")["ask"] == "Tell me about 番茄整枝与修剪"
    assert recommendation_public(question, "zh")["ask"] == question.text
    state: dict[str, Any] = {"recommendations": [zh, recommendation_public(question)]}
    assert ui_profile.chip_question(state, 1) == question.text
    assert ui_profile.chip_question(state, 2) is None
    assert ui_profile.chip_labels(state["recommendations"], 3) == [
        "📄 番茄整枝与修剪",
        "💬 What else should I know about chains?",
        None,
    ]
    done = DoneEvent(
        "c", "m", "a", (), False, {"understanding": {"language": "zh"}}, (doc,), ("x",)
    )
    public = done_public(done)
    assert public["recommendations"][0]["ask"].startswith("请介绍一下")
    assert public["explanation"] == ["x"]


def test_each_source_carries_its_ids_escaped() -> None:
    citation = {"number": 1, "chunk_id": 'c"1<', "title": "T", "source": "a.md", "quote": "q"}
    html = views.sources_html([citation], "m1")
    assert 'value="m1 c&quot;1&lt;"' in html and '<details class="source"' in html
    assert "value=" not in views.sources_html([{"number": 1, "chunk_id": "c", "quote": "q"}])


def test_stored_explanation_is_rebuilt_from_the_trace() -> None:
    seen: list[Any] = []

    def explain(trace: dict[str, Any], chunks: Any) -> tuple[str, ...]:
        seen.append([(c.chunk_id, c.title) for c in chunks])
        return ("“Chain care” ranked higher because you often ask about cycling.",)

    trace = {"context_chunk_ids": ["c1"], "retrieval": {"selected": []}}
    lines = ui_profile.stored_explanation(explain, trace, lambda chunk_id: "Chain care")
    assert seen == [[("c1", "Chain care")]] and lines
    assert ui_profile.stored_explanation(explain, {"gate": "chitchat"}, str) == ()
    text = ui_profile.why_markdown(("<b>x</b>",), None, str)
    assert "&lt;b&gt;x&lt;/b&gt;" in text and "Your profile and this answer" in text
