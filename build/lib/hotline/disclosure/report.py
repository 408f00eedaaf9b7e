"""The publishable report: exact counts from ``hotline.statistics.queries`` made safe to show.

Every count becomes a named cell; every identity between published numbers (a week is
its days, an outcome mix adds up to the contacts, the hours of all Mondays add up to the
Mondays of the daily series...) becomes a line; ``suppression.suppress`` then decides what
is hidden. Shares, medians and hours are shown only when nothing they rest on is hidden.
The same report feeds the pages, ``/api/stats`` and the CSV export.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from hotline.statistics import queries as stats
from hotline.disclosure.suppression import Line, Suppressed, suppress
from hotline.roster.shifts import WEEKDAYS

HIDDEN = "hidden"
CHANNELS = ("voice", "sms")
OUTCOME_LABELS = {"connected": "reached a peer", "connected_backup": "reached a backup",
                  "callback_requested": "asked for a callback",
                  "crisis_transfer": "went to the crisis line", "abandoned": "hung up waiting",
                  "failed": "failed", "none": "no outcome yet"}
#: Cells a coordinator most wants to see: hidden only when nothing cheaper will do.
COST_TOTAL, COST_SUBTOTAL = 100, 10
#: The rules of caring for supporters (``stats.CARE_KINDS``): table id (the event kind),
#: its title and the label of its "yes" row. Each is a yes/no split of the contacts.
CARE_TABLES = (("care_cooldown", "A cool-down after a contact held a supporter back",
                "a supporter cooling down was offered after the others"),
               ("care_cap", "Today's cap held a supporter back",
                "a supporter at today's cap was not offered"),
               ("care_paused", "A supporter was paused after missed offers",
                "a missed offer paused the supporter"))


@dataclass
class Table:
    """Rows of labelled cells (cell keys); ``columns`` name the cells of each row."""
    id: str
    title: str
    columns: list[str]
    rows: list[tuple[str, list[str]]]
    chart: str = "bars"          # bars, columns, heatmap or none
    note: str = ""


@dataclass
class Report:
    """Cells, their lines and tables, and the suppression decided for them."""
    period: stats.Period
    k: int
    values: dict[str, int] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    cost: dict[str, int] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    summary: dict[str, object] = field(default_factory=dict)
    hidden: Suppressed = field(default_factory=Suppressed)
    #: The published period (``hotline.statistics.periods.Span``) it was built for, if any.
    span: object = None

    def cell(self, key: str, value: int, cost: int = 1) -> str:
        self.values[key] = int(value)
        if cost > 1:
            self.cost[key] = cost
        return key

    def total(self, total: str, parts: list[str]) -> None:
        """Publish the line ``total = sum(parts)``."""
        self.lines.append([(total, 1)] + [(p, -1) for p in parts])

    def shown(self, key: str) -> int | str:
        """The cell as shown: its count (k or more), ``<k`` (fewer than k, possibly none:
        zeros too) or ``hidden``."""
        if key in self.hidden.primary:
            return f"<{self.k}"
        if key in self.hidden.complementary:
            return HIDDEN
        return self.values[key]

    def visible(self, *keys: str) -> bool:
        return not any(key in self.hidden.hidden for key in keys)

    def share(self, part: str, whole: str) -> float | None:
        """part / whole in percent, only when both are shown and whole is not zero."""
        if not self.visible(part, whole) or not self.values[whole]:
            return None
        return round(100 * self.values[part] / self.values[whole], 1)


def build(raw: stats.Raw, period: stats.Period, k: int) -> Report:
    """Cells, lines and tables for ``raw``, then suppression of this report on its own.
    Safe for one report only: what the dashboard publishes goes through
    ``hotline.disclosure.joint``, which decides over every published period at once."""
    report = assemble(raw, period, k)
    report.hidden = suppress(report.values, report.lines, k, report.cost)
    finish(report, raw)
    return report


def assemble(raw: stats.Raw, period: stats.Period, k: int) -> Report:
    """Cells, lines and tables for ``raw``; nothing hidden yet."""
    report = Report(period=period, k=k)
    report.cell("contacts", raw.contacts, COST_TOTAL)
    _time_series(report, raw)
    _heatmap(report, raw)
    _breakdowns(report, raw)
    _waits(report, raw)
    _callbacks_and_followups(report, raw)
    _scores(report, raw)
    _supporters(report, raw)
    return report


def finish(report: Report, raw: stats.Raw) -> None:
    """The headline numbers, once ``report.hidden`` is decided."""
    _summary(report, raw)


#: The longest period shown day by day (a month). A longer one is shown by week and by
#: month only: its days are already published in its months (``hotline.statistics.periods``),
#: and a year of daily bars is unreadable.
DAY_SERIES_MAX_DAYS = 31


def days_shown(period: stats.Period) -> bool:
    """Whether ``period`` is published day by day (``DAY_SERIES_MAX_DAYS``)."""
    return len(period.days()) <= DAY_SERIES_MAX_DAYS


def _time_series(report: Report, raw: stats.Raw) -> None:
    per_day = Counter()
    for (day, _hour), n in raw.by_hour.items():
        per_day[day] += n
    days = report.period.days()
    by_day = days_shown(report.period)
    if by_day:
        day_keys = [report.cell(f"day:{d}", per_day[d]) for d in days]
        report.total("contacts", day_keys)
        report.tables.append(Table("by_day", "Contacts by day", ["contacts"],
                                   [(f"{d:%a %d %b}", [key]) for d, key in zip(days, day_keys)],
                                   chart="columns"))
    for unit, label, first in (("week", "Contacts by week", _week_start),
                               ("month", "Contacts by month", _month_start)):
        groups: dict[date, list[date]] = {}
        for d in days:
            groups.setdefault(first(d), []).append(d)
        rows = []
        for start, members in groups.items():
            key = report.cell(f"{unit}:{start}", sum(per_day[d] for d in members),
                              COST_SUBTOTAL)
            if by_day:
                report.total(key, [f"day:{d}" for d in members])
            rows.append((_unit_label(unit, start, len(members)), [key]))
        report.total("contacts", [keys[0] for _, keys in rows])
        report.tables.append(Table(f"by_{unit}", label, ["contacts"], rows, chart="columns",
                                   note="a month at either end of the period may be partial"
                                   if unit == "month" else ""))


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _unit_label(unit: str, start: date, days: int) -> str:
    if unit == "week":
        return f"week of {start:%d %b}" + ("" if days == 7 else f" ({days} days)")
    return f"{start:%b %Y}" + ("" if days >= 28 else f" ({days} days)")


def _heatmap(report: Report, raw: stats.Raw) -> None:
    rows = []
    by_weekday = Counter()
    for (day, hour), n in raw.by_hour.items():
        by_weekday[(day.weekday(), hour)] += n
    by_day, every = days_shown(report.period), []
    for wd, name in enumerate(WEEKDAYS):
        keys = [report.cell(f"hour:{wd}:{h:02d}", by_weekday[(wd, h)]) for h in range(24)]
        if by_day:  # the hours of all Mondays are the Mondays
            same_day = [f"day:{d}" for d in report.period.days() if d.weekday() == wd]
            report.lines.append([(k, 1) for k in keys] + [(k, -1) for k in same_day])
        every += keys
        rows.append((name, keys))
    if not by_day:  # without days, the hours add up to the whole
        report.total("contacts", every)
    report.tables.append(Table("hour_of_week", "Contacts by hour of the week",
                               [f"{h:02d}" for h in range(24)], rows, chart="heatmap",
                               note="hours in the program's time zone, by starting hour"))


def _one_way(report: Report, table_id: str, title: str, total: str,
             labels: list[tuple[str, str, int]], chart: str = "bars", note: str = "") -> None:
    """A breakdown of ``total`` into labelled cells: (label, key, value)."""
    keys = [report.cell(key, value) for _label, key, value in labels]
    report.total(total, keys)
    report.tables.append(Table(table_id, title, ["contacts"],
                               [(label, [key]) for (label, _k, _v), key in zip(labels, keys)],
                               chart=chart, note=note))


def _breakdowns(report: Report, raw: stats.Raw) -> None:
    _one_way(report, "channel", "Contacts by channel", "contacts",
             [(c, f"channel:{c}", raw.by_channel.get(c, 0)) for c in CHANNELS])
    _one_way(report, "outcomes", "Outcome of each contact", "contacts",
             [(OUTCOME_LABELS[o], f"outcome:{o}", raw.outcomes.get(o, 0))
              for o in stats.OUTCOMES])
    _one_way(report, "escalation", "Escalated to the backup tier", "contacts",
             [("escalated", "escalated:yes", raw.escalated),
              ("not escalated", "escalated:no", raw.contacts - raw.escalated)])
    asked = raw.followups.get(stats.MATCH_KIND, 0)
    _one_way(report, "match", "Asked for a match (a peer in their role, or nobody from "
             "their unit)", "contacts",
             [("asked for a match", "match:yes", asked),
              ("did not", "match:no", raw.contacts - asked)])
    for kind, title, label in CARE_TABLES:
        held = raw.care.get(kind, 0)
        _one_way(report, kind, title, "contacts",
                 [(label, f"{kind}:yes", held), ("not", f"{kind}:no", raw.contacts - held)],
                 note="contacts where this rule of caring for supporters took a supporter "
                      "out of an offer (counted once a contact)")
    accepted = raw.followups.get(stats.OUTREACH_KIND, 0)
    _one_way(report, "outreach", "Came from an outreach text a colleague asked for",
             "contacts",
             [("said yes to an outreach text", "outreach:yes", accepted),
              ("came by themselves", "outreach:no", raw.contacts - accepted)])
    reached = min(raw.followups.get(stats.OUTREACH_REACHED, 0), accepted)
    _one_way(report, "outreach_reached", "Outreach accepted: reached a peer", "outreach:yes",
             [("reached a peer", "outreach:reached", reached),
              ("not reached", "outreach:unreached", accepted - reached)],
             note="contacts opened by a yes to an outreach text whose callback reached them")
    # Texts sent count on the day each left, the yeses on the day the contact started: not
    # the same days, so no line ties them (a cell of its own, suppressed like the rest).
    report.cell("outreach:sent", raw.followups.get(stats.OUTREACH_SENT, 0))
    report.tables.append(Table("outreach_sent", "Outreach texts sent", ["texts"],
                               [("texts sent", ["outreach:sent"])],
                               note="counted on the day each text left"))
    if not days_shown(report.period):
        # Not additive: a caller seen twice in a month is a repeat caller in its quarter
        # too, so a quarter's repeat contacts are at least its months' sum, an inequality
        # the joint check does not model (12 in February and 16 in the quarter left
        # January and March 0..4 together). Shown for a month only.
        return
    _one_way(report, "repeat", "Repeat contacts", "contacts",
             [("from a caller seen more than once in the period", "repeat:yes", raw.repeat),
              ("from a caller seen once", "repeat:no", raw.contacts - raw.repeat)],
             note="counted from keyed hashes of numbers, never shown one by one")


def _waits(report: Report, raw: stats.Raw) -> None:
    human = report.cell("human", sum(raw.outcomes.get(o, 0) for o in stats.HUMAN),
                        COST_SUBTOTAL)
    report.total(human, [f"outcome:{o}" for o in stats.HUMAN])
    labels = [(label, f"wait:{i}", sum(n for s, n in raw.waits.items()
                                       if s >= lo * 60 and (hi is None or s < hi * 60)))
              for i, (label, lo, hi) in enumerate(stats.WAIT_BUCKETS)]
    unknown = report.values[human] - sum(v for _l, _k, v in labels)
    if unknown:
        labels.append(("not measured", "wait:unknown", max(unknown, 0)))
    _one_way(report, "time_to_human", "Time to a human (contacts that reached one)", human,
             labels, note="from the first ring or text to the moment a peer was there")


def _callbacks_and_followups(report: Report, raw: stats.Raw) -> None:
    _one_way(report, "callbacks", "Callbacks (contacts that asked for one)",
             "outcome:callback_requested",
             [(s if s != "kept" else "kept within the promise", f"callback:{s}",
               raw.callbacks.get(s, 0)) for s in stats.CALLBACK_STATES])
    f = raw.followups
    asked = report.cell("followup:asked", f["followup_consent"] + f["followup_declined"],
                        COST_SUBTOTAL)
    _one_way(report, "consent", "Follow-up consent (contacts asked)", asked,
             [("said yes", "followup:consent", f["followup_consent"]),
              ("said no", "followup:declined", f["followup_declined"])])
    sent = report.cell("followup:sent", f["followup_sent"], COST_SUBTOTAL)
    _one_way(report, "replies", "Replies to follow-up texts (contacts texted)", sent,
             [("replied", "followup:replied", min(f["followup_reply"], f["followup_sent"])),
              ("no reply", "followup:silent", max(f["followup_sent"] - f["followup_reply"], 0))])


def _scores(report: Report, raw: stats.Raw) -> None:
    titles = {"helpful": "How helpful was it? (1 not at all – 5 very)",
              "burnout": "Burnout (Mini-Z: 1 none – 5 completely burned out)"}
    for kind in stats.SCORE_KINDS:
        counts = raw.scores.get(kind, Counter())
        total = report.cell(f"score:{kind}", sum(counts.values()), COST_SUBTOTAL)
        _one_way(report, f"score_{kind}", titles[kind], total,
                 [(str(v), f"score:{kind}:{v}", counts.get(v, 0)) for v in stats.SCORE_VALUES])


LOAD_COLUMNS = ("accepted", "declined", "missed", "other")


def _supporters(report: Report, raw: stats.Raw) -> None:
    rows, column_keys = [], {c: [] for c in ("offers",) + LOAD_COLUMNS}
    for row in raw.supporters:
        # keyed by supporter id: the same supporter's cells in nested periods add up
        keys = {c: report.cell(f"load:{row['id']}:{c}", row[c]) for c in column_keys}
        report.total(keys["offers"], [keys[c] for c in LOAD_COLUMNS])
        for c, key in keys.items():
            column_keys[c].append(key)
        rows.append((row["name"], [keys[c] for c in column_keys]))
    totals = {c: report.cell(f"load:all:{c}", sum(report.values[k] for k in keys),
                             COST_SUBTOTAL) for c, keys in column_keys.items()}
    for c, keys in column_keys.items():
        report.total(totals[c], keys)
    report.total(totals["offers"], [totals[c] for c in LOAD_COLUMNS])
    rows.append(("all supporters", [totals[c] for c in column_keys]))
    report.tables.append(Table("supporter_load", "Supporter load (offers made to each)",
                               list(column_keys), rows, chart="none",
                               note="missed: no answer, busy or failed; other: cancelled "
                                    "because someone else answered or the caller left"))


def _summary(report: Report, raw: stats.Raw) -> None:
    """Headline numbers, each shown only when what it rests on is shown."""
    # A median narrows the buckets it falls between: shown only when every bucket is.
    waits = next((t for t in report.tables if t.id == "time_to_human"), None)
    human_ok = report.visible("human") and (waits is None or report.visible(
        *(key for _label, keys in waits.rows for key in keys)))
    minutes = {row["name"]: round(row["minutes"] / 60, 1) for row in raw.supporters
               if report.visible(f"load:{row['id']}:accepted")}
    report.summary = {
        "contacts": report.shown("contacts"),
        # Exact seconds here (CSV, JSON); the page writes them as "1 min 05 s".
        "median_seconds_to_human": stats.quantile(raw.waits, 0.5) if human_ok else None,
        "p90_seconds_to_human": stats.quantile(raw.waits, 0.9) if human_ok else None,
        "share_reached_human": report.share("human", "contacts"),
        "share_escalated": report.share("escalated:yes", "contacts"),
        "share_abandoned": report.share("outcome:abandoned", "contacts"),
        "share_repeat": report.share("repeat:yes", "contacts")
        if "repeat:yes" in report.values else None,
        "share_callbacks_kept": report.share("callback:kept", "outcome:callback_requested"),
        "share_consented": report.share("followup:consent", "followup:asked"),
        "share_replied": report.share("followup:replied", "followup:sent"),
        "hours_on_contacts": minutes,
    }
