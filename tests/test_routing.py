"""Routing decisions: round-robin order, reservation, and two callers at the same moment."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from hotline.lifecycle import routing
from hotline.core.extensions import db, settings
from hotline.models import Contact, ContactState, Offer, Supporter


def waiting_contact(session, language="en") -> Contact:
    contact = Contact(caller_key="k" * 64, state=ContactState.WAITING.value, attempt=1,
                      language=language)
    session.add(contact)
    session.commit()
    return contact


def offer_one(session, tier=1):
    contact = waiting_contact(session)
    offers = routing.offer_next(session, contact, tier)
    return offers[0].supporter.name if offers else None


def test_round_robin_starts_after_the_supporter_offered_last(session, make_supporter):
    for name in ("A", "B", "C"):
        make_supporter(name)
    picked = []
    for _ in range(6):
        picked.append(offer_one(session))
        # free everyone again so only the rotation decides
        for s in session.scalars(select(Supporter)):
            s.busy_with = None
        session.commit()
    assert picked == ["A", "B", "C", "A", "B", "C"]


def test_busy_unavailable_inactive_and_other_tiers_are_skipped(session, make_supporter):
    make_supporter("off", available=False)
    gone = make_supporter("gone")
    gone.active = False
    make_supporter("backup", tier=2)
    make_supporter("free")
    session.commit()
    assert offer_one(session) == "free"
    assert offer_one(session) is None  # "free" is now reserved


def test_a_supporter_is_not_offered_the_same_attempt_twice(session, make_supporter):
    make_supporter("A")
    contact = waiting_contact(session)
    [offer] = routing.offer_next(session, contact, 1)
    assert routing.close_offer(session, offer, routing.OfferState.DECLINED)
    session.refresh(contact)
    assert routing.offer_next(session, contact, 1) == []


def test_callers_language_comes_first_but_never_excludes_everyone(session, make_supporter):
    make_supporter("english")
    make_supporter("bilingual", languages="en,es")
    spanish = waiting_contact(session, language="es")
    assert routing.offer_next(session, spanish, 1)[0].supporter.name == "bilingual"
    another = waiting_contact(session, language="es")
    assert routing.offer_next(session, another, 1)[0].supporter.name == "english"


def test_reservation_is_conditional(session, make_supporter):
    supporter = make_supporter()
    assert routing.reserve(session, supporter.id, "offer:1")
    assert not routing.reserve(session, supporter.id, "offer:2")
    assert not routing.release(session, supporter.id, "offer:2")  # a late release is a no-op
    assert routing.release(session, supporter.id, "offer:1")
    session.commit()


def test_ring_all_backup_reserves_every_free_backup(session, make_supporter):
    for name in ("B1", "B2", "B3"):
        make_supporter(name, tier=2)
    contact = waiting_contact(session)
    offers = routing.offer_next(session, contact, 2, limit=None)
    assert sorted(o.supporter.name for o in offers) == ["B1", "B2", "B3"]
    assert all(o.supporter.busy_with == o.token for o in offers)


def test_escalation_and_leaving_are_decided_by_queue_time(app, session):
    """The wait webhook's question, answered by the escalation runner from the policy
    (whose timings name the settings BACKUP_AFTER_SECONDS and MAX_WAIT_SECONDS)."""
    from hotline.escalation import runner
    cfg = settings()
    contact = waiting_contact(session)
    assert not runner.on_wait(session, contact, cfg.BACKUP_AFTER_SECONDS - 1)
    assert not contact.escalated
    assert not runner.on_wait(session, contact, cfg.BACKUP_AFTER_SECONDS)
    assert contact.escalated  # the second step's time has come
    assert not runner.on_wait(session, contact, cfg.MAX_WAIT_SECONDS - 1)
    assert runner.on_wait(session, contact, cfg.MAX_WAIT_SECONDS)
    contact.exhausted = True
    assert runner.on_wait(session, contact, 0)


def test_stale_attempts_do_nothing():
    contact = Contact(attempt=2, state=ContactState.WAITING.value)
    assert routing.is_stale(contact, 1)
    assert not routing.is_stale(contact, 2)
    contact.state = ContactState.ENDED.value
    assert routing.is_stale(contact, 2)
    assert routing.is_stale(None, 1)


def test_many_callers_at_once_never_share_a_supporter(session, make_supporter):
    """40 contacts routed by 8 threads at the same moment over 12 supporters."""
    for i in range(12):
        make_supporter(f"S{i}")
    contacts = [waiting_contact(session).id for _ in range(40)]
    factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    barrier = threading.Barrier(8)
    results: list[int] = []
    errors: list[BaseException] = []

    def work(ids: list[int]) -> None:
        own = factory()
        try:
            barrier.wait()
            for contact_id in ids:
                contact = own.get(Contact, contact_id)
                results.extend(o.supporter_id for o in routing.offer_next(own, contact, 1))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=work, args=(contacts[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 12 and len(set(results)) == 12
    held = Counter(s.busy_with for s in session.scalars(select(Supporter)))
    assert all(count == 1 for count in held.values())
    offers = session.scalars(select(Offer)).all()
    assert sorted(o.supporter_id for o in offers) == sorted(results)
