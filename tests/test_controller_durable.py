"""The camera's state survives a restart (R-DURABLE): snapshot, restore, resume.

A snapshot taken at any point and restored into a freshly built node must behave exactly like
the node it was taken from for the rest of any run (hypothesis). :meth:`Camera.resume` plays the
time a crashed camera was down: the interrupted recording closes where the process died, an
open warrant resumes under the same incident, and its later ``activity_end`` is accepted.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from camera_driver import CAM, DHS, make_policy
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.camera import Camera
from controller.codec import Topics
from controller.errors import InvalidInput
from controller.node import CameraSetup, DurableNode, Publish
from controller.params import CameraParams
from controller.persist import StateCodec
from controller.reference import ReferenceNode

pytestmark = pytest.mark.req("R-DURABLE")

TOPICS = Topics(CAM)
# Small battery, storage and segments, so that short runs cross every deadline.
PARAMS = CameraParams(battery_s=4000.0, low_battery_s=500.0, storage_s=3000.0, segment_max_s=400.0,
                      boot_s=5.0)

_EVENTS: list[dict[str, Any]] = [
    {"type": "activity_start", "activity": "search_warrant", "activity_id": "w1"},
    {"type": "activity_start", "activity": "arrest_warrant", "activity_id": "w2"},
    {"type": "activity_start", "activity": "traffic_stop", "activity_id": "t1"},
    {"type": "activity_end", "activity_id": "w1"},
    {"type": "activity_end", "activity_id": "w2"},
    {"type": "dock"},
    {"type": "undock"},
    {"type": "button", "action": "start"},
    {"type": "button", "action": "stop"},
    {"type": "signal", "source": sorted(DHS.signals)[0]},
    {"type": "deactivate", "reason": sorted(DHS.deactivation_reasons)[0], "actor": "sgt"},
    {"type": "reactivate"},
]


def _node(post_s: float = 0.0) -> ReferenceNode:
    policy = make_policy(post_s=post_s) if post_s else DHS
    return ReferenceNode(CameraSetup(camera_id=CAM, policy=policy, params=PARAMS))


def _payload(index: int, serial: int, at: float, late: bool) -> bytes:
    """Event ``index`` (past the list: garbage); every fifth id repeats; ``late``: ``ts`` 200 s ago."""
    if index >= len(_EVENTS):
        return b'{"id": "g%d", "type": "nonsense"}' % serial
    body = {"id": f"m{serial % 7}" if serial % 5 == 0 else f"m{serial}", **_EVENTS[index]}
    if late:
        body["ts"] = at - 200.0
    return json.dumps(body).encode()


def _drive(node: ReferenceNode, now: float, until: float) -> list[Publish]:
    """Run the node's deadlines up to ``until``, as a driver must before a delivery."""
    out: list[Publish] = []
    while (due := node.next_deadline()) is not None and due <= until:
        out += node.on_timer(max(due, now))
        now = max(due, now)
    return out


def _feed(node: ReferenceNode, steps: list[tuple[float, bytes]], t0: float) -> list[Publish]:
    out: list[Publish] = []
    now = t0
    for at, payload in steps:
        out += _drive(node, now, at)
        out += node.on_message(TOPICS.event, payload, at)
        now = at
    return out


steps_strategy = st.lists(
    st.tuples(st.floats(0, 900, allow_nan=False), st.integers(0, len(_EVENTS)), st.booleans()),
    min_size=1, max_size=40,
)


@settings(deadline=None)
@given(steps_strategy, st.data())
def test_a_restored_snapshot_behaves_exactly_like_the_camera_it_was_taken_from(
    raw: list[tuple[float, int, bool]], data: st.DataObject
) -> None:
    steps: list[tuple[float, bytes]] = []
    t = 0.0
    for serial, (dt, index, late) in enumerate(raw):
        t += dt
        steps.append((t, _payload(index, serial, t, late)))
    split = data.draw(st.integers(0, len(steps)), label="split")

    original = _node()
    original.start(0.0)
    _feed(original, steps[:split], 0.0)
    snapshot = original.dump_state()

    restored = _node()
    restored.load_state(snapshot)
    t_split = steps[split - 1][0] if split else 0.0
    expected = _feed(original, steps[split:], t_split) + original.finish(t + 1000)
    got = _feed(restored, steps[split:], t_split) + restored.finish(t + 1000)
    assert got == expected
    assert restored.camera.snapshot() == original.camera.snapshot()
    assert restored.camera.audit.head == original.camera.audit.head


