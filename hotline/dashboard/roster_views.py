"""Roster, shifts and availability: pages and the JSON API.

Supporters are staff: their names and numbers are shown here, to coordinators only. Each
change is validated field by field with a message that says what to fix; pages and API
share the same functions.
"""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from hotline import roster, shifts
from hotline.dashboard.views import api, bp
from hotline.errors import HotlineError
from hotline.extensions import db
from hotline.models import Shift, Supporter
from hotline.phones import normalize

MAX_NAME = 120


class FormError(HotlineError, ValueError):
    """Fields were refused: ``errors`` maps each to why (``field`` is the first), so a form
    shows every error at once, each next to its field. ``restore`` is a supporter taken off
    the roster whom the form should offer to restore instead."""

    def __init__(self, field: str, message: str, errors: dict[str, str] | None = None,
                 restore: Supporter | None = None) -> None:
        self.errors = errors or {field: message}
        super().__init__("; ".join(self.errors.values()))
        self.field = next(iter(self.errors))
        self.restore = restore


def _fields(data) -> tuple[str, str, int, tuple[str, ...]]:
    """name, phone (E.164), tier, languages from a form or JSON body, each checked; every
    refused field is reported together."""
    errors: dict[str, str] = {}
    name = (data.get("name") or "").strip()
    if not name or len(name) > MAX_NAME:
        errors["name"] = f"a name of 1 to {MAX_NAME} characters is required"
    phone = ""
    try:
        phone = normalize(data.get("phone") or "")
    except ValueError as exc:
        errors["phone"] = str(exc)
    try:
        tier = int(data.get("tier") or 0)
    except (TypeError, ValueError):
        tier = 0
    if tier not in roster.TIERS:
        errors["tier"] = "tier must be 1 (peer supporter) or 2 (backup)"
    languages = data.getlist("languages") if hasattr(data, "getlist") else \
        data.get("languages") or []
    if isinstance(languages, str):
        languages = [languages]
    known = roster.known_languages()
    if not languages or any(code not in known for code in languages):
        errors["languages"] = "choose at least one language among " + ", ".join(known)
    if errors:
        raise FormError("", "", errors)
    return name, phone, tier, tuple(languages)


def create_supporter(data) -> Supporter:
    """Add a supporter from form or JSON data (FormError names the bad fields)."""
    name, phone, tier, languages = _fields(data)
    existing = db.session.scalar(select(Supporter).where(Supporter.phone == phone))
    if existing is not None and not existing.active:
        # Before, this was a dead end: the number "already existed" on no page at all.
        raise FormError("phone", f"{existing.name} was taken off the roster with this number:"
                        " restore them instead", restore=existing)
    if existing is not None:
        raise FormError("phone", "a supporter with this phone number already exists")
    return roster.add(db.session, name, phone, tier, languages)


def update_supporter(supporter: Supporter, data) -> Supporter:
    """Change a supporter's name, phone, tier and languages."""
    name, phone, tier, languages = _fields(data)
    clash = db.session.scalar(select(Supporter).where(Supporter.phone == phone,
                                                      Supporter.id != supporter.id))
    if clash is not None:
        raise FormError("phone", "another supporter has this phone number")
    supporter.name, supporter.phone, supporter.tier = name, phone, tier
    supporter.languages = ",".join(languages)
    db.session.commit()
    return supporter


def _supporter(supporter_id: int, active: bool = True) -> Supporter:
    supporter = db.session.get(Supporter, supporter_id)
    if supporter is None or (active and not supporter.active):
        abort(404, "no such supporter on the roster")
    return supporter


#: Manual modes: ON and OFF are what the supporter can text; "schedule" clears both.
MODES = ("on", "off", "schedule")


def switch(supporter: Supporter, mode: str) -> None:
    """Manual ON or OFF (the same as the supporter texting it), or back to the schedule."""
    if mode not in MODES:
        raise FormError("mode", "choose on, off or schedule")
    if mode == "schedule":
        shifts.back_to_schedule(db.session, supporter)
    else:
        supporter.available = mode == "on"
    db.session.commit()


def deactivate(supporter: Supporter) -> None:
    """Off the roster (kept for statistics, and for ``roster.restore``); their shifts go."""
    for shift in shifts.shifts_of(db.session, supporter.id):
        db.session.delete(shift)
    roster.deactivate(db.session, supporter.phone)




# ---- pages ---------------------------------------------------------------------------

@bp.get("/roster")
def roster_page():
    """The roster with its shifts, and a form to add a supporter."""
    return _roster_page()


