"""Leaner webhooks (issue 20, part 3): the same effects with fewer round trips.

Each test pins one saving by what reaches the database or Redis (statements, round trips),
never by time, and checks the effect is still the same.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from flask import Response, current_app
from redis.client import Pipeline, Redis
from rq.job import Job
from sqlalchemy import bindparam, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from sqlalchemy.orm.bulk_persistence import _BulkORMUpdate

from hotline.core.extensions import db, jobs, redis_conn, settings
from hotline.privacy import primitives as privacy
from hotline.dashboard import access
from hotline.escalation import matching, runner
from hotline.escalation import policy as policies
from hotline.monitoring import counters
from hotline.lifecycle import contacts, transitions
from hotline.models import InboundMessage, MessageSid, OptOut, StatsDay, utcnow
from hotline.telephony import message_records, signature
from hotline.telephony import twiml as twiml_module
from hotline.telephony.twiml import flows, respond, said_then_paused
from hotline.telephony.twiml import speak as twiml_speak
from hotline.voice import views
from hotline.models import Contact, ContactEvent, ContactState
from tests.conftest import PUBLIC_BASE_URL, twiml
from tests.scenario import CALLER, call, only_contact, press


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
    assert sent and sent[0].startswith(("INSERT INTO CONTACTS", "WITH CHANGED AS (INSERT")), sent
    contact = only_contact(session)
    assert contact.state == "menu" and contact.sealed_number
    kinds = session.scalars(select(ContactEvent.kind).where(
        ContactEvent.contact_id == contact.id)).all()
    assert kinds == ["started"]
    call(twilio)  # the same CallSid again (no idempotency token): the same contact
    assert len(session.scalars(select(Contact)).all()) == 1


def test_incoming_call_writes_its_contact_and_event_in_one_statement_on_postgresql(
        twilio, session):
    """PostgreSQL: the contact and its STARTED event in one INSERT ... (a WITH), returning
    only the contact's id and language, in autocommit (one round trip: no BEGIN, no
    COMMIT); SQLite (no INSERT in WITH): the two INSERTs in one transaction, the
    contact's returning the same two columns. Before: BEGIN, the contact's INSERT
    returning its 23 columns, the event's INSERT, COMMIT."""
    texts: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        texts.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with autocommitted() as sent, commits() as done:
            doc = twiml(call(twilio))
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    contact = only_contact(session)
    if session.get_bind().dialect.name == "postgresql":  # committed as it ends: no BEGIN
        assert sent == [("WITH CHANGED AS (INSERT", True)] and done == [], (sent, done)
        assert texts[0].endswith("SELECT changed.id, changed.language, changed.channel, "
                                 "changed.created_at FROM changed"), texts
    else:
        assert [s for s, _ in sent] == ["INSERT INTO CONTACTS (CHANNEL,",
                                        "INSERT INTO CONTACT_EVENTS (CONTACT_ID,"], sent
        assert texts[0].endswith("RETURNING id, language, channel, created_at"), texts
        assert done == ["COMMIT"]
    assert doc.find("Gather").get("action").endswith(f"/twilio/voice/{contact.id}/menu?turn=0")
    row = session.execute(select(Contact.channel, Contact.state, Contact.attempt,
                                 Contact.language, Contact.caller_verified,
                                 Contact.created_at)).one()
    assert tuple(row)[:5] == ("voice", "menu", 0, "en", False) and row.created_at
    events = session.execute(select(ContactEvent.kind, ContactEvent.channel, ContactEvent.tier,
                                    ContactEvent.outcome, ContactEvent.at)).all()
    assert [tuple(e)[:4] for e in events] == [("started", "voice", None, None)]
    assert events[0].at.second == 0 and events[0].at.microsecond == 0


def test_a_re_keyed_callers_new_contact_commits_with_their_rows_moved(app, twilio, session):
    """With two caller-key versions, a returning caller's rows move to the newest key in
    the incoming call's transaction: the contact and its event are written in that same
    transaction (not in autocommit beside it), so both commit or neither does."""
    old = "v1:Hq7mGk4jDf9sLr6pEa1N3uX8wBv5tCz2y"
    app.extensions["hotline.settings"] = settings().replace(CALLER_KEY_SECRET=old)
    earlier = Contact(channel="voice", caller_key=privacy.caller_key(CALLER, settings()),
                      state="ended", outcome="abandoned")
    session.add(earlier)
    session.commit()
    app.extensions["hotline.settings"] = settings().replace(
        CALLER_KEY_SECRET="v2:Zr2VxK9pLm4TnW8cYb3HdF6gJs1AeU5oRi," + old)
    with autocommitted() as sent, commits() as done:
        assert twiml(call(twilio)).find("Gather") is not None
    assert done == ["COMMIT"]
    assert not any(autocommit for first, autocommit in sent if "INSERT" in first), sent
    newest = privacy.caller_key(CALLER, settings())
    assert newest.startswith("v2:")
    session.expire_all()
    assert {c.caller_key for c in session.scalars(select(Contact))} == {newest}
    _one_contact_one_started(session, call_sid="CA" + "a" * 32)


