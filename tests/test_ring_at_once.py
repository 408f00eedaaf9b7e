"""Ringing several tier-1 supporters at once (``at_once`` on a ``ring_one_at_a_time``
step of ivr_flows/escalation.yaml), end to end through the stand-in in virtual time.

Every story is checked against the same invariants (``check_safety``): a supporter's
phone never carries two offers at once, a contact has at most one winner, at most
``at_once`` of its peers ring at any moment, every other phone of the contact is stopped
within 1 s (virtual) of the winning press, the caller is bridged to the winner, nothing
is left ringing or reserved, and the auditor then finds nothing to repair.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import select, update

from hotline.core import settings
from hotline.core.errors import FlowError
from hotline.core.extensions import db, jobs
from hotline.escalation import auditor, policy, runner
from hotline.lifecycle import contacts, effects, routing
from hotline.telephony import api as twilio_api
from hotline.telephony import outbound
from hotline.models import Contact, Offer, OfferState, Supporter, utcnow
from hotline.simulator import Answer, NoAnswer, Press, Undecided
from tests.conftest import twiml
from tests.scenario import TextingPhone, clinician, heard
from tests.test_escalation_policy import SHIPPED, _set, flows_with
from tests.test_routing import waiting_contact
from workers import offer as offer_jobs

#: What a supporter hears when another one was faster (ivr_flows/voice.yaml offer_taken).
TAKEN = "has already been connected"
#: At most this long (virtual seconds) from the winning press to each other phone's end.
STOP_WITHIN = 1.0


def at_once(n):
    return _set(("steps", 0, "at_once"), n)


def hotline_with(app_settings, tmp_path, request, *changes):
    """The hotline with the shipped policy ``changes``d."""
    def change(data):
        for each in changes:
            each(data)
    app_settings.update(IVR_FLOWS_DIR=str(flows_with(tmp_path, change)))
    return request.getfixturevalue("hotline")


@pytest.fixture
def ring_two(app_settings, tmp_path, request):
    """The hotline with the shipped policy but two tier-1 supporters rung at once."""
    return hotline_with(app_settings, tmp_path, request, at_once(2))


# The policy file

def test_at_once_is_read_from_the_setting_the_file_names_and_defaults_to_one(tmp_path):
    shipped = policy.load(SHIPPED, settings.load({}))
    assert shipped.first.at_once == 2 and shipped.first.limit == 2  # HOTLINE_RING_AT_ONCE
    assert shipped.second.limit is None  # ring_all
    one = policy.load(SHIPPED, settings.load({"HOTLINE_RING_AT_ONCE": "1"}))
    assert one.first.at_once == 1 and one.first.limit == 1
    loaded = policy.load(flows_with(tmp_path, at_once(3)), settings.load({}))
    assert loaded.first.at_once == 3 and loaded.first.limit == 3
    unset = policy.load(flows_with(tmp_path, lambda data: data["steps"][0].pop("at_once")),
                        settings.load({}))
    assert unset.first.at_once == 1
    with pytest.raises(settings.SettingsError, match="HOTLINE_RING_AT_ONCE must be greater"):
        settings.load({"HOTLINE_RING_AT_ONCE": "0"})


@pytest.mark.parametrize("change, message", [
    (at_once(0), "escalation.yaml: steps[0].at_once must be a whole number of supporters"),
    (at_once(-2), "escalation.yaml: steps[0].at_once must be a whole number of supporters"),
    (at_once(True), "escalation.yaml: steps[0].at_once must be a whole number of supporters"),
    (at_once("two"), "escalation.yaml: steps[0].at_once must be a whole number of supporters"),
    (_set(("steps", 1, "at_once"), 2),
     "escalation.yaml: steps[1].at_once is not a key of a ring_all step"),
    (_set(("steps", 2, "at_once"), 2),
     "escalation.yaml: steps[2].at_once is not a key of a nobody_free step"),
])
def test_a_bad_at_once_is_refused_naming_the_key(tmp_path, change, message):
    with pytest.raises(FlowError, match=re.escape(message)):
        policy.load(flows_with(tmp_path, change), settings.load({}))


# End to end, through the stand-in

def check_safety(hotline, limit=2):
    """The invariants every story must keep; returns the legs of each contact's offers."""
    sim = hotline.sim
    with hotline.app.app_context():
        offers = list(db.session.scalars(select(Offer).order_by(Offer.id)))
        by_sid = {o.call_sid: o for o in offers}
        # a supporter's phone never carries two offers at once (no double booking)
        phones = defaultdict(list)
        for leg in sim.legs.values():
            if leg.sid in by_sid:
                phones[leg.to].append((leg.created_at, leg.end_time))
        for spans in phones.values():
            spans.sort()
            for (_, end), (start, _) in zip(spans, spans[1:]):
                assert end is not None and end <= start, sim.timeline()
        legs = defaultdict(list)
        for offer in offers:
            legs[offer.contact_id].append((offer, sim.legs[offer.call_sid]))
        for contact_id, pairs in legs.items():
            contact = db.session.get(Contact, contact_id)
            winners = [(o, leg) for o, leg in pairs if o.state == OfferState.ACCEPTED.value]
            assert len(winners) <= 1
            # at most ``limit`` of its tier-1 offers are open at any moment: from the ring
            # to the supporter's key (or silence), or the end of the call (ends first)
            moments = sorted([(leg.created_at, 1) for o, leg in pairs if o.tier == 1]
                             + [(_offer_over(sim, leg), -1) for o, leg in pairs if o.tier == 1])
            ringing = peak = 0
            for _, step in moments:
                ringing += step
                peak = max(peak, ringing)
            assert peak <= limit, sim.timeline()
            if not winners:
                continue
            winner, won_leg = winners[0]
            assert contact.supporter_id == winner.supporter_id
            pressed = [t for t, kind, d in sim.events
                       if kind == "input" and d["sid"] == won_leg.sid and d.get("Digits") == "1"]
            assert pressed, sim.timeline()
            press = pressed[0]
            for offer, leg in pairs:
                if offer is winner or leg.end_time < press:
                    continue
                # every other phone still on at the winning press stops within 1 s
                assert offer.state == OfferState.CANCELED.value
                assert leg.end_time - press <= STOP_WITHIN, sim.timeline()
            # the caller hears the winner: the winner's leg took them off the queue
            assert [d["by"] for d in sim.events_of("dequeue")
                    if d["sid"] == _caller_leg(sim, won_leg)] == [won_leg.sid]
        # nothing left ringing or reserved, and the auditor finds nothing to repair
        assert all(o.state != OfferState.RINGING.value for o in offers)
        assert [s.name for s in db.session.scalars(select(Supporter))
                if s.busy_with is not None] == []
        done = auditor.audit()
        # routine, not repairs: the texts sent are redacted at Twilio; an alert may be due
        # (supporters paused after missed offers)
        done.pop("redacted"), done.pop("alerts")
        assert not any(done.values()), done
    return legs


