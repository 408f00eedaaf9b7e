"""Who may see what: login sessions, roles, CSRF tokens, security headers, login clients.

Access is denied by default: every view of the dashboard blueprints needs a logged-in,
active account unless marked ``@public``; ``@admin_only`` views need an admin. Every
POST, PUT, PATCH and DELETE must carry the session's CSRF token, in the form field
``csrf_token`` or the ``X-CSRF-Token`` header.

The login limits need two facts about the client: its address (``client_address``, which
never lets an address shared by everyone block by itself when HOTLINE_PROXY_HOPS looks
wrong) and whether this browser logged in to the account before (``trusted_device``: a
signed, HttpOnly device cookie set at each good login).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
from collections.abc import Callable

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadData, URLSafeTimedSerializer

from hotline.dashboard import accounts
from hotline.core.extensions import db, redis_conn, settings
from hotline.models import User

log = logging.getLogger(__name__)

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
#: No third-party origin anywhere: scripts, styles, images and fonts come from this app.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")


def public(view: Callable) -> Callable:
    """Mark a view reachable without logging in (the login page, the invitation page)."""
    view.access = "public"
    return view


def admin_only(view: Callable) -> Callable:
    """Mark a view for admins only."""
    view.access = "admin"
    return view


def referral(view: Callable) -> Callable:
    """Mark a view referrer accounts may open too (the only kind they may: the referral
    page); coordinators and admins may as well."""
    view.access = "referral"
    return view


def access_of(app: Flask, endpoint: str) -> str:
    """"public", "admin", "referral" or "login" (the default) for an endpoint."""
    if endpoint.endswith(".static"):
        return "public"
    return getattr(app.view_functions.get(endpoint), "access", "login")


def sessions() -> accounts.LoginSessions:
    return accounts.LoginSessions(redis_conn.client, settings().SESSION_HOURS * 3600)


def password_hasher():
    return accounts.hasher(test_mode=settings().ENV == "test")


def current_user() -> User | None:
    """The logged-in account of this request, if any (checked once per request)."""
    if "user" not in g:
        g.user = None
        user_id = sessions().user_id(session.get("sid"))
        if user_id is not None:
            user = db.session.get(User, user_id)
            g.user = user if user is not None and user.active else None
    return g.user


def log_in(user: User) -> None:
    """Start a fresh session for ``user`` (a new id and CSRF token: no fixation)."""
    old = session.get("sid")
    if old:
        sessions().end(old)
    session.clear()
    session.permanent = True
    session["sid"] = sessions().start(user.id)
    session["csrf"] = secrets.token_urlsafe(32)
    g.user = user


def log_out() -> None:
    """End this session on the server and forget the cookie."""
    sessions().end(session.get("sid"))
    session.clear()
    g.user = None


def csrf_token() -> str:
    """This session's CSRF token (created on first use, before login too)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok() -> bool:
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    expected = session.get("csrf") or ""
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


#: The cookie that makes a browser a trusted device for one account's logins.
DEVICE_COOKIE = "hotline_device"
_hops_warned = False


def client_address() -> str:
    """The client address the per-address login limit counts.

    With HOTLINE_PROXY_HOPS right, the client's own address (ProxyFix has applied). When it
    looks wrong, an X-Forwarded-For the configured hops did not consume (0 hops behind a
    balancer, or fewer entries than hops), ``remote_addr`` is the balancer, shared by every
    user: the address is then that plus the nearest forwarded client, so that failures by
    anyone behind the balancer never block everyone. (A client that forges the header then
    gets its own count, but the per-account limit still holds across addresses; and only a
    peer that can be a proxy of ours, a private or loopback address, is split so: a public
    peer is counted as itself, whatever header it sends.)
    """
    global _hops_warned
    remote = request.remote_addr or "unknown"
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")
                 if part.strip()]
    hops = settings().PROXY_HOPS
    if not forwarded or len(forwarded) >= hops > 0 or _public(remote):
        return remote
    if not _hops_warned:
        _hops_warned = True
        log.warning("requests carry X-Forwarded-For with %d entries but HOTLINE_PROXY_HOPS=%d: "
                    "set it to the number of proxies in front of the app", len(forwarded), hops)
    return f"{remote} via {forwarded[-1]}"