def _redis_commands(monkeypatch) -> list[str]:
    """The Redis commands sent meanwhile, outside pipelines (names, upper case)."""
    sent: list[str] = []
    command = Redis.execute_command

    def record(self, *args, **kwargs):
        sent.append(str(args[0]).upper())
        return command(self, *args, **kwargs)

    monkeypatch.setattr(Redis, "execute_command", record)
    return sent


def _delivery(twilio, sid: str = "CA" + "b" * 32, token: str = "incoming-retry-token"):
    """An incoming call's delivery as Twilio retries it: the same token, the same CallSid."""
    params = {"CallSid": sid, "From": CALLER, "To": "+16175550100", "CallStatus": "ringing"}
    headers = {"X-Twilio-Signature": twilio.validator.compute_signature(
        PUBLIC_BASE_URL + "/twilio/voice", params), "I-Twilio-Idempotency-Token": token}
    return lambda client=twilio.client: client.post("/twilio/voice", data=params,
                                                    headers=headers)


def _one_contact_one_started(session, call_sid: str | None = None) -> None:
    contact = (only_contact(session) if call_sid is None else session.scalars(
        select(Contact).where(Contact.call_sid == call_sid)).one())
    assert session.scalars(select(ContactEvent.kind).where(
        ContactEvent.contact_id == contact.id)).all() == ["started"]


def test_incoming_call_keeps_no_answer_in_redis_its_repeat_gets_the_same(
        twilio, session, monkeypatch):
    """The incoming call is deduplicated by its CallSid in the database (marked
    ``deduplicated_by``), like a text by its MessageSid: no GET, no SET of the token in
    Redis; a retried delivery still writes nothing and gets the same bytes. Before: a
    GET and a SET per delivery."""
    deliver = _delivery(twilio)
    sent = _redis_commands(monkeypatch)
    first = deliver()
    assert [c for c in sent if c in ("GET", "SET")] == [], sent
    again = deliver()
    monkeypatch.undo()
    assert first.status_code == again.status_code == 200
    assert first.data == again.data and twiml(first).find("Gather") is not None
    _one_contact_one_started(session)
    assert not redis_conn.client.keys("hotline:idem:*")


def _both_at_once(app, deliver) -> list:
    """``deliver(client)`` from two threads released together; their two answers."""
    start, answers = threading.Barrier(2, timeout=20), [None, None]

    def post(n: int) -> None:
        client = app.test_client()
        start.wait()
        answers[n] = deliver(client)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_incoming_call_delivered_twice_at_once_has_one_effect_and_one_answer(
        app, twilio, session):
    answers = _both_at_once(app, _delivery(twilio, sid="CA" + "c" * 32))
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].data == answers[1].data and twiml(answers[0]).find("Gather") is not None
    _one_contact_one_started(session)


def test_other_voice_webhooks_still_keep_their_first_answer(twilio, session):
    """The marker is per view: the menu (not marked) still answers a repeat from Redis."""
    call(twilio)
    contact = only_contact(session)
    assert not redis_conn.client.keys("hotline:idem:*")
    params = {"CallSid": contact.call_sid, "Digits": "1"}
    path = f"/twilio/voice/{contact.id}/menu"
    headers = {"X-Twilio-Signature": twilio.validator.compute_signature(
        PUBLIC_BASE_URL + path, params), "I-Twilio-Idempotency-Token": "menu-token"}
    first = twilio.client.post(path, data=params, headers=headers)
    assert redis_conn.client.get("hotline:idem:menu-token") == first.data


def test_hang_up_sets_the_outcome_and_forgets_the_number_in_one_update(twilio, session):
    contact = _queued_then_hung_up(twilio, session)
    with statements() as sent:
        assert _hang_up(twilio, contact.id).status_code == 200
    assert sum(s.startswith(CHANGE_CONTACT) for s in sent) == 1, sent
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


def _wait_answer_built(language: str, words: str, seconds: int) -> Response:
    """The wait poll's usual answer as the view built it per poll (before it was kept)."""
    from twilio.twiml.voice_response import VoiceResponse
    doc = VoiceResponse()
    twiml_speak(doc, language, words)
    doc.pause(length=seconds)
    return respond(doc)


def test_the_wait_answer_kept_is_the_one_built_per_poll(app):
    """Every language, every loop's words: the document kept is byte for byte the one
    built for each poll."""
    with app.test_request_context("/twilio/voice/1/wait", method="POST"):
        pause = settings().WAIT_PAUSE_SECONDS
        for language in flows().languages:
            for loop in range(6):
                words = flows().wait_message(language, loop)
                assert said_then_paused(language, words, pause).data == _wait_answer_built(
                    language, words, pause).data
        assert len(current_app.extensions["hotline.said_then_paused"]) > 1


