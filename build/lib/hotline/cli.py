"""The ``hotline`` command: Flask's CLI plus db, supporters and worker commands."""

from __future__ import annotations

import gc
import sys
from datetime import timedelta

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext
from rq import SimpleWorker

from flask import current_app
from rq import Worker
from sqlalchemy.orm import configure_mappers

from hotline import create_app, migrate
from hotline.core.errors import HotlineError, SettingsError
from hotline.core.extensions import db, jobs, settings
from hotline.dashboard.commands import seed_demo, users_group
from hotline.debriefs import reminders as debrief_reminders
from hotline.debriefs.commands import debriefs_group
from hotline.escalation import auditor
from hotline.followups import schedule as followups
from hotline.followups import training as training_texts
from hotline.lifecycle import transitions
from hotline.models import utcnow
from hotline.outreach.commands import outreach_group
from hotline.operations import doctor as doctor_checks
from hotline.operations import number as twilio_number
from hotline.privacy.key_commands import keys_group
from hotline.retention import purge as retention
from hotline.roster import shifts
from hotline.roster import supporters as roster
from hotline.roster import training
from hotline.telephony import api as twilio_api


def init_app(app: Flask) -> None:
    """Attach the hotline's commands to ``app``."""
    app.cli.add_command(db_group)
    app.cli.add_command(supporters_group)
    app.cli.add_command(worker_command)
    app.cli.add_command(purge_command)
    app.cli.add_command(demo_group)
    app.cli.add_command(users_group)
    app.cli.add_command(keys_group)
    app.cli.add_command(debriefs_group)
    app.cli.add_command(outreach_group)
    app.cli.add_command(twilio_group)
    app.cli.add_command(doctor_command)


def main() -> None:
    """Entry point of the ``hotline`` console script."""

    FlaskGroup(create_app=_create_app, help="The clinician peer-support hotline.")()


def _create_app() -> Flask:
    """The app; for ``hotline doctor``, settings that stop the start are its failed first
    check (one line, exit 2), not a traceback a monitor would read as exit 1."""
    try:
        return create_app()
    except SettingsError as exc:
        if sys.argv[1:2] == ["doctor"]:
            click.echo(str(doctor_checks.failure("settings", f"{exc}; fix the environment")))
            raise SystemExit(doctor_checks.Level.FAILURE.value) from None
        raise


@click.group("db")
def db_group() -> None:
    """Database migrations (Alembic)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""

    migrate.upgrade(revision)
    click.echo(f"database at {revision}")


@click.group("supporters")
def supporters_group() -> None:
    """Manage the roster of peer supporters."""


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc))


@supporters_group.command("add")
@click.option("--name", required=True)
@click.option("--phone", required=True, help="any format; stored as E.164")
@click.option("--tier", type=int, default=1, show_default=True, help="1 peer, 2 backup")
@click.option("--language", "languages", multiple=True, default=("en",), show_default=True)
@click.option("--role", default=None, help="one of ivr_flows/roster.yaml's roles")
@click.option("--unit", "units", multiple=True, help="a unit of ivr_flows/roster.yaml "
              "(repeat for several)")
@click.option("--trained-on", default=None, metavar="DATE",
              help="training date, 2026-03-01 (without it, and with "
                   "HOTLINE_REQUIRE_TRAINING, never offered a contact)")
@click.option("--refresher-due", default=None, metavar="DATE",
              help="refresher date (default: the training + HOTLINE_TRAINING_VALID_MONTHS)")
@with_appcontext
def supporters_add(name: str, phone: str, tier: int, languages: tuple[str, ...],
                   trained_on: str | None, refresher_due: str | None,
                   role: str | None, units: tuple[str, ...]) -> None:
    """Add a supporter."""
    try:
        supporter = roster.add(db.session, name, phone, tier, languages,
                               role=role, units=units, trained_on=trained_on,
                               refresher_due=refresher_due)
    except roster.RosterError as exc:
        # The dashboard offers a Restore button here; the command line names the command.
        how = f" (hotline supporters restore {exc.restore.phone})" if exc.restore else ""
        raise click.ClickException(f"{exc}{how}") from None
    click.echo(f"added supporter {supporter.id} {supporter.name} (tier {supporter.tier})")
    if supporter.refresher_due is None and settings().REQUIRE_TRAINING:
        click.echo(f"no training record: not offered contacts until one is recorded "
                   f"(hotline supporters train {supporter.phone} --on DATE)")


@supporters_group.command("train")
@click.argument("phone")
@click.option("--on", "on", required=True, metavar="DATE", help="the training or refresher date")
@click.option("--refresher-due", default=None, metavar="DATE",
              help="refresher date (default: DATE + HOTLINE_TRAINING_VALID_MONTHS)")
@with_appcontext
def supporters_train(phone: str, on: str, refresher_due: str | None) -> None:
    """Record a supporter's training or refresher."""
    try:
        supporter = roster.train(db.session, roster.find(db.session, phone), on, refresher_due)
    except (HotlineError, ValueError) as exc:
        _fail(exc)
    click.echo(f"{supporter.name} trained on {supporter.trained_on:%Y-%m-%d}; refresher due "
               f"{supporter.refresher_due:%Y-%m-%d}")


