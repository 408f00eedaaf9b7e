"""How webhooks leave the simulator: one at a time from the loop, or side by side.

By default (tests, virtual time) a webhook is posted from the loop and everything waits for
the app's answer: deterministic, and virtual time stands still meanwhile. Twilio itself
calls many webhooks at once, each call's in its own order; ``use_webhook_pool(n)`` (the
stand-in in real time) does the same: a leg's process waits for its document while the
others go on, and status callbacks and other requests whose answer nobody reads leave
without holding up the loop. With one loop posting every webhook in turn, a surge of
callers made each wait for the others' webhooks before its supporter's phone could ring.

The sim only ever requests the app it serves (``owns``): a URL on another origin, given in
a REST call or in TwiML, is an application error, never a request from this host (SSRF).
"""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hotline.simulator.core import Sim
from hotline.simulator.state import Mailbox, Receive
from hotline.simulator.transport import origin


class Delivery:
    """``fetch`` (a process waits for the app's answer) and ``send`` (nobody waits)."""

    webhook_pool: ThreadPoolExecutor | None = None

    def use_webhook_pool(self: Sim, threads: int) -> None:
        """Post webhooks from ``threads`` threads instead of the loop (real time only)."""
        self.webhook_pool = ThreadPoolExecutor(threads, thread_name_prefix="twilio-sim-webhook")

    def fetch(self: Sim, url: str, params: dict[str, str]
              ) -> Generator[Any, Any, tuple[int, str]]:
        """POST a webhook from a leg's process: ``(status, body) = yield from sim.fetch(...)``."""
        if self.webhook_pool is None:
            return self.post(url, params)
        box = Mailbox(self)
        headers = self.signed(url, params)

        def deliver() -> None:
            result = self.deliver(url, params, headers)
            self.schedule(0, lambda: box.put(result))

        self.webhook_pool.submit(deliver)
        status, body = yield Receive(box)
        self.log_request(url, params, status, body)
        return status, body

    def send(self: Sim, url: str, params: dict[str, str]) -> None:
        """POST a webhook whose answer nobody reads (a status callback, an ignored action)."""
        if self.webhook_pool is None:
            self.post(url, params)
            return
        headers = self.signed(url, params)

        def deliver() -> None:
            status, body = self.deliver(url, params, headers)
            self.schedule(0, lambda: self.log_request(url, params, status, body))

        self.webhook_pool.submit(deliver)

    def owns(self: Sim, url: str) -> bool:
        """Whether ``url`` is on the origin of one of the app's webhooks (PUBLIC_BASE_URL's)."""
        mine = {origin(u) for u in (self.voice_url, self.status_callback_url, self.fallback_url,
                                    self.sms_url) if u}
        found = origin(url)
        return found is not None and found in mine

    def signed(self: Sim, url: str, params: dict[str, str]) -> dict[str, str]:
        """The headers of a webhook: Twilio's signature of ``url`` and ``params``."""
        return {"X-Twilio-Signature": self._validator.compute_signature(url, params)}

    def deliver(self: Sim, url: str, params: dict[str, str],
                headers: dict[str, str]) -> tuple[int, str]:
        """One POST through the transport; a failure is status 0 (an application error)."""
        if not self.owns(url):
            return 0, f"URL outside the app's public base: {url} (not requested)"
        try:
            return self.transport.post(url, params, headers)
        except Exception as error:  # noqa: BLE001 - any failure is an app error to Twilio
            return 0, repr(error)

    def log_request(self: Sim, url: str, params: dict[str, str], status: int,
                    body: str) -> None:
        """The ``request`` event of a webhook (and ``error`` for a transport failure)."""
        self.log("request", url=url, status=status,
                 sid=params.get("CallSid") or params.get("MessageSid"))
        if status == 0:
            self.log("error", url=url, detail=body)
