"""Team debriefs on the dashboard: schedule one, see what is planned and what was held.

The meeting code and the invitation are shown once, in the answer to the form (never
flashed: a flash rides in the session cookie, which is signed, not encrypted). The rules
are ``hotline.debriefs.meetings``', as for ``hotline debriefs schedule``.
"""

from __future__ import annotations

from datetime import datetime

from flask import render_template, request

from hotline.core.extensions import db, settings
from hotline.core.flows import current as current_flows
from hotline.core.errors import HotlineError
from hotline.dashboard.views import bp
from hotline.debriefs import meetings
from hotline.models import Supporter
from hotline.roster import supporters as roster
from hotline.roster.shifts import program_zone, zone_label

#: Form fields, in the order they are shown (and checked).
FIELDS = ("date", "start", "minutes", "facilitator", "second")


@bp.get("/debriefs")
def debriefs_page():
    """Scheduled and held debriefs, and the form to schedule one."""
    return _page()


def _page(form: dict | None = None, error: str | None = None,
          made: meetings.Scheduled | None = None, status: int = 200):
    people = {s.id: s for s in db.session.query(Supporter)}
    cfg = settings()
    held = [(d.day, d.participants if d.participants >= cfg.MIN_CELL else f"<{cfg.MIN_CELL}")
            for d in meetings.held(db.session)]
    return render_template(
        "dashboard/debriefs.html", form=form or {"minutes": "60"}, error=error, made=made,
        upcoming=[(d, d.starts_at.astimezone(program_zone()),
                   [people[i].name for i in meetings.facilitator_ids(d) if i in people])
                  for d in meetings.upcoming(db.session)],
        held=held, supporters=[s for s in roster.everyone(db.session) if s.active],
        languages=[(code, lang.name) for code, lang in current_flows().languages.items()],
        zone=zone_label(), min_minutes=meetings.MIN_MINUTES, max_minutes=meetings.MAX_MINUTES,
    ), status


@bp.post("/debriefs")
def debriefs_schedule():
    """Schedule a debrief: the answer shows its code and invitation, once."""
    form = request.form
    try:
        try:
            starts = datetime.fromisoformat(f"{form.get('date', '')}T{form.get('start', '')}")
        except ValueError:
            raise meetings.DebriefError("give the date and the start time") from None
        try:
            minutes = int(form.get("minutes", ""))
        except ValueError:
            raise meetings.DebriefError("give the length in minutes") from None
        chosen = [db.session.get(Supporter, int(i)) for i in
                  (form.get("facilitator"), form.get("second")) if i and i.isdigit()]
        if not chosen or None in chosen:
            raise meetings.DebriefError("choose a facilitating supporter")
        made = meetings.schedule(db.session, starts.replace(tzinfo=program_zone()), minutes,
                                 meetings.facilitators(db.session, [s.phone for s in chosen]),
                                 form.get("language") or "en")
    except HotlineError as exc:
        db.session.rollback()
        return _page(form, str(exc), status=400)
    return _page(made=made, status=201)
