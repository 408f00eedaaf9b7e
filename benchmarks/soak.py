"""``make soak``: a bounded soak of the whole hotline through the offline Twilio stand-in.

Starts the stack as ``make run`` does (its own redis-server, PostgreSQL when its binaries
are installed or else a temporary SQLite file, gunicorn with the stand-in, one
``hotline worker``), with the demo timings, the demo roster plus a few more supporters and
``SOAK_CLINICIANS`` fictional clinician phones. For ``SOAK_SECONDS`` (default 300, at most
600) a driver starts calls and texts at a steady rate and plays every phone through the
web phone's JSON API: supporters answer, decline or ignore at random, clinicians press 1,
hang up after a while, consent or not to check-in texts, answer the follow-ups.

Afterwards (once the hotline has settled) it checks in the database that every contact
has exactly one outcome, that no supporter was ever booked twice at once, that no
follow-up was lost or sent twice, and that the RSS of the web and worker processes stayed
flat. Prints the figures, appends them to ``benchmarks/RESULTS.md``; exits 1 on a failure.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import Api, children, log, percentiles, rss_kb  # noqa: E402
from hotline.devrun import DEMO_ENV  # noqa: E402
from tests.servers import PostgresServer, RedisServer, free_port  # noqa: E402

SECONDS = min(int(os.environ.get("SOAK_SECONDS", "300")), 600)
CLINICIANS = int(os.environ.get("SOAK_CLINICIANS", "10"))
#: A new contact every this many seconds (when a clinician is free).
INTERVAL = float(os.environ.get("SOAK_INTERVAL", "4"))
SEED = int(os.environ.get("SOAK_SEED", "7"))
SETTLE_SECONDS = 180
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
#: Extra tier-1 supporters on top of the demo roster (fictional 555-01xx numbers).
EXTRA_SUPPORTERS = (("Fay Lin (peer)", "+16175550114"), ("Gus Pratt (peer)", "+16175550115"),
                    ("Hana Ito (peer)", "+16175550116"))
BACKUP = "+16175550198"

rng = random.Random(SEED)


# --- the stack ------------------------------------------------------------------------

class Stack:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.redis = RedisServer()
        self.pg = None
        try:
            self.pg = PostgresServer()
            self.db_url = self.pg.url
        except Exception as exc:  # no PostgreSQL here: SQLite in the temp folder
            log(f"PostgreSQL unavailable ({exc}); using SQLite")
            self.db_url = f"sqlite:///{folder / 'soak.db'}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "stack.log"
        self.log = open(self.log_path, "w")
        env = dict(os.environ, **DEMO_ENV)
        env.update(PUBLIC_BASE_URL=self.url, TWILIO_API_BASE_URL=self.url,
                   REDIS_URL=self.redis.url, DATABASE_URL=self.db_url, HOTLINE_SIMULATOR="0",
                   HOTLINE_DEMO_CLINICIANS=str(CLINICIANS))
        cli = [sys.executable, "-m", "hotline.cli"]
        steps = [["db", "upgrade"], ["demo", "seed"]]
        for name, phone in EXTRA_SUPPORTERS:
            steps += [["supporters", "add", "--name", name, "--phone", phone],
                      ["supporters", "on", phone]]
        for args in steps:
            subprocess.run(cli + args, env=env, check=True, stdout=self.log, stderr=self.log,
                           cwd=ROOT)
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "--workers", "1",
             "--threads", "16", "--bind", f"127.0.0.1:{self.port}", "hotline:create_app()"],
            env=dict(env, HOTLINE_SIMULATOR="1"), stdout=self.log, stderr=self.log, cwd=ROOT)
        self.worker = subprocess.Popen(cli + ["worker"], env=env, stdout=self.log,
                                       stderr=self.log, cwd=ROOT)
        deadline = time.monotonic() + 40
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the hotline did not start; see {self.log_path}")
                time.sleep(0.2)

    def pids(self) -> dict[str, list[int]]:
        """gunicorn's worker process (the child of the arbiter); the RQ worker (+ children)."""
        return {"web": children(self.web.pid) or [self.web.pid],
                "worker": [self.worker.pid] + children(self.worker.pid)}

    def stop(self) -> None:
        for proc in (self.web, self.worker):
            if proc.poll() is None:
                proc.terminate()
        for proc in (self.web, self.worker):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.log.close()
        if self.pg is not None:
            self.pg.stop()
        self.redis.stop()