def test_a_wait_poll_builds_no_twiml_once_its_words_were_said(app, twilio, session,
                                                              monkeypatch):
    """A second caller who hears the same words gets the kept document: no TwiML is built.
    The words of the first loop of a caller who asked for a peer in their role are still
    built for them (they are told what they asked for)."""
    call(twilio)
    contact = only_contact(session)
    press(twilio, contact.id, digits="1")
    pause = settings().WAIT_PAUSE_SECONDS
    first = _poll(twilio, contact, 0)
    with app.test_request_context("/"):
        expected = _wait_answer_built(contact.language, flows().wait_message(
            contact.language, 0), pause).data
    assert first.data == expected

    def refuse(*_args, **_kwargs):
        raise AssertionError("TwiML built for words already kept")

    monkeypatch.setattr(views, "VoiceResponse", refuse)
    monkeypatch.setattr(twiml_module, "VoiceResponse", refuse)
    assert _poll(twilio, contact, 0).data == expected
    monkeypatch.undo()
    contact.match_role = "nurse"
    session.commit()
    monkeypatch.setattr(matching, "fall_back", lambda *_args: False)  # a nurse on duty
    doc = twiml(_poll(twilio, contact, 0))
    assert len(doc.findall("Say")) == 2 and doc.find("Pause") is not None


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


@contextmanager
def orm_statements():
    """Whether each statement the app's session executes meanwhile from this thread went
    through the ORM (an ORM-enabled statement: its compile plugin, bulk paths, objects)."""
    seen: list[bool] = []
    me = threading.get_ident()

    def record(state) -> None:
        if threading.get_ident() == me:
            seen.append(state.is_orm_statement)

    event.listen(Session, "do_orm_execute", record)
    try:
        yield seen
    finally:
        event.remove(Session, "do_orm_execute", record)


SENDER_READ = "SELECT SENDER.OPTED_OUT, SENDER.PHONE_SUPPORTER_ID, CONTACTS.ID,"
#: A contact's change, alone or (PostgreSQL) with its event in one statement.
CHANGE_CONTACT = ("UPDATE CONTACTS", "WITH CHANGED AS (UPDATE")


def started() -> list[str]:
    """A new contact and its STARTED event: one statement on PostgreSQL (the contact's
    INSERT in a WITH clause feeding the event's), the two INSERTs on SQLite."""
    if db.engine.dialect.name == "postgresql":
        return ["WITH CHANGED AS"]
    return ["INSERT INTO CONTACTS", "INSERT INTO CONTACT_EVENTS"]


def record() -> list[str]:
    """An incoming text's records (handled, and filed for redaction): one statement on
    PostgreSQL (the handled INSERT in a WITH clause), the two INSERTs on SQLite."""
    if db.engine.dialect.name == "postgresql":
        return ["WITH HANDLED AS (INSERT"]
    return ["INSERT INTO INBOUND_MESSAGES (MESSAGE_SID,", "INSERT INTO MESSAGE_SIDS (SID,"]


def test_a_first_text_reads_its_sender_in_one_select(twilio, session):
    with statements() as sent, orm_statements() as orm:
        assert twiml(_text(twilio, "hello", "SM" + "6" * 32)).findtext("Message")
    # was: SELECT opt_outs, SELECT supporters, SELECT contacts (open), SELECT contacts
    # (a check-in question waiting): four round trips, each through the ORM
    assert sent[:len(record()) + 1] == record() + [SENDER_READ], sent
    assert [s for s in sent if s.startswith("SELECT")] == [SENDER_READ], sent
    assert [s.split(" (")[0] for s in sent[len(record()) + 1:]] == started(), sent
    assert orm == [False] * len(sent), orm  # the sid filed as plain Core too
    contact = only_contact(session)
    assert contact.channel == "sms" and contact.state == "menu" and contact.sealed_number


def test_a_text_while_waiting_is_its_record_and_one_select(twilio, session):
    _text(twilio, "hello", "SM" + "7" * 32)
    _text(twilio, "2", "SM" + "8" * 32)
    contact = only_contact(session)
    assert contact.state == "waiting"
    with statements() as sent, orm_statements() as orm, commits() as done:
        doc = twiml(_text(twilio, "anyone there?", "SM" + "9" * 32))
    assert sent == record() + [SENDER_READ], sent
    assert orm == [False] * len(sent) and done == ["COMMIT"]
    assert doc.findtext("Message")  # still finding someone
    session.refresh(contact)
    assert contact.state == "waiting" and contact.attempt == 1


def test_a_menu_reply_changes_the_contact_it_read_without_reading_it_again(twilio, session):
    _text(twilio, "hello", "SM" + "a" * 32)
    with statements() as sent:
        _text(twilio, "2", "SM" + "b" * 32)
    assert [s for s in sent if s.startswith("SELECT")] == [SENDER_READ], sent
    assert sent[:len(record()) + 1] == record() + [SENDER_READ], sent
    assert sum(s.startswith(CHANGE_CONTACT) for s in sent) == 1, sent
    contact = only_contact(session)
    assert contact.state == "waiting" and contact.mode == "text" and contact.attempt == 1


def test_an_opted_out_sender_is_one_select_and_stop_still_comes_first(twilio, session):
    _text(twilio, "hello", "SM" + "c" * 32)
    assert "no more texts" in twiml(_text(twilio, "STOP", "SM" + "d" * 32)).findtext(
        "Message")
    with statements() as sent:
        assert twiml(_text(twilio, "2", "SM" + "e" * 32)).find("Message") is None
    assert sent == record() + [SENDER_READ], sent
    contact = only_contact(session)
    assert contact.state == "ended" and contact.outcome == "abandoned"
    assert contact.sealed_number is None
    # the opt-out is the sender's, not the contact's: START lifts it
    assert "Texts are back on" in twiml(_text(twilio, "start", "SM" + "f" * 32)).findtext(
        "Message")
    assert session.scalars(select(OptOut)).all() == []


