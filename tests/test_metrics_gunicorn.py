"""/metrics under gunicorn with two worker processes, after end-to-end calls.

One gunicorn arbiter with two workers (the production topology on one host) and one
``hotline worker``, on the session's Redis and a fresh PostgreSQL database; this test
plays Twilio (the stand-in, over HTTP, on a clock SPEED times the wall clock) and the
phones. Each scrape lands on whichever worker accepts it; every one must give the same
totals, and the webhook latency counts must add up to exactly the webhooks the stand-in
posted (which spread over both workers): that is prometheus_client's multiprocess mode
at work. The log is JSON (HOTLINE_LOG_FORMAT=json) and, with the scrape, carries no number.
"""

from __future__ import annotations

import itertools
import json
import logging
import urllib.request
from collections import Counter
from datetime import UTC, date, datetime

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from hotline.models import Contact, Supporter
from hotline.simulator import HttpTransport, RealtimeRunner, TwilioSim, serve_in_thread
from tests.cluster import Cluster, clean_environ, cluster_fixtures, wait_until
from tests.servers import free_port
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, HOTLINE_NUMBER
from tests.test_monitoring import TOKEN, no_identifying_label, samples
from tests.test_privacy_logs import carries_number
from tests.test_scale_out import ClinicianPhone, Rings, SupporterPhone

SPEED = 16
CALLS = 3
REDIS_DB = 8
SUPPORTERS = ("+16175550231", "+16175550232")


class CountingTransport(HttpTransport):
    """HTTP to the web tier, counting the webhooks the stand-in posts."""

    def __init__(self) -> None:
        super().__init__(timeout=30)
        self.posted = 0

    def post(self, url, params, headers):
        self.posted += 1
        return super().post(url, params, headers)


database, redis = cluster_fixtures("hotline_metrics", REDIS_DB)


def test_metrics_count_every_worker_of_gunicorn(database, redis, tmp_path):
    redis_url, client = redis
    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    engine = create_engine(database)
    transport = CountingTransport()
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    sim = TwilioSim(transport, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                    voice_url=f"{public}/twilio/voice",
                    status_callback_url=f"{public}/twilio/voice/status",
                    fallback_url=f"{public}/twilio/voice/fallback",
                    sms_url=f"{public}/twilio/sms", numbers=(HOTLINE_NUMBER,),
                    epoch=datetime.now(UTC))
    rest_url, rest = serve_in_thread(sim)
    rings = Rings()
    rings.decline_every = 2  # each call: the first ring declines, the second accepts
    with Session(engine) as s:
        for i, number in enumerate(SUPPORTERS):
            s.add(Supporter(name=f"Peer {i}", phone=number, tier=1, available=True,
                            trained_on=date(2026, 1, 5), refresher_due=date(2099, 1, 5)))
            sim.add_phone(SupporterPhone(number, rings))
        s.commit()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = clean_environ(
        HOTLINE_ENV="test", DATABASE_URL=database, REDIS_URL=redis_url,
        PUBLIC_BASE_URL=public, TWILIO_API_BASE_URL=rest_url,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        HOTLINE_NUMBER=HOTLINE_NUMBER, CRISIS_LINE_NUMBER="988",
        SECRET_KEY="metrics-test-secret-key", HOTLINE_SIMULATOR="0",
        HOTLINE_COOLDOWN_MINUTES="0", HOTLINE_MAX_CONTACTS_PER_DAY="0",
        HOTLINE_MAX_MISSED_OFFERS="0", HOTLINE_METRICS_TOKEN=TOKEN,
        HOTLINE_RING_AT_ONCE="1",  # the counted offer results are told phone by phone
        HOTLINE_LOG_FORMAT="json", PROMETHEUS_MULTIPROC_DIR=str(multiproc))
    cluster = Cluster(env, tmp_path, web=1, workers=1, web_workers=2, ports=[port])
    runner = RealtimeRunner(sim, speed=SPEED)
    numbers = (f"+16175550{n}" for n in itertools.count(400))
    try:
        cluster.wait_ready(client)
        runner.start()

        def idle() -> bool:
            with Session(engine) as s:
                return (all(x is None for x in s.scalars(select(Supporter.busy_with)))
                        and all(c.outcome for c in s.scalars(select(Contact))))

        for _ in range(CALLS):
            wait_until(idle, 30, "the previous call to end")
            phone = sim.add_phone(ClinicianPhone(next(numbers)))
            sim.dial(phone.number, HOTLINE_NUMBER)
            wait_until(lambda: not idle(), 30, "the call to start", every=0.05)
        wait_until(idle, 60, "the calls to end")

        def legs_ended() -> bool:
            with sim.lock:
                return all(leg.ended for leg in sim.legs.values())

        wait_until(legs_ended, 30, "every call leg to end")
        with Session(engine) as s:
            outcomes = Counter(s.scalars(select(Contact.outcome)))
        assert outcomes == {"connected": CALLS}, outcomes

        def get(headers=None) -> tuple[int, str]:
            request = urllib.request.Request(f"{public}/metrics", headers=headers or {})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, ""

        assert get()[0] == 401
        posted = transport.posted
        scrapes = []
        for _ in range(6):  # each lands on either worker
            status, text = get({"Authorization": f"Bearer {TOKEN}"})
            assert status == 200
            scrapes.append(text)
        totals = [samples(text) for text in scrapes]
        for got in totals:
            assert got[("hotline_contacts_total",
                        (("channel", "voice"), ("outcome", "connected")))] == CALLS
            assert got[("hotline_offers_total", (("result", "declined"),))] == CALLS
            assert got[("hotline_offers_total", (("result", "accepted"),))] == CALLS
            assert got[("hotline_supporters", (("state", "on_shift"),))] == len(SUPPORTERS)
            assert got[("hotline_callers_waiting", ())] == 0
            webhooks = sum(v for (name, _), v in got.items()
                           if name == "hotline_webhook_seconds_count")
            assert webhooks == posted, (webhooks, posted)
        for text in scrapes:
            no_identifying_label(text)
        print(scrapes[0])
        log = "".join(path.read_text(errors="replace") for path in cluster.logs[:1])
        app_lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        assert app_lines and all("request_id" in entry for entry in app_lines)
        assert not carries_number(log)
        print("worker files:", sorted(p.name for p in multiproc.glob("*.db")))
        assert list(multiproc.glob("histogram_*.db"))
    finally:
        runner.stop()
        cluster.stop()
        rest.shutdown()
        engine.dispose()
        quiet.setLevel(level)
