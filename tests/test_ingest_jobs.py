"""Ingestion: incremental, idempotent, ownership, bad files, crash safety."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chatbot.domain import acl_for
from chatbot.fakes import HashEmbedding
from chatbot.index.storage import ChunkStore
from chatbot.settings import IngestSettings, StoreSettings
from ingest.jobs import IngestJob, document_id


class CountingEmbedder(HashEmbedding):
    calls: int = 0
    texts: int = 0

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kw: Any
    ) -> list[list[float]]:
        self.calls += 1
        self.texts += len(texts)
        return [self.embed(t) for t in texts]


def make_corpus(root: Path, n: int = 6) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"doc{i}.md").write_text(
            f"# Document {i}\n\n"
            + " ".join(f"Sentence {j} of document {i} about topic{i}." for j in range(40))
        )
    (root / "zh.txt").write_text(
        "自行车链条的保养。" * 30 + "番茄需要阳光！" * 30, encoding="utf-8"
    )


@pytest.fixture
def job(tmp_path: Path) -> IngestJob:
    store = ChunkStore(tmp_path / "index", StoreSettings())
    return IngestJob(
        store=store,
        embedder=CountingEmbedder(),
        settings=IngestSettings(chunk_tokens=60, batch_chunks=16),
    )


def test_rerun_is_a_no_op_and_changes_replace_chunks(job: IngestJob, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    first = job.run([corpus])
    assert first.added == 7 and first.chunks > 7 and not first.failed and not first.skipped
    vectors = job.store.vector_count()
    assert vectors == first.chunks == job.store.stats()["chunks"]

    embedder: CountingEmbedder = job.embedder  # type: ignore[assignment]
    calls = embedder.texts
    again = job.run([corpus])
    assert (again.added, again.updated, again.unchanged, again.chunks) == (0, 0, 7, 0)
    assert embedder.texts == calls, "unchanged files must not be embedded again"
    assert job.store.vector_count() == vectors

    (corpus / "doc0.md").write_text("# Document 0\n\nShort now.")
    changed = job.run([corpus])
    assert changed.updated == 1 and changed.chunks == 1
    doc_id = document_id("public", corpus / "doc0.md")
    assert job.store.vector_count_for(doc_id) == 1
    assert job.store.vector_count() == job.store.stats()["chunks"]


def test_a_new_index_recipe_reindexes_unchanged_files_once(
    job: IngestJob, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an upgrade that changes what an index holds, or new chunk settings, the next
    ingest refreshes every document (old search terms would otherwise stay forever)."""
    from ingest import jobs

    corpus = tmp_path / "corpus"
    make_corpus(corpus, n=2)
    assert job.run([corpus]).added == 3
    monkeypatch.setattr(jobs, "INDEX_FORMAT", jobs.INDEX_FORMAT + 1)
    upgraded = job.run([corpus])
    assert (upgraded.updated, upgraded.unchanged) == (3, 0) and upgraded.chunks > 3
    assert job.run([corpus]).unchanged == 3
    job.settings = job.settings.model_copy(update={"chunk_tokens": 120})
    rechunked = job.run([corpus])
    assert rechunked.updated == 3 and rechunked.chunks < upgraded.chunks
    assert job.store.vector_count() == job.store.stats()["chunks"] == rechunked.chunks


def test_prune_removes_documents_whose_files_are_gone(job: IngestJob, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    job.run([corpus])
    (corpus / "doc1.md").unlink()
    kept = job.run([corpus])
    assert kept.pruned == 0 and job.store.stats()["documents"] == 7
    pruned = job.run([corpus], prune=True)
    assert pruned.pruned == 1 and job.store.stats()["documents"] == 6
    assert job.store.vector_count() == job.store.stats()["chunks"]


def test_private_documents_carry_owner_acl_and_metadata(job: IngestJob, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, n=1)
    job.run([corpus / "doc0.md"], user="alice")
    job.run([corpus / "zh.txt"], group="team")
    docs = {d.source.rsplit("/", 1)[-1]: d for d in job.store.documents()}
    assert docs["doc0.md"].acl == acl_for(user="alice")
    assert docs["zh.txt"].acl == acl_for(group="team") and docs["zh.txt"].language == "zh"
    assert docs["doc0.md"].language == "en" and docs["doc0.md"].title == "Document 0"
    chunks = job.store.chunks(job.store.catalog.chunk_ids_of([docs["zh.txt"].doc_id]))
    assert all(c.keywords for c in chunks.values())
    assert any("链条" in c.keywords for c in chunks.values())


def test_bad_files_are_reported_and_the_rest_ingested(job: IngestJob, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, n=2)
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "binary.txt").write_bytes(os.urandom(4096).replace(b"\x00", b"\x01") + b"\x00")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7 truncated")
    (corpus / "huge.txt").write_text("x " * 1_100_000)
    job.settings = IngestSettings(chunk_tokens=60, batch_chunks=16, max_file_mb=2)
    report = job.run([corpus, tmp_path / "does-not-exist"])
    reasons = dict(report.skipped)
    assert report.added == 3
    assert "empty" in reasons[str(corpus / "empty.txt")]
    assert "binary" in reasons[str(corpus / "binary.txt")]
    assert "corrupt PDF" in reasons[str(corpus / "broken.pdf")]
    assert "too large" in reasons[str(corpus / "huge.txt")]
    assert "no such file" in reasons[str(tmp_path / "does-not-exist")]
    names = {Path(d.source).name for d in job.store.documents()}
    assert names == {"doc0.md", "doc1.md", "zh.txt"}


CHILD = """
import os, sys
from pathlib import Path
from chatbot.fakes import HashEmbedding
from chatbot.index.storage import ChunkStore
from chatbot.settings import IngestSettings, StoreSettings
from ingest.jobs import IngestJob
index, corpus, acks = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
def ack(sources):
    os.write(fd, ("\\n".join(sources) + "\\n").encode()); os.fsync(fd)
print("ready", flush=True)
IngestJob(store=ChunkStore(index, StoreSettings()), embedder=HashEmbedding(),
          settings=IngestSettings(chunk_tokens=40, batch_chunks=8), on_batch=ack).run([corpus])
"""


@pytest.mark.parametrize("trial", range(4))
def test_kill_9_during_ingestion_loses_nothing_acknowledged(tmp_path: Path, trial: int) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, n=80)
    index, acks = tmp_path / "index", tmp_path / "acks.txt"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(index), str(corpus), str(acks)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 60
    while not (acks.exists() and acks.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.02)  # kill once writing is under way, at a random point after that
    time.sleep(random.Random(trial).uniform(0.0, 1.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    acknowledged = set(acks.read_text().split()) if acks.exists() else set()
    assert len(acknowledged) > 0, "the kill must land while ingestion is running"

    store = ChunkStore(index, StoreSettings())  # opens after the crash
    present = {d.source for d in store.documents()}
    assert acknowledged <= present
    store.reconcile()
    assert store.vector_count() == store.stats()["chunks"]

    job = IngestJob(
        store=store,
        embedder=CountingEmbedder(),
        settings=IngestSettings(chunk_tokens=40, batch_chunks=8),
    )
    report = job.run([corpus])
    assert report.unchanged == len(present) and report.added == 81 - len(present)
    assert store.vector_count() == store.stats()["chunks"]
    again = job.run([corpus])
    assert again.chunks == 0 and store.vector_count() == store.stats()["chunks"]