def test_an_incoming_sid_is_recorded_and_filed_and_a_repeat_refused(app, session):
    filed_first = "SM" + "1" * 31 + "f"  # the auditor's listing filed it before it came
    message_records.file_sid(session, filed_first, message_records.INBOUND)
    session.commit()
    with statements() as sent:
        message_records.record_incoming(session, "SM" + "1" * 32)
    assert sent == record(), sent
    message_records.record_incoming(session, filed_first)  # the filing a no-op
    session.commit()
    assert set(session.scalars(select(InboundMessage.message_sid))) == {
        "SM" + "1" * 32, filed_first}
    rows = session.execute(select(MessageSid.sid, MessageSid.direction, MessageSid.tries,
                                  MessageSid.redacted_at).order_by(MessageSid.sid)).all()
    assert [tuple(r) for r in rows] == [("SM" + "1" * 32, "inbound", 0, None),
                                        (filed_first, "inbound", 0, None)]
    with pytest.raises(IntegrityError):  # a repeated delivery: nothing filed twice
        message_records.record_incoming(session, "SM" + "1" * 32)
    session.rollback()
    assert len(session.scalars(select(MessageSid.sid)).all()) == 2


def test_the_greeting_kept_per_language_is_the_one_built_per_call(app):
    """The incoming call's answer comes from a document built once per language by the
    menu's own builder, with the contact id put in: byte for byte what building it for
    that contact gives, in every language, for any id."""
    with app.test_request_context("/twilio/voice", method="POST"):
        languages = list(flows().languages)
        assert len(languages) > 1
        for language in languages:
            for contact_id in (1, 9, 10, 42, 1000, 918273, 2**31 - 1):
                fresh = respond(views._menu(views._StandIn(contact_id, language), turn=0,
                                            greet=True))
                assert views._greeting(contact_id, language).data == fresh.data
        assert all(current_app.extensions["hotline.kept.greeting"].values())


def test_the_queue_answer_kept_per_language_is_the_one_built_per_caller(app):
    """The words and ``<Enqueue>`` a caller is put in the queue with, for each prompt it
    is said with: byte for byte what building it for that contact gives."""
    with app.test_request_context("/twilio/voice/1/menu", method="POST"):
        for language in flows().languages:
            for prompt in ("connecting", "options_hold"):
                for contact_id in (1, 9, 10, 42, 1000, 918273, 2**31 - 1):
                    fresh = respond(views._into_queue(views._StandIn(contact_id, language),
                                                      prompt))
                    assert twiml_module.kept_but_for_id(
                        "queue", (language, prompt), contact_id,
                        lambda n, lang=language, p=prompt: views._into_queue(
                            views._StandIn(n, lang), p)).data == fresh.data
        assert all(current_app.extensions["hotline.kept.queue"].values())


def test_a_document_that_differs_by_more_than_the_id_is_built_per_answer(app):
    """A builder whose document changes with the id in another way too (here: the id
    doubled) is not kept: each answer is built, and is right."""
    def build(n: int):
        from twilio.twiml.voice_response import VoiceResponse
        doc = VoiceResponse()
        doc.say(f"caller {n}, twice {2 * n}")
        return doc

    with app.test_request_context("/twilio/voice", method="POST"):
        for contact_id in (3, 77):
            assert twiml_module.kept_but_for_id("odd", ("en",), contact_id, build).data \
                == respond(build(contact_id)).data
        assert list(current_app.extensions["hotline.kept.odd"].values()) == [None]


def test_an_incoming_call_builds_no_twiml_once_its_language_was_answered(
        twilio, session, monkeypatch):
    call(twilio, sid="CA" + "d" * 32)

    def refuse(*_args, **_kwargs):
        raise AssertionError("TwiML built for a greeting already kept")

    monkeypatch.setattr(views, "VoiceResponse", refuse)
    doc = twiml(call(twilio, sid="CA" + "e" * 32))
    second = session.scalars(select(Contact).where(Contact.call_sid == "CA" + "e" * 32)).one()
    assert doc.find("Gather").get("action").endswith(f"/twilio/voice/{second.id}/menu?turn=0")


def test_a_menu_choice_to_talk_builds_no_twiml_once_its_language_was_answered(
        twilio, session, monkeypatch):
    call(twilio)
    first = only_contact(session)
    press(twilio, first.id, digits="1")
    call(twilio, sid="CA" + "9" * 32)
    second = session.scalars(select(Contact).where(Contact.call_sid == "CA" + "9" * 32)).one()

    def refuse(*_args, **_kwargs):
        raise AssertionError("TwiML built for a queue answer already kept")

    monkeypatch.setattr(views, "VoiceResponse", refuse)
    doc = twiml(press(twilio, second.id, digits="1"))
    assert doc.find("Enqueue").text == Contact.queue_of(second.id)
    assert doc.find("Enqueue").get("waitUrl").endswith(f"/twilio/voice/{second.id}/wait")
    assert doc.find("Enqueue").get("action").endswith(f"/twilio/voice/{second.id}/queue-exit")