@supporters_group.command("edit")
@click.argument("phone")
@click.option("--name", default=None)
@click.option("--new-phone", default=None, help="their new number")
@click.option("--tier", type=int, default=None, help="1 peer, 2 backup")
@click.option("--language", "languages", multiple=True, help="replaces their languages")
@click.option("--role", default=None, help="one of ivr_flows/roster.yaml's roles; none clears")
@click.option("--unit", "units", multiple=True, help="replaces their units (repeat for "
              "several); none clears")
@with_appcontext
def supporters_edit(phone: str, name: str | None, new_phone: str | None, tier: int | None,
                    languages: tuple[str, ...], role: str | None,
                    units: tuple[str, ...]) -> None:
    """Change a supporter's details; what is not given stays as it is."""
    given = {"name": name, "phone": new_phone, "tier": tier, "languages": languages or None,
             "role": "" if role == "none" else role,
             "units": () if units == ("none",) else units or None}
    try:
        supporter = roster.edit(db.session, roster.find(db.session, phone),
                                **{key: value for key, value in given.items()
                                   if value is not None})
    except (HotlineError, ValueError) as exc:
        db.session.rollback()
        _fail(exc)
    click.echo(f"{supporter.name}: tier {supporter.tier}, {supporter.languages}, "
               f"role {supporter.role or '-'}, units {supporter.units or '-'}")


@supporters_group.command("list")
@with_appcontext
def supporters_list() -> None:
    """List active supporters."""
    offered = shifts.offered_now(db.session)  # what every page shows: routing's own rule
    trained = training.states(db.session)
    for s in roster.everyone(db.session):
        state = "on" if s.id in offered else "off"
        busy = " busy" if s.busy_with else ""
        click.echo(f"{s.id}\t{s.name}\t{s.phone}\ttier {s.tier}\t{s.languages}"
                   f"\t{s.role or '-'}\t{s.units or '-'}"
                   f"\ttraining {trained[s.id].value}\t{state}{busy}")


def _switch(phone: str, available: bool) -> None:
    try:
        supporter = roster.set_available(db.session, phone, available)
    except (HotlineError, ValueError) as exc:
        _fail(exc)
    click.echo(f"{supporter.name} is {'on' if available else 'off'}")


@supporters_group.command("on")
@click.argument("phone")
@with_appcontext
def supporters_on(phone: str) -> None:
    """Mark a supporter available."""
    _switch(phone, True)


@supporters_group.command("off")
@click.argument("phone")
@with_appcontext
def supporters_off(phone: str) -> None:
    """Mark a supporter unavailable."""
    _switch(phone, False)


