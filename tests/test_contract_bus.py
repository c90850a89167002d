"""One contract, two buses: the simulated broker (virtual time) and a real one (SPEC §6).

Every test here runs twice through the ``make_world`` fixture — ``[sim]`` on the in-memory broker
under ``looptime``, ``[mqtt]`` on the real broker of the ``mqtt_broker`` fixture — so the
simulator is held to what a real broker does, and the camera runtime behaves the same on both.
"""

from __future__ import annotations

import json

import pytest
from bus_worlds import TIMEOUT_S, WorldFactory, containing, on
from bus_worlds import make_world_fixture as make_world_fixture  # the fixture "make_world"

from sim.world.broker import Message

pytestmark = pytest.mark.req("BUS-CONTRACT")

START = b'{"id":"s-1","type":"activity_start","activity":"arrest_warrant","activity_id":"w-1"}'
END = b'{"id":"e-1","type":"activity_end","activity_id":"w-1"}'


def _json(msg: Message) -> dict[str, object]:
    doc = json.loads(msg.payload)
    assert isinstance(doc, dict)
    return doc


async def test_wildcard_routing(make_world: WorldFactory) -> None:
    async with make_world() as world:
        p = world.prefix
        probe = await world.probe(f"{p}/+/event", f"{p}/team/#")
        sent = [f"{p}/cam-1/event", f"{p}/team/t1/event", f"{p}/cam-1/state", f"{p}/x/y/event", f"{p}/team"]
        for index, topic in enumerate(sent):
            await world.inject(topic, f"m{index}".encode())
        await world.inject(f"{p}/end/event", b"marker")
        await probe.wait_for(on(f"{p}/end/event", b"marker"), timeout=TIMEOUT_S)
        got = {(m.topic, m.payload) for m in probe.received}
        # '+' is one level; '#' also matches its parent level ('team/#' matches 'team').
        assert got == {
            (f"{p}/cam-1/event", b"m0"),
            (f"{p}/team/t1/event", b"m1"),
            (f"{p}/team", b"m4"),
            (f"{p}/end/event", b"marker"),
        }
        assert all(not m.retain for m in probe.received)


@pytest.mark.req("BUS-RETAIN")
async def test_retained_state_reaches_a_late_subscriber_and_empty_payload_clears(
    make_world: WorldFactory,
) -> None:
    async with make_world() as world:
        cam = await world.camera("cam-1")
        live = await world.probe()
        mark = live.mark()
        await world.inject(cam.topics.event, START)
        await live.wait_for(containing(cam.topics.state, b'"recording"'), since=mark, timeout=TIMEOUT_S)

        late = await world.probe(cam.topics.state, cam.topics.availability)
        state = await late.wait_for(on(cam.topics.state), timeout=TIMEOUT_S)
        online = await late.wait_for(on(cam.topics.availability), timeout=TIMEOUT_S)
        assert state.retain and online.retain
        assert _json(state)["state"] == "recording" and _json(state)["active"] == ["w-1"]
        assert online.payload == b"online"

        topic = f"{world.prefix}/scratch/retained"
        await world.inject(topic, b"kept", retain=True)
        await world.inject(topic, b"", retain=True)
        after = await world.probe(topic, f"{world.prefix}/scratch/marker")
        await world.inject(f"{world.prefix}/scratch/marker", b"m")
        await after.wait_for(on(f"{world.prefix}/scratch/marker"), timeout=TIMEOUT_S)
        assert after.since(0, topic) == []


@pytest.mark.req("R-IDEM")
async def test_ack_correlates_by_id_and_a_repeat_has_no_second_effect(make_world: WorldFactory) -> None:
    async with make_world() as world:
        cam = await world.camera("cam-1")
        probe = await world.probe()
        mark = probe.mark()
        await world.inject(cam.topics.event, START)
        first = await probe.wait_for(on(cam.topics.ack), since=mark, timeout=TIMEOUT_S)
        assert _json(first) == {"id": "s-1", "ok": True}
        await probe.wait_for(containing(cam.topics.state, b'"recording"'), since=mark, timeout=TIMEOUT_S)

        again = probe.mark()
        await world.inject(cam.topics.event, START)  # a QoS 1 redelivery, as far as the camera knows
        second = await probe.wait_for(on(cam.topics.ack), since=again, timeout=TIMEOUT_S)
        assert second.payload == first.payload
        await world.inject(cam.topics.event, b'{"id":"r-1","type":"reactivate"}')
        await probe.wait_for(containing(cam.topics.ack, b'"r-1"'), since=again, timeout=TIMEOUT_S)
        assert probe.since(again, cam.topics.state) == []
        assert probe.since(again, cam.topics.recording) == []


@pytest.mark.req("R-BAD")
async def test_garbage_is_nacked_and_changes_nothing(make_world: WorldFactory) -> None:
    async with make_world() as world:
        cam = await world.camera("cam-1")
        probe = await world.probe()
        mark = probe.mark()
        await world.inject(cam.topics.event, b"\x00not json at all")
        nack = await probe.wait_for(on(cam.topics.ack), since=mark, timeout=TIMEOUT_S)
        doc = _json(nack)
        assert doc["id"] is None and doc["ok"] is False
        assert str(doc["error"]).startswith("invalid_json")
        # Still alive and still answering.
        await world.inject(cam.topics.event, START)
        ok = await probe.wait_for(containing(cam.topics.ack, b'"s-1"'), since=mark, timeout=TIMEOUT_S)
        assert _json(ok)["ok"] is True
        await probe.wait_for(containing(cam.topics.state, b'"recording"'), since=mark, timeout=TIMEOUT_S)
        states = [m for m in probe.since(mark, cam.topics.state) if not m.retain]
        assert [json.loads(m.payload)["state"] for m in states] == ["recording"]


