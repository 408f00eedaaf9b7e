"""Program inputs per quarter: the rules for entering them, saving and reading them.

A coordinator enters, for a calendar quarter, the staff headcount the program serves, the
staff turnover rate (percent) and how many supporters were trained. They are the program's
own figures about staff, typed by a coordinator, not counts of clinicians who reached out:
the report shows them as entered, not suppressed (as the dashboard shows trained supporters
by month). Each is optional: a figure not known yet stays empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.core.errors import HotlineError
from hotline.models import ProgramInputs, utcnow
from hotline.statistics import periods

FIELDS = ("quarter", "staff_headcount", "turnover_percent", "supporters_trained")
LABELS = {"quarter": "Quarter", "staff_headcount": "Staff headcount",
          "turnover_percent": "Turnover rate (%)", "supporters_trained": "Supporters trained"}
#: Larger than any health system's staff: a typing slip, not a headcount.
MAX_HEADCOUNT = 1_000_000
#: Quarters the form offers: this one and the ones before it.
QUARTERS_OFFERED = 8


class InputsError(HotlineError, ValueError):
    """Refused inputs: ``errors`` maps each refused field to what to fix."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{LABELS[k]}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class Inputs:
    quarter: str
    staff_headcount: int | None = None
    turnover_percent: float | None = None
    supporters_trained: int | None = None
    updated_by: str = ""


def offered(today: date) -> list[periods.Span]:
    """The quarters the form offers, newest first: this one and the seven before it."""
    span, out = periods.containing(today, "quarter"), []
    for _ in range(QUARTERS_OFFERED):
        out.append(span)
        span = periods.containing(span.first - timedelta(days=1), "quarter")
    return out


def _whole(text: str, label: str, errors: dict, name: str, top: int) -> int | None:
    if not text:
        return None
    if not re.fullmatch(r"\d{1,7}", text.replace(",", "")):
        errors[name] = f"enter a whole number, like 240 (you typed {text[:20]!r})"
        return None
    value = int(text.replace(",", ""))
    if value > top:
        errors[name] = f"{label} cannot be more than {top:,}"
        return None
    return value


def check(data, today: date) -> Inputs:
    """The inputs of a form or JSON body, as typed; InputsError names every refused field."""
    errors: dict[str, str] = {}
    raw = {name: str(data.get(name) or "").strip() for name in FIELDS}
    quarter = None
    try:
        quarter = periods.parse(raw["quarter"])
    except periods.PeriodError:
        errors["quarter"] = "choose a quarter, like 2026-Q1"
    else:
        if quarter.level != "quarter":
            errors["quarter"] = "choose a quarter, like 2026-Q1 (not a month)"
        elif quarter.first > today:
            errors["quarter"] = f"{quarter.label} has not started yet"
        elif quarter not in offered(today):
            errors["quarter"] = (f"{quarter.label} is too long ago: choose one of the last "
                                 f"{QUARTERS_OFFERED} quarters")
    headcount = _whole(raw["staff_headcount"], "the staff headcount", errors,
                       "staff_headcount", MAX_HEADCOUNT)
    if headcount == 0:
        errors["staff_headcount"] = "the staff headcount must be at least 1"
    turnover = None
    if raw["turnover_percent"]:
        text = raw["turnover_percent"].rstrip("%").strip()
        if not re.fullmatch(r"\d{1,3}(\.\d)?", text):
            errors["turnover_percent"] = ("enter a percentage from 0 to 100 with at most one "
                                          f"decimal, like 8.5 (you typed {text[:20]!r})")
        elif float(text) > 100:
            errors["turnover_percent"] = "a turnover rate cannot be more than 100%"
        else:
            turnover = float(text)
    trained = _whole(raw["supporters_trained"], "supporters trained", errors,
                     "supporters_trained", MAX_HEADCOUNT)
    if trained is not None and headcount and trained > headcount:
        errors["supporters_trained"] = (f"{trained} supporters trained is more than the staff "
                                        f"headcount ({headcount})")
    if not errors and headcount is None and turnover is None and trained is None:
        errors["staff_headcount"] = "enter at least one of the three figures"
    if errors:
        raise InputsError({name: errors[name] for name in FIELDS if name in errors})
    return Inputs(quarter.id, headcount, turnover, trained)


def save(session: Session, inputs: Inputs, by: str) -> Inputs:
    """Store a quarter's inputs (replacing what was entered for it before) and commit."""
    row = session.get(ProgramInputs, inputs.quarter)
    if row is None:
        row = ProgramInputs(quarter=inputs.quarter)
        session.add(row)
    row.staff_headcount = inputs.staff_headcount
    row.turnover_percent = inputs.turnover_percent
    row.supporters_trained = inputs.supporters_trained
    row.updated_by = by
    row.updated_at = utcnow()
    session.commit()
    return _inputs(row)


def of(session: Session, quarters: list[str]) -> dict[str, Inputs]:
    """What was entered for each of ``quarters`` (ids; those with nothing are left out)."""
    rows = session.scalars(select(ProgramInputs).where(ProgramInputs.quarter.in_(quarters)))
    return {row.quarter: _inputs(row) for row in rows}


def _inputs(row: ProgramInputs) -> Inputs:
    return Inputs(row.quarter, row.staff_headcount, row.turnover_percent,
                  row.supporters_trained, row.updated_by)
