"""Team debrief jobs: thin adapters over ``hotline.debriefs`` (by id only)."""

from __future__ import annotations

from hotline.debriefs import reminders, room


def send_reminder(reminder_id: int) -> str:
    """A facilitator's reminder text, exactly once."""
    return reminders.send(reminder_id)


def warn(debrief_id: int) -> str:
    """One minute left: announce it in the conference."""
    return room.warn(debrief_id)


def end(debrief_id: int) -> str:
    """Time is up: end the conference and forget the code."""
    return room.end(debrief_id)


def close_room(debrief_id: int) -> str:
    """The last of two facilitators left: end the conference for everyone."""
    return room.close(debrief_id)
