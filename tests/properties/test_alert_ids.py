"""Every alert a camera publishes has an id of its own (SPEC §14b, R-NODROP).

A subscriber keeps the first alert of each `alert_id` and drops later copies as redeliveries, so
two different alerts under one id would lose the second. A docked camera told of several
required activities, one after another, announces each miss in its own alert: the ids must all
differ, and each has the controller's form `<camera>-a<n>`.

Mutation testing found alert ids could all be the same without a suite or a scenario noticing
(docs/mutation.md).
"""

from __future__ import annotations

import re

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.node import ControllerFactory
from sim.pytest_plugin.suites.common import suite_settings
from sim.search.invariants import NodeDriver, camera_setup
from sim.search.strategies import load_scenario_dict

_SETTINGS = suite_settings()
_REQUIRED = ("patrol", "emergency_response", "arrest_warrant", "search_warrant")


@pytest.mark.req("R-NODROP")
@_SETTINGS
@given(activities=st.lists(st.sampled_from(_REQUIRED), min_size=2, max_size=5),
       gaps=st.lists(st.integers(1, 600), min_size=5, max_size=5))
def test_each_alert_has_an_id_of_its_own(
    controller_factory: ControllerFactory, activities: list[str], gaps: list[int]
) -> None:
    scenario = load_scenario_dict({"version": 1, "name": "alert ids", "policy": "dhs-2023",
                                   "end": 4000, "cameras": [{"id": "cam-1", "initial": "docked"}],
                                   "timeline": []})
    driver = NodeDriver.build(controller_factory, camera_setup(scenario, "cam-1"))
    alerts: list[dict[str, object]] = []
    now = 10.0
    for i, (activity, gap) in enumerate(zip(activities, gaps, strict=False)):
        now += gap
        pubs = driver.deliver(f"{scenario.prefix}/cam-1/event", msgspec.json.encode(
            {"id": f"m-{i}", "type": "activity_start", "activity": activity,
             "activity_id": f"a-{i}"}), now)
        alerts += [msgspec.json.decode(p.payload) for p in pubs if p.topic.endswith("/alert")]
    missed = [a for a in alerts if a["kind"] == "missed_required_recording"]
    assert len(missed) == len(activities), f"one miss announced per activity, got {alerts}"
    # SPEC §5: a controller should name its alerts (the C example does not yet); every name
    # given must be its own, in the camera's form.
    ids = [a["alert_id"] for a in alerts if a.get("alert_id") is not None]
    assert len(set(ids)) == len(ids), f"alerts share an id: {ids}"
    assert all(isinstance(i, str) and re.fullmatch(r"cam-1-a\d+", i) for i in ids), ids