def _offer_over(sim, leg) -> float:
    """When the offer on ``leg`` stopped waiting for its supporter: their first input (a
    key, or the gather's silence), else the end of the call."""
    return min([t for t, kind, d in sim.events if kind == "input" and d["sid"] == leg.sid]
               + [leg.end_time])


def _caller_leg(sim, won_leg):
    """The caller's leg the winner's <Dial><Queue> took."""
    return next(d["sid"] for d in sim.events_of("dequeue") if d["by"] == won_leg.sid)


def test_two_ring_together_and_the_first_to_press_1_wins(ring_two):
    first = ring_two.supporter("First", ring=Answer(2))
    second = ring_two.supporter("Second", ring=Answer(12))
    third = ring_two.supporter("Third")
    clinician = ring_two.clinician(gather=["1"])
    ring_two.call(clinician)
    ring_two.run()
    assert ring_two.offers() == [("First", "accepted", 1), ("Second", "canceled", 1)]
    [a], [b] = ring_two.legs_to(first), ring_two.legs_to(second)
    assert a.created_at == b.created_at  # rung together
    assert b.answer_time is None and b.status == "canceled"  # stopped while ringing
    assert ring_two.legs_to(third) == []
    assert ring_two.contacts()[0].outcome == "connected"
    assert a.bridged_to is None and heard(first, "Connecting you now")
    check_safety(ring_two)