def test_the_reference_node_is_a_durable_node() -> None:
    assert isinstance(_node(), DurableNode)


def _decoded(pubs: list[Publish], kind: str) -> list[dict[str, Any]]:
    topic = getattr(TOPICS, kind)
    return [json.loads(p.payload) for p in pubs if p.topic == topic]


def test_resume_mid_warrant_closes_the_interrupted_recording_and_resumes_the_same_incident() -> None:
    node = _node()
    node.start(0.0)
    node.on_message(TOPICS.event, b'{"id":"s","type":"activity_start","activity":"search_warrant",'
                                  b'"activity_id":"w1"}', 100.0)
    assert node.camera.state.value == "recording"
    incident = node.camera.rec.incident if node.camera.rec else None
    snapshot = node.dump_state()

    # The process dies at 150 s (its journal says so) and comes back at 190 s.
    back = _node()
    back.load_state(snapshot)
    out = back.resume(150.0, 190.0)
    closed = [r for r in _decoded(out, "recording") if r["final"]]
    assert len(closed) == 1 and closed[0]["end"] == 150.0 and closed[0]["open"] is False
    assert closed[0]["incident"] == incident
    states = _decoded(out, "state")
    assert states[-1]["state"] == "recording" and states[-1]["active"] == ["w1"]
    assert back.camera.rec is not None and back.camera.rec.incident == incident
    assert back.camera.rec.start == 190.0, "no footage exists from the time the camera was down"

    ack = back.on_message(TOPICS.event, b'{"id":"e","type":"activity_end","activity_id":"w1"}', 400.0)
    assert _decoded(ack, "ack") == [{"id": "e", "ok": True}]
    final = _decoded(back.finish(1000.0), "recording")
    assert final == [] and back.camera.state.value == "pre_buffer"  # closed when the tail ended


def test_the_gap_is_played_without_capturing_and_a_tail_that_ends_in_it_closes_the_window() -> None:
    node = _node(post_s=60.0)
    node.start(0.0)
    node.on_message(TOPICS.event, b'{"id":"s","type":"activity_start","activity":"search_warrant",'
                                  b'"activity_id":"w1"}', 100.0)
    node.on_message(TOPICS.event, b'{"id":"e","type":"activity_end","activity_id":"w1"}', 120.0)
    tail = node.camera.windows["w1"]
    assert tail == 180.0
    back = _node(post_s=60.0)
    back.load_state(node.dump_state())
    out = back.resume(125.0, tail + 100)
    assert back.camera.state.value == "pre_buffer" and back.camera.windows == {}
    assert [r["end"] for r in _decoded(out, "recording")] == [125.0]
    assert back.camera.buffer_since == tail + 100


def test_a_late_trigger_does_not_call_the_restart_gap_late() -> None:
    """The gap is announced by ``restarted``; only seconds after it can be late."""
    start = (b'{"id":"s","type":"activity_start","activity":"search_warrant","activity_id":"w1",'
             b'"ts":400}')
    node = _node()
    node.start(0.0)
    back = _node()
    back.load_state(node.dump_state())
    back.resume(50.0, 500.0)
    out = back.on_message(TOPICS.event, start, 520.0)
    assert [a for a in _decoded(out, "alert") if a["kind"] == "late_trigger"] == []
    assert back.camera.rec is not None and back.camera.rec.start == 500.0  # the buffer since restart

    never_down = _node()
    never_down.start(0.0)
    out = never_down.on_message(TOPICS.event, start, 520.0)
    late = [a for a in _decoded(out, "alert") if a["kind"] == "late_trigger"]
    assert late == [{"kind": "late_trigger", "at": 520.0, "activity_id": "w1", "span": [400.0, 490.0],
                    "alert_id": "cam-1-a1"}]


class _Thing:
    def __init__(self) -> None:
        self.a = 1
        self.part = _Part()


class _Part:
    def __init__(self) -> None:
        self.b: list[str] = []


def test_a_snapshot_without_a_newer_field_restores_and_a_foreign_one_is_refused() -> None:
    old = StateCodec("Thing", {"a": int})
    new = StateCodec("Thing", {"a": int, "part.b": list[str]})
    thing = _Thing()
    thing.a = 5
    fresh = _Thing()
    fresh.part.b = ["kept"]
    new.load(fresh, old.dump(thing))
    assert fresh.a == 5 and fresh.part.b == ["kept"]
    with pytest.raises(InvalidInput, match="not of 'Thing'"):
        new.load(fresh, StateCodec("Other", {"a": int}).dump(thing))
    with pytest.raises(InvalidInput, match="unreadable"):
        new.load(fresh, b"\x00garbage")
    assert msgspec.msgpack.decode(new.dump(fresh))[0] == "Thing"


