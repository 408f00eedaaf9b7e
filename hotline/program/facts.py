"""What the public page says, from the running settings and the roster: never written twice.

Every number on the page comes from here: the retention of events and of numbers
(``hotline.retention.purge``'s windows, ``HOTLINE_RETENTION_DAYS``), the phone company's logs
(``HOTLINE_REDACT_AT_TWILIO``, ``HOTLINE_TWILIO_LOG_DAYS``), the statistics' k
(``HOTLINE_MIN_CELL``), the training rule, the voice menu's keys and the text path's replies
(``ivr_flows``), the wait before the options and the callback promise. Change a setting and
the page changes with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import phonenumbers
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.core import flows
from hotline.core.phones import DEFAULT_REGION
from hotline.core.settings import Settings
from hotline.models import Shift, Supporter
from hotline.retention.purge import CALLBACK_KEEP, CONSENT_WINDOW
from hotline.roster import training
from hotline.roster.shifts import MINUTES_PER_DAY, clock, program_zone

MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY


def display_number(number: str) -> str:
    """A number as people write it: national in the program's region, else international;
    a short code (988) as it is."""
    try:
        parsed = phonenumbers.parse(number, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_valid_number(parsed):
        return number
    national = phonenumbers.region_code_for_number(parsed) == DEFAULT_REGION
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL
                                      if national else phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def values(cfg: Settings, lang: str, url: str) -> dict[str, object]:
    """The placeholders of program.yaml, in ``lang``."""
    menu = flows.current().menus["menu"]
    intake = current_app.extensions["hotline.texts"].intake
    return {
        "program": current_app.extensions["hotline.texts"].program,
        "number": display_number(cfg.HOTLINE_NUMBER),
        "crisis": display_number(cfg.CRISIS_LINE_NUMBER),
        "zone": program_zone().key,
        "minutes": flows.duration(lang, math.ceil(cfg.MAX_WAIT_SECONDS / 60)),
        "callback": flows.duration(lang, cfg.CALLBACK_PROMISE_MINUTES),
        "talk_key": menu["talk"]["digit"], "callback_key": menu["callback"]["digit"],
        "match_key": menu["match"]["digit"], "crisis_key": menu["crisis"]["digit"],
        "text_call": intake["call"], "text_chat": intake["text"],
        "text_later": intake["callback"],
        "days": cfg.RETENTION_DAYS, "log_days": cfg.TWILIO_LOG_DAYS,
        "answer_hours": int(CONSENT_WINDOW.total_seconds() // 3600),
        "callback_days": CALLBACK_KEEP.days, "k": cfg.MIN_CELL,
        "months": cfg.TRAINING_VALID_MONTHS, "url": url,
    }


def promise(cfg: Settings) -> list[str]:
    """The keys of program.yaml that make the confidentiality promise, as the settings
    stand: what is never kept, what the phone company keeps, and what is kept how long."""
    keys = ["never_kept"]
    if cfg.REDACT_AT_TWILIO:
        keys.append("redacted")
    keys.append("logs_deleted" if cfg.TWILIO_LOG_DAYS else "logs_kept")
    keys += ["number_sealed", "callback_number", "followups", "events", "statistics"]
    return keys


@dataclass(frozen=True)
class Hours:
    """When peer supporters are on shift: per weekday (Monday first), (start, end) minutes of
    the day, end 1440 for midnight."""

    days: tuple[tuple[tuple[int, int], ...], ...]

    @property
    def around_the_clock(self) -> bool:
        return all(day == ((0, MINUTES_PER_DAY),) for day in self.days)

    @property
    def none(self) -> bool:
        return not any(self.days)


def hours(session: Session) -> Hours:
    """The union of the weekly shifts of the supporters routing may offer contacts to (active,
    and trained when training is required: ``training.current``), in the program's time
    zone (the shifts are stored in it). Whoever is ON outside a shift is not a promise."""
    spans = sorted(session.execute(
        select(Shift.start_minute, Shift.end_minute).join(Supporter)
        .where(Supporter.active.is_(True), training.current())).all())
    covered: list[tuple[int, int]] = []
    for start, end in spans:  # a shift past Sunday midnight wraps to Monday
        pieces = [(start, min(end, MINUTES_PER_WEEK))]
        if end > MINUTES_PER_WEEK:
            pieces.append((0, end - MINUTES_PER_WEEK))
        covered += pieces
    merged: list[list[int]] = []
    for start, end in sorted(covered):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    days: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    for start, end in merged:
        while start < end:
            day = start // MINUTES_PER_DAY
            stop = min(end, (day + 1) * MINUTES_PER_DAY)
            days[day].append((start - day * MINUTES_PER_DAY, stop - day * MINUTES_PER_DAY))
            start = stop
    return Hours(days=tuple(tuple(day) for day in days))


def clock_end(minute: int) -> str:
    """'HH:MM' for the end of a span: midnight at the end of a day is 24:00."""
    return "24:00" if minute == MINUTES_PER_DAY else clock(minute)
