"""The app factory: settings, flows and policy, resources, blueprints, the CLI.

``create_app`` builds the app from the environment; nothing is created or connected at import
time, and creating the app connects to nothing (Redis and the database on first use).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from flask import Flask, Response

from hotline import cli, dashboard
from hotline.alerts import conditions as alert_conditions
from hotline.alerts import words as alert_words
from hotline.core import extensions, settings
from hotline.debriefs import texts as debrief_texts
from hotline.escalation import policy
from hotline.monitoring import logs as monitoring_logs
from hotline.monitoring import views as monitoring
from hotline.roster import roles
from hotline.followups import schedule as followups
from hotline import leadership
from hotline.privacy import primitives as privacy
from hotline.program import texts as program_texts
from hotline.program import views as program
from hotline.pulse import words as pulse_words
from hotline.text import fallback as sms_fallback
from hotline.text import views as sms
from hotline.text import words as texting
from hotline.voice import debrief as debrief_calls
from hotline.voice import fallback
from hotline.core import flows
from hotline.voice import offer_leg as supporter
from hotline.voice import views as voice

#: Largest webhook body accepted; Twilio's requests are a few kilobytes.
MAX_REQUEST_BYTES = 256 * 1024


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment plus ``overrides`` (setting name -> value)."""
    cfg = settings.load(overrides=overrides)
    _configure_logging(cfg.LOG_LEVEL, cfg.LOG_FORMAT)
    app = Flask("hotline")
    app.config.update(SECRET_KEY=cfg.SECRET_KEY, MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES)
    if cfg.PROXY_HOPS:  # the client address behind a load balancer (signatures use
        from werkzeug.middleware.proxy_fix import ProxyFix  # PUBLIC_BASE_URL, not this)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=cfg.PROXY_HOPS)
    languages = flows.load_languages(cfg.IVR_FLOWS_DIR)  # the one list, for all three
    app.extensions["hotline.flows"] = flows.load(cfg.IVR_FLOWS_DIR, languages)
    app.extensions["hotline.texts"] = texting.load(cfg.IVR_FLOWS_DIR, languages)
    app.extensions["hotline.followups"] = followups.load(cfg.IVR_FLOWS_DIR, languages)
    # A bad escalation.yaml stops the start here, with a FlowError naming the key.
    app.extensions[policy.EXTENSION] = policy.load(cfg.IVR_FLOWS_DIR, cfg)
    app.extensions[roles.EXTENSION] = roles.load(cfg.IVR_FLOWS_DIR, languages)
    app.extensions[debrief_texts.EXTENSION] = debrief_texts.load(cfg.IVR_FLOWS_DIR, languages)
    app.extensions[pulse_words.EXTENSION] = pulse_words.load(cfg.IVR_FLOWS_DIR, languages)
    app.extensions[alert_words.EXTENSION] = alert_words.load(
        cfg.IVR_FLOWS_DIR, frozenset(alert_conditions.CONDITIONS))
    app.extensions[program_texts.EXTENSION] = program_texts.load(cfg.IVR_FLOWS_DIR, languages)
    extensions.init_app(app, cfg)
    app.register_blueprint(voice.bp)
    app.register_blueprint(supporter.bp)
    app.register_blueprint(fallback.bp)
    app.register_blueprint(sms.bp)
    app.register_blueprint(sms_fallback.bp)
    app.register_blueprint(debrief_calls.bp)
    dashboard.init_app(app, cfg)
    app.register_blueprint(program.bp)  # /, /poster, /card: public, no cookie
    leadership.init_app(app)  # the quarterly report, behind the dashboard's guard
    app.add_url_rule("/healthz", "healthz", lambda: Response("ok\n", mimetype="text/plain"))
    monitoring.init_app(app, cfg)  # /readyz, /metrics (with a token), request ids, timings
    cli.init_app(app)
    if cfg.SIMULATOR:
        # Only with HOTLINE_SIMULATOR=1: the stand-in needs lxml (the [simulator] extra).
        from hotline.simulator import web
        web.attach(app, cfg)
    return app


def _configure_logging(level: str, fmt: str = "text") -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root.setLevel(level)
    privacy.install_log_redaction()  # after basicConfig: its handler gets the filter too
    monitoring_logs.configure(root.handlers, fmt)  # request ids; JSON lines if asked
    # HTTP libraries log request lines and parameters (numbers, in URLs) at INFO and DEBUG:
    # even at HOTLINE_LOG_LEVEL=DEBUG they say only what goes wrong. (Whatever level an
    # operator sets on them later, the redaction above still applies.)
    for name in privacy.CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
