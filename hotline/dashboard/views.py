"""The coordinator pages and API: logging in and out, invitations, statistics.

Roster, shifts and accounts have their own modules; all share these two blueprints,
guarded by ``access.guard`` (login required unless a view is marked public).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import datetime

from flask import (Blueprint, Response, abort, flash, jsonify, redirect, render_template, request,
                   url_for)

from hotline.dashboard import accounts
from hotline.statistics import days as stats_cache
from hotline.dashboard import access, charts, in_progress
from hotline.disclosure import joint
from hotline.statistics import periods
from hotline.disclosure import report as reports
from hotline.core.extensions import db, redis_conn, settings
from hotline.core.flows import duration
from hotline.models import utcnow
from hotline.roster.shifts import program_zone

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates",
               static_folder="static")
api = Blueprint("dashboard_api", __name__, url_prefix="/api")


def _safe_next(target: str | None) -> str:
    """Only a path of this dashboard: never an open redirect."""
    if target and target.startswith("/dashboard") and not target.startswith("//"):
        return target
    return url_for("dashboard.overview")


@bp.route("/login", methods=["GET", "POST"])
@access.public
def login():
    """The login form; every try is counted before the password is checked.

    Limits (``accounts.LoginLimiter``): per account from any address, with a growing
    delay; per client address; a browser that logged in to the account before (a trusted
    device) has its own limit instead, so failures by others never keep its owner out.
    """
    if request.method == "GET":
        return render_template("dashboard/login.html", next=request.args.get("next", ""))
    email = (request.form.get("email") or "").strip().lower()
    address, device = access.client_address(), access.trusted_device(email)
    limiter = accounts.LoginLimiter(redis_conn.client)
    attempt = limiter.attempt(email, address, device)
    if not attempt.allowed:
        return _throttled(attempt, email)
    user = accounts.authenticate(db.session, access.password_hasher(), email,
                                 request.form.get("password") or "")
    if user is None:
        return render_template("dashboard/login.html", next=request.form.get("next", ""),
                               error=_failed(attempt), email=email), 401
    limiter.succeeded(attempt, email, address, device)
    access.log_in(user)
    return access.remember_device(redirect(_safe_next(request.form.get("next"))), user.email)


#: Whom to ask when locked out or unsure of the password (the same words everywhere).
ASK_AN_ADMIN = ("ask one of the program's dashboard admins: they can send you a new "
                "invitation link that lets you in at once.")
#: From this many tries left before a wait, a failed login warns (so before the last one).
WARN_FROM_TRIES_LEFT = 2


def _failed(attempt: accounts.Attempt) -> str:
    """A wrong password: say so, and warn while free tries run out (same for unknown emails)."""
    error = "That email and password do not match an account."
    if attempt.until:
        return f"{error} {_wait_text(attempt)}"
    left = attempt.tries_left
    if left is not None and left <= WARN_FROM_TRIES_LEFT:
        tries = f"{left} attempt{'s' if left != 1 else ''}"
        return (f"{error} {tries} left before a wait. If you have forgotten your password, "
                f"{ASK_AN_ADMIN}")
    return error


def _wait_text(attempt: accounts.Attempt) -> str:
    """Which limit, until when, and whom to ask."""
    seconds = attempt.seconds_left()
    at = datetime.fromtimestamp(attempt.until, program_zone()).strftime("%H:%M %Z")
    minutes = -(-seconds // 60)
    what = ("this account" if attempt.limit == "account"
            else "your network address")
    return (f"Too many failed logins for {what}. You can try again at {at} "
            f"(in {duration('en', minutes)}). If these tries were not "
            f"yours, or you cannot wait, {ASK_AN_ADMIN}")


def _throttled(attempt: accounts.Attempt, email: str) -> tuple[str, int, dict[str, str]]:
    """429 saying which limit, until when, and whom to ask (the same for unknown emails)."""
    return (render_template("dashboard/login.html", next=request.form.get("next", ""),
                            error=_wait_text(attempt), email=email), 429,
            {"Retry-After": str(attempt.seconds_left())})


@bp.post("/logout")
@access.referral  # a referrer account logs out too
def logout():
    """End the session here and on the server."""
    access.log_out()
    flash("You are logged out.")  # on the login page, so a shared computer shows it plainly
    return redirect(url_for("dashboard.login"))


@bp.route("/invite", methods=["GET", "POST"])
@access.public
def invite():
    """Set the password of an invited account, then log in.

    The token travels in the link's fragment (``/dashboard/invite#<token>``), which a
    browser never sends: the page's script copies it into the form, and it reaches the
    server only in this POST's body. So no access log, proxy or balancer log ever holds
    it. (Without script, the form asks for the code after the ``#``.)
    """
    if request.method == "GET":
        return render_template("dashboard/invite.html", token="", email=None, error=None)
    token = (request.form.get("token") or "").strip().lstrip("#")
    user = accounts.invited(db.session, token)
    if user is None:
        abort(404, "This invitation link is not valid any more: ask an admin for a new one.")
    try:
        accounts.accept_invite(db.session, access.password_hasher(), user,
                               request.form.get("password") or "",
                               request.form.get("confirm") or "")
    except accounts.AccountError as exc:
        return render_template("dashboard/invite.html", token=token, email=user.email,
                               error=str(exc)), 400
    # The invitation proves who this is: the account's login backoff is lifted.
    accounts.LoginLimiter(redis_conn.client).forgive(user.email)
    access.log_in(user)
    return access.remember_device(redirect(url_for("dashboard.overview")), user.email)


def build_report(args: dict | None = None) -> reports.Report:
    """The published report for the period in the query string: only a period of the
    hierarchy, its cells hidden as decided jointly with every period nested in it
    (``hotline.disclosure.joint``); PeriodError for anything else."""
    now, zone = utcnow(), program_zone()
    span = periods.choose(request.args if args is None else args, _limits(now, zone))
    report = joint.publish(db.session, span, zone, settings().MIN_CELL, now)
    report.span = span
    return report


def _limits(now, zone) -> periods.Bounds:
    """What may be published now: settled days inside the retention window, none of
    them still open (``stats_cache.open_days``)."""
    window = stats_cache.cache_window(zone, now)
    limits = periods.bounds(now, zone, window)
    if window is None or limits.last < limits.first:
        return limits
    return dataclasses.replace(limits, open_days=frozenset(stats_cache.open_days(
        db.session, zone, window, now, limits.first, limits.last)))


def publication() -> periods.Bounds:
    """What may be published now (the bounds ``/api/stats`` checks every period against)."""
    now, zone = utcnow(), program_zone()
    return _limits(now, zone)


def _choices() -> list[periods.Span]:
    now, zone = utcnow(), program_zone()
    return periods.listing(_limits(now, zone))


def _in_progress() -> in_progress.InProgress:
    """This month so far: when the unpublished months will be, and roster figures only."""
    now, zone = utcnow(), program_zone()
    return in_progress.build(db.session, now, zone, _limits(now, zone))


@bp.get("/")
def overview():
    """Statistics for a period: headline numbers, then every chart with its table."""
    try:
        report = build_report()
    except periods.PeriodError as exc:
        try:
            fallback = build_report({})
        except periods.PeriodError:
            fallback = None
        # nothing published yet is no error of the request (retention shorter than a month)
        return render_template("dashboard/stats.html", report=fallback, charts=charts,
                               error=str(exc), policy=_policy(), choices=_choices(),
                               progress=_in_progress()), 400 if request.args else 200
    return render_template("dashboard/stats.html", report=report, charts=charts,
                           policy=_policy(), choices=_choices(), progress=_in_progress())


def _policy() -> dict[str, int]:
    """The retention policy in force, stated under the statistics."""
    cfg = settings()
    return {"retention_days": cfg.RETENTION_DAYS, "twilio_log_days": cfg.TWILIO_LOG_DAYS}


#: A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: a leading ' before a formula start.

    Supporter names are typed by coordinators; ``=HYPERLINK(...)`` must not become a live
    link (or a command) in whoever opens the export. Numbers are left as numbers.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@bp.get("/stats.csv")
def stats_csv():
    """Every table of the report as CSV rows: table, row, column, value."""
    try:
        report = build_report()
    except periods.PeriodError as exc:
        abort(400, str(exc))
    out = io.StringIO()
    writer = csv.writer(out)

    def row(*cells: object) -> None:
        writer.writerow([spreadsheet_safe(cell) for cell in cells])

    row("table", "row", "column", "value")
    for table in report.tables:
        for label, keys in table.rows:
            for column, key in zip(table.columns, keys):
                row(table.title, label, column, report.shown(key))
    for name, value in report.summary.items():
        if not isinstance(value, dict):
            row("summary", name, "", "" if value is None else value)
    name = f"hotline-{report.span.id}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def report_json(report: reports.Report) -> dict:
    """The report as JSON: counts, ``<k`` or ``hidden`` in every cell."""
    return {
        "period": {"id": report.span.id, "level": report.span.level,
                   "from": report.period.first.isoformat(), "to": report.period.last.isoformat(),
                   "time_zone": str(report.period.zone)},
        "k": report.k,
        "legend": {f"<{report.k}": f"fewer than {report.k}, possibly none",
                   reports.HIDDEN: "hidden so that totals cannot reveal a count below "
                                   f"{report.k}"},
        "summary": report.summary,
        "tables": [{"id": t.id, "title": t.title, "note": t.note, "columns": t.columns,
                    "rows": [{"label": label, "values": [report.shown(k) for k in keys]}
                             for label, keys in t.rows]} for t in report.tables],
    }


@api.get("/stats")
def api_stats():
    """GET /api/stats?period=2025-03 (or 2025-Q1, 2025; or from/to giving exactly such a
    period): the published report as JSON. Any other period: 400."""
    try:
        return jsonify(report_json(build_report()))
    except periods.PeriodError as exc:
        return jsonify({"error": str(exc)}), 400


@api.get("/stats/periods")
def api_stats_periods():
    """Every period /api/stats publishes now, newest first by level."""
    return jsonify({"periods": [{"id": s.id, "level": s.level, "label": s.label,
                                 "from": s.first.isoformat(), "to": s.last.isoformat()}
                                for s in _choices()], "rule": periods.RULE})


@api.get("/me")
def api_me():
    """Who is logged in, and the CSRF token to send as X-CSRF-Token."""
    user = access.current_user()
    return jsonify({"email": user.email, "role": user.role, "csrf_token": access.csrf_token()})
