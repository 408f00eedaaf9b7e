"""The account and its phone numbers in the stand-in's REST API: ``Accounts/{Sid}.json``
and ``IncomingPhoneNumbers`` (list by PhoneNumber, fetch, update), what ``hotline twilio
configure`` and ``hotline doctor`` use.

A number's webhooks are the sim's own routing (``voice_url``, ``fallback_url``,
``status_callback_url``, ``sms_url``, ``sms_fallback_url``), shared by all its numbers: an
update changes where the sim sends the next call or text, as Twilio would.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import request

from hotline.simulator.engine import API_VERSION, TwilioSim
from hotline.simulator.rest_base import ApiError, current_sim, one_page

#: Resource field -> (the form parameter that sets it, the sim attribute holding it).
URL_FIELDS = {"voice_url": ("VoiceUrl", "voice_url"),
              "voice_fallback_url": ("VoiceFallbackUrl", "fallback_url"),
              "status_callback": ("StatusCallback", "status_callback_url"),
              "sms_url": ("SmsUrl", "sms_url"),
              "sms_fallback_url": ("SmsFallbackUrl", "sms_fallback_url")}
#: Resource field -> form parameter, for each URL's HTTP method.
METHOD_FIELDS = {"voice_method": "VoiceMethod", "voice_fallback_method": "VoiceFallbackMethod",
                 "status_callback_method": "StatusCallbackMethod", "sms_method": "SmsMethod",
                 "sms_fallback_method": "SmsFallbackMethod"}
#: The form parameters the sim would request later, with Twilio's code for a bad one.
NUMBER_URLS = {form: 21502 for form, _ in URL_FIELDS.values()}


def number_sid(number: str) -> str:
    """A stable PN sid for one of the sim's numbers."""
    return "PN" + hashlib.sha256(number.encode()).hexdigest()[:32]


def _methods(sim: TwilioSim) -> dict[str, str]:
    """The number's HTTP methods: POST until an update says otherwise."""
    return {field: sim.number_methods.get(field, "POST") for field in METHOD_FIELDS}


def number_json(sim: TwilioSim, number: str) -> dict[str, Any]:
    """An IncomingPhoneNumber resource (``api.v2010.account.incoming_phone_number``)."""
    sid = number_sid(number)
    urls = {field: getattr(sim, attr, None) or "" for field, (_, attr) in URL_FIELDS.items()}
    return {
        "sid": sid, "account_sid": sim.account_sid, "phone_number": number,
        "friendly_name": number, "api_version": API_VERSION, "beta": False,
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
        "date_created": sim.rfc2822(0), "date_updated": sim.rfc2822(), **urls, **_methods(sim),
        "voice_caller_id_lookup": False, "voice_application_sid": None,
        "sms_application_sid": None, "trunk_sid": None, "origin": "twilio", "status": "in-use",
        "address_requirements": "none", "voice_receive_mode": "voice",
        "emergency_status": "Inactive", "type": "local",
        "uri": f"/{API_VERSION}/Accounts/{sim.account_sid}/IncomingPhoneNumbers/{sid}.json",
    }


def fetch_account(account_sid: str) -> dict[str, Any]:
    """``Accounts/{Sid}.json``: the account (reached only with its own credentials)."""
    sim = current_sim()
    return {"sid": sim.account_sid, "owner_account_sid": sim.account_sid,
            "friendly_name": "Stand-in account", "status": "active", "type": "Full",
            "auth_token": "", "date_created": sim.rfc2822(0), "date_updated": sim.rfc2822(),
            "uri": f"/{API_VERSION}/Accounts/{sim.account_sid}.json", "subresource_uris": {}}


def list_numbers(account_sid: str) -> dict[str, Any]:
    """``IncomingPhoneNumbers.json`` GET: the account's numbers, filtered by PhoneNumber."""
    sim, wanted = current_sim(), request.args.get("PhoneNumber")
    with sim.lock:
        found = [number_json(sim, n) for n in sim.numbers if wanted in (None, n)]
    uri = f"/{API_VERSION}/Accounts/{sim.account_sid}/IncomingPhoneNumbers.json"
    return one_page("incoming_phone_numbers", found, uri, request.full_path.rstrip("?"))


def fetch_number(account_sid: str, sid: str) -> dict[str, Any]:
    """``IncomingPhoneNumbers/{Sid}.json`` GET."""
    sim = current_sim()
    with sim.lock:
        return number_json(sim, _number(sim, sid))


def update_number(account_sid: str, sid: str) -> dict[str, Any]:
    """``IncomingPhoneNumbers/{Sid}.json`` POST: change the number's webhooks and methods."""
    sim, form = current_sim(), request.form
    with sim.lock:
        number = _number(sim, sid)
        for _, (param, attr) in URL_FIELDS.items():
            if param in form:
                setattr(sim, attr, form[param] or None)
        for field, param in METHOD_FIELDS.items():
            if param in form:
                sim.number_methods[field] = form[param].upper()
        sim.log("number-update", sid=sid)
        return number_json(sim, number)


def _number(sim: TwilioSim, sid: str) -> str:
    number = next((n for n in sim.numbers if number_sid(n) == sid), None)
    if number is None:
        raise ApiError(404, 20404,
                       f"The requested resource /IncomingPhoneNumbers/{sid}.json was not found")
    return number
