"""The leadership report: the last four published quarters side by side, with the program
inputs coordinators enter per quarter.

``report`` builds it from the published statistics exactly as ``/api/stats`` serves them
(nothing is recounted: the suppression rules hold by construction), with the staff pulse
survey's trends from ``hotline.pulse.results``; ``inputs`` owns the
program inputs (staff headcount, turnover rate, supporters trained) and their rules;
``views`` are the pages under ``/dashboard/leadership`` (login required, the dashboard's
access guard and CSRF), printable with their own print style sheet.
"""

from __future__ import annotations

from flask import Flask

from hotline.dashboard import access
from hotline.leadership import views


def init_app(app: Flask) -> None:
    """Register the pages behind the dashboard's guard (login, roles, CSRF)."""
    app.register_blueprint(views.bp)
    # Per app, not on the shared blueprint object (many apps are built in tests).
    app.before_request_funcs.setdefault(views.bp.name, []).append(access.guard(api=False))
    app.after_request_funcs.setdefault(views.bp.name, []).append(views.no_store)
