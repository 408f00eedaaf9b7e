"""The roster's rules exist once (hotline/roster.py): the command line and the dashboard
(pages and JSON API) refuse the same input with the same message, and taking a supporter
off the roster, or restoring them, leaves the same state whichever way it was done.

Before, each had its own validation (the CLI took a 500-character name, and said other
words for the same mistakes), and the dashboard deleted the shifts of a supporter it took
off while the CLI kept them, so a restore brought back a different supporter depending on
how they had been removed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from hotline.roster import supporters as roster
from hotline.lifecycle import effects, routing, transitions
from hotline.roster import shifts
from hotline.core.extensions import db, jobs
from hotline.models import AvailabilityOverride, Contact, ContactState, Offer, Supporter, utcnow
from tests.coordinators import csrf

NEW = "+16175550150"
REMOVED = "+16175550151"

#: name, phone, tier, languages: each refused.
REFUSED = {
    "bad phone": ("X", "555-1234-999", 1, ["en"]),
    "no phone": ("X", "", 1, ["en"]),
    "tier 3": ("X", NEW, 3, ["en"]),
    "unknown language": ("X", NEW, 1, ["fr"]),
    "no name": ("", NEW, 1, ["en"]),
    "name too long": ("N" * 121, NEW, 1, ["en"]),
    "every field at once": ("", "nonsense", 7, ["fr"]),
    "number already on the roster": ("Y", "617 555 0150", 1, ["en"]),
    "number taken off the roster": ("Z", REMOVED, 1, ["en"]),
}


def _cli_add(app, name, phone, tier, languages):
    args = ["supporters", "add", "--name", name, "--phone", phone, "--tier", str(tier)]
    for code in languages:
        args += ["--language", code]
    return app.test_cli_runner().invoke(args=args)


@pytest.mark.parametrize("case", REFUSED)
def test_the_same_input_is_refused_with_the_same_message_everywhere(app, coordinator,  # noqa: F811
                                                                    case):
    roster.add(db.session, "Xena", NEW)
    taken_off = roster.add(db.session, "Quinn", REMOVED)
    roster.deactivate(db.session, taken_off)
    name, phone, tier, languages = REFUSED[case]
    before = db.session.scalar(select(func.count(Supporter.id)))
    token = csrf(coordinator, "/dashboard/roster")

    api = coordinator.post("/api/supporters", headers={"X-CSRF-Token": token},
                           json={"name": name, "phone": phone, "tier": tier,
                                 "languages": languages})
    page = coordinator.post("/dashboard/roster",
                            data={"csrf_token": token, "name": name, "phone": phone,
                                  "tier": str(tier), "languages": languages})
    cli = _cli_add(app, name, phone, tier, languages)

    assert api.status_code == 400 and page.status_code == 400 and cli.exit_code != 0
    message, errors = api.json["error"], api.json["errors"]
    assert api.json["field"] in errors
    for why in errors.values():   # all in the message, each next to its field on the page
        assert why in message and str(escape(why)) in page.text
    hint = f" (hotline supporters restore {REMOVED})" if "restore" in api.json else ""
    assert cli.output == f"Error: {message}{hint}\n"
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Supporter.id))) == before


def test_a_refused_change_of_details_says_the_same_as_a_refused_addition(app,
                                                                         coordinator):  # noqa: F811
    ada = roster.add(db.session, "Ada", "+16175550152")
    roster.add(db.session, "Bea", "+16175550153")
    token = csrf(coordinator, "/dashboard/roster")
    bad = {"name": "", "phone": "nonsense", "tier": 7, "languages": ["fr"]}
    patch = coordinator.patch(f"/api/supporters/{ada.id}", headers={"X-CSRF-Token": token},
                              json=bad)
    add = coordinator.post("/api/supporters", headers={"X-CSRF-Token": token}, json=bad)
    assert patch.status_code == add.status_code == 400
    assert patch.json["errors"] == add.json["errors"]
    with pytest.raises(roster.RosterError, match="another supporter has this phone number"):
        roster.update(db.session, ada, "Ada", "617 555 0153", 1, "en")


# ---- taking off the roster and restoring ------------------------------------------------

def _shift_covering_now(supporter: Supporter) -> None:
    """A weekly shift from an hour ago to two hours ahead, on the program's clock."""
    start = (utcnow() - timedelta(hours=1)).astimezone(shifts.program_zone())
    end = start + timedelta(hours=3)
    shifts.add_shift(db.session, supporter, start.weekday(), f"{start:%H:%M}", f"{end:%H:%M}")


