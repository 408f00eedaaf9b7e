"""The escalation policy as data: ivr_flows/escalation.yaml, validated at start-up (errors
name the key), and a changed file changes what happens to a call, end to end."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from hotline import create_app
from hotline.core import settings
from hotline.core.errors import FlowError
from hotline.escalation import policy
from hotline.simulator import NoAnswer
from tests.scenario import heard

SHIPPED = Path(settings.load().IVR_FLOWS_DIR)


def shipped() -> dict:
    return yaml.safe_load((SHIPPED / policy.ESCALATION_FILE).read_text())


def flows_with(folder: Path, change) -> Path:
    """A copy of ivr_flows/ whose escalation.yaml is ``change``d."""
    for path in SHIPPED.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    data = shipped()
    change(data)
    (folder / policy.ESCALATION_FILE).write_text(yaml.safe_dump(data))
    return folder


def test_the_shipped_policy_takes_its_timings_from_the_settings():
    cfg = settings.load({"HOTLINE_RING_SECONDS": "25", "HOTLINE_BACKUP_AFTER_SECONDS": "60"})
    loaded = policy.load(SHIPPED, cfg)
    assert [s.action for s in loaded.steps] == [policy.RING_ONE, policy.RING_ALL,
                                                policy.NOBODY_FREE]
    assert (loaded.first.tier, loaded.second.tier) == (1, 2)
    assert loaded.first.timeout_seconds == loaded.second.timeout_seconds == 25
    assert loaded.second.after_seconds == 60
    assert loaded.final.after_seconds == cfg.MAX_WAIT_SECONDS
    assert loaded.first.accept_seconds == cfg.ACCEPT_SECONDS
    assert loaded.first.text_accept_seconds == cfg.SMS_ACCEPT_SECONDS


def test_a_number_in_the_file_decides_over_the_setting(tmp_path):
    def seven(data):
        data["steps"][0]["timeout_seconds"] = 7
    loaded = policy.load(flows_with(tmp_path, seven), settings.load({"HOTLINE_RING_SECONDS": "25"}))
    assert loaded.first.timeout_seconds == 7 and loaded.second.timeout_seconds == 25


def _set(path, value):
    def change(data):
        *keys, last = path
        node = data
        for key in keys:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return change


DELETE = object()


@pytest.mark.parametrize("change, message", [
    (_set(("steps", 1, "timeout_seconds"), 0),
     "escalation.yaml: steps[1].timeout_seconds must be a positive integer"),
    (_set(("steps", 1, "timeout_seconds"), "twenty"),
     "escalation.yaml: steps[1].timeout_seconds must be a positive integer"),
    (_set(("steps", 0, "accept_seconds"), True),
     "escalation.yaml: steps[0].accept_seconds must be a positive integer"),
    (_set(("steps", 0, "timeout_seconds"), "RINGING_SECONDS"),
     "escalation.yaml: steps[0].timeout_seconds names no whole-number setting"),
    (_set(("steps", 0, "timeout_seconds"), DELETE),
     "escalation.yaml: steps[0].timeout_seconds must be a positive integer"),
    (_set(("steps", 0, "action"), "ring_twice"),
     "escalation.yaml: steps[0].action must be one of"),
    (_set(("steps", 0, "tier"), 0), "escalation.yaml: steps[0].tier must be a roster tier"),
    (_set(("steps", 1, "tier"), 1), "escalation.yaml: steps[1].tier must differ"),
    (_set(("steps", 0, "colour"), "blue"),
     "escalation.yaml: steps[0].colour is not a key of a ring_one_at_a_time step"),
    (lambda data: data["steps"].__setitem__(2, {**data["steps"][1], "tier": 3}),
     "escalation.yaml: steps[2].action must be nobody_free"),
    (_set(("steps", 2, "after_seconds"), DELETE), "escalation.yaml: steps[2].after_seconds"),
    (_set(("steps", 1, "after_seconds"), DELETE), "escalation.yaml: steps[1].after_seconds"),
    (_set(("steps", 0, "after_seconds"), 30), "escalation.yaml: steps[0].after_seconds"),
    (_set(("steps",), []), "escalation.yaml: steps must be a list"),
    (_set(("timing",), 3), "escalation.yaml: timing is not a known key"),
    (lambda data: data["steps"].insert(2, {**data["steps"][1], "tier": 3}),
     "escalation.yaml: steps[2] is one ring step too many"),
])
def test_a_bad_policy_is_refused_naming_the_key(tmp_path, change, message):
    folder = flows_with(tmp_path, change)
    with pytest.raises(FlowError, match=re.escape(message)):
        policy.load(folder, settings.load({}))


def test_the_app_does_not_start_on_a_bad_policy(tmp_path):
    folder = flows_with(tmp_path, _set(("steps", 1, "timeout_seconds"), -5))
    with pytest.raises(FlowError, match=r"steps\[1\]\.timeout_seconds must be a positive"):
        create_app({"IVR_FLOWS_DIR": str(folder), "REDIS_URL": "redis://127.0.0.1:1/0"})


def no_tier_2(data):
    del data["steps"][1]


@pytest.mark.parametrize("change", [None, no_tier_2], ids=["shipped", "tier-2-step-removed"])
def test_removing_the_tier_2_step_takes_the_caller_to_the_options(app_settings, tmp_path,
                                                                  request, change):
    """The same story under two policies: a peer does not answer, a backup would. With
    the shipped file the backup is rung and takes the call; without the tier 2 step
    nobody rings them and the caller hears the options (and asks for a callback)."""
    if change is not None:
        app_settings.update(IVR_FLOWS_DIR=str(flows_with(tmp_path, change)))
    hotline = request.getfixturevalue("hotline")
    hotline.supporter("Peer", ring=NoAnswer())
    backup = hotline.supporter("Backup", tier=2)
    clinician = hotline.clinician(gather=["1", "2"])
    hotline.call(clinician)
    hotline.run()
    contact = hotline.contacts()[0]  # (a callback request makes a contact per try)
    if change is None:
        assert hotline.offers() == [("Peer", "no_answer", 1), ("Backup", "accepted", 2)]
        assert contact.outcome == "connected_backup"
    else:
        assert hotline.offers()[0] == ("Peer", "no_answer", 1)
        assert all(tier == 1 for _, _, tier in hotline.offers())
        assert hotline.legs_to(backup) == []
        assert contact.outcome == "callback_requested" and not contact.escalated
        assert heard(clinician, "no peer supporter is free right now")


@pytest.mark.usefixtures("one_at_a_time")
def test_a_shorter_ring_timeout_in_the_file_rings_each_phone_that_long(app_settings, tmp_path,
                                                                       request):
    app_settings.update(IVR_FLOWS_DIR=str(flows_with(
        tmp_path, _set(("steps", 0, "timeout_seconds"), 7))))
    hotline = request.getfixturevalue("hotline")
    first = hotline.supporter("First", ring=NoAnswer())
    hotline.supporter("Second")
    hotline.call(hotline.clinician(gather=["1"]))
    hotline.run()
    assert hotline.offers() == [("First", "no_answer", 1), ("Second", "accepted", 1)]
    [leg] = hotline.legs_to(first)
    assert leg.timeout == 7  # the shipped policy names HOTLINE_RING_SECONDS: 20
    assert leg.end_time - leg.created_at == pytest.approx(7, abs=1)
