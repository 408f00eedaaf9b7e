"""``hotline users ...`` and the dashboard's part of ``hotline demo seed``."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from hotline.core.extensions import db, settings
from flask import current_app
from hotline.core.extensions import redis_conn
from hotline.dashboard import accounts
from hotline.dashboard import demo
from hotline.dashboard.users_views import invite_url
from hotline.models import User
from hotline.roster.shifts import program_zone


@click.group("users")
def users_group() -> None:
    """Dashboard accounts (coordinators and admins)."""


@users_group.command("add")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["coordinator", "admin", "referrer"]),
              default="coordinator", show_default=True)
@click.option("--invite", is_flag=True,
              help="print an invitation link instead of asking for a password")
@with_appcontext
def users_add(email: str, role: str, invite: bool) -> None:
    """Add an account: a password is asked for twice, or an invitation link printed."""
    password = None if invite else click.prompt("Password", hide_input=True,
                                                confirmation_prompt=True)
    try:
        user, token = accounts.create(db.session, accounts.hasher(settings().ENV == "test"),
                                      email, role, password)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added {user.role} {user.email}")
    if token:
        with current_app.test_request_context(base_url=settings().PUBLIC_BASE_URL):
            click.echo(f"invitation link (valid {accounts.INVITE_DAYS} days): "
                       f"{invite_url(token)}")


@users_group.command("list")
@with_appcontext
def users_list() -> None:
    """Every account."""
    for user in db.session.scalars(select(User).order_by(User.email)):
        state = "active" if user.active else "deactivated"
        click.echo(f"{user.id}\t{user.email}\t{user.role}\t{state}")


@users_group.command("deactivate")
@click.argument("email")
@with_appcontext
def users_deactivate(email: str) -> None:
    """Deactivate an account and end its sessions."""
    user = accounts.find(db.session, email)
    if user is None:
        raise click.ClickException("no account has this email")
    user.active = False
    db.session.commit()
    accounts.LoginSessions(redis_conn.client).end_all(user.id)
    click.echo(f"{user.email} deactivated")


@users_group.command("unlock")
@click.argument("email")
@with_appcontext
def users_unlock(email: str) -> None:
    """Lift an account's failed-login backoff (from the host: the way in when every admin is
    held back by someone else's failures)."""
    user = accounts.find(db.session, email)
    if user is None:
        raise click.ClickException("no account has this email")
    accounts.LoginLimiter(redis_conn.client).forgive(user.email)
    click.echo(f"{user.email} may log in again now")


def seed_demo(echo=click.echo) -> None:
    """The demo coordinator, demo shifts and a few weeks of synthetic history."""
    if demo.seed_coordinator(db.session, settings().ENV == "test"):
        echo(f"demo coordinator: {demo.DEMO_EMAIL} / password: {demo.DEMO_PASSWORD} "
             "(open /dashboard)")
    demo.seed_shifts(db.session)
    added = demo.seed_history(db.session, program_zone())
    if added:
        echo(f"demo history: {added} synthetic contacts over {demo.DEMO_WEEKS} weeks")
