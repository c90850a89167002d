"""The camera runtime driving a node: time, timers, teams, a misbehaving node, a clean stop,
and the outbox's rules. Virtual time on the simulated bus (``looptime``)."""

from __future__ import annotations

import asyncio
import json

import pytest
from bus_worlds import TIMEOUT_S, World, containing, on

from controller.node import CameraNode, CameraSetup, Publish
from controller.reference import ReferenceNode
from sim.live.runtime import Outbox

pytestmark = pytest.mark.req("LIVE-RUNTIME")

START = b'{"id":"s-1","type":"activity_start","activity":"arrest_warrant","activity_id":"w-1"}'


@pytest.mark.looptime
@pytest.mark.req("R-DOCK")
async def test_the_node_sees_seconds_since_start_and_is_woken_at_its_deadline() -> None:
    async with World("sim") as world:
        cam = await world.camera("cam-1", initial="docked")
        probe = await world.probe()
        await asyncio.sleep(100.0)
        mark = probe.mark()
        await world.inject(cam.topics.event, b'{"id":1,"type":"undock"}')
        standby = await probe.wait_for(containing(cam.topics.state, b'"standby"'), since=mark)
        since = json.loads(standby.payload)["since"]
        assert since == pytest.approx(100.0, abs=1e-3)
        # Nothing but the node's own deadline (boot_s = 5) moves it on.
        ready = await probe.wait_for(containing(cam.topics.state, b'"pre_buffer"'), since=mark, timeout=10.0)
        assert json.loads(ready.payload)["since"] == pytest.approx(since + 5.0, abs=1e-6)


@pytest.mark.looptime
@pytest.mark.req("R-LATE")
async def test_on_a_unix_clock_a_late_trigger_is_measured_against_its_ts() -> None:
    """`bwcsim live` runs the node on Unix time, so a dispatcher's `ts` (Unix seconds, when the
    activity really began) can be compared with the camera's buffer."""
    origin = 1_764_000_000.0
    async with World("sim") as world:
        cam = await world.camera("cam-1", time_origin=origin)
        probe = await world.probe()
        await asyncio.sleep(100.0)
        mark = probe.mark()
        began = origin + 100.0 - 50.0  # 50 s ago; the 30 s buffer reaches back 30 s
        trigger = json.dumps({"id": "s-9", "type": "activity_start", "activity": "search_warrant",
                              "activity_id": "s-9", "ts": began}).encode()
        await world.inject(cam.topics.event, trigger)
        alert = await probe.wait_for(containing(cam.topics.alert, b"late_trigger"), since=mark,
                                     timeout=TIMEOUT_S)
        body = json.loads(alert.payload)
        assert body["span"][0] == pytest.approx(began)
        assert body["span"][1] == pytest.approx(origin + 70.0, abs=1e-3)
        state = await probe.wait_for(containing(cam.topics.state, b'"recording"'), since=mark)
        assert json.loads(state.payload)["since"] == pytest.approx(origin + 100.0, abs=1e-3)


@pytest.mark.looptime
@pytest.mark.req("R-TRIG")
async def test_team_events_reach_members_only() -> None:
    async with World("sim") as world:
        member = await world.camera("cam-1", teams=("sr-1",))
        other = await world.camera("cam-2", teams=("sr-2",))
        probe = await world.probe()
        mark = probe.mark()
        team_topic = member.topics.team_event("sr-1")
        await world.inject(team_topic, START)
        await probe.wait_for(containing(member.topics.state, b'"recording"'), since=mark, timeout=TIMEOUT_S)
        await asyncio.sleep(1.0)
        assert probe.since(mark, other.topics.ack) == []
        assert [m for m in probe.since(mark, other.topics.state) if not m.retain] == []


class _Exploding(ReferenceNode):
    """A third-party node that breaks the contract: it raises on some payloads."""

    def on_message(self, topic: str, payload: bytes, now: float) -> list[Publish]:
        if b"boom" in payload:
            raise RuntimeError("kaboom")
        return super().on_message(topic, payload, now)


def _exploding(setup: CameraSetup) -> CameraNode:
    return _Exploding(setup)


@pytest.mark.looptime
@pytest.mark.req("R-BAD")
async def test_a_node_that_raises_gets_its_message_nacked_and_the_runtime_lives_on() -> None:
    async with World("sim") as world:
        cam = await world.camera("cam-1", factory=_exploding)
        probe = await world.probe()
        mark = probe.mark()
        await world.inject(cam.topics.event, b'{"id":"x-1","boom":1}')
        nack = await probe.wait_for(on(cam.topics.ack), since=mark, timeout=TIMEOUT_S)
        assert json.loads(nack.payload) == {"id": "x-1", "ok": False, "error": "internal_error: RuntimeError"}
        await world.inject(cam.topics.event, START)
        await probe.wait_for(containing(cam.topics.state, b'"recording"'), since=mark, timeout=TIMEOUT_S)
        assert cam.stats.handler_errors == 1 and cam.connected


@pytest.mark.looptime
@pytest.mark.req("R-META")
async def test_a_clean_stop_publishes_the_open_recording_and_offline_without_the_will() -> None:
    async with World("sim") as world:
        assert world.hub is not None
        cam = await world.camera("cam-1")
        probe = await world.probe()
        mark = probe.mark()
        await world.inject(cam.topics.event, START)
        await probe.wait_for(containing(cam.topics.state, b'"recording"'), since=mark, timeout=TIMEOUT_S)
        await asyncio.sleep(60.0)
        cam.stop()
        runtime_task = world.runtimes[0][1]
        await asyncio.wait_for(runtime_task, TIMEOUT_S)
        await asyncio.sleep(1.0)
        meta = json.loads(probe.since(mark, cam.topics.recording)[-1].payload)
        assert meta["open"] is True and meta["end"] == pytest.approx(60.0, abs=0.01)
        offline = [m for m in probe.since(mark, cam.topics.availability) if not m.retain]
        assert [m.payload for m in offline] == [b"offline"]  # published once: the will did not fire
        assert not world.hub.broker.is_connected(cam.client_id)
        assert [m.payload for m in world.hub.broker.retained(cam.topics.availability)] == [b"offline"]


@pytest.mark.req("LIVE-OUTBOX")
def test_outbox_is_fifo_bounded_and_retained_topics_keep_only_the_last_value() -> None:
    box = Outbox(limit=3)
    box.push(Publish("c/state", b"s1", retain=True))
    box.push(Publish("c/ack", b"a1"))
    box.push(Publish("c/ack", b"a2"))
    box.push(Publish("c/state", b"s2", retain=True))  # replaces s1, goes after what caused it
    assert [p.payload for p in box.pending()] == [b"a1", b"a2", b"s2"]
    box.push(Publish("c/ack", b"a3"))  # full: the oldest non-retained goes
    assert [p.payload for p in box.pending()] == [b"a2", b"s2", b"a3"] and box.dropped == 1
    box.push(Publish("c/availability", b"online", retain=True), first=True)
    head = box.head()
    assert head is not None and head.pub.payload == b"online"
    box.sent(head)
    assert len(box) == 3 and [p.payload for p in box.pending()] == [b"a2", b"s2", b"a3"]
    # A retained value superseded while it is being sent is simply not sent again.
    head = box.head()
    assert head is not None
    box.push(Publish("c/state", b"s3", retain=True))
    assert [p.payload for p in box.pending()] == [b"a2", b"a3", b"s3"]
