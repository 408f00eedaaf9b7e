"""Twilio's REST API (the parts the hotline uses: Calls, Messages and their Media,
Conferences, the account and its IncomingPhoneNumbers), served by a small Flask app over the sim.

Point the SDK at it with ``client.api.base_url = base_url``. Handlers run on the server's
threads: they only read state and schedule work at ``sim.now``, under ``sim.lock``. Every
request is authenticated first; every POST is then checked against Twilio's OpenAPI spec
(``spec.validate``, when the spec is present) before any handler touches the sim. A
``Url`` or ``StatusCallback`` the sim would request later must be on the app's own origin
(``check_urls``): the stand-in is not a proxy to the rest of the network (SSRF).
"""

from __future__ import annotations

import hmac
import re
import threading
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, request
from werkzeug.serving import BaseWSGIServer, make_server

from hotline.simulator.engine import API_VERSION, CallStatus, Leg, TwilioSim
from hotline.simulator.rest_base import (INVALID_PARAMETER, MAX_PAGE_SIZE, ApiError, current_sim,
                                          one_page)
from hotline.simulator.rest_conferences import (fetch_conference, list_conferences,
                                                update_conference)
from hotline.simulator.rest_numbers import (NUMBER_URLS, fetch_account, fetch_number,
                                            list_numbers, update_number)
from hotline.simulator.spec import validate as validate_against_spec

PREFIX = f"/{API_VERSION}/Accounts/<account_sid>"
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
#: Seconds between the server loop's shutdown checks (werkzeug's 0.5 s slows test teardown).
SHUTDOWN_POLL = 0.02
#: Status callback events a REST call can ask for.
CALL_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
#: Twilio's error codes for a spec problem with (endpoint, parameter); otherwise 20001.
SPEC_CODES = {
    ("create_call", "To"): 21201, ("create_call", "From"): 21213, ("create_call", "Url"): 21205,
    ("update_call", "Url"): 21205, ("update_call", "Status"): 21218,
    ("update_conference", "AnnounceUrl"): 21205,
    ("create_message", "To"): 21604, ("create_message", "StatusCallback"): 21609,
}
#: Message statuses before a message is post-flight: its body cannot be redacted yet.
IN_FLIGHT = frozenset({"queued", "accepted", "scheduled", "sending", "receiving"})
#: The URL parameters the sim requests later, per endpoint, with Twilio's code for a bad one.
#: The Messages list's filters (Twilio's OpenAPI spec), kept in its next page's URI.
LIST_FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>")
FETCHED_URLS = {"create_call": {"Url": 21205, "StatusCallback": 21609},
                "update_call": {"Url": 21205},
                "update_conference": {"AnnounceUrl": 21205},
                "create_message": {"StatusCallback": 21609},
                "update_number": NUMBER_URLS}


def call_json(sim: TwilioSim, leg: Leg, status: str | None = None) -> dict[str, Any]:
    """A Call resource (``api.v2010.account.call``) for ``leg``."""
    uri = f"/{API_VERSION}/Accounts/{sim.account_sid}/Calls/{leg.sid}"
    return {
        "sid": leg.sid, "account_sid": sim.account_sid, "parent_call_sid": leg.parent_sid,
        "to": leg.to, "to_formatted": leg.to, "from": leg.from_, "from_formatted": leg.from_,
        "status": str(status or leg.status), "direction": str(leg.direction),
        "date_created": sim.rfc2822(leg.created_at), "date_updated": sim.rfc2822(),
        "start_time": _date(sim, leg.start_time), "end_time": _date(sim, leg.end_time),
        "duration": str(leg.duration) if leg.end_time is not None else None,
        "price": None, "price_unit": "USD", "answered_by": None, "api_version": API_VERSION,
        "forwarded_from": None, "group_sid": None, "caller_name": None,
        "queue_time": str(leg.queue_time), "trunk_sid": None, "phone_number_sid": None,
        "uri": f"{uri}.json",
        "subresource_uris": {name: f"{uri}/{name.title().replace('_', '')}.json"
                             for name in ("notifications", "recordings", "events")},
    }


