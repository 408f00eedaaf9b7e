"""The coordinator pages and API: logging in and out, invitations, statistics.

Roster, shifts and accounts have their own modules; all share these two blueprints,
guarded by ``access.guard`` (login required unless a view is marked public).
"""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, url_for

from hotline import accounts, stats_cache
from hotline.dashboard import access, charts, joint, periods
from hotline.dashboard import report as reports
from hotline.extensions import db, redis_conn, settings
from hotline.models import utcnow
from hotline.shifts import program_zone

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates",
               static_folder="static")
api = Blueprint("dashboard_api", __name__, url_prefix="/api")


def _address() -> str:
    return request.remote_addr or "unknown"


def _safe_next(target: str | None) -> str:
    """Only a path of this dashboard: never an open redirect."""
    if target and target.startswith("/dashboard") and not target.startswith("//"):
        return target
    return url_for("dashboard.overview")


@bp.route("/login", methods=["GET", "POST"])
@access.public
def login():
    """The login form; failed attempts are limited per email and address."""
    if request.method == "GET":
        return render_template("dashboard/login.html", next=request.args.get("next", ""))
    email = (request.form.get("email") or "").strip().lower()
    limiter = accounts.LoginLimiter(redis_conn.client)
    wait = limiter.blocked(email, _address())
    if wait:
        minutes = -(-wait // 60)
        return render_template("dashboard/login.html", next=request.form.get("next", ""),
                               error=f"Too many attempts. Try again in {minutes} minutes.",
                               email=email), 429
    user = accounts.authenticate(db.session, access.password_hasher(), email,
                                 request.form.get("password") or "")
    if user is None:
        limiter.failed(email, _address())
        return render_template("dashboard/login.html", next=request.form.get("next", ""),
                               error="That email and password do not match an account.",
                               email=email), 401
    limiter.succeeded(email, _address())
    access.log_in(user)
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    """End the session here and on the server."""
    access.log_out()
    return redirect(url_for("dashboard.login"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
@access.public
def invite(token: str):
    """Set the password of an invited account, then log in."""
    user = accounts.invited(db.session, token)
    if user is None:
        abort(404, "This invitation link is not valid any more: ask an admin for a new one.")
    error = None
    if request.method == "POST":
        try:
            accounts.accept_invite(db.session, access.password_hasher(), user,
                                   request.form.get("password") or "",
                                   request.form.get("confirm") or "")
        except accounts.AccountError as exc:
            error = str(exc)
        else:
            access.log_in(user)
            return redirect(url_for("dashboard.overview"))
    return render_template("dashboard/invite.html", email=user.email, error=error), \
        400 if error else 200


def build_report(args: dict | None = None) -> reports.Report:
    """The published report for the period in the query string: only a period of the
    hierarchy, its cells hidden as decided jointly with every period nested in it
    (``hotline.dashboard.joint``); PeriodError for anything else."""
    now, zone = utcnow(), program_zone()
    span = periods.choose(request.args if args is None else args, _limits(now, zone))
    report = joint.publish(db.session, span, zone, settings().MIN_CELL, now)
    report.span = span
    return report


def _limits(now, zone) -> periods.Bounds:
    """What may be published now: settled days inside the retention window."""
    return periods.bounds(now, zone, stats_cache.cache_window(zone, now))


def _choices() -> list[periods.Span]:
    now, zone = utcnow(), program_zone()
    return periods.listing(_limits(now, zone))


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
                               error=str(exc), policy=_policy(), choices=_choices()), \
            400 if request.args else 200
    return render_template("dashboard/stats.html", report=report, charts=charts,
                           policy=_policy(), choices=_choices())


def _policy() -> dict[str, int]:
    """The retention policy in force, stated under the statistics."""
    cfg = settings()
    return {"retention_days": cfg.RETENTION_DAYS, "twilio_log_days": cfg.TWILIO_LOG_DAYS}


@bp.get("/stats.csv")
def stats_csv():
    """Every table of the report as CSV rows: table, row, column, value."""
    try:
        report = build_report()
    except periods.PeriodError as exc:
        abort(400, str(exc))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["table", "row", "column", "value"])
    for table in report.tables:
        for label, keys in table.rows:
            for column, key in zip(table.columns, keys):
                writer.writerow([table.title, label, column, report.shown(key)])
    for name, value in report.summary.items():
        if not isinstance(value, dict):
            writer.writerow(["summary", name, "", "" if value is None else value])
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
