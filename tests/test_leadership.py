"""The leadership report (issue 19, part 4): the last four published quarters side by side,
every figure exactly as ``/api/stats`` publishes it (hidden cells saying why in one line),
and the program inputs coordinators enter per quarter next to them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import html as lxml_html
from sqlalchemy import text as sql_text

from hotline.core.extensions import db
from hotline.disclosure import joint
from hotline.models import ProgramInputs, Supporter
from hotline.roster.shifts import program_zone
from tests.coordinators import csrf

#: Late January: Q4 has settled and Q1 of the year before is still inside the 400 days
#: kept, so exactly four quarters are published (2025-Q1 .. 2025-Q4); 2026-Q1 is not.
NOW = datetime(2026, 1, 28, 15, 0, tzinfo=UTC)
QUARTERS = ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
K = 11
REPORT = "/dashboard/leadership/"
INPUTS = "/dashboard/leadership/inputs"


def seed(session, scale: float) -> None:
    """A small program's history over the last 58 weeks (the demo's, at ``scale``)."""
    from hotline.dashboard import demo
    session.add_all([Supporter(name="Peer A", phone="+16175550181", tier=1),
                     Supporter(name="Peer B", phone="+16175550182", tier=1),
                     Supporter(name="Backup C", phone="+16175550183", tier=2)])
    session.commit()
    assert demo.seed_history(session, program_zone(), now=NOW, weeks=58, scale=scale)
    if session.bind.dialect.name == "postgresql":
        # A year loaded at once, before autovacuum has looked: without the planner's
        # statistics the warm-up's joins can take seconds on a loaded machine.
        session.execute(sql_text("ANALYZE"))
        session.commit()


@pytest.fixture
def program(app, session, coordinator, clock):
    """About 4 contacts a day: many small cells, hidden cells and shares left out, and
    every quarter still publishable. A coordinator logged in."""
    seed(session, 0.06)
    clock.set(NOW)
    return coordinator


def cells(page: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(row id, quarter) -> (value as printed, why) of every figure of the report."""
    tree = lxml_html.fromstring(page)
    return {(td.get("data-row"), td.get("data-quarter")):
            (td.xpath("string(.//span[@class='value'])").strip(),
             td.xpath("string(.//span[@class='why'])").strip())
            for td in tree.xpath("//td[@data-row]")}


def table(data: dict, table_id: str, label: str):
    rows = next(t for t in data["tables"] if t["id"] == table_id)["rows"]
    return next(r["values"][0] for r in rows if r["label"] == label)


#: The report's rows and where /api/stats publishes each (written here independently of
#: hotline.leadership), with how the figure is printed.
COUNT, SHARE, SECONDS = "count", "share", "seconds"
ROWS = {
    "contacts": (COUNT, lambda d: d["summary"]["contacts"]),
    "reached_human": (SHARE, lambda d: d["summary"]["share_reached_human"]),
    "reached_peer": (COUNT, lambda d: table(d, "outcomes", "reached a peer")),
    "reached_backup": (COUNT, lambda d: table(d, "outcomes", "reached a backup")),
    "median_seconds": (SECONDS, lambda d: d["summary"]["median_seconds_to_human"]),
    "p90_seconds": (SECONDS, lambda d: d["summary"]["p90_seconds_to_human"]),
    "callbacks_asked": (COUNT, lambda d: table(d, "outcomes", "asked for a callback")),
    "callbacks_kept": (COUNT, lambda d: table(d, "callbacks", "kept within the promise")),
    "callbacks_kept_share": (SHARE, lambda d: d["summary"]["share_callbacks_kept"]),
    **{f"score_{kind}_{v}": (COUNT, lambda d, kind=kind, v=v: table(d, f"score_{kind}", str(v)))
       for kind in ("helpful", "burnout") for v in range(1, 6)},
}


def expected(kind: str, value) -> str:
    if value is None:
        return "not shown"
    if isinstance(value, str):  # "<11" or "hidden"
        return value
    return {COUNT: f"{value:,}", SHARE: f"{value:g}%", SECONDS: f"{value} s"}[kind]


