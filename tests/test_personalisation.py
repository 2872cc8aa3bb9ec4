"""Profiles: learned from turns and ratings, stated facts, ranking, explanations, privacy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatbot.domain import DoneEvent, SourcesEvent, acl_for, readable_acls
from chatbot.personalisation.learning import explicit_statements
from ingest.jobs import IngestJob

CANARY = "CANARY-profile-7f3a9"


@pytest.fixture
def corpus(container):  # type: ignore[no-untyped-def]
    root = Path(container.settings.data_dir) / "corpus"
    files = {
        "gardening/yield.md": "# Tomato yield\n\nPinch out side shoots to raise the yield of tomato plants. Feed tomatoes weekly.",
        "gardening/soil.md": "# Garden soil\n\nCompost improves garden soil for tomato plants and vegetables.",
        "finance/yield.md": "# Dividend yield\n\nThe dividend yield of shares is the annual dividend divided by the share price.",
        "finance/budget.md": "# Budget\n\nThe 50/30/20 budget splits income into needs, wants and savings.",
        "cycling/chain.md": "# Chain care\n\nClean the bike chain every 300 km and lubricate each roller.",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    IngestJob(
        store=container.store, embedder=container.embed_model, settings=container.settings.ingest
    ).run([root])
    return container


def ask(container, user_id: str, message: str, **kw) -> DoneEvent:  # type: ignore[no-untyped-def]
    return container.chat.ask(user_id=user_id, message=message, acls=readable_acls(user_id), **kw)


def test_explicit_statements_are_recognised() -> None:
    found = {
        (s.field, s.value)
        for s in explicit_statements("I'm a nurse. Please answer briefly, I am a beginner.")
    }
    assert {("persona", "nurse"), ("style", "brief"), ("expertise", "beginner")} <= found
    assert ("language", "zh") in {(s.field, s.value) for s in explicit_statements("请用中文回答")}
    assert ("interest", "cycling") in {
        (s.field, s.value) for s in explicit_statements("I'm interested in cycling")
    }
    assert explicit_statements("How do I prune tomatoes?") == []


def test_profile_learns_interests_with_provenance_from_questions(corpus) -> None:  # type: ignore[no-untyped-def]
    user = corpus.repo.ensure_user(username="gardener")
    done = ask(corpus, user.id, "How do I feed tomato plants?")
    ask(corpus, user.id, "What improves garden soil for vegetables?")
    profile = corpus.profiles.view(user.id)
    top = profile["interests"][0]
    assert top["label"] == "gardening" and top["weight"] >= 2
    assert {"kind": "message", "id": done.message_id} == {
        k: top["evidence"][0][k] for k in ("kind", "id")
    }
    assert 0 < top["confidence"] < 1


def test_stated_facts_shape_the_answer_prompt(corpus) -> None:  # type: ignore[no-untyped-def]
    user = corpus.repo.ensure_user(username="nurse")
    done = ask(
        corpus, user.id, "I'm a nurse and a beginner, please answer briefly. What is a budget?"
    )
    facts = corpus.profiles.view(user.id)["facts"]
    assert (
        facts["persona"] == "nurse"
        and facts["style"] == "brief"
        and facts["expertise"] == "beginner"
    )
    assert facts["provenance"]["style"]["id"] == done.message_id
    prefs = corpus.profiles.preferences(user.id)
    assert (
        "one or two short sentences" in prefs.style
        and "beginner" in prefs.style
        and "nurse" in prefs.style
    )


def test_ambiguous_question_resolves_toward_interests_and_can_be_compared(corpus) -> None:  # type: ignore[no-untyped-def]
    investor = corpus.repo.ensure_user(username="investor")
    gardener = corpus.repo.ensure_user(username="gardener")
    for q in (
        "What is the 50/30/20 budget?",
        "How do savings fit a budget?",
        "What are needs and wants in a budget?",
    ):
        ask(corpus, investor.id, q)
    for q in (
        "How do I feed tomato plants?",
        "What improves garden soil?",
        "When do tomatoes need feeding?",
    ):
        ask(corpus, gardener.id, q)
    question = "How can I increase the yield?"
    for_investor = ask(corpus, investor.id, question)
    for_gardener = ask(corpus, gardener.id, question)
    assert for_investor.citations[0].title == "Dividend yield", for_investor.answer
    assert for_gardener.citations[0].title == "Tomato yield", for_gardener.answer
    plain_investor = ask(corpus, investor.id, question, personalise=False)
    plain_gardener = ask(corpus, gardener.id, question, personalise=False)
    assert plain_investor.trace["context_chunk_ids"] == plain_gardener.trace["context_chunk_ids"]
    assert plain_investor.trace["personalisation"] is None
    boosted = [e for e in for_investor.trace["retrieval"]["selected"] if e.get("interest_terms")]
    assert boosted and "financ" in boosted[0]["interest_terms"]
    assert any("you often ask about finance" in line for line in for_investor.explanation)


def test_switches_turn_personalisation_off(corpus) -> None:  # type: ignore[no-untyped-def]
    user = corpus.repo.ensure_user(username="switch")
    ask(corpus, user.id, "What is the 50/30/20 budget?")
    assert corpus.profiles.signals(user.id) is not None
    corpus.repo.set_personalisation(user_id=user.id, enabled=False)
    assert corpus.profiles.signals(user.id) is None
    corpus.repo.set_personalisation(user_id=user.id, enabled=True)
    corpus.settings.personalisation.enabled = False
    assert corpus.profiles.signals(user.id) is None


def test_ratings_boost_for_the_user_and_bound_the_global_prior(corpus) -> None:  # type: ignore[no-untyped-def]
    fan = corpus.repo.ensure_user(username="fan")
    other = corpus.repo.ensure_user(username="other")
    done = ask(corpus, fan.id, "How often should I clean the bike chain?")
    corpus.chat.rate(user_id=fan.id, message_id=done.message_id, rating="up")
    doc_id = done.citations[0].doc_id
    mine = corpus.profiles.signals(fan.id)
    assert (
        mine is not None
        and mine.doc_factors[doc_id] > 1.1
        and mine.doc_reasons[doc_id] == "your ratings"
    )
    theirs = corpus.profiles.signals(other.id)
    assert theirs is not None and 1.0 < theirs.doc_factors[doc_id] <= 1.05  # bounded prior
    done2 = ask(corpus, fan.id, "What is the 50/30/20 budget?")
    corpus.chat.rate(
        user_id=fan.id, message_id=done2.message_id, rating="down", reason="not_relevant"
    )
    assert corpus.profiles.signals(fan.id).doc_factors[done2.citations[0].doc_id] < 1.0  # type: ignore[union-attr]


def test_global_prior_is_read_once_per_interval_and_refreshed_by_ratings(
    corpus, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Everyone's ratings are not re-read on every turn; a rating here refreshes them at once."""
    from chatbot.personalisation import service as module

    fan = corpus.repo.ensure_user(username="fan")
    other = corpus.repo.ensure_user(username="other")
    reads: list[object] = []
    real = corpus.profiles.store.signals

    def counting(*, user_id, doc_ids=None):  # type: ignore[no-untyped-def]
        if user_id is None:
            reads.append(doc_ids)
        return real(user_id=user_id, doc_ids=doc_ids)

    monkeypatch.setattr(corpus.profiles.store, "signals", counting)
    done = ask(corpus, fan.id, "How often should I clean the bike chain?")
    ask(corpus, other.id, "What is the 50/30/20 budget?")
    corpus.profiles.signals(other.id)
    assert len(reads) <= 1  # several turns, at most one read of everyone's signals
    corpus.chat.rate(user_id=fan.id, message_id=done.message_id, rating="up")
    theirs = corpus.profiles.signals(other.id)  # no waiting: this process's rating shows
    assert theirs is not None and theirs.doc_factors[done.citations[0].doc_id] > 1.0
    # another process's rating shows once the interval has passed
    corpus.profiles.store.add_signal(user_id=other.id, doc_ids=["elsewhere"], delta=1.0)
    assert "elsewhere" not in corpus.profiles.signals(fan.id).doc_factors  # type: ignore[union-attr]
    monkeypatch.setattr(module, "GLOBAL_PRIOR_TTL_S", 0.0)
    assert "elsewhere" in corpus.profiles.signals(fan.id).doc_factors  # type: ignore[union-attr]


