"""One store suite, run against every vector backend x catalog backend.

lancedb/sqlite always runs; milvus needs MILVUS_URI and the PostgreSQL catalog needs
TEST_POSTGRES_URL (both set by ``make test-scaleout``, which starts the real servers).
Covers: ACL filters inside both queries, delete and re-ingest idempotency (Milvus upserts
where LanceDB appends), reconcile, filtered and unfiltered recall, and that two store
instances (two app processes) see the same data.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from chatbot.domain import acl_for, readable_acls
from chatbot.index.catalog import ChunkRecord, DocumentRecord
from chatbot.index.retriever import phrase_terms
from chatbot.index.storage import ChunkStore, PreparedDocument, _node
from chatbot.settings import IngestSettings, StoreSettings
from chatbot.text import tokenize
from ingest.jobs import IngestJob, document_id
from tests.helpers import PHRASE_QUESTION, WORDS_APART, WORDS_TOGETHER
from tests.scaleout.conftest import Services
from tests.test_ingest_jobs import CountingEmbedder, make_corpus

BACKENDS = ["lancedb-sqlite", "lancedb-postgres", "milvus-sqlite", "milvus-postgres"]


def store_settings(kind: str, services: Services, **extra: object) -> StoreSettings:
    vectors, catalog = kind.split("-")
    values: dict[str, object] = {"backend": vectors, **extra}
    if vectors == "milvus":
        from tests.scaleout.conftest import need_milvus

        values.update(uri=need_milvus(), table=services.collection())
    if catalog == "postgres":
        values["catalog_url"] = services.database()
    return StoreSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str, services: Services, tmp_path: Path) -> ChunkStore:
    made = ChunkStore(tmp_path / "index", store_settings(kind, services))
    yield made  # type: ignore[misc]
    made.close()


def _doc(doc_id: str, acl: str, texts: list[str], vectors: list[list[float]]) -> PreparedDocument:
    record = DocumentRecord(
        doc_id,
        f"/src/{doc_id}.txt",
        doc_id,
        acl,
        "en",
        "",
        (),
        "h" + doc_id,
        len(texts),
        10,
        time.time(),
    )
    chunks = [
        ChunkRecord(f"{doc_id}-{i}", doc_id, acl, i, t, (), 0, len(t), tuple(tokenize(t)))
        for i, t in enumerate(texts)
    ]
    return PreparedDocument(record, chunks, vectors)


def _unit(rng: np.random.Generator, n: int, dim: int = 384) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype("float32")
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_acl_filter_is_inside_the_vector_query(store: ChunkStore) -> None:
    rng = np.random.default_rng(0)
    q = _unit(rng, 1)[0]
    near = [(q + 0.001 * v).tolist() for v in _unit(rng, 5)]
    store.write([_doc("alice-doc", acl_for(user="alice"), ["private"] * 5, near)])
    store.write(
        [_doc("pub", "public", [f"public {i}" for i in range(20)], _unit(rng, 20).tolist())]
    )
    store.optimize()
    bob = store.vector_search(q.tolist(), readable_acls("bob"), top_k=5)
    assert len(bob) == 5 and all(h.chunk_id.startswith("pub-") for h in bob)
    alice = store.vector_search(q.tolist(), readable_acls("alice"), top_k=5)
    assert [h.chunk_id.startswith("alice-doc-") for h in alice] == [True] * 5
    assert alice[0].similarity > 0.99  # a real similarity, not a rank or a distance
    group = store.vector_search(q.tolist(), readable_acls("carol", ["team"]), top_k=3)
    assert all(h.chunk_id.startswith("pub-") for h in group)


def test_keyword_search_english_and_chinese_respects_acl(store: ChunkStore) -> None:
    rng = np.random.default_rng(3)
    store.write(
        [
            _doc(
                "en",
                "public",
                ["Lubricate the bike chain after rain.", "Tomatoes love sun."],
                _unit(rng, 2).tolist(),
            )
        ]
    )
    store.write(
        [
            _doc(
                "zh",
                "public",
                ["自行车链条需要定期清洁和润滑。", "番茄喜欢阳光。"],
                _unit(rng, 2).tolist(),
            )
        ]
    )
    store.write(
        [_doc("secret", acl_for(user="alice"), ["chain secrets of alice"], _unit(rng, 1).tolist())]
    )
    hits = store.keyword_search(tokenize("how often to lubricate chains?"), readable_acls("bob"), 5)
    assert hits[0][0] == "en-0" and all(not h[0].startswith("secret") for h in hits)
    assert store.keyword_search(tokenize("链条怎么润滑"), readable_acls("bob"), 5)[0][0] == "zh-0"
    hits = store.keyword_search(tokenize("chain"), readable_acls("alice"), 5)
    assert {h[0] for h in hits} == {"en-0", "secret-0"}
    assert store.keyword_search(tokenize("chain"), [], 5) == []


def test_a_phrase_term_matches_only_neighbouring_words(store: ChunkStore) -> None:
    """PostgreSQL ranks by cover density, not BM25: a phrase must still lift the chunk that
    keeps the words together more than the one that has them apart (see tests/test_store.py
    for the BM25 ranking)."""
    rng = np.random.default_rng(5)
    texts = [WORDS_APART, WORDS_TOGETHER, "Tomatoes love sun."]
    store.write([_doc("r", "public", texts, _unit(rng, 3).tolist())])
    store.optimize()
    words = tokenize(PHRASE_QUESTION)
    before = dict(store.keyword_search(words, readable_acls(None), 5))
    after = dict(store.keyword_search([*words, *phrase_terms(words)], readable_acls(None), 5))
    assert set(before) == set(after) == {"r-0", "r-1"}
    assert after["r-1"] - before["r-1"] > after["r-0"] - before["r-0"]
    only_phrase = store.keyword_search(["male femal"], readable_acls(None), 5)
    assert [h[0] for h in only_phrase] == ["r-1"]
    assert store.keyword_search(["male femal"], [acl_for(user="bob")], 5) == []


def test_delete_with_quotes_and_rewrite_is_idempotent(store: ChunkStore) -> None:
    rng = np.random.default_rng(1)
    doc = _doc('it\'s "x"', "public", ["a", "b"], _unit(rng, 2).tolist())
    store.write([doc])
    store.write([doc])  # the same chunk ids again: one row each (upsert / delete-then-add)
    store.write([_doc("other", "public", ["c"], _unit(rng, 1).tolist())])
    assert store.vector_count() == 3 == store.stats()["chunks"]
    assert store.vector_count_for('it\'s "x"') == 2
    assert store.delete_documents(['it\'s "x"']) == 2
    assert store.vector_count() == 1 and store.document('it\'s "x"') is None
    store.vectors.delete_nodes(["other-0", "x'); drop table chunks; --"])
    assert store.vector_count() == 0


def test_documents_are_looked_up_in_one_batch(store: ChunkStore) -> None:
    rng = np.random.default_rng(4)
    store.write([_doc(f"doc-{i}", "public", ["t"], _unit(rng, 1).tolist()) for i in range(3)])
    store.write([_doc("o'hara", "user:ann", ["t"], _unit(rng, 1).tolist())])
    found = store.documents_by_id(["doc-0", "doc-2", "o'hara", "missing", "doc-0"])
    assert sorted(found) == ["doc-0", "doc-2", "o'hara"]
    assert found["o'hara"].acl == "user:ann" and found["doc-2"].source == "/src/doc-2.txt"
    assert store.documents_by_id([]) == {}


def test_rewrite_replaces_chunks_and_reconcile_removes_orphans(store: ChunkStore) -> None:
    rng = np.random.default_rng(2)
    store.write([_doc("d", "public", ["one", "two", "three"], _unit(rng, 3).tolist())])
    new = _doc("d", "public", ["uno"], _unit(rng, 1).tolist())
    new.chunks[0] = ChunkRecord("d-new-0", "d", "public", 0, "uno", (), 0, 3, ("uno",))
    store.write([new])
    assert store.vector_ids() == {"d-new-0"}
    ghost = ChunkRecord("ghost-0", "ghost", "public", 0, "g", (), 0, 1)
    store.vectors.add([_node(new.record, ghost, _unit(rng, 1)[0].tolist())])  # interrupted write
    assert store.vector_count() == 2
    assert store.reconcile() == 1
    assert store.vector_ids() == {"d-new-0"}


def test_ingest_delete_and_reingest(kind: str, services: Services, tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "index", store_settings(kind, services))
    job = IngestJob(
        store=store,
        embedder=CountingEmbedder(),
        settings=IngestSettings(chunk_tokens=60, batch_chunks=16),
    )
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    first = job.run([corpus])
    assert first.added == 7 and store.vector_count() == first.chunks == store.stats()["chunks"]
    again = job.run([corpus])
    assert (again.added, again.unchanged, again.chunks) == (0, 7, 0)
    doc_id = document_id("public", corpus / "doc1.md")
    chunks = store.vector_count_for(doc_id)
    assert store.delete_documents([doc_id]) == chunks > 0
    assert store.vector_count_for(doc_id) == 0
    back = job.run([corpus])
    assert back.added == 1 and store.vector_count_for(doc_id) == chunks
    assert store.vector_count() == store.stats()["chunks"] == first.chunks
    (corpus / "doc2.md").unlink()
    assert job.run([corpus], prune=True).pruned == 1
    assert store.vector_count() == store.stats()["chunks"] < first.chunks
    store.close()


def test_filtered_and_broad_recall(kind: str, services: Services, tmp_path: Path) -> None:
    """Recall@5 against brute force after optimize (Milvus: flush + wait for the HNSW index).

    Half the chunks are public, half belong to one of 20 users; a reader's filter is either
    their own label (5 % of rows) or public + own (52 %), as for a signed-in user.
    """
    rng = np.random.default_rng(4)
    n, users = 4000, 20
    store = ChunkStore(tmp_path / "index", store_settings(kind, services))
    vectors = _unit(rng, n)
    acl = ["public" if i % 2 else acl_for(user=f"u{i % users}") for i in range(n)]
    docs = []
    for label in sorted(set(acl)):
        idx = [i for i in range(n) if acl[i] == label]
        rec = DocumentRecord(label, label, label, label, "en", "", (), label, len(idx), 1, 0.0)
        chunks = [ChunkRecord(f"c{i}", label, label, k, "x", (), 0, 1) for k, i in enumerate(idx)]
        docs.append(PreparedDocument(rec, chunks, vectors[idx].tolist()))
    store.write(docs)
    store.optimize()
    found = {"own": 0, "public+own": 0}
    queries = 20
    for k in range(queries):
        user = f"u{(2 * k) % users}"
        for mode, acls in (("own", [acl_for(user=user)]), ("public+own", readable_acls(user))):
            q = _unit(rng, 1)[0]
            idx = [i for i in range(n) if acl[i] in acls]
            exact = {f"c{idx[j]}" for j in np.argsort(-(vectors[idx] @ q))[:5]}
            found[mode] += len(
                exact & {h.chunk_id for h in store.vector_search(q.tolist(), acls, 5)}
            )
    recall = {m: v / (5 * queries) for m, v in found.items()}
    # LanceDB (HNSW, ef 1024, exact re-rank) is exact here. Milvus's filtered HNSW search on
    # uniformly random 384-d vectors, the hardest case for any ANN index, misses a few of
    # the 100 true neighbours in some runs (0.96 seen in a fresh-clone run; make bench-store:
    # 0.80-0.98 at 20k/200k), so it gets a floor rather than exactness.
    floor = 1.0 if kind.startswith("lancedb") else 0.95
    assert min(recall.values()) >= floor, recall
    store.close()


@pytest.mark.parametrize("kind", ["milvus-postgres"])
def test_two_store_instances_share_everything(
    kind: str, services: Services, tmp_path: Path
) -> None:
    """Two app processes = two ChunkStores on the same servers: no state stays in one."""
    settings = store_settings(kind, services)
    a = ChunkStore(tmp_path / "a", settings)
    b = ChunkStore(tmp_path / "b", settings)
    rng = np.random.default_rng(5)
    vec = _unit(rng, 1)[0]
    a.write([_doc("shared", "public", ["the shared chain guide"], [vec.tolist()])])
    assert b.document("shared") is not None
    assert b.keyword_search(tokenize("chain"), ["public"], 5)[0][0] == "shared-0"
    assert b.vector_search(vec.tolist(), ["public"], 1)[0].chunk_id == "shared-0"
    b.delete_documents(["shared"])
    assert a.vector_count() == 0 and a.document("shared") is None
    a.close()
    b.close()
