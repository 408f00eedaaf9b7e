"""The hotline's one clock: every "now" in the app is ``utcnow()`` from here.

Tests stop and move time in this one place (tests/conftest.py's ``clock`` fixture sets
``frozen``) instead of patching each module that asks. Imports nothing from the app.
"""

from __future__ import annotations

from datetime import datetime, timezone

#: A moment that stands for "now" (tests only); None is the wall clock.
frozen: datetime | None = None


def utcnow() -> datetime:
    """Timezone-aware now."""
    return datetime.now(timezone.utc) if frozen is None else frozen
