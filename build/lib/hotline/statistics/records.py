"""The cached day as a typed record: what ``stats_days.counts`` holds, field by field.

A ``DayCounts`` is the additive counts of one local day (every contact counts on the day it
started; offers and talk time on the day they began), filled by the same query builders as
the live statistics (``hotline.statistics.queries``) and added up by
``hotline.statistics.days``. It is stored
as JSON with named fields and a schema ``version``; a row of any other version (older, newer,
or the unversioned one-letter JSON of before) decodes to None, so the cache treats the day as
missing and counts it again, replacing the row, instead of reading numbers it does not know
the meaning of. Change ``DAY_VERSION`` with any change of what a field means or holds.

Counts only: no contact id, caller key, number or text, nothing finer than a local hour;
per supporter id, their offers and seconds on contacts (what the supporter load shows).
Imports nothing from the app, so every statistics module may use it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, fields

#: The stored format. 1 (never written with the number) was the one-letter JSON with
#: positional supporter rows; 2 this record without ``care``; 3 without the outreach counts
#: (reached, sent) in ``followups``; 4 this record.
DAY_VERSION = 4
HOURS = 24
#: Offer states by column of the supporter load; any other state (canceled, ringing) is
#: ``other``.
OFFER_GROUPS = {"accepted": ("accepted",), "declined": ("declined",),
                "missed": ("no_answer", "busy", "failed")}
OFFER_COLUMNS = {state: group for group, states in OFFER_GROUPS.items() for state in states}


@dataclass(slots=True)
class SupporterDay:
    """One supporter's day: offers made to them by result, and seconds on contacts
    connected that day and ended (None when none ended: no minutes to show)."""
    offers: int = 0
    accepted: int = 0
    declined: int = 0
    missed: int = 0
    other: int = 0
    seconds: int | None = None

    def add_offers(self, state: str, count: int) -> None:
        self.offers += count
        column = OFFER_COLUMNS.get(state, "other")
        setattr(self, column, getattr(self, column) + count)

    def add_seconds(self, seconds: int | None) -> None:
        if seconds is not None:
            self.seconds = seconds if self.seconds is None else self.seconds + seconds

    def add(self, other: SupporterDay) -> None:
        self.offers += other.offers
        self.accepted += other.accepted
        self.declined += other.declined
        self.missed += other.missed
        self.other += other.other
        if other.seconds is not None:   # add_seconds inlined: a year adds 10,000s of rows
            self.seconds = other.seconds if self.seconds is None \
                else self.seconds + other.seconds


SUPPORTER_FIELDS = tuple(f.name for f in fields(SupporterDay))


@dataclass(slots=True)
class DayCounts:
    """The exact, additive counts of one local day (or, for the live path, of a whole
    period but its hours: ``hotline.statistics.queries``)."""
    contacts: int = 0
    hours: Counter = field(default_factory=Counter)        # local hour 0-23 -> contacts
    by_channel: Counter = field(default_factory=Counter)   # channel -> contacts
    outcomes: Counter = field(default_factory=Counter)     # first outcome -> contacts
    waits: Counter = field(default_factory=Counter)        # whole seconds to a human -> n
    callbacks: Counter = field(default_factory=Counter)    # callback state -> requests
    escalated: int = 0                                     # contacts escalated
    #: follow-up kind -> contacts (and outreach texts sent, ``queries.OUTREACH_SENT``)
    followups: Counter = field(default_factory=Counter)
    care: Counter = field(default_factory=Counter)         # care rule event -> contacts
    supporters: dict = field(default_factory=dict)   # supporter id (int) -> SupporterDay
    #: Things of the day still open (offers ringing, calls not ended): never stored, a day
    #: is stored only once it is settled.
    open: int = 0

    def add_hour(self, day: int, hour: int, count: int) -> None:
        """``count`` contacts in local ``hour`` of the day (``day``: its number, unused)."""
        self.hours[hour] += count

    def supporter(self, sid: int | None) -> SupporterDay:
        found = self.supporters.get(sid)
        if found is None:
            found = self.supporters[sid] = SupporterDay()
        return found

    def settled(self) -> bool:
        """Nothing of the day still open: every contact has its outcome, every callback is
        done or failed, no offer rings, every connected contact has ended."""
        return (not self.open and not self.callbacks.get("open")
                and self.contacts == sum(self.outcomes.values()))

    def to_json(self) -> str:
        """The stored form (``open`` is not stored: only settled days are)."""
        ids = sorted(self.supporters)
        return json.dumps({
            "version": DAY_VERSION, "contacts": self.contacts,
            "hours": [self.hours.get(h, 0) for h in range(HOURS)],
            "by_channel": self.by_channel, "outcomes": self.outcomes,
            "waits": sorted(self.waits.items()),   # [seconds, contacts] pairs
            "callbacks": self.callbacks, "escalated": self.escalated,
            "followups": self.followups, "care": self.care,
            # by column (a year of rows decodes in half the time of one object per row)
            "supporters": {"id": ids, **{name: [getattr(self.supporters[sid], name)
                                                for sid in ids]
                                         for name in SUPPORTER_FIELDS}},
        }, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DayCounts | None:
        """The record stored as ``text``; None for any other version, or a row that does not
        decode as one (then the day is counted again, never misread)."""
        try:
            found = json.loads(text)
            if not isinstance(found, dict) or found.get("version") != DAY_VERSION:
                return None
            hours = found["hours"]
            if len(hours) != HOURS:
                return None
            columns = found["supporters"]
            ids = columns["id"]
            if any(len(columns[name]) != len(ids) for name in SUPPORTER_FIELDS):
                return None
            supporters = dict(zip(ids, map(SupporterDay, *(columns[name]
                                                          for name in SUPPORTER_FIELDS))))
            return cls(
                contacts=int(found["contacts"]),
                hours=Counter({h: n for h, n in enumerate(hours) if n}),
                by_channel=Counter(found["by_channel"]), outcomes=Counter(found["outcomes"]),
                waits=Counter(dict(found["waits"])),
                callbacks=Counter(found["callbacks"]), escalated=int(found["escalated"]),
                followups=Counter(found["followups"]), care=Counter(found["care"]),
                supporters=supporters)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