def test_a_signature_is_computed_once_and_the_other_url_form_built_only_when_needed(
        twilio, session, monkeypatch):
    """Twilio may sign the URL with or without its port: the URL as configured is checked
    first, and the other form is built (parsed, its port added or removed) and signed
    only when that fails. Before: the other form was built on every request."""
    signed: list[str] = []
    compute, add_port = RequestValidator.compute_signature, signature.add_port

    def counted(self, url, params):
        signed.append(url)
        return compute(self, url, params)

    def adding(parsed):
        signed.append("add_port")
        return add_port(parsed)

    monkeypatch.setattr(RequestValidator, "compute_signature", counted)
    monkeypatch.setattr(signature, "add_port", adding)
    params = {"CallSid": "CA" + "f" * 32, "From": CALLER}
    url = PUBLIC_BASE_URL + "/twilio/voice"
    assert twilio.post("/twilio/voice", params).status_code == 200
    assert signed == [url, url]  # the test client's signature, then the app's check
    with_port = url.replace(".org/", ".org:443/")
    by_twilio = compute(twilio.validator, with_port, params)
    signed.clear()
    response = twilio.post("/twilio/voice", params, signature=by_twilio)
    assert response.status_code == 200 and signed == [url, "add_port", with_port]
    signed.clear()
    assert twilio.post("/twilio/voice", params, signature="bogus").status_code == 403
    assert signed == [url, "add_port", with_port]


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


def _one_change_and_its_event(sent: list[str]) -> None:
    """The contact's UPDATE returning ``contacts.BRIEF``, and its event: one statement on
    PostgreSQL (the event INSERTed ... SELECTed from the UPDATE's RETURNING), two on
    SQLite."""
    if db.engine.dialect.name == "postgresql":
        assert len(sent) == 1 and sent[0].startswith("WITH changed AS (UPDATE contacts SET"), sent
        change, rest = sent[0].split(", logged AS (")
        assert rest.startswith("INSERT INTO contact_events"), sent
        assert rest.endswith(" SELECT changed.id, changed.channel, changed.language, "
                             "changed.created_at, changed.attempt FROM changed"), sent
    else:
        assert len(sent) == 2 and sent[0].startswith("UPDATE contacts SET"), sent
        assert sent[1].startswith("INSERT INTO contact_events"), sent
        change = sent[0]
    assert _returning(change.removesuffix(")")) == ["id", "channel", "language",
                                                    "created_at", "attempt"], change


def _queued_jobs() -> list[tuple[str, tuple]]:
    return [(job.func_name, job.args) for job in jobs.queue.jobs]


def test_talk_from_the_menu_queues_in_one_update_without_reading_the_contact(twilio, session):
    call(twilio)
    contact = only_contact(session)
    session.close()  # the test client's requests share this session: none loaded in it
    with whole_statements() as sent:
        doc = twiml(press(twilio, contact.id, digits="1"))
    # no SELECT of the contact first: the queue's UPDATE returns what the answer says
    _one_change_and_its_event(sent)
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
    _one_change_and_its_event(sent)
    assert _queued_jobs() == [("workers.offer.cancel_offers", (contact_id,))]
    contact = session.get(Contact, contact_id)
    assert (contact.outcome, contact.state, contact.sealed_number) == ("abandoned", "ended", None)
    session.close()
    # delivered again (a new idempotency token): the outcome's UPDATE does not match, nor
    # the number's (gone already); the contact is read only then (it exists: no error).
    # No second event, no second cancel.
    with whole_statements() as sent:
        assert twiml(_hang_up(twilio, contact_id)).find("Dial") is None
    assert [s.split(" ")[0] for s in sent] == [
        "WITH" if db.engine.dialect.name == "postgresql" else "UPDATE", "UPDATE", "SELECT"], sent
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


# --- a contact's change and its event, one statement on PostgreSQL (contacts._logged) ---

def _contacts_counted() -> dict:
    """The ``contacts`` counter (outcomes counted per channel) as Redis holds it."""
    return redis_conn.client.hgetall(counters.KEY.format("contacts"))


def test_talk_and_hang_up_by_id_commit_on_their_own_on_postgresql(twilio, session):
    """PostgreSQL: the menu's talk and the hang-up are each one statement in autocommit
    (no BEGIN, no COMMIT); SQLite: the UPDATE and the event's INSERT, one COMMIT. Before:
    an UPDATE and an INSERT inside BEGIN ... COMMIT on both."""
    call(twilio)
    contact_id = only_contact(session).id
    session.close()
    postgres = db.engine.dialect.name == "postgresql"
    for deliver in (lambda: press(twilio, contact_id, digits="1"),
                    lambda: _hang_up(twilio, contact_id)):
        with autocommitted() as sent, commits() as done:
            assert deliver().status_code == 200
        if postgres:
            assert sent == [("WITH CHANGED AS (UPDATE", True)] and done == [], (sent, done)
        else:
            assert [a for _s, a in sent] == [False, False] and done == ["COMMIT"], sent
        session.close()
    assert session.scalars(select(ContactEvent.kind).where(
        ContactEvent.contact_id == contact_id).order_by(ContactEvent.id)).all() == [
        "started", "queued", "abandoned"]
    assert ("workers.offer.cancel_offers", (contact_id,)) in _queued_jobs()


