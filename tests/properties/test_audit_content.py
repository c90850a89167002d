"""The audit log says when, and which message (R-AUDIT).

R-AUDIT: the log records every state change, accepted and refused message, alert and
deactivation, *with sim time*. P-AUDIT checks that the chain verifies and that tampering shows;
this checks what the chain holds, without fixing the log's vocabulary (kinds and field names are
the controller's):

* every entry carries its sim time: a number, never decreasing along the chain, within the run;
* every delivery the camera answered with a readable id (a redelivery included) has an entry of
  its own at the moment it arrived that names that id.

Mutation testing found an entry written without its time, and a redelivery's entry without its
id, with no suite or scenario noticing (docs/mutation.md).
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from controller.audit import AuditEntry, NoAuditTrail, trail_of
from controller.node import ControllerFactory
from controller.spans import EPS
from sim.pytest_plugin.suites.common import suite_settings
from sim.search.invariants import NodeDriver, camera_setup
from sim.search.strategies import load_scenario_dict, scenarios
from sim.world.replay import CameraRun, replay

_SETTINGS = suite_settings()


def _mentions(value: Any, wanted: Any) -> bool:
    """Whether ``wanted`` (a message id) appears as a value anywhere in ``value``."""
    if isinstance(value, dict):
        return any(_mentions(v, wanted) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_mentions(v, wanted) for v in value)
    return type(value) is type(wanted) and value == wanted


def audit_content_problems(
    cam: str, entries: list[AuditEntry], deliveries: list[tuple[float, Any]], end: float
) -> list[str]:
    """R-AUDIT's content: times on every entry, one entry per answered delivery naming its id."""
    problems: list[str] = []
    last = -math.inf
    for e in entries:
        at = e.at
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            problems.append(f"{cam}: audit entry {e.seq} ({e.kind}) has no sim time: {at!r}")
            continue
        if at < last - EPS:
            problems.append(f"{cam}: audit entry {e.seq} ({e.kind}) at {at:g} is earlier than the "
                            f"entry before it ({last:g})")
        if not -EPS <= at <= end + EPS:
            problems.append(f"{cam}: audit entry {e.seq} ({e.kind}) at {at:g} lies outside the run "
                            f"(0-{end:g})")
        last = max(last, at)
    used: set[int] = set()
    for at, msg_id in deliveries:
        found = next((i for i, e in enumerate(entries)
                      if i not in used and isinstance(e.at, int | float)
                      and abs(e.at - at) <= EPS and _mentions(e.data, msg_id)), None)
        if found is None:
            problems.append(f"{cam}: no audit entry of its own at {at:g} names the message "
                            f"{msg_id!r} that arrived then")
        else:
            used.add(found)
    return problems


#: A buffer longer than ``segment_max_s``: the first rollover falls due before the activation,
#: so the segment it closes ends in the past. Both controllers once logged that close at the
#: segment's end, behind the activation's own entries (found by the C suite's random search).
_ROLLOVER_DUE_BEFORE_ACTIVATION = {
    "version": 1, "name": "rollover due before the activation", "policy": "dhs-2023", "end": 361,
    "cameras": [{"id": "cam-1", "prebuffer_s": 120, "segment_max_s": 60}],
    "timeline": [{"at": 121, "camera": "cam-1", "event": "signal", "source": "holster"}],
}


@pytest.mark.req("R-AUDIT")
@_SETTINGS
@given(data=scenarios())
@example(data=_ROLLOVER_DUE_BEFORE_ACTIVATION)
def test_every_audit_entry_has_its_time_and_every_answered_message_its_entry(
    controller_factory: ControllerFactory, data: dict[str, Any]
) -> None:
    scenario = load_scenario_dict(data)
    result = replay(scenario, controller_factory)
    problems: list[str] = []
    for cam, run in result.cameras.items():
        assert isinstance(run, CameraRun)
        try:
            trail = trail_of(run.node)
        except NoAuditTrail as why:
            pytest.skip(str(why))
        deliveries = []
        for d in run.deliveries:
            for ack in d.acks:
                if ack.id is not None:
                    deliveries.append((d.at, msgspec.json.decode(msgspec.json.encode(ack.id))))
        problems += audit_content_problems(cam, list(trail.entries), deliveries, scenario.end)
    assert not problems, "\n".join(problems)


#: Messages with a readable id the camera must refuse (R-BAD, R-IDEM), and one it accepts.
_ANSWERED = (
    {"type": "no_such_type"},
    {"type": "button", "action": "sideways"},
    {"type": "activity_end", "activity_id": "never-started"},
    {"type": "activity_start", "activity": "no_such_activity", "activity_id": "x"},
    {"type": "dock"},
)


@pytest.mark.req("R-AUDIT", "R-IDEM")
@_SETTINGS
@given(body=st.sampled_from(_ANSWERED), copies=st.integers(2, 4), gap=st.integers(0, 30))
def test_each_redelivery_of_a_refused_or_accepted_message_is_audited_with_its_id(
    controller_factory: ControllerFactory, body: dict[str, Any], copies: int, gap: int
) -> None:
    scenario = load_scenario_dict({"version": 1, "name": "redelivered", "policy": "dhs-2023",
                                   "end": 1000, "cameras": [{"id": "cam-1"}], "timeline": []})
    driver = NodeDriver.build(controller_factory, camera_setup(scenario, "cam-1"))
    payload = msgspec.json.encode({"id": "m-1", **body})
    times = [10.0 + i * gap + i * 0.5 for i in range(copies)]
    for t in times:
        driver.deliver(f"{scenario.prefix}/cam-1/event", payload, t)
    try:
        trail = trail_of(driver.node)
    except NoAuditTrail as why:
        pytest.skip(str(why))
    problems = audit_content_problems("cam-1", list(trail.entries), [(t, "m-1") for t in times],
                                      scenario.end)
    assert not problems, "\n".join(problems)