def test_recommendations_cold_start_and_novelty(corpus) -> None:  # type: ignore[no-untyped-def]
    user = corpus.repo.ensure_user(username="new")
    done = ask(corpus, user.id, "How often should I clean the bike chain?")
    docs = [r for r in done.recommendations if r.kind == "document"]
    assert 1 <= len(done.recommendations) <= 3 and docs
    assert all(r.doc_id not in {c.doc_id for c in done.citations} for r in docs)
    assert len({r.source.split("/")[-2] for r in docs}) == len(docs)  # diverse topics


def test_view_edit_delete_reset(corpus) -> None:  # type: ignore[no-untyped-def]
    user = corpus.repo.ensure_user(username="editor")
    ask(corpus, user.id, "What is the 50/30/20 budget?")
    interest = corpus.profiles.view(user.id)["interests"][0]
    corpus.profiles.edit_interest(user_id=user.id, interest_id=interest["id"], weight=7.0)
    edited = corpus.profiles.view(user.id)["interests"][0]
    assert edited["weight"] == 7.0 and edited["explicit"]
    corpus.profiles.delete_interest(user_id=user.id, interest_id=interest["id"])
    assert all(i["id"] != interest["id"] for i in corpus.profiles.view(user.id)["interests"])
    corpus.profiles.set_fact(user_id=user.id, field="language", value="zh")
    corpus.profiles.reset(user_id=user.id)
    assert (
        corpus.profiles.view(user.id)["interests"] == []
        and corpus.profiles.view(user.id)["facts"]["language"] is None
    )