def test_a_pass_or_a_ring_out_is_replaced_by_the_next_in_turn(ring_two):
    """Round-robin order kept; never more than two ring; the one still ringing when the
    next in turn accepts is stopped."""
    slow = ring_two.supporter("Slow", ring=NoAnswer())
    ring_two.supporter("Passes", ring=Answer(2), gather=[Press("2", after=8)])
    ring_two.supporter("Misses", ring=NoAnswer())
    ring_two.supporter("Takes", ring=Answer(3))
    ring_two.call(ring_two.clinician(gather=["1"]))
    ring_two.run()
    assert ring_two.offers() == [("Slow", "no_answer", 1), ("Passes", "declined", 1),
                                 ("Misses", "canceled", 1), ("Takes", "accepted", 1)]
    legs = check_safety(ring_two)
    [pairs] = legs.values()
    assert pairs[0][1].created_at == pairs[1][1].created_at  # the first two together
    [slow_leg] = ring_two.legs_to(slow)
    assert slow_leg.end_time - slow_leg.created_at == pytest.approx(20, abs=1)  # rang out


def test_two_pressing_1_at_the_same_moment_one_wins_the_other_is_told(ring_two):
    ada = ring_two.supporter("Ada", ring=Answer(2), gather=[Press("1", after=3)])
    bo = ring_two.supporter("Bo", ring=Answer(2), gather=[Press("1", after=3)])
    ring_two.call(ring_two.clinician(gather=["1"]))
    ring_two.run()
    [a], [b] = ring_two.legs_to(ada), ring_two.legs_to(bo)
    presses = [t for t, kind, d in ring_two.sim.events
               if kind == "input" and d["sid"] in (a.sid, b.sid)]
    assert len(presses) == 2 and presses[0] == presses[1]  # the same virtual moment
    states = sorted(state for _, state, _ in ring_two.offers())
    assert states == ["accepted", "canceled"]
    loser = bo if ring_two.offers()[0][1] == "accepted" else ada
    assert heard(loser, TAKEN)
    check_safety(ring_two)


def test_a_voicemail_that_answers_but_never_presses_1_never_wins(ring_two):
    """Voicemail picks up first and stays silent: the peer who presses 1 later wins, and
    the voicemail's leg is hung up; silence alone never connects anyone."""
    voicemail = ring_two.supporter("Voicemail", ring=Answer(1), gather=[])
    ring_two.supporter("Peer", ring=Answer(6))
    ring_two.call(ring_two.clinician(gather=["1"]))
    ring_two.run()
    assert ring_two.offers() == [("Voicemail", "canceled", 1), ("Peer", "accepted", 1)]
    assert not heard(voicemail, "Connecting you now")
    check_safety(ring_two)


def test_only_voicemails_never_connect(ring_two):
    for name in ("Box1", "Box2", "Box3"):
        ring_two.supporter(name, ring=Answer(1), gather=[])
    clinician = ring_two.clinician(gather=["1", "2"])  # then asks for a callback
    ring_two.call(clinician)
    ring_two.run()
    offers = ring_two.offers()
    assert offers[:3] == [("Box1", "declined", 1), ("Box2", "declined", 1),
                          ("Box3", "declined", 1)]  # silence: passed on
    assert {state for _, state, _ in offers} == {"declined"}  # the callback's try too
    contact = ring_two.contacts()[0]  # (a callback request makes a contact per try)
    assert contact.outcome == "callback_requested"
    assert all(c.supporter_id is None for c in ring_two.contacts())
    assert heard(clinician, "no peer supporter is free right now")
    check_safety(ring_two)


def test_two_callers_ringing_overlapping_supporters_never_share_one(ring_two):
    """Two callers at once, three peers: the first rings two, the second the one left;
    a peer who passes is not rung for anyone while their goodbye plays, and each caller
    ends with a different peer."""
    ring_two.supporter("Ada", ring=Answer(2), gather=["2", "1"])
    ring_two.supporter("Bo", ring=Answer(9))
    ring_two.supporter("Cy", ring=Answer(9))
    ring_two.supporter("Di", ring=Undecided())
    ring_two.call(ring_two.clinician("+16175550123", gather=["1"]))
    ring_two.call(ring_two.clinician("+16175550124", gather=["1"]), after=0.5)
    ring_two.run()
    contacts = ring_two.contacts()
    assert [c.outcome for c in contacts] == ["connected", "connected"]
    assert len({c.supporter_id for c in contacts}) == 2
    check_safety(ring_two)


# Stopping the other phones: first in the queue, and before their supporter is free

def test_stopping_the_other_phones_jumps_the_queue(app):
    """The job that stops the other phones after an accept goes ahead of the routing
    work already queued (before: behind it, while the phones kept ringing)."""
    effects.apply([effects.route(contact_id, 1) for contact_id in (7, 8, 9)])
    effects.apply([effects.cancel_offers(1, 2)])
    queued = Queue("hotline", connection=jobs.queue.connection).jobs
    assert [(j.func_name, j.args) for j in queued][0] == ("workers.offer.cancel_offers", (1, 2))