def test_a_menu_reply_queues_with_its_record_in_one_transaction(twilio, session):
    """The SMS webhook's record and the queue's change commit together: on PostgreSQL
    the change and its event are one statement inside that transaction (not in
    autocommit beside it)."""
    _text(twilio, "hello", "SM" + "1" * 32)
    with autocommitted() as sent, commits() as done:
        _text(twilio, "2", "SM" + "2" * 32)
    assert not any(a for _s, a in sent) and done == ["COMMIT"], (sent, done)
    changes = [s for s, _a in sent if s.startswith(CHANGE_CONTACT)]
    assert len(changes) == 1, sent
    assert changes[0].startswith(CHANGE_CONTACT[db.engine.dialect.name == "postgresql"]), sent
    contact = only_contact(session)
    assert session.scalars(select(ContactEvent.kind).where(
        ContactEvent.contact_id == contact.id).order_by(ContactEvent.id)).all() == [
        "started", "queued"]


@pytest.mark.parametrize("in_transaction", [False, True])
def test_a_change_that_matches_nothing_writes_no_event_and_counts_nothing(
        app, session, in_transaction):
    """An outcome already set (a repeat, a race lost) or no such contact: no event, no
    count, no effect; an outcome set once is counted once, whether it was committed in
    autocommit (counted at once) or with the caller's transaction (counted at its
    commit)."""
    contact = Contact(channel="voice", caller_key="k", call_sid="CA" + "c" * 32)
    session.add(contact)
    session.commit()
    contact_id = contact.id
    session.close()
    counted = _contacts_counted()

    def begin() -> None:
        if in_transaction:  # something of the caller's is in the transaction already
            session.execute(select(OptOut.caller_key))

    begin()
    assert transitions.finish(session, contact_id, contacts.Outcome.ABANDONED).won
    session.close()
    after_first = _contacts_counted()
    assert after_first != counted
    for _ in range(2):  # a repeat, and a racing second caller: neither matches
        begin()
        assert not transitions.finish(session, contact_id, contacts.Outcome.FAILED).won
        session.close()
    begin()
    assert contacts.queue(session, 999) is None and contacts.finish(
        session, 999, contacts.Outcome.ABANDONED) is False
    session.commit()
    assert _contacts_counted() == after_first
    assert session.execute(select(ContactEvent.contact_id, ContactEvent.kind)).all() == [
        (contact_id, "abandoned")]
    assert session.get(Contact, contact_id).outcome == "abandoned"


def test_an_old_contacts_autocommitted_outcome_still_drops_its_cached_day(app, session):
    """A late outcome (a contact days old) still drops the cached statistics of its day,
    committed by the caller after the autocommitted change and its event."""
    old = utcnow() - timedelta(days=5)
    contact = Contact(channel="voice", caller_key="k", created_at=old)
    session.add(contact)
    session.add(StatsDay(zone="UTC", day=old.date(), counts="{}"))
    session.commit()
    contact_id = contact.id
    session.close()
    assert transitions.finish(session, contact_id, contacts.Outcome.ABANDONED).won
    session.close()
    assert session.scalars(select(StatsDay)).all() == []
    assert session.scalars(select(ContactEvent.kind)).all() == ["abandoned"]


# --- repeats of the status callback and the wait poll, turned away by the database -------
# Both are marked ``deduplicated_by``: no answer kept in Redis. Each repeat below is shown
# to have no effect of its own, one after the other and at the same time, and each "at the
# same time" test is run with the conditional UPDATE's condition patched away too, which
# must then give two effects: the interleaving really brings both deliveries to the UPDATE.

def _signed(twilio, path: str, params: dict, token: str):
    """One delivery as Twilio retries it (the same token and parameters), to post again."""
    params = {k: str(v) for k, v in params.items()}
    headers = {"X-Twilio-Signature": twilio.validator.compute_signature(
        PUBLIC_BASE_URL + path, params), "I-Twilio-Idempotency-Token": token}
    return lambda client=twilio.client: client.post(path, data=params, headers=headers)


def _twice_at_once(app, deliver, monkeypatch, module, name: str) -> list:
    """Two deliveries in two threads, each stopped just before ``module.name`` (the step
    before the write) until the other got there too: both decide on the same state."""
    meet, before = threading.Barrier(2, timeout=20), getattr(module, name)

    def met(*args, **kwargs):
        meet.wait()
        return before(*args, **kwargs)

    monkeypatch.setattr(module, name, met)
    answers = _both_at_once(app, deliver)
    monkeypatch.setattr(module, name, before)
    assert [a.status_code for a in answers] == [200, 200], [a.data for a in answers]
    return answers


def _kinds(session, contact_id: int, kind: str) -> int:
    session.expire_all()
    return len(session.scalars(select(ContactEvent.id).where(
        ContactEvent.contact_id == contact_id, ContactEvent.kind == kind)).all())


