"""Honest queueing in front of answer generation.

At most ``slots`` answers are generated at once; up to ``max_waiting`` more wait in line. A
request beyond that is refused at once with 503 and a Retry-After estimate instead of hanging,
and a waiting request gives up after ``timeout_s``. With the local model, its own process-wide
queue depth (``chatbot.models.local_chat.queue_depth``) also counts, so callers outside the web
layer are seen too.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from types import TracebackType

_MAX_RETRY_AFTER_S = 300


class QueueFull(Exception):
    """The generation queue is full; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int, message: str) -> None:
        """Seconds to wait and a message for people."""
        super().__init__(message)
        self.retry_after = retry_after


class GenerationGate:
    """A counting gate with a bounded waiting line (thread-safe)."""

    def __init__(
        self,
        *,
        slots: int,
        max_waiting: int,
        timeout_s: float,
        external_depth: Callable[[], int] | None = None,
    ) -> None:
        """``external_depth`` reports callers already generating or waiting elsewhere."""
        self.slots = slots
        self.max_waiting = max_waiting
        self.timeout_s = timeout_s
        self._external_depth = external_depth
        self._semaphore = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._waiting = 0
        self._active = 0
        self._avg_s = 3.0  # running mean of one generation, seeds the Retry-After estimate
        self._seen = False

    def stats(self) -> dict[str, int | float]:
        """Active and waiting generations (for /api/health and the load test)."""
        with self._lock:
            stats: dict[str, int | float] = {
                "active": self._active,
                "waiting": self._waiting,
                "slots": self.slots,
                "max_waiting": self.max_waiting,
                "avg_generation_s": round(self._avg_s, 2),
            }
        if self._external_depth is not None:
            stats["model_queue_depth"] = self._external_depth()
        return stats

    def retry_after(self) -> int:
        with self._lock:
            ahead = self._waiting + self._active
        return max(1, min(_MAX_RETRY_AFTER_S, math.ceil(self._avg_s * (ahead + 1) / self.slots)))

    def reserve(self) -> Ticket:
        """A place in line; QueueFull if the line is already full."""
        external = self._external_depth() if self._external_depth is not None else 0
        with self._lock:
            line = max(self._waiting, external - self.slots)
            # A caller whose expected wait already exceeds the timeout is refused now rather
            # than after waiting the whole timeout for nothing.
            expected = self._avg_s * (line + 1) / self.slots
            full = line >= self.max_waiting or (line > 0 and expected > self.timeout_s)
            if not full:
                self._waiting += 1
        if full:
            wait = self.retry_after()
            raise QueueFull(
                wait, f"the server is busy ({line} requests waiting); retry in {wait} s"
            )
        return Ticket(self)

    def _enter(self, timeout: float) -> bool:
        if not self._semaphore.acquire(timeout=timeout):
            return False
        with self._lock:
            self._waiting -= 1
            self._active += 1
        return True

    def _leave_line(self) -> None:
        with self._lock:
            self._waiting -= 1

    def _exit(self, seconds: float) -> None:
        with self._lock:
            self._active -= 1
            # the first real generation replaces the seed; later ones move the mean slowly
            self._avg_s = seconds if not self._seen else 0.8 * self._avg_s + 0.2 * seconds
            self._seen = True
        self._semaphore.release()


class Ticket:
    """A reserved place: ``wait()`` for a slot (bounded), ``release()`` when done (idempotent)."""

    def __init__(self, gate: GenerationGate) -> None:
        """Created by :meth:`GenerationGate.reserve` only."""
        self._gate = gate
        self._state = "waiting"
        self._started = 0.0
        self._deadline = time.monotonic() + gate.timeout_s

    def wait(self, step_s: float | None = None) -> bool:
        """Wait up to ``step_s`` (default: the rest of the timeout); True once a slot is ours.

        Raises QueueFull when the overall timeout has passed without a slot.
        """
        if self._state == "active":
            return True
        if self._state != "waiting":
            raise RuntimeError("ticket already released")
        left = self._deadline - time.monotonic()
        if left <= 0:
            self.release()
            wait = self._gate.retry_after()
            raise QueueFull(wait, f"no generation slot within {self._gate.timeout_s:g} s")
        if self._gate._enter(min(left, step_s) if step_s else left):
            self._state, self._started = "active", time.monotonic()
            return True
        return False

    def status(self) -> dict[str, int]:
        """What a waiting caller is told: requests in line, generating, and a wait estimate."""
        stats = self._gate.stats()
        return {
            "waiting": int(stats["waiting"]),
            "active": int(stats["active"]),
            "estimated_wait_s": self._gate.retry_after(),
        }

    def release(self) -> None:
        if self._state == "waiting":
            self._gate._leave_line()
        elif self._state == "active":
            self._gate._exit(time.monotonic() - self._started)
        self._state = "released"

    def __enter__(self) -> Ticket:
        while not self.wait():
            pass
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
