"""The camera's deadlines (R-POWER, R-ROLL, R-TRIG): asking for them changes nothing.

A driver asks :meth:`CameraNode.next_deadline` after every call (the replay does), and the
camera answers the next event's catch-up from that answer instead of computing it again. The
publications must be the same, byte for byte, as when the answer is never reused, whether the
driver wakes the camera at its deadlines or leaves it to catch up, and after a state trigger
fired from outside an event.
"""

from __future__ import annotations

import pytest

import controller.camera as camera_module
from controller.node import CameraSetup, Publish
from controller.reference import ReferenceNode
from sim.fleet import DENSE_PROFILE, plan_fleet, team_scenario

pytestmark = pytest.mark.req("R-POWER", "R-ROLL", "R-TRIG")


def _shift() -> tuple[CameraSetup, list[tuple[str, bytes, float]]]:
    scenario = team_scenario(plan_fleet(1, 12.0, 1, profile=DENSE_PROFILE)[0])
    spec = scenario.cameras[0]
    setup = CameraSetup(camera_id=spec.id, policy=scenario.policy, params=spec.params,
                        teams=spec.teams, initial=spec.initial, prefix=scenario.prefix)
    msgs = [(*e.payload(scenario.prefix), e.send_at)
            for e in sorted(scenario.timeline, key=lambda e: (e.send_at, e.index))
            if e.event is not None]
    return setup, msgs


def _drive(setup: CameraSetup, msgs: list[tuple[str, bytes, float]], *, reuse: bool,
           wake: bool, ask_every: int = 1) -> list[Publish]:
    """Deliver ``msgs``; ask the deadline before every ``ask_every``-th one (and wake the camera
    at it when ``wake``); without ``reuse`` the camera never reuses an answer."""
    node = ReferenceNode(setup)
    out = node.start(0.0)
    for n, (topic, payload, at) in enumerate(msgs):
        due = node.next_deadline() if n % ask_every == 0 else None
        while wake and due is not None and due <= at:
            if not reuse:
                node.camera._due = camera_module._UNKNOWN
            out += node.on_timer(due)
            due = node.next_deadline()
        if not reuse:
            node.camera._due = camera_module._UNKNOWN
        out += node.on_message(topic, payload, at)
    out += node.finish(msgs[-1][2] + 60.0)
    return out


@pytest.mark.parametrize("ask_every", [1, 3])
@pytest.mark.parametrize("wake", [True, False])
def test_a_busy_shift_publishes_the_same_whether_the_deadline_is_reused_or_not(
    wake: bool, ask_every: int,
) -> None:
    setup, msgs = _shift()
    assert len(msgs) > 500
    reused = _drive(setup, msgs, reuse=True, wake=wake, ask_every=ask_every)
    assert reused == _drive(setup, msgs, reuse=False, wake=wake, ask_every=ask_every)
    assert sum(p.topic.endswith("/recording") for p in reused) > 5


def test_a_trigger_fired_between_events_is_not_answered_from_a_stale_deadline() -> None:
    """After next_deadline, a dock fired directly on the camera changes its deadlines (no
    battery drain while charging): the next event's catch-up must see the new ones."""
    setup, _ = _shift()
    nodes = [ReferenceNode(setup) for _ in range(2)]
    outs = []
    for node in nodes:
        out = node.start(0.0)
        out += node.on_message(node.topics.event, b'{"id":"u","type":"undock"}', 10.0)
        node.next_deadline()
        outs.append(out)
    nodes[1].camera._due = camera_module._UNKNOWN
    late = nodes[0].camera.params.battery_s * 2
    for node, out in zip(nodes, outs, strict=True):
        node.camera.dock()
        out += node.on_message(node.topics.event, b'{"id":"x","type":"reactivate"}', late)
    assert outs[0] == outs[1]
    assert not any(b"battery_empty" in p.payload for p in outs[0])