def test_a_ringing_phone_stops_before_its_supporter_is_free_again(twilio, session,
                                                                   make_supporter, monkeypatch):
    """Before: the supporter was freed first, then freed once the cancel was sent; either
    way another contact's routing could ring them while this call still rang (two calls on
    one phone). They are free once the leg's status callback says it has ended."""
    seen = []

    def end_call(cfg, sid, answered):
        seen.append((sid, session.scalar(select(Supporter.busy_with).where(
            Supporter.id == bo.id))))
    monkeypatch.setattr(twilio_api, "end_call", end_call)
    make_supporter("Ada")
    bo = make_supporter("Bo")
    contact = waiting_contact(session)
    won, other = routing.offer_next(session, contact, 1, limit=2)
    won.call_sid, other.call_sid = "CA1", "CA2"
    session.commit()
    assert other.supporter_id == bo.id
    assert offer_jobs.cancel_offers(contact.id, won.id) == 1
    assert seen == [("CA2", other.token)]  # still reserved while its call is stopped
    session.refresh(other)
    assert other.state == OfferState.CANCELED.value
    assert session.scalar(select(Supporter.busy_with).where(Supporter.id == bo.id)) \
        == other.token  # the cancel is sent, the phone may still ring
    twilio.post(f"/twilio/voice/offer/{other.id}/status", {"CallStatus": "canceled"})
    db.session.expire_all()
    assert session.scalar(select(Supporter.busy_with).where(Supporter.id == bo.id)) is None


def test_with_redis_down_every_other_phone_is_still_stopped(app, session, make_supporter,
                                                           monkeypatch):
    """Each stopped call's safety net cannot be scheduled: the stop goes on to the next
    phone regardless (the auditor frees a supporter whose net and status were both lost)."""
    ended = []
    monkeypatch.setattr(twilio_api, "end_call", lambda cfg, sid, answered: ended.append(sid))

    def redis_down(*args, **kwargs):
        raise ConnectionError("Redis is down")
    monkeypatch.setattr(jobs, "enqueue_in", redis_down)
    make_supporter("Ada"), make_supporter("Bo"), make_supporter("Cy")
    contact = waiting_contact(session)
    won, *others = routing.offer_next(session, contact, 1, limit=3)
    for n, offer in enumerate((won, *others), 1):
        offer.call_sid = f"CA{n}"
    session.commit()
    assert offer_jobs.cancel_offers(contact.id, won.id) == 2
    assert ended == ["CA2", "CA3"]
    for offer in others:
        session.refresh(offer)
        assert offer.state == OfferState.CANCELED.value
        assert offer.supporter.busy_with == offer.token  # until the status callback


# The auditor

def test_phones_left_ringing_after_an_accept_are_stopped_by_the_auditor(twilio, session,
                                                                          make_supporter,
                                                                          monkeypatch):
    """The job that stops the other phones was lost (Redis hiccup): the auditor stops them
    at its next pass (before: they rang on, and were expired only 2.5 minutes on)."""
    ended = []
    monkeypatch.setattr(twilio_api, "end_call", lambda cfg, sid, answered: ended.append(sid))
    make_supporter("Ada"), make_supporter("Bo"), make_supporter("Cy")
    long_ago = utcnow() - timedelta(minutes=2)
    contact = waiting_contact(session)
    won, other = routing.offer_next(session, contact, 1, limit=2)
    won.call_sid, other.call_sid = "CA1", "CA2"
    won.created_at = other.created_at = long_ago
    session.commit()
    assert contacts.connect(session, contact, 1, won.supporter_id, 1)
    routing.accept_offer(session, won)
    contact.connected_at = long_ago
    fresh = waiting_contact(session)
    [just_now] = routing.offer_next(session, fresh, 1)  # Cy, for a contact still waiting
    session.commit()
    assert auditor.audit()["offers"] == 1
    assert ended == ["CA2"]
    session.refresh(other)
    assert other.state == OfferState.CANCELED.value
    assert session.get(Supporter, other.supporter_id).busy_with == other.token  # stopping
    twilio.post(f"/twilio/voice/offer/{other.id}/status", {"CallStatus": "canceled"})
    db.session.expire_all()
    assert session.get(Supporter, other.supporter_id).busy_with is None
    assert auditor.audit()["offers"] == 0
    session.refresh(just_now)
    assert just_now.state == OfferState.RINGING.value  # its contact still waits for it


