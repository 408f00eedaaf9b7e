"""``hotline debriefs``: schedule a team debrief, list them, end any whose end was lost."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import with_appcontext

from hotline.core.errors import HotlineError
from hotline.core.extensions import db
from hotline.debriefs import meetings, room
from hotline.roster.shifts import program_zone


@click.group("debriefs")
def debriefs_group() -> None:
    """Team debriefs: a group call for a team after a hard event."""


def parse_start(value: str) -> datetime:
    """``2026-07-02 14:00`` (or ISO 8601), in the program's time zone unless it says."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter("write the start like 2026-07-02 14:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=program_zone())


@debriefs_group.command("schedule")
@click.option("--at", "at", required=True,
              help="the start, in the program's time zone: 2026-07-02 14:00")
@click.option("--minutes", default=60, show_default=True, type=int, help="how long it lasts")
@click.option("--facilitator", "facilitating", multiple=True, required=True,
              help="a facilitating supporter's roster number (once, or twice for two)")
@click.option("--language", default="en", show_default=True, help="of the invitation")
@with_appcontext
def debriefs_schedule(at: str, minutes: int, facilitating: tuple[str, ...],
                      language: str) -> None:
    """Schedule a debrief: prints its meeting code and the invitation, once."""
    try:
        people = meetings.facilitators(db.session, list(facilitating))
        made = meetings.schedule(db.session, parse_start(at), minutes, people, language)
    except HotlineError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Debrief {made.debrief_id} scheduled. Meeting code: {made.code}")
    click.echo("This is the only time the code is shown. Invitation to forward:")
    click.echo("")
    click.echo(made.invitation)


@debriefs_group.command("list")
@with_appcontext
def debriefs_list() -> None:
    """Scheduled debriefs (start, minutes), then held ones (day, participants)."""
    for debrief in meetings.upcoming(db.session):
        start = debrief.starts_at.astimezone(program_zone())
        click.echo(f"{debrief.id}\tscheduled\t{start:%Y-%m-%d %H:%M %Z}\t{debrief.minutes} min")
    for debrief in meetings.held(db.session):
        click.echo(f"{debrief.id}\theld\t{debrief.day.isoformat()}\t"
                   f"{debrief.participants} participants")


@debriefs_group.command("end-overdue")
@with_appcontext
def debriefs_end_overdue() -> None:
    """End every debrief whose time is up (its end job lost with a Redis)."""
    click.echo(f"{room.end_overdue()} ended")