def message_json(sim: TwilioSim, message: dict[str, Any]) -> dict[str, Any]:
    """A Message resource (``api.v2010.account.message``)."""
    uri = f"/{API_VERSION}/Accounts/{sim.account_sid}/Messages/{message['sid']}"
    return {
        "sid": message["sid"], "account_sid": sim.account_sid, "to": message["to"],
        "from": message["from"], "body": message["body"], "status": message["status"],
        "direction": message["direction"], "num_segments": "1",
        "num_media": str(message.get("num_media", 0)),
        "date_created": sim.rfc2822(message["created_at"]), "date_updated": sim.rfc2822(),
        "date_sent": sim.rfc2822(message["created_at"]) if message["status"] != "queued" else None,
        "price": None, "price_unit": "USD", "error_code": None, "error_message": None,
        "messaging_service_sid": None, "api_version": API_VERSION, "uri": f"{uri}.json",
        "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
    }


def media_json(sim: TwilioSim, message: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """A Media resource (``api.v2010.account.message.media``)."""
    return {"sid": item["sid"], "account_sid": sim.account_sid, "parent_sid": message["sid"],
            "content_type": item["content_type"],
            "date_created": sim.rfc2822(item["created_at"]), "date_updated": sim.rfc2822(),
            "uri": f"/{API_VERSION}/Accounts/{sim.account_sid}/Messages/{message['sid']}"
                   f"/Media/{item['sid']}.json"}


def _date(sim: TwilioSim, t: float | None) -> str | None:
    return None if t is None else sim.rfc2822(t)


def _require(params: dict[str, str], name: str, code: int, message: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise ApiError(400, code, message)
    return value


def _check_numbers(sim: TwilioSim, to: str, from_: str, from_code: int) -> None:
    """``To`` must be E.164; ``From`` must be one of the account's (hotline) numbers."""
    if not E164.match(to):
        raise ApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if from_ not in sim.numbers:
        raise ApiError(400, from_code, f"The 'From' number {from_} is not a number of this "
                                       "account.")


def _events(values: list[str]) -> set[str]:
    """StatusCallbackEvent, repeated or space-separated."""
    events = {word for value in values for word in value.split()}
    unknown = events - CALL_EVENTS
    if unknown:
        raise ApiError(400, 21626, f"Invalid StatusCallbackEvent {sorted(unknown)}")
    return events


def _sim() -> TwilioSim:
    """The simulator this app serves."""
    return current_sim()


def not_found(error: Exception) -> Response:
    """Unknown paths get Twilio's 404 body too."""
    return ApiError(404, 20404, "The requested resource was not found").response()


def authenticate_and_log() -> None:
    """Log every request, then require HTTP basic auth as the account (sid, token)."""
    sim = _sim()
    sim.record_rest(request.method, request.path,  # a GET's query, a POST's form
                    {k: " ".join(v) for k, v in request.values.lists()})
    auth = request.authorization
    ok = auth is not None and hmac.compare_digest(auth.username or "", sim.account_sid) \
        and hmac.compare_digest(auth.password or "", sim.auth_token)
    if not ok:
        raise ApiError(401, 20003, "Authenticate")
    account = (request.view_args or {}).get("account_sid")
    if account is not None and account != sim.account_sid:
        raise ApiError(404, 20404, "The requested resource was not found")


def check_against_spec() -> None:
    """Refuse a POST whose path or form breaks Twilio's OpenAPI spec (400, nothing changed)."""
    if request.method != "POST" or request.url_rule is None:
        return
    problems = validate_against_spec(request.method, request.path, request.form)
    if problems:
        code = SPEC_CODES.get((request.endpoint, problems[0].param), INVALID_PARAMETER)
        raise ApiError(400, code, " ".join(map(str, problems)))


def check_urls() -> None:
    """Refuse a Url or StatusCallback off the app's own origin, as Twilio refuses a bad URL.

    The sim would request it later, from the host it runs on: any other origin (another
    loopback port, a cloud metadata address, the internal network) would make the stand-in
    a proxy for whoever can call its API.
    """
    sim = _sim()
    for name, code in FETCHED_URLS.get(request.endpoint or "", {}).items():
        value = request.form.get(name)
        if value and not sim.owns(value):
            raise ApiError(400, code, f"{name} is not a valid URL of this application: "
                                      f"{value} (the stand-in only requests its own app)")


def create_call(account_sid: str) -> tuple[dict[str, Any], int]:
    """``Calls.json``: place an outbound-api call."""
    sim, form = _sim(), request.form
    to = _require(form, "To", 21201, "No 'To' number is specified")
    from_ = _require(form, "From", 21213, "No 'From' number is specified")
    if not form.get("Url") and not form.get("Twiml"):
        raise ApiError(400, 21205, "Url parameter is required.")
    _check_numbers(sim, to, from_, 21210)
    with sim.lock:
        leg = sim.create_call(
            to=to, from_=from_, url=form.get("Url"), method=form.get("Method", "POST"),
            twiml=form.get("Twiml"), status_callback=form.get("StatusCallback"),
            status_callback_events=_events(form.getlist("StatusCallbackEvent")),
            timeout=float(form.get("Timeout", "60")),
        )
        sim.stamp("placed", sid=leg.sid)
        return call_json(sim, leg), 201


def fetch_call(account_sid: str, sid: str) -> dict[str, Any]:
    """``Calls/{Sid}.json``: the call as it is now."""
    sim = _sim()
    with sim.lock:
        return call_json(sim, _leg(sim, sid))


def update_call(account_sid: str, sid: str) -> dict[str, Any]:
    """``Calls/{Sid}.json``: cancel, complete or redirect (Url/Twiml) a call."""
    sim, form = _sim(), request.form
    with sim.lock:
        leg = _leg(sim, sid)
        status = form.get("Status")
        if status not in (None, CallStatus.CANCELED, CallStatus.COMPLETED):
            raise ApiError(400, 21218, f"Invalid Status {status}")
        if (form.get("Url") or form.get("Twiml")) and leg.ended:
            raise ApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
        sim.update_call(leg, status=status, url=form.get("Url"),
                        method=form.get("Method", "POST"), twiml=form.get("Twiml"))
        return call_json(sim, leg, _expected_status(leg, status))


def delete_call(account_sid: str, sid: str) -> tuple[str, int]:
    """``Calls/{Sid}.json`` DELETE: forget an ended call's record (a live one is refused)."""
    sim = _sim()
    with sim.lock:
        leg = _leg(sim, sid)
        if not leg.ended:
            raise ApiError(400, 20009, "A call in progress cannot be deleted.")
        del sim.legs[sid]
        sim.log("delete", sid=sid)
    return "", 204


def create_message(account_sid: str) -> tuple[dict[str, Any], int]:
    """``Messages.json``: send an SMS (``From`` or a messaging service: the first number)."""
    sim, form = _sim(), request.form
    to = _require(form, "To", 21604, "A 'To' phone number is required.")
    from_ = form.get("From") or (sim.numbers[0] if form.get("MessagingServiceSid") else "")
    if not from_:
        raise ApiError(400, 21603, "A 'From' phone number is required.")
    if not form.get("Body") and not form.get("MediaUrl"):
        raise ApiError(400, 21602, "Message body is required.")
    _check_numbers(sim, to, from_, 21606)
    with sim.lock:
        message = sim.create_message(to=to, from_=from_, body=form.get("Body", ""),
                                     status_callback=form.get("StatusCallback"))
        return message_json(sim, message), 201


def fetch_message(account_sid: str, sid: str) -> dict[str, Any]:
    """``Messages/{Sid}.json``: the message as it is now."""
    sim = _sim()
    with sim.lock:
        return message_json(sim, _message(sim, sid))


def update_message(account_sid: str, sid: str) -> dict[str, Any]:
    """``Messages/{Sid}.json`` with ``Body=''``: redact the body (nothing else is allowed).

    Like Twilio, only a post-flight message can be redacted: one still queued or sending
    is refused (the redactor tries again later). Its media stay: they are deleted apart.
    """
    sim = _sim()
    with sim.lock:
        message = _message(sim, sid)
        if "Body" in request.form:
            if request.form["Body"] != "":
                raise ApiError(400, 20001, "Body can only be redacted (set to '').")
            if message["status"] in IN_FLIGHT:
                raise ApiError(400, 30400, "A message can only be redacted once it is no "
                                           "longer queued or being sent.")
            message["body"] = ""
            sim.log("redact", sid=sid)
        return message_json(sim, message)


def delete_message(account_sid: str, sid: str) -> tuple[str, int]:
    """``Messages/{Sid}.json`` DELETE: forget the message."""
    sim = _sim()
    with sim.lock:
        sim.messages.remove(_message(sim, sid))
        sim.log("delete", sid=sid)
    return "", 204


def list_media(account_sid: str, message_sid: str) -> dict[str, Any]:
    """``Messages/{MessageSid}/Media.json`` GET: the media still kept for a message."""
    sim = _sim()
    with sim.lock:
        message = _message(sim, message_sid)
        uri = (f"/{API_VERSION}/Accounts/{sim.account_sid}/Messages/{message_sid}"
               f"/Media.json")
        items = [media_json(sim, message, item) for item in message.get("media", [])]
        return one_page("media_list", items, uri, uri)


def fetch_media(account_sid: str, message_sid: str, sid: str) -> dict[str, Any]:
    """``Messages/{MessageSid}/Media/{Sid}.json`` GET: one media's metadata."""
    sim = _sim()
    with sim.lock:
        message = _message(sim, message_sid)
        return media_json(sim, message, _media(message, sid))


def delete_media(account_sid: str, message_sid: str, sid: str) -> tuple[str, int]:
    """``Messages/{MessageSid}/Media/{Sid}.json`` DELETE: forget the picture or file."""
    sim = _sim()
    with sim.lock:
        message = _message(sim, message_sid)
        message["media"].remove(_media(message, sid))
        sim.log("delete", sid=sid)
    return "", 204


def list_messages(account_sid: str) -> dict[str, Any]:
    """``Messages.json`` GET: messages filtered by To, From and DateSent, newest first, a
    page at a time (``PageSize``, 50 by default, at most 1,000). ``next_page_uri`` carries
    the filters and a ``PageToken`` naming the last message listed, so the next page goes
    on after it even when new messages arrived in between."""
    sim, args = _sim(), request.args
    after, before = _when(args.get("DateSent>")), _when(args.get("DateSent<"))
    on = _when(args.get("DateSent"))
    try:
        page_size, page = int(args.get("PageSize", "50")), int(args.get("Page", "0"))
    except ValueError:
        raise ApiError(400, INVALID_PARAMETER, "PageSize and Page are integers") from None
    if not 1 <= page_size <= MAX_PAGE_SIZE or page < 0:
        raise ApiError(400, INVALID_PARAMETER, "PageSize or Page out of range")
    with sim.lock:
        found = [m for m in reversed(sim.messages)
                 if args.get("To", m["to"]) == m["to"]
                 and args.get("From", m["from"]) == m["from"]
                 and (after is None or sim.datetime_at(m["created_at"]) >= after)
                 and (before is None or sim.datetime_at(m["created_at"]) < before)
                 and (on is None or sim.datetime_at(m["created_at"]).date() == on.date())]
        start = 0
        if args.get("PageToken"):
            last = args["PageToken"].removeprefix("PA")
            start = next((i + 1 for i, m in enumerate(found) if m["sid"] == last), -1)
            if start < 0:
                raise ApiError(400, INVALID_PARAMETER, "Invalid PageToken")
        listed = found[start:start + page_size]
        uri = f"/{API_VERSION}/Accounts/{sim.account_sid}/Messages.json"
        filters = [(name, args[name]) for name in LIST_FILTERS if name in args]
        first = f"{uri}?{urlencode(filters + [('PageSize', page_size), ('Page', 0)])}"
        next_uri = None if start + page_size >= len(found) else f"{uri}?" + urlencode(
            filters + [("PageSize", page_size), ("Page", page + 1),
                       ("PageToken", "PA" + listed[-1]["sid"])])
        return {"messages": [message_json(sim, m) for m in listed],
                "end": start + len(listed) - 1, "first_page_uri": first,
                "next_page_uri": next_uri, "page": page, "page_size": page_size,
                "previous_page_uri": None, "start": start,
                "uri": request.full_path.rstrip("?")}


def _when(value: str | None) -> datetime | None:
    """A DateSent filter (a date or an ISO 8601 time) as an aware datetime."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, 20001, f"Invalid DateSent filter: {value}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


#: (rule under /2010-04-01/Accounts/<account_sid>, view, methods)
ROUTES = (
    ("/Calls.json", create_call, ["POST"]),
    ("/Calls/<sid>.json", fetch_call, ["GET"]),
    ("/Calls/<sid>.json", update_call, ["POST"]),
    ("/Calls/<sid>.json", delete_call, ["DELETE"]),
    ("/Messages.json", create_message, ["POST"]),
    ("/Messages.json", list_messages, ["GET"]),
    ("/Messages/<sid>.json", fetch_message, ["GET"]),
    ("/Messages/<sid>.json", update_message, ["POST"]),
    ("/Messages/<sid>.json", delete_message, ["DELETE"]),
    ("/Messages/<message_sid>/Media.json", list_media, ["GET"]),
    ("/Messages/<message_sid>/Media/<sid>.json", fetch_media, ["GET"]),
    ("/Messages/<message_sid>/Media/<sid>.json", delete_media, ["DELETE"]),
    ("/Conferences.json", list_conferences, ["GET"]),
    ("/Conferences/<sid>.json", fetch_conference, ["GET"]),
    ("/Conferences/<sid>.json", update_conference, ["POST"]),
    (".json", fetch_account, ["GET"]),
    ("/IncomingPhoneNumbers.json", list_numbers, ["GET"]),
    ("/IncomingPhoneNumbers/<sid>.json", fetch_number, ["GET"]),
    ("/IncomingPhoneNumbers/<sid>.json", update_number, ["POST"]),
)


def make_rest_app(sim: TwilioSim) -> Flask:
    """A WSGI app emulating Calls and Messages of Twilio's 2010-04-01 API for ``sim``."""
    app = Flask("hotline.simulator.rest")
    app.extensions["twilio_sim"] = sim
    app.register_error_handler(ApiError, ApiError.response)
    app.register_error_handler(404, not_found)
    app.before_request(authenticate_and_log)
    app.before_request(check_against_spec)
    app.before_request(check_urls)
    for rule, view, methods in ROUTES:
        app.add_url_rule(PREFIX + rule, view_func=view, methods=methods)
    return app


def _leg(sim: TwilioSim, sid: str) -> Leg:
    if sid not in sim.legs:
        raise ApiError(404, 20404, f"The requested resource /Calls/{sid}.json was not found")
    return sim.legs[sid]


def _message(sim: TwilioSim, sid: str) -> dict[str, Any]:
    message = sim.find_message(sid)
    if message is None:
        raise ApiError(404, 20404, f"The requested resource /Messages/{sid}.json was not found")
    return message


def _media(message: dict[str, Any], sid: str) -> dict[str, Any]:
    item = next((m for m in message.get("media", []) if m["sid"] == sid), None)
    if item is None:
        raise ApiError(404, 20404, f"The requested resource /Media/{sid}.json was not found")
    return item


def _expected_status(leg: Leg, requested: str | None) -> str | None:
    """The status an update will leave the leg in (it is applied at the loop's next step)."""
    if leg.ended or requested is None:
        return None
    if leg.status in (CallStatus.QUEUED, CallStatus.RINGING):
        return CallStatus.CANCELED
    return CallStatus.COMPLETED if requested == CallStatus.COMPLETED else None


def serve_in_thread(sim: TwilioSim) -> tuple[str, BaseWSGIServer]:
    """Serve ``make_rest_app(sim)`` on 127.0.0.1 (free port) in a daemon thread.

    Returns ``(base_url, server)``; call ``server.shutdown()`` when done.
    """
    server = make_server("127.0.0.1", 0, make_rest_app(sim), threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                     name="twilio-sim-rest", daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server
