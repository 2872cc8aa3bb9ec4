"""Load test: N concurrent users stream chats from a running server (loopback only, bounded).

Each virtual user signs up (or logs in), then asks questions one after another over
``POST /api/chat`` (SSE) until it has asked ``--requests`` of them or the level's time budget
runs out. Reported per level: p50/p95 of the total answer time and of the time to the first
token, requests per second, and outcomes: ok, 503 (the server said its queue was full, with
Retry-After), other errors. ``/api/health`` is polled meanwhile for the largest queue seen.

Usage:
  python bench/load.py --url http://127.0.0.1:7860 [--users 1,10,20] [--requests 3]
  python bench/load.py --spawn [--server-env CHATBOT_WEB__MAX_QUEUED_CHATS=4 ...]

``--spawn`` starts ``chatbot serve`` itself on a free loopback port with the fake models, a
temporary data dir and the sample documents, and stops it at the end. ``--spawn --real-models``
does the same with the real default models (the converted LLM under ``data/models`` is reused,
not copied), which is the figure that matters:

  python bench/load.py --spawn --real-models --warmup --requests 1 --budget 900 --timeout 900
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

QUESTIONS = [
    "How often should I clean and lubricate my bike chain?",
    "What tyre pressure should I use?",
    "How do I fix a flat tyre?",
    "自行车链条应该多久清洁一次？",
    "When should I replace my chain?",
    "How do I true a wheel?",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Result:
    ok: bool
    status: int
    total_s: float
    first_token_s: float | None = None
    error: str = ""
    queued_s: float = 0.0  # time spent in the server's reported queue (``queue`` events)


@dataclass
class Level:
    users: int
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0
    max_waiting: int = 0
    max_active: int = 0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def session(base: str, name: str, password: str, timeout: float) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=timeout)
    body = {"username": name, "password": password}
    r = client.post("/api/auth/signup", json=body)
    if r.status_code != 201:
        r = client.post("/api/auth/login", json=body)
        r.raise_for_status()
    return client


def one_chat(client: httpx.Client, question: str) -> Result:
    started = time.perf_counter()
    first = None
    try:
        with client.stream("POST", "/api/chat", json={"message": question}) as r:
            if r.status_code != 200:
                r.read()
                return Result(
                    False, r.status_code, time.perf_counter() - started, error=r.text[:200]
                )
            event, queued, slot = "", False, 0.0
            for line in r.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                    if event == "queue":
                        queued = True
                    elif not slot:  # the first event after the wait: a slot was free
                        slot = time.perf_counter() - started
                    if event == "token" and first is None:
                        first = time.perf_counter() - started
                elif line.startswith("data:") and event == "error":
                    busy = '"busy"' in line  # the wait timed out: an honest 503 in the stream
                    return Result(
                        False, 503 if busy else 200, time.perf_counter() - started, first, line
                    )
            done = event == "done"
            return Result(
                done,
                200,
                time.perf_counter() - started,
                first,
                "" if done else "no done",
                slot if queued else 0.0,
            )
    except httpx.HTTPError as exc:
        return Result(False, 0, time.perf_counter() - started, first, type(exc).__name__)


def run_level(base: str, users: int, requests: int, budget_s: float, timeout: float) -> Level:
    level = Level(users)
    stop = threading.Event()
    deadline = time.monotonic() + budget_s
    run_id = uuid.uuid4().hex[:6]
    lock = threading.Lock()

    def watch() -> None:
        with httpx.Client(base_url=base, timeout=5) as c:
            while not stop.is_set():
                try:
                    queue = c.get("/api/health").json()["queue"]
                    level.max_waiting = max(level.max_waiting, queue["waiting"])
                    level.max_active = max(level.max_active, queue["active"])
                except (httpx.HTTPError, KeyError, ValueError):
                    pass
                stop.wait(0.2)

    def user(i: int) -> None:
        client = session(base, f"load-{run_id}-{i}", "load-test-password", timeout)
        try:
            for n in range(requests):
                if time.monotonic() > deadline:
                    return
                result = one_chat(client, QUESTIONS[(i + n) % len(QUESTIONS)])
                with lock:
                    level.results.append(result)
        finally:
            client.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=users) as pool:
        list(pool.map(user, range(users)))
    level.seconds = time.perf_counter() - started
    stop.set()
    watcher.join(timeout=2)
    return level


def report(level: Level) -> dict[str, object]:
    ok = [r for r in level.results if r.ok]
    busy = [r for r in level.results if r.status == 503]
    errors = [r for r in level.results if not r.ok and r.status != 503]
    totals = [r.total_s for r in ok]
    firsts = [r.first_token_s for r in ok if r.first_token_s is not None]
    return {
        "users": level.users,
        "requests": len(level.results),
        "ok": len(ok),
        "503_busy": len(busy),
        "errors": len(errors),
        "p50_s": round(percentile(totals, 0.5), 3),
        "p95_s": round(percentile(totals, 0.95), 3),
        "p50_first_token_s": round(percentile(firsts, 0.5), 3),
        "p95_after_queue_s": round(percentile([r.total_s - r.queued_s for r in ok], 0.95), 3),
        "queued": sum(1 for r in ok if r.queued_s),
        "p95_queued_s": round(percentile([r.queued_s for r in ok], 0.95), 3),
        "ok_per_s": round(len(ok) / level.seconds, 2) if level.seconds else 0.0,
        "max_waiting": level.max_waiting,
        "max_active": level.max_active,
        "error_samples": sorted({r.error for r in errors})[:3],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(
    extra_env: list[str], *, real_models: bool = False
) -> tuple[subprocess.Popen[bytes], str, tempfile.TemporaryDirectory[str]]:
    tmp = tempfile.TemporaryDirectory(prefix="chatbot-load-")
    root = Path(__file__).resolve().parents[1]
    port = free_port()
    data = Path(tmp.name) / "data"
    env = {
        **os.environ,
        "CHATBOT_DATA_DIR": str(data),
        "CHATBOT_LOG_LEVEL": "WARNING",
    }
    if real_models:
        data.mkdir()
        models = root / "data" / "models"
        if models.is_dir():  # reuse the one-time conversion of the local LLM
            (data / "models").symlink_to(models)
    else:
        env.update({"CHATBOT_LLM__MODE": "fake", "CHATBOT_EMBEDDING__MODE": "fake"})
    for item in extra_env:
        key, _, value = item.partition("=")
        env[key] = value
    command = [sys.executable, "-m", "chatbot", "serve", "--port", str(port), "--ingest-samples"]
    proc = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + (600 if real_models else 180)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                return proc, base, tmp
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start in time")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:7860")
    parser.add_argument("--spawn", action="store_true", help="start a fake-model server")
    parser.add_argument(
        "--real-models", action="store_true", help="with --spawn: the real default models"
    )
    parser.add_argument("--server-env", action="append", default=[], help="KEY=VALUE for --spawn")
    parser.add_argument(
        "--warmup", action="store_true", help="answer one chat before measuring (not counted)"
    )
    parser.add_argument("--users", default="1,10,20", help="comma-separated levels")
    parser.add_argument("--requests", type=int, default=3, help="chats per user per level")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per level, at most")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    proc = tmp = None
    base = args.url.rstrip("/")
    if args.spawn:
        proc, base, tmp = spawn(args.server_env, real_models=args.real_models)
    if urlsplit(base).hostname not in LOOPBACK:
        raise SystemExit("load tests target loopback addresses only (127.0.0.1, localhost, ::1)")
    try:
        if args.warmup:  # one answer first, so no level pays for loading the model
            report(run_level(base, 1, 1, args.timeout, args.timeout))
        rows = []
        for users in (int(u) for u in args.users.split(",")):
            row = report(run_level(base, users, args.requests, args.budget, args.timeout))
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
        print(f"\n{'users':>5} {'reqs':>5} {'ok':>4} {'503':>4} {'err':>4} {'p50 s':>7} {'p95 s':>7} "
              f"{'TTFT p50':>8} {'ok/s':>6} {'max queue':>9}")  # fmt: skip
        for r in rows:
            print(f"{r['users']:>5} {r['requests']:>5} {r['ok']:>4} {r['503_busy']:>4} {r['errors']:>4} "
                  f"{r['p50_s']:>7} {r['p95_s']:>7} {r['p50_first_token_s']:>8} {r['ok_per_s']:>6} "
                  f"{r['max_waiting']:>9}")  # fmt: skip
        single = next((r["p50_s"] for r in rows if r["users"] == 1 and r["ok"]), None)
        if single:
            for r in rows:
                ratio = float(str(r["p95_s"])) / float(str(single))
                served = float(str(r["p95_after_queue_s"])) / float(str(single))
                print(f"{r['users']} users: p95 = {ratio:.2f}x the single-user p50; after the "
                      f"reported queue wait {served:.2f}x")  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
