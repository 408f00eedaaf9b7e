"""The coverage page: for each hour of the week, published demand, supporters on shift and
the staffing advice (``hotline.staffing.coverage``), as a table and as CSV."""

from __future__ import annotations

import csv
import io

from flask import Response, render_template

from hotline.core.extensions import db, settings
from hotline.dashboard.views import _choices, bp, spreadsheet_safe
from hotline.disclosure import joint
from hotline.models import utcnow
from hotline.roster import training
from hotline.roster.shifts import WEEKDAYS, program_zone, zone_label
from hotline.staffing import coverage
from hotline.statistics import periods

#: The CSV's columns, one row per hour of the week (the page's table, cell for cell).
CSV_COLUMNS = ("weekday", "hour", "contacts in the window", "contacts per hour",
               "supporters on shift", "supporters advised", "status")


def build() -> coverage.Coverage:
    """The week's coverage now. The newest published months are published first (their
    counts kept, as the statistics page does on its first view), so the page never waits
    for someone to open the statistics."""
    now, zone, cfg = utcnow(), program_zone(), settings()
    months = [span for span in _choices() if span.level == "month"][:coverage.MONTHS + 1]
    for span in months:
        try:
            joint.publish(db.session, span, zone, cfg.MIN_CELL, now)
        except periods.PeriodError:
            continue   # withheld: the statistics page does not show it either
    return coverage.build(db.session, now, cfg, zone)


def rows(plan: coverage.Coverage) -> list[list[object]]:
    """The hours as the CSV's rows (and the page's detailed table)."""
    return [[WEEKDAYS[h.weekday], f"{h.hour:02d}:00", h.shown,
             "" if h.rate is None else h.rate, h.coverage, h.advice_text, h.status]
            for h in plan.hours]


@bp.get("/coverage")
def coverage_page():
    plan = build()
    return render_template("dashboard/coverage.html", plan=plan, weekdays=WEEKDAYS,
                           rows=rows(plan), columns=CSV_COLUMNS, zone=zone_label(),
                           training_required=training.required())


@bp.get("/coverage.csv")
def coverage_csv():
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows(build()):
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="hotline-coverage.csv"'})