def test_a_contact_whose_routing_job_was_lost_is_rerouted_two_at_once(app_settings, tmp_path,
                                                                        request, monkeypatch):
    app_settings.update(IVR_FLOWS_DIR=str(flows_with(tmp_path, at_once(2))))
    session, make_supporter = (request.getfixturevalue(name) for name in
                               ("session", "make_supporter"))
    monkeypatch.setattr(twilio_api, "create_call", lambda cfg, call: f"CA{call.to[-4:]}")
    for name in ("Ada", "Bo", "Cy"):
        make_supporter(name)
    contact = waiting_contact(session)
    contact.queued_at = utcnow() - timedelta(minutes=5)
    session.commit()
    assert auditor.audit()["rerouted"] == 1
    request.getfixturevalue("worker")()
    session.expire_all()
    rung = session.scalars(select(Offer).where(Offer.contact_id == contact.id)).all()
    assert sorted(o.supporter.name for o in rung) == ["Ada", "Bo"]
    assert {o.state for o in rung} == {OfferState.RINGING.value}


def test_a_text_request_offered_to_two_goes_to_one_the_other_is_told(ring_two):
    """Both reply YES at the same virtual moment: one conversation, the other told it was
    taken; neither holds two contacts."""
    peers = [ring_two.supporter(name, phone_class=TextingPhone, replies=[("Reply YES", "YES")])
             for name in ("Ada", "Bo")]
    clinician(ring_two, "+16175550171", replies=[("Reply 1", "2")]).text("hello")
    ring_two.run(600)
    offers = ring_two.offers()
    assert sorted(state for _, state, _ in offers) == ["accepted", "canceled"]
    winner = next(name for name, state, _ in offers if state == "accepted")
    loser = peers[0] if winner == "Bo" else peers[1]
    assert any("another supporter has taken this request" in b for b in loser.received())
    [contact] = ring_two.contacts()
    assert contact.state == "connected"
    assert ring_two.busy() == [winner]


def test_a_backup_who_accepts_stops_both_peers_still_ringing(app_settings, tmp_path, request):
    """Past the backup time the tier-2 step rings too, while two peers still ring; the
    backup's press stops both peers' phones at once."""
    ring_two = hotline_with(app_settings, tmp_path, request, at_once(2),
                            _set(("steps", 1, "after_seconds"), 25))
    for i in range(6):  # enough to keep two ringing until the backup time (25 s queued)
        ring_two.supporter(f"Peer{i}", ring=NoAnswer())
    ring_two.supporter("Backup", tier=2, ring=Answer(2))
    ring_two.call(ring_two.clinician(gather=["1"]))
    ring_two.run()
    offers = ring_two.offers()
    assert ("Backup", "accepted", 2) in offers
    assert sum(state == "canceled" for _, state, tier in offers if tier == 1) == 2
    assert ring_two.contacts()[0].outcome == "connected_backup"
    check_safety(ring_two)


def test_a_caller_who_hangs_up_stops_both_phones_within_a_second(ring_two):
    ada = ring_two.supporter("Ada", ring=Undecided())
    bo = ring_two.supporter("Bo", ring=Answer(5), gather=[Press("1", after=30)])
    legs = ring_two.call(ring_two.clinician(gather=["1"]))
    ring_two.sim.schedule(45, lambda: ring_two.sim.hangup(legs[0].sid))
    ring_two.run()
    [caller] = legs
    assert caller.end_time == pytest.approx(45)
    [a], [b] = ring_two.legs_to(ada), ring_two.legs_to(bo)
    assert a.created_at == b.created_at < 40  # both rang when the caller left
    assert b.answer_time is not None and b.answer_time < 45  # Bo was hearing the offer
    for leg in (a, b):
        assert 0 <= leg.end_time - caller.end_time <= STOP_WITHIN
    assert {state for _, state, _ in ring_two.offers()} == {"canceled"}
    assert ring_two.contacts()[0].outcome == "abandoned"
    check_safety(ring_two)


