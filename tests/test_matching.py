"""Roles and units (issue 16, part 2), end to end through the stand-in on both databases:
a caller asks for a peer in their role (offered first; anyone after the match wait, and
they are told) and/or for nobody from their unit (never offered, any tier, ring-all,
callbacks; nobody left: the options at once), by keys or words, in English and Spanish,
by voice or text; the request is erased with the outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
from markupsafe import escape
from sqlalchemy import select

from hotline.core import clock as hotline_clock
from hotline.disclosure import report as reports
from hotline.roster import shifts
from hotline.statistics import queries as stats
from hotline.core.extensions import db, jobs
from hotline.lifecycle import effects
from hotline.models import CallbackRequest, ContactEvent, Supporter
from hotline.simulator import Answer, NoAnswer, Speak
from tests.coordinators import csrf
from tests.scenario import TextingPhone, clinician, heard, run_scheduled

ROLE_FIRST = "I will look first for a peer in your role"
FALLBACK = "No peer in your role is free yet"
OPTIONS = "no peer supporter is free right now"


@pytest.fixture
def world(hotline, monkeypatch):
    """The hotline on the stand-in's virtual clock: the app's "now" is the simulator's, and
    a routing step scheduled for later (a hold's end) runs at that virtual time."""
    monkeypatch.setattr(hotline_clock, "utcnow", lambda: hotline.sim.datetime_at())
    enqueue = effects._enqueue

    def in_virtual_time(effect):
        if effect.job == effects.ROUTE and effect.delay is not None:
            hotline.sim.schedule(effect.delay.total_seconds(),
                                 lambda: jobs.enqueue(effect.job, *effect.args))
        else:
            enqueue(effect)
    monkeypatch.setattr(effects, "_enqueue", in_virtual_time)
    return hotline


def staff(hotline, name, role=None, units=(), tier=1, busy=False, **script):
    """A supporter with a role and units (``busy``: on another contact all along)."""
    phone = hotline.supporter(name, tier=tier, **script)
    with hotline.app.app_context():
        supporter = db.session.scalar(select(Supporter).where(Supporter.phone == phone.number))
        supporter.role, supporter.units = role, ",".join(units)
        supporter.busy_with = "contact:999999" if busy else None
        db.session.commit()
    return phone


def nothing_kept(hotline):
    """No contact and no callback request holds a match request any more."""
    with hotline.app.app_context():
        rows = [*db.session.scalars(select(CallbackRequest))]
    rows += hotline.contacts()
    assert rows and all(r.match_role is None and r.match_unit is None for r in rows)


def asked(hotline) -> int:
    with hotline.app.app_context():
        return len(db.session.scalars(select(ContactEvent).where(
            ContactEvent.kind == "match_asked")).all())


def first_ring(hotline, phone) -> float:
    return min(leg.created_at for leg in hotline.legs_to(phone))


# 3: a match; 2: nobody from my unit; 2: intensive care (roster.yaml's second unit)
NOT_ICU = ["3", "2", "2"]


def test_the_unit_is_never_offered_in_any_tier_nor_in_ring_all(world):
    icu_peer = staff(world, "IcuPeer", units=("intensive_care",))
    staff(world, "EdPeer", units=("emergency",), ring=NoAnswer())
    icu_backup = staff(world, "IcuBackup", units=("surgery", "intensive_care"), tier=2)
    staff(world, "Backup", tier=2)
    caller = world.clinician(gather=NOT_ICU)
    world.call(caller)
    world.run()
    assert world.offers() == [("EdPeer", "no_answer", 1), ("Backup", "accepted", 2)]
    assert world.legs_to(icu_peer) == world.legs_to(icu_backup) == []
    assert heard(caller, "Nobody from the unit you named will be offered your call")
    assert world.contacts()[0].outcome == "connected_backup"
    assert asked(world) == 1
    nothing_kept(world)
    # the statistics count it (never which unit), suppressed like every other count
    with world.app.app_context():
        day = world.sim.datetime_at().astimezone(shifts.program_zone()).date()
        period = stats.Period(day, day, shifts.program_zone())
        report = reports.build(stats.collect(db.session, period), period, k=11)
    assert report.values["match:yes"] == 1 and report.values["match:no"] == 0
    assert report.shown("match:yes") == "<11"


def test_nobody_left_after_the_exclusion_hears_the_options_at_once(world):
    """Everyone on duty is of the caller's unit: the options come on the first wait loop,
    not after the longest wait (180 s); the callback asked for keeps the exclusion."""
    icu_peer = staff(world, "IcuPeer", units=("intensive_care",))
    icu_backup = staff(world, "IcuBackup", units=("intensive_care",), tier=2)
    caller = world.clinician(gather=NOT_ICU + ["2"])  # then, at the options: a callback
    world.call(caller)
    world.run()
    contact = world.contacts()[0]
    assert heard(caller, OPTIONS) and contact.outcome == "callback_requested"
    assert (contact.ended_at - contact.queued_at).total_seconds() < 30
    for _ in range(3):  # the callback's tries (3): still nobody from that unit
        run_scheduled(world)
        world.run()
    assert [c.outcome for c in world.contacts()] == ["callback_requested"] + ["failed"] * 3
    assert world.offers() == []
    assert world.legs_to(icu_peer) == world.legs_to(icu_backup) == []
    nothing_kept(world)


def test_a_peer_in_the_callers_role_is_offered_first(world):
    staff(world, "Doc", role="physician")  # round-robin alone would ring Doc first
    staff(world, "Nurse", role="nurse")
    caller = world.clinician(gather=["3", "1", "2"])  # a match; my role; nurse
    world.call(caller)
    world.run()
    assert world.offers() == [("Nurse", "accepted", 1)]
    assert heard(caller, ROLE_FIRST) and not heard(caller, FALLBACK)
    nothing_kept(world)


def test_the_others_after_the_match_wait_and_the_caller_is_told(world):
    """The only nurse is on another call: the physician is held back for the match wait
    (30 s of virtual time from the queue), then rung; the caller hears why."""
    doc = staff(world, "Doc", role="physician", ring=Answer(12))  # the caller waits on
    staff(world, "Nurse", role="nurse", busy=True)
    caller = world.clinician(gather=["3", "1", "2"])
    world.call(caller)
    world.run()
    contact = world.contacts()[0]
    queued = (contact.queued_at - world.sim.epoch).total_seconds()
    # (queued_at is stored to the microsecond, rounded: allow that much)
    assert first_ring(world, doc) >= queued + 30 - 1e-6
    assert world.offers() == [("Doc", "accepted", 1)]
    assert heard(caller, FALLBACK)
    nothing_kept(world)


def test_with_no_peer_of_the_role_on_duty_anyone_is_offered_at_once(world):
    doc = staff(world, "Doc", role="physician")
    caller = world.clinician(gather=["3", "1", "5"])  # pharmacist: nobody on the roster
    world.call(caller)
    world.run()
    contact = world.contacts()[0]
    assert first_ring(world, doc) < (contact.queued_at - world.sim.epoch).total_seconds() + 5
    assert world.offers() == [("Doc", "accepted", 1)]
    assert heard(caller, FALLBACK) and not heard(caller, ROLE_FIRST)  # told at once


@pytest.mark.parametrize("script, lines", [
    (["3", "3", "2", "2"], ("For nurse, press 2.", "For intensive care, press 2.")),
    ([Speak("I want to choose"), Speak("both please"), Speak("I am a nurse"),
      Speak("the intensive care unit")], ("Which is your role?",)),
    (["8", "3", "3", "2", "2"], ("Para enfermería, oprima 2.", "¿Cuál es su unidad?")),
    ([Speak("español"), Speak("quiero elegir"), Speak("ambos"), Speak("soy enfermera"),
      Speak("cuidados intensivos")], ("Buscaré primero a un compañero de su mismo rol",)),
], ids=["en-keys", "en-speech", "es-keys", "es-speech"])
def test_both_by_keys_or_words_in_english_and_spanish(world, script, lines):
    """A nurse from intensive care is first in round-robin order: both rules skip her."""
    staff(world, "IcuNurse", role="nurse", units=("intensive_care",))
    staff(world, "Doc", role="physician")
    staff(world, "Nurse", role="nurse", units=("emergency",))
    caller = world.clinician(gather=script)
    world.call(caller)
    world.run()
    assert world.offers() == [("Nurse", "accepted", 1)]
    assert all(heard(caller, line) for line in lines)
    assert asked(world) == 1
    nothing_kept(world)


@pytest.mark.parametrize("first, how, request_text, intake, noted, lists", [
    ("MATCH", "ROLE and your role", "ROLE nurse NOT ICU", "Reply 1",
     "nobody from the unit you named will be offered", "physician, nurse"),
    ("hola, ELEGIR", "ROL y su rol", "rol enfermera sin UCI", "Responda 1",
     "no se ofrecerá a nadie de la unidad que nombró", "médico, enfermería"),
], ids=["en", "es"])
def test_a_text_asks_for_a_match_in_the_intake(world, first, how, request_text, intake, noted,
                                               lists):
    staff(world, "IcuNurse", role="nurse", units=("intensive_care",), phone_class=TextingPhone,
          replies=[("Reply YES", "YES")])
    staff(world, "Doc", role="physician", phone_class=TextingPhone,
          replies=[("Reply YES", "YES")])
    staff(world, "Nurse", role="nurse", phone_class=TextingPhone,
          replies=[("Reply YES", "YES"), ("hola", "BYE")])
    doc = clinician(world, "+16175550188", replies=[
        (how, request_text), (intake, "2"), ("peer", "hola")])
    doc.text(first)
    world.run()
    received = doc.received()
    assert lists in received[0]  # the how-to lists roster.yaml's lists
    assert any(noted in body for body in received)
    assert [(name, state) for name, state, _ in world.offers()] == [("Nurse", "accepted")]
    assert asked(world) == 1
    nothing_kept(world)


# ---- the roster: a role and units, one set of rules for CLI, pages and API ---------------

def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_role_and_units_by_command_line_page_and_api(app, coordinator):
    added = cli(app, "supporters", "add", "--name", "Ada", "--phone", "617 555 0161",
                "--role", "nurse", "--unit", "emergency", "--unit", "intensive_care")
    assert added.exit_code == 0, added.output
    ada = db.session.scalar(select(Supporter).where(Supporter.name == "Ada"))
    assert (ada.role, ada.unit_list) == ("nurse", ["emergency", "intensive_care"])
    assert "nurse\temergency,intensive_care" in cli(app, "supporters", "list").output
    # edit: only what is given changes
    edited = cli(app, "supporters", "edit", "+16175550161", "--role", "pharmacist")
    assert edited.exit_code == 0, edited.output
    db.session.expire_all()
    assert (ada.role, ada.unit_list, ada.name) == ("pharmacist", ["emergency",
                                                                   "intensive_care"], "Ada")
    cli(app, "supporters", "edit", "+16175550161", "--unit", "surgery", "--name", "Ada L")
    db.session.expire_all()
    assert (ada.role, ada.unit_list, ada.name) == ("pharmacist", ["surgery"], "Ada L")
    cli(app, "supporters", "edit", "+16175550161", "--role", "none", "--unit", "none")
    db.session.expire_all()
    assert (ada.role, ada.unit_list) == (None, [])
    # the page: a select and checkboxes, saved through the same rules
    token = csrf(coordinator, "/dashboard/roster")
    page = coordinator.get(f"/dashboard/roster/{ada.id}").text
    assert '<option value="advanced_practice"' in page and 'value="outpatient"' in page
    saved = coordinator.post(f"/dashboard/roster/{ada.id}", data={
        "csrf_token": token, "name": "Ada L", "phone": ada.phone, "tier": "1",
        "languages": ["en"], "role": "physician", "units": ["medicine", "pediatrics"]})
    assert saved.status_code == 302
    db.session.expire_all()
    assert (ada.role, ada.unit_list) == ("physician", ["medicine", "pediatrics"])
    assert "pediatrics" in coordinator.get("/dashboard/roster").text
    # the API: a PATCH without them keeps them; with them, changes them
    api = coordinator.patch(f"/api/supporters/{ada.id}", headers={"X-CSRF-Token": token},
                            json={"name": "Ada", "phone": ada.phone, "tier": 1,
                                  "languages": ["en"]})
    assert api.json["role"] == "physician" and api.json["units"] == ["medicine", "pediatrics"]
    api = coordinator.patch(f"/api/supporters/{ada.id}", headers={"X-CSRF-Token": token},
                            json={"name": "Ada", "phone": ada.phone, "tier": 1,
                                  "languages": ["en"], "role": "resident", "units": []})
    assert api.json["role"] == "resident" and api.json["units"] == []


def test_an_unknown_role_or_unit_is_refused_with_the_same_message_everywhere(app, coordinator):
    token = csrf(coordinator, "/dashboard/roster")
    body = {"name": "Bea", "phone": "+16175550162", "tier": 1, "languages": ["en"],
            "role": "surgeon", "units": ["icu"]}
    api = coordinator.post("/api/supporters", headers={"X-CSRF-Token": token}, json=body)
    page = coordinator.post("/dashboard/roster", data={**body, "csrf_token": token,
                                                       "tier": "1"})
    out = cli(app, "supporters", "add", "--name", "Bea", "--phone", "+16175550162",
              "--role", "surgeon", "--unit", "icu")
    assert api.status_code == page.status_code == 400 and out.exit_code != 0
    assert set(api.json["errors"]) == {"role", "units"}
    assert "role must be one of physician, nurse, advanced_practice" in api.json["error"]
    assert out.output == f"Error: {api.json['error']}\n"
    assert all(str(escape(why)) in page.text for why in api.json["errors"].values())
    assert db.session.scalar(select(Supporter).where(Supporter.name == "Bea")) is None


@pytest.mark.parametrize("change, message", [
    (lambda d: d["roles"].pop("nurse") and d["roles"].update(Nurse={"en": ["x"], "es": ["x"]}),
     "roster.yaml: roles.Nurse is not a name"),
    (lambda d: d["units"]["emergency"].pop("es"), "roster.yaml: units.emergency.es must be"),
    (lambda d: d["units"].update({f"u{chr(97 + i)}": {"en": ["a"], "es": ["a"]}
                                  for i in range(4)}), "roster.yaml: units has 10 entries"),
    (lambda d: d.update(sites={}), "roster.yaml: sites is not a known key"),
    (lambda d: d.pop("roles"), "roster.yaml: roles must map"),
], ids=["bad name", "missing language", "too many", "unknown key", "no roles"])
def test_a_bad_roster_file_stops_the_start_naming_the_key(tmp_path, change, message):
    import re
    import shutil

    import yaml

    from hotline import create_app
    from hotline.core import settings
    from hotline.core.errors import FlowError
    from hotline.roster import roles
    for path in Path(settings.load().IVR_FLOWS_DIR).glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    data = yaml.safe_load((tmp_path / roles.ROSTER_FILE).read_text(encoding="utf-8"))
    change(data)
    (tmp_path / roles.ROSTER_FILE).write_text(yaml.safe_dump(data, allow_unicode=True),
                                              encoding="utf-8")
    with pytest.raises(FlowError, match=re.escape(message)):
        create_app({"IVR_FLOWS_DIR": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:1/0"})


def test_ring_all_holds_the_others_of_its_tier_for_the_match_wait_too(world):
    """No peer on duty: the backup tier rings at once, all at once, but its nurse is on
    another call: its physician is held for the match wait (the caller is not sent to the
    options meanwhile), then rung."""
    staff(world, "NurseBackup", role="nurse", tier=2, busy=True)
    doc = staff(world, "DocBackup", role="physician", tier=2, ring=Answer(12))
    caller = world.clinician(gather=["3", "1", "2"])
    world.call(caller)
    world.run()
    contact = world.contacts()[0]
    assert world.offers() == [("DocBackup", "accepted", 2)]
    # (queued_at is stored to the microsecond, rounded: allow that much)
    assert first_ring(world, doc) >= (contact.queued_at - world.sim.epoch).total_seconds() \
        + 30 - 1e-6
    assert contact.outcome == "connected_backup" and not heard(caller, OPTIONS)
    assert heard(caller, FALLBACK)