@supporters_group.command("remove")
@click.argument("phone")
@with_appcontext
def supporters_remove(phone: str) -> None:
    """Take a supporter off the roster (kept, inactive, for statistics; shifts deleted)."""
    try:
        supporter = roster.find(db.session, phone)
        # The contacts of offers withdrawn are routed on by the auditor within a minute,
        # not here: a roster command starts no Redis (their effects are not applied).
        withdrawn = transitions.take_off_roster(db.session, supporter)
    except (HotlineError, ValueError) as exc:
        _fail(exc)
    if withdrawn:
        click.echo(f"{len(withdrawn)} ringing offer(s) withdrawn: the contact moves on")
    click.echo(f"{supporter.name} removed from the roster, shifts deleted "
               f"(undo: hotline supporters restore {supporter.phone})")


@supporters_group.command("restore")
@click.argument("phone")
@with_appcontext
def supporters_restore(phone: str) -> None:
    """Put a supporter taken off the roster back on it (no shifts, not switched ON)."""
    try:
        supporter = roster.restore(db.session, roster.find(db.session, phone))
    except (HotlineError, ValueError) as exc:
        _fail(exc)
    click.echo(f"{supporter.name} is back on the roster (add shifts or switch them on)")


def _warn_untrained() -> None:
    """After the upgrade that added training records, nobody has one: say so at start."""
    missing = training.unrecorded(db.session)
    if missing and settings().REQUIRE_TRAINING:
        click.echo(f"WARNING: {missing} supporter(s) on the roster have no training record and "
                   "are never offered a contact (HOTLINE_REQUIRE_TRAINING): record it with "
                   "`hotline supporters train PHONE --on DATE` or on the roster page", err=True)


#: How often a worker cleans RQ's registries and, if the worker holding the scheduler lock
#: died, takes the scheduler over (RQ's default is 10 minutes; follow-ups would wait).
MAINTENANCE_SECONDS = 60


@click.command("worker")
@click.option("--burst", is_flag=True, help="exit when the queue is empty")
@click.option("--fork", is_flag=True,
              help="run each job in a forked work horse (isolation, at ~8x the CPU per job)")
@with_appcontext
def worker_command(burst: bool, fork: bool) -> None:
    """Run an RQ worker with the scheduler on (routing jobs, scheduled follow-ups)."""

    auditor.schedule()  # the auditor runs every minute, whatever was lost before
    retention.schedule()  # the purge runs daily at 03:00 program time
    retention.enqueue_warm_up()  # the statistics cache, now rather than at 03:00
    followups.restore(db.session)  # follow-ups whose jobs a restarted Redis lost
    training_texts.plan(db.session)  # training reminders and digests, lost jobs restored
    debrief_reminders.restore(db.session)  # facilitators' reminders a restarted Redis lost
    _warn_untrained()
    _warm_up()
    if fork:
        worker = Worker([jobs.queue], connection=jobs.queue.connection,
                        maintenance_interval=MAINTENANCE_SECONDS)
    else:
        worker = InProcessWorker([jobs.queue], connection=jobs.queue.connection,
                                 app=current_app._get_current_object(),
                                 maintenance_interval=MAINTENANCE_SECONDS)
    worker.work(burst=burst, with_scheduler=True, logging_level=settings().LOG_LEVEL)