def test_a_press_after_the_acceptance_window_never_wins(ring_two):
    """The window to press 1 (accept_seconds, 15 s) is the same with two ringing: a
    supporter too slow to press is passed over, and the next in turn takes the call."""
    late = ring_two.supporter("Late", ring=Answer(1), gather=[Press("1", after=25)])
    ring_two.supporter("Slow", ring=NoAnswer())
    ring_two.supporter("Next", ring=Answer(2))
    ring_two.call(ring_two.clinician(gather=["1"]))
    ring_two.run()
    assert ring_two.offers() == [("Late", "declined", 1), ("Slow", "no_answer", 1),
                                 ("Next", "accepted", 1)]
    [leg] = ring_two.legs_to(late)
    assert leg.digits_sent == [] and not heard(late, "Connecting you now")
    check_safety(ring_two)


def test_a_call_placed_while_its_contact_was_taken_is_stopped_at_once(app, session,
                                                                        make_supporter,
                                                                        monkeypatch):
    """Another supporter accepts (and the other phones are stopped) while routing is still
    placing a call: that call had no sid to stop yet. Routing stops it as soon as it is
    placed, and offers nobody else (before: it rang on for the whole ring time)."""
    ended, placed = [], []
    monkeypatch.setattr(twilio_api, "end_call", lambda cfg, sid, answered: ended.append(sid))

    def create_call(cfg, call):  # meanwhile, elsewhere: taken, and its offers canceled
        db.session.execute(update(Offer).values(state=OfferState.CANCELED.value))
        db.session.execute(update(Contact).values(state="connected"))
        db.session.commit()
        placed.append(call.to)
        return f"CA{len(placed):032d}"
    monkeypatch.setattr(twilio_api, "create_call", create_call)
    ada, _, _ = (make_supporter("Ada"), make_supporter("Bo"),
                 make_supporter("Backup", tier=2))
    contact = waiting_contact(session)
    assert runner.step(contact.id, 1) == "stale"
    assert ended == [f"CA{1:032d}"]
    # Bo, picked with Ada (two ring at once by default), was never called: his offer closed
    # before his turn to be dialled came; and nobody was offered the contact after that.
    assert placed == [ada.phone]
    assert sorted(o.supporter.name for o in session.scalars(select(Offer))) == ["Ada", "Bo"]
    session.refresh(contact)
    assert not contact.escalated and not contact.exhausted
    # Ada stays reserved until the stopped call's status callback says it has ended; Bo,
    # never called, is freed by routing as it skips him
    held = {o.supporter.name: o.token for o in session.scalars(select(Offer))}
    assert {s.name: s.busy_with for s in session.scalars(select(Supporter))} == {
        "Ada": held["Ada"], "Bo": None, "Backup": None}


def test_a_contact_taken_while_its_offers_are_made_rings_no_phone(app, session,
                                                                  make_supporter,
                                                                  monkeypatch):
    """The contact is taken (and its stopping job runs, finding nothing to stop) after
    the step found it waiting but before its new offers were committed: before, both
    phones rang on for a caller already connected. Routing reads the contact again after
    that commit, so it places no call, and frees the supporters it reserved."""
    placed = []
    monkeypatch.setattr(twilio_api, "create_call",
                        lambda cfg, call: placed.append(call.to) or f"CA{len(placed):032d}")
    make_supporter("Ada"), make_supporter("Bo")
    contact = waiting_contact(session)
    offer_next = routing.offer_next

    def taken_meanwhile(session, contact, tier, **kwargs):
        db.session.execute(update(Contact).where(Contact.id == contact.id).values(
            state="connected"))
        db.session.commit()
        assert offer_jobs.cancel_offers(contact.id) == 0  # its offers are not there yet
        return offer_next(session, contact, tier, **kwargs)
    monkeypatch.setattr(routing, "offer_next", taken_meanwhile)
    runner.step(contact.id, 1)
    assert placed == []
    assert {o.state for o in session.scalars(select(Offer))} == {OfferState.CANCELED.value}
    assert [s.busy_with for s in session.scalars(select(Supporter))] == [None, None]


