"""The auditor's job: a thin adapter over ``hotline.escalation.auditor``, which finds what
a lost callback or a dead worker left stuck and resolves it, every minute."""

from __future__ import annotations

from hotline.escalation import auditor
from hotline.escalation.auditor import (  # noqa: F401 - the names callers and tests use
    AUDIT_JOB_ID, EVERY, _job_exists, _restart_callbacks, schedule)


def audit() -> dict[str, int]:
    """One pass of the auditor (it schedules the next)."""
    return auditor.audit()
