"""Checking the conditions and telling the coordinators: open, repeat, resolve.

Each condition has at most one open alert, an ``OpenAlert`` row. ``check`` evaluates the
conditions and, for each:

* it holds and has no row: the row is inserted and the alert sent (two checkers racing:
  the primary key lets one insert; the other sends nothing);
* it holds and its row was sent HOTLINE_ALERT_REPEAT_MINUTES ago or more: one conditional
  UPDATE moves ``notified_at`` and whoever moved it sends the alert again;
* it no longer holds and has a row: one DELETE, and whoever deleted it sends "resolved".

A condition that cannot be evaluated (Redis down for a Redis-read one) is left as it is.
The alert goes by text to HOTLINE_ALERT_PHONES, as JSON ``{"text": ...}`` (what Slack's and
Teams' incoming webhooks accept) to HOTLINE_ALERT_WEBHOOK_URL, and shows on every dashboard
page (``banner``) while open.

The worker checks every condition every minute (an auditor step). The web side checks that
a worker is alive (``web_check``, from the dashboard's pages), since a dead worker cannot.
The Twilio webhooks of callers and texters check what they see (``check_after``: nobody on
shift, contacts without a peer, no worker) once their answer is sent, so an alert can open
within seconds of a clinician meeting the gap, never delaying that clinician.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
import weakref
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from hotline.alerts import conditions, signals, words
from hotline.core.extensions import db, settings
from hotline.core.settings import Settings
from hotline.models import OpenAlert, utcnow
from hotline.telephony import outbound

log = logging.getLogger(__name__)

#: The alert webhook gets this long to answer (seconds).
WEBHOOK_TIMEOUT = 5
#: The web side checks the heartbeat at most this often per process (seconds).
WEB_CHECK_EVERY = 30

#: What a webhook of a caller or texter sees, and checks once its answer is sent.
WEBHOOK_CONDITIONS = ("nobody_now", "unanswered", "worker_silent")

#: When each app (tests build many) last checked, by monotonic clock, by who checked.
_web_checked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_webhook_checked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_web_lock = threading.Lock()


def _due(seen: weakref.WeakKeyDictionary, app) -> bool:
    """At most one check every WEB_CHECK_EVERY seconds per app in this process."""
    with _web_lock:
        last = seen.get(app)
        if last is not None and time.monotonic() - last < WEB_CHECK_EVERY:
            return False
        seen[app] = time.monotonic()
        return True


def check_after(response, only: tuple[str, ...] = WEBHOOK_CONDITIONS):
    """Check ``only`` once ``response`` has been sent, in an app context (so a database
    session) of its own, at most every WEB_CHECK_EVERY seconds per process: the webhook's
    own transaction is over and the caller never waits. Never raises."""
    app = current_app._get_current_object()
    if not _due(_webhook_checked, app):
        return response

    def run() -> None:
        with app.app_context():
            try:
                check(only=only)
            except Exception:  # noqa: BLE001 - a failed check must not touch the call
                log.exception("webhook-side alert check failed")
            finally:
                db.session.remove()

    response.call_on_close(run)
    return response


def check(now: datetime | None = None, only: tuple[str, ...] | None = None) -> dict[str, str]:
    """Evaluate the conditions (all, or ``only``); returns what was sent, by condition:
    "alert", "repeat" or "resolved"."""
    now, cfg = now or utcnow(), settings()
    sent: dict[str, str] = {}
    for name, condition in conditions.CONDITIONS.items():
        if only is not None and name not in only:
            continue
        try:
            values = condition(db.session, now, cfg)
        except Exception:  # noqa: BLE001 - one unreadable condition must not stop the rest
            log.exception("alert condition %s could not be checked", name)
            db.session.rollback()
            continue
        db.session.commit()  # end the read transaction before writing
        what = _open(name, values, now, cfg) if values is not None else _resolve(name, cfg)
        if what:
            sent[name] = what
    return sent


def _common(cfg: Settings) -> dict[str, object]:
    """Values every text of a condition may use (the resolutions too)."""
    minutes = int(signals.FALLBACK_WINDOW.total_seconds() // 60)
    return {"threshold": cfg.ALERT_UNANSWERED_PER_HOUR, "window": f"{minutes} minutes"}


def _open(name: str, values: dict, now: datetime, cfg: Settings) -> str | None:
    texts = words.current()
    summary = texts.text(name, "alert", **{**_common(cfg), **values})
    db.session.add(OpenAlert(condition=name, opened_at=now, notified_at=now, summary=summary))
    try:
        db.session.commit()
    except IntegrityError:  # open already (or another checker opened it just now)
        db.session.rollback()
    else:
        deliver(texts.full("prefix", summary), cfg)
        return "alert"
    repeat = db.session.execute(update(OpenAlert).where(
        OpenAlert.condition == name,
        OpenAlert.notified_at <= now - _repeat_after(cfg)).values(
        notified_at=now, summary=summary)).rowcount == 1
    if not repeat:  # the banner shows the latest counts
        db.session.execute(update(OpenAlert).where(
            OpenAlert.condition == name, OpenAlert.summary != summary).values(summary=summary))
    db.session.commit()
    if repeat:
        deliver(texts.full("repeat_prefix", summary), cfg)
        return "repeat"
    return None


def _repeat_after(cfg: Settings) -> timedelta:
    return timedelta(minutes=cfg.ALERT_REPEAT_MINUTES)


def _resolve(name: str, cfg: Settings) -> str | None:
    gone = db.session.execute(delete(OpenAlert).where(OpenAlert.condition == name)).rowcount
    db.session.commit()
    if gone != 1:
        return None
    texts = words.current()
    deliver(texts.full("resolved_prefix", texts.text(name, "resolved", **_common(cfg))), cfg)
    return "resolved"


def deliver(text: str, cfg: Settings) -> None:
    """Text every on-call coordinator and POST the webhook, each best effort."""
    for phone in cfg.ALERT_PHONES:
        outbound.send_text(phone, text)
    if cfg.ALERT_WEBHOOK_URL:
        post_webhook(cfg.ALERT_WEBHOOK_URL, text)


def post_webhook(url: str, text: str) -> bool:
    """POST ``{"text": text}`` as JSON; the URL (a secret: it lets anyone post) is not
    logged."""
    request = urllib.request.Request(url, data=json.dumps({"text": text}).encode(),
                                     headers={"Content-Type": "application/json"},
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
            return 200 <= response.status < 300
    except OSError as exc:
        log.warning("alert webhook not delivered: %s", type(exc).__name__)
        return False


def web_check(force: bool = False) -> None:
    """From a web request: is a worker alive? (At most every WEB_CHECK_EVERY seconds per
    app in this process; never raises: a page must not fail for it.)"""
    if not force and not _due(_web_checked, current_app._get_current_object()):
        return
    try:
        check(only=("worker_silent",))
    except Exception:  # noqa: BLE001 - the page shows what is stored
        log.exception("web-side alert check failed")
        db.session.rollback()


def banner() -> list[OpenAlert]:
    """The open alerts, oldest first, for every dashboard page (after a web-side check)."""
    web_check()
    return list(db.session.scalars(select(OpenAlert).order_by(OpenAlert.opened_at)))