def test_a_contact_taken_while_its_call_is_placed_has_that_call_stopped(app, session,
                                                                         make_supporter,
                                                                         monkeypatch):
    """The same, a moment later: taken while Twilio places the call (the stopping job,
    having run before the offer was committed, found nothing): routing stops the call it
    just placed, as an answered one if the supporter picked up meanwhile, and keeps the
    supporter reserved until that call has ended."""
    ended = []
    monkeypatch.setattr(twilio_api, "end_call",
                        lambda cfg, sid, answered: ended.append((sid, answered)))
    ada = make_supporter("Ada")
    contact = waiting_contact(session)

    def create_call(cfg, call):
        db.session.execute(update(Contact).where(Contact.id == contact.id).values(
            state="connected"))
        db.session.execute(update(Offer).values(answered=True))  # Ada picks up at once
        db.session.commit()
        return "CA" + "1" * 32
    monkeypatch.setattr(twilio_api, "create_call", create_call)
    [offer] = routing.offer_next(session, contact, 1)
    assert runner._dial(offer, policy.current().ring_steps()[0]) is False
    assert ended == [("CA" + "1" * 32, True)]
    session.refresh(offer)
    session.refresh(ada)
    assert offer.state == OfferState.CANCELED.value and ada.busy_with == offer.token


def test_a_supporter_whose_call_is_being_placed_is_not_rung_for_another_contact(
        app, session, make_supporter, monkeypatch):
    """The contact is taken, and its offers canceled, while routing still waits for Twilio
    to place Ada's call (no sid to stop yet): before, that cancel freed her, the next
    contact's routing reserved her, and her phone got its call while this one still rang."""
    ended, taken = [], {}
    monkeypatch.setattr(twilio_api, "end_call", lambda cfg, sid, answered: ended.append(sid))
    ada = make_supporter("Ada")
    first, second = waiting_contact(session), waiting_contact(session)

    def create_call(cfg, call):  # meanwhile, in other workers
        db.session.execute(update(Contact).where(Contact.id == first.id).values(
            state="connected"))
        db.session.commit()
        assert runner.cancel_offers(first.id) == 1
        taken["second"] = routing.offer_next(session, session.get(Contact, second.id), 1)
        return "CA" + "1" * 32
    monkeypatch.setattr(twilio_api, "create_call", create_call)
    [offer] = routing.offer_next(session, first, 1)
    assert runner._dial(offer, policy.current().ring_steps()[0]) is False
    assert taken["second"] == []  # Ada is still reserved: nobody else rings her
    assert ended == ["CA" + "1" * 32]
    session.refresh(ada)
    assert ada.busy_with == offer.token


def test_a_call_placed_while_the_other_phones_are_stopped_is_stopped_too(app, session,
                                                                          make_supporter,
                                                                          monkeypatch):
    """The other side of the same race: the stopping job finds no call yet, and routing's
    sid lands while it closes the offer: the job stops the call it sees once the offer is
    closed (a sid landing after that is routing's to stop, as above), and holds its
    supporter until that call's status callback."""
    ended = []
    monkeypatch.setattr(twilio_api, "end_call", lambda cfg, sid, answered: ended.append(sid))
    close_offer = routing.close_offer

    def routing_lands_meanwhile(session, offer, state, keep=False):
        db.session.execute(update(Offer).where(Offer.id == offer.id).values(
            call_sid="CA" + "2" * 32))
        db.session.commit()
        return close_offer(session, offer, state, keep)
    monkeypatch.setattr(routing, "close_offer", routing_lands_meanwhile)
    make_supporter("Ada"), make_supporter("Bo")
    contact = waiting_contact(session)
    won, other = routing.offer_next(session, contact, 1, limit=2)
    won.call_sid = "CA" + "1" * 32
    session.commit()
    assert offer_jobs.cancel_offers(contact.id, won.id) == 1
    assert ended == ["CA" + "2" * 32]
    assert session.get(Supporter, other.supporter_id).busy_with == other.token


def test_a_phone_picked_up_while_it_is_stopped_is_hung_up_not_left_on(app, session,
                                                                       make_supporter,
                                                                       monkeypatch):
    """The other supporter picks up just as the stopping job closes their ringing offer:
    a cancel does not end a call already answered (Twilio's ``canceled`` only stops one
    queued or ringing), so the job reads the pick-up once the offer is closed and hangs it
    up. Before: it sent the cancel on the pick-up it had read before (none), freed the
    supporter, and left them on the line hearing "press 1" while free to be rung again.
    (A pick-up after the close is refused by ``routing.answer_offer``: the next test.)"""
    ended = []
    monkeypatch.setattr(twilio_api, "end_call",
                        lambda cfg, sid, answered: ended.append((sid, answered)))
    close_offer = routing.close_offer

    def picked_up_meanwhile(session, offer, state, keep=False):
        db.session.execute(update(Offer).where(Offer.id == offer.id).values(
            answered=True))  # their answer webhook commits just before the close
        db.session.commit()
        return close_offer(session, offer, state, keep)
    monkeypatch.setattr(routing, "close_offer", picked_up_meanwhile)
    make_supporter("Ada"), make_supporter("Bo")
    contact = waiting_contact(session)
    won, other = routing.offer_next(session, contact, 1, limit=2)
    won.call_sid, other.call_sid = "CA" + "1" * 32, "CA" + "2" * 32
    session.commit()
    assert offer_jobs.cancel_offers(contact.id, won.id) == 1
    # the cancel, then, the pick-up read after the close, hung up as an answered call is
    assert ended == [("CA" + "2" * 32, False), ("CA" + "2" * 32, True)]
    assert session.get(Supporter, other.supporter_id).busy_with == other.token


