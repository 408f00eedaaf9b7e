"""``hotline outreach send PHONE [--language es]``: a coordinator's referral.

It says the same as every referral, whatever follows ("we will reach out"). The command
line is the operator's: no daily limit (the quiet period and opt-outs still hold).
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from hotline.core import phones
from hotline.core.errors import InvalidPhoneNumber
from hotline.core.extensions import db
from hotline.outreach import referrals


@click.group("outreach")
def outreach_group() -> None:
    """Ask a peer to reach out to a colleague after a hard event."""


@outreach_group.command("send")
@click.argument("phone")
@click.option("--language", default=None, help="the text's language code (languages.yaml)")
@with_appcontext
def outreach_send(phone: str, language: str | None) -> None:
    """Offer PHONE's owner, by one discreet text, a call from a peer."""
    try:
        number = phones.normalize(phone)
    except InvalidPhoneNumber as exc:
        raise click.ClickException(str(exc)) from exc
    referrals.refer(db.session, number, language)
    click.echo("we will reach out")