def vouched_address() -> str:
    """The client address HOTLINE_PROXY_HOPS vouches for: ``remote_addr`` once ProxyFix has
    applied, never an X-Forwarded-For entry the configured hops left (any client on a
    private network can write one). For a limit with no other backstop (the pulse survey's
    ballots): a forged header makes no new voter, and behind a balancer the setting does not
    declare everyone counts as the balancer (fails closed; ``client_address`` logs the
    warning to set HOTLINE_PROXY_HOPS)."""
    client_address()  # for its warning when the hops setting looks wrong
    return request.remote_addr or "unknown"


def _public(address: str) -> bool:
    """A peer on the internet: no proxy of ours, so whatever X-Forwarded-For it sends is its
    own invention (a balancer in front of the app reaches it from a private or loopback
    address)."""
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


def _device_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="hotline.dashboard.device")


def _account_tag(email: str) -> str:
    return hmac.new(current_app.secret_key.encode(), email.strip().lower().encode(),
                    "sha256").hexdigest()[:32]


def trusted_device(email: str) -> str | None:
    """This browser's device id if it logged in to ``email``'s account before, else None."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw or not email:
        return None
    try:
        data = _device_signer().loads(raw, max_age=accounts.DEVICE_DAYS * 86400)
    except BadData:
        return None
    if not isinstance(data, dict) or not hmac.compare_digest(
            str(data.get("a", "")).encode(), _account_tag(email).encode()):
        return None
    return str(data.get("d") or "") or None


def remember_device(response: Response, email: str) -> Response:
    """Make this browser a trusted device for ``email``'s logins (a fresh id each time)."""
    token = _device_signer().dumps({"a": _account_tag(email), "d": secrets.token_urlsafe(16)})
    response.set_cookie(DEVICE_COOKIE, token, max_age=accounts.DEVICE_DAYS * 86400,
                        path=url_for("dashboard.login"), httponly=True, samesite="Strict",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


def guard(api: bool) -> Callable[[], Response | None]:
    """A before_request hook: CSRF on unsafe methods, then login and role checks."""
    def check() -> Response | None:
        if request.method in UNSAFE_METHODS and not csrf_ok():
            return _deny(api, 400, "the form expired or came from elsewhere: reload the page")
        access = access_of(current_app, request.endpoint or "")
        if access == "public":
            return None
        user = current_user()
        if user is None:
            if api:
                return _deny(api, 401, "log in first")
            return redirect(url_for("dashboard.login", next=request.path))
        if access == "admin" and not user.is_admin:
            return _deny(api, 403, "only an admin may do this")
        if user.is_referrer and access != "referral":
            # A referrer sees the referral page and nothing else (a login lands here too).
            return _deny(api, 403, "a referrer account may only refer") if api \
                else redirect(url_for("dashboard.refer_page"))
        return None
    return check


def _deny(api: bool, status: int, message: str) -> Response:
    if api:
        response = jsonify({"error": message})
        response.status_code = status
        return response
    abort(status, message)


#: What ``security_headers`` adds to every response that does not set it already.
SECURITY_HEADERS = (("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                    ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"),
                    ("Cross-Origin-Opener-Policy", "same-origin"))
HSTS = ("Strict-Transport-Security", "max-age=31536000")
NO_STORE = ("Cache-Control", "no-store")


def security_headers(response: Response) -> Response:
    """Headers for every response of the app (the dashboard's strict CSP included).

    What a view set stays. One look at the response's headers for all of them, not one
    search per header (every webhook pays this: ``setdefault`` scanned them seven times)."""
    present = {key.lower() for key in response.headers.keys()}
    wanted = SECURITY_HEADERS
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        wanted += (HSTS,)
    if request.blueprint in ("dashboard", "dashboard_api", "pulse"):
        wanted += (NO_STORE,)
    for key, value in wanted:
        if key.lower() not in present:
            response.headers.add(key, value)
    return response


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, but a request without the session cookie (every
    Twilio webhook) gets its empty session without a signer built for it first: Flask
    makes one per request before looking for the cookie. Same session either way."""

    def open_session(self, app: Flask, request):  # noqa: ANN001 - Flask's signature
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)