def test_every_figure_is_the_one_api_stats_publishes_and_a_hidden_one_says_why(program):
    listed = program.get("/api/stats/periods").json["periods"]
    assert [p["id"] for p in listed if p["level"] == "quarter"][:4][::-1] == QUARTERS
    page = program.get(REPORT)
    assert page.status_code == 200
    shown = cells(page.text)
    assert {q for _row, q in shown} == set(QUARTERS)
    seen = {"number": 0, f"<{K}": 0, "hidden": 0, "not shown": 0}
    for quarter in QUARTERS:
        api = program.get("/api/stats", query_string={"period": quarter})
        assert api.status_code == 200, api.json
        for row, (kind, read) in ROWS.items():
            value = read(api.json)
            text, why = shown[(row, quarter)]
            assert text == expected(kind, value), (row, quarter, value)
            if value == f"<{K}":
                unit = "answers" if row.startswith("score_") else "contacts"
                assert why == f"fewer than {K} {unit}, possibly none"
            elif value == "hidden":
                assert why == f"hidden so that a count below {K} cannot be worked out from " \
                              "the totals"
            elif value is None:  # a share or a time the API leaves out: which count it needs
                assert why.startswith("it rests on ") and ("fewer than" in why or "hidden" in why)
            else:
                assert why == ""
            seen["number" if why == "" else text] += 1
    # the data set exercises every way a cell can be shown
    assert all(seen.values()), seen
    # the quarter in progress is not shown: the day it will be, as the API says
    refused = program.get("/api/stats", query_string={"period": "2026-Q1"})
    assert refused.status_code == 400
    day = refused.json["error"].split("it is published on ")[1].split(";")[0]
    assert "Q1 2026</strong>: not yet published;\n    published on " + day in page.text
    assert "2026-Q1" not in {q for _row, q in shown}


def test_a_withheld_quarter_is_shown_as_withheld_as_the_api_refuses_it(program, monkeypatch):
    """A quarter the joint check cannot publish (disclosure.joint.Withheld): the API
    refuses it, and the report shows its column empty, saying why once."""
    real = joint.publish

    def publish(session, span, *args, **kwargs):
        if span.id == "2025-Q3":
            raise joint.Withheld(f"{span.label} cannot be published without revealing a "
                                 "count below 11 given its months: see its months instead")
        return real(session, span, *args, **kwargs)
    monkeypatch.setattr(joint, "publish", publish)
    refused = program.get("/api/stats", query_string={"period": "2025-Q3"})
    assert refused.status_code == 400
    page = program.get(REPORT).text
    shown = cells(page)
    assert {shown[(row, "2025-Q3")] for row in ROWS} == {
        ("withheld", "the whole quarter is withheld: see its months")}
    assert "Q3 2025</strong>\n    is withheld: Q3 2025 cannot be published" in page
    other = program.get("/api/stats", query_string={"period": "2025-Q4"}).json
    assert shown[("contacts", "2025-Q4")][0] == f"{other['summary']['contacts']:,}"


def post_inputs(client, **fields):
    data = {"csrf_token": csrf(client, INPUTS), "quarter": "2025-Q2", "staff_headcount": "",
            "turnover_percent": "", "supporters_trained": ""}
    data.update(fields)
    return client.post(INPUTS, data=data)


def test_program_inputs_are_saved_and_shown_next_to_their_quarter(program):
    saved = post_inputs(program, staff_headcount="1,240", turnover_percent="8.5%",
                        supporters_trained="14")
    assert saved.status_code == 302 and saved.location.endswith(REPORT)
    shown = cells(program.get(REPORT).text)
    assert shown[("staff_headcount", "2025-Q2")] == ("1,240", "")
    assert shown[("turnover_percent", "2025-Q2")] == ("8.5%", "")
    assert shown[("supporters_trained", "2025-Q2")] == ("14", "")
    assert shown[("staff_headcount", "2025-Q1")] == ("not entered", "")
    # entering the quarter again replaces its figures; an empty one is "not entered"
    assert post_inputs(program, staff_headcount="1250", supporters_trained="16") \
        .status_code == 302
    shown = cells(program.get(REPORT).text)
    assert shown[("staff_headcount", "2025-Q2")] == ("1,250", "")
    assert shown[("turnover_percent", "2025-Q2")] == ("not entered", "")
    assert db.session.query(ProgramInputs).count() == 1
    form = program.get(INPUTS, query_string={"quarter": "2025-Q2"}).text
    assert 'name="staff_headcount" inputmode="numeric" value="1250"' in form
    assert "Last saved by coord@example.org" in form


