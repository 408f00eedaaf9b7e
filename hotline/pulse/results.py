"""The pulse survey's results: counts by window and role, suppressed with the program's k,
and trends across windows. The one reader of the ballots.

Only closed windows have results: an open window's numbers would change with each ballot,
and two looks a colleague's ballot apart would show their answers. A closed window is final.

Per window the published cells are the responses of each role (roster.yaml's, "prefer not
to say", and any role found in older ballots) and their total, tied by one line (the roles
add up to the total). ``hotline.disclosure.suppression`` hides every role under k and, so
that the total cannot be differenced into it, complementary roles too; a window under k is
hidden whole. Shares are worked out only over a shown count (k people or more), and the
hidden roles together hold k answers or none (the window less its shown roles is them, with
their answers). The decision rests on the answered roles only, so a change to roster.yaml's
list never makes a second version of a closed window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from hotline.core.extensions import settings
from hotline.disclosure.suppression import suppress
from hotline.models import PulseResponse, PulseWindow
from hotline.models.pulse import PREFER_NOT_TO_SAY
from hotline.roster import roles
from hotline.roster.shifts import program_zone

#: Mini-Z: 3 or more on the single item is burnout. "Likely" is 4 or 5 of 5.
BURNED_OUT_FROM = 3
LIKELY_FROM = 4
TOTAL = "all"


@dataclass(frozen=True)
class Shares:
    """What a group of responses says (None everywhere when the group is hidden)."""
    responses: int | None = None
    burned_out_share: float | None = None   # burnout 3+ of 5 (Mini-Z), of responses
    burnout_mean: float | None = None       # the mean of the 1-5 item
    aware_share: float | None = None        # know how to reach the line
    used_share: float | None = None         # have used it
    likely_share: float | None = None       # likely or very likely to use it
    why: str | None = None                  # one line, when hidden


@dataclass(frozen=True)
class WindowResult(Shares):
    """One closed window, as a whole (``trends``)."""
    window_id: int = 0
    title: str = ""
    opened: date | None = None              # the program's time zone
    closed: date | None = None


@dataclass(frozen=True)
class RoleResult(Shares):
    """One role in one closed window."""
    role: str = ""


@dataclass(frozen=True)
class Sums:
    responses: int = 0
    burned_out: int = 0
    burnout_total: int = 0
    aware: int = 0
    used: int = 0
    likely: int = 0

    def shares(self) -> dict:
        n = self.responses
        return dict(responses=n, burned_out_share=self.burned_out / n,
                    burnout_mean=self.burnout_total / n, aware_share=self.aware / n,
                    used_share=self.used / n, likely_share=self.likely / n)

    def __add__(self, other: "Sums") -> "Sums":
        return Sums(*(a + b for a, b in zip(self.astuple(), other.astuple())))

    def astuple(self) -> tuple[int, ...]:
        return (self.responses, self.burned_out, self.burnout_total, self.aware, self.used,
                self.likely)


def _count(condition) -> object:
    return func.sum(case((condition, 1), else_=0))


def sums_by_role(session: Session, window_id: int) -> dict[str, Sums]:
    """The raw sums of one window, by role (not for display: see ``by_role``)."""
    r = PulseResponse
    rows = session.execute(
        select(r.role, func.count(), _count(r.burnout >= BURNED_OUT_FROM), func.sum(r.burnout),
               _count(r.knows_line.is_(True)), _count(r.used_line.is_(True)),
               _count(r.likely >= LIKELY_FROM))
        .where(r.window_id == window_id).group_by(r.role))
    return {role: Sums(*(int(v or 0) for v in values)) for role, *values in rows}


def role_names(found: set[str] | None = None) -> list[str]:
    """The roles a window reports: roster.yaml's, prefer-not-to-say, then any other found."""
    try:
        listed = list(roles.current().names("roles"))
    except RuntimeError:  # outside an app context
        listed = []
    names = [*listed, PREFER_NOT_TO_SAY]
    return names + sorted((found or set()) - set(names))


def _k(k: int | None) -> int:
    return settings().MIN_CELL if k is None else k


def _hidden(k: int, why: str) -> dict:
    return dict(why=why.format(k=k))


