"""Caring for supporters (issue 16, part 3), end to end through the offline stand-in on
SQLite and PostgreSQL: the cool-down after a contact and READY, the daily cap across a
local midnight, the automatic pause after missed offers (not after declines), the
thank-you text in ivr_flows' words and QUIET, and that none of them leaves a caller
waiting while a supporter who may take the call is free.

The app's clock stands still (the ``clock`` fixture) while the stand-in plays the calls in
virtual time: every offer of a test happens at the same app minute, so round-robin alone
would go to the lowest id, and any other order is the care rules' doing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from hotline.core.extensions import db
from hotline.models import AvailabilityOverride, Contact, ContactEvent, Supporter
from hotline.roster import care, shifts
from hotline.roster import supporters as roster
from hotline.simulator import NoAnswer, Silence
from hotline.telephony import outbound
from tests.coordinators import COORD, login, make_user
from tests.scenario import TextingPhone


def _configure(hotline, **values) -> None:
    app = hotline.app
    app.extensions["hotline.settings"] = app.extensions["hotline.settings"].replace(**values)


def _call(hotline, number: str, seconds: float = 400) -> Contact:
    """A clinician calls, talks for a while with whoever answers; the newest contact."""
    hotline.call(hotline.clinician(number=number, gather=["1"], hangup_after_bridge=None))
    hotline.run(seconds)
    return hotline.contacts()[-1]


def _supporter(hotline, name: str, **script) -> TextingPhone:
    script.setdefault("hangup_after_bridge", 30)
    return hotline.supporter(name, phone_class=TextingPhone, **script)


def _message(hotline, key: str, **values) -> str:
    with hotline.app.app_context():
        return outbound.text_flows().message("en", key, **values)


def _text(hotline, phone: TextingPhone, body: str) -> None:
    phone.text(body)
    hotline.run(30)


def _who(hotline, contact: Contact) -> str | None:
    with hotline.app.app_context():
        supporter = db.session.get(Supporter, contact.supporter_id) \
            if contact.supporter_id else None
        return supporter.name if supporter else None


def _events(hotline, kind: str) -> int:
    with hotline.app.app_context():
        return len(db.session.scalars(select(ContactEvent).where(
            ContactEvent.kind == kind)).all())


@pytest.mark.usefixtures("one_at_a_time")
def test_the_cool_down_offers_the_next_call_to_someone_else_and_ready_ends_it(hotline, clock):
    ada = _supporter(hotline, "Ada")
    first = _call(hotline, "+16175550201")
    assert _who(hotline, first) == "Ada" and first.outcome == "connected"
    # the after-contact text: thanks, SUPPORT, the cool-down, in ivr_flows' words
    thanks = _message(hotline, "care_thanks") + " " + _message(hotline, "care_cooldown",
                                                                minutes=10)
    assert thanks in ada.received()
    assert "text SUPPORT" in thanks and "10 minutes" in thanks

    bob = _supporter(hotline, "Bob")
    # Round-robin alone gives Ada the next call (same minute, lower id): she is cooling down.
    second = _call(hotline, "+16175550202")
    assert _who(hotline, second) == "Bob"
    assert [name for name, *_ in hotline.offers()] == ["Ada", "Bob"]
    assert _events(hotline, "care_cooldown") == 1

    # Both cool down now; Bob is ready sooner and says so: the next call is his.
    _text(hotline, bob, "READY")
    assert _message(hotline, "care_ready") in bob.received()
    third = _call(hotline, "+16175550203")
    assert _who(hotline, third) == "Bob"

    # Ten minutes on (app time), Ada's cool-down is over: round-robin again.
    clock.advance(minutes=11)
    fourth = _call(hotline, "+16175550204")
    assert _who(hotline, fourth) == "Ada"


def test_a_cooling_down_supporter_still_takes_the_call_when_nobody_else_is_free(hotline, clock):
    """The cool-down never leaves a caller waiting, nor sends them to the options, while a
    supporter on and free could take the call: it only puts them last."""
    _supporter(hotline, "Ada")
    _call(hotline, "+16175550211")
    again = _call(hotline, "+16175550212")
    assert again.outcome == "connected" and _who(hotline, again) == "Ada"
    assert _events(hotline, "care_cooldown") == 0  # nobody else went first


def test_the_cap_holds_for_the_local_day_and_lifts_at_local_midnight(hotline, clock):
    _configure(hotline, MAX_CONTACTS_PER_DAY=2, COOLDOWN_MINUTES=0)
    # 23:00 in New York (the program's zone), 03:00 UTC the next day
    clock.set(datetime(2026, 7, 1, 3, 0, tzinfo=UTC))
    ada = _supporter(hotline, "Ada")
    assert _who(hotline, _call(hotline, "+16175550221")) == "Ada"
    assert not any(_message(hotline, "care_cap") in b for b in ada.received())
    assert _who(hotline, _call(hotline, "+16175550222")) == "Ada"
    assert _message(hotline, "care_thanks") + " " + _message(hotline, "care_cap") \
        in ada.received()

    # The third call that evening: Ada is free but done for the day; nobody else is, so
    # the caller hears the options at once (no ring, no long wait).
    caller = hotline.clinician(number="+16175550223", gather=[])
    hotline.call(caller)
    hotline.run(120)  # the menu twice in silence, then the queue
    third = hotline.contacts()[-1]
    assert third.supporter_id is None and third.exhausted
    assert len(hotline.offers()) == 2
    assert any("no peer supporter is free" in line for line in caller.heard)
    assert _events(hotline, "care_cap") == 1

    # 00:05 in New York: a new local day, Ada is offered again.
    clock.set(datetime(2026, 7, 1, 4, 5, tzinfo=UTC))
    assert _who(hotline, _call(hotline, "+16175550224")) == "Ada"


def test_three_missed_offers_in_a_row_pause_a_supporter_but_declines_never(hotline, clock):
    ada = _supporter(hotline, "Ada", ring=NoAnswer())           # rings out
    cy = _supporter(hotline, "Cy", gather=[Silence()] * 20)     # picks up, says nothing
    dee = _supporter(hotline, "Dee", gather=["2"] * 20)         # declines
    _supporter(hotline, "Eve")                                  # takes the calls
    paused_text = _message(hotline, "care_paused")
    for i in range(3):
        assert _who(hotline, _call(hotline, f"+1617555023{i}")) == "Eve"
        assert not any(paused_text in b for b in ada.received() + cy.received()) or i == 2
    with hotline.app.app_context():
        offered = shifts.offered_now(db.session)
        by_name = {s.name: s for s in db.session.scalars(select(Supporter))}
        assert by_name["Ada"].id not in offered and by_name["Cy"].id not in offered
        assert by_name["Dee"].id in offered  # three declines: still on
        assert db.session.get(AvailabilityOverride, by_name["Ada"].id).auto_paused
    assert paused_text in ada.received() and paused_text in cy.received()
    assert paused_text not in dee.received()
    assert "Reply ON" in paused_text
    assert _events(hotline, "care_paused") == 2

    # The fourth call never rings them; Ada texts ON and is offered again.
    before = len(hotline.offers())
    _call(hotline, "+16175550239")
    assert [name for name, *_ in hotline.offers()[before:]] == ["Dee", "Eve"]
    _text(hotline, ada, "ON")
    with hotline.app.app_context():
        ada_row = db.session.scalar(select(Supporter).where(Supporter.name == "Ada"))
        assert ada_row.id in shifts.offered_now(db.session) and ada_row.missed_in_row == 0


def test_coordinators_see_a_paused_supporter_on_available_now(hotline, clock):
    hotline.supporter("Ada", ring=NoAnswer())
    _configure(hotline, MAX_MISSED_OFFERS=1)
    hotline.call(hotline.clinician(number="+16175550241", gather=[]))
    hotline.run(300)
    with hotline.app.app_context():
        make_user(COORD)
    client = hotline.app.test_client()
    assert login(client, COORD).status_code == 302
    page = client.get("/dashboard/now").text
    assert "paused automatically" in page and "after missed offers" in page
    # no count of the rules' events: a rolling count, differenced a day apart, would give
    # one day's events (issue 13); they are in the published statistics instead
    assert "care-counts" not in page and "&lt;11" not in page
    assert "Caring for supporters" not in page and "in the last" not in page


def test_quiet_turns_the_thank_you_texts_off_and_on_again(hotline, clock):
    _configure(hotline, COOLDOWN_MINUTES=0)
    ada = _supporter(hotline, "Ada")
    _text(hotline, ada, "QUIET")
    assert ada.received()[-1] == _message(hotline, "care_quiet_on")
    _call(hotline, "+16175550251")
    assert _message(hotline, "care_thanks") not in ada.received()
    _text(hotline, ada, "quiet")
    assert ada.received()[-1] == _message(hotline, "care_quiet_off")
    _call(hotline, "+16175550252")
    assert ada.received()[-1] == _message(hotline, "care_thanks")
    # nothing about the clinician in it
    assert "+1617555025" not in " ".join(ada.received())


@pytest.mark.usefixtures("one_at_a_time")
def test_no_rule_keeps_a_caller_from_a_free_supporter(hotline, clock):
    """Capped, paused and cooling-down supporters are passed over, never waited for: the
    one who may take the call rings first."""
    _configure(hotline, MAX_CONTACTS_PER_DAY=1)
    _supporter(hotline, "Capped")
    _call(hotline, "+16175550261")           # Capped's one contact today (and cool-down)
    _supporter(hotline, "Cooling")
    with hotline.app.app_context():
        cooling = db.session.scalar(select(Supporter).where(Supporter.name == "Cooling"))
        cooling.cooldown_until = datetime(2026, 7, 1, 15, 5, tzinfo=UTC)
        db.session.commit()
    _supporter(hotline, "Free")
    before = len(hotline.offers())
    contact = _call(hotline, "+16175550262")
    assert [name for name, *_ in hotline.offers()[before:]] == ["Free"]
    assert contact.outcome == "connected"


@pytest.fixture
def phone_app(app_settings, request):
    """The app with the stand-in and the web phone (as tests/test_web_phone_csrf.py)."""
    app_settings.update(SIMULATOR=True, PUBLIC_BASE_URL="http://127.0.0.1:9",
                        MAX_MISSED_OFFERS=2)
    app = request.getfixturevalue("app")
    yield app
    app.extensions["hotline.simulator.runner"].stop()


def test_the_web_phone_shows_a_paused_supporter(phone_app, session):
    session.add(Supporter(name="Ada", phone="+16175550271", tier=1, available=True))
    session.commit()
    ada_id = session.scalar(select(Supporter.id))

    def paused() -> bool:
        state = phone_app.test_client().get("/phone/api/state").get_json()
        [shown] = [s for s in state["routing"]["supporters"] if s["name"] == "Ada"]
        return shown["paused"]
    assert care.offer_missed(session, ada_id) is False
    session.commit()
    assert not paused()
    assert care.offer_missed(session, ada_id) is True  # the second in a row
    session.commit()
    assert paused()
    roster.set_available(session, "+16175550271", True)  # ON again (as texting ON does)
    assert not paused()