def _waiting_text(minutes_ago: int = 2) -> Contact:
    contact = Contact(caller_key="k" * 64, channel="sms", mode="text", attempt=1,
                      state=ContactState.WAITING.value,
                      queued_at=utcnow() - timedelta(minutes=minutes_ago))
    db.session.add(contact)
    db.session.commit()
    return contact


def _state(supporter_id: int) -> dict[str, object]:
    """Everything about a supporter that deactivate and restore may change."""
    db.session.expire_all()
    s = db.session.get(Supporter, supporter_id)
    return {"active": s.active, "switched ON": s.available, "busy_with": s.busy_with,
            "shifts": len(shifts.shifts_of(db.session, s.id)),
            "switched OFF": db.session.get(AvailabilityOverride, s.id) is not None,
            "offers": [o.state for o in db.session.scalars(
                select(Offer).where(Offer.supporter_id == s.id).order_by(Offer.id))],
            "offered now": s.id in shifts.offered_now(db.session)}


def _take_off(app, client, token, way: str, supporter: Supporter) -> None:
    if way == "cli":
        done = app.test_cli_runner().invoke(args=["supporters", "remove", supporter.phone])
        assert done.exit_code == 0, done.output
        assert "1 ringing offer(s) withdrawn" in done.output
    elif way == "page":
        confirm = client.get(f"/dashboard/roster/{supporter.id}/deactivate").text
        assert "an offer ringing them now is withdrawn" in confirm   # says what it does
        done = client.post(f"/dashboard/roster/{supporter.id}/deactivate",
                           data={"csrf_token": token, "confirm": "yes"})
        assert done.status_code == 302
    else:
        done = client.delete(f"/api/supporters/{supporter.id}", headers={"X-CSRF-Token": token})
        assert done.status_code == 200


def _restore(app, client, token, way: str, supporter: Supporter) -> None:
    if way == "cli":
        done = app.test_cli_runner().invoke(args=["supporters", "restore", supporter.phone])
        assert done.exit_code == 0, done.output
    elif way == "page":
        done = client.post(f"/dashboard/roster/{supporter.id}/restore",
                           data={"csrf_token": token})
        assert done.status_code == 302
    else:
        done = client.post(f"/api/supporters/{supporter.id}/restore",
                           headers={"X-CSRF-Token": token})
        assert done.status_code == 200


