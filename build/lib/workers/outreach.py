"""Outreach jobs: the one text to a referred colleague, and the end of its reply window."""

from __future__ import annotations

from hotline.core.extensions import db
from hotline.outreach import referrals


def send(outreach_id: int) -> str:
    """Send the outreach text at its decent hour (``referrals.send``)."""
    return referrals.send(db.session, outreach_id)


def expire(outreach_id: int) -> str:
    """No answer in time: the outreach ends and the number goes (``referrals.expire``)."""
    return referrals.expire(db.session, outreach_id)