# --- the driver -----------------------------------------------------------------------

class Driver:
    """Plays every phone from the snapshot; one thread, one poll every ~0.3 s."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.seen_msgs: set[str] = set()
        self.decided: set[tuple[str, str]] = set()       # (sid, what) already acted on
        self.hangup_at: dict[str, float] = {}            # leg sid -> when this side hangs up
        self.patience: dict[str, float] = {}             # clinician leg sid -> give up at
        self.sms_busy_until: dict[str, float] = {}       # clinician -> busy texting until
        self.bye_at: dict[str, float] = {}               # supporter -> BYE at
        self.started = Counter()
        self.actions = Counter()
        self.followup_texts = 0                          # follow-up texts seen at clinicians
        self.max_calls = 0
        self.next_start = time.monotonic()

    def tick(self, snap: dict, starting: bool) -> None:
        now = time.monotonic()
        roles = snap["roles"]
        clinicians = [n for n, r in roles.items() if r == "clinician"]
        live = [leg for leg in snap["legs"] if leg["status"] == "in-progress"
                and leg["direction"] == "inbound"]
        self.max_calls = max(self.max_calls, len(live))
        for number, phone in snap["phones"].items():
            role = roles.get(number, "")
            self.messages(number, role, phone, now)
            for leg in phone["legs"]:
                if role == "clinician":
                    self.clinician_leg(number, phone, leg, now)
                elif role.startswith("supporter") or role == "backup line":
                    self.supporter_leg(number, phone, leg, now)
        for number, at in list(self.bye_at.items()):
            if now >= at:
                del self.bye_at[number]
                self.api.sms(number, "BYE")
                self.actions["supporter BYE"] += 1
        if starting and now >= self.next_start:
            free = [n for n in clinicians if not snap["phones"][n]["legs"]
                    and self.sms_busy_until.get(n, 0) < now]
            if free:
                number = rng.choice(free)
                if rng.random() < 0.6:
                    if self.api.dial(number).get("ok"):
                        self.started["voice"] += 1
                else:
                    self.sms_busy_until[number] = now + 240
                    if self.api.sms(number, "2").get("ok"):
                        self.started["sms"] += 1
                self.next_start = now + INTERVAL

    def clinician_leg(self, number: str, phone: dict, leg: dict, now: float) -> None:
        sid = leg["sid"]
        if leg["answerable"] and (sid, "ring") not in self.decided:  # a call back
            self.decided.add((sid, "ring"))
            self.api.leg(sid, "answer")
            self.actions["clinician answers call back"] += 1
            return
        self.patience.setdefault(sid, now + rng.uniform(40, 120))
        heard = phone["heard"][-1] if phone["heard"] else ""
        if leg["doing"] == "gathering":
            key = (sid, heard[:40])
            if key in self.decided:
                return
            self.decided.add(key)
            if "press 1 or say talk" in heard:
                self.api.leg(sid, "press", digits="1")
            elif "To keep waiting, press 1" in heard:
                choice = rng.choice(["1", "1", "2", "hangup"])
                if choice == "hangup":
                    self.api.leg(sid, "hangup")
                else:
                    self.api.leg(sid, "press", digits=choice)
                self.actions[f"clinician options {choice}"] += 1
            elif "check-in text" in heard:
                if rng.random() < 0.6:
                    self.api.leg(sid, "press", digits="1")
                    self.actions["voice consent yes"] += 1
            return
        if leg["doing"] == "bridged":
            at = self.hangup_at.setdefault(sid, now + rng.uniform(8, 40))
            if now >= at and rng.random() < 0.5:  # either side may hang up first
                self.api.leg(sid, "hangup")
                self.actions["clinician hangs up"] += 1
                self.hangup_at[sid] = float("inf")
            return
        if now >= self.patience[sid] and (sid, "gaveup") not in self.decided:
            self.decided.add((sid, "gaveup"))
            self.api.leg(sid, "hangup")
            self.actions["clinician gives up waiting"] += 1

    def supporter_leg(self, number: str, phone: dict, leg: dict, now: float) -> None:
        sid = leg["sid"]
        if leg["answerable"]:
            if (sid, "ring") in self.decided:
                return
            self.decided.add((sid, "ring"))
            choice = rng.choices(["answer", "decline", "ignore"], [6, 2, 2])[0]
            if choice != "ignore":
                self.api.leg(sid, choice)
            self.actions[f"supporter {choice}"] += 1
            return
        heard = phone["heard"][-1] if phone["heard"] else ""
        if leg["doing"] == "gathering" and "Press 1" in heard and (sid, "accept") not in self.decided:
            self.decided.add((sid, "accept"))
            self.api.leg(sid, "press", digits="1")
        elif leg["doing"] == "bridged":
            at = self.hangup_at.setdefault(sid, now + rng.uniform(8, 40))
            if now >= at:
                self.api.leg(sid, "hangup")
                self.actions["supporter hangs up"] += 1
                self.hangup_at[sid] = float("inf")

    def messages(self, number: str, role: str, phone: dict, now: float) -> None:
        for m in phone["messages"]:
            if m["sid"] in self.seen_msgs:
                continue
            self.seen_msgs.add(m["sid"])
            if not m["direction"].startswith("outbound"):  # this phone's own text
                continue
            if role == "clinician":
                self.clinician_text(number, m["body"], now)
            elif role.startswith("supporter"):
                self.supporter_text(number, m["body"], now)

    def clinician_text(self, number: str, body: str, now: float) -> None:
        if "How helpful was it" in body or "checking in again" in body:
            self.followup_texts += 1
        if "How helpful was it" in body or "rate your burnout" in body:
            self.api.sms(number, str(rng.randint(1, 5)))
        elif "Reply 1 for a call from a peer now" in body or "Reply 1 for a call, 2" in body:
            self.api.sms(number, "2")
        elif "You are now texting with a peer supporter" in body:
            self.api.sms(number, "It was a long shift and I need to talk.")
        elif "check-in text tomorrow and next week" in body:
            answer = rng.choice(["YES", "YES", "NO"])
            self.api.sms(number, answer)
            self.actions[f"text consent {answer}"] += 1
            self.sms_busy_until[number] = now + 3
        elif "no peer supporter is free" in body:  # else the contact waits in "options"
            self.api.sms(number, "3")
            self.actions["text asks for a call back"] += 1
            self.sms_busy_until[number] = now + 3
        elif ("This conversation has ended" in body or "This conversation has ended" in body
              or "closed after a quiet period" in body or "will call you back" in body
              or "Take care of yourself" in body or "We will check in by text" in body):
            self.sms_busy_until[number] = now + 3

    def supporter_text(self, number: str, body: str, now: float) -> None:
        if body.startswith("Peer support text request") or body.startswith("Peer support call request"):
            choice = rng.choices(["YES", "PASS", "ignore"], [7, 2, 1])[0]
            if choice != "ignore":
                self.api.sms(number, choice)
            self.actions[f"supporter text {choice}"] += 1
        elif "You are now texting with a clinician" in body:
            self.api.sms(number, "I'm here with you. Tell me about it.")
            self.bye_at[number] = now + rng.uniform(10, 30)


# --- the run --------------------------------------------------------------------------

def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="hotline-soak-"))
    log(f"starting the stack in {folder} (soak {SECONDS} s, {CLINICIANS} extra clinicians)")
    stack = Stack(folder)
    t0 = datetime.now(timezone.utc)
    api = Api(stack.url)
    driver = Driver(api)
    samples: list[tuple[float, int, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            pids = stack.pids()
            samples.append((time.monotonic(), rss_kb(pids["web"]), rss_kb(pids["worker"])))
            stop.wait(2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    failures: list[str] = []
    try:
        began = time.monotonic()
        end = began + SECONDS
        last_report = began
        poll_errors = 0
        while True:
            now = time.monotonic()
            starting = now < end
            try:
                snap = api.get("/phone/api/state?since=999999999")
                driver.tick(snap, starting)
            except Exception as exc:  # keep driving; counted
                poll_errors += 1
                if poll_errors < 5:
                    log(f"poll error: {exc!r}")
            if now - last_report > 30:
                last_report = now
                log(f"{now - began:.0f} s: started {dict(driver.started)}, "
                    f"max concurrent calls {driver.max_calls}")
            if not starting:
                busy = (any(p["legs"] for p in snap["phones"].values()) or driver.bye_at
                        or any(t > now for t in driver.sms_busy_until.values()))
                open_contacts = [c for c in snap["routing"]["contacts"] if c["state"] != "ended"]
                if (not busy and not open_contacts) or now > end + SETTLE_SECONDS:
                    break
            time.sleep(0.3)
        run_seconds = time.monotonic() - began
        # Follow-ups due by now have had their chance; give the worker a moment more.
        time.sleep(20)
        for _ in range(20):  # answer any follow-up that arrived while settling
            driver.tick(api.get("/phone/api/state?since=999999999"), False)
            time.sleep(0.5)
        time.sleep(5)
    finally:
        stop.set()
        sampler.join(timeout=5)
        load = [x for x in samples if x[0] <= began + SECONDS] or samples  # RSS under load
        checks, figures = verify(stack.db_url, t0, driver, load)
        stack.stop()
    figures["run seconds"] = round(run_seconds)
    figures["poll errors"] = poll_errors
    figures["driver API p50/p99 ms"] = percentiles(api.latencies)
    figures["refused actions (leg ended meanwhile)"] = dict(api.errors)
    figures["webhook p50/p99 ms"] = webhook_latency(stack.log_path)
    figures["driver actions"] = dict(driver.actions)
    for name, ok, detail in checks:
        if not ok:
            failures.append(name)
    report(checks, figures)
    log(f"stack log: {stack.log_path}")
    return 1 if failures else 0


def webhook_latency(path: Path) -> str:
    """From gunicorn's access log (``... "POST /path HTTP/1.1" 200 123 45ms``): webhooks only."""
    times = []
    pattern = re.compile(r'"POST (/\S*) HTTP/[\d.]+" \d+ \S+ (\d+)ms')
    for line in path.read_text(errors="replace").splitlines():
        m = pattern.search(line)
        if m and not m.group(1).startswith(("/phone", "/2010-04-01")):
            times.append(int(m.group(2)) / 1000)
    return percentiles(times)


