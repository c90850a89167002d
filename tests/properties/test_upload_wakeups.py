"""What the dock offloads does not depend on how often the camera is woken (R-STORE, P-BAD).

A docked camera uploads its closed recordings at ``upload_speed`` seconds of footage a second,
whatever arrives meanwhile. Malformed messages change nothing (P-BAD), so a camera pestered with
garbage every few hundredths of a second while it offloads must free exactly the storage it
frees left alone: the card holds the footage not yet confirmed, no more and no less. With a
dock long enough for the whole upload the card is empty again.

Mutation testing found upload progress lost whenever the camera was woken less than a second of
footage apart (``budget > 1``), with no suite or scenario noticing (docs/mutation.md).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.node import ControllerFactory
from sim.pytest_plugin.suites.common import suite_settings
from sim.search.invariants import NodeDriver, camera_setup
from sim.search.strategies import load_scenario_dict

_SETTINGS = suite_settings()
SPEED = 20.0  # upload_speed: seconds of footage a second
PREBUFFER = 30.0  # buffered on activation at 100 s: the recording holds record_s + 30 s
STORAGE = 7200.0


def _free_after_dock(
    factory: ControllerFactory, record_s: int, dock_s: float, pester_every: float | None
) -> dict[str, Any]:
    """Record ``record_s`` s, dock for ``dock_s`` s (garbage every ``pester_every`` s), undock."""
    scenario = load_scenario_dict({"version": 1, "name": "offload", "policy": "dhs-2023",
                                   "end": 10_000, "cameras": [{"id": "cam-1", "upload_speed": SPEED,
                                                "prebuffer_s": PREBUFFER, "storage_s": STORAGE}],
                                   "timeline": []})
    topic = f"{scenario.prefix}/cam-1/event"
    driver = NodeDriver.build(factory, camera_setup(scenario, "cam-1"))

    def send(msg_id: str, body: dict[str, Any], at: float) -> None:
        driver.deliver(topic, msgspec.json.encode({"id": msg_id, **body}), at)

    send("s", {"type": "button", "action": "start"}, 100.0)
    docked = 100.0 + record_s
    send("d", {"type": "dock"}, docked)
    if pester_every is not None:
        t, i = docked + pester_every, 0
        while t < docked + dock_s - 1e-3:
            driver.deliver(topic, b"\x00garbage" + str(i).encode(), t)
            t, i = docked + (i + 2) * pester_every, i + 1
    send("u", {"type": "undock"}, docked + dock_s)
    state = driver.last_state()
    assert state is not None
    return state


@pytest.mark.req("R-STORE", "P-BAD")
@_SETTINGS
@given(record_s=st.integers(20, 900), share=st.floats(0.2, 1.5),
       pester_every=st.sampled_from((0.01, 0.02, 0.04, 0.05)))
def test_the_upload_progresses_however_often_the_docked_camera_is_woken(
    controller_factory: ControllerFactory, record_s: int, share: float, pester_every: float
) -> None:
    footage = record_s + PREBUFFER
    dock_s = round(share * footage / SPEED, 2) + 0.05
    alone = _free_after_dock(controller_factory, record_s, dock_s, None)
    pestered = _free_after_dock(controller_factory, record_s, dock_s, pester_every)
    assert pestered["storage_s"] == pytest.approx(alone["storage_s"], abs=0.01), (
        f"free storage after a {dock_s:g} s dock: {alone['storage_s']} left alone, "
        f"{pestered['storage_s']} with garbage every {pester_every:g} s"
    )
    if share >= 1.0:  # the whole recording, buffer included, was confirmed: the card is empty
        assert pestered["storage_s"] == pytest.approx(STORAGE, abs=0.5), (
            f"{footage:g} s of footage, docked {dock_s:g} s at {SPEED:g}/s: all of it uploaded, "
            f"yet {pestered['storage_s']} of {STORAGE:g} s free"
        )
