"""Run a simulator against the wall clock, for a dev server and its web phone.

``RealtimeRunner(sim, speed)`` owns the loop: a daemon thread moves ``sim.now`` with the
wall clock (times ``speed``) and processes the events that fall due, sleeping until the
next one but never more than ``MAX_SLEEP`` seconds; anything scheduled meanwhile (REST
calls, the web phone's clicks, from other threads at ``sim.now``) wakes it at once. While
it runs, nobody else may call ``sim.run``/``sim.advance``.
"""

from __future__ import annotations

import logging
import threading
import time

from hotline.simulator.core import Sim

log = logging.getLogger(__name__)

#: Longest wall-clock sleep between two looks at the event heap.
MAX_SLEEP = 0.05
#: Wall-clock seconds ``stop`` waits for the thread to finish its current event.
JOIN_TIMEOUT = 5.0


class RealtimeRunner:
    """Advances ``sim`` in real time (``speed`` virtual seconds per wall second)."""

    def __init__(self, sim: Sim, speed: float = 1.0) -> None:
        """Prepare a runner; ``start`` launches its thread."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.sim, self.speed = sim, speed
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._origin = (0.0, 0.0)  # (wall clock, sim.now) when the thread started

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the daemon thread (virtual time continues from ``sim.now``)."""
        if self.running:
            raise RuntimeError("the runner is already running")
        self._stop.clear()
        self.sim.on_schedule.append(self._wake.set)
        self._thread = threading.Thread(target=self._loop, name="twilio-sim-clock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the event in progress and join the thread (safe to call twice)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT)
        self._thread = None
        if self._wake.set in self.sim.on_schedule:
            self.sim.on_schedule.remove(self._wake.set)

    def _loop(self) -> None:
        self._origin = (time.monotonic(), self.sim.now)
        while not self._stop.is_set():
            self._wake.clear()
            self._advance_to(self._virtual_now())
            self._wake.wait(self._sleep_for())

    def _virtual_now(self) -> float:
        """Where the wall clock says virtual time should be."""
        wall_start, sim_start = self._origin
        return sim_start + (time.monotonic() - wall_start) * self.speed

    def _advance_to(self, target: float) -> None:
        """Process what is due by ``target``; a failing event is logged, the clock goes on."""
        try:
            self.sim.advance(max(0.0, target - self.sim.now))
        except Exception as error:  # noqa: BLE001 - one bad event must not stop the phones
            self.errors.append(error)
            log.exception("simulator event failed")

    def _sleep_for(self) -> float:
        """Wall seconds until the next event is due (at most ``MAX_SLEEP``)."""
        due = self.sim.next_due()
        if due is None:
            return MAX_SLEEP
        return min(MAX_SLEEP, max(0.0, (due - self._virtual_now()) / self.speed))
