"""Honest queueing: a full generation queue answers 503 with Retry-After at once."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from chatbot.web.gate import GenerationGate, QueueFull, Ticket
from tests.web.conftest import signup


def test_gate_bounds_active_and_waiting() -> None:
    gate = GenerationGate(slots=1, max_waiting=1, timeout_s=5)
    first = gate.reserve()
    assert first.wait()
    second = gate.reserve()  # waits in line
    with pytest.raises(QueueFull) as full:
        gate.reserve()
    assert full.value.retry_after >= 1
    assert gate.stats()["active"] == 1 and gate.stats()["waiting"] == 1
    threading.Timer(0.2, first.release).start()
    assert second.wait()  # gets the slot once the first is done
    second.release()
    assert gate.stats()["active"] == gate.stats()["waiting"] == 0


def test_waiting_times_out_instead_of_hanging() -> None:
    gate = GenerationGate(slots=1, max_waiting=5, timeout_s=0.3)
    holder = gate.reserve()
    holder.wait()
    late = gate.reserve()
    started = time.monotonic()
    with pytest.raises(QueueFull), late:
        pass
    assert time.monotonic() - started < 2
    holder.release()
    assert gate.stats()["waiting"] == 0


def test_a_wait_longer_than_the_timeout_is_refused_at_once() -> None:
    gate = GenerationGate(slots=1, max_waiting=10, timeout_s=30)
    gate._avg_s = 20.0  # answers take 20 s: the second in line would wait 40 s > 30 s
    first = gate.reserve()
    assert first.wait()
    second = gate.reserve()  # 20 s expected: accepted
    with pytest.raises(QueueFull) as full:
        gate.reserve()
    assert full.value.retry_after >= 20
    second.release()
    first.release()


def test_external_model_queue_counts() -> None:
    gate = GenerationGate(slots=1, max_waiting=2, timeout_s=1, external_depth=lambda: 5)
    with pytest.raises(QueueFull):
        gate.reserve()


def _occupy_every_slot(gate: GenerationGate) -> list[Ticket]:
    running = [gate.reserve() for _ in range(gate.slots)]
    for ticket in running:
        assert ticket.wait()
    return running


def test_api_answers_503_with_retry_after_when_the_queue_is_full(client: Any, app: Any) -> None:
    signup(client, "alice")
    gate = app.state.web.gate
    held = _occupy_every_slot(gate) + [gate.reserve() for _ in range(gate.max_waiting)]
    r = client.post("/api/chat", json={"message": "How do I clean my chain?"})
    assert r.status_code == 503
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "busy"
    for ticket in held:
        ticket.release()
    assert client.post("/api/chat", json={"message": "How do I clean my chain?"}).status_code == 200
    health = client.get("/api/health").json()
    assert health["queue"]["active"] == 0 and health["queue"]["waiting"] == 0


def test_a_waiting_chat_is_told_its_place_in_line(client: Any, app: Any) -> None:
    signup(client, "bob")
    gate = app.state.web.gate
    running = _occupy_every_slot(gate)

    def release_all() -> None:
        # release once the chat is seen waiting in line (a fixed delay raced a loaded machine:
        # the slots were free again before the request arrived)
        deadline = time.monotonic() + 60
        while gate.stats()["waiting"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # at least one queue event goes out while it waits
        for ticket in running:
            ticket.release()

    releaser = threading.Thread(target=release_all)
    releaser.start()
    events = []
    with client.stream("POST", "/api/chat", json={"message": "How do I clean my chain?"}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event:"):
                events.append(line[6:].strip())
    releaser.join()
    assert events[0] == "queue", events
    assert events[-1] == "done", events
    assert "sources" in events and events.index("sources") > 0
