"""The simulator's virtual clock, its sid generator and its events timeline.

``Clock`` is the base of ``TwilioSim``: a heap of ``Timer`` s processed in time order by
``run``/``advance`` (one thread at a time: the test's, or a ``RealtimeRunner``'s), while
any thread may ``schedule`` work under ``lock``.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, Callable

from hotline.simulator.state import Timer

#: Virtual time 0 as a wall-clock date, fixed so timelines and signatures are reproducible.
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)


class Clock:
    """Virtual time, scheduled callbacks, sids and the ``events`` log (guarded by ``lock``)."""

    def __init__(self, epoch: datetime = EPOCH, seed: int = 0) -> None:
        """Start at virtual time 0 with nothing scheduled."""
        self.epoch = epoch
        self.lock = threading.RLock()
        self.now = 0.0
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        #: ``(wall-clock time, kind, details)`` of moments a benchmark times across
        #: processes (a caller queued, a supporter's phone starting to ring); see ``stamp``.
        self.stamps: list[tuple[float, str, dict[str, Any]]] = []
        self.on_idle: list[Callable[[], None]] = []
        #: Called (lock held, keep them quick) whenever something is scheduled, so a loop
        #: sleeping in another thread can wake up for it (see ``RealtimeRunner``).
        self.on_schedule: list[Callable[[], None]] = []
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._rng = random.Random(seed)

    def schedule(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` from the loop ``delay`` virtual seconds from now (thread-safe)."""
        with self.lock:
            timer = Timer(self.now + max(0.0, delay), next(self._seq), callback)
            heapq.heappush(self._heap, timer)
            for wake in self.on_schedule:
                wake()
            return timer

    def run(self, until: Callable[[], bool] | None = None, max_seconds: float = 600) -> bool:
        """Process events in time order until ``until()``, no events, or ``max_seconds`` pass.

        Returns True if ``until()`` became true.
        """
        deadline = self.now + max_seconds
        while True:
            if until is not None and until():
                return True
            if not self._step(deadline):
                return until is not None and until()

    def advance(self, seconds: float) -> None:
        """Process every event up to ``now + seconds`` and move the clock there."""
        target = self.now + seconds
        while self._step(target):
            pass
        with self.lock:
            self.now = max(self.now, target)

    def next_due(self) -> float | None:
        """Virtual time of the next pending event (None if nothing is scheduled)."""
        with self.lock:
            self._drop_canceled()
            return self._heap[0].when if self._heap else None

    def _drop_canceled(self) -> None:
        while self._heap and self._heap[0].callback is None:
            heapq.heappop(self._heap)

    def _step(self, deadline: float) -> bool:
        """Process the next event due by ``deadline``, then the idle hooks."""
        with self.lock:
            self._drop_canceled()
            if not self._heap or self._heap[0].when > deadline:
                return False
            timer = heapq.heappop(self._heap)
            self.now = max(self.now, timer.when)
            assert timer.callback is not None
            timer.callback()
        for hook in list(self.on_idle):
            hook()
        return True

    def datetime_at(self, t: float | None = None) -> datetime:
        """Wall-clock time of virtual time ``t`` (default: now)."""
        return self.epoch + timedelta(seconds=self.now if t is None else t)

    def rfc2822(self, t: float | None = None) -> str:
        """Twilio's date format for virtual time ``t`` (default: now)."""
        return format_datetime(self.datetime_at(t))

    def new_sid(self, prefix: str) -> str:
        """A fresh Twilio-style sid: ``prefix`` + 32 hex digits (seeded, reproducible)."""
        with self.lock:
            return f"{prefix}{self._rng.getrandbits(128):032x}"

    def log(self, kind: str, **details: Any) -> None:
        """Append ``(now, kind, details)`` to the events timeline."""
        with self.lock:
            self.events.append((self.now, kind, details))

    def stamp(self, kind: str, at: float | None = None, **details: Any) -> None:
        """Record a wall-clock moment (``time.time()``, or ``at``) for timing across processes.

        Virtual time cannot be compared with the app's clock, and when the loop runs late
        it stamps events with the time they were due, not when they happened.
        """
        with self.lock:
            self.stamps.append((time.time() if at is None else at, kind, details))

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        """The details of every event of ``kind``, in order."""
        return [details for _, k, details in self.events if k == kind]

    def timeline(self) -> str:
        """The events log as readable lines (handy in assertion messages)."""
        return "\n".join(f"{t:8.1f} {kind:<9} {details}" for t, kind, details in self.events)
