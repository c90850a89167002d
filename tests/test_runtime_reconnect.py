"""The camera runtime losing its broker, in virtual time on the simulated bus (``looptime``).

A camera that loses its link must keep doing its job: the recording of a required activity goes
on (the node is pure and does not know about the bus), internal deadlines still fire, and what it
publishes meanwhile waits in a bounded outbox, the retained state last-value-wins. It reconnects
with seeded exponential backoff on its persistent session, so the trigger the broker queued for it
arrives after the reconnect.
"""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from bus_worlds import TIMEOUT_S, World, containing, on

from controller.params import CameraParams
from sim.live.runtime import Backoff

pytestmark = [pytest.mark.looptime, pytest.mark.req("LIVE-RECONNECT")]

START = b'{"id":"s-1","type":"activity_start","activity":"arrest_warrant","activity_id":"w-1"}'
END = b'{"id":"e-1","type":"activity_end","activity_id":"w-1"}'


@pytest.mark.req("R-TRIG", "R-NOSPLIT", "R-ROLL")
async def test_recording_continues_through_an_hour_long_outage_and_covers_the_whole_window() -> None:
    async with World("sim") as world:
        assert world.hub is not None
        params = CameraParams(segment_max_s=600.0)
        cam = await world.camera("cam-1", params=params, backoff=Backoff(initial_s=0.5, max_s=30.0))
        probe = await world.probe()
        mark = probe.mark()
        t_trigger = cam.now()
        await world.inject(cam.topics.event, START)
        await probe.wait_for(containing(cam.topics.state, b'"recording"'), since=mark, timeout=TIMEOUT_S)

        world.hub.outage(3600.0)
        await asyncio.sleep(1800.0)
        assert not cam.connected
        assert cam.stats.failed_connects > 5  # it kept trying, backing off
        # Two rollovers happened offline; their metadata waits, and only one state is queued.
        pending = cam.outbox.pending()
        assert sum(p.topic == cam.topics.recording for p in pending) >= 2
        assert sum(p.topic == cam.topics.state for p in pending) <= 1

        await asyncio.sleep(1801.0)  # the broker is back; the camera is still in its backoff
        assert not cam.connected
        probe = await world.probe()  # the outage cut the first observer too
        mark = probe.mark()
        t_end = cam.now()
        await world.inject(cam.topics.event, END, qos=1)  # waits in the camera's session

        ack = await probe.wait_for(containing(cam.topics.ack, b'"e-1"'), since=mark, timeout=60.0)
        assert json.loads(ack.payload) == {"id": "e-1", "ok": True}
        final = await probe.wait_for(containing(cam.topics.recording, b'"final":true'), since=mark,
                                     timeout=TIMEOUT_S)
        meta = json.loads(final.payload)
        assert meta["reasons"] == ["w-1"]
        assert meta["start"] <= t_trigger and meta["end"] >= t_end
        segments = meta["segment_list"]
        assert meta["segments"] == len(segments) >= 6
        assert all(a[1] == b[0] for a, b in itertools.pairwise(segments)), "a gap"
        assert segments[0][0] == meta["start"] and segments[-1][1] == meta["end"]
        closes = [json.loads(m.payload) for m in probe.since(mark, cam.topics.recording)]
        assert {c["recording"] for c in closes} == {meta["recording"]}  # one recording, never split
        assert len(closes) == meta["segments"]
        # The queued state was the latest one; the stale "online" was replaced by a fresh one.
        assert cam.outbox.dropped == 0


async def test_backoff_is_exponential_capped_jittered_and_seeded() -> None:
    delays: list[list[float]] = []
    for seed in (7, 7, 8):
        async with World("sim") as world:
            assert world.hub is not None
            backoff = Backoff(initial_s=1.0, max_s=20.0, factor=2.0, jitter=0.5)
            cam = await world.camera("cam-1", backoff=backoff, seed=seed)
            world.hub.outage(300.0)
            await asyncio.sleep(300.0)
            await asyncio.wait_for(cam.wait_connected(), 21.0)  # at most one capped delay later
            delays.append(list(cam.stats.reconnect_delays))
            assert cam.stats.connects == 2 and cam.stats.connection_losses == 1
    first, same, other = delays
    assert first == same and first != other
    for attempt, delay in enumerate(first):
        base = min(20.0, 1.0 * 2.0**attempt)
        assert base / 2 <= delay <= base
    assert max(first) <= 20.0 and len(first) >= 10


async def test_a_lost_link_fires_the_will_and_the_runtime_restores_availability() -> None:
    async with World("sim") as world:
        assert world.hub is not None
        cam = await world.camera("cam-1", backoff=Backoff(initial_s=2.0, max_s=2.0, jitter=0.0))
        probe = await world.probe(cam.topics.availability)
        await probe.wait_for(on(cam.topics.availability, b"online"), timeout=TIMEOUT_S)
        mark = probe.mark()
        world.hub.cut(cam.client_id)
        await probe.wait_for(on(cam.topics.availability, b"offline"), since=mark, timeout=TIMEOUT_S)
        loop = asyncio.get_running_loop()
        lost_at = loop.time()
        await probe.wait_for(on(cam.topics.availability, b"online"), since=mark, timeout=TIMEOUT_S)
        assert loop.time() - lost_at == pytest.approx(2.0, abs=1e-3)  # exactly the backoff, no jitter
        retained = world.hub.broker.retained(cam.topics.availability)
        assert [m.payload for m in retained] == [b"online"]


@pytest.mark.req("R-IDEM")
async def test_a_redelivered_trigger_after_reconnect_is_acked_again_without_a_second_effect() -> None:
    async with World("sim") as world:
        assert world.hub is not None
        cam = await world.camera("cam-1", backoff=Backoff(initial_s=1.0, max_s=1.0, jitter=0.0))
        probe = await world.probe()
        mark = probe.mark()
        await world.inject(cam.topics.event, START)
        await probe.wait_for(containing(cam.topics.state, b'"recording"'), since=mark, timeout=TIMEOUT_S)
        world.hub.cut(cam.client_id)
        await world.inject(cam.topics.event, START)  # the sender's QoS 1 retry, queued meanwhile
        await asyncio.sleep(5.0)
        acks = [json.loads(m.payload) for m in probe.since(mark, cam.topics.ack)]
        assert acks == [{"id": "s-1", "ok": True}, {"id": "s-1", "ok": True}]
        live_states = [m for m in probe.since(mark, cam.topics.state) if not m.retain]
        assert [json.loads(m.payload)["state"] for m in live_states] == ["recording"]
