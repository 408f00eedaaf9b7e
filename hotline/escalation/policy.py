"""The escalation policy: ``ivr_flows/escalation.yaml``, read and validated at start-up.

The file is a list of steps: one or two ring steps (``ring_one_at_a_time`` or
``ring_all``, each a roster tier), then ``nobody_free``. A ``ring_one_at_a_time`` step may
ring ``at_once`` supporters together (default 1): the next free ones in round-robin order,
one more whenever one of them rings out or passes, so that up to that many ring at any
moment; the first to press 1 wins. Timings are whole seconds or the
name of a setting, resolved once here against the app's settings, so an environment
variable keeps deciding where the file names it and a number in the file decides where it
is written. Every error names the file and the key (``steps[1].timeout_seconds``).

Two ring steps at most: a contact records its progress in two columns
(``Contact.escalated``: past the first step; ``Contact.tier2_rung``: the second rang).
A third step would need a step number on the contact (a migration), and the validation
says so rather than ignoring it.

Hook for the rules that come next (eligibility, preferences): ``CANDIDATE_FILTERS`` in
``hotline.escalation.runner``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from flask import current_app

from hotline.core.errors import FlowError
from hotline.core.flows import read_yaml
from hotline.core.settings import Settings

ESCALATION_FILE = "escalation.yaml"
EXTENSION = "hotline.escalation"

RING_ONE = "ring_one_at_a_time"
RING_ALL = "ring_all"
NOBODY_FREE = "nobody_free"
RING_ACTIONS = (RING_ONE, RING_ALL)
#: The keys each action takes (and must have, but ``after_seconds`` of the first step).
RING_TIMINGS = ("timeout_seconds", "accept_seconds", "text_accept_seconds")
KEYS = {RING_ONE: {"action", "tier", "after_seconds", "at_once", *RING_TIMINGS},
        RING_ALL: {"action", "tier", "after_seconds", *RING_TIMINGS},
        NOBODY_FREE: {"action", "after_seconds"}}
MAX_RING_STEPS = 2


@dataclass(frozen=True)
class Step:
    action: str
    tier: int | None = None
    #: Queue wait (calls) from which this step starts even if the one before still rings.
    after_seconds: int | None = None
    timeout_seconds: int | None = None
    accept_seconds: int | None = None
    text_accept_seconds: int | None = None
    #: ``ring_one_at_a_time``: how many of the tier ring together (the next ones in turn).
    at_once: int = 1

    @property
    def limit(self) -> int | None:
        """Supporters rung at a time: ``at_once``, or everyone free (None)."""
        return self.at_once if self.action == RING_ONE else None


@dataclass(frozen=True)
class Policy:
    steps: tuple[Step, ...]

    @property
    def first(self) -> Step:
        return self.steps[0]

    @property
    def second(self) -> Step | None:
        """The ring step the contact escalates to, if the policy has one."""
        return self.steps[1] if self.steps[1].action in RING_ACTIONS else None

    @property
    def final(self) -> Step:
        return self.steps[-1]

    def ring_steps(self) -> tuple[Step, ...]:
        return self.steps[:-1]

    def step_for_tier(self, tier: int) -> Step:
        """The ring step of ``tier`` (an offer's tier names its step)."""
        for step in self.ring_steps():
            if step.tier == tier:
                return step
        return self.first

    @property
    def longest_ring(self) -> int:
        """Ring plus accept time of the slowest ring step (for the auditor's deadlines)."""
        return max(s.timeout_seconds + s.accept_seconds for s in self.ring_steps())


def load(folder: str | Path, cfg: Settings) -> Policy:
    """Read and validate ``escalation.yaml`` in ``folder``; FlowError names the key."""
    path = Path(folder) / ESCALATION_FILE
    return parse(read_yaml(path), cfg, ESCALATION_FILE)


def parse(data: dict, cfg: Settings, name: str = ESCALATION_FILE) -> Policy:
    """The policy in ``data`` (the file's mapping), timings resolved against ``cfg``."""
    def fail(where: str, problem: str) -> FlowError:
        return FlowError(f"{name}: {where} {problem}")

    unknown = set(data) - {"steps"}
    if unknown:
        raise fail(min(unknown), "is not a known key (expected: steps)")
    raw = data.get("steps")
    if not isinstance(raw, list) or len(raw) < 2:
        raise fail("steps", "must be a list of at least one ring step and a final "
                   f"{NOBODY_FREE} step")
    steps = []
    for index, item in enumerate(raw):
        where = f"steps[{index}]"
        if not isinstance(item, dict):
            raise fail(where, "must be a mapping")
        action = item.get("action")
        if action not in KEYS:
            raise fail(f"{where}.action", f"must be one of {', '.join(KEYS)}; got {action!r}")
        for key in item:
            if key not in KEYS[action]:
                raise fail(f"{where}.{key}", f"is not a key of a {action} step")
        values = {"action": action}
        if action in RING_ACTIONS:
            tier = item.get("tier")
            if not isinstance(tier, int) or isinstance(tier, bool) or tier < 1:
                raise fail(f"{where}.tier", "must be a roster tier (a whole number, 1 or more)")
            values["tier"] = tier
            for key in RING_TIMINGS:
                values[key] = _seconds(item.get(key), f"{where}.{key}", cfg, fail)
        if "at_once" in item:
            values["at_once"] = _whole(item["at_once"], f"{where}.at_once", cfg, fail,
                                       "a whole number of supporters, 1 or more (how many "
                                       "ring together)")
        if "after_seconds" in item:
            values["after_seconds"] = _seconds(item["after_seconds"], f"{where}.after_seconds",
                                               cfg, fail)
        steps.append(Step(**values))
    *rings, final = steps
    if final.action != NOBODY_FREE:
        raise fail(f"steps[{len(steps) - 1}].action", f"must be {NOBODY_FREE} (the last step)")
    if final.after_seconds is None:
        raise fail(f"steps[{len(steps) - 1}].after_seconds",
                   "must be given (how long a caller waits before the options)")
    for index, step in enumerate(rings):
        if step.action not in RING_ACTIONS:
            raise fail(f"steps[{index}].action", f"{NOBODY_FREE} must be the last step only")
    if len(rings) > MAX_RING_STEPS:
        raise fail(f"steps[{MAX_RING_STEPS}]", f"is one ring step too many (at most "
                   f"{MAX_RING_STEPS}: a contact records its progress in two columns)")
    if len(rings) == 2:
        if rings[1].tier == rings[0].tier:
            raise fail("steps[1].tier", "must differ from steps[0].tier")
        if rings[1].after_seconds is None:
            raise fail("steps[1].after_seconds", "must be given (the queue wait before it "
                       "rings even while steps[0] still does)")
    if rings[0].after_seconds is not None:
        raise fail("steps[0].after_seconds", "is not allowed (the first step starts at once)")
    return Policy(tuple(steps))


def _seconds(raw, where: str, cfg: Settings, fail) -> int:
    """A timing: whole seconds, or the name of an integer setting."""
    return _whole(raw, where, cfg, fail, "a positive integer (seconds)")


def _whole(raw, where: str, cfg: Settings, fail, what: str) -> int:
    """A positive whole number, or the name of an integer setting whose value is used."""
    if isinstance(raw, str) and raw.isupper():
        names = {f.name for f in fields(Settings)}
        if raw not in names or not isinstance(getattr(cfg, raw), int):
            raise fail(where, f"names no whole-number setting: {raw!r}")
        raw = getattr(cfg, raw)
    if not isinstance(raw, int) or isinstance(raw, bool) or raw <= 0:
        raise fail(where, f"must be {what} or a setting's name")
    return raw


def current() -> Policy:
    """The policy of the current app."""
    return current_app.extensions[EXTENSION]