class InProcessWorker(SimpleWorker):
    """RQ's worker without a fork per job: each job runs in this process, in an app context
    of its own (so a database session of its own, removed when the job ends).

    A fork per job costs a cold start in every work horse (RQ's own ~20 ms, a new database
    connection, SQL compiled again): in benchmarks/followups.py ~50 ms of worker CPU per
    follow-up sent and ~12 a second, against ~6 ms and ~100 a second here. Job timeouts
    still hold (SIGALRM); a job that kills the process loses only itself, as in a fork: RQ
    finds it abandoned and retries it (tests/test_worker_killed.py).
    """

    def __init__(self, *args, app: Flask, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.app = app

    def execute_job(self, job, queue) -> None:
        with self.app.app_context():
            super().execute_job(job, queue)


def _warm_up() -> None:
    """Do once, before any job, what every job would otherwise do (in each work horse, with
    --fork): import the REST client's lazily loaded modules (Twilio's API package alone took
    ~50 ms) and configure the ORM's mappers."""

    _ = twilio_api.client(settings()).api.v2010.account.messages  # imports; no request
    configure_mappers()
    db.session.remove()  # no connection of this process may leak into a work horse
    # What start-up made stays for the process's life: out of the collector's reach, a full
    # collection walks only what jobs made (not ~150,000 objects, a pause of ~50 ms).
    gc.collect()
    gc.freeze()


@click.command("purge")
@with_appcontext
def purge_command() -> None:
    """Apply the retention policy now (numbers, old events, Twilio logs); print counts."""
    done = retention.purge(db.session, utcnow(), settings())
    for what, count in done.items():
        click.echo(f"{what}\t{count}")


@click.group("demo")
def demo_group() -> None:
    """The offline demo (make run)."""


#: A fictional roster for the demo: 555-01xx numbers are reserved for fiction.
DEMO_ROSTER = (("Alex Kim (peer)", "+16175550111", 1, ("en",)),
               ("Bea Santos (peer)", "+16175550112", 1, ("en", "es")),
               ("Chris Dale (peer)", "+16175550113", 1, ("en",)),
               ("Dana Wu (backup)", "+16175550121", 2, ("en",)),
               ("Eli Moreno (backup)", "+16175550122", 2, ("en", "es")))
#: (months, days) since each demo supporter's training: all current (the demo rings
#: them), Chris's refresher due in 20 days (with the default 24 months: "due soon").
DEMO_TRAINED = ((3, 0), (12, 0), (24, -20), (6, 0), (1, 0))
#: Their roles and units (ivr_flows/roster.yaml), for the demo of a match request.
DEMO_MATCH = {"+16175550111": ("physician", ("emergency",)),
              "+16175550112": ("nurse", ("intensive_care",)),
              "+16175550113": ("resident", ("medicine",)),
              "+16175550121": ("nurse", ("surgery",)),
              "+16175550122": ("pharmacist", ("outpatient",))}


@demo_group.command("seed")
@with_appcontext
def demo_seed() -> None:
    """Add a demo roster, on shift, when the roster is empty; then the dashboard's demo
    coordinator, shifts and synthetic history (each only when there is none yet)."""
    if settings().is_production:  # a known password and fictional people: never for real
        raise click.ClickException("hotline demo seed refuses to run in production")
    if roster.everyone(db.session):
        click.echo("roster not empty: demo roster not added")
    else:
        today = training.today()
        for (name, phone, tier, languages), (months, days) in zip(DEMO_ROSTER, DEMO_TRAINED):
            roster.add(db.session, name, phone, tier, languages,
                       *DEMO_MATCH.get(phone, ()),
                       trained_on=training.months_later(today, -months) - timedelta(days=days))
            roster.set_available(db.session, phone, True)
        click.echo(f"demo roster added: {len(DEMO_ROSTER)} supporters on shift")
    seed_demo()


if __name__ == "__main__":
    main()


@click.group("twilio")
def twilio_group() -> None:
    """The hotline number at Twilio."""


@twilio_group.command("configure")
@click.option("--dry-run", is_flag=True, help="print what would change; change nothing")
@with_appcontext
def twilio_configure(dry_run: bool) -> None:
    """Point the hotline number's voice, fallback, status and messaging URLs at
    PUBLIC_BASE_URL; prints what changed (a second run changes nothing)."""
    try:
        done = twilio_number.configure(settings(), dry_run=dry_run)
    except HotlineError as exc:
        _fail(exc)
    for change in done.changes:
        click.echo(f"{'would change' if dry_run else 'changed'} {change}")
    if not done.changes:
        click.echo(f"{settings().HOTLINE_NUMBER}: no change, every webhook already set")


@click.command("doctor")
@with_appcontext
def doctor_command() -> None:
    """Check everything a working install needs: one line per check; exit 0 ok, 1 a
    warning, 2 a failure."""
    results = doctor_checks.run(current_app._get_current_object())
    for result in results:
        click.echo(str(result))
    raise SystemExit(doctor_checks.exit_code(results))
