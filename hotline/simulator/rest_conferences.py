"""Twilio's Conferences REST resource, as the hotline uses it: list the rooms by name and
status, fetch one, and update one (``Status=completed`` ends it for everyone,
``AnnounceUrl`` plays a document's prompts to everyone in it). Checked against Twilio's
OpenAPI spec like every POST (``rest.check_against_spec``)."""

from __future__ import annotations

from typing import Any

from flask import request

from hotline.simulator.engine import API_VERSION, Conference, Fetch, TwilioSim
from hotline.simulator.rest_base import (INVALID_PARAMETER, MAX_PAGE_SIZE, ApiError, current_sim,
                                          one_page)


def conference_json(sim: TwilioSim, room: Conference) -> dict[str, Any]:
    """A Conference resource (``api.v2010.account.conference``)."""
    uri = f"/{API_VERSION}/Accounts/{sim.account_sid}/Conferences/{room.sid}"
    ended = room.status == "completed"
    return {
        "sid": room.sid, "account_sid": sim.account_sid, "friendly_name": room.name,
        "status": room.status, "date_created": sim.rfc2822(room.created_at),
        "date_updated": sim.rfc2822(), "region": "us1", "api_version": API_VERSION,
        "reason_conference_ended": "conference-ended-via-api" if ended else None,
        "call_sid_ending_conference": None, "uri": f"{uri}.json",
        "subresource_uris": {"participants": f"{uri}/Participants.json",
                             "recordings": f"{uri}/Recordings.json"},
    }


def list_conferences(account_sid: str) -> dict[str, Any]:
    """``Conferences.json`` GET: rooms filtered by FriendlyName and Status, newest first."""
    sim, args = current_sim(), request.args
    try:
        page_size = int(args.get("PageSize", "50"))
    except ValueError:
        raise ApiError(400, INVALID_PARAMETER, "PageSize is an integer") from None
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ApiError(400, INVALID_PARAMETER, "PageSize out of range")
    with sim.lock:
        found = [room for room in reversed(list(sim.conferences.values()))
                 if args.get("FriendlyName", room.name) == room.name
                 and args.get("Status", room.status) == room.status][:page_size]
        uri = f"/{API_VERSION}/Accounts/{sim.account_sid}/Conferences.json"
        return one_page("conferences", [conference_json(sim, room) for room in found],
                        f"{uri}?PageSize={page_size}&Page=0",
                        request.full_path.rstrip("?"), page_size)


def fetch_conference(account_sid: str, sid: str) -> dict[str, Any]:
    """``Conferences/{Sid}.json`` GET: the room as it is now."""
    sim = current_sim()
    with sim.lock:
        return conference_json(sim, _conference(sim, sid))


def update_conference(account_sid: str, sid: str) -> dict[str, Any]:
    """``Conferences/{Sid}.json`` POST: ``Status=completed`` ends it for everyone;
    ``AnnounceUrl`` plays that document's prompts to everyone in it."""
    sim, form = current_sim(), request.form
    with sim.lock:
        room = _conference(sim, sid)
        status, announce = form.get("Status"), form.get("AnnounceUrl")
        if status not in (None, "completed"):
            raise ApiError(400, INVALID_PARAMETER, f"Invalid Status {status}")
        if (status or announce) and room.status == "completed":
            raise ApiError(400, 20001, "The conference is over.")
        if announce:
            fetch = Fetch(announce, form.get("AnnounceMethod", "POST"))
            sim.schedule(0, lambda: sim.interpreter.announce(room.sid, fetch))
        if status:
            sim.schedule(0, lambda: sim.end_conference(room))
        return conference_json(sim, room)


def _conference(sim: TwilioSim, sid: str) -> Conference:
    if sid not in sim.conferences:
        raise ApiError(404, 20404, f"The requested resource /Conferences/{sid}.json was not "
                                   "found")
    return sim.conferences[sid]
