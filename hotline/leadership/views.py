"""The leadership report page and the program inputs form (coordinators; login required).

Thin adapters: ``report.build`` makes the report, ``inputs.check`` and ``inputs.save``
judge and store what a coordinator typed.
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from hotline.core.extensions import db, settings
from hotline.dashboard import access
from hotline.leadership import inputs as program_inputs
from hotline.leadership import report as leadership
from hotline.models import utcnow
from hotline.roster.shifts import program_zone

bp = Blueprint("leadership", __name__, url_prefix="/dashboard/leadership",
               template_folder="templates", static_folder="static")


def no_store(response: Response) -> Response:
    """Like every dashboard page: the browser keeps no copy."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _today():
    return utcnow().astimezone(program_zone()).date()


@bp.get("/")
def report_page():
    """The printable quarterly report."""
    cfg = settings()
    report = leadership.build(db.session, _today(), cfg.MIN_CELL, cfg.RETENTION_DAYS)
    return render_template("leadership/report.html", report=report, made_on=_today(),
                           pulse_shares=leadership.PULSE_SHARES)


@bp.get("/inputs")
def inputs_page():
    """The form for one quarter's program inputs (``?quarter=2026-Q1``; this one by
    default), filled with what was entered before."""
    today = _today()
    offered = program_inputs.offered(today)
    asked = request.args.get("quarter") or offered[0].id
    if asked not in {span.id for span in offered}:
        asked = offered[0].id
    known = program_inputs.of(db.session, [asked]).get(asked)
    form = {"quarter": asked}
    if known is not None:
        form.update({name: _typed(getattr(known, name)) for name in program_inputs.FIELDS[1:]})
    return _form(offered, form, {}, known)


def _typed(value) -> str:
    """A stored figure as it would be typed: 240, 8.5 (never 1e+06)."""
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _form(offered, form: dict, errors: dict, known=None, status: int = 200):
    return render_template("leadership/inputs.html", offered=offered, form=form,
                           errors=errors, known=known, labels=program_inputs.LABELS,
                           order=list(program_inputs.FIELDS)), status


@bp.post("/inputs")
def inputs_save():
    """Save a quarter's inputs; every refused field is shown next to itself."""
    today = _today()
    try:
        saved = program_inputs.check(request.form, today)
    except program_inputs.InputsError as exc:
        return _form(program_inputs.offered(today), request.form, exc.errors, status=400)
    program_inputs.save(db.session, saved, access.current_user().email)
    flash(f"Program inputs for {saved.quarter} saved.")
    return redirect(url_for("leadership.report_page"))
