"""Roster, shifts and availability: pages and the JSON API.

Supporters are staff: their names and numbers are shown here, to coordinators only. Every
change goes through ``hotline.roster.supporters`` (validated field by field with a message that says
what to fix), the same rules the ``hotline supporters`` commands use; pages and API are
thin adapters over them.
"""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for

from hotline.roster import roles as role_lists
from hotline.roster import supporters as roster
from hotline.roster import care, shifts, training
from hotline.dashboard.views import api, bp
from hotline.core.extensions import db, settings
from hotline.lifecycle import effects, transitions
from hotline.models import Shift, Supporter


def _details(data) -> tuple:
    """name, phone, tier, languages of a form or a JSON body, as typed: ``roster.check``
    judges them, as it does the command line's."""
    languages = data.getlist("languages") if hasattr(data, "getlist") else \
        data.get("languages")
    return data.get("name"), data.get("phone"), data.get("tier"), languages


def _training(data, missing: object) -> dict:
    """The training record's fields as typed (``roster`` checks them); a field the data
    does not carry (a JSON client that does not know it) is ``missing``."""
    return {name: data.get(name) if name in data else missing
            for name in ("trained_on", "refresher_due")}
def _match(data) -> dict:
    """role and units of a form (its role field is always there, its units checkboxes
    only when ticked) or a JSON body (each only when given: else kept)."""
    if hasattr(data, "getlist"):
        return {"role": data.get("role"), "units": data.getlist("units")} \
            if "role" in data else {}
    return {key: data[key] for key in ("role", "units") if key in data}


def create_supporter(data) -> Supporter:
    """Add a supporter from form or JSON data (roster.RosterError names the bad fields)."""
    return roster.add(db.session, *_details(data), **_match(data), **_training(data, None))


def update_supporter(supporter: Supporter, data) -> Supporter:
    """Change a supporter's name, phone, tier, languages, role, units and training record."""
    return roster.update(db.session, supporter, *_details(data), **_match(data),
                         **_training(data, roster.KEEP))


def _choices() -> dict:
    """The roles and units the forms offer: (name, label) pairs of ivr_flows/roster.yaml."""
    lists = role_lists.current()
    return {kind: [(e.name, e.label("en")) for e in lists.entries(kind)]
            for kind in ("roles", "units")}


def _supporter(supporter_id: int, active: bool = True) -> Supporter:
    supporter = db.session.get(Supporter, supporter_id)
    if supporter is None or (active and not supporter.active):
        abort(404, "no such supporter on the roster")
    return supporter


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
                           trained=training.states(db.session),
                           lapsing=training.lapsing(db.session),
                           today=training.today(), required=training.required(),
                           training_months=settings().TRAINING_VALID_MONTHS,
                           removed=roster.removed(db.session), restore=restore,
                           zone=shifts.zone_label(), errors=errors or {}, form=form or {},
                           languages=roster.known_languages(), **_choices()), status


@bp.post("/roster")
def roster_add():
    """Add a supporter; every refused field is shown next to itself."""
    try:
        supporter = create_supporter(request.form)
    except roster.RosterError as exc:
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
        weekdays=shifts.WEEKDAYS, languages=roster.known_languages(), **_choices(),
        status=next(a for a in shifts.now_view(db.session) if a.supporter.id == supporter.id),
        trained=training.states(db.session), required=training.required(),
        training_months=settings().TRAINING_VALID_MONTHS,
    ), status


@bp.post("/roster/<int:supporter_id>")
def supporter_edit(supporter_id: int):
    """Save a supporter's details."""
    supporter = _supporter(supporter_id)
    try:
        update_supporter(supporter, request.form)
    except roster.RosterError as exc:
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
    effects.apply(transitions.take_off_roster(db.session, supporter))
    flash(f"{supporter.name} is off the roster. They are listed under \"Taken off the "
          "roster\" below, where you can restore them.")
    return redirect(url_for("dashboard.roster_page") + "#removed")


@bp.post("/roster/<int:supporter_id>/restore")
def supporter_restore(supporter_id: int):
    """Back on the roster: not offered contacts until they get shifts or switch ON."""
    supporter = _supporter(supporter_id, active=False)
    try:
        roster.restore(db.session, supporter)
    except roster.RosterError as exc:  # already back (a second tab, a double click)
        abort(400, str(exc))
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
        roster.switch(db.session, supporter, request.form.get("mode", ""))
    except roster.RosterError as exc:
        abort(400, str(exc))
    if request.form.get("back") == "now":
        return redirect(url_for("dashboard.now_page"))
    return redirect(url_for("dashboard.supporter_page", supporter_id=supporter_id))


@bp.get("/now")
def now_page():
    """Who would be offered a contact right now, and why."""
    rows = shifts.now_view(db.session)
    return render_template("dashboard/now.html", rows=rows, zone=shifts.zone_label(),
                           care=care.states(db.session),
                           trained=training.states(db.session), required=training.required(),
                           offered=[a for a in rows if a.offered],
                           free=[a for a in rows if a.offered and not a.busy])


# ---- API -----------------------------------------------------------------------------

def supporter_json(supporter: Supporter) -> dict:
    return {"id": supporter.id, "name": supporter.name, "phone": supporter.phone,
            "tier": supporter.tier, "languages": supporter.language_list,
            "role": supporter.role, "units": supporter.unit_list,
            "active": supporter.active, "switched_on": supporter.available,
            "trained_on": supporter.trained_on and supporter.trained_on.isoformat(),
            "refresher_due": supporter.refresher_due and supporter.refresher_due.isoformat(),
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
    except roster.RosterError as exc:
        return _refused(exc)
    return jsonify(supporter_json(supporter)), 201


@api.route("/supporters/<int:supporter_id>", methods=["PATCH", "DELETE"])
def api_supporter(supporter_id: int):
    """PATCH: change details (all fields); DELETE: off the roster."""
    supporter = _supporter(supporter_id)
    if request.method == "DELETE":
        effects.apply(transitions.take_off_roster(db.session, supporter))
        return jsonify({"ok": True})
    try:
        update_supporter(supporter, request.get_json(silent=True) or {})
    except roster.RosterError as exc:
        db.session.rollback()
        return _refused(exc)
    return jsonify(supporter_json(supporter))


@api.post("/supporters/<int:supporter_id>/restore")
def api_supporter_restore(supporter_id: int):
    """Put a supporter taken off the roster back on it."""
    supporter = _supporter(supporter_id, active=False)
    try:
        roster.restore(db.session, supporter)
    except roster.RosterError as exc:
        return _refused(exc)
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
        roster.switch(db.session, _supporter(supporter_id),
                      (request.get_json(silent=True) or {}).get("mode", ""))
    except roster.RosterError as exc:
        return _refused(exc)
    return jsonify({"ok": True})


@api.get("/availability")
def api_availability():
    """Who would be offered a contact now, and why."""
    return jsonify([{"id": a.supporter.id, "name": a.supporter.name, "tier": a.supporter.tier,
                     "offered": a.offered, "reason": a.reason, "busy": a.busy,
                     "shift": a.shift} for a in shifts.now_view(db.session)])