def test_a_pick_up_that_lands_after_its_offer_was_stopped_hears_it_is_taken(
        twilio, session, make_supporter, monkeypatch):
    """The other side of that race: the supporter's answer webhook read the offer still
    ringing, then the stopping job closed it (and freed them) before the pick-up was
    written. The pick-up is written only on an offer still ringing, so they hear the
    caller is taken and the call ends (before: "press 1", on a closed offer, while free)."""
    make_supporter("Ada"), make_supporter("Bo")
    contact = waiting_contact(session)
    won, other = routing.offer_next(session, contact, 1, limit=2)
    won.call_sid, other.call_sid = "CA" + "1" * 32, "CA" + "2" * 32
    session.commit()
    other_id, is_stale = other.id, routing.is_stale

    def stopped_meanwhile(contact, attempt):
        stale = is_stale(contact, attempt)
        with db.engine.begin() as conn:  # the stopping job, in another process
            conn.execute(update(Offer).where(Offer.id == other_id).values(
                state=OfferState.CANCELED.value))
            conn.execute(update(Supporter).where(Supporter.busy_with == token).values(
                busy_with=None))  # and freed its supporter
        return stale
    monkeypatch.setattr(routing, "is_stale", stopped_meanwhile)
    token = other.token
    doc = twiml(twilio.post(f"/twilio/voice/offer/{other_id}/answer",
                            {"CallStatus": "in-progress"}))
    assert doc.find("Gather") is None
    assert TAKEN in doc.find("Say").text and doc.find("Hangup") is not None
    # held again while that goodbye plays (before: free, and could be rung over it)
    assert session.scalar(select(Supporter.busy_with).where(
        Supporter.id == other.supporter_id)) == token


def test_a_text_offer_closed_before_its_turn_is_never_sent(app, session, make_supporter,
                                                           monkeypatch):
    """Two peers picked together for a text request; before the second's offer leaves,
    the first takes it (or the texter leaves) and the stopping job closes the second's
    offer and tells them it is taken. Their offer is then not sent after that goodbye
    (before: "taken", then "reply YES", a request already gone)."""
    sent = []
    ada, bo = make_supporter("Ada"), make_supporter("Bo")
    contact = waiting_contact(session)
    contact.mode = "text"
    session.commit()

    def send_text(to, body):
        sent.append(to)
        if len(sent) == 1:  # meanwhile, elsewhere: the contact was taken, Bo's offer closed
            db.session.execute(update(Offer).where(Offer.supporter_id == bo.id).values(
                state=OfferState.CANCELED.value))
            db.session.commit()
        return f"SM{len(sent):032d}"
    monkeypatch.setattr(outbound, "send_text", send_text)
    runner.step(contact.id, 1)
    assert sent == [ada.phone]


def test_a_text_offer_stopped_frees_its_supporter_at_once(app, session, make_supporter,
                                                          monkeypatch):
    """A text offer has no phone ringing on: its supporter is told it is taken and is free
    as the offer closes (only a voice supporter waits for their leg to end)."""
    told = []
    monkeypatch.setattr(outbound, "send_text", lambda to, body: told.append(to) or "SM1")
    make_supporter("Ada"), make_supporter("Bo")
    contact = waiting_contact(session)
    contact.mode = "text"
    session.commit()
    won, other = routing.offer_next(session, contact, 1, limit=2)
    assert offer_jobs.cancel_offers(contact.id, won.id) == 1
    session.refresh(other)
    assert other.state == OfferState.CANCELED.value and other.supporter.busy_with is None
    assert told == [other.supporter.phone]
