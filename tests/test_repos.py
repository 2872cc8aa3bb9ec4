"""The relational repository: ownership, feedback upsert, cascades, privacy and concurrency."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlmodel import SQLModel

from chatbot.db.engine import init_db, make_engine, session_scope
from chatbot.db.models import DEFAULT_TITLE, Conversation, Message, User
from chatbot.db.repos import Repository
from chatbot.domain import FEEDBACK_REASONS, InvalidInputError, NotFoundError

TRACE = {"standalone_question": "q?", "chunks": [{"id": "c1", "score": 0.5}], "model": "fake"}
CITATIONS = [{"number": 1, "chunk_id": "c1", "doc_id": "d1", "source": "s", "title": "t"}]


@dataclass
class Db:
    engine: Engine
    repo: Repository
    path: Path | None  # None for in-memory


def _make_db(url: str, path: Path | None) -> Db:
    engine = make_engine(url)
    init_db(engine)
    return Db(engine, Repository(engine), path)


POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
"""Also run on PostgreSQL when set, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test
(the database is wiped; needs a driver, which is not a project dependency yet)."""


def _postgres_db() -> Db:
    if not POSTGRES_URL:
        pytest.skip("TEST_POSTGRES_URL is not set")
    made = _make_db(POSTGRES_URL, None)
    SQLModel.metadata.drop_all(made.engine)
    with made.engine.begin() as conn:  # the schema is Alembic's: start from an empty database
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    init_db(made.engine)
    return made


def _file_db(tmp_path: Path) -> Db:
    path = tmp_path / "nested" / "chat.db"  # the parent folder does not exist yet
    return _make_db(f"sqlite:///{path}", path)


@pytest.fixture(params=["memory", "file", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "memory":
        made = _make_db("sqlite://", None)
    elif request.param == "file":
        made = _file_db(tmp_path)
    else:
        made = _postgres_db()
    yield made
    made.engine.dispose()


@pytest.fixture(params=["file", "postgresql"])
def concurrent_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """Databases that several connections can write at once (not in-memory SQLite)."""
    made = _file_db(tmp_path) if request.param == "file" else _postgres_db()
    yield made
    made.engine.dispose()


@pytest.fixture
def file_db(tmp_path: Path) -> Iterator[Db]:
    made = _file_db(tmp_path)
    yield made
    made.engine.dispose()


def _chat(
    repo: Repository, user_id: str, question: str = "How do I clean a chain?"
) -> tuple[Conversation, Message, Message]:
    """A conversation with one user and one assistant message; returns (conv, user, answer)."""
    conversation = repo.create_conversation(user_id=user_id)
    asked = repo.add_message(
        user_id=user_id, conversation_id=conversation.id, role="user", content=question
    )
    answer = repo.add_message(
        user_id=user_id,
        conversation_id=conversation.id,
        role="assistant",
        content="Use a degreaser.",
        citations=CITATIONS,
        trace=TRACE,
    )
    return conversation, asked, answer


def _not_found(call: Callable[[], object]) -> str:
    with pytest.raises(NotFoundError) as info:
        call()
    assert type(info.value) is NotFoundError
    return str(info.value)


# ------------------------------------------------------------------------ engine


def test_sqlite_connections_are_tuned_and_writes_begin_immediate(file_db: Db) -> None:
    assert file_db.path is not None and file_db.path.exists()
    with file_db.engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
        }
        pragmas["secure_delete"] = conn.exec_driver_sql("PRAGMA secure_delete").scalar()
    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": 30000,
        "foreign_keys": 1,
        "synchronous": 1,
        "secure_delete": 1,
    }
    statements: list[str] = []
    event.listen(file_db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    user = file_db.repo.create_user(username="alice")
    file_db.repo.get_user(user_id=user.id)
    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN DEFERRED"]


def test_session_scope_rolls_back_on_error(db: Db) -> None:
    with pytest.raises(RuntimeError), session_scope(db.engine) as session:
        session.add(User(username="ghost"))
        session.flush()
        raise RuntimeError("boom")
    assert db.repo.get_user_by_name(username="ghost") is None


# ------------------------------------------------------------------------- users


def test_users_are_created_found_and_validated(db: Db) -> None:
    alice = db.repo.create_user(username="  alice ", password_hash="h")
    assert alice.username == "alice" and len(alice.id) == 32
    assert alice.created_at.tzinfo is not None and alice.personalisation_enabled
    assert db.repo.get_user(user_id=alice.id) == alice
    assert db.repo.get_user_by_name(username="alice") == alice
    assert db.repo.get_user(user_id="nope") is None
    assert db.repo.ensure_user(username="alice").id == alice.id
    assert db.repo.ensure_user(username="carol").username == "carol"

    for bad, fragment in [
        ("alice", "taken"),
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 65, "at most 64"),
        ("bad\nname", "control"),
        ("zero\u200bwidth", "control"),
    ]:
        with pytest.raises(InvalidInputError, match=fragment):
            db.repo.create_user(username=bad)
    with pytest.raises(InvalidInputError, match="role"):
        db.repo.create_user(username="dave", role="root")

    updated = db.repo.set_personalisation(user_id=alice.id, enabled=False)
    assert updated.personalisation_enabled is False
    assert db.repo.get_user(user_id=alice.id).personalisation_enabled is False  # type: ignore[union-attr]


# ------------------------------------------------------------------ ownership


def test_foreign_objects_are_indistinguishable_from_missing_ones(db: Db) -> None:
    repo = db.repo
    alice = repo.create_user(username="alice")
    bob = repo.create_user(username="bob")
    conversation, _, answer = _chat(repo, alice.id)
    cid, mid = conversation.id, answer.id

    conversation_calls: list[Callable[[str], object]] = [
        lambda c: repo.get_conversation(user_id=bob.id, conversation_id=c),
        lambda c: repo.list_messages(user_id=bob.id, conversation_id=c),
        lambda c: repo.rename_conversation(user_id=bob.id, conversation_id=c, title="mine"),
        lambda c: repo.delete_conversation(user_id=bob.id, conversation_id=c),
        lambda c: repo.add_message(user_id=bob.id, conversation_id=c, role="user", content="hi"),
    ]
    for call in conversation_calls:
        foreign = _not_found(partial(call, cid))
        assert foreign == _not_found(partial(call, "0" * 32)) == "conversation not found"

    message_calls: list[Callable[[str], object]] = [
        lambda m: repo.get_message(user_id=bob.id, message_id=m),
        lambda m: repo.get_trace(user_id=bob.id, message_id=m),
        lambda m: repo.rate_message(user_id=bob.id, message_id=m, rating="down"),
    ]
    for call in message_calls:
        foreign = _not_found(partial(call, mid))
        assert foreign == _not_found(partial(call, "0" * 32)) == "message not found"

    # Nothing of Alice's changed, and Bob sees nothing.
    assert repo.get_conversation(user_id=alice.id, conversation_id=cid).title != "mine"
    assert len(repo.list_messages(user_id=alice.id, conversation_id=cid)) == 2
    assert repo.list_conversations(user_id=bob.id) == []
    assert repo.feedback_for_messages(user_id=bob.id, message_ids=[mid]) == {}
    assert repo.get_trace(user_id=alice.id, message_id=mid) == TRACE
    assert repo.get_message(user_id=alice.id, message_id=mid).citations == CITATIONS


# -------------------------------------------------------------------- messages


def test_title_comes_from_the_first_user_message(db: Db) -> None:
    repo = db.repo
    user = repo.create_user(username="alice")
    conversation = repo.create_conversation(user_id=user.id)
    assert conversation.title == DEFAULT_TITLE
    long_question = "  How   do I\nclean a chain " + "and the cassette " * 10
    repo.add_message(
        user_id=user.id, conversation_id=conversation.id, role="assistant", content="Hello!"
    )
    repo.add_message(
        user_id=user.id, conversation_id=conversation.id, role="user", content=long_question
    )
    repo.add_message(
        user_id=user.id, conversation_id=conversation.id, role="user", content="Second"
    )
    title = repo.get_conversation(user_id=user.id, conversation_id=conversation.id).title
    assert title.startswith("How do I clean a chain and the cassette")
    assert len(title) == 60 and title.endswith("…") and "\n" not in title

    short = repo.create_conversation(user_id=user.id)
    repo.add_message(user_id=user.id, conversation_id=short.id, role="user", content="Hi there")
    assert repo.get_conversation(user_id=user.id, conversation_id=short.id).title == "Hi there"

    named = repo.create_conversation(user_id=user.id, title="Bikes")
    repo.add_message(user_id=user.id, conversation_id=named.id, role="user", content="Hello")
    assert repo.get_conversation(user_id=user.id, conversation_id=named.id).title == "Bikes"

    renamed = repo.rename_conversation(user_id=user.id, conversation_id=named.id, title=" New ")
    assert renamed.title == "New"
    for bad in ("", "x" * 201, "a\x07b"):
        with pytest.raises(InvalidInputError, match="title"):
            repo.rename_conversation(user_id=user.id, conversation_id=named.id, title=bad)


def test_messages_are_ordered_limited_and_bump_the_conversation(db: Db) -> None:
    repo = db.repo
    user = repo.create_user(username="alice")
    older = repo.create_conversation(user_id=user.id)
    newer = repo.create_conversation(user_id=user.id)
    assert [c.id for c in repo.list_conversations(user_id=user.id)] == [newer.id, older.id]

    added = [
        repo.add_message(
            user_id=user.id,
            conversation_id=older.id,
            role="user" if i % 2 == 0 else "assistant",
            content=f"m{i}",
        )
        for i in range(7)
    ]
    listed = repo.list_messages(user_id=user.id, conversation_id=older.id)
    assert [m.content for m in listed] == [f"m{i}" for i in range(7)]
    assert all(a.created_at < b.created_at for a, b in itertools.pairwise(listed))
    last3 = repo.list_messages(user_id=user.id, conversation_id=older.id, limit=3)
    assert [m.id for m in last3] == [m.id for m in added[-3:]]
    assert repo.list_messages(user_id=user.id, conversation_id=older.id, limit=0) == []
    with pytest.raises(InvalidInputError):
        repo.list_messages(user_id=user.id, conversation_id=older.id, limit=-1)

    # The conversation with the latest message comes first now.
    assert [c.id for c in repo.list_conversations(user_id=user.id)] == [older.id, newer.id]
    bumped = repo.get_conversation(user_id=user.id, conversation_id=older.id)
    assert bumped.updated_at == added[-1].created_at

    with pytest.raises(InvalidInputError, match="role"):
        repo.add_message(user_id=user.id, conversation_id=older.id, role="system", content="x")
    with pytest.raises(InvalidInputError, match="trace"):
        repo.add_message(
            user_id=user.id, conversation_id=older.id, role="user", content="x", trace={}
        )
    with pytest.raises(InvalidInputError, match="NUL"):
        repo.add_message(user_id=user.id, conversation_id=older.id, role="user", content="\x00")
    _not_found(lambda: repo.get_trace(user_id=user.id, message_id=added[0].id))


def test_delete_conversation_removes_messages_traces_and_feedback(db: Db) -> None:
    repo = db.repo
    user = repo.create_user(username="alice")
    doomed, asked, answer = _chat(repo, user.id)
    kept, _, kept_answer = _chat(repo, user.id)
    repo.rate_message(user_id=user.id, message_id=answer.id, rating="up")
    repo.rate_message(user_id=user.id, message_id=kept_answer.id, rating="down")

    repo.delete_conversation(user_id=user.id, conversation_id=doomed.id)

    _not_found(lambda: repo.get_conversation(user_id=user.id, conversation_id=doomed.id))
    for message_id in (asked.id, answer.id):
        _not_found(partial(repo.get_message, user_id=user.id, message_id=message_id))
    _not_found(lambda: repo.get_trace(user_id=user.id, message_id=answer.id))
    assert [f.message_id for f in repo.list_feedback()] == [kept_answer.id]
    assert [c.id for c in repo.list_conversations(user_id=user.id)] == [kept.id]
    assert repo.get_trace(user_id=user.id, message_id=kept_answer.id) == TRACE
    _not_found(lambda: repo.delete_conversation(user_id=user.id, conversation_id=doomed.id))


# -------------------------------------------------------------------- feedback


def test_second_rating_updates_the_single_row(db: Db) -> None:
    repo = db.repo
    user = repo.create_user(username="alice")
    _, _, answer = _chat(repo, user.id)

    first = repo.rate_message(user_id=user.id, message_id=answer.id, rating="up")
    second = repo.rate_message(
        user_id=user.id,
        message_id=answer.id,
        rating="down",
        reason="bad_citation",
        comment="  The quote is not in the source.  ",
    )
    assert second.id == first.id
    assert (second.rating, second.reason, second.comment) == (
        "down",
        "bad_citation",
        "The quote is not in the source.",
    )
    assert second.created_at == first.created_at <= second.updated_at
    rows = repo.list_feedback(user_id=user.id)
    assert len(rows) == 1 and rows[0].rating == "down"
    assert repo.feedback_for_messages(user_id=user.id, message_ids=[answer.id, "x"]) == {
        answer.id: rows[0]
    }

    third = repo.rate_message(user_id=user.id, message_id=answer.id, rating="up", comment=" ")
    assert (third.rating, third.reason, third.comment) == ("up", None, None)
    assert len(repo.list_feedback()) == 1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"rating": "meh"}, "rating must be one of up, down"),
        ({"rating": "UP"}, "rating must be one of"),
        (
            {"rating": "down", "reason": "rude"},
            "reason must be one of " + ", ".join(FEEDBACK_REASONS),
        ),
        ({"rating": "down", "reason": ""}, "reason must be one of"),
        ({"rating": "down", "comment": "x" * 2001}, "comment must be at most 2000 characters"),
        ({"rating": "down", "comment": "a\x00b"}, "NUL"),
    ],
)
def test_feedback_validation(db: Db, kwargs: dict[str, str], fragment: str) -> None:
    user = db.repo.create_user(username="alice")
    _, _, answer = _chat(db.repo, user.id)
    with pytest.raises(InvalidInputError, match=fragment):
        db.repo.rate_message(user_id=user.id, message_id=answer.id, **kwargs)
    assert db.repo.list_feedback() == []
    ok = db.repo.rate_message(
        user_id=user.id, message_id=answer.id, rating="up", comment="x" * 2000
    )
    assert len(ok.comment or "") == 2000


def test_quota_buckets_longer_than_the_column_are_refused_on_every_backend(db: Db) -> None:
    from chatbot.db.models import BUCKET_MAX_LENGTH

    site = db.repo.create_widget_site(key="k" * 20, secret="s" * 32, origins=["https://a.example"])
    fits, too_long = "d:" + "x" * (BUCKET_MAX_LENGTH - 2), "d:" + "x" * (BUCKET_MAX_LENGTH - 1)
    with pytest.raises(InvalidInputError, match=f"at most {BUCKET_MAX_LENGTH} characters"):
        db.repo.consume_widget_quota(site_id=site.id, limits=[("m:1", 5), (too_long, 5)])
    # nothing was counted, not even the bucket that fits
    assert db.repo.consume_widget_quota(site_id=site.id, limits=[("m:1", 1), (fits, 1)]) is None
    assert db.repo.consume_widget_quota(site_id=site.id, limits=[("m:1", 1)]) == "m:1"


def test_user_messages_cannot_be_rated(db: Db) -> None:
    user = db.repo.create_user(username="alice")
    _, asked, _ = _chat(db.repo, user.id)
    own_user_message = _not_found(
        lambda: db.repo.rate_message(user_id=user.id, message_id=asked.id, rating="up")
    )
    missing = _not_found(
        lambda: db.repo.rate_message(user_id=user.id, message_id="f" * 32, rating="up")
    )
    assert own_user_message == missing == "message not found"
    assert db.repo.list_feedback() == []


def test_list_feedback_filters(db: Db) -> None:
    repo = db.repo
    alice = repo.create_user(username="alice")
    bob = repo.create_user(username="bob")
    _, _, a_answer = _chat(repo, alice.id)
    _, _, b_answer = _chat(repo, bob.id)
    before = datetime.now(UTC) - timedelta(seconds=1)
    repo.rate_message(user_id=alice.id, message_id=a_answer.id, rating="up")
    repo.rate_message(user_id=bob.id, message_id=b_answer.id, rating="down")
    assert [f.user_id for f in repo.list_feedback()] == [bob.id, alice.id]  # newest first
    assert [f.user_id for f in repo.list_feedback(user_id=alice.id)] == [alice.id]
    assert len(repo.list_feedback(since=before)) == 2
    assert repo.list_feedback(since=datetime.now(UTC) + timedelta(minutes=1)) == []
    with pytest.raises(InvalidInputError, match="timezone"):
        repo.list_feedback(since=datetime.now())


# --------------------------------------------------------------------- privacy

CANARY = "CANARY-7f3a9c1e-do-not-keep"
NAME_CANARY = "user-NAMECANARY-41b7"


def _plant_canary(repo: Repository, username: str) -> User:
    user = repo.create_user(username=username, password_hash="argon2$SECRET-HASH-VALUE")
    conversation = repo.create_conversation(user_id=user.id)
    repo.add_message(
        user_id=user.id, conversation_id=conversation.id, role="user", content=f"my id {CANARY}"
    )
    answer = repo.add_message(
        user_id=user.id,
        conversation_id=conversation.id,
        role="assistant",
        content="Noted.",
        trace={"standalone_question": f"what about {CANARY}?"},
    )
    repo.rate_message(
        user_id=user.id, message_id=answer.id, rating="down", comment=f"comment {CANARY}"
    )
    return user


def test_export_contains_the_users_data_but_not_the_password_hash(db: Db) -> None:
    user = _plant_canary(db.repo, "alice")
    other = db.repo.create_user(username="bob")
    _chat(db.repo, other.id, question="bob's secret question")

    exported = db.repo.export_user_data(user_id=user.id)
    text = json.dumps(exported)  # JSON-serialisable as is
    assert text.count(CANARY) == 4  # message, its title, trace, feedback comment
    assert "SECRET-HASH" not in text and "password_hash" not in text
    assert "bob's secret" not in text
    assert exported["user"]["username"] == "alice"
    [conversation] = exported["conversations"]
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]
    assert conversation["messages"][1]["trace"]["standalone_question"].endswith("?")
    assert exported["feedback"][0]["comment"] == f"comment {CANARY}"
    _not_found(lambda: db.repo.export_user_data(user_id="0" * 32))


def _raw_bytes(path: Path) -> bytes:
    with sqlite3.connect(path) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    conn.close()
    assert busy == 0
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_delete_user_erases_everything_of_theirs(db: Db) -> None:
    repo = db.repo
    user = _plant_canary(repo, NAME_CANARY)
    other = repo.create_user(username="bob")
    _, _, bob_answer = _chat(repo, other.id)
    repo.rate_message(user_id=other.id, message_id=bob_answer.id, rating="up")
    if db.path is not None:
        before = _raw_bytes(db.path)
        assert CANARY.encode() in before and NAME_CANARY.encode() in before

    repo.delete_user(user_id=user.id)

    assert repo.get_user(user_id=user.id) is None
    assert repo.list_conversations(user_id=user.id) == []
    assert repo.list_feedback(user_id=user.id) == []
    _not_found(lambda: repo.export_user_data(user_id=user.id))
    _not_found(lambda: repo.delete_user(user_id=user.id))
    # Bob is untouched.
    assert len(repo.export_user_data(user_id=other.id)["conversations"][0]["messages"]) == 2
    assert len(repo.list_feedback()) == 1
    if db.path is not None:
        raw = _raw_bytes(db.path)
        assert CANARY.encode() not in raw
        assert NAME_CANARY.encode() not in raw
        assert b"SECRET-HASH" not in raw
        assert b"Use a degreaser." in raw  # sanity: the grep does see live rows


# ----------------------------------------------------------------- concurrency

THREADS = 8
ITERATIONS = 25


def _run_threads(worker: Callable[[int], object], count: int = THREADS) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            worker(index)
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return errors


@pytest.mark.timeout(180)
def test_concurrent_first_ratings_of_one_message_make_one_row(concurrent_db: Db) -> None:
    repo = concurrent_db.repo
    user = repo.create_user(username="alice")
    _, _, answer = _chat(repo, user.id)

    errors = _run_threads(
        lambda i: repo.rate_message(
            user_id=user.id, message_id=answer.id, rating="up" if i % 2 else "down"
        )
    )
    assert errors == []
    assert len(repo.list_feedback()) == 1

    assert _run_threads(lambda i: repo.ensure_user(username="racer")) == []
    assert repo.get_user_by_name(username="racer") is not None


@pytest.mark.timeout(300)
def test_concurrent_messages_and_ratings(concurrent_db: Db) -> None:
    repo = concurrent_db.repo
    users = [repo.create_user(username=name) for name in ("alice", "bob")]
    chats = {u.id: _chat(repo, u.id) for u in users}  # (conversation, asked, hot answer)

    def worker(index: int) -> None:
        user = users[index % 2]
        conversation, _, hot = chats[user.id]
        for i in range(ITERATIONS):
            repo.add_message(
                user_id=user.id, conversation_id=conversation.id, role="user", content=f"q{i}"
            )
            answer = repo.add_message(
                user_id=user.id,
                conversation_id=conversation.id,
                role="assistant",
                content=f"t{index}-a{i}",
                trace={"thread": index, "iteration": i},
            )
            repo.rate_message(user_id=user.id, message_id=answer.id, rating="up")
            repo.rate_message(user_id=user.id, message_id=answer.id, rating="down", reason="wrong")
            repo.rate_message(user_id=user.id, message_id=hot.id, rating="up" if i % 2 else "down")
            repo.list_messages(user_id=user.id, conversation_id=conversation.id, limit=4)

    errors = _run_threads(worker)
    assert errors == [], errors[:3]

    per_user = THREADS // 2 * ITERATIONS
    feedback = repo.list_feedback()
    pairs = Counter((f.user_id, f.message_id) for f in feedback)
    assert max(pairs.values()) == 1
    assert len(feedback) == 2 * (per_user + 1)
    for user in users:
        conversation, _, hot = chats[user.id]
        messages = repo.list_messages(user_id=user.id, conversation_id=conversation.id)
        assert len(messages) == 2 + 2 * per_user
        assert all(a.created_at < b.created_at for a, b in itertools.pairwise(messages))
        answers = [m for m in messages if m.role == "assistant" and m.id != hot.id]
        rated = repo.feedback_for_messages(user_id=user.id, message_ids=[m.id for m in answers])
        assert len(rated) == per_user
        assert {(f.rating, f.reason) for f in rated.values()} == {("down", "wrong")}
        assert all(repo.get_trace(user_id=user.id, message_id=m.id) for m in answers)
    if concurrent_db.path is not None:
        with sqlite3.connect(concurrent_db.path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
