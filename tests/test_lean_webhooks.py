"""Leaner webhooks (issue 20, part 3): the same effects with fewer round trips.

Each test pins one saving by what reaches the database or Redis (statements, round trips),
never by time, and checks the effect is still the same.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from flask import Response
from redis.client import Pipeline, Redis
from rq.job import Job
from sqlalchemy import event, select
from sqlalchemy.orm.bulk_persistence import _BulkORMUpdate

from hotline.core.extensions import db, jobs
from hotline.dashboard import access
from hotline.lifecycle import contacts, transitions
from hotline.models import InboundMessage, MessageSid
from hotline.telephony import message_records
from hotline.models import Contact, ContactEvent, ContactState
from tests.conftest import twiml
from tests.scenario import call, only_contact, press


@contextmanager
def autocommitted():
    """(first words, sent outside a transaction?) of each SQL statement the app sends
    meanwhile from this thread."""
    sent: list[tuple[str, bool]] = []
    me = threading.get_ident()

    def record(conn, _cursor, statement, *_args) -> None:
        if threading.get_ident() == me:
            sent.append((" ".join(statement.split()[:4]).upper(),
                         conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


@contextmanager
def statements():
    """The SQL statements the app sends meanwhile from this thread (the test client runs
    the app in it; not the alert check a webhook may start after answering), first words
    upper case."""
    sent: list[str] = []
    me = threading.get_ident()

    def record(_conn, _cursor, statement, *_args) -> None:
        if threading.get_ident() == me:
            sent.append(" ".join(statement.split()[:4]).upper())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def _queued_then_hung_up(twilio, session) -> Contact:
    call(twilio)
    contact = only_contact(session)
    doc = twiml(press(twilio, contact.id, digits="1"))
    assert doc.find("Enqueue") is not None
    return contact


def _hang_up(twilio, contact_id: int):
    return twilio.post(f"/twilio/voice/{contact_id}/queue-exit",
                       {"QueueResult": "hangup", "CallStatus": "completed"})


def test_incoming_call_inserts_its_contact_without_looking_first(twilio, session):
    with statements() as sent:
        call(twilio)
    on_contacts = [s for s in sent if s.startswith(("SELECT CONTACTS.", "INSERT INTO CONTACTS "))]
    assert on_contacts and on_contacts[0].startswith("INSERT INTO CONTACTS"), sent
    contact = only_contact(session)
    assert contact.state == "menu" and contact.sealed_number
    kinds = session.scalars(select(ContactEvent.kind).where(
        ContactEvent.contact_id == contact.id)).all()
    assert kinds == ["started"]
    call(twilio)  # the same CallSid again (no idempotency token): the same contact
    assert len(session.scalars(select(Contact)).all()) == 1


def test_hang_up_sets_the_outcome_and_forgets_the_number_in_one_update(twilio, session):
    contact = _queued_then_hung_up(twilio, session)
    with statements() as sent:
        assert _hang_up(twilio, contact.id).status_code == 200
    assert sum(s.startswith("UPDATE CONTACTS") for s in sent) == 1, sent
    session.refresh(contact)
    assert contact.outcome == "abandoned" and contact.state == "ended"
    assert contact.sealed_number is None


def test_status_callback_of_an_ended_call_writes_nothing(twilio, session):
    contact = _queued_then_hung_up(twilio, session)
    _hang_up(twilio, contact.id)
    session.refresh(contact)
    ended_at = contact.ended_at
    with statements() as sent:
        response = twilio.post("/twilio/voice/status",
                               {"CallSid": contact.call_sid, "CallStatus": "completed"})
    assert response.status_code == 200
    assert [s for s in sent if not s.startswith(("SELECT", "BEGIN", "ROLLBACK", "COMMIT"))
            ] == [], sent
    session.refresh(contact)
    assert contact.state == "ended" and contact.ended_at == ended_at


def test_status_callback_still_ends_a_connected_call(twilio, session):
    call(twilio)
    contact = only_contact(session)
    contact.state, contact.outcome = "connected", "connected"
    session.commit()
    twilio.post("/twilio/voice/status", {"CallSid": contact.call_sid, "CallStatus": "completed"})
    session.refresh(contact)
    assert contact.state == "ended" and contact.ended_at is not None


def test_a_job_is_enqueued_in_one_round_trip_to_redis(app, monkeypatch):
    trips: list[str] = []
    execute, command = Pipeline.execute, Redis.execute_command

    def pipeline_execute(self, *args, **kwargs):
        trips.append("pipeline " + " ".join(str(c[0][0]) for c in self.command_stack))
        return execute(self, *args, **kwargs)

    def single(self, *args, **kwargs):
        if not isinstance(self, Pipeline):
            trips.append(str(args[0]))
        return command(self, *args, **kwargs)

    with app.app_context():
        jobs.queue  # noqa: B018 - connected (and RQ's server version asked) before counting
        jobs.queue.get_redis_server_version()
        monkeypatch.setattr(Pipeline, "execute", pipeline_execute)
        monkeypatch.setattr(Redis, "execute_command", single)
        job = jobs.enqueue("workers.offer.route", 7, 1)
        monkeypatch.undo()
        assert len(trips) == 1, trips
        assert Job.fetch(job.id, connection=jobs.queue.connection).args == (7, 1)
        assert job.id in jobs.queue.job_ids
        assert jobs.queue.key.encode() in jobs.queue.connection.smembers("rq:queues")


def test_security_headers_on_a_webhook_and_what_a_view_set_stays(app, twilio):
    response = call(twilio)
    for name, value in access.SECURITY_HEADERS:
        assert response.headers[name] == value
    assert "Cache-Control" not in response.headers
    with app.test_request_context("/"):
        answer = Response("x", headers={"X-Frame-Options": "SAMEORIGIN"})
        access.security_headers(answer)
        assert answer.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
        assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_a_webhook_without_a_session_cookie_builds_no_cookie_signer(app, twilio, monkeypatch):
    def refuse(_app):
        raise AssertionError("a signer was built for a request without a session cookie")

    monkeypatch.setattr(app.session_interface, "get_signing_serializer", refuse)
    response = call(twilio)
    assert response.status_code == 200 and twiml(response).find("Gather") is not None
    assert "Set-Cookie" not in response.headers


def _poll(twilio, contact: Contact, seconds: int):
    return twilio.post(f"/twilio/voice/{contact.id}/wait",
                       {"QueueTime": seconds, "CallSid": contact.call_sid})


def test_a_wait_poll_that_changes_nothing_is_one_select_outside_a_transaction(
        twilio, session):
    call(twilio)
    contact = only_contact(session)
    press(twilio, contact.id, digits="1")
    with autocommitted() as sent:
        doc = twiml(_poll(twilio, contact, 8))
    assert doc.find("Pause") is not None and doc.find("Leave") is None
    # one SELECT, no BEGIN before it nor ROLLBACK after it (autocommit), not the ORM's
    # whole row (it starts "SELECT CONTACTS.ID, CONTACTS.CALL_SID").
    assert sent == [("SELECT CONTACTS.ID, CONTACTS.STATE, CONTACTS.ATTEMPT,", True)], sent


def test_a_wait_poll_still_escalates_once_and_leaves_when_exhausted(twilio, session):
    call(twilio)
    contact = only_contact(session)
    press(twilio, contact.id, digits="1")
    twiml(_poll(twilio, contact, 90))  # the second step's time: escalated, in the database
    session.refresh(contact)
    assert contact.escalated
    kinds = session.scalars(select(ContactEvent.kind).where(
        ContactEvent.contact_id == contact.id, ContactEvent.kind == "escalated")).all()
    twiml(_poll(twilio, contact, 98))
    assert session.scalars(select(ContactEvent.kind).where(
        ContactEvent.contact_id == contact.id, ContactEvent.kind == "escalated")).all() == kinds
    contact.exhausted = True
    session.commit()
    assert twiml(_poll(twilio, contact, 99)).find("Leave") is not None


@contextmanager
def commits():
    """The transactions the app commits meanwhile from this thread."""
    done: list[str] = []
    me = threading.get_ident()

    def record(_conn) -> None:
        if threading.get_ident() == me:
            done.append("COMMIT")

    event.listen(db.engine, "commit", record)
    try:
        yield done
    finally:
        event.remove(db.engine, "commit", record)


def _text(twilio, body: str, sid: str):
    return twilio.post("/twilio/sms", {"From": "+15551230001", "Body": body, "MessageSid": sid})


def test_a_text_and_its_record_commit_in_one_transaction(twilio, session):
    with commits() as done:
        assert _text(twilio, "hello", "SM" + "1" * 32).status_code == 200
    assert done == ["COMMIT"]
    with commits() as done:
        assert _text(twilio, "2", "SM" + "2" * 32).status_code == 200
    assert done == ["COMMIT"]
    contact = only_contact(session)
    assert contact.channel == "sms" and contact.state == "waiting"
    assert set(session.scalars(select(InboundMessage.message_sid))) == {
        "SM" + "1" * 32, "SM" + "2" * 32}
    with commits() as done:  # a repeat: nothing handled, nothing committed
        assert _text(twilio, "2", "SM" + "2" * 32).status_code == 200
    assert done == []
    session.refresh(contact)
    assert contact.attempt == 1


def test_a_text_whose_handler_fails_is_still_recorded_once(twilio, session, monkeypatch):
    def fails(*_args, **_kwargs):
        raise RuntimeError("the handler breaks")

    monkeypatch.setattr("hotline.text.conversations.handle", fails)
    assert _text(twilio, "hello", "SM" + "3" * 32).status_code == 200
    assert _text(twilio, "hello", "SM" + "3" * 32).status_code == 200
    assert session.scalars(select(InboundMessage.message_sid)).all() == ["SM" + "3" * 32]
    assert session.scalars(select(MessageSid.sid)).all() == ["SM" + "3" * 32]
    assert session.scalars(select(Contact)).all() == []


def test_filing_a_sid_builds_no_statement(app, session, monkeypatch):
    message_records.file_sid(session, "SM" + "4" * 32, message_records.INBOUND)

    def refuse(*_args):
        raise AssertionError("a statement built for a filing")

    monkeypatch.setattr(message_records, "insert_for", refuse)
    message_records.file_sid(session, "SM" + "5" * 32, message_records.OUTBOUND)
    message_records.file_sid(session, "SM" + "5" * 32, message_records.OUTBOUND)  # no-op
    session.commit()
    rows = session.execute(select(MessageSid.sid, MessageSid.direction, MessageSid.tries,
                                  MessageSid.redacted_at).order_by(MessageSid.sid)).all()
    assert [tuple(r) for r in rows] == [("SM" + "4" * 32, "inbound", 0, None),
                                        ("SM" + "5" * 32, "outbound", 0, None)]


def test_status_callback_of_an_ended_call_is_one_select_outside_a_transaction(
        twilio, session):
    contact = _queued_then_hung_up(twilio, session)
    _hang_up(twilio, contact.id)
    with autocommitted() as sent:
        response = twilio.post("/twilio/voice/status",
                               {"CallSid": contact.call_sid, "CallStatus": "completed"})
    assert response.status_code == 200
    assert sent == [("SELECT CONTACTS.ID, CONTACTS.STATE, CONTACTS.ATTEMPT,", True)], sent
    with autocommitted() as sent:  # an unknown call: the same one SELECT, nothing else
        twilio.post("/twilio/voice/status", {"CallSid": "CA" + "9" * 32,
                                             "CallStatus": "completed"})
    assert sent == [("SELECT CONTACTS.ID, CONTACTS.STATE, CONTACTS.ATTEMPT,", True)], sent


# --- the menu's "talk" and the queue exit on hang-up: the contact changed by id -----------

@contextmanager
def whole_statements():
    """The SQL statements the app sends meanwhile from this thread, whole."""
    sent: list[str] = []
    me = threading.get_ident()

    def record(_conn, _cursor, statement, *_args) -> None:
        if threading.get_ident() == me:
            sent.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def _returning(statement: str) -> list[str]:
    """The columns an UPDATE returns (SQLite writes them unqualified)."""
    return [c.strip().removeprefix("contacts.")
            for c in statement.split(" RETURNING ")[1].split(",")]


def _queued_jobs() -> list[tuple[str, tuple]]:
    return [(job.func_name, job.args) for job in jobs.queue.jobs]


def test_talk_from_the_menu_queues_in_one_update_without_reading_the_contact(twilio, session):
    call(twilio)
    contact = only_contact(session)
    session.close()  # the test client's requests share this session: none loaded in it
    with whole_statements() as sent:
        doc = twiml(press(twilio, contact.id, digits="1"))
    # no SELECT of the contact first: the queue's UPDATE returns what the answer says
    assert len(sent) == 2 and sent[0].startswith("UPDATE contacts SET"), sent
    assert sent[1].startswith("INSERT INTO contact_events"), sent
    assert _returning(sent[0]) == ["id", "channel", "language", "created_at",
                                   "attempt"], sent[0]
    enqueue = doc.find("Enqueue")
    assert enqueue.text == f"hotline-contact-{contact.id}"
    assert enqueue.get("action").endswith(f"/twilio/voice/{contact.id}/queue-exit")
    assert doc.find("Say").text  # said in the contact's language
    contact = session.get(Contact, contact.id)
    assert (contact.state, contact.attempt, contact.queued_at is not None) == ("waiting", 1, True)
    assert session.scalars(select(ContactEvent.kind).where(
        ContactEvent.contact_id == contact.id).order_by(ContactEvent.id)).all() == [
        "started", "queued"]
    assert _queued_jobs() == [("workers.offer.route", (contact.id, 1))]


def test_talk_from_the_menu_of_no_contact_writes_nothing(twilio, session):
    doc = twiml(press(twilio, 999, digits="1"))
    assert doc.find("Enqueue") is None and doc.find("Dial") is not None  # the safe answer
    assert session.scalars(select(ContactEvent)).all() == [] and _queued_jobs() == []


def test_hang_up_in_the_queue_is_one_update_without_reading_the_contact(twilio, session):
    contact_id = _queued_then_hung_up(twilio, session).id
    jobs.queue.empty()
    session.close()  # the test client's requests share this session: none loaded in it
    with whole_statements() as sent:
        assert _hang_up(twilio, contact_id).status_code == 200
    assert len(sent) == 2 and sent[0].startswith("UPDATE contacts SET"), sent
    assert sent[1].startswith("INSERT INTO contact_events"), sent
    assert _returning(sent[0]) == ["id", "channel", "language", "created_at",
                                   "attempt"], sent[0]
    assert _queued_jobs() == [("workers.offer.cancel_offers", (contact_id,))]
    contact = session.get(Contact, contact_id)
    assert (contact.outcome, contact.state, contact.sealed_number) == ("abandoned", "ended", None)
    session.close()
    # delivered again (a new idempotency token): the outcome's UPDATE does not match, nor
    # the number's (gone already); the contact is read only then (it exists: no error).
    # No second event, no second cancel.
    with whole_statements() as sent:
        assert twiml(_hang_up(twilio, contact_id)).find("Dial") is None
    assert [s.split(" ")[0] for s in sent] == ["UPDATE", "UPDATE", "SELECT"], sent
    assert session.scalars(select(ContactEvent.kind).where(
        ContactEvent.contact_id == contact_id, ContactEvent.kind == "abandoned")).all() == [
        "abandoned"]
    assert _queued_jobs() == [("workers.offer.cancel_offers", (contact_id,))]


def test_hang_up_of_no_contact_gets_the_safe_answer_as_before(twilio, session):
    assert twiml(_hang_up(twilio, 999)).find("Dial") is not None  # to_caller, as any view
    assert session.scalars(select(ContactEvent)).all() == [] and _queued_jobs() == []


def test_a_caller_hanging_up_as_a_supporter_connects_keeps_the_connection(
        twilio, session, make_supporter):
    """The supporter's conditional UPDATE won first: the hang-up sets no outcome, but the
    sealed number still goes (nothing more needs to reach the clinician)."""
    contact = _queued_then_hung_up(twilio, session)
    session.refresh(contact)
    assert contacts.connect(session, contact, contact.attempt, make_supporter("Ada").id, 1)
    session.commit()
    jobs.queue.empty()
    _hang_up(twilio, contact.id)
    session.expire_all()
    contact = session.get(Contact, contact.id)
    assert (contact.outcome, contact.state, contact.sealed_number) == (
        "connected", "connected", None)
    assert _queued_jobs() == []


def test_contact_state_changes_skip_the_orm_bulk_update(twilio, session, monkeypatch,
                                                        make_supporter):
    """Each conditional UPDATE is plain Core (on the table's columns): SQLAlchemy's ORM
    bulk-update path (its bookkeeping was a tenth of a webhook's CPU) is never taken."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("an UPDATE of a contact went through the ORM bulk path")

    monkeypatch.setattr(_BulkORMUpdate, "orm_execute_statement", refuse)
    contact = _queued_then_hung_up(twilio, session)  # queue (by id)
    session.refresh(contact)
    assert contacts.leave_queue(session, contact, ContactState.OPTIONS)  # a loaded contact
    assert transitions.request_peer(session, contact).contact is contact
    assert contacts.connect(session, contact, contact.attempt, make_supporter("Ada").id, 1)
    contacts.end(session, contact)
    session.commit()
    assert (contact.state, contact.outcome, contact.attempt) == ("ended", "connected", 4)
    call(twilio, sid="CA" + "b" * 32)
    other = session.scalar(select(Contact).where(Contact.call_sid == "CA" + "b" * 32))
    assert _hang_up(twilio, other.id).status_code == 200  # finish (by id)
    session.refresh(other)
    assert other.outcome == "abandoned"
