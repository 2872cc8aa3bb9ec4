"""``chatbot migrate``: an embedded deployment moves to PostgreSQL + Milvus with nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatbot.domain import acl_for, readable_acls
from chatbot.settings import Settings
from chatbot.text import tokenize
from ingest.jobs import IngestJob
from tests.scaleout.conftest import Services, need_milvus


def test_migrate_embedded_to_postgres_and_milvus(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatbot.cli import app
    from chatbot.container import Container

    # 1. an embedded deployment with public and private documents, a chat and a rating
    docs, private = tmp_path / "docs", tmp_path / "private"
    docs.mkdir()
    private.mkdir()
    (docs / "chain.md").write_text(
        "# Chain care\n\nClean the bike chain every 300 km with a degreaser."
    )
    (docs / "tomato.md").write_text("# Tomatoes\n\nTomato seedlings are transplanted at 15 cm.")
    (private / "diary.md").write_text(
        "# Diary\n\nMy secret chain wax recipe is beeswax and paraffin."
    )
    embedded = Container(Settings())
    job = IngestJob(embedded.store, embedded.embed_model, embedded.settings.ingest)  # type: ignore[arg-type]
    job.run([docs])
    owner = embedded.repo.ensure_user(username="owner").id
    job.run([private], user=owner)
    done = embedded.chat.ask(
        user_id=owner, message="How often should I clean the chain?", acls=readable_acls(owner)
    )
    embedded.chat.rate(user_id=owner, message_id=done.message_id, rating="up")
    before = embedded.store.stats()
    embedded.close()

    # 2. migrate
    database, collection = services.database(), services.collection()
    result = CliRunner().invoke(
        app,
        [
            "migrate",
            "--to-database",
            database,
            "--to-milvus",
            need_milvus(),
            "--collection",
            collection,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "CHATBOT_STORE__BACKEND=milvus" in result.output
    again = CliRunner().invoke(
        app, ["migrate", "--to-database", database, "--to-milvus", need_milvus()]
    )
    assert again.exit_code == 2 and "already has users" in again.output

    # 3. the scaled-out deployment has everything
    for key, value in {
        "CHATBOT_DATABASE__URL": database,
        "CHATBOT_STORE__BACKEND": "milvus",
        "CHATBOT_STORE__URI": need_milvus(),
        "CHATBOT_STORE__TABLE": collection,
        "CHATBOT_STORE__CATALOG_URL": database,
        "CHATBOT_DATA_DIR": str(tmp_path / "new-data"),  # nothing may come from the old folder
    }.items():
        monkeypatch.setenv(key, value)
    scaled = Container(Settings())
    try:
        assert scaled.store.stats() == before
        assert before["vectors"] == before["chunks"] > 0
        assert scaled.repo.get_user(user_id=owner) is not None
        messages = scaled.repo.list_messages(user_id=owner, conversation_id=done.conversation_id)
        assert [m.role for m in messages] == ["user", "assistant"]
        assert list(scaled.repo.feedback_for_messages(user_id=owner, message_ids=[done.message_id]))
        follow = scaled.chat.ask(
            user_id=owner,
            message="What is my chain wax recipe?",
            acls=readable_acls(owner),
            conversation_id=done.conversation_id,
        )
        assert follow.conversation_id == done.conversation_id and follow.citations
        stranger = scaled.repo.ensure_user(username="stranger").id
        terms = tokenize("beeswax paraffin recipe")
        mine = scaled.store.keyword_search(terms, readable_acls(owner), 5)
        assert mine and scaled.store.chunks([mine[0][0]])[mine[0][0]].text.endswith("paraffin.")
        assert scaled.store.keyword_search(terms, readable_acls(stranger), 5) == []
        vector = scaled.embed_model.get_query_embedding("secret chain wax recipe beeswax paraffin")
        assert scaled.store.vector_search(vector, readable_acls(owner), 1)[0].chunk_id == mine[0][0]
        assert all(
            h.chunk_id != mine[0][0]
            for h in scaled.store.vector_search(vector, readable_acls(stranger), 5)
        )
        assert len(scaled.store.documents(acl=acl_for(user=owner))) == 1
    finally:
        scaled.close()
