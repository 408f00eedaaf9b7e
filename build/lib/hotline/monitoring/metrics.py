"""The Prometheus metrics, and the text of a scrape.

Three kinds, by where the number lives:
- in this process (prometheus_client): webhook latency by route and fallback hits. Under
  gunicorn, with ``PROMETHEUS_MULTIPROC_DIR`` set (config/gunicorn.conf.py sets it), each
  worker writes its values to files there and a scrape adds them all up;
- in Redis (``counters``): contacts by outcome, offers by result, auditor runs and
  repairs, follow-ups sent, counted by whichever process committed them;
- in the database and RQ, read at each scrape: callers waiting and the oldest wait,
  supporters on shift, free and busy, queued, scheduled and failed jobs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter,
                               Histogram, disable_created_metrics, generate_latest, values)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import case, func, select

from hotline.core.extensions import db, jobs
from hotline.models import Contact, ContactState, Supporter, utcnow
from hotline.monitoring import counters
from hotline.roster import shifts

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Twilio waits 15 s for a webhook; most answer in milliseconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15)

WEBHOOK_SECONDS = Histogram(
    "hotline_webhook_seconds", "Time to answer a Twilio webhook, by route (Flask endpoint)",
    ["route"], buckets=LATENCY_BUCKETS)
FALLBACK_HITS = Counter(
    "hotline_fallback_hits", "Requests to a fallback URL (Twilio could not use the main one)",
    ["route"])

#: Counter name -> (metric name, help).
COUNTER_HELP = {
    "contacts": ("hotline_contacts", "Contacts ended, by channel and outcome"),
    "offers": ("hotline_offers", "Offers to supporters ended, by result"),
    "auditor_runs": ("hotline_auditor_runs", "Passes of the auditor"),
    "auditor_repaired": ("hotline_auditor_repaired", "What the auditor resolved, by kind"),
    "followups_sent": ("hotline_followups_sent", "Follow-up texts sent, by kind"),
}


def observe_webhook(route: str, seconds: float) -> None:
    WEBHOOK_SECONDS.labels(route=counters.check_label(route)).observe(seconds)


def fallback_hit(route: str) -> None:
    FALLBACK_HITS.labels(route=counters.check_label(route)).inc()


class ScrapeCollector:
    """What is read at scrape time: the shared counters, the queue, the roster, RQ."""

    def collect(self):
        yield from self._counters()
        yield from self._waiting()
        yield from self._supporters()
        yield from self._jobs()

    def _counters(self):
        for name, (metric, help_) in COUNTER_HELP.items():
            family = CounterMetricFamily(metric, help_, labels=counters.COUNTERS[name])
            for labels, value in counters.totals(name):
                family.add_metric([labels[n] for n in counters.COUNTERS[name]], value)
            yield family

    def _waiting(self):
        now = utcnow()
        count, oldest = db.session.execute(
            select(func.count(), func.min(func.coalesce(Contact.queued_at, Contact.created_at)))
            .where(Contact.state.in_([ContactState.WAITING.value,
                                      ContactState.OPTIONS.value]))).one()
        db.session.rollback()  # end the read: a scrape holds no transaction open
        yield GaugeMetricFamily("hotline_callers_waiting",
                                "Callers in the queue (or choosing what to do) now", value=count)
        age = (now - _aware(oldest)).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily("hotline_oldest_wait_seconds",
                                "How long the caller waiting longest has waited (0: none)",
                                value=max(0.0, age))

    def _supporters(self):
        busy = case((Supporter.busy_with.is_not(None), 1), else_=0)
        on, engaged = db.session.execute(
            select(func.count(), func.coalesce(func.sum(busy), 0)).where(
                Supporter.active.is_(True), shifts.eligible())).one()
        db.session.rollback()
        family = GaugeMetricFamily("hotline_supporters", "Supporters on shift now, by state",
                                   labels=["state"])
        family.add_metric(["on_shift"], on)
        family.add_metric(["free"], on - engaged)
        family.add_metric(["busy"], engaged)
        yield family

    def _jobs(self):
        queue = jobs.queue
        yield GaugeMetricFamily("hotline_rq_queued_jobs", "Jobs waiting for a worker",
                                value=queue.count)
        yield GaugeMetricFamily("hotline_rq_scheduled_jobs", "Jobs scheduled for later",
                                value=ScheduledJobRegistry(queue=queue).count)
        yield GaugeMetricFamily("hotline_rq_failed_jobs", "Jobs that failed (kept by RQ)",
                                value=FailedJobRegistry(queue=queue).count)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive UTC times."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def multiprocess() -> bool:
    """Does this process share its values through files (``PROMETHEUS_MULTIPROC_DIR`` was
    set when prometheus_client was imported: gunicorn, config/gunicorn.conf.py)?"""
    return values.ValueClass is not values.MutexValue


def render() -> bytes:
    """The text of one scrape."""
    registry = CollectorRegistry()
    if multiprocess():
        prometheus_multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (WEBHOOK_SECONDS, FALLBACK_HITS):
            registry.register(collector)
    registry.register(ScrapeCollector())
    return generate_latest(registry)


# The *_created series (a start time per label set) exist only outside multiprocess mode:
# one scrape the same under gunicorn and without it.
disable_created_metrics()
# The default registry would also export this process's own GC and platform metrics; the
# hotline's scrape is only its own (and the same whether or not under gunicorn).
for _collector in (WEBHOOK_SECONDS, FALLBACK_HITS):
    REGISTRY.unregister(_collector)
