"""The staff pulse survey's pages: the public survey (``/pulse``, blueprint ``pulse``) and
the coordinators' windows and results (``/dashboard/pulse``, login required).

The public page asks for no login and sets no cookie but the session cookie that carries
its CSRF token (``access.csrf_token``; the guard checks it on the POST like everywhere).
The client address (``access.vouched_address``: never an X-Forwarded-For entry
HOTLINE_PROXY_HOPS does not vouch for) is used for one thing: the daily keyed rate limit
(``hotline.pulse.survey.over_limit``), which never stores it. The rules are
``hotline.pulse``'s; the numbers shown are ``hotline.pulse.results``'.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from hotline.core.errors import HotlineError
from hotline.core.extensions import db, settings
from hotline.core.flows import current as current_flows
from hotline.dashboard import access
from hotline.dashboard.views import bp
from hotline.models import PulseWindow
from hotline.models.pulse import PREFER_NOT_TO_SAY
from hotline.pulse import results, survey
from hotline.pulse import words as pulse_words
from hotline.roster import roles as roster_roles
from hotline.roster.shifts import program_zone

public_bp = Blueprint("pulse", __name__, url_prefix="/pulse", template_folder="templates")
#: Statuses of the public page's answers.
STATUS = {survey.COUNTED: 201, survey.CLOSED: 409, survey.LIMITED: 429}


def _language() -> str:
    lang = request.values.get("lang") or "en"
    return lang if lang in current_flows().languages else "en"


def _role_choices(lang: str, words: dict[str, str]) -> list[tuple[str, str]]:
    lists = roster_roles.current()
    return [(e.name, e.label(lang).capitalize()) for e in lists.roles] + [
        (PREFER_NOT_TO_SAY, words["prefer_not_to_say"])]


def _survey_page(lang: str, state: str, form=None, status: int = 200):
    words = pulse_words.current().table(lang, settings().MIN_CELL)
    return render_template(
        "dashboard/pulse_survey.html", words=words, lang=lang, state=state, form=form or {},
        roles=_role_choices(lang, words), scale=list(survey.SCALE),
        languages=[(code, language.name) for code, language in
                   current_flows().languages.items()]), status


# ``pulse.survey``: the name the poster and other pages link to.
@public_bp.route("", methods=["GET", "POST"], endpoint="survey")
@access.public
def survey_page():
    """The anonymous survey: the form while a window is open, else a line saying so."""
    lang = _language()
    window = survey.current(db.session)
    if request.method == "GET":
        return _survey_page(lang, "open" if window else "closed")
    ballot = survey.parse(request.form, roster_roles.current().names("roles"))
    if ballot is None:
        return _survey_page(lang, "open" if window else "closed", request.form,
                            400 if window else 409)
    outcome = survey.take(db.session, ballot, access.vouched_address())
    return _survey_page(lang, outcome, status=STATUS[outcome])



@bp.get("/pulse")
def pulse_page():
    """Survey windows: open one, close the open one, the results of the closed ones."""
    return _coordinator_page()


def _coordinator_page(error: str | None = None, status: int = 200):
    k = settings().MIN_CELL
    zone = program_zone()
    closed = [results.by_role(db.session, w, k) for w in reversed(results.closed_windows(
        db.session))]
    lists = roster_roles.current()
    labels = {e.name: e.label("en").capitalize() for e in lists.roles}
    labels[PREFER_NOT_TO_SAY] = pulse_words.current().table("en", k)["prefer_not_to_say"]
    open_window = survey.current(db.session)
    return render_template(
        "dashboard/pulse.html", open_window=open_window, closed=closed, error=error, k=k,
        trends=results.trends(db.session, k), labels=labels, zone=zone,
        opened_local=open_window.opened_at.astimezone(zone) if open_window else None,
    ), status


@bp.post("/pulse/open")
def pulse_open():
    try:
        window = survey.open_window(db.session, request.form.get("title", ""))
    except HotlineError as exc:
        db.session.rollback()
        return _coordinator_page(str(exc), 400)
    flash(f"Survey window \u201c{window.title}\u201d is open.", "ok")
    return redirect(url_for("dashboard.pulse_page"))


@bp.post("/pulse/<int:window_id>/close")
def pulse_close(window_id: int):
    try:
        window: PulseWindow = survey.close_window(db.session, window_id)
    except HotlineError as exc:
        db.session.rollback()
        return _coordinator_page(str(exc), 400)
    flash(f"Survey window \u201c{window.title}\u201d is closed; its results are below.", "ok")
    return redirect(url_for("dashboard.pulse_page"))