def _abandoned_count() -> int:
    return sum(n for labels, n in counters.totals("contacts")
               if labels == {"channel": "voice", "outcome": "abandoned"})


def _status_of_a_hang_up(twilio, session):
    """A caller waiting in the queue, and the status callback of their hang-up (the queue
    exit not delivered first): it abandons the contact."""
    contact = _queued_then_hung_up(twilio, session)
    jobs.queue.empty()
    session.close()
    return contact.id, _signed(twilio, "/twilio/voice/status", {
        "CallSid": contact.call_sid, "CallStatus": "completed"}, "status-retry-token")


def _one_abandon(session, contact_id: int, times: int = 1) -> None:
    assert _kinds(session, contact_id, "abandoned") == times
    assert _abandoned_count() == times
    assert _queued_jobs() == [("workers.offer.cancel_offers", (contact_id,))] * times
    contact = session.get(Contact, contact_id)
    assert (contact.outcome, contact.state, contact.sealed_number) == ("abandoned", "ended", None)


def _hang_up_of_a_queued_caller(twilio, session):
    """A caller waiting in the queue, and the queue exit of their hang-up, as Twilio would
    deliver it again."""
    contact = _queued_then_hung_up(twilio, session)
    jobs.queue.empty()
    session.close()
    return contact.id, _signed(twilio, f"/twilio/voice/{contact.id}/queue-exit", {
        "QueueResult": "hangup", "CallStatus": "completed", "CallSid": contact.call_sid},
        "hang-up-retry-token")


#: The two deliveries that tell of a caller hanging up in the queue, either may come first.
_HANG_UPS = {"status callback": _status_of_a_hang_up,
             "queue exit": _hang_up_of_a_queued_caller}


@pytest.mark.parametrize("delivery", list(_HANG_UPS))
def test_a_hang_up_repeated_keeps_nothing_in_redis_and_abandons_once(
        twilio, session, monkeypatch, delivery):
    """Before: a GET and a SET of the token in Redis per delivery."""
    contact_id, deliver = _HANG_UPS[delivery](twilio, session)
    sent = _redis_commands(monkeypatch)
    first, again = deliver(), deliver()
    assert [c for c in sent if c in ("GET", "SET")] == [], sent
    monkeypatch.undo()
    assert first.status_code == again.status_code == 200
    assert first.data == again.data and list(twiml(first)) == []  # empty TwiML
    assert not redis_conn.client.keys("hotline:idem:*")
    _one_abandon(session, contact_id)


@pytest.mark.parametrize("delivery", list(_HANG_UPS))
@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "guard-removed"])
def test_a_hang_up_delivered_twice_at_once_abandons_once(
        app, twilio, session, monkeypatch, guarded, delivery):
    contact_id, deliver = _HANG_UPS[delivery](twilio, session)
    if not guarded:  # the outcome set even where there is one already
        monkeypatch.setattr(contacts, "_SET_OUTCOME_AND_END",
                            contacts._Change(attempt=contacts._NEXT_ATTEMPT))
    first, second = _twice_at_once(app, deliver, monkeypatch, transitions, "finish")
    assert first.data == second.data
    _one_abandon(session, contact_id, times=1 if guarded else 2)


@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "guard-removed"])
def test_status_callback_of_a_connected_call_delivered_twice_at_once_ends_it_once(
        app, twilio, session, monkeypatch, guarded):
    call(twilio)
    contact = only_contact(session)
    contact.state, contact.outcome = "connected", "connected"
    session.commit()
    if not guarded:
        monkeypatch.setattr(contacts, "_END", contacts._Change(attempt=contacts._NEXT_ATTEMPT))
    deliver = _signed(twilio, "/twilio/voice/status", {
        "CallSid": contact.call_sid, "CallStatus": "completed"}, "end-retry-token")
    _twice_at_once(app, deliver, monkeypatch, contacts, "end")
    assert _kinds(session, contact.id, "ended") == (1 if guarded else 2)
    assert deliver().data == deliver().data  # and one after the other: nothing more
    assert _kinds(session, contact.id, "ended") == (1 if guarded else 2)


def test_queue_exit_other_than_a_hang_up_still_keeps_its_answer_for_a_repeat(
        twilio, session, monkeypatch):
    """Only the hang-up is the database's: a bridged caller's exit (it ends the contact
    and asks for consent) is answered from Redis when Twilio delivers it again."""
    call(twilio)
    contact = only_contact(session)
    contact.state, contact.outcome = "connected", "connected"
    session.commit()
    deliver = _signed(twilio, f"/twilio/voice/{contact.id}/queue-exit", {
        "QueueResult": "bridged", "CallStatus": "in-progress", "CallSid": contact.call_sid},
        "bridged-retry-token")
    sent = _redis_commands(monkeypatch)
    first, again = deliver(), deliver()
    assert sent.count("GET") == 2 and "SET" in sent, sent  # looked up, kept, replayed
    monkeypatch.undo()
    assert first.data == again.data and twiml(first).find("Gather") is not None
    assert redis_conn.client.keys("hotline:idem:*") == [b"hotline:idem:bridged-retry-token"]
    assert _kinds(session, contact.id, "ended") == 1


