"""The real default models over data/samples: a cited answer and a refusal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chatbot.domain import DoneEvent, SourcesEvent, TokenEvent, readable_acls
from tests.conftest import ROOT, SAMPLES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def real_container(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from chatbot.container import Container
    from chatbot.settings import Settings
    from ingest.jobs import IngestJob

    data = tmp_path_factory.mktemp("data")
    models = Path(os.environ.get("CHATBOT_TEST_MODELS_DIR", ROOT / "data" / "models"))
    (data / "models").symlink_to(models.resolve(), target_is_directory=True)
    models.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data, llm={"mode": "local"}, embedding={"mode": "local"})
    container = Container(settings)
    IngestJob(store=container.store, embedder=container.embed_model, settings=settings.ingest).run(
        [SAMPLES]
    )  # type: ignore[arg-type]
    yield container
    container.close()


def _ask(container, question: str) -> tuple[list[object], DoneEvent]:  # type: ignore[no-untyped-def]
    user = container.repo.ensure_user(username="integration")
    events = list(
        container.chat.stream(user_id=user.id, message=question, acls=readable_acls(user.id))
    )
    done = events[-1]
    assert isinstance(done, DoneEvent)
    return events, done


def test_cited_answer_streams_from_the_real_model(real_container) -> None:  # type: ignore[no-untyped-def]
    events, done = _ask(real_container, "How often should a bike chain be cleaned and lubricated?")
    assert isinstance(events[0], SourcesEvent)
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert len(tokens) > 3, "the answer must stream in pieces"
    assert not done.refused
    assert done.citations, done.answer
    assert any("chain" in Path(c.source).name for c in done.citations)
    trace = done.trace
    assert trace["model"].startswith("local:") and trace["latency_ms"]["first_token_ms"] > 0
    assert trace["retrieval"]["selected"]


def test_unanswerable_question_is_refused(real_container) -> None:  # type: ignore[no-untyped-def]
    _, done = _ask(real_container, "Who is the chief executive officer of the bike shop chain?")
    assert done.refused, done.answer
    assert not done.citations
