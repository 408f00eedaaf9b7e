"""The coordinator dashboard: statistics, roster and shifts, accounts (login required).

``init_app`` registers the pages (``/dashboard``) and the JSON API (``/api``), the
session cookie settings, the access guard and the security headers.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from hotline.alerts import notify as alerts
from hotline.core.settings import Settings, secure_cookies
from hotline.dashboard import accounts
from hotline.roster import shifts


def init_app(app: Flask, cfg: Settings) -> None:
    """Wire the dashboard into ``app``."""
    from hotline.dashboard import (access, coverage_views, debrief_views,  # noqa: F401
                                   pulse_views, referral_views, roster_views, users_views,
                                   views)

    app.config.update(SESSION_COOKIE_SECURE=secure_cookies(cfg), SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_NAME="hotline_session",
                      PERMANENT_SESSION_LIFETIME=timedelta(hours=cfg.SESSION_HOURS))
    app.register_blueprint(views.bp)
    app.register_blueprint(views.api)
    app.register_blueprint(pulse_views.public_bp)  # /pulse: public, CSRF like the rest
    # Per app, not on the shared blueprint objects (many apps are built in tests).
    app.before_request_funcs.setdefault(views.bp.name, []).append(access.guard(api=False))
    app.before_request_funcs.setdefault(views.api.name, []).append(access.guard(api=True))
    app.before_request_funcs.setdefault(pulse_views.public_bp.name, []).append(
        access.guard(api=False))
    app.after_request(access.security_headers)
    app.session_interface = access.CookieSessions()
    # The dummy hash unknown emails are verified against, made now: the first one costs
    # the same single argon2 verification as every later login.
    accounts.warm_up(accounts.hasher(test_mode=cfg.ENV == "test"))
    app.jinja_env.globals["csrf_token"] = access.csrf_token
    app.jinja_env.globals["current_user"] = access.current_user
    app.jinja_env.globals["open_alerts"] = alerts.banner  # and checks a worker is alive
    shifts.install()