async def test_will_fires_on_an_unclean_disconnect_only(make_world: WorldFactory) -> None:
    async with make_world() as world:
        will_topic = f"{world.prefix}/dev/availability"
        marker = f"{world.prefix}/dev/marker"
        probe = await world.probe(will_topic, marker)
        will = Message(will_topic, b"offline", qos=1, retain=True)

        clean = world.bus()
        await clean.connect(world.client_id("clean"), clean_session=True, will=will)
        await clean.disconnect(clean=True)
        await world.inject(marker, b"1")
        await probe.wait_for(on(marker, b"1"), timeout=TIMEOUT_S)
        assert probe.since(0, will_topic) == []

        dirty = world.bus()
        await dirty.connect(world.client_id("dirty"), clean_session=True, will=will)
        mark = probe.mark()
        drop_link = getattr(dirty, "drop_link")  # noqa: B009  (a fault hook, not part of Bus)
        drop_link()
        got = await probe.wait_for(on(will_topic), since=mark, timeout=TIMEOUT_S)
        assert got.payload == b"offline"
        await world.inject(will_topic, b"", retain=True)  # clean up the retained will


async def test_qos1_messages_wait_in_a_persistent_session(make_world: WorldFactory) -> None:
    async with make_world() as world:
        topic = f"{world.prefix}/queue/event"
        client_id = world.client_id("sleeper")
        sleeper = world.bus()
        assert await sleeper.connect(client_id, clean_session=False) is False
        await sleeper.subscribe(topic, 1)
        await sleeper.disconnect(clean=True)

        for index in range(3):
            await world.inject(topic, f"q{index}".encode(), qos=1)

        back = world.bus()
        assert await back.connect(client_id, clean_session=False) is True  # no re-subscribe
        got: list[bytes] = []
        async for msg in back.messages():
            got.append(msg.payload)
            if len(got) == 3:
                break
        assert got == [b"q0", b"q1", b"q2"]
        await back.disconnect()
        # Do not leave a persistent session behind on a shared broker.
        await back.connect(client_id, clean_session=True)
        await back.disconnect()


@pytest.mark.req("R-TRIG", "R-META")
async def test_activity_start_records_and_activity_end_publishes_the_recording(
    make_world: WorldFactory,
) -> None:
    async with make_world() as world:
        cam = await world.camera("cam-1")
        probe = await world.probe()
        mark = probe.mark()
        await world.inject(cam.topics.event, START)
        recording = containing(cam.topics.state, b'"recording"')
        state = await probe.wait_for(recording, since=mark, timeout=TIMEOUT_S)
        assert _json(state)["active"] == ["w-1"]
        await world.inject(cam.topics.event, END)
        meta = await probe.wait_for(on(cam.topics.recording), since=mark, timeout=TIMEOUT_S)
        doc = _json(meta)
        assert doc["camera"] == "cam-1" and doc["reasons"] == ["w-1"] and doc["final"] is True
        assert doc["segments"] == 1 and doc["open"] is False
        assert float(doc["end"]) >= float(doc["start"])  # type: ignore[arg-type]
        await probe.wait_for(containing(cam.topics.state, b'"pre_buffer"'), since=mark, timeout=TIMEOUT_S)


@pytest.mark.req("LIVE-RECONNECT")
async def test_runtime_survives_a_dropped_link_and_gets_what_was_queued(make_world: WorldFactory) -> None:
    async with make_world() as world:
        from sim.live.runtime import Backoff

        cam = await world.camera("cam-1", backoff=Backoff(initial_s=1.0, max_s=1.0, jitter=0.0))
        probe = await world.probe()
        mark = probe.mark()
        await world.inject(cam.topics.event, START)
        await probe.wait_for(containing(cam.topics.state, b'"recording"'), since=mark, timeout=TIMEOUT_S)

        getattr(cam.bus, "drop_link")()  # noqa: B009
        await probe.wait_for(on(cam.topics.availability, b"offline"), since=mark, timeout=TIMEOUT_S)
        # The runtime waits a full second before reconnecting: this lands in its session's queue.
        await world.inject(cam.topics.event, END, qos=1)

        online = await probe.wait_for(on(cam.topics.availability, b"online"), since=mark, timeout=TIMEOUT_S)
        ack = await probe.wait_for(containing(cam.topics.ack, b'"e-1"'), since=mark, timeout=TIMEOUT_S)
        assert _json(ack)["ok"] is True
        after = probe.received[mark:]
        assert after.index(online) < after.index(ack), "the end was handled only after the reconnect"
        meta = await probe.wait_for(on(cam.topics.recording), since=mark, timeout=TIMEOUT_S)
        assert _json(meta)["reasons"] == ["w-1"] and _json(meta)["segments"] == 1
        assert cam.stats.connection_losses == 1 and cam.stats.connects == 2
