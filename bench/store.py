"""Store benchmark: the embedded default (LanceDB + SQLite) vs Milvus + PostgreSQL, same run.

Synthetic data: 384-d normalised float32 vectors around 2,000 cluster centres, chunks owned
by 100 users (a per-user filter keeps 1 %), short chunk texts with a few terms. Measured
through ``ChunkStore`` (the code path of ingestion and retrieval): ingest throughput
(vectors + catalog commit), index/optimize time, then 100 queries each unfiltered (the
LlamaIndex store queried without a filter) and filtered (``vector_search`` with one user's
ACL label): p50/p95 latency and recall@5 against exact numpy search; then the cold open
(a new process opens the store and answers one filtered query).

    make bench-store                      # starts PostgreSQL + Milvus in a private netns
    python bench/store.py --sizes 20000   # embedded only when MILVUS_URI is not set

Writes reports/bench-store.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.vector_stores.types import VectorStoreQuery

from chatbot.domain import acl_for
from chatbot.index.catalog import ChunkRecord, DocumentRecord
from chatbot.index.storage import ChunkStore, PreparedDocument
from chatbot.settings import StoreSettings

DIM, USERS, CENTRES, QUERIES, DOC_CHUNKS, BATCH = 384, 100, 2000, 100, 100, 2000
WORDS = ["chain", "brake", "tomato", "budget", "tax", "garden", "wheel", "loan", "seed", "soil"]


def data(n: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CENTRES, DIM)).astype("float32")
    vectors = centres[rng.integers(0, CENTRES, n)] + 0.35 * rng.standard_normal((n, DIM)).astype(
        "float32"
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, [i % USERS for i in range(n)]


def documents(vectors: np.ndarray, owners: list[int]) -> list[PreparedDocument]:
    by_user: dict[int, list[int]] = {}
    for i, u in enumerate(owners):
        by_user.setdefault(u, []).append(i)
    docs = []
    for u, idx in by_user.items():
        acl = acl_for(user=f"u{u}")
        for start in range(0, len(idx), DOC_CHUNKS):
            part = idx[start : start + DOC_CHUNKS]
            doc_id = f"u{u}-d{start // DOC_CHUNKS}"
            rec = DocumentRecord(
                doc_id,
                f"/bench/{doc_id}",
                doc_id,
                acl,
                "en",
                "",
                (),
                doc_id,
                len(part),
                1,
                time.time(),
            )
            chunks = []
            for k, i in enumerate(part):
                terms = (WORDS[i % 10], WORDS[(i // 10) % 10], f"t{i % 997}")
                chunks.append(
                    ChunkRecord(f"c{i}", doc_id, acl, k, " ".join(terms), (), 0, 1, terms)
                )
            docs.append(PreparedDocument(rec, chunks, vectors[part].tolist()))
    return docs


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def run(name: str, settings: StoreSettings, n: int) -> dict[str, Any]:
    vectors, owners = data(n)
    docs = documents(vectors, owners)
    store = ChunkStore(Path(tempfile.mkdtemp(prefix="bench-store-")) / "index", settings)
    started = time.perf_counter()
    pending: list[PreparedDocument] = []
    for doc in docs:
        pending.append(doc)
        if sum(len(d.chunks) for d in pending) >= BATCH:
            store.write(pending)
            pending = []
    store.write(pending)
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    store.optimize()
    optimize_s = time.perf_counter() - started
    rng = np.random.default_rng(1)
    unfiltered_ms, filtered_ms, hit_u, hit_f = [], [], 0, 0
    owner_arr = np.array(owners)
    for _ in range(QUERIES):
        q = vectors[rng.integers(0, n)] + 0.2 * rng.standard_normal(DIM).astype("float32")
        q /= np.linalg.norm(q)
        exact = {f"c{j}" for j in np.argsort(-(vectors @ q))[:5]}
        t = time.perf_counter()
        result = store.vectors.query(
            VectorStoreQuery(query_embedding=q.tolist(), similarity_top_k=5)
        )
        unfiltered_ms.append((time.perf_counter() - t) * 1000)
        got = set(result.ids or [node.node_id for node in result.nodes or []])
        hit_u += len(exact & got)
        u = int(rng.integers(0, USERS))
        idx = np.flatnonzero(owner_arr == u)
        exact_f = {f"c{idx[j]}" for j in np.argsort(-(vectors[idx] @ q))[:5]}
        t = time.perf_counter()
        hits = store.vector_search(q.tolist(), [acl_for(user=f"u{u}")], 5)
        filtered_ms.append((time.perf_counter() - t) * 1000)
        hit_f += len(exact_f & {h.chunk_id for h in hits})
    assert store.vector_count() == n == store.stats()["chunks"]
    store.close()
    cold_open_s = cold_open(store.index_dir, settings, vectors[0].tolist())
    u50, u95 = percentiles(unfiltered_ms)
    f50, f95 = percentiles(filtered_ms)
    return {
        "store": name,
        "chunks": n,
        "ingest_s": round(ingest_s, 1),
        "ingest_chunks_per_s": round(n / ingest_s),
        "optimize_s": round(optimize_s, 1),
        "unfiltered_p50_ms": round(u50, 1),
        "unfiltered_p95_ms": round(u95, 1),
        "unfiltered_recall5": round(hit_u / (5 * QUERIES), 3),
        "filtered_p50_ms": round(f50, 1),
        "filtered_p95_ms": round(f95, 1),
        "filtered_recall5": round(hit_f / (5 * QUERIES), 3),
        "cold_open_s": round(cold_open_s, 2),
    }


COLD_OPEN = """
import json, sys, time
t = time.perf_counter()
from pathlib import Path
from chatbot.domain import acl_for
from chatbot.index.storage import ChunkStore
from chatbot.settings import StoreSettings
imported = time.perf_counter()
settings = StoreSettings.model_validate_json(sys.argv[2])
store = ChunkStore(Path(sys.argv[1]), settings)
store.vector_search(json.loads(sys.argv[3]), [acl_for(user="u0")], 5)
print(time.perf_counter() - imported)
"""


def cold_open(index_dir: Path, settings: StoreSettings, query: list[float]) -> float:
    """Seconds a new process takes to open the store and answer one filtered query.

    Imports are not counted (they are paid once per process, whatever the store size); the
    page cache is whatever the machine has, as after a restart of the app.
    """
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            COLD_OPEN,
            str(index_dir),
            settings.model_dump_json(),
            json.dumps(query),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def milvus_settings(**overrides: Any) -> StoreSettings | None:
    uri, pg = os.environ.get("MILVUS_URI"), os.environ.get("TEST_POSTGRES_URL")
    if not uri or not pg:
        print("Milvus skipped: MILVUS_URI / TEST_POSTGRES_URL not set (use `make bench-store`)")
        return None
    try:
        from pymilvus import MilvusClient

        MilvusClient(uri=uri, timeout=5).list_collections()
    except Exception as exc:  # unreachable server: say so and bench the embedded store only
        print(f"Milvus skipped: {uri} not reachable ({exc})")
        return None
    from sqlalchemy import create_engine, text

    engine = create_engine(pg)
    with engine.begin() as conn:  # a fresh catalog for every run
        conn.execute(text("DROP TABLE IF EXISTS catalog_chunks, catalog_documents"))
    engine.dispose()
    return StoreSettings(
        backend="milvus",
        uri=uri,
        catalog_url=pg,
        table="bench_" + uuid.uuid4().hex[:8],
        **overrides,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="20000,200000")
    parser.add_argument("--out", type=Path, default=Path("reports/bench-store.json"))
    parser.add_argument("--ef", type=int, help="HNSW search breadth (default: settings)")
    parser.add_argument("--backends", default="lancedb,milvus")
    args = parser.parse_args()
    overrides = {"ef": args.ef} if args.ef else {}
    backends = args.backends.split(",")
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        if "lancedb" in backends:
            rows.append(run("lancedb+sqlite (embedded)", StoreSettings(**overrides), n))
            print(json.dumps(rows[-1]), flush=True)
        milvus = milvus_settings(**overrides) if "milvus" in backends else None
        if milvus is not None:
            rows.append(run("milvus 2.3.5 + postgresql", milvus, n))
            print(json.dumps(rows[-1]), flush=True)
            from pymilvus import MilvusClient

            MilvusClient(uri=milvus.uri or "").drop_collection(milvus.table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    keys = list(rows[0])
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