def test_users_export_and_delete_with_a_canary(corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from chatbot.cli import app

    user = corpus.repo.ensure_user(username="leaver")
    private = Path(corpus.settings.data_dir) / "private"
    private.mkdir()
    (private / "secret.md").write_text(f"# Secret\n\n{CANARY} the bike chain secret is wax.")
    IngestJob(store=corpus.store, embedder=corpus.embed_model, settings=corpus.settings.ingest).run(
        [private], user=user.id
    )
    done = ask(
        corpus, user.id, f"I'm interested in {CANARY.lower()}. What is the bike chain secret?"
    )
    corpus.chat.rate(
        user_id=user.id, message_id=done.message_id, rating="down", comment=f"{CANARY} comment"
    )
    corpus.close()

    runner = CliRunner()
    out = tmp_path / "export.json"
    result = runner.invoke(app, ["users", "export", "leaver", "--out", str(out)])
    assert result.exit_code == 0, result.output
    exported = out.read_text()
    assert exported.count(CANARY) >= 3 and "password_hash" not in exported
    data = json.loads(exported)
    assert data["profile"]["interests"] and data["private_documents"][0]["title"] == "Secret"

    result = runner.invoke(app, ["users", "delete", "leaver", "--yes"])
    assert result.exit_code == 0, result.output
    data_dir = Path(corpus.settings.data_dir)
    leftovers = [
        p for p in data_dir.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()
    ]
    assert leftovers == [p for p in leftovers if p.is_relative_to(private)]  # only the source file
    from chatbot.container import Container
    from chatbot.settings import Settings

    fresh = Container(Settings())
    assert fresh.repo.get_user_by_name(username="leaver") is None
    assert fresh.store.documents(acl=acl_for(user=user.id)) == []
    fresh.close()


def test_explanation_only_mentions_profile_parts_that_applied(corpus) -> None:  # type: ignore[no-untyped-def]
    user = corpus.repo.ensure_user(username="plain")
    done = ask(corpus, user.id, "How often should I clean the bike chain?")
    assert not any("profile" in line.lower() for line in done.explanation), done.explanation
    ask(corpus, user.id, "Please answer briefly.")
    done = ask(corpus, user.id, "How often should I clean the bike chain?")
    styled = [line for line in done.explanation if "profile" in line.lower()]
    assert styled == ["Answer shaped by your profile (answer style: brief)."], done.explanation


def test_follow_up_questions_are_about_topics_not_verbs() -> None:
    from chatbot.domain import RetrievedChunk
    from chatbot.personalisation.recommend import _follow_up

    def chunk(keywords: tuple[str, ...], title: str, source: str) -> RetrievedChunk:
        return RetrievedChunk(
            chunk_id="d1-0",
            doc_id="d1",
            text="",
            source=source,
            title=title,
            language="en",
            keywords=keywords,
        )

    best = chunk(("check", "never", "chain wear", "chain"), "Chain wear", "cycling/chain-wear.txt")
    assert _follow_up([best], "en").text == "What else should I know about chain wear?"  # type: ignore[union-attr]
    verbs_only = chunk(("check", "replace", "inside"), "Bike Maintenance Checklist", "c/m.html")
    assert (
        _follow_up([verbs_only], "en").text == "What else does “Bike Maintenance Checklist” cover?"
    )  # type: ignore[union-attr]
    assert _follow_up([chunk(("check", "often"), "faq", "cycling/faq.jsonl")], "en") is None
    zh = chunk(
        ("检查", "应该", "刹车片", "chain"), "自行车刹车的检查与调整", "cycling/brakes.zh.md"
    )
    assert _follow_up([zh], "zh").text == "关于“刹车片”还有什么要注意的？"  # type: ignore[union-attr]
    assert _follow_up(
        [chunk(("检查", "使用"), "自行车刹车的检查与调整", "b.zh.md")], "zh"
    ).text == (  # type: ignore[union-attr]
        "《自行车刹车的检查与调整》还讲了哪些内容？"
    )


def ask_with_sources(container, user_id: str, message: str, **kw) -> tuple[DoneEvent, set[str]]:  # type: ignore[no-untyped-def]
    """The final event and the titles of the passages the answer was given (its context)."""
    titles: set[str] = set()
    done = None
    for event in container.chat.stream(
        user_id=user_id, message=message, acls=readable_acls(user_id), **kw
    ):
        if isinstance(event, SourcesEvent):
            titles |= {c.title for c in event.chunks}
        if isinstance(event, DoneEvent):
            done = event
    assert done is not None
    return done, titles


def test_query_expansion_retrieves_what_the_plain_question_misses(corpus, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A short question is searched again with the user's interests; not without the profile."""
    monkeypatch.setattr(corpus.retriever.settings, "candidates", 2)  # a narrow first pass
    rider = corpus.repo.ensure_user(username="rider")
    ask(corpus, rider.id, "I'm interested in cycling")
    signals = corpus.profiles.signals(rider.id)
    assert signals is not None and signals.expansion_weight > 0
    assert "cycling" in [term for term, _ in signals.expansion["en"]]
    question = "How do I keep it in good shape?"
    plain, plain_titles = ask_with_sources(corpus, rider.id, question, personalise=False)
    assert "Chain care" not in plain_titles
    assert "expansion" not in plain.trace["retrieval"]
    assert not any("Also searched" in line for line in plain.explanation)

    personal, titles = ask_with_sources(corpus, rider.id, question)
    expansion = personal.trace["retrieval"]["expansion"]
    assert "cycling" in expansion["terms"] and expansion["added"]
    assert "Chain care" in titles  # a candidate the plain question never saw
    assert any(
        line.startswith("Also searched for") and "you often ask about cycling" in line
        for line in personal.explanation
    ), personal.explanation
    assert "cycling" in personal.trace["personalisation"]["query_expansion"]["en"]


def test_query_expansion_is_switchable(corpus, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(corpus.retriever.settings, "candidates", 2)
    rider = corpus.repo.ensure_user(username="rider2")
    ask(corpus, rider.id, "I'm interested in cycling")
    corpus.settings.personalisation.query_expansion = False
    signals = corpus.profiles.signals(rider.id)
    assert signals is not None and not signals.expansion and signals.expansion_weight == 0
    done, titles = ask_with_sources(corpus, rider.id, "How do I keep it in good shape?")
    assert "expansion" not in done.trace["retrieval"]
    assert "Chain care" not in titles
