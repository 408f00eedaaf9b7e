"""/readyz, /metrics and JSON logs, in one process (the app and the stand-in in this test;
under gunicorn with two workers: tests/test_metrics_gunicorn.py)."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from hotline.app import create_app
from hotline.core.extensions import db
from hotline.monitoring import counters
from hotline.privacy import primitives as privacy
from tests.conftest import settings_for
from tests.test_privacy_logs import carries_number

TOKEN = "metrics-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CLINICIAN = "+16175550271"


@pytest.fixture
def app_settings(app_settings):
    app_settings["METRICS_TOKEN"] = TOKEN
    return app_settings


def scrape(client) -> dict[tuple[str, tuple], float]:
    """The scrape's samples: (name, sorted labels) -> value."""
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.data
    return samples(response.get_data(as_text=True))


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def no_identifying_label(text: str) -> None:
    """Every label value is a word of the closed vocabulary: no digit, so no number, id
    or key; and the text carries no phone number in any encoding."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            for name, value in s.labels.items():
                if name == "le":  # a histogram's bucket bound is a number by design
                    continue
                assert counters.LABEL_VALUE.fullmatch(value), (s.name, name, value)
    assert not carries_number(text)


def test_readyz_answers_when_the_database_and_redis_do(app):
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"ready": True, "database": True, "redis": True}


def test_readyz_is_503_with_redis_down_and_healthz_stays(app_on_own_redis, own_redis):
    client = app_on_own_redis.test_client()
    assert client.get("/readyz").status_code == 200
    own_redis.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"ready": False, "database": True, "redis": False}
    assert client.get("/healthz").status_code == 200


def test_metrics_is_off_without_a_token(database_url, redis_server):
    app = create_app(settings_for(database_url, redis_server.url))
    assert app.test_client().get("/metrics", headers=AUTH).status_code == 404


def test_metrics_needs_the_bearer_token(app):
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": TOKEN}).status_code == 401
    assert client.get("/metrics", headers=AUTH).status_code == 200


def test_a_call_is_counted_end_to_end(hotline):
    hotline.supporter("Declines", gather=["2"])
    ada = hotline.supporter("Ada", hangup_after_bridge=30)
    clinician = hotline.clinician(number=CLINICIAN, gather=["1"], hangup_after_bridge=None)
    hotline.call(clinician)
    hotline.run()
    assert [c.outcome for c in hotline.contacts()] == ["connected"]
    client = hotline.app.test_client()
    with hotline.app.app_context():
        got = scrape(client)
        text = client.get("/metrics", headers=AUTH).get_data(as_text=True)
    assert got[("hotline_contacts_total", (("channel", "voice"), ("outcome", "connected")))] == 1
    assert got[("hotline_offers_total", (("result", "declined"),))] == 1
    assert got[("hotline_offers_total", (("result", "accepted"),))] == 1
    assert got[("hotline_webhook_seconds_count", (("route", "voice.incoming"),))] >= 1
    assert got[("hotline_callers_waiting", ())] == 0
    assert got[("hotline_supporters", (("state", "on_shift"),))] == 2
    assert got[("hotline_supporters", (("state", "busy"),))] == 0
    assert got[("hotline_rq_failed_jobs", ())] == 0
    no_identifying_label(text)
    assert ada.number not in text and CLINICIAN not in text


def test_callers_waiting_and_the_oldest_wait_are_read_at_scrape(hotline):
    clinician = hotline.clinician(number=CLINICIAN, gather=["1"] * 3, hangup_after_bridge=None)
    hotline.call(clinician)
    hotline.run(seconds=40)  # nobody on the roster: the caller waits
    with hotline.app.app_context():
        got = scrape(hotline.app.test_client())
    assert got[("hotline_callers_waiting", ())] == 1
    assert got[("hotline_oldest_wait_seconds", ())] > 0


def test_the_auditor_and_fallback_hits_are_counted(app, twilio):
    from workers import audit  # a worker's job, run here as the worker would
    audit.audit()
    response = twilio.post("/twilio/voice/fallback", {"CallSid": "CA" + "1" * 32,
                                                      "From": CLINICIAN})
    assert response.status_code == 200
    got = scrape(app.test_client())
    assert got[("hotline_auditor_runs_total", ())] == 1
    assert got[("hotline_fallback_hits_total", (("route", "fallback.incoming"),))] >= 1


@pytest.mark.parametrize("value", [CLINICIAN, "6175550271", "17", "CA" + "1" * 32,
                                   "ab12", "Caller", "x" * 41, ""])
def test_no_label_can_carry_a_number_a_key_or_an_id(app, value):
    with pytest.raises(ValueError):
        counters.count_on_commit(db.session, "offers", result=value)
    with pytest.raises(ValueError):
        counters.count_now("followups_sent", kind=value)


def test_a_rolled_back_change_counts_nothing(app):
    db.session.execute(text("SELECT 1"))  # in a transaction, as every count is
    counters.count_on_commit(db.session, "offers", result="declined")
    db.session.rollback()
    db.session.commit()
    assert counters.totals("offers") == []
    counters.count_on_commit(db.session, "offers", result="declined")
    db.session.commit()
    assert counters.totals("offers") == [({"result": "declined"}, 1)]


def test_json_logs_one_object_per_line_with_a_request_id_and_no_number(database_url,
                                                                         redis_server):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        app = create_app(settings_for(database_url, redis_server.url, LOG_FORMAT="json"))

        @app.post("/twilio/test-log")
        def test_log():
            logging.getLogger("hotline.test").warning("texting %s", CLINICIAN)
            logging.getLogger("hotline.test").warning("again %s", CLINICIAN)
            return "ok"

        client = app.test_client()
        first = client.post("/twilio/test-log")
        second = client.post("/twilio/test-log")
    finally:
        root.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    ours = [entry for entry in lines if entry["logger"] == "hotline.test"]
    assert len(ours) == 4 and all(e["level"] == "WARNING" for e in ours)
    ids = [e["request_id"] for e in ours]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert ids[0] == ids[1] != ids[2] == ids[3]  # one per request
    assert first.headers["X-Request-Id"] == ids[0] and second.headers["X-Request-Id"] == ids[2]
    assert privacy.MARK in ours[0]["message"]
    assert not carries_number(stream.getvalue())


def test_readyz_is_503_with_the_database_down(redis_server):
    app = create_app(settings_for("postgresql+psycopg://nobody@127.0.0.1:9/none",
                                  redis_server.url))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"ready": False, "database": False, "redis": True}


def test_the_grafana_dashboard_shows_only_metrics_the_hotline_exports(hotline):
    """Every metric a panel queries is one /metrics serves (a renamed metric would leave
    an empty panel), and every exported metric has a panel."""
    from pathlib import Path
    dashboard = json.loads((Path(__file__).resolve().parents[1] / "docs"
                            / "grafana-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\bhotline_[a-z_]+", target["expr"])}
    with hotline.app.app_context():
        hotline.app.test_client().post("/twilio/voice/status")  # one webhook timed
        text = hotline.app.test_client().get("/metrics", headers=AUTH).get_data(as_text=True)
    exported = {s.name for family in text_string_to_metric_families(text)
                for s in family.samples}
    families = {family.name for family in text_string_to_metric_families(text)}
    assert queried <= exported | {f + "_total" for f in families}, queried - exported
    assert {f for f in families} <= {q.removesuffix("_total").removesuffix("_bucket")
                                     .removesuffix("_count") for q in queried}


def test_every_webhook_route_is_a_label_value(app):
    """Routes are labels: a name that is not a plain word would go untimed (and logged)."""
    routes = [r.endpoint for r in app.url_map.iter_rules() if r.rule.startswith("/twilio/")]
    assert "voice.incoming" in routes
    assert all(counters.LABEL_VALUE.fullmatch(route) for route in routes), routes
