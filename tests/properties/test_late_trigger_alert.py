"""A late trigger's alert names the activity and the exact span no buffer covered (R-LATE).

A camera buffering since power-on (``prebuffer_s`` p) hears of a required activity ``d`` seconds
after it began (``ts`` in the past), ``d`` longer than its buffer: it records from ``now - p``,
and alerts ``late_trigger`` once, with the activity's id and the span ``[ts, now - p]`` that
nothing covers. Scenarios check that the alert is raised; this checks what it says.

Mutation testing found the alert's ``activity_id`` could be dropped without a suite or a
scenario noticing (docs/mutation.md).
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.node import ControllerFactory
from sim.pytest_plugin.suites.common import suite_settings
from sim.search.invariants import NodeDriver, camera_setup
from sim.search.strategies import load_scenario_dict

_SETTINGS = suite_settings()


@pytest.mark.req("R-LATE")
@_SETTINGS
@given(prebuffer=st.integers(0, 120), late_by=st.integers(1, 150), now=st.integers(300, 3000),
       activity=st.sampled_from(("arrest_warrant", "search_warrant", "patrol")))
def test_a_late_trigger_alert_names_its_activity_and_the_uncovered_span(
    controller_factory: ControllerFactory, prebuffer: int, late_by: int, now: int, activity: str
) -> None:
    delay = prebuffer + late_by  # longer than the buffer by late_by seconds
    scenario = load_scenario_dict({"version": 1, "name": "late", "policy": "dhs-2023", "end": 4000,
                                   "cameras": [{"id": "cam-1", "prebuffer_s": prebuffer}],
                                   "timeline": []})
    driver = NodeDriver.build(controller_factory, camera_setup(scenario, "cam-1"))
    pubs = driver.deliver(f"{scenario.prefix}/cam-1/event", msgspec.json.encode(
        {"id": "t-1", "type": "activity_start", "activity": activity, "activity_id": "a-1",
         "ts": now - delay}), float(now))
    alerts = [msgspec.json.decode(p.payload) for p in pubs if p.topic.endswith("/alert")]
    late = [a for a in alerts if a["kind"] == "late_trigger"]
    assert len(late) == 1, f"one late_trigger alert expected, got {alerts}"
    assert late[0].get("activity_id") == "a-1", f"the alert must name activity a-1: {late[0]}"
    start, end = late[0]["span"]
    assert start == pytest.approx(now - delay) and end == pytest.approx(now - prebuffer), (
        f"uncovered span must be [{now - delay}, {now - prebuffer}], got {late[0]['span']}"
    )
