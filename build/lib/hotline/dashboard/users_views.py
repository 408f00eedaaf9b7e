"""Accounts, for admins: invite coordinators and admins, change roles, deactivate.

An invitation link is shown once, to the admin who made it, in that response's body only:
never in a URL the server sees (the token is the link's fragment), never in a flash
message (Flask keeps those in the session cookie, readable by anyone holding it).
Only its hash is stored.
The last active admin cannot be demoted or deactivated (nobody could manage accounts).
"""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from hotline.dashboard import accounts
from hotline.dashboard import access
from hotline.dashboard.views import api, bp
from hotline.core.extensions import db, settings
from hotline.models import Role, User


def invite_url(token: str) -> str:
    """The link an invited person opens, on the public base URL; the token is its fragment,
    which browsers keep to themselves (see ``views.invite``)."""
    return f"{settings().PUBLIC_BASE_URL.rstrip('/')}{url_for('dashboard.invite')}#{token}"


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, "no such account")
    return user


def change(user: User, role: str | None = None, active: bool | None = None) -> None:
    """Change a role or deactivate, keeping at least one active admin."""
    if role is not None and role not in {r.value for r in Role}:
        raise accounts.AccountError("role must be coordinator, admin or referrer")
    losing_admin = user.is_admin and user.active and (
        (role is not None and role != Role.ADMIN.value) or active is False)
    if losing_admin and accounts.count_admins(db.session) <= 1:
        raise accounts.AccountError("keep at least one active admin")
    if role is not None:
        user.role = role
    if active is not None:
        user.active = active
    db.session.commit()
    if active is False:
        access.sessions().end_all(user.id)


@bp.route("/users", methods=["GET", "POST"])
@access.admin_only
def users_page():
    """List accounts; POST invites a new one and shows its link once."""
    if request.method == "GET":
        return _users_page()
    try:
        user, token = accounts.create(db.session, access.password_hasher(),
                                      request.form.get("email", ""),
                                      request.form.get("role", Role.COORDINATOR.value))
    except accounts.AccountError as exc:
        return _users_page(error=str(exc), status=400)
    return _users_page(link=invite_url(token), invited=user.email)


def _users_page(link: str | None = None, invited: str | None = None, error: str | None = None,
                status: int = 200):
    """The accounts page; a new invitation link is part of this one response only."""
    users = db.session.scalars(select(User).order_by(User.email)).all()
    return render_template("dashboard/users.html", users=users, link=link, invited=invited,
                           error=error, roles=[r.value for r in Role]), status


@bp.post("/users/<int:user_id>")
@access.admin_only
def user_change(user_id: int):
    """Change a role, deactivate, reactivate, or make a new invitation link."""
    user = _user(user_id)
    action = request.form.get("action", "")
    try:
        if action == "role":
            change(user, role=request.form.get("role"))
        elif action in ("deactivate", "reactivate"):
            change(user, active=action == "reactivate")
        elif action == "reinvite":
            link = invite_url(accounts.reinvite(db.session, user))
            access.sessions().end_all(user.id)
            return _users_page(link=link, invited=user.email)  # not flashed: see above
        else:
            abort(400, "unknown action")
    except accounts.AccountError as exc:
        flash(str(exc), "error")
    return redirect(url_for("dashboard.users_page"))


@api.get("/users")
@access.admin_only
def api_users():
    """Accounts (admins only)."""
    return jsonify([{"id": u.id, "email": u.email, "role": u.role, "active": u.active,
                     "invited": u.password_hash is None}
                    for u in db.session.scalars(select(User).order_by(User.email))])


@api.post("/users")
@access.admin_only
def api_user_add():
    """Invite an account: {email, role}; returns the invitation link once."""
    data = request.get_json(silent=True) or {}
    try:
        user, token = accounts.create(db.session, access.password_hasher(),
                                      data.get("email", ""), data.get("role", "coordinator"))
    except accounts.AccountError as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify({"id": user.id, "email": user.email, "role": user.role,
                    "invite_url": invite_url(token)}), 201