WHY_WINDOW = "fewer than {k} answers in this window"
WHY_ROLE = "fewer than {k} answers from this role"
WHY_COMPLEMENT = "hidden too, so that a smaller role cannot be worked out from the total"


def by_role(session: Session, window: PulseWindow, k: int | None = None
            ) -> tuple[WindowResult, list[RoleResult]]:
    """A closed window's result as a whole and by role, suppressed with k."""
    k = _k(k)
    sums = sums_by_role(session, window.id)
    total = sum(sums.values(), Sums())
    names = role_names(set(sums))
    values = {f"role:{name}": sums.get(name, Sums()).responses for name in names}
    values[TOTAL] = total.responses
    # Decided over the roles that were answered only: the roles listed (roster.yaml when the
    # page is read) add empty cells, always shown <k, that must not change the decision (a
    # role added after the window closed would give a second version of it). An empty cell
    # left out only makes the decision more careful: the reader sees one more unknown.
    answered = sorted(name for name in names if values[f"role:{name}"])
    decided = {f"role:{n}": values[f"role:{n}"] for n in answered} | {TOTAL: values[TOTAL]}
    # A total of k or more is what the trends rest on: kept ("frozen"), the roles bear the
    # complementary suppression.
    hidden = suppress(decided, [[(TOTAL, 1), *((f"role:{n}", -1) for n in answered)]], k,
                      frozen={TOTAL} if total.responses >= k else set())
    hidden.primary |= {cell for cell, value in values.items() if value < k}
    if hidden.exposed:  # never with one line and every role free to hide; but if so, all
        hidden.complementary |= set(values) - {TOTAL}
    if TOTAL not in hidden.hidden:
        _hide_a_group_of_k(values, [f"role:{n}" for n in answered], hidden.hidden,
                           hidden.complementary, k)
    zone = program_zone()
    head = dict(window_id=window.id, title=window.title,
                opened=window.opened_at.astimezone(zone).date(),
                closed=window.closed_at.astimezone(zone).date() if window.closed_at else None)
    if TOTAL in hidden.hidden:
        overall = WindowResult(**head, **_hidden(k, WHY_WINDOW))
    else:
        overall = WindowResult(**head, **total.shares())
    roles = []
    for name in names:
        cell = f"role:{name}"
        if cell in hidden.primary or TOTAL in hidden.hidden:
            roles.append(RoleResult(role=name, **_hidden(k, WHY_ROLE)))
        elif cell in hidden.hidden:
            roles.append(RoleResult(role=name, **_hidden(k, WHY_COMPLEMENT)))
        else:
            roles.append(RoleResult(role=name, **sums[name].shares()))
    return overall, roles


def _hide_a_group_of_k(values: dict[str, int], cells: list[str], hidden: set[str],
                       complementary: set[str], k: int) -> None:
    """Hide more roles (the smallest shown first) until the hidden ones hold k answers or
    more together, or none. The counts' suppression keeps each small role's count vague,
    but the shares are not counts: the window's answers less the shown roles' are the
    hidden roles' answers together, exactly (five pharmacists, all burned out). Every group
    a reader can work out is then the window, a shown role, or the hidden roles with any
    shown ones: k or more. This also holds when a reader knows a role was empty for sure
    (added to roster.yaml after the window closed)."""
    def rest() -> int:
        return sum(values[c] for c in cells if c in hidden | complementary)

    while 0 < rest() < k:
        shown = sorted((values[c], c) for c in cells if c not in hidden | complementary)
        if not shown:
            return
        complementary.add(shown[0][1])


def closed_windows(session: Session) -> list[PulseWindow]:
    """The closed windows, oldest first."""
    return list(session.scalars(select(PulseWindow).where(PulseWindow.closed_at.is_not(None))
                                .order_by(PulseWindow.opened_at, PulseWindow.id)))


def trends(session: Session, k: int | None = None) -> list[WindowResult]:
    """Every closed window as a whole, oldest first: responses, burnout share and mean,
    awareness, use and likelihood of use; all None, with ``why``, for a window under k."""
    return [by_role(session, window, k)[0] for window in closed_windows(session)]
