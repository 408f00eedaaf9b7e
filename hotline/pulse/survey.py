"""Survey windows and ballots: opening and closing a window, taking one anonymous ballot,
and the daily rate limit against ballot stuffing.

One window is open at a time; closing is final (a closed window's results never change, so
two looks at them cannot be differenced into one person's answers). A ballot is taken only
while a window is open, and only if its client address (an IPv6 address's /64) is under
HOTLINE_PULSE_PER_DAY ballots today (the program's time zone). The address is never stored,
in the database or in Redis: the counter's name is ``privacy.daily_tag`` of it under the
day's random secret, and the secret and the counters expire at the end of the day.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Mapping

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hotline.core.clock import utcnow
from hotline.core.errors import HotlineError
from hotline.core.extensions import redis_conn, settings
from hotline.models import PulseResponse, PulseWindow
from hotline.models.pulse import PREFER_NOT_TO_SAY
from hotline.privacy import primitives as privacy
from hotline.roster.shifts import program_zone

log = logging.getLogger(__name__)

#: Redis: the day's random secret (one per local day) and the per-address counters.
DAY_SECRET_PREFIX = "hotline:pulse:day"
LIMIT_PREFIX = "hotline:pulse:limit"
TITLE_LENGTH = 120
#: Characters that reorder the text around them: a title would read otherwise than typed.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Ids are 64-bit integers: a larger one names no window (and no database takes it).
MAX_ID = 2 ** 63 - 1
#: What ``take`` answers.
COUNTED, CLOSED, LIMITED = "counted", "closed", "limited"
SCALE = range(1, 6)


class PulseError(HotlineError):
    """A coordinator's request about windows that cannot be done; the message says why."""


def current(session: Session) -> PulseWindow | None:
    """The open window, if any."""
    return session.scalar(select(PulseWindow).where(PulseWindow.closed_at.is_(None))
                          .order_by(PulseWindow.id.desc()).limit(1))


def windows(session: Session) -> list[PulseWindow]:
    """Every window, newest first."""
    return list(session.scalars(select(PulseWindow).order_by(PulseWindow.opened_at.desc(),
                                                             PulseWindow.id.desc())))


def open_window(session: Session, title: str) -> PulseWindow:
    """Open a new window (none may be open already); commits."""
    title = " ".join((title or "").split())
    if not title:
        raise PulseError("give the survey window a title")
    if len(title) > TITLE_LENGTH:
        raise PulseError(f"a title has at most {TITLE_LENGTH} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") or ch in BIDI_CONTROLS for ch in title):
        raise PulseError("a title cannot hold a control character (write it as plain text)")
    if current(session) is not None:
        raise PulseError("a survey window is already open: close it first")
    window = PulseWindow(title=title, opened_at=utcnow())
    session.add(window)
    session.commit()
    return window


def close_window(session: Session, window_id: int) -> PulseWindow:
    """Close the open window ``window_id`` for good; commits."""
    window = session.get(PulseWindow, window_id) if 0 < window_id <= MAX_ID else None
    if window is None or window.closed_at is not None:
        raise PulseError("that survey window is not open")
    window.closed_at = max(utcnow(), window.opened_at)
    session.commit()
    return window


@dataclass(frozen=True)
class Ballot:
    """One respondent's answers (validated)."""
    role: str
    burnout: int
    knows_line: bool
    used_line: bool
    likely: int


def parse(form: Mapping[str, str], roles: tuple[str, ...]) -> Ballot | None:
    """The ballot a form holds, or None when an answer is missing or not one offered."""
    def scale(name: str) -> int | None:
        value = (form.get(name) or "").strip()
        return int(value) if value.isdigit() and int(value) in SCALE else None

    def yes_no(name: str) -> bool | None:
        return {"yes": True, "no": False}.get((form.get(name) or "").strip())

    role = (form.get("role") or "").strip()
    answers = (scale("burnout"), yes_no("knows_line"), yes_no("used_line"), scale("likely"))
    if role not in (*roles, PREFER_NOT_TO_SAY) or None in answers:
        return None
    return Ballot(role, *answers)


def take(session: Session, ballot: Ballot, address: str) -> str:
    """Count ``ballot`` in the open window: COUNTED, CLOSED (no window open: nothing spent;
    or closed while this ballot was on its way: nothing stored) or LIMITED (``address`` is
    over today's limit; nothing stored). Commits."""
    window = current(session)
    if window is None:
        return CLOSED
    if over_limit(address):
        log.info("a pulse survey ballot over the daily limit was refused")
        return LIMITED
    # Still open, and held open until this commits: a no-op UPDATE locks the window's row
    # (PostgreSQL; SQLite's one writer), so a close waits for the ballot or refuses it. A
    # ballot stored after the close would change results a coordinator has already read.
    held = session.execute(update(PulseWindow).where(PulseWindow.id == window.id,
                                                     PulseWindow.closed_at.is_(None))
                           .values(title=PulseWindow.title))
    if held.rowcount != 1:
        session.rollback()
        return CLOSED
    session.add(PulseResponse(window_id=window.id, role=ballot.role, burnout=ballot.burnout,
                              knows_line=ballot.knows_line, used_line=ballot.used_line,
                              likely=ballot.likely))
    session.commit()
    return COUNTED


def _rest_of_day(now: datetime) -> tuple[str, int]:
    """Today in the program's time zone, and the seconds left in it (1 to a day)."""
    local = now.astimezone(program_zone())
    midnight = datetime.combine(local.date() + timedelta(days=1), time(), program_zone())
    return local.date().isoformat(), max(1, min(86400, int((midnight - local).total_seconds())))


#: The day's secret: read it, or make it with the day's expiry, in one step (read back
#: after a separate SET, a key expiring in between left the tag under an empty secret).
_DAY_SECRET = """
local secret = redis.call('GET', KEYS[1])
if not secret then
  secret = ARGV[1]
  redis.call('SET', KEYS[1], secret, 'EX', ARGV[2])
end
return secret
"""
#: Count one ballot; a counter without an expiry gets the day's (INCR alone on a key that
#: expired after its SET made one that was kept for ever).
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


def limit_key(address: str, now: datetime | None = None) -> str:
    """The Redis key counting today's ballots from ``address``: a keyed hash under the day's
    secret (made on first use, expiring with the day), never the address."""
    client = redis_conn.client
    day, ttl = _rest_of_day(now or utcnow())
    secret = client.register_script(_DAY_SECRET)(
        keys=[f"{DAY_SECRET_PREFIX}:{day}"], args=[secrets.token_hex(32), ttl])
    return f"{LIMIT_PREFIX}:{privacy.daily_tag(limit_subject(address), secret, settings())}"


def over_limit(address: str) -> bool:
    """Count one ballot from ``address`` today; True past HOTLINE_PULSE_PER_DAY."""
    now = utcnow()   # one moment: the day of the secret is the day of the expiry
    _day, ttl = _rest_of_day(now)
    count = redis_conn.client.register_script(_COUNT)(keys=[limit_key(address, now)],
                                                      args=[ttl])
    return count > settings().PULSE_PER_DAY


#: An IPv6 subscriber is given a whole /64 (RFC 6177): its addresses are one voter.
IPV6_PREFIX = 64


def limit_subject(address: str) -> str:
    """What the limit counts for ``address``: an IPv4 address itself, an IPv6 address's
    /64 (else one person rotates through 2^64 addresses)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)
