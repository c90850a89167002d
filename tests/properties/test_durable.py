"""R-DURABLE as properties of the node interface: a restored camera is the camera it was.

Two properties over generated one-camera scenarios, for a controller that is a
:class:`~controller.node.DurableNode` (others are skipped: they start afresh after a restart):

* **Round trip**: state dumped between two calls and loaded into a fresh node of the same setup
  gives a node that publishes, from then on, exactly what the original publishes.
* **Restart**: a node restored and resumed after a down time (SPEC §14, Restart) ends the
  recording open at the crash where the process died, captures nothing in the gap (no segment
  of any recording overlaps it, and a recording started by the restart has no buffer), and a
  required activity still open is recorded again at once under the same incident id. It then
  runs the rest of the scenario without raising.

Mutation testing found these lines reached by no property suite or scenario (docs/mutation.md).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import strategies as st

from controller.node import ControllerFactory, DurableNode
from controller.spans import EPS
from sim.pytest_plugin.suites.common import suite_settings
from sim.search.invariants import Delivery, NodeDriver, camera_setup, deliveries_by_camera, same_outputs
from sim.search.strategies import load_scenario_dict, scenarios
from sim.world.replay import replay
from sim.world.scenario import Scenario

_SETTINGS = suite_settings(HealthCheck.filter_too_much)
_ONE_CAMERA = scenarios(max_cameras=1, faults=False, raw=False, bus=False)


def _deliveries(scenario: Scenario, factory: ControllerFactory) -> list[Delivery]:
    records: list[dict[str, Any]] = []
    replay(scenario, factory, records.append)
    return deliveries_by_camera(records).get(scenario.cameras[0].id, [])


def _driver_until(scenario: Scenario, factory: ControllerFactory, deliveries: list[Delivery],
                  k: int) -> NodeDriver:
    driver = NodeDriver.build(factory, camera_setup(scenario, scenario.cameras[0].id))
    for d in deliveries[:k]:
        driver.deliver(d.topic, d.payload, d.at)
    return driver


def _rest(driver: NodeDriver, scenario: Scenario, deliveries: list[Delivery], k: int) -> None:
    for d in deliveries[k:]:
        driver.deliver(d.topic, d.payload, max(d.at, driver.now))
    driver.finish(max(scenario.end, driver.now))


def _durable(driver: NodeDriver) -> DurableNode:
    node = driver.node
    if not isinstance(node, DurableNode):
        pytest.skip("the controller under test does not survive restarts (not a DurableNode)")
    return node


@pytest.mark.req("R-DURABLE")
@_SETTINGS
@given(data=_ONE_CAMERA, st_data=st.data())
def test_state_dumped_and_loaded_publishes_what_the_original_publishes(
    controller_factory: ControllerFactory, data: dict[str, Any], st_data: st.DataObject
) -> None:
    scenario = load_scenario_dict(data)
    deliveries = _deliveries(scenario, controller_factory)
    k = st_data.draw(st.integers(0, len(deliveries)), label="dumped after delivery")
    original = _driver_until(scenario, controller_factory, deliveries, k)
    saved = _durable(original).dump_state()

    restored = NodeDriver.build(controller_factory, camera_setup(scenario, scenario.cameras[0].id),
                                now=original.now)
    _durable(restored).load_state(saved)
    restored.outputs.clear()  # what a fresh node says at power-on is not the restored camera's
    mark = len(original.outputs)
    _rest(original, scenario, deliveries, k)
    _rest(restored, scenario, deliveries, k)

    changed = same_outputs(original.outputs[mark:], restored.outputs)
    assert changed == [], f"the camera restored after delivery {k} publishes differently: {changed}"


def _recordings(driver: NodeDriver, since: int = 0) -> list[dict[str, Any]]:
    return [msgspec.json.decode(p.payload) for _, _, p in driver.outputs[since:]
            if p.topic.endswith("/recording")]


@pytest.mark.req("R-DURABLE")
@_SETTINGS
@given(data=_ONE_CAMERA, st_data=st.data())
def test_a_restarted_camera_captures_nothing_while_down_and_resumes_required_recording(
    controller_factory: ControllerFactory, data: dict[str, Any], st_data: st.DataObject
) -> None:
    scenario = load_scenario_dict(data)
    deliveries = _deliveries(scenario, controller_factory)
    k = st_data.draw(st.integers(0, len(deliveries)), label="down after delivery")
    before = _driver_until(scenario, controller_factory, deliveries, k)
    down = before.now
    horizon = deliveries[k].at if k < len(deliveries) else scenario.end
    assume(horizon - down >= 1.0)
    up = st_data.draw(st.floats(down + 0.5, horizon), label="back up at")
    state_before = before.last_state()
    assert state_before is not None, "a camera reports its state from power-on"
    was_recording = state_before["state"] == "recording"

    node = NodeDriver.build(controller_factory, camera_setup(scenario, scenario.cameras[0].id),
                            now=down)
    _durable(node).load_state(_durable(before).dump_state())
    node.outputs.clear()
    node.now = up
    resumed = _durable(node).resume(down, up)  # what the runtime calls after a restore
    node.outputs.extend((up, "resume", p) for p in resumed)
    _rest(node, scenario, deliveries, k)

    for rec in _recordings(node):
        for a, b in rec["segment_list"]:
            assert b <= down + EPS or a >= up - EPS, (
                f"recording {rec['recording']} has footage {a}-{b} inside the down time {down}-{up}"
            )
    reports = [msgspec.json.decode(p.payload) for p in resumed if p.topic.endswith("/state")]
    state_after = reports[-1] if reports else state_before  # reported only when it changed
    closed = [msgspec.json.decode(p.payload) for p in resumed if p.topic.endswith("/recording")]
    closed = [r for r in closed if r.get("final")]
    if was_recording:
        assert closed, "the recording open at the crash was not closed by the restart"
        assert abs(closed[-1]["end"] - down) <= 1e-6, (
            f"the interrupted recording must end where the process died ({down}): {closed[-1]}"
        )
    # A recording that starts at the restart was opened by it only if the camera came back
    # recording; otherwise it is a later trigger's, whose buffer reaches back to the restart
    # (the buffer refills from the restart on, so it may claim up to the time since).
    restarted = [r for r in _recordings(node) if abs(r["start"] - up) <= EPS] \
        if state_after["state"] == "recording" else []
    for rec in restarted:
        assert rec["buffer_s"] == 0, f"no buffer exists at a restart, yet {rec} claims one"
    # Judged only while a required window is still open at the restart: one whose tail ended by
    # then leaves a recording kept only by a manual hold, which may open a new incident.
    if was_recording and state_before["active"] and state_after["state"] == "recording" \
            and state_after.get("active"):
        assert restarted, f"a required window ({state_before['active']}) open at the crash must be " \
            f"recorded again from the restart at {up}"
        assert restarted[0]["incident"] == closed[-1]["incident"], (
            f"a required recording resumed after a restart keeps its incident id "
            f"{closed[-1]['incident']}, got {restarted[0]['incident']}"
        )
