"""The quarterly leadership report: the last four published quarters side by side.

Every figure about contacts is read from the published report of its quarter, built by
the very code that answers ``GET /api/stats?period=2026-Q1`` (``dashboard.views``:
``build_report`` and ``report_json``), so the report can never show a number, or a hidden
cell, that the API does not: nothing is counted or worked out again here. Where the API
shows ``<k`` or ``hidden``, or leaves a share or a time out (``None``: a number it rests
on is small or hidden), the cell says so and why, in one line.

Quarters not published yet (this one, and the last one while it settles) are not shown:
the report names the day each will be (``periods.published_on``), like the statistics
page's "This month so far" panel.

Program inputs (``leadership.inputs``) sit next to the usage: staff figures a coordinator
entered for each quarter, shown as entered. The staff pulse survey's trends are its closed
windows since the first quarter shown, exactly as ``hotline.pulse.results.trends`` gives
them (suppressed there, with the same k).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.orm import Session

from hotline.dashboard import in_progress, views
from hotline.disclosure.report import HIDDEN, OUTCOME_LABELS
from hotline.leadership import inputs as program_inputs
from hotline.pulse import results as pulse
from hotline.statistics import periods

#: Quarters shown side by side.
QUARTERS = 4
KEPT = "kept within the promise"
#: Why every cell of a withheld quarter is empty (the report gives the whole reason once).
WITHHELD = "the whole quarter is withheld: see its months"


@dataclass(frozen=True)
class Cell:
    """One figure: ``value`` exactly as ``/api/stats`` gives it (a count, ``<k``,
    ``hidden``, a share, seconds, or None when not shown), ``text`` as printed, and
    ``why`` in one line when it is not a number."""
    value: object
    text: str
    why: str = ""


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    cells: list[Cell]


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    note: str
    rows: list[Row]


@dataclass(frozen=True)
class PulseRow:
    """A closed survey window: its quarter (by closing day), and each share as printed,
    or, for a window under k, ``why`` once for the whole row."""
    window_id: int
    title: str
    opened: date
    closed: date
    quarter: str
    cells: dict[str, Cell]
    why: str = ""


#: The pulse trends shown, in order: the share's field of ``pulse.WindowResult``, its label.
PULSE_SHARES = (("burned_out_share", "burned out (Mini-Z 3 or more of 5)"),
                ("aware_share", "know how to reach the line"),
                ("used_share", "have used it"),
                ("likely_share", "likely to use it (4 or 5 of 5)"))


@dataclass(frozen=True)
class Column:
    """A published quarter, its report as ``/api/stats`` serves it (``data``), or why it
    is withheld (``error``)."""
    span: periods.Span
    data: dict | None
    error: str = ""


@dataclass
class Leadership:
    columns: list[Column]
    k: int
    pending: list[in_progress.Upcoming]
    sections: list[Section] = field(default_factory=list)
    retention_days: int = 0
    #: The pulse survey's closed windows since the first quarter shown, oldest first.
    pulse: list[PulseRow] = field(default_factory=list)

    @property
    def quarters(self) -> list[periods.Span]:
        return [c.span for c in self.columns]


def build(session: Session, today: date, k: int, retention_days: int) -> Leadership:
    """The report as of ``today``: the newest ``QUARTERS`` published quarters, oldest
    first, and the quarters still to be published."""
    limits = views.publication()
    quarters = [s for s in periods.listing(limits) if s.level == "quarter"][:QUARTERS][::-1]
    columns = []
    for span in quarters:
        try:
            columns.append(Column(span, views.report_json(
                views.build_report({"period": span.id}))))
        except periods.PeriodError as exc:  # a quarter withheld (disclosure.joint)
            columns.append(Column(span, None, str(exc)))
    out = Leadership(columns, k, in_progress.upcoming(today, limits, "quarter"),
                     retention_days=retention_days)
    out.sections = usage(out) + [entered(session, out)]
    if quarters:
        out.pulse = pulse_trends(session, quarters[0].first, k)
    return out


def pulse_trends(session: Session, since: date, k: int) -> list[PulseRow]:
    """The pulse survey's closed windows that closed on or after ``since`` (the first
    quarter shown), as ``pulse.results.trends`` gives them: shares of a window of k answers
    or more; a window under k only says why."""
    out = []
    for result in pulse.trends(session, k):
        if result.closed is None or result.closed < since:
            continue
        head = dict(window_id=result.window_id, title=result.title, opened=result.opened,
                    closed=result.closed, quarter=periods.containing(result.closed,
                                                                     "quarter").label)
        if result.responses is None:
            out.append(PulseRow(**head, cells={}, why=result.why or "not shown"))
            continue
        cells = {"responses": Cell(result.responses, f"{result.responses:,}")}
        for name, _label in PULSE_SHARES:
            share = getattr(result, name)
            cells[name] = Cell(share, "not shown", result.why or "not shown") \
                if share is None else Cell(share, f"{100 * share:.0f}%")
        out.append(PulseRow(**head, cells=cells))
    return out


# ---- reading a quarter's published report -------------------------------------------

def _summary(data: dict, key: str) -> object:
    return data["summary"][key]


def _table(data: dict, table_id: str, label: str) -> object:
    table = next(t for t in data["tables"] if t["id"] == table_id)
    return next(r["values"][0] for r in table["rows"] if r["label"] == label)


def _title(columns: list[Column], table_id: str, default: str) -> str:
    for column in columns:
        for table in (column.data or {}).get("tables", ()):
            if table["id"] == table_id:
                return table["title"]
    return default


def count_cell(value: object, k: int, unit: str) -> Cell:
    """A count as the API shows it: the number, ``<k`` or ``hidden``, with why."""
    if value == f"<{k}":
        return Cell(value, value, f"fewer than {k} {unit}, possibly none")
    if value == HIDDEN:
        return Cell(value, value, f"hidden so that a count below {k} cannot be worked out "
                                  "from the totals")
    return Cell(value, f"{value:,}" if isinstance(value, int) else str(value))


def derived_cell(value: object, k: int, suffix: str, rests: list[tuple[str, object]]) -> Cell:
    """A share or a time (None when the API leaves it out), and why it is left out: the
    first number it rests on that is small or hidden."""
    if value is not None:
        return Cell(value, f"{value:g}{suffix}")
    for label, shown in rests:
        if shown == f"<{k}":
            return Cell(None, "not shown", f"it rests on {label}, fewer than {k}")
        if shown == HIDDEN:
            return Cell(None, "not shown", f"it rests on {label}, which is hidden")
    return Cell(None, "not shown", "it rests on a count that is small or hidden")


def _row(columns: list[Column], row_id: str, label: str, read) -> Row:
    cells = []
    for column in columns:
        cells.append(Cell(None, "withheld", WITHHELD) if column.data is None
                     else read(column.data))
    return Row(row_id, label, cells)


def usage(report: Leadership) -> list[Section]:
    """Contacts, reaching a human, time to a human, callbacks, and the follow-up scores."""
    k, cols = report.k, report.columns
    peer, backup = OUTCOME_LABELS["connected"], OUTCOME_LABELS["connected_backup"]
    asked = OUTCOME_LABELS["callback_requested"]

    def count(table_id: str, label: str, unit: str = "contacts"):
        return lambda d: count_cell(_table(d, table_id, label), k, unit)

    def waits(d: dict) -> list[tuple[str, object]]:
        table = next(t for t in d["tables"] if t["id"] == "time_to_human")
        return [(f"the waits of {r['label']}", r["values"][0])
                for r in table["rows"]]

    def seconds(key: str):
        return lambda d: derived_cell(_summary(d, key), k, " s", waits(d))

    reach = [
        _row(cols, "contacts", "Contacts",
             lambda d: count_cell(_summary(d, "contacts"), k, "contacts")),
        _row(cols, "reached_human", "Reached a human (share of contacts)",
             lambda d: derived_cell(_summary(d, "share_reached_human"), k, "%", [
                 ("the contacts", _summary(d, "contacts")),
                 (f"the contacts who {peer}", _table(d, "outcomes", peer)),
                 (f"the contacts who {backup}", _table(d, "outcomes", backup))])),
        _row(cols, "reached_peer", f"Contacts who {peer}", count("outcomes", peer)),
        _row(cols, "reached_backup", f"Contacts who {backup}", count("outcomes", backup)),
        _row(cols, "median_seconds", "Time to a human, median (seconds)",
             seconds("median_seconds_to_human")),
        _row(cols, "p90_seconds", "Time to a human, 90th percentile (seconds)",
             seconds("p90_seconds_to_human")),
    ]
    callbacks = [
        _row(cols, "callbacks_asked", f"Contacts who {asked}", count("outcomes", asked)),
        _row(cols, "callbacks_kept", "Callbacks kept within the promise",
             count("callbacks", KEPT)),
        _row(cols, "callbacks_kept_share", "Callbacks kept (share of those asked for)",
             lambda d: derived_cell(_summary(d, "share_callbacks_kept"), k, "%", [
                 ("the callbacks kept", _table(d, "callbacks", KEPT)),
                 ("the callbacks asked for", _table(d, "outcomes", asked))])),
    ]
    sections = [
        Section("reach", "Contacts and reaching a human", "time to a human: from the first "
                "ring or text to the moment a peer was there", reach),
        Section("callbacks", "Callbacks", "", callbacks),
    ]
    for kind, default in (("helpful", "Follow-up: how helpful was it?"),
                          ("burnout", "Mini-Z burnout")):
        table_id = f"score_{kind}"
        rows = [_row(cols, f"{table_id}_{v}", f"answered {v}",
                     count(table_id, str(v), "answers")) for v in range(1, 6)]
        sections.append(Section(table_id, _title(cols, table_id, default),
                                "answers to the follow-up text, by score", rows))
    return sections


def entered(session: Session, report: Leadership) -> Section:
    """The program inputs of the same quarters, as a coordinator entered them."""
    found = program_inputs.of(session, [s.id for s in report.quarters])

    def row(name: str, label: str, show) -> Row:
        cells = []
        for span in report.quarters:
            value = getattr(found.get(span.id), name, None)
            cells.append(Cell(None, "not entered", "") if value is None
                         else Cell(value, show(value)))
        return Row(name, label, cells)

    return Section("inputs", "Program inputs", "entered by coordinators for each quarter: "
                   "staff figures, shown as entered", [
                       row("staff_headcount", "Staff headcount", lambda v: f"{v:,}"),
                       row("turnover_percent", "Staff turnover rate", lambda v: f"{v:g}%"),
                       row("supporters_trained", "Supporters trained", lambda v: f"{v:,}")])