def _roster_page(errors: dict | None = None, form: dict | None = None, status: int = 200,
                 restore: Supporter | None = None):
    people = roster.everyone(db.session)
    plan = {s.id: [shifts.describe(x) for x in shifts.shifts_of(db.session, s.id)]
            for s in people}
    return render_template("dashboard/roster.html", supporters=people, plan=plan,
                           manual=shifts.manual_states(db.session),
                           removed=roster.removed(db.session), restore=restore,
                           zone=shifts.zone_label(), errors=errors or {}, form=form or {},
                           languages=roster.known_languages()), status


@bp.post("/roster")
def roster_add():
    """Add a supporter; every refused field is shown next to itself."""
    try:
        supporter = create_supporter(request.form)
    except FormError as exc:
        return _roster_page(exc.errors, request.form, 400, exc.restore)
    flash(f"{supporter.name} added. Add their shifts below.")
    return redirect(url_for("dashboard.supporter_page", supporter_id=supporter.id))


@bp.get("/roster/<int:supporter_id>")
def supporter_page(supporter_id: int):
    """One supporter: details, weekly shifts, manual ON/OFF."""
    return _supporter_page(_supporter(supporter_id))


def _supporter_page(supporter: Supporter, errors: dict | None = None,
                    form: dict | None = None, status: int = 200,
                    shift_errors: dict | None = None, shift_form: dict | None = None):
    """``form`` re-fills Details, ``shift_form`` the shift form: a refused shift used to
    re-fill Details from the shift's form, unticking every language."""
    return render_template(
        "dashboard/supporter.html", supporter=supporter, errors=errors or {}, form=form or {},
        shift_errors=shift_errors or {}, shift_form=shift_form or {}, zone=shifts.zone_label(),
        shifts=[(x, shifts.describe(x)) for x in shifts.shifts_of(db.session, supporter.id)],
        weekdays=shifts.WEEKDAYS, languages=roster.known_languages(),
        status=next(a for a in shifts.now_view(db.session) if a.supporter.id == supporter.id),
    ), status


@bp.post("/roster/<int:supporter_id>")
def supporter_edit(supporter_id: int):
    """Save a supporter's details."""
    supporter = _supporter(supporter_id)
    try:
        update_supporter(supporter, request.form)
    except FormError as exc:
        db.session.rollback()
        return _supporter_page(supporter, exc.errors, request.form, 400)
    flash("Saved.")
    return redirect(url_for("dashboard.supporter_page", supporter_id=supporter_id))


@bp.get("/roster/<int:supporter_id>/deactivate")
def supporter_deactivate_confirm(supporter_id: int):
    """The second step of taking a supporter off the roster (a page: works without
    JavaScript), saying what it does and how to undo it."""
    supporter = _supporter(supporter_id)
    return render_template("dashboard/remove.html", supporter=supporter,
                           shifts=[shifts.describe(x)
                                   for x in shifts.shifts_of(db.session, supporter.id)])


@bp.post("/roster/<int:supporter_id>/deactivate")
def supporter_deactivate(supporter_id: int):
    """Take a supporter off the roster, once confirmed (anything else asks first)."""
    supporter = _supporter(supporter_id)
    if request.form.get("confirm") != "yes":
        return redirect(url_for("dashboard.supporter_deactivate_confirm",
                                supporter_id=supporter_id), 303)
    deactivate(supporter)
    flash(f"{supporter.name} is off the roster. They are listed under \"Taken off the "
          "roster\" below, where you can restore them.")
    return redirect(url_for("dashboard.roster_page") + "#removed")


@bp.post("/roster/<int:supporter_id>/restore")
def supporter_restore(supporter_id: int):
    """Back on the roster: not offered contacts until they get shifts or switch ON."""
    supporter = _supporter(supporter_id, active=False)
    roster.restore(db.session, supporter.phone)
    flash(f"{supporter.name} is back on the roster. Add their shifts or switch them ON: "
          "until then they are not offered contacts.")
    return redirect(url_for("dashboard.supporter_page", supporter_id=supporter_id))


@bp.post("/roster/<int:supporter_id>/shifts")
def shift_add(supporter_id: int):
    """Add a weekly shift."""
    supporter = _supporter(supporter_id)
    try:
        shifts.add_shift(db.session, supporter, request.form.get("weekday", ""),
                         request.form.get("start", ""), request.form.get("end", ""))
    except shifts.ShiftError as exc:
        return _supporter_page(supporter, status=400, shift_errors=exc.errors,
                               shift_form=request.form)
    flash("Shift added.")
    return redirect(url_for("dashboard.supporter_page", supporter_id=supporter_id))


@bp.post("/shifts/<int:shift_id>/delete")
def shift_delete(shift_id: int):
    """Remove a weekly shift."""
    shift = db.session.get(Shift, shift_id) or abort(404, "no such shift")
    supporter_id = shift.supporter_id
    shifts.remove_shift(db.session, shift)
    flash("Shift removed.")
    return redirect(url_for("dashboard.supporter_page", supporter_id=supporter_id))