@pytest.mark.parametrize("fields, field, message", [
    ({"staff_headcount": "many"}, "staff_headcount", "enter a whole number, like 240"),
    ({"staff_headcount": "0"}, "staff_headcount", "must be at least 1"),
    ({"turnover_percent": "120"}, "turnover_percent", "cannot be more than 100%"),
    ({"turnover_percent": "8.25"}, "turnover_percent", "at most one decimal"),
    ({"staff_headcount": "40", "supporters_trained": "41"}, "supporters_trained",
     "41 supporters trained is more than the staff headcount (40)"),
    ({}, "staff_headcount", "enter at least one of the three figures"),
    ({"quarter": "2026-Q2", "staff_headcount": "40"}, "quarter", "has not started yet"),
    ({"quarter": "2023-Q1", "staff_headcount": "40"}, "quarter", "too long ago"),
    ({"quarter": "2025-03", "staff_headcount": "40"}, "quarter", "not a month"),
])
def test_refused_inputs_say_what_to_fix_next_to_the_field(coordinator, clock, fields, field,
                                                          message):
    clock.set(NOW)
    refused = post_inputs(coordinator, **fields)
    assert refused.status_code == 400
    page = lxml_html.fromstring(refused.text)
    error = page.get_element_by_id(f"inputs-{field}-error").text_content()
    assert message in error
    assert page.get_element_by_id(f"inputs-{field}").get("aria-invalid") == "true"
    assert page.xpath("//div[@role='alert']")
    assert db.session.query(ProgramInputs).count() == 0


def test_the_pages_need_a_login_and_the_form_its_csrf_token(app, clock):
    clock.set(NOW)
    anonymous = app.test_client()
    for path in (REPORT, INPUTS):
        response = anonymous.get(path)
        assert response.status_code == 302 and "/dashboard/login" in response.location
    from tests.coordinators import login, make_user
    make_user("coord@example.org")
    client = app.test_client()
    login(client, "coord@example.org")
    forged = client.post(INPUTS, data={"quarter": "2025-Q2", "staff_headcount": "40"})
    assert forged.status_code == 400
    assert db.session.query(ProgramInputs).count() == 0
    page = client.get(REPORT)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    # no contact at all: every quarter is published, its counts all "fewer than 11"
    assert cells(page.text)[("contacts", "2025-Q4")] == (f"<{K}", f"fewer than {K} contacts, "
                                                                  "possibly none")


def test_pulse_trends_show_the_windows_of_the_quarters_shown_as_the_survey_reports_them(
        program, session, clock):
    from hotline.pulse import results
    from tests.test_pulse_results import window_with
    window_with(session, clock, "Autumn 2024", (2024, 11, 4), [("nurse", 40)])  # before
    spring = window_with(session, clock, "Spring 2025", (2025, 5, 5),
                         [("nurse", 20, 3, True, False, 5), ("physician", 14, 1, False)])
    window_with(session, clock, "Autumn 2025", (2025, 10, 6), [("nurse", 6)])  # under k
    january = window_with(session, clock, "January 2026", (2026, 1, 12), [("nurse", 25)])
    clock.set(NOW)
    tree = lxml_html.fromstring(program.get(REPORT).text)
    rows = tree.xpath("//table[contains(@class, 'pulse')]/tbody/tr")
    # the windows since the first quarter shown (2025-Q1), the current quarter's included
    assert [row.xpath("th/text()")[0].strip() for row in rows] == [
        "Spring 2025", "Autumn 2025", "January 2026"]
    assert [row.xpath("string(th/span)") for row in rows] == [
        "05 May to 06 May 2025 (Q2 2025)", "06 Oct to 07 Oct 2025 (Q4 2025)",
        "12 Jan to 13 Jan 2026 (Q1 2026)"]
    trends = {r.window_id: r for r in results.trends(session)}

    def shown(row) -> dict[str, str]:
        return {td.get("data-figure"): td.xpath("string(span[@class='value'])")
                for td in row.xpath("td")}
    expected = trends[spring.id]
    assert shown(rows[0]) == {
        "responses": f"{expected.responses}",
        "burned_out_share": f"{100 * expected.burned_out_share:.0f}%",
        "aware_share": f"{100 * expected.aware_share:.0f}%",
        "used_share": f"{100 * expected.used_share:.0f}%",
        "likely_share": f"{100 * expected.likely_share:.0f}%"}
    assert shown(rows[0])["responses"] == "34" and shown(rows[0])["aware_share"] == "59%"
    # a window under k: no figure, and why in one line
    assert shown(rows[1]) == {"why": "not shown"}
    assert rows[1].xpath("string(td/span[@class='why'])") == \
        "fewer than 11 answers in this window"
    assert shown(rows[2])["responses"] == f"{trends[january.id].responses}"