@pytest.mark.parametrize("way", ["cli", "page", "api"])
def test_taking_off_and_restoring_leave_the_same_state_whichever_way(app, coordinator,  # noqa: F811
                                                                     way):
    """Off the roster: no shifts, no manual switch, ringing offers withdrawn (the auditor
    routes the contact on), history kept. Restored: on the roster, offered nothing until
    given shifts or switched ON."""
    from hotline.escalation import auditor as audit
    quinn = roster.add(db.session, "Quinn", "+16175550160", 1, ["en", "es"])
    _shift_covering_now(quinn)
    contact = _waiting_text()
    [offer] = routing.offer_next(db.session, contact, 1)
    roster.switch(db.session, quinn, "off")   # texted OFF while her phone shows the offer
    assert _state(quinn.id) == {
        "active": True, "switched ON": False, "busy_with": offer.token, "shifts": 1,
        "switched OFF": True, "offers": ["ringing"], "offered now": False}
    assert audit._reroute_waiting(utcnow()) == 0   # her offer still rings: nothing to do

    token = csrf(coordinator, "/dashboard/roster")
    _take_off(app, coordinator, token, way, quinn)
    assert _state(quinn.id) == {
        "active": False, "switched ON": False, "busy_with": None, "shifts": 0,
        "switched OFF": False, "offers": ["canceled"], "offered now": False}
    # From the dashboard the contact is routed on at once (its next step is queued); the
    # CLI starts no job queue, so there the auditor does it on its next pass.
    routed = [job.args for job in jobs.queue.get_jobs() if job.func_name == effects.ROUTE]
    assert routed == ([] if way == "cli" else [(contact.id, offer.attempt)])
    assert audit._reroute_waiting(utcnow()) == 1   # the auditor's net holds either way
    assert quinn not in roster.everyone(db.session) and quinn in roster.removed(db.session)

    _restore(app, coordinator, token, way, quinn)
    assert _state(quinn.id) == {
        "active": True, "switched ON": False, "busy_with": None, "shifts": 0,
        "switched OFF": False, "offers": ["canceled"], "offered now": False}
    assert routing.offer_next(db.session, _waiting_text(0), 1) == []
    roster.switch(db.session, db.session.get(Supporter, quinn.id), "on")
    [again] = routing.offer_next(db.session, _waiting_text(0), 1)
    assert again.supporter_id == quinn.id


def test_restore_is_the_same_after_an_older_version_kept_shifts_and_an_off(app):
    """The CLI of before took supporters off with their shifts and their OFF kept: restoring
    one of them gives the same clean state as any other."""
    rae = roster.add(db.session, "Rae", "+16175550161")
    _shift_covering_now(rae)
    rae.available = False     # a manual OFF (the ORM hook records it)
    rae.active = False        # what `hotline supporters remove` did
    db.session.commit()
    roster.restore(db.session, rae)
    assert _state(rae.id) == {
        "active": True, "switched ON": False, "busy_with": None, "shifts": 0,
        "switched OFF": False, "offers": [], "offered now": False}


def test_a_supporter_off_the_roster_cannot_be_switched_or_taken_off_again(app):
    rae = roster.add(db.session, "Rae", "+16175550161")
    roster.deactivate(db.session, rae)
    for attempt in (lambda: roster.switch(db.session, rae, "on"),
                    lambda: roster.set_available(db.session, rae.phone, True)):
        with pytest.raises(roster.RosterError, match="off the roster: restore them first"):
            attempt()
    with pytest.raises(roster.RosterError, match="already off the roster"):
        roster.deactivate(db.session, rae)
    runner = app.test_cli_runner()
    on = runner.invoke(args=["supporters", "on", rae.phone])
    assert on.exit_code != 0 and "restore them first" in on.output
    again = runner.invoke(args=["supporters", "remove", rae.phone])
    assert again.exit_code != 0 and "already off the roster" in again.output
    with pytest.raises(shifts.ShiftError, match="no longer on the roster"):
        shifts.add_shift(db.session, rae, "Monday", "08:00", "16:00")
    assert not db.session.get(Supporter, rae.id).available


def test_a_contact_under_way_is_not_cut_off_by_taking_its_supporter_off(app):
    """A clinician is never cut off by a roster change: the supporter stays on the contact
    and is freed when it ends."""
    ada = roster.add(db.session, "Ada", "+16175550162")
    roster.switch(db.session, ada, "on")
    contact = _waiting_text()
    [offer] = routing.offer_next(db.session, contact, 1)
    assert routing.accept_offer(db.session, offer)
    assert transitions.take_off_roster(db.session, ada) == []   # nothing was ringing
    db.session.expire_all()
    assert db.session.get(Supporter, ada.id).busy_with == routing.contact_token(contact.id)
    assert db.session.get(Offer, offer.id).state == "accepted"