def verify(db_url: str, t0: datetime, driver: Driver, samples) -> tuple[list, dict]:
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from hotline.models import Contact, ContactEvent, Offer
    from hotline.models.followups import FollowUp

    engine = create_engine(db_url)
    checks: list[tuple[str, bool, str]] = []
    figures: dict = {}
    now = datetime.now(timezone.utc)
    with Session(engine) as s:
        contacts = list(s.scalars(select(Contact).where(Contact.created_at >= t0)))
        ids = {c.id for c in contacts}
        figures["contacts"] = len(contacts)
        figures["contacts by channel and outcome"] = dict(sorted(Counter(
            f"{c.channel}:{c.outcome}" for c in contacts).items()))
        events = Counter(e.contact_id for e in s.scalars(
            select(ContactEvent).where(ContactEvent.outcome.is_not(None))) if e.contact_id in ids)
        no_outcome = [c.id for c in contacts if c.outcome is None]
        not_ended = [c.id for c in contacts if c.state != "ended"]
        doubled = [cid for cid, n in events.items() if n > 1]
        missing_event = [c.id for c in contacts if c.outcome and events[c.id] != 1]
        checks.append(("every contact has exactly one outcome",
                       bool(contacts) and not (no_outcome or not_ended or doubled
                                               or missing_event),
                       f"{len(contacts)} contacts; without outcome {no_outcome[:10]}, "
                       f"not ended {not_ended[:10]}, outcome recorded twice {doubled[:10]}, "
                       f"outcome without its event {missing_event[:10]}"))
        offers = list(s.scalars(select(Offer).where(Offer.contact_id.in_(ids))))
        figures["offers by state"] = dict(sorted(Counter(o.state for o in offers).items()))
        # Double booking: a supporter's accepted offers must not overlap in time. An accepted
        # offer holds the supporter from its creation until its contact ended.
        by_contact = {c.id: c for c in contacts}
        spans = defaultdict(list)
        for o in offers:
            if o.state == "accepted":
                c = by_contact[o.contact_id]
                spans[o.supporter_id].append((o.created_at, c.ended_at or now, o.contact_id))
        overlaps = []
        for supporter, items in spans.items():
            items.sort()
            for (a0, a1, ac), (b0, b1, bc) in zip(items, items[1:]):
                if b0 < a1 - timedelta(seconds=1):  # timestamps in separate processes
                    overlaps.append((supporter, ac, bc))
        accepted_per_contact = Counter(o.contact_id for o in offers if o.state == "accepted")
        two = [cid for cid, n in accepted_per_contact.items() if n > 1]
        checks.append(("no supporter double-booked", not overlaps and not two,
                       f"{sum(len(v) for v in spans.values())} accepted offers; overlapping "
                       f"{overlaps[:10]}; contacts with two accepted offers {two[:10]}"))
        ups = list(s.scalars(select(FollowUp).where(FollowUp.contact_id.in_(ids))))
        figures["follow-ups by state"] = dict(sorted(Counter(f.state for f in ups).items()))
        dup_seq = [k for k, n in Counter((f.contact_id, f.sequence) for f in ups).items() if n > 1]
        sids = [f.message_sid for f in ups if f.message_sid]
        dup_sid = [k for k, n in Counter(sids).items() if n > 1]
        grace = timedelta(seconds=30)
        lost = [f.id for f in ups if f.due_at < now - grace
                and f.state in ("scheduled", "sending")]
        sent = [f for f in ups if f.sent_at is not None]
        # Every sent follow-up is the first text of its kind ("survey" / "checkin"), which the
        # driver counted as it reached a clinician phone (the burnout question is a reply).
        seen = driver.followup_texts
        checks.append(("no follow-up lost or doubled",
                       not (dup_seq or dup_sid or lost) and seen == len(sent),
                       f"{len(ups)} follow-ups, {len(sent)} sent, {seen} received by "
                       f"clinicians; doubled {dup_seq[:10] or dup_sid[:10]}; overdue "
                       f"unsent {lost[:10]}"))
    engine.dispose()
    if len(samples) >= 10:
        fifth = max(1, len(samples) // 5)
        ok, details = True, []
        for i, name in ((1, "web"), (2, "worker")):
            first = statistics.median(x[i] for x in samples[:fifth])
            last = statistics.median(x[i] for x in samples[-fifth:])
            growth = (last - first) / first if first else 0
            ok &= growth < 0.10
            figures[f"RSS {name} start/end MiB"] = f"{first / 1024:.1f} / {last / 1024:.1f}"
            details.append(f"{name} {growth:+.1%}")
        checks.append(("memory flat (median RSS, first vs last fifth, < +10%)", ok,
                       ", ".join(details)))
    else:
        checks.append(("memory flat", False, f"only {len(samples)} samples"))
    figures["max concurrent calls"] = driver.max_calls
    figures["started"] = dict(driver.started)
    return checks, figures


def report(checks, figures) -> None:
    lines = [f"## Soak {datetime.now().strftime('%Y-%m-%d %H:%M')}, nproc {os.cpu_count()}, "
             f"{SECONDS} s of load, {CLINICIANS + 2} clinicians, "
             f"{5 + len(EXTRA_SUPPORTERS)} supporters", "",
             "| figure | value |", "|---|---|"]
    for key, value in figures.items():
        lines.append(f"| {key} | {value} |")
    lines += ["", "| check | result | detail |", "|---|---|---|"]
    for name, ok, detail in checks:
        lines.append(f"| {name} | {'PASS' if ok else 'FAIL'} | {detail} |")
    text = "\n".join(lines) + "\n"
    print("\n" + text, flush=True)
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nWritten by `make soak` (benchmarks/soak.py): "
                           "a bounded soak of the whole stack through the offline Twilio "
                           "stand-in. Newest last.\n\n")
    with RESULTS.open("a") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
