"""The pulse survey's results (issue 19, part 3): windows, suppression by role with the
program's k, and ``results.trends`` across windows (the leadership report's API), on SQLite
and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import inspect, select

from hotline.core.extensions import db
from hotline.models import PulseResponse
from hotline.models.pulse import PREFER_NOT_TO_SAY
from hotline.pulse import results, survey


def ballots(session, window, role, n, burnout=1, knows=True, used=False, likely=4):
    for _ in range(n):
        session.add(PulseResponse(window_id=window.id, role=role, burnout=burnout,
                                  knows_line=knows, used_line=used, likely=likely))
    session.commit()


def window_with(session, clock, title, day, groups):
    """A window opened on ``day`` and closed the day after, with ``groups`` of ballots."""
    clock.set(datetime(*day, 15, tzinfo=timezone.utc))
    window = survey.open_window(session, title)
    for args in groups:
        ballots(session, window, *args)
    clock.advance(days=1)
    return survey.close_window(session, window.id)


def test_a_ballot_keeps_no_time_and_its_id_is_no_sequence(app, session, clock):
    """The responses table holds the window, the role and the answers: nothing else (no
    time, no address); and its ids do not rise with each ballot (submission order)."""
    columns = {c["name"] for c in inspect(db.engine).get_columns("pulse_responses")}
    assert columns == {"id", "window_id", "role", "burnout", "knows_line", "used_line",
                       "likely"}
    window = survey.open_window(session, "Spring")
    ballots(session, window, "nurse", 30)
    ids = [r.id for r in session.scalars(select(PulseResponse))]
    assert len(set(ids)) == 30 and min(ids) > 2 ** 20  # random 62-bit ids, not 1, 2, 3...
    assert sorted(ids) != list(range(min(ids), min(ids) + 30))


def test_one_window_open_at_a_time_and_closing_is_final(app, session, clock):
    window = survey.open_window(session, "  Spring   2026 ")
    assert window.title == "Spring 2026" and survey.current(session) is window
    with pytest.raises(survey.PulseError, match="already open"):
        survey.open_window(session, "Another")
    survey.close_window(session, window.id)
    assert survey.current(session) is None
    with pytest.raises(survey.PulseError, match="title"):
        survey.open_window(session, " ")
    with pytest.raises(survey.PulseError, match="not open"):
        survey.close_window(session, window.id)


def test_a_small_role_is_hidden_with_a_complement_so_the_total_cannot_give_it(
        app, session, clock):
    window = window_with(session, clock, "Spring", (2026, 3, 2), [
        ("nurse", 20, 4, True, False, 5), ("physician", 15, 1, False, False, 2),
        ("pharmacist", 3, 5, True, True, 1)])
    overall, roles = results.by_role(session, window)
    assert overall.responses == 38 and overall.why is None
    shown = {r.role: r for r in roles}
    assert shown["pharmacist"].responses is None
    assert shown["pharmacist"].why == "fewer than 11 answers from this role"
    # 38 - 20 - 15 would be the pharmacists: one of the large roles is hidden too.
    hidden_large = [r for r in ("nurse", "physician") if shown[r].responses is None]
    assert len(hidden_large) == 1
    assert "worked out from the total" in shown[hidden_large[0]].why
    assert shown[hidden_large[0]].burned_out_share is None
    visible = [r for r in ("nurse", "physician") if r not in hidden_large][0]
    assert shown[visible].responses == {"nurse": 20, "physician": 15}[visible]
    # Every role of roster.yaml and "prefer not to say" is reported, empty ones hidden.
    assert {r.role for r in roles} >= {"resident", "other", PREFER_NOT_TO_SAY}
    assert shown[PREFER_NOT_TO_SAY].responses is None


def test_roles_at_k_or_more_are_shown_with_their_shares(app, session, clock):
    window = window_with(session, clock, "Spring", (2026, 3, 2), [
        ("nurse", 11, 3, True, True, 4), ("nurse", 11, 1, False, False, 2),
        ("physician", 12, 2, True, False, 5)])
    overall, roles = results.by_role(session, window, k=11)
    nurse = next(r for r in roles if r.role == "nurse")
    assert (nurse.responses, nurse.burned_out_share, nurse.burnout_mean, nurse.aware_share,
            nurse.used_share, nurse.likely_share) == (22, 0.5, 2.0, 0.5, 0.5, 0.5)
    assert overall.responses == 34 and overall.burned_out_share == pytest.approx(11 / 34)


def test_a_window_under_k_is_hidden_whole_with_its_reason(app, session, clock):
    window = window_with(session, clock, "Quiet", (2026, 3, 2), [("nurse", 10)])
    overall, roles = results.by_role(session, window)
    assert overall.responses is None and overall.burned_out_share is None
    assert overall.why == "fewer than 11 answers in this window"
    assert all(r.responses is None for r in roles)


def test_trends_across_windows_oldest_first_closed_only(app, session, clock):
    """Two closed windows: burnout falls and awareness rises between them; the open third
    window is not in the trends (its numbers still change with each ballot)."""
    window_with(session, clock, "Autumn 2025", (2025, 10, 6), [
        ("nurse", 12, 4, False, False, 2), ("physician", 12, 1, True, False, 4)])
    window_with(session, clock, "Spring 2026", (2026, 3, 2), [
        ("nurse", 12, 2, True, True, 5), ("physician", 12, 3, True, False, 4),
        ("other", 3, 5, False, False, 1)])
    window_with(session, clock, "Too few", (2026, 5, 4), [("nurse", 4)])
    survey.open_window(session, "Open now")
    ballots(session, survey.current(session), "nurse", 40)
    found = results.trends(session)
    assert [w.title for w in found] == ["Autumn 2025", "Spring 2026", "Too few"]
    autumn, spring, few = found
    assert (autumn.opened, autumn.closed) == (date(2025, 10, 6), date(2025, 10, 7))
    assert (autumn.responses, autumn.burned_out_share, autumn.aware_share,
            autumn.used_share, autumn.likely_share, autumn.burnout_mean) == (
        24, 0.5, 0.5, 0.0, 0.5, 2.5)
    # 12 + 12 + 3 others: the total stays and both large roles hide the small one.
    assert spring.responses == 27 and spring.burned_out_share == pytest.approx(15 / 27)
    assert spring.aware_share == pytest.approx(24 / 27) and spring.why is None
    assert few.responses is None and few.aware_share is None and "fewer than" in few.why
    assert isinstance(found[0], results.WindowResult)
    overall, roles = results.by_role(session, results.closed_windows(session)[1])
    assert overall.responses == 27
    assert all(r.responses is None for r in roles)
    assert {r.why for r in roles if r.role in ("nurse", "physician")} == {results.WHY_COMPLEMENT}


def test_the_hidden_roles_together_are_never_fewer_than_k(app, session, clock):
    """The attacker subtracts the shown roles from the window's total: what is left is the
    hidden roles together, with their answers exactly (counts times shares). That group must
    hold k answers or more (or none), or a few colleagues' answers are out: here the five
    pharmacists, every one burned out and a user of the line, while the suppression of the
    counts alone (pharmacists 0..5 given the total) let them through."""
    window = window_with(session, clock, "Spring", (2026, 3, 2), [
        ("nurse", 20, 2, True, False, 4), ("physician", 15, 1, True, False, 4),
        ("pharmacist", 5, 5, False, True, 1)])
    overall, roles = results.by_role(session, window)
    assert overall.responses == 40
    shown = [r for r in roles if r.responses is not None]
    rest = overall.responses - sum(r.responses for r in shown)
    used = round(overall.used_share * overall.responses
                 - sum(r.used_share * r.responses for r in shown))
    assert rest == 0 or rest >= 11, (rest, used)
    assert next(r for r in roles if r.role == "pharmacist").responses is None


def test_a_closed_windows_hidden_roles_do_not_change_when_a_role_is_added(
        app, session, clock, monkeypatch):
    """Roles are reported from roster.yaml as it is when the page is read. Adding a role
    after a window closed (an empty cell, and the reader knows it is empty) used to change
    which roles were hidden: two versions of one window, whose shown roles together leave
    fewer hidden than either alone. The decision rests on the roles that were answered."""
    window = window_with(session, clock, "Spring", (2026, 3, 2), [
        ("physician", 10), ("nurse", 30), ("advanced_practice", 10), ("resident", 10),
        ("pharmacist", 15), ("other", 7), (PREFER_NOT_TO_SAY, 30)])

    def hidden() -> set[str]:
        overall, roles = results.by_role(session, window)
        return {r.role for r in roles if r.responses is None}

    before = hidden()
    listed = results.roles.current()

    class WithChaplains:
        def names(self, kind):
            return (*listed.names(kind), "chaplain")

    monkeypatch.setattr(results.roles, "current", lambda: WithChaplains())
    after = hidden()
    assert "chaplain" in after
    assert after - {"chaplain"} == before
