"""The refusals the spec names carry the spec's code (SPEC §4: R-STOP, R-IDEM).

During a required activity, whatever else is going on: a ``button stop`` is NACKed
``required_activity``; a ``deactivate`` whose reason the policy does not list is NACKed
``reason_not_allowed``; an ``activity_end`` for an activity that never started is NACKed
``unknown_activity``. Each refusal changes nothing: the camera goes on recording.

Mutation testing found the code of a refused deactivation could be anything without a suite or
a scenario noticing: they counted refusals, not what the refusal said (docs/mutation.md).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.node import ControllerFactory
from controller.policy import load_policy
from sim.pytest_plugin.suites.common import suite_settings
from sim.search.invariants import NodeDriver, camera_setup
from sim.search.strategies import load_scenario_dict

_SETTINGS = suite_settings()
_POLICY = "dhs-2023"
_SCENARIO = load_scenario_dict({"version": 1, "name": "refusals", "policy": _POLICY, "end": 3600,
                                "cameras": [{"id": "cam-1"}], "timeline": []})
_TOPIC = f"{_SCENARIO.prefix}/cam-1/event"
_ALLOWED = set(load_policy(_POLICY).deactivation_reasons)
_REQUIRED = sorted(name for name, kind in load_policy(_POLICY).activities.items() if kind == "required")

names = st.text(st.characters(codec="ascii", categories=("Ll", "Nd")), min_size=1, max_size=12)
# SPEC §4a: an `activity_end` for an activity that never started is NACKed `unknown_activity`.
_UNKNOWN_ID = frozenset({"unknown_activity"})
refusals = st.one_of(
    st.just(("stop", {"type": "button", "action": "stop"}, frozenset({"required_activity"}))),
    names.filter(lambda r: r not in _ALLOWED).map(
        lambda r: ("deactivate", {"type": "deactivate", "reason": r, "actor": "sgt-1"},
                   frozenset({"reason_not_allowed"}))),
    names.map(lambda a: ("end", {"type": "activity_end", "activity_id": f"never-{a}"}, _UNKNOWN_ID)),
)


@pytest.mark.req("R-STOP", "R-IDEM")
@_SETTINGS
@given(activity=st.sampled_from(_REQUIRED), start=st.integers(1, 600),
       attempts=st.lists(st.tuples(st.integers(1, 120), refusals), min_size=1, max_size=4))
def test_a_refusal_the_spec_names_carries_its_code_and_changes_nothing(
    controller_factory: ControllerFactory, activity: str, start: int,
    attempts: list[tuple[int, tuple[str, dict[str, Any], frozenset[str]]]],
) -> None:
    driver = NodeDriver.build(controller_factory, camera_setup(_SCENARIO, "cam-1"))
    driver.deliver(_TOPIC, msgspec.json.encode(
        {"id": "w", "type": "activity_start", "activity": activity, "activity_id": "a-1"}), start)
    at = float(start)
    for i, (after, (what, body, code)) in enumerate(attempts):
        at += after
        pubs = driver.deliver(_TOPIC, msgspec.json.encode({"id": f"x-{i}", **body}), at)
        acks = [msgspec.json.decode(p.payload) for p in pubs if p.topic.endswith("/ack")]
        assert len(acks) == 1 and not acks[0]["ok"], f"{what} during {activity} must be NACKed: {acks}"
        assert str(acks[0].get("error", "")).split(":")[0] in code, (
            f"{what} during {activity} must be NACKed {sorted(code)}, got {acks[0].get('error')!r}"
        )
        state = driver.last_state()
        assert state is not None and state["state"] == "recording", (
            f"a refused {what} changed the camera: {state}"
        )
