"""Every way of switching a supporter OFF is one state: it never rings, even when a weekly
shift says on, and every page shows it the same (issue 14, "Off still rings").

End to end through the stand-in: the supporter goes OFF by text, on the command line, with
the dashboard's switch or with the web phone's toggle; a weekly shift covers the moment of
the next call (given before the OFF, or only after it, as when a shift starts later); a
clinician calls and only the other supporter may ring.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hotline.roster import shifts
from hotline.core.extensions import db
from hotline.models import Supporter, utcnow
from tests.coordinators import csrf, login, make_user
from tests.scenario import TextingPhone, heard

WAYS = ("sms", "cli", "dashboard", "web_phone")


def shift_covering_now(supporter_id: int) -> None:
    """A weekly shift from an hour ago to two hours ahead, on the program's clock."""
    zone = shifts.program_zone()
    start = (utcnow() - timedelta(hours=1)).astimezone(zone)
    end = start + timedelta(hours=3)
    supporter = db.session.get(Supporter, supporter_id)
    shifts.add_shift(db.session, supporter, start.weekday(), f"{start:%H:%M}", f"{end:%H:%M}")


def coordinator(hotline):
    """A dashboard client logged in as the coordinator (created on first use)."""
    from hotline.models import User
    with hotline.app.app_context():
        if db.session.scalar(select(User.id)) is None:
            make_user("coord@example.org")
    client = hotline.app.test_client()
    assert login(client, "coord@example.org").status_code == 302
    return client


def go_off(hotline, way: str, phone, supporter_id: int) -> None:
    app = hotline.app
    if way == "sms":
        phone.text("OFF")
        hotline.run(60)
        assert any("You are OFF" in body for body in phone.received())
    elif way == "cli":
        result = app.test_cli_runner().invoke(args=["supporters", "off", phone.number])
        assert result.exit_code == 0, result.output
    elif way == "dashboard":
        client = coordinator(hotline)
        page = f"/dashboard/roster/{supporter_id}"
        done = client.post(f"{page}/switch", data={"mode": "off",
                                                   "csrf_token": csrf(client, page)})
        assert done.status_code == 302
    else:  # the web phone's "On shift (available)" toggle, unticked
        from hotline.simulator.web import phone as web_phone
        with app.test_request_context(method="POST", data={"on": "0"}):
            answer = web_phone.availability(phone.number)
            assert answer.json == {"ok": True, "result": {"available": False}}


def shown(hotline, supporter_id: int, number: str) -> dict[str, object]:
    """How each page shows the supporter: web phone and live panel, Available now, the
    roster's manual column, the command line's list."""
    from hotline.simulator.web import phone as web_phone
    app = hotline.app
    with app.app_context():
        app.extensions.setdefault("hotline.simulator.started", utcnow())
        [panel] = [s for s in web_phone._routing()["supporters"] if s["phone"] == number]
        [now] = [a for a in shifts.now_view(db.session) if a.supporter.id == supporter_id]
        listed = app.test_cli_runner().invoke(args=["supporters", "list"]).output
        [line] = [row for row in listed.splitlines() if number in row]
    return {"web phone": panel["available"], "available now": now.offered,
            "reason": now.reason, "cli": line.split("\t")[-1]}


@pytest.mark.parametrize("shift_first", [True, False], ids=["on_shift", "shift_starts_later"])
@pytest.mark.parametrize("way", WAYS)
def test_off_never_rings_even_when_a_shift_says_on(hotline, way, shift_first):
    """Before: an OFF given outside a shift was forgotten when one started (Chris Dale's
    phone rang; "Available now" said "on shift"), and the web phone showed the manual flag,
    so a supporter on shift looked "off" there while their phone still rang."""
    chris = hotline.supporter("Chris", phone_class=TextingPhone, gather=["1"] * 5)
    ada = hotline.supporter("Ada", hangup_after_bridge=30)
    with hotline.app.app_context():
        chris_id = db.session.scalar(select(Supporter.id).where(Supporter.name == "Chris"))
        if shift_first:  # on a weekly shift, never switched: the web phone must say "on"
            db.session.execute(  # Core, not the ORM: no manual OFF is recorded
                Supporter.__table__.update().where(
                    Supporter.id == chris_id).values(available=False))
            db.session.commit()
            shift_covering_now(chris_id)
    if shift_first:
        before = shown(hotline, chris_id, chris.number)
        assert before["web phone"] is True and before["available now"] is True, before
        assert before["cli"] == "on"
    go_off(hotline, way, chris, chris_id)
    if not shift_first:
        with hotline.app.app_context():
            shift_covering_now(chris_id)

    after = shown(hotline, chris_id, chris.number)
    assert after == {"web phone": False, "available now": False,
                     "reason": "switched OFF (until switched ON)", "cli": "off"}, after
    roster = coordinator(hotline).get("/dashboard/roster").text
    roster_row = roster.split(chris.number)[1].split("</tr>")[0]
    assert "switched OFF" in roster_row

    clinician = hotline.clinician(gather=["1"], hangup_after_bridge=None)
    hotline.call(clinician)
    hotline.run()
    assert [leg for leg in hotline.legs_to(chris) if leg.direction == "outbound-api"] == []
    assert hotline.offers() == [("Ada", "accepted", 1)]
    assert heard(clinician, "connected with a peer") and heard(ada, "Peer support call")
