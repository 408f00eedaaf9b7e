"""The attacker: a coordinator who asks /api/stats for every period it accepts, then
solves one linear programme over everything it got back.

The data is the demo's history at a tenth of its volume (a small program: about seven
contacts a day, so most cells are small) over a quarter and a half, seen at a fixed
``NOW``. The attacker asks for every run of whole weeks over the data (what the API
accepted before the fixed hierarchy), every calendar month, quarter and year, and every
period ``/api/stats/periods`` lists; whatever comes back 200 is published.

The model is independent of the suppression code. Its unknowns are the true per-day
counts (*atoms*): contacts of each local day and hour, of each day by channel, outcome,
escalation, time-to-human bucket and callback state; follow-ups asked, said yes, texted
and replied by day; outreach accepted, reached and texts sent by day; scores by day and
value; offers by day, supporter and result; and,
per published period, its repeat contacts (not additive). Every published cell is a sum
of atoms, read off its table, row and period. What a reader knows of the atoms: each is
at least 0; each day's hours, channels and outcomes add up to the same contacts, its
buckets of time to a human to its contacts that reached one, its callback states to its
callback requests, and replies are at most texts; every shown cell equals its number; a
``<k`` cell lies in 0..k-1, a ``hidden`` one is at least k. For every published cell whose
true count is 1..k-1, HiGHS finds its smallest and largest possible value, and the cell
must keep ``min_range(k)`` of the values 1..k-1 (5 of 10 for k = 11).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

from hotline.statistics import queries as stats
from hotline.disclosure import report as reports
from hotline.disclosure.suppression import min_range
from hotline.models import Supporter
from hotline.roster.shifts import WEEKDAYS, program_zone

# A linear programme over every period: seconds a test, left out of `make test-fast`.
pytestmark = pytest.mark.slow

K = 11
#: Seen from here: January to March 2025 are settled and published, with their quarter.
NOW = datetime(2025, 4, 20, 12, 0, tzinfo=UTC)
DATA_WEEKS = 15
#: Stop after this many recovered cells (on an unsafe design there are hundreds).
REPORT_AT_MOST = 25


@pytest.fixture
def small_program(app, session, coordinator, clock):
    from hotline.dashboard import demo
    session.add_all([Supporter(name="Peer A", phone="+16175550181", tier=1),
                     Supporter(name="Peer B", phone="+16175550182", tier=1),
                     Supporter(name="Backup C", phone="+16175550183", tier=2)])
    session.commit()
    assert demo.seed_history(session, program_zone(), now=NOW, weeks=DATA_WEEKS, scale=0.1)
    clock.set(NOW)
    return coordinator


def candidates(zone) -> list[dict]:
    """Every period a coordinator could ask for: runs of whole weeks over the data,
    calendar months, quarters and years, as from/to."""
    today = NOW.astimezone(zone).date()
    monday = today - timedelta(days=7 * DATA_WEEKS + today.weekday())
    weeks = [monday + timedelta(days=7 * i) for i in range(DATA_WEEKS + 1)]
    out = [{"from": a.isoformat(), "to": (b + timedelta(days=6)).isoformat()}
           for i, a in enumerate(weeks) for b in weeks[i:]]
    for y in (2024, 2025):
        out.append({"from": f"{y}-01-01", "to": f"{y}-12-31"})
        for m in range(1, 13):
            last = (date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1))
            out.append({"from": f"{y}-{m:02d}-01", "to": last.isoformat()})
        for q in range(4):
            last = date(y + (q == 3), (3 * q + 3) % 12 + 1, 1) - timedelta(days=1)
            out.append({"from": f"{y}-{3 * q + 1:02d}-01", "to": last.isoformat()})
    return out


def harvest(client, session, zone) -> list[tuple[dict, list, dict]]:
    """(period JSON, tables JSON, true counts by table index and row) of every distinct
    published period."""
    asked = candidates(zone)
    listed = client.get("/api/stats/periods")
    if listed.status_code == 200:
        asked += [{"period": p["id"]} for p in listed.json["periods"]]
    seen, out = set(), []
    for query in asked:
        response = client.get("/api/stats", query_string=query)
        if response.status_code != 200:
            continue
        data = response.json
        span = (data["period"]["from"], data["period"]["to"])
        if span in seen:
            continue
        seen.add(span)
        period = stats.Period(date.fromisoformat(span[0]), date.fromisoformat(span[1]), zone)
        exact = reports.build(stats.collect(session, period, now=NOW), period, K)
        tables = {t.id: t for t in exact.tables}
        truth = {(t["id"], r): [exact.values[key] for key in tables[t["id"]].rows[r][1]]
                 for t in data["tables"] for r in range(len(t["rows"]))}
        out.append((data["period"], data["tables"], truth))
    return out


OUTCOME_OF = {label: o for o, label in reports.OUTCOME_LABELS.items()}
WAIT_OF = {label: str(i) for i, (label, _lo, _hi) in enumerate(stats.WAIT_BUCKETS)}
WAIT_OF["not measured"] = "unknown"
CARE_OF = {kind: label for kind, _title, label in reports.CARE_TABLES}
CALLBACK_OF = {("kept within the promise" if s == "kept" else s): s
               for s in stats.CALLBACK_STATES}


class Model:
    """Atoms, the knowledge that ties them, and each published cell as a sum of them.

    Per-day atoms for every count would be a linear programme of tens of thousands of
    unknowns; it is cut down exactly. Days are published one by one, the rest only over
    whole periods, so the published periods' first and last days cut the calendar into
    *segments* no period boundary crosses, and every published cell is a sum over whole
    segments (hours of the week: over a segment's days of one weekday). The atoms are
    then: each day's contacts ``n``; per segment and weekday, contacts by hour ``h``; per
    segment, contacts by channel, outcome, escalation, time-to-human bucket and callback
    state, follow-ups, scores and offers. Nothing is lost: any per-segment totals that
    meet the ties below are the sums of some per-day counts that meet them day by day
    (give each day its share of every total in proportion to its contacts, and each
    outcome's buckets in proportion to the outcome), so the linear programme allows
    exactly the values it would allow over per-day atoms.
    """

    def __init__(self, supporters: dict[str, int]) -> None:
        self.supporters = supporters
        self.index: dict[tuple, int] = {}
        self.eq: list[tuple[dict[int, float], float]] = []
        self.ub: list[tuple[dict[int, float], float]] = []
        self.protected: list[tuple[dict[int, float], int, str]] = []
        self.periods: list[tuple[date, date]] = []
        self.published: list[tuple] = []

    def atom(self, *key) -> int:
        if key not in self.index:
            self.index[key] = len(self.index)
        return self.index[key]

    # -- segments --------------------------------------------------------------------

    def add_period(self, period: dict, tables: list, truth: dict) -> None:
        first, last = date.fromisoformat(period["from"]), date.fromisoformat(period["to"])
        self.periods.append((first, last))
        self.published.append((period, tables, truth))

    def _segments(self) -> None:
        cuts = sorted({f for f, _ in self.periods} | {la + timedelta(days=1)
                                                      for _, la in self.periods})
        self.segments = list(pairwise(cuts))   # [start, end)

    def _segs(self, first: date, last: date) -> list[tuple[date, date]]:
        return [g for g in self.segments if first <= g[0] and g[1] <= last + timedelta(days=1)]

    def contacts(self, days) -> dict[int, float]:
        return {self.atom("n", d): 1.0 for d in days}

    def cell(self, period: dict, table: str, label: str, column: str, days: list[date]):
        """A published cell as {atom: coefficient}."""
        segs = self._segs(days[0], days[-1])
        by = defaultdict(float)

        def add(terms, sign=1.0):
            for a, c in terms.items():
                by[a] += sign * c

        def each(*key):
            return {self.atom(key[0], g, *key[1:]): 1.0 for g in segs}
        if table in ("by_day", "by_week", "by_month"):
            add(self.contacts(self._days_of(table, label, days)))
        elif table == "hour_of_week":
            add(each("h", WEEKDAYS.index(label), int(column)))
        elif table == "channel":
            add(each("c", label))
        elif table == "outcomes":
            add(each("o", OUTCOME_OF[label]))
        elif table == "escalation":
            if label == "escalated":
                add(each("e"))
            else:
                add(self.contacts(days))
                add(each("e"), -1)
        elif table == "match":  # issue 16: like escalation, a yes and its complement
            if label == "asked for a match":
                add(each("m"))
            else:
                add(self.contacts(days))
                add(each("m"), -1)
        elif table in CARE_OF:  # issue 16 part 3: a yes per rule and its complement
            if label == CARE_OF[table]:
                add(each("k", table))
            else:
                add(self.contacts(days))
                add(each("k", table), -1)
        elif table == "outreach":  # issue 17: like the match, a yes and its complement
            if label == "said yes to an outreach text":
                add(each("a"))
            else:
                add(self.contacts(days))
                add(each("a"), -1)
        elif table == "outreach_reached":  # issue 17: the yeses whose callback reached them
            if label == "reached a peer":
                add(each("x"))
            else:
                add(each("a"))
                add(each("x"), -1)
        elif table == "outreach_sent":  # texts sent: by the day each left, tied to nothing
            add(each("t"))
        elif table == "repeat":
            repeat = {self.atom("r", period["from"], period["to"]): 1.0}
            if label.startswith("from a caller seen more"):
                add(repeat)
            else:
                add(self.contacts(days))
                add(repeat, -1)
        elif table == "time_to_human":
            add(each("w", WAIT_OF[label]))
        elif table == "callbacks":
            add(each("b", CALLBACK_OF[label]))
        elif table == "consent":
            add(each("f", "yes" if label == "said yes" else "no"))
        elif table == "replies":
            add(each("f", "replied"))
            if label == "no reply":
                add(each("f", "sent"))
                add(each("f", "replied"), -2)
        elif table.startswith("score_"):
            add(each("s", table[6:], int(label)))
        elif table == "supporter_load":
            sids = list(self.supporters.values()) if label == "all supporters" \
                else [self.supporters[label]]
            cols = reports.LOAD_COLUMNS if column == "offers" else (column,)
            for sid in sids:
                for col in cols:
                    add(each("l", sid, col))
        else:
            raise AssertionError(f"unknown table {table}")
        return {a: c for a, c in by.items() if c}

    def _days_of(self, table: str, label: str, days: list[date]) -> list[date]:
        if table == "by_day":
            return [d for d in days if f"{d:%a %d %b}" == label]
        if table == "by_week":
            monday = next(d - timedelta(days=d.weekday()) for d in days
                          if f"week of {d - timedelta(days=d.weekday()):%d %b}" ==
                          label.split(" (")[0])
            return [d for d in days if 0 <= (d - monday).days < 7]
        name = label.split(" (")[0]
        return [d for d in days if f"{d:%b %Y}" == name]

    def build(self) -> None:
        """Every published cell, then what ties the atoms."""
        self._segments()
        for period, tables, truth in self.published:
            self._publish(period, tables, truth)
        self._tie()

    def _publish(self, period: dict, tables: list, truth: dict) -> None:
        first, last = date.fromisoformat(period["from"]), date.fromisoformat(period["to"])
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        for table in tables:
            for r, row in enumerate(table["rows"]):
                columns = table["columns"] if len(table["columns"]) == len(row["values"]) \
                    else ["contacts"]
                for column, shown, true in zip(columns, row["values"], truth[table["id"], r]):
                    terms = self.cell(period, table["id"], row["label"], column, days)
                    name = f"{period['from']}..{period['to']} {table['id']} {row['label']} " \
                           f"{column}"
                    if isinstance(shown, int):
                        assert shown >= K, name
                        self.eq.append((terms, float(shown)))
                        continue
                    if shown == f"<{K}":
                        self.ub.append((terms, K - 1.0))
                        if true >= 1:
                            self.protected.append((terms, true, name))
                    else:
                        assert shown == "hidden", name
                        self.ub.append(({a: -c for a, c in terms.items()}, -float(K)))
                    self.ub.append(({a: -c for a, c in terms.items()}, 0.0))

    def _tie(self) -> None:
        """What holds of every segment, shown or not."""
        for g in self.segments:
            days = [g[0] + timedelta(days=i) for i in range((g[1] - g[0]).days)]
            contacts = self.contacts(days)
            for wd in range(7):
                terms = {self.atom("n", d): 1.0 for d in days if d.weekday() == wd}
                terms.update({self.atom("h", g, wd, h): -1.0 for h in range(24)})
                self.eq.append((terms, 0.0))
            for group, names in (("c", ("voice", "sms")), ("o", stats.OUTCOMES)):
                terms = dict(contacts)
                for n in names:
                    terms[self.atom(group, g, n)] = -1.0
                self.eq.append((terms, 0.0))
            human = {self.atom("w", g, w): 1.0 for w in WAIT_OF.values()}
            for o in stats.HUMAN:
                human[self.atom("o", g, o)] = -1.0
            self.eq.append((human, 0.0))
            asked = {self.atom("b", g, s): 1.0 for s in stats.CALLBACK_STATES}
            asked[self.atom("o", g, "callback_requested")] = -1.0
            self.eq.append((asked, 0.0))
            for yes in [("e",), ("m",), ("a",)] + [("k", kind) for kind in CARE_OF]:
                # escalated, asked for a match, held back by a care rule: at most the contacts
                self.ub.append(({self.atom(yes[0], g, *yes[1:]): 1.0,
                                 **{a: -1.0 for a in contacts}}, 0.0))
            self.ub.append(({self.atom("x", g): 1.0, self.atom("a", g): -1.0}, 0.0))
            self.ub.append(({self.atom("f", g, "replied"): 1.0,
                             self.atom("f", g, "sent"): -1.0}, 0.0))
        # A contact from a caller seen twice in its month is from a caller seen twice in
        # any published period holding that month: a period's repeat contacts are at least
        # the sum of those of the published periods nested in it.
        for outer in self.periods:
            inner = [p for p in self.periods if p != outer and outer[0] <= p[0]
                     and p[1] <= outer[1]]
            inner = [p for p in inner if not any(q != p and q[0] <= p[0] and p[1] <= q[1]
                                                 for q in inner)]  # the largest, disjoint
            if inner:
                terms = {self.atom("r", a.isoformat(), b.isoformat()): 1.0 for a, b in inner}
                terms[self.atom("r", outer[0].isoformat(), outer[1].isoformat())] = -1.0
                self.ub.append((terms, 0.0))

    def recovered(self, at_most: int) -> tuple[list[str], int]:
        """The protected cells an LP pins to fewer than ``min_range(K)`` values (at most
        ``at_most`` of them), and how many cells were checked. Each is solved over its
        connected group of atoms (a month with no contacts shares nothing with the rest)."""
        parent = list(range(len(self.index)))

        def root(a):
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a
        for terms, _rhs in self.eq + self.ub:
            atoms = list(terms)
            for a in atoms[1:]:
                parent[root(a)] = root(atoms[0])
        groups = defaultdict(list)
        for a in range(len(self.index)):
            groups[root(a)].append(a)
        systems = {}
        found, done, checked = [], set(), 0
        for terms, true, name in self.protected:
            signature = tuple(sorted(terms.items()))
            if signature in done:
                continue
            done.add(signature)
            checked += 1
            group = root(next(iter(terms)))
            if group not in systems:
                systems[group] = self._system(groups[group], root, group)
            column, a_eq, b_eq, a_ub, b_ub = systems[group]
            objective = np.zeros(len(column))
            for a, c in terms.items():
                objective[column[a]] = c
            ends = []
            for sign in (1, -1):
                result = linprog(sign * objective, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq,
                                 bounds=(0, None), method="highs")
                assert result.status in (0, 3), result.message  # 3: unbounded above
                ends.append(math.inf if result.status == 3 else sign * result.fun)
            low, high = ends
            left = min(math.floor(high + 1e-6), K - 1) - max(math.ceil(low - 1e-6), 1) + 1
            assert low - 1e-6 <= true <= high + 1e-6, f"the model is wrong about {name}"
            if left < min_range(K):
                found.append(f"{name} = {true}: in [{low:.2f}, {high:.2f}]")
                if len(found) >= at_most:
                    break
        return found, checked

    def _system(self, atoms, root, group):
        column = {a: j for j, a in enumerate(atoms)}

        def matrix(rows):
            rows = [(t, rhs) for t, rhs in rows if root(next(iter(t))) == group]
            data, cols, ptr = [], [], [0]
            for terms, _rhs in rows:
                cols += [column[a] for a in terms]
                data += list(terms.values())
                ptr.append(len(cols))
            return csr_matrix((data, cols, ptr), shape=(len(rows), len(column))), \
                np.array([rhs for _t, rhs in rows])
        return (column, *matrix(self.eq), *matrix(self.ub))


def test_every_period_the_api_accepts_together_narrows_no_small_count(small_program, session):
    zone = program_zone()
    published = harvest(small_program, session, zone)
    model = Model(dict(session.query(Supporter.name, Supporter.id).all()))
    for period, tables, truth in published:
        model.add_period(period, tables, truth)
    model.build()
    assert len(model.protected) > 300  # most cells of a small program are small
    found, checked = model.recovered(REPORT_AT_MOST)
    assert not found, (f"{len(found)}+ small counts pinned down across {len(published)} "
                       f"published periods:\n" + "\n".join(found))
    assert checked > 300
    # Nested periods were published (three months and their quarter): the hard case.
    assert {("2025-01-01", "2025-01-31"), ("2025-02-01", "2025-02-28"),
            ("2025-03-01", "2025-03-31"), ("2025-01-01", "2025-03-31")} <= \
        {(p["from"], p["to"]) for p, _t, _r in published}


def test_the_api_refuses_every_period_outside_the_hierarchy(small_program):
    for query in ({"from": "2025-01-06", "to": "2025-02-09"},      # five weeks
                  {"from": "2025-01-01", "to": "2025-02-28"},      # two months
                  {"from": "2025-02-01", "to": "2025-02-27"},      # most of a month
                  {"period": "2025-04"},                           # not settled yet
                  {"period": "2025-Q2"},                           # not over
                  {"period": "2025"}, {"period": "2024"},          # years: not published
                  {"period": "2025-W03"}, {"period": "last week"}):
        for path in ("/api/stats", "/dashboard/stats.csv", "/dashboard/"):
            response = small_program.get(path, query_string=query)
            assert response.status_code == 400, (path, query)
        assert "calendar month" in small_program.get("/api/stats",
                                                     query_string=query).json["error"]
    listed = [p["id"] for p in small_program.get("/api/stats/periods").json["periods"]]
    assert {"2025-01", "2025-02", "2025-03", "2025-Q1"} <= set(listed)
    assert not {"2025-04", "2025-Q2", "2025", "2024"} & set(listed)
    for period in listed:
        assert small_program.get("/api/stats", query_string={"period": period}
                                 ).status_code == 200
    by_dates = small_program.get("/api/stats", query_string={"from": "2025-01-01",
                                                             "to": "2025-03-31"}).json
    assert by_dates["period"]["id"] == "2025-Q1"


def test_every_request_shows_the_same_hidden_cells_before_and_after_its_quarter(
        small_program, clock):
    """A month shown before its quarter was published, and after, in a process that
    decided nothing yet: the same cells, hidden the same way. A reader who kept the first
    copy learns nothing new from the second."""
    from hotline.disclosure import joint
    clock.set(datetime(2025, 3, 25, 12, tzinfo=UTC))
    early = small_program.get("/api/stats/periods").json["periods"]
    assert "2025-01" in {p["id"] for p in early} and "2025-Q1" not in {p["id"] for p in early}
    before = small_program.get("/api/stats", query_string={"period": "2025-01"}).json
    clock.set(NOW)
    quarter = small_program.get("/api/stats", query_string={"period": "2025-Q1"}).json
    assert quarter["period"]["id"] == "2025-Q1"
    again = small_program.get("/api/stats", query_string={"period": "2025-01"}).json
    joint.clear_cache()
    fresh = small_program.get("/api/stats", query_string={"period": "2025-01"}).json
    assert before["tables"] == again["tables"] == fresh["tables"]
    assert sum(v == "hidden" for t in before["tables"] for r in t["rows"]
               for v in r["values"]) >= 1
    # the quarter hides some cells of its own so that the months cannot be subtracted
    assert sum(v == "hidden" for t in quarter["tables"] for r in t["rows"]
               for v in r["values"]) > 0
    csv = small_program.get("/dashboard/stats.csv", query_string={"period": "2025-Q1"})
    assert csv.status_code == 200 and "hotline-2025-Q1.csv" in csv.headers[
        "Content-Disposition"]
    page = small_program.get("/dashboard/", query_string={"period": "2025-Q1"}).text
    assert '<option value="2025-Q1" selected>' in page


def test_a_decision_made_once_serves_every_process(small_program, session, monkeypatch):
    """The nightly warm-up decides every published period; a web process with nothing
    cached then reads the decision from Redis (cell names only, under a keyed digest of
    the counts) instead of deciding again, and shows the same cells."""
    from hotline.disclosure import joint
    from hotline.core.extensions import redis_conn
    redis_conn.client.flushdb()
    joint.clear_cache()
    joint.warm_all(session, program_zone(), NOW)
    keys = redis_conn.client.keys(joint.SHARED_PREFIX + "*")
    assert len(keys) >= 4     # three months and their quarter, at least
    for key in keys:   # cell names and a flag: no count
        stored = json.loads(redis_conn.client.get(key))
        assert set(stored) == {"hidden", "safe"} and stored["safe"] is True
        assert all(re.fullmatch(r"20\d\d-(\d\d|Q\d)/[a-z_]+:[\w:-]+", c)
                   for c in stored["hidden"])
    first = small_program.get("/api/stats", query_string={"period": "2025-Q1"}).json
    joint.clear_cache()

    decided, real = [], joint.suppress

    def deciding(*args, **kwargs):
        decided.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(joint, "suppress", deciding)
    again = small_program.get("/api/stats", query_string={"period": "2025-Q1"}).json
    assert again["tables"] == first["tables"] and decided == []
    redis_conn.client.flushdb()
    joint.clear_cache()
    alone = small_program.get("/api/stats", query_string={"period": "2025-Q1"}).json
    assert alone["tables"] == first["tables"] and len(decided) == 4   # months and quarter


def test_a_quarters_repeat_callers_do_not_bound_its_months(app, session, coordinator,
                                                            clock):
    """Repeat contacts are not additive: a caller seen twice in January is a repeat
    caller in the first quarter too, so the quarter's repeat contacts are at least the
    sum of its months'. With a month of 12 shown, a quarter of 16 left the other two
    months 4 at most together: each pinned to 0..4. The attacker's model holds that
    inequality; the published numbers must leave every small count half its range."""
    from tests.test_stats import Seeder
    zone = program_zone()
    seeder = Seeder(session, Supporter(name="Peer A", phone="+16175550181", tier=1))
    session.add(seeder.supporter)
    session.commit()
    # 30 contacts a month; January and March with one caller twice, February six.
    for month, twice in ((1, 1), (2, 6), (3, 1)):
        callers = [f"{month}-{i // 2}" for i in range(2 * twice)]
        callers += [f"{month}-once-{i}" for i in range(30 - len(callers))]
        for i, caller in enumerate(callers):
            at = datetime(2025, month, 1 + i % 27, 9 + i % 8, tzinfo=zone).astimezone(UTC)
            seeder.contact(at, caller=caller)
    clock.set(NOW)
    published = harvest(coordinator, session, zone)
    assert {p["id"] for p, _t, _r in published} >= {"2025-01", "2025-02", "2025-03",
                                                     "2025-Q1"}
    model = Model(dict(session.query(Supporter.name, Supporter.id).all()))
    for period, tables, truth in published:
        model.add_period(period, tables, truth)
    model.build()
    found, _checked = model.recovered(REPORT_AT_MOST)
    assert not found, "small counts pinned down:\n" + "\n".join(found)


def test_a_month_is_published_once_its_counts_are_final_so_in_one_version(small_program,
                                                                          session):
    """A month is published once every one of its days is final (docs/statistics.md), so
    a reader never holds two versions of it. Before: January was published with one
    callback still being tried (its retries stuck, say), showing the callbacks kept within
    the promise (16, the four other states 5 together); once that callback was kept, the
    month was decided again and hid them (17) instead. A reader holding both copies who
    learns the callback was kept reads 17, and the other states 4 together: each 0..4."""
    from sqlalchemy import select

    from hotline.models import CallbackRequest, Contact
    callback = session.scalars(
        select(CallbackRequest).join(Contact, Contact.id == CallbackRequest.contact_id)
        .where(Contact.created_at >= datetime(2025, 1, 2, tzinfo=UTC),
               Contact.created_at < datetime(2025, 1, 31, tzinfo=UTC),
               CallbackRequest.state == "done",
               CallbackRequest.completed_at <= CallbackRequest.promised_by)
        .order_by(CallbackRequest.id)).first()
    kept_at = callback.completed_at
    callback.state, callback.completed_at = "pending", None
    session.commit()
    copies = []
    for _ in range(2):
        response = small_program.get("/api/stats", query_string={"period": "2025-01"})
        listed = {p["id"] for p in small_program.get("/api/stats/periods").json["periods"]}
        if response.status_code == 200:
            assert "2025-01" in listed
            copies.append([[[isinstance(v, int) for v in r["values"]] for r in t["rows"]]
                           for t in response.json["tables"]])
        else:
            assert response.status_code == 400 and "not final" in response.json["error"]
            assert "2025-01" not in listed and "2025-Q1" not in listed
            for path in ("/dashboard/stats.csv", "/dashboard/"):
                assert small_program.get(path, query_string={"period": "2025-Q1"}
                                         ).status_code == 400
        callback.state, callback.completed_at = "done", kept_at   # the late try succeeds
        session.commit()
    assert copies, "January is published once its callback is done"
    assert all(copy == copies[0] for copy in copies), "two versions of January"


def test_a_late_event_does_not_change_a_published_month(app, session, coordinator,
                                                        clock):
    """A published month never changes, so a reader never holds two versions of it.
    Before: January (25 follow-up texts, 10 replies) showed the replies as <11; a late
    reply (a late event for a settled day drops its cached counts) made them 11, shown.
    Holding both copies, knowing only that no count moved by more than one, a reader
    reads January's first replies as 10 exactly."""
    from hotline.lifecycle import contacts
    from tests.test_stats import Seeder
    zone = program_zone()
    seeder = Seeder(session, Supporter(name="Peer A", phone="+16175550181", tier=1))
    session.add(seeder.supporter)
    session.commit()
    texted = []
    for i in range(40):
        at = datetime(2025, 1, 1 + i % 28, 9 + i % 8, tzinfo=zone).astimezone(UTC)
        extra = ("followup_consent", "followup_sent") if i < 25 else ()
        contact = seeder.contact(at, caller=f"c{i}", extra=extra + (
            ("followup_reply",) if i < 10 else ()))
        texted.append(contact)
    clock.set(NOW)
    before = coordinator.get("/api/stats", query_string={"period": "2025-01"}).json
    replies = next(t for t in before["tables"] if t["id"] == "replies")
    assert replies["rows"][0]["values"] == [f"<{K}"]
    contacts.event(session, texted[20], "followup_reply", at=NOW)   # a reply, very late
    session.commit()
    after = coordinator.get("/api/stats", query_string={"period": "2025-01"}).json
    assert after["tables"] == before["tables"] and after["summary"] == before["summary"]
