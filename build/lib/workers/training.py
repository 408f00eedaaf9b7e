"""Training reminder texts (a supporter's refresher coming due, the coordinators' weekly
digest): a thin adapter over ``hotline.followups.training``, sent exactly once as the
follow-ups are."""

from __future__ import annotations

from hotline.followups import training


def send_reminder(reminder_id: int) -> str:
    """Send one training text if still due and not sent already."""
    return training.send(reminder_id)
