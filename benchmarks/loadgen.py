"""A load generator that plays Twilio: signed call flows and texts over keep-alive HTTP/1.1.

Run as its own process (``benchmarks/webhooks.py`` starts it), one asyncio event loop with
``--connections`` persistent connections to one server on 127.0.0.1. Each connection plays
whole sequences, one request after the other, as Twilio would for one caller:

* a call (2 in 3): the incoming call, the menu choice (1 in 5 callers stay silent first and
  hear the menu again), 3 to 5 polls of the queue's wait URL (QueueTime 0, 8, 16, ...),
  the queue's action URL when the caller hangs up, and the call's status callback;
* a text conversation (1 in 3): a first text (the intake menu), the reply "2" (text with a
  peer) and one more text while waiting.

Every request carries the parameters and headers Twilio sends (including a fresh
``I-Twilio-Idempotency-Token``), a unique CallSid or MessageSid and a unique fictional
``From`` (+1 NPA 555 01xx), and is signed with twilio's ``RequestValidator`` against the
public URL exactly as Twilio signs. Follow-up URLs come from the TwiML just received (the
Gather action, the Enqueue waitUrl and action), so the generator also checks that each
answer is what Twilio expects. The run is bounded: ``--warmup`` seconds unmeasured, then
``--duration`` seconds measured, then every connection stops after its current request.

With ``--rate`` the load is paced instead: each connection sends on a fixed schedule
(``rate / connections`` requests a second, evenly spread), and latency counts from when
a request was due, not from when it was sent, so a slow server cannot hide its queueing
(no coordinated omission).

Writes a JSON report: per route the latencies (ms) of requests that started inside the
measured window, status counts, protocol errors, one sample body per route, and the
generator's own CPU time (to show it was not the bottleneck).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import resource
import time
import uuid
from collections import Counter, defaultdict
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "b" * 32
#: The hotline's number as Twilio's To (fictional).
HOTLINE = "+16175550100"
#: Share of sequences that are calls (the rest are text conversations).
VOICE_SHARE = 2 / 3
#: Share of callers who stay silent at the first menu (they hear it again).
SILENT_FIRST = 0.2
#: Wait-URL polls per call: a caller who hangs up after 16 to 40 seconds in the queue.
WAIT_POLLS = (3, 5)
#: Twilio's queue poll interval as seen by the wait URL (the app's Pause length).
QUEUE_STEP_SECONDS = 8

ACTION = re.compile(rb'<Gather[^>]* action="([^"]+)"')
ENQUEUE = re.compile(rb"<Enqueue([^>]*)>")
ENQUEUE_ACTION = re.compile(rb' action="([^"]+)"')
WAIT_URL = re.compile(rb' waitUrl="([^"]+)"')
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


#: Numbers each run may use before it wraps around into the next run's block.
BLOCK = 5000


#: The area code of the hotline's own numbers and of the roster webhooks.py seeds: callers
#: never use it, so no caller texts from a supporter's number.
STAFF_AREA = 617


def fictional_numbers(block: int):
    """Fictional E.164 numbers (+1 NPA 555 01xx over every valid area code but STAFF_AREA),
    from the ``block``-th run of BLOCK on: runs with different blocks share no number."""
    import phonenumbers
    areas = [a for a in range(200, 1000) if a != STAFF_AREA
             and phonenumbers.is_valid_number(phonenumbers.parse(f"+1{a}5550150"))]
    every = [f"+1{area}5550{line}" for line in range(100, 200) for area in areas]
    start = block * BLOCK
    while True:
        for n in range(start, start + len(every)):
            yield every[n % len(every)]


class Unexpected(Exception):
    """An answer that is not what Twilio would expect (no TwiML, no action URL...)."""


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.head_end = -1
        self.need = -1

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            found = CONTENT_LENGTH.search(head)
            self.head_end = end + 4
            self.need = self.head_end + (int(found.group(1)) if found else 0)
        if len(self.buf) >= self.need:
            head = bytes(self.buf[:self.head_end])
            body = bytes(self.buf[self.head_end:self.need])
            del self.buf[:self.need]
            self.need = -1
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result((int(head[9:12]), body, bool(CLOSE.search(head))))

    async def send(self, data: bytes):
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


class Generator:
    def __init__(self, args) -> None:
        self.url = urlsplit(args.url)
        self.public = args.public.rstrip("/")
        self.validator = RequestValidator(args.token)
        self.numbers = fictional_numbers(args.block)
        self.rng = random.Random(args.seed)
        self.prefix = args.prefix
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.errors: Counter = Counter()
        self.samples: dict[str, str] = {}
        self.sequences = Counter()
        self.reconnects = 0
        self.measure_from = self.measure_until = 0.0
        self.stop_at = 0.0
        self.serial = 0
        self.answered = 0  # every answer, warm-up included (for CPU per request)
        self.interval = 0.0  # seconds between one connection's requests when paced
        self.only = getattr(args, "only", None)  # "incoming": the incoming-call webhook alone

    # --- one request --------------------------------------------------------------------

    def _request(self, path: str, params: dict[str, str]) -> bytes:
        """The bytes of a signed POST, as Twilio sends it."""
        body = urlencode(params).encode()
        signature = self.validator.compute_signature(self.public + path, params)
        return (f"POST {path} HTTP/1.1\r\nHost: {self.url.netloc}\r\n"
                f"User-Agent: TwilioProxy/1.1\r\nAccept: */*\r\n"
                f"Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nX-Twilio-Signature: {signature}\r\n"
                f"I-Twilio-Idempotency-Token: {uuid.uuid4()}\r\nX-Home-Region: us1\r\n"
                f"Connection: keep-alive\r\n\r\n").encode() + body

    async def post(self, conn_box: list, route: str, path: str, params: dict) -> bytes:
        """Send one request on the box's connection (reconnecting if the server closed it).

        ``conn_box`` is [connection, when the next request is due (paced runs)].
        """
        data = self._request(path, params)
        if self.interval:
            due = conn_box[1] = max(conn_box[1] + self.interval, time.perf_counter()
                                    - 10 * self.interval)  # after a stall, catch up bounded
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        if conn_box[0] is None or conn_box[0].transport is None:
            conn_box[0] = await self._connect()
        started = conn_box[1] if self.interval else time.perf_counter()
        try:
            status, body, close = await conn_box[0].send(data)
        except ConnectionError:
            self.errors["connection closed"] += 1
            conn_box[0] = None
            raise Unexpected(route) from None
        ended = time.perf_counter()
        self.answered += 1
        if close:
            conn_box[0].transport.close()
            conn_box[0] = None
        if self.measure_from <= started < self.measure_until:
            self.latencies[route].append((ended - started) * 1000)
            self.statuses[route][status] += 1
        if route not in self.samples and status == 200:
            self.samples[route] = body.decode("utf-8", "replace")
        if status != 200:
            raise Unexpected(f"{route}: HTTP {status}")
        return body

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(Connection, self.url.hostname, self.url.port)
        self.reconnects += 1
        return conn

    # --- sequences ----------------------------------------------------------------------

    def _sid(self, kind: str) -> str:
        self.serial += 1
        return f"{kind}{self.prefix}{self.serial:08x}{uuid.uuid4().hex}"[:34]

    @staticmethod
    def _path(url: bytes, public: str) -> str:
        text = url.decode().replace("&amp;", "&")
        if not text.startswith(public):
            raise Unexpected(f"URL outside PUBLIC_BASE_URL: {text}")
        return text[len(public):]

    def _call_params(self, call_sid: str, caller: str, status: str) -> dict[str, str]:
        return {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call_sid,
                "CallStatus": status, "Called": HOTLINE, "CalledCity": "BOSTON",
                "CalledCountry": "US", "CalledState": "MA", "CalledZip": "02108",
                "Caller": caller, "CallerCity": "", "CallerCountry": "US", "CallerState": "",
                "CallerZip": "", "Direction": "inbound", "From": caller, "FromCity": "",
                "FromCountry": "US", "FromState": "", "FromZip": "", "To": HOTLINE,
                "ToCity": "BOSTON", "ToCountry": "US", "ToState": "MA", "ToZip": "02108"}

    async def call(self, box: list) -> None:
        """One caller: menu, queue, a few waits, hang up; Twilio's callbacks in order."""
        call_sid, caller = self._sid("CA"), next(self.numbers)
        base = self._call_params(call_sid, caller, "ringing")
        body = await self.post(box, "voice: incoming call", "/twilio/voice", base)
        found = ACTION.search(body)
        if not found:
            raise Unexpected("incoming call: no Gather action")
        action = self._path(found.group(1), self.public)
        in_progress = dict(base, CallStatus="in-progress")
        if self.rng.random() < SILENT_FIRST:
            body = await self.post(box, "voice: menu choice", action, in_progress)
            found = ACTION.search(body)
            if not found:
                raise Unexpected("menu: silence did not repeat the menu")
            action = self._path(found.group(1), self.public)
        body = await self.post(box, "voice: menu choice", action,
                               dict(in_progress, Digits="1", FinishedOnKey=""))
        found = ENQUEUE.search(body)
        exit_url = found and ENQUEUE_ACTION.search(found.group(1))
        wait_url = found and WAIT_URL.search(found.group(1))
        if not (exit_url and wait_url):
            raise Unexpected("menu: 1 did not enqueue the caller")
        exit_path = self._path(exit_url.group(1), self.public)
        wait_path = self._path(wait_url.group(1), self.public)
        queue_sid = self._sid("QU")
        polls = self.rng.randint(*WAIT_POLLS)
        for poll in range(polls):
            await self.post(box, "voice: wait URL poll", wait_path, dict(
                in_progress, QueueSid=queue_sid, QueueTime=str(poll * QUEUE_STEP_SECONDS),
                AvgQueueTime="12", CurrentQueueSize="1", QueuePosition="1"))
        waited = str(polls * QUEUE_STEP_SECONDS)
        await self.post(box, "voice: queue exit (hang-up)", exit_path, dict(
            in_progress, CallStatus="completed", QueueResult="hangup", QueueSid=queue_sid,
            QueueTime=waited))
        await self.post(box, "voice: status callback", "/twilio/voice/status", dict(
            base, CallStatus="completed", CallDuration=str(int(waited) + 20),
            Duration="1", Timestamp=time.strftime("%a, %d %b %Y %H:%M:%S +0000"),
            CallbackSource="call-progress-events", SequenceNumber="0"))

    def _sms_params(self, sender: str, body: str) -> dict[str, str]:
        sid = self._sid("SM")
        return {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "Body": body,
                "From": sender, "FromCity": "", "FromCountry": "US", "FromState": "",
                "FromZip": "", "MessageSid": sid, "NumMedia": "0", "NumSegments": "1",
                "SmsMessageSid": sid, "SmsSid": sid, "SmsStatus": "received", "To": HOTLINE,
                "ToCity": "BOSTON", "ToCountry": "US", "ToState": "MA", "ToZip": "02108"}

    async def texts(self, box: list) -> None:
        """One clinician texting: the intake menu, "2" (text with a peer), one more text."""
        sender = next(self.numbers)
        for route, body in (("sms: first text (intake)", "hi, it was a rough night"),
                            ("sms: menu reply", "2"),
                            ("sms: text while waiting", "still there?")):
            answer = await self.post(box, route, "/twilio/sms", self._sms_params(sender, body))
            if b"<Message" not in answer:
                raise Unexpected(f"{route}: no reply")

    async def incoming_only(self, box: list) -> None:
        """Only the first webhook of a call (``--only incoming``): a new caller each time."""
        call_sid, caller = self._sid("CA"), next(self.numbers)
        body = await self.post(box, "voice: incoming call", "/twilio/voice",
                               self._call_params(call_sid, caller, "ringing"))
        if not ACTION.search(body):
            raise Unexpected("incoming call: no Gather action")

    async def connection(self, offset: float) -> None:
        box: list = [None, time.perf_counter() + offset]
        while time.perf_counter() < self.stop_at:
            kind = self.only or ("call" if self.rng.random() < VOICE_SHARE else "texts")
            try:
                await ({"call": self.call, "texts": self.texts,
                        "incoming": self.incoming_only}[kind](box))
                self.sequences[kind] += 1
            except Unexpected as exc:
                self.errors[str(exc)[:120]] += 1
            except OSError as exc:
                self.errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                box[0] = None
                await asyncio.sleep(0.05)
        if box[0] is not None and box[0].transport is not None:
            box[0].transport.close()

    async def run(self, connections: int, warmup: float, duration: float,
                  rate: float = 0.0) -> float:
        now = time.perf_counter()
        self.measure_from = now + warmup
        self.measure_until = self.stop_at = self.measure_from + duration
        self.interval = connections / rate if rate else 0.0
        await asyncio.gather(*(self.connection(self.interval * n / connections)
                               for n in range(connections)))
        return time.perf_counter() - now

    def report(self, duration: float, wall: float, cpu: float) -> dict:
        return {"duration": duration, "wall": wall, "generator_cpu_seconds": cpu,
                "latencies_ms": self.latencies,
                "statuses": {r: {str(k): v for k, v in c.items()}
                             for r, c in self.statuses.items()},
                "errors": dict(self.errors), "samples": self.samples,
                "sequences": dict(self.sequences), "connects": self.reconnects,
                "answered": self.answered}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="where to connect (http://127.0.0.1:PORT)")
    parser.add_argument("--public", required=True, help="PUBLIC_BASE_URL the server signs with")
    parser.add_argument("--token", required=True, help="the auth token that signs requests")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--prefix", default="0", help="makes sids unique across runs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--block", type=int, default=0,
                        help="which block of fictional numbers this run uses (see BLOCK)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="pace to this many requests/s in all (0: as fast as answered)")
    parser.add_argument("--only", choices=["incoming"],
                        help="play only this webhook: each sequence is one new caller's "
                             "incoming call (the route's own throughput)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the load generator only targets this machine (127.0.0.1)")
    random.seed(args.seed)
    gen = Generator(args)
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = asyncio.run(gen.run(args.connections, args.warmup, args.duration, args.rate))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(args.out, "w") as f:
        json.dump(gen.report(args.duration, wall, cpu), f)


if __name__ == "__main__":
    main()