def _waiting(twilio, session, role: str | None = None) -> Contact:
    call(twilio)
    contact = only_contact(session)
    press(twilio, contact.id, digits="1")
    if role:  # asked for a peer in their role; nobody of it is on duty: the wait is over
        contact.match_role = role
        session.commit()
    session.refresh(contact)  # queued: its attempt
    jobs.queue.empty()
    session.close()
    return contact


def _escalating_poll(twilio, contact: Contact):
    seconds = policies.current().second.after_seconds
    return _signed(twilio, f"/twilio/voice/{contact.id}/wait",
                   {"QueueTime": seconds, "CallSid": contact.call_sid}, "wait-retry-token")


def _escalated_once(session, contact: Contact, times: int = 1) -> None:
    assert _kinds(session, contact.id, "escalated") == times
    contact = session.get(Contact, contact.id)
    assert _queued_jobs() == [("workers.offer.route", (contact.id, contact.attempt))] * times
    assert contact.escalated


def test_wait_poll_repeated_keeps_nothing_in_redis_and_escalates_once(
        twilio, session, monkeypatch):
    contact = _waiting(twilio, session)
    deliver = _escalating_poll(twilio, contact)
    sent = _redis_commands(monkeypatch)
    first, again = deliver(), deliver()
    assert [c for c in sent if c in ("GET", "SET")] == [], sent
    monkeypatch.undo()
    assert first.data == again.data and twiml(first).find("Pause") is not None
    assert not redis_conn.client.keys("hotline:idem:*")
    _escalated_once(session, contact)


@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "guard-removed"])
def test_wait_poll_delivered_twice_at_once_escalates_once(
        app, twilio, session, monkeypatch, guarded):
    contact = _waiting(twilio, session)
    if not guarded:  # escalated even where it is already
        monkeypatch.setattr(runner, "_ESCALATE", update(Contact.__table__).where(
            Contact.__table__.c.id == bindparam("row_id")).values(escalated=True).returning(
            *contacts.BRIEF))
    first, second = _twice_at_once(app, _escalating_poll(twilio, contact), monkeypatch,
                                   runner, "_escalated_now")
    assert first.data == second.data and twiml(first).find("Pause") is not None
    _escalated_once(session, contact, times=1 if guarded else 2)


def test_a_routing_step_and_the_wait_poll_escalate_once_together(
        app, twilio, session, monkeypatch, make_supporter):
    """The step's escalation (its first tier has nobody) and the poll's race: one event."""
    contact = _waiting(twilio, session)
    make_supporter("Backup", tier=2)
    meet = threading.Barrier(2, timeout=20)
    before = runner._escalated_now

    def met(*args, **kwargs):
        meet.wait()
        return before(*args, **kwargs)

    monkeypatch.setattr(runner, "_escalated_now", met)

    def step() -> None:
        with app.app_context():
            runner.step(contact.id, contact.attempt)
            db.session.remove()

    stepping = threading.Thread(target=step)
    stepping.start()
    _escalating_poll(twilio, contact)(app.test_client())
    stepping.join()
    monkeypatch.undo()
    assert _kinds(session, contact.id, "escalated") == 1


def _falling_back_poll(twilio, contact: Contact):
    return _signed(twilio, f"/twilio/voice/{contact.id}/wait",
                   {"QueueTime": 30, "CallSid": contact.call_sid}, "fallback-retry-token")


def _told(response) -> bool:
    return flows().prompt("en", "match_fallback") in response.data.decode()


def test_wait_poll_that_falls_back_repeated_tells_once_and_answers_as_now(
        twilio, session, monkeypatch):
    """The repeat answers what the poll answers now (``CURRENT_ANSWER``): the role is
    erased, so it is the plain wait, without the notice the first delivery carried."""
    contact = _waiting(twilio, session, role="nurse")
    deliver = _falling_back_poll(twilio, contact)
    sent = _redis_commands(monkeypatch)
    first, again = deliver(), deliver()
    assert [c for c in sent if c in ("GET", "SET")] == [], sent
    monkeypatch.undo()
    assert _told(first) and not _told(again)
    assert again.data == twilio.post(f"/twilio/voice/{contact.id}/wait", {
        "QueueTime": 30, "CallSid": contact.call_sid}).data  # a poll now, without a token
    session.expire_all()
    assert session.get(Contact, contact.id).match_role is None


@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "guard-removed"])
def test_wait_poll_that_falls_back_delivered_twice_at_once_tells_once(
        app, twilio, session, monkeypatch, guarded):
    contact = _waiting(twilio, session, role="nurse")
    if not guarded:  # erased even where it is already
        monkeypatch.setattr(matching, "_ERASE_ROLE", update(Contact.__table__).where(
            Contact.__table__.c.id == bindparam("row_id")).values(match_role=None))
    answers = _twice_at_once(app, _falling_back_poll(twilio, contact), monkeypatch,
                             matching, "fallback_due")
    assert sum(map(_told, answers)) == (1 if guarded else 2)
    assert all(twiml(a).find("Pause") is not None for a in answers)
    session.expire_all()
    assert session.get(Contact, contact.id).match_role is None
