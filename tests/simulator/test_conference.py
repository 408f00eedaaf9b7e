"""``<Dial><Conference>`` and the Conferences REST resource (issue 17's debriefs): held on
the wait URL until a starting member joins, ended by a member who ends it on exit or by
REST, announcements played to everyone in it; checked against Twilio's OpenAPI spec."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import Dial

from hotline.simulator import Answer, InteractivePhone, ScriptedPhone
from tests.simulator.conftest import BASE, HOTLINE, response

PEOPLE = ("+15550123001", "+15550123002", "+15550123003")


def conference(moderator: bool):
    def build(r):
        dial = Dial(action=f"{BASE}/after")
        dial.conference("room", beep=False, record="do-not-record",
                        start_conference_on_enter=moderator, end_conference_on_exit=moderator,
                        wait_url=f"{BASE}/hold")
        r.append(dial)
    return response(build)


@pytest.fixture
def room(sim, fake, rest):
    """Two members on hold, then a moderator who joins at 60 s and stays 100 s."""
    fake.reply("/member", conference(False))
    fake.reply("/moderator", conference(True))
    fake.reply("/hold", response(lambda r: r.say("please hold"), lambda r: r.pause(length=10)))
    fake.reply("/after", response(lambda r: r.say("it ended"), lambda r: r.hangup()))
    fake.reply("/warning", response(lambda r: r.say("one minute left")))
    phones = [sim.add_phone(ScriptedPhone(n, ring=Answer(1), hangup_after_bridge=None))
              for n in PEOPLE]
    phones[2].hangup_after_bridge = 100
    legs = [rest.calls.create(to=n, from_=HOTLINE, url=f"{BASE}/member").sid
            for n in PEOPLE[:2]]
    sim.run(max_seconds=60)
    legs.append(rest.calls.create(to=PEOPLE[2], from_=HOTLINE, url=f"{BASE}/moderator").sid)
    return phones, legs


def test_members_hold_until_the_moderator_joins_and_leave_when_she_does(sim, room):
    phones, legs = room
    sim.run(until=lambda: all(sim.legs[sid].ended for sid in legs), max_seconds=600)
    [conf] = sim.conferences.values()
    assert conf.status == "completed" and conf.started_at is not None
    assert 50 <= conf.started_at < 65 and conf.ended_at - conf.started_at == pytest.approx(100)
    assert all("please hold" in p.heard for p in phones[:2]) and "please hold" not in \
        phones[2].heard
    assert all("it ended" in p.heard for p in phones[:2])
    kinds = [kind for _, kind, _ in sim.events]
    assert "beep" not in kinds and "recording" not in kinds


def test_rest_lists_announces_and_ends_a_conference(sim, rest, room):
    phones, legs = room
    sim.run(max_seconds=20)
    [listed] = rest.conferences.list(friendly_name="room", status="in-progress")
    assert listed.sid.startswith("CF") and listed.friendly_name == "room"
    assert rest.conferences.list(friendly_name="other", status="in-progress") == []
    rest.conferences(listed.sid).update(announce_url=f"{BASE}/warning")
    sim.run(max_seconds=5)
    assert all("one minute left" in p.heard for p in phones)
    rest.conferences(listed.sid).update(status="completed")
    sim.run(until=lambda: all(sim.legs[sid].ended for sid in legs), max_seconds=60)
    assert rest.conferences(listed.sid).fetch().status == "completed"
    assert all("it ended" in p.heard for p in phones)
    with pytest.raises(TwilioRestException) as over:
        rest.conferences(listed.sid).update(status="completed")
    assert over.value.status == 400


def test_a_bad_status_or_an_announcement_off_the_apps_origin_is_refused(sim, rest, room):
    sim.run(max_seconds=20)
    [listed] = rest.conferences.list(status="in-progress")
    with pytest.raises(TwilioRestException) as bad:
        rest.conferences(listed.sid).update(status="bogus")
    assert bad.value.status == 400
    with pytest.raises(TwilioRestException) as elsewhere:
        rest.conferences(listed.sid).update(announce_url="http://169.254.169.254/latest")
    assert elsewhere.value.status == 400 and elsewhere.value.code == 21205
    with pytest.raises(TwilioRestException) as missing:
        rest.conferences("CF" + "0" * 32).fetch()
    assert missing.value.status == 404


def test_three_people_on_web_phones_hold_a_debrief_the_panel_shows(sim, fake):
    """The web phone's people (interactive phones) call in; the snapshot shows the room."""
    people = [sim.add_phone(InteractivePhone(n, label=f"person {i}"))
              for i, n in enumerate(PEOPLE)]
    fake.route("/voice")(lambda form: conference(form["From"] == PEOPLE[0]))
    fake.reply("/hold", response(lambda r: r.say("please hold"), lambda r: r.pause(length=10)))
    fake.reply("/after", response(lambda r: r.say("it ended"), lambda r: r.hangup()))
    legs = []
    for delay, person in zip((0, 5, 30), reversed(people)):  # the moderator comes last
        sim.schedule(delay, lambda p=person: legs.append(sim.dial(p.number, HOTLINE)))
    sim.run(max_seconds=40)
    picture = sim.snapshot()
    [room] = picture["conferences"]
    assert room["status"] == "in-progress" and len(room["talking"]) == 3
    assert {leg["doing"] for leg in picture["legs"] if not leg["ended_at"]} == {"in conference"}
    assert all(view["legs"][0]["doing"] == "in conference"
               for view in picture["phones"].values() if view["legs"])
    assert "please hold" in people[1].heard and "please hold" not in people[0].heard
    sim.hangup(next(leg.sid for leg in legs if leg.from_ == PEOPLE[0]))
    sim.run(until=lambda: all(leg.ended for leg in legs), max_seconds=60)
    assert all("it ended" in p.heard for p in people[1:])
    assert sim.snapshot()["conferences"][0]["status"] == "completed"
