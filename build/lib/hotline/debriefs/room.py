"""The debrief's conference at Twilio, by REST (hotline.telephony.api): the one-minute
warning, and the end (when the time is up, or when the last of two facilitators left)."""

from __future__ import annotations

import logging

from hotline.core.errors import TwilioApiError
from hotline.core.extensions import db, settings
from hotline.core.urls import public_url
from hotline.debriefs import meetings
from hotline.models import Debrief, DebriefState
from hotline.telephony import api as twilio_api

log = logging.getLogger(__name__)


def warn(debrief_id: int) -> str:
    """A minute before the end: tell everyone in the conference."""
    debrief = db.session.get(Debrief, debrief_id)
    if debrief is None or debrief.state != DebriefState.SCHEDULED:
        return "nothing to do"
    cfg = settings()
    sid = twilio_api.find_conference(cfg, meetings.room(debrief_id))
    if sid is None:
        return "no conference"
    twilio_api.announce_conference(cfg, sid, public_url("debrief.warning"))
    return "warned"


def close(debrief_id: int) -> str:
    """End the conference for everyone in it, if it is on."""
    cfg = settings()
    sid = twilio_api.find_conference(cfg, meetings.room(debrief_id))
    if sid is None:
        return "no conference"
    twilio_api.end_conference(cfg, sid)
    log.info("debrief %s: conference ended", debrief_id)
    return "closed"


def end(debrief_id: int) -> str:
    """The time is up: end the conference, then forget the debrief's code and details.
    The code is forgotten even when Twilio cannot be reached: each leg's own time limit
    ends the call a little later, and a code must never outlive its meeting."""
    try:
        closed = close(debrief_id)
    except TwilioApiError as exc:
        log.warning("debrief %s: conference not ended at Twilio (%s); its legs' time "
                    "limits end it", debrief_id, exc)
        closed = "not reached"
    meetings.end(db.session, debrief_id)
    return closed


def end_overdue() -> int:
    """End every debrief whose end job was lost (the auditor's pass, the CLI)."""
    overdue = meetings.end_overdue(db.session)
    for debrief_id in overdue:
        end(debrief_id)
    return len(overdue)