def test_every_durable_attribute_exists_on_a_fresh_camera() -> None:
    cam = Camera(CAM, DHS)
    for path in Camera.DURABLE:
        obj: Any = cam
        for part in path.split("."):
            assert hasattr(obj, part), path
            obj = getattr(obj, part)


@pytest.mark.req("R-DURABLE", "R-FRESH", "R-AUTH")
def test_sequence_numbers_and_who_started_what_survive_a_restart() -> None:
    from signing import EVENT as SIGNED_EVENT
    from signing import Sender, ack, signed_node

    dispatch, officer = Sender("dispatch"), Sender("officer-cam-1")
    node = signed_node()
    held_back = dispatch.body("late-1", "activity_start", activity="search_warrant", activity_id="s-9")
    first = dispatch.command("m-1", "activity_start", activity="arrest_warrant", activity_id="w-1")
    out = node.on_message(SIGNED_EVENT, first, 10.0)
    assert ack(out).ok
    out = node.on_message(SIGNED_EVENT, officer.command("b-1", "button", action="start"), 11.0)
    assert ack(out).ok
    last = dict(node.gate.state.last_seq)

    back = signed_node()
    back.load_state(node.dump_state())
    assert back.gate.state.last_seq == last and back.gate.state.starters == node.gate.state.starters
    # Signed before the restart, held back and sent after it: its sequence number is spent.
    out = back.on_message(SIGNED_EVENT, dispatch.signed(held_back), 20.0)
    assert (ack(out).error or "").startswith("replayed")
    # The officer did not start the warrant: ending it is still refused after the restart.
    out = back.on_message(SIGNED_EVENT, officer.command("e-1", "activity_end", activity_id="w-1"), 21.0)
    assert (ack(out).error or "").startswith("unauthorized")
    # A redelivery of the first command is answered from the restored duplicate table.
    out = back.on_message(SIGNED_EVENT, first, 22.0)
    assert ack(out).ok and back.camera.snapshot()["active"] == ["w-1"]
    out = back.on_message(SIGNED_EVENT, dispatch.command("e-2", "activity_end", activity_id="w-1"), 23.0)
    assert ack(out).ok and back.camera.snapshot()["active"] == []


@pytest.mark.req("R-NODROP", "R-DURABLE")
def test_every_alert_names_itself_and_a_restored_camera_never_reuses_a_name() -> None:
    node = _node()
    node.start(0.0)
    node.on_message(TOPICS.event, b'{"id":"s","type":"activity_start","activity":"search_warrant",'
                                  b'"activity_id":"w1"}', 100.0)
    node.on_message(TOPICS.event, b'{"id":"s2","type":"activity_start","activity":"arrest_warrant",'
                                  b'"activity_id":"w2"}', 110.0)
    first = _decoded(node.on_message(TOPICS.event, b'{"id":"d","type":"dock"}', 120.0), "alert")
    assert [a["alert_id"] for a in first] == ["cam-1-a1", "cam-1-a2"]  # one per open warrant

    back = _node()
    back.load_state(node.dump_state())
    back.resume(130.0, 190.0)
    # Undocked, the small battery runs low, then out: more alerts.
    later = _decoded(_drive(back, 190.0, 200.0), "alert")
    later += _decoded(back.on_message(TOPICS.event, b'{"id":"u","type":"undock"}', 200.0), "alert")
    later += _decoded(_drive(back, 200.0, 8000.0), "alert")
    assert later, "the restored camera alerts again"
    ids = [a["alert_id"] for a in later]
    assert ids == [f"cam-1-a{n}" for n in range(3, 3 + len(ids))], "counting on, never from 1 again"

    # Same calls, same names: the ids are part of the deterministic output.
    twin = _node()
    twin.start(0.0)
    twin.on_message(TOPICS.event, b'{"id":"s","type":"activity_start","activity":"search_warrant",'
                                  b'"activity_id":"w1"}', 100.0)
    twin.on_message(TOPICS.event, b'{"id":"s2","type":"activity_start","activity":"arrest_warrant",'
                                  b'"activity_id":"w2"}', 110.0)
    assert _decoded(twin.on_message(TOPICS.event, b'{"id":"d","type":"dock"}', 120.0), "alert") == first
