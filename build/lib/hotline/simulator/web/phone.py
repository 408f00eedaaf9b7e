"""The web phone: a page where a visitor plays clinicians and supporters (simulator mode).

The page polls ``/phone/api/state`` and posts the visitor's actions (dial, answer,
decline, keys, words, hang up, texts). Only registered in simulator mode, which settings
refuse in production; every asset is served from here (no CDN). Every POST carries the
session's CSRF token (the dashboard's, from the page's ``csrf-token`` meta tag, sent as
``X-CSRF-Token``): another site open in the same browser cannot drive the phones.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from sqlalchemy import select

from hotline.roster import supporters as roster
from hotline.roster import care, shifts
from hotline.dashboard import access
from hotline.core.errors import HotlineError
from hotline.core.extensions import db, settings
from hotline.models import Contact, Offer, Supporter
from hotline.simulator.web.standin import DEMO_CLINICIANS, sync_supporters

bp = Blueprint("phone", __name__, url_prefix="/phone", template_folder="templates",
               static_folder="static")

#: How many recent contacts and offers the live panel shows.
PANEL_ROWS = 12
#: Wall-clock stamps sent per request.
STAMPS_PAGE = 5000


def _sim():
    return current_app.extensions["hotline.simulator"]


def _ok(result: object = None) -> Response:
    return jsonify({"ok": True, "result": result})


def _refused(exc: Exception) -> tuple[Response, int]:
    return jsonify({"ok": False, "error": str(exc).strip("'\"")}), 400


@bp.before_request
def same_site_only() -> tuple[Response, int] | None:
    """Refuse a state-changing request without this session's CSRF token.

    A cross-site form or fetch can make the browser post here (a simple POST needs no
    preflight), but cannot read the token from the page, nor set the header without a
    preflight this app never grants.
    """
    if request.method in access.UNSAFE_METHODS and not access.csrf_ok():
        return jsonify({"ok": False, "error": "this page expired or the request came from "
                                              "another site: reload the page"}), 400
    return None


@bp.get("")
def page() -> str:
    """The web phone."""
    return render_template("phone.html", hotline_number=settings().HOTLINE_NUMBER)


@bp.get("/api/state")
def state() -> Response:
    """The simulator's snapshot plus the routing as the app sees it.

    ``lean=1`` (a driver playing hundreds of phones): only the phones on a call, nothing
    from the database.
    """
    sim = _sim()
    since = request.args.get("since", default=0, type=int)
    if request.args.get("lean") == "1":
        return jsonify(sim.snapshot(since_event=since, active_only=True))
    sync_supporters(sim)
    snapshot = sim.snapshot(since_event=since)
    snapshot["roles"] = _roles()
    snapshot["routing"] = _routing()
    snapshot["hotline_number"] = settings().HOTLINE_NUMBER
    return jsonify(snapshot)


@bp.get("/api/stamps")
def stamps() -> Response:
    """Wall-clock moments from index ``since`` on (callers queued, phones ringing), paged."""
    sim = _sim()
    since = max(0, request.args.get("since", default=0, type=int))
    with sim.lock:
        page = sim.stamps[since:since + STAMPS_PAGE]
    return jsonify({"stamps": [{"at": at, "kind": kind, **details} for at, kind, details in page],
                    "next": since + len(page)})


def _roles() -> dict[str, str]:
    roles = {number: "clinician" for number, _ in DEMO_CLINICIANS}
    for s in db.session.scalars(select(Supporter).where(Supporter.active.is_(True))):
        roles[s.phone] = f"supporter tier {s.tier}"
    for number in settings().BACKUP_NUMBERS:
        roles[number] = "backup line"
    roles[settings().CRISIS_LINE_NUMBER] = "crisis line"
    return roles


def _match(contact: Contact) -> str:
    """A caller's match request while the contact holds it (erased at the outcome): the
    role asked for, and that a unit is kept away, never which (it is sealed)."""
    asked = ([f"{contact.match_role} first"] if contact.match_role else []) + (
        ["not their unit"] if contact.match_unit else [])
    return ", ".join(asked)


def _routing() -> dict:
    # "available" is whether routing would offer them a contact now (manual ON, or on shift
    # and not switched OFF), the same answer as the dashboard's: not the bare manual flag,
    # which showed a supporter on shift as "off" while their phone still rang.
    offered = shifts.offered_now(db.session)
    paused = {sid for sid in shifts.switched_off(db.session) if care.paused(db.session, sid)}
    supporters = [{"name": s.name, "phone": s.phone, "tier": s.tier, "role": s.role,
                   "units": s.unit_list,
                   "available": s.id in offered, "busy": bool(s.busy_with),
                   "paused": s.id in paused}
                  for s in db.session.scalars(select(Supporter).where(Supporter.active.is_(True))
                                              .order_by(Supporter.tier, Supporter.id))]
    since = current_app.extensions["hotline.simulator.started"]  # not the demo history
    offers = [{"id": o.id, "contact": o.contact_id, "supporter": o.supporter.name,
               "tier": o.tier, "state": o.state, "attempt": o.attempt}
              for o in db.session.scalars(select(Offer).where(Offer.created_at >= since)
                                          .order_by(Offer.id.desc()).limit(PANEL_ROWS))]
    contacts = [{"id": c.id, "channel": c.channel, "state": c.state, "outcome": c.outcome,
                 "escalated": c.escalated, "match": _match(c)}
                for c in db.session.scalars(select(Contact).where(Contact.created_at >= since)
                                            .order_by(Contact.id.desc()).limit(PANEL_ROWS))]
    return {"supporters": supporters, "offers": offers, "contacts": contacts}


@bp.post("/api/phones/<number>/dial")
def dial(number: str):
    """Call the hotline from this phone."""
    try:
        leg = _sim().dial(number, settings().HOTLINE_NUMBER)
    except (KeyError, ValueError) as exc:
        return _refused(exc)
    return _ok({"sid": leg.sid})


@bp.post("/api/phones/<number>/sms")
def sms(number: str):
    """Text the hotline from this phone."""
    body = (request.form.get("body") or "").strip()
    if not body:
        return _refused(ValueError("write a message first"))
    try:
        _sim().send_sms(number, settings().HOTLINE_NUMBER, body)
    except (KeyError, ValueError) as exc:
        return _refused(exc)
    return _ok()


@bp.post("/api/phones/<number>/availability")
def availability(number: str):
    """Switch a supporter on or off (what texting ON/OFF does); answers whether they are
    now offered contacts."""
    try:
        supporter = roster.set_available(db.session, number, request.form.get("on") == "1")
    except (HotlineError, ValueError) as exc:
        return _refused(exc)
    return _ok({"available": supporter.id in shifts.offered_now(db.session)})


LEG_ACTIONS = {"answer": lambda sim, sid, _: sim.answer(sid),
               "decline": lambda sim, sid, _: sim.decline(sid),
               "hangup": lambda sim, sid, _: sim.hangup(sid),
               "press": lambda sim, sid, form: sim.press(sid, form.get("digits", "")),
               "speak": lambda sim, sid, form: sim.speak(sid, form.get("text", ""))}


@bp.post("/api/legs/<sid>/<action>")
def leg_action(sid: str, action: str):
    """Answer, decline, hang up, press keys or say words on a call leg."""
    act = LEG_ACTIONS.get(action)
    if act is None:
        return _refused(ValueError(f"unknown action {action}"))
    try:
        act(_sim(), sid, request.form)
    except (KeyError, ValueError) as exc:
        return _refused(exc)
    return _ok()