@bp.post("/roster/<int:supporter_id>/switch")
def supporter_switch(supporter_id: int):
    """Manual ON, OFF, or back to the schedule."""
    supporter = _supporter(supporter_id)
    try:
        switch(supporter, request.form.get("mode", ""))
    except FormError as exc:
        abort(400, str(exc))
    if request.form.get("back") == "now":
        return redirect(url_for("dashboard.now_page"))
    return redirect(url_for("dashboard.supporter_page", supporter_id=supporter_id))


@bp.get("/now")
def now_page():
    """Who would be offered a contact right now, and why."""
    rows = shifts.now_view(db.session)
    return render_template("dashboard/now.html", rows=rows, zone=shifts.zone_label(),
                           offered=[a for a in rows if a.offered],
                           free=[a for a in rows if a.offered and not a.busy])


# ---- API -----------------------------------------------------------------------------

def supporter_json(supporter: Supporter) -> dict:
    return {"id": supporter.id, "name": supporter.name, "phone": supporter.phone,
            "tier": supporter.tier, "languages": supporter.language_list,
            "active": supporter.active, "switched_on": supporter.available,
            "shifts": [{"id": x.id, "when": shifts.describe(x)}
                       for x in shifts.shifts_of(db.session, supporter.id)]}


def _refused(exc: Exception, status: int = 400):
    body = {"error": str(exc), "field": getattr(exc, "field", None),
            "errors": getattr(exc, "errors", None)}
    if getattr(exc, "restore", None) is not None:
        body["restore"] = url_for("dashboard_api.api_supporter_restore",
                                  supporter_id=exc.restore.id)
    return jsonify(body), status


@api.get("/supporters")
def api_supporters():
    """The active roster with shifts."""
    return jsonify([supporter_json(s) for s in roster.everyone(db.session)])


@api.post("/supporters")
def api_supporter_add():
    """Add a supporter: {name, phone, tier, languages}."""
    try:
        supporter = create_supporter(request.get_json(silent=True) or {})
    except FormError as exc:
        return _refused(exc)
    return jsonify(supporter_json(supporter)), 201


@api.route("/supporters/<int:supporter_id>", methods=["PATCH", "DELETE"])
def api_supporter(supporter_id: int):
    """PATCH: change details (all fields); DELETE: off the roster."""
    supporter = _supporter(supporter_id)
    if request.method == "DELETE":
        deactivate(supporter)
        return jsonify({"ok": True})
    try:
        update_supporter(supporter, request.get_json(silent=True) or {})
    except FormError as exc:
        db.session.rollback()
        return _refused(exc)
    return jsonify(supporter_json(supporter))


@api.post("/supporters/<int:supporter_id>/restore")
def api_supporter_restore(supporter_id: int):
    """Put a supporter taken off the roster back on it."""
    supporter = _supporter(supporter_id, active=False)
    roster.restore(db.session, supporter.phone)
    return jsonify(supporter_json(supporter))


@api.post("/supporters/<int:supporter_id>/shifts")
def api_shift_add(supporter_id: int):
    """Add a weekly shift: {weekday, start: "HH:MM", end: "HH:MM"}."""
    data = request.get_json(silent=True) or {}
    try:
        shift = shifts.add_shift(db.session, _supporter(supporter_id), data.get("weekday", ""),
                                 data.get("start", ""), data.get("end", ""))
    except shifts.ShiftError as exc:
        return _refused(exc)
    return jsonify({"id": shift.id, "when": shifts.describe(shift)}), 201


@api.delete("/shifts/<int:shift_id>")
def api_shift_delete(shift_id: int):
    """Remove a weekly shift."""
    shift = db.session.get(Shift, shift_id)
    if shift is None:
        return jsonify({"error": "no such shift"}), 404
    shifts.remove_shift(db.session, shift)
    return jsonify({"ok": True})


@api.post("/supporters/<int:supporter_id>/switch")
def api_switch(supporter_id: int):
    """Manual ON or OFF, or back to the schedule: {"mode": "on" | "off" | "schedule"}."""
    try:
        switch(_supporter(supporter_id), (request.get_json(silent=True) or {}).get("mode", ""))
    except FormError as exc:
        return _refused(exc)
    return jsonify({"ok": True})


@api.get("/availability")
def api_availability():
    """Who would be offered a contact now, and why."""
    return jsonify([{"id": a.supporter.id, "name": a.supporter.name, "tier": a.supporter.tier,
                     "offered": a.offered, "reason": a.reason, "busy": a.busy,
                     "shift": a.shift} for a in shifts.now_view(db.session)])
