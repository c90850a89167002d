"""The edge attacks, against a real Mosquitto run with the generated configuration (R-ISOLATE,
R-NODROP, R-BOUND).

Each test starts a private Mosquitto on a free loopback port with what ``bwcsim broker-config``
writes (dynamic-security plugin, MQTT 5), runs the camera runtime on it as the camera's own user,
and plays one attack from outside with the credentials of another principal:

* a retained ``dock`` on the event topic — before the camera starts, and live;
* another client connecting with the camera's client id;
* foreign writes to the camera's retained ``state`` and ``availability``;
* a subscription the broker refuses (a team the camera is not in);
* a garbage flood around a ``dock`` mid-warrant, which used to push the alert and the recording
  metadata out of the outbox;
* a broker that stops answering, so publications time out;
* ids of 60 KB and a deeply nested payload, which used to cost memory never freed and a
  ``RecursionError``.

The restart mid-warrant (``kill -9``) is ``tests/test_live_restart.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from secured_broker import SecuredBroker, secured_broker

from controller.errors import BusRefused
from controller.node import CameraSetup
from controller.params import CameraParams
from controller.policy import load_policy
from controller.principals import TrustFile
from controller.reference import make_node
from sim.live.bus import Message, MqttBus, Probe
from sim.live.limits import RateLimit
from sim.live.runtime import Backoff, CameraRuntime

pytestmark = [pytest.mark.live]

WAIT_S = 10.0
START = b'{"id":"s-1","type":"activity_start","activity":"arrest_warrant","activity_id":"w-1"}'
DOCK = b'{"id":"d-1","type":"dock"}'


def _json(msg: Message) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(msg.payload)
    return doc


@contextlib.asynccontextmanager
async def _camera(broker: SecuredBroker, camera: str = "cam-1", *, teams: tuple[str, ...] = ("sr-1",),
                  params: CameraParams | None = None, timeout_s: float = 5.0, trust: TrustFile | None = None,
                  **options: Any) -> AsyncIterator[CameraRuntime]:
    policy = load_policy("dhs-2023")
    setup = CameraSetup(camera_id=camera, policy=policy, params=params or policy.apply(CameraParams()),
                        teams=teams, prefix="bwc", trust=trust)
    runtime = CameraRuntime(
        make_node(setup), MqttBus(broker.endpoint(camera, manual_ack=True, timeout_s=timeout_s)),
        prefix="bwc", client_id=camera, backoff=Backoff(initial_s=0.2, max_s=1.0), time_origin=time.time(),
        **options,
    )
    task = asyncio.create_task(runtime.run())
    try:
        await asyncio.wait_for(runtime.wait_connected(), WAIT_S)
        await asyncio.wait_for(runtime.wait_flushed(), WAIT_S)
        yield runtime
    finally:
        runtime.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, WAIT_S)


@contextlib.asynccontextmanager
async def _client(broker: SecuredBroker, user: str) -> AsyncIterator[MqttBus]:
    bus = MqttBus(broker.endpoint(user))
    await bus.connect(user, clean_session=True)
    try:
        yield bus
    finally:
        await bus.disconnect()


@contextlib.asynccontextmanager
async def _observer(broker: SecuredBroker, *filters: str) -> AsyncIterator[Probe]:
    probe = Probe(MqttBus(broker.endpoint("evidence")))
    await probe.start("evidence", list(filters) or ["bwc/+/alert", "bwc/+/recording", "bwc/+/state",
                                                     "bwc/+/ack", "bwc/+/availability"])
    try:
        yield probe
    finally:
        await probe.stop()


def _on(topic: str, *fragments: bytes) -> Any:
    return lambda m: m.topic == topic and all(f in m.payload for f in fragments)


@pytest.mark.req("R-ISOLATE")
async def test_a_retained_dock_on_the_event_topic_never_docks_the_camera(tmp_path: Path) -> None:
    with secured_broker(tmp_path) as broker:
        async with _client(broker, "cad-1") as cad:
            await cad.publish("bwc/cam-1/event/cad-1", DOCK, qos=1, retain=True)  # waits for every start
            async with _observer(broker) as seen, _camera(broker) as cam:
                node: Any = cam.node
                await asyncio.sleep(0.5)
                assert node.camera.state.value == "pre_buffer", "the stored dock was never delivered"
                # Published live with the retain flag: delivered, recognised, refused.
                await cad.publish("bwc/cam-1/event/cad-1", b'{"id":"d-2","type":"dock"}', qos=1, retain=True)
                nack = await seen.wait_for(_on("bwc/cam-1/ack", b'"d-2"'), timeout=WAIT_S)
                assert _json(nack)["error"].startswith("retained")
                assert node.camera.state.value == "pre_buffer" and cam.stats.retained_refused == 1
                await cad.publish("bwc/cam-1/event/cad-1", b'{"id":"d-3","type":"dock"}', qos=1)
                await seen.wait_for(_on("bwc/cam-1/state", b'"docked"'), timeout=WAIT_S)
            await cad.publish("bwc/cam-1/event/cad-1", b"", qos=1, retain=True)


@pytest.mark.req("R-ISOLATE")
async def test_another_client_cannot_take_the_cameras_client_id_or_its_triggers(tmp_path: Path) -> None:
    with secured_broker(tmp_path) as broker:
        async with _observer(broker) as seen, _camera(broker) as cam:
            for user in ("off-17", "holster-17"):
                # With the camera's client id: refused, or connected under its own name (which is
                # all an intruder can take over: its own session).
                intruder = MqttBus(broker.endpoint(user))
                with contextlib.suppress(BusRefused):
                    await intruder.connect("cam-1", clean_session=False)
                    await intruder.subscribe("bwc/cam-1/ack", 1)
                await intruder.disconnect()
            async with _client(broker, "cad-1") as cad:
                await cad.publish("bwc/cam-1/event/cad-1", START, qos=1)
                await seen.wait_for(_on("bwc/cam-1/ack", b'"s-1"', b'"ok":true'), timeout=WAIT_S)
            assert cam.connected and cam.stats.connection_losses == 0 and cam.stats.session_takeovers == 0


@pytest.mark.req("R-ISOLATE")
async def test_on_an_open_broker_a_session_takeover_is_alerted(mqtt_broker: Any, tmp_path: Path) -> None:
    """Without the generated configuration the broker lets anyone take the id: the camera says so."""
    from bus_worlds import World

    if mqtt_broker.kind == "amqtt":
        pytest.skip("needs MQTT 5")
    async with World("mqtt", mqtt_broker) as world:
        probe = await world.probe()
        cam = await world.camera("cam-1", backoff=Backoff(initial_s=0.2, max_s=0.4))
        for _ in range(4):  # a thief that keeps coming back for the triggers
            thief = world.bus()
            await thief.connect(cam.client_id, clean_session=False)
            await asyncio.sleep(0.1)
            await asyncio.wait_for(cam.wait_connected(), WAIT_S)  # the camera takes it back
            while not cam.connected:
                await asyncio.sleep(0.05)
            await thief.disconnect(clean=False)
        alert = await probe.wait_for(_on(cam.topics.alert, b'"bus_fault"'), timeout=WAIT_S)
        # Mosquitto 2.0 closes a taken-over link without a reason code; 2.1 sends 0x8E.
        assert _json(alert)["detail"].startswith(("session_taken_over", "link_unstable"))


@pytest.mark.req("R-ISOLATE")
async def test_nobody_else_can_write_the_cameras_state_or_availability(tmp_path: Path) -> None:
    with secured_broker(tmp_path) as broker:
        async with _camera(broker):
            for user in ("cad-1", "off-17", "evidence", "cam-2"):
                async with _client(broker, user) as other:
                    for topic in ("bwc/cam-1/state", "bwc/cam-1/availability"):
                        with pytest.raises(BusRefused, match="Not authorized"):
                            await other.publish(topic, b'{"state":"docked"}', qos=1, retain=True)
            async with _observer(broker, "bwc/cam-1/state", "bwc/cam-1/availability") as late:
                state = await late.wait_for(_on("bwc/cam-1/state"), timeout=WAIT_S)
                online = await late.wait_for(_on("bwc/cam-1/availability"), timeout=WAIT_S)
                assert _json(state)["state"] == "pre_buffer" and online.payload == b"online"


@pytest.mark.req("R-ISOLATE")
async def test_on_an_open_broker_the_camera_undoes_a_foreign_status_write(mqtt_broker: Any) -> None:
    from bus_worlds import World

    if mqtt_broker.kind == "amqtt":
        pytest.skip("needs MQTT 5")
    async with World("mqtt", mqtt_broker) as world:
        cam = await world.camera("cam-1")
        probe = await world.probe()
        await world.inject(cam.topics.state, b'{"state":"docked"}', retain=True)
        alert = await probe.wait_for(_on(cam.topics.alert, b'"status_overwritten'), timeout=WAIT_S)
        assert cam.topics.state in _json(alert)["detail"]
        late = await world.probe(cam.topics.state)
        restored = await late.wait_for(_on(cam.topics.state), timeout=WAIT_S)
        assert _json(restored)["state"] == "pre_buffer"


@pytest.mark.req("R-ISOLATE")
async def test_a_subscription_the_broker_refuses_is_reported_and_not_silent(tmp_path: Path) -> None:
    with secured_broker(tmp_path) as broker:
        async with _observer(broker) as seen, _camera(broker, teams=("sr-1", "sr-2")) as cam:
            fault = await seen.wait_for(_on("bwc/cam-1/alert", b'"bus_fault"'), timeout=WAIT_S)
            detail = _json(fault)["detail"]
            assert detail.startswith("subscribe_refused: bwc/team/sr-2/event") and "Not authorized" in detail
            assert set(cam.refused_subscriptions) == {"bwc/team/sr-2/event", "bwc/team/sr-2/event/+"}
            async with _client(broker, "cad-1") as cad:  # everything it may hear, it still hears
                await cad.publish("bwc/team/sr-1/event/cad-1", START, qos=1)
                await seen.wait_for(_on("bwc/cam-1/ack", b'"s-1"', b'"ok":true'), timeout=WAIT_S)
            assert cam.connected and cam.stats.connection_losses == 0


@pytest.mark.req("R-NODROP", "R-BOUND")
async def test_a_garbage_flood_around_a_dock_loses_neither_alert_nor_recording_metadata(
    tmp_path: Path,
) -> None:
    with secured_broker(tmp_path) as broker:
        async with _observer(broker) as seen, _camera(broker, rate_limit=RateLimit(rate=500.0)) as cam:
            async with _client(broker, "cad-1") as cad, _client(broker, "holster-17") as flooder:
                await cad.publish("bwc/cam-1/event/cad-1", START, qos=1)
                await seen.wait_for(_on("bwc/cam-1/state", b'"recording"'), timeout=WAIT_S)

                async def flood(first: int, count: int) -> None:
                    topic = "bwc/cam-1/event/holster-17"
                    pending = [flooder.publish(topic, b'{"id":%d,"type":"?"}' % i, qos=1)
                               for i in range(first, first + count)]
                    await asyncio.gather(*pending)

                await flood(0, 1600)
                await cad.publish("bwc/cam-1/event/cad-1", DOCK, qos=1)
                await flood(1600, 1600)
                alert = await seen.wait_for(_on("bwc/cam-1/alert", b'"docked"'), timeout=30.0)
                assert _json(alert)["kind"] == "missed_required_recording"
                meta = await seen.wait_for(_on("bwc/cam-1/recording", b'"final":true'), timeout=30.0)
                assert _json(meta)["reasons"] == ["w-1"]
                ack = await seen.wait_for(_on("bwc/cam-1/ack", b'"d-1"'), timeout=30.0)
                assert _json(ack) == {"id": "d-1", "ok": True}
            assert cam.outbox.shed["evidence"] == 0 and cam.outbox.shed["reply"] == 0


@pytest.mark.req("R-NODROP")
async def test_publications_that_time_out_while_the_broker_hangs_are_sent_again(tmp_path: Path) -> None:
    params = CameraParams(segment_max_s=1.0)  # a recording metadata every second
    with secured_broker(tmp_path) as broker:
        async with _observer(broker, "bwc/cam-1/recording") as seen, \
                _camera(broker, params=params, timeout_s=1.0) as cam:
            async with _client(broker, "cad-1") as cad:
                await cad.publish("bwc/cam-1/event/cad-1", START, qos=1)
            await seen.wait_for(_on("bwc/cam-1/recording", b'"segments":2'), timeout=WAIT_S)
            broker.pause()  # it stops answering: PUBACKs never come
            await asyncio.sleep(3.0)
            broker.resume()
            await asyncio.sleep(4.0)
            assert cam.stats.publish_timeouts >= 1 and cam.stats.connects >= 2
            counts = sorted({_json(m)["segments"] for m in seen.received})
            assert counts == list(range(counts[0], counts[-1] + 1)), f"a segment's metadata is lost: {counts}"
            assert counts[-1] >= 8


# --------------------------------------------------------------------- signed commands (R-AUTH)


@pytest.mark.req("R-AUTH", "R-FRESH")
async def test_forged_and_replayed_commands_over_the_broker_are_refused_and_change_nothing(
    tmp_path: Path,
) -> None:
    """The commands' own attacks, through the real broker: broker accounts let these senders
    publish on the camera's topic; only the signatures decide what the camera obeys."""
    from signing import Sender, trust

    dispatch, supervisor, device = Sender("dispatch"), Sender("supervisor"), Sender("device-cam-1")
    with secured_broker(tmp_path) as broker:
        async with _observer(broker) as seen, _camera(broker, trust=trust()) as cam:
            node: Any = cam.node
            async with _client(broker, "cad-1") as cad, _client(broker, "holster-17") as holster, \
                    _client(broker, "sgt-ray") as sgt:

                async def send(bus: MqttBus, user: str, payload: bytes, msg_id: str) -> dict[str, Any]:
                    mark = seen.mark()
                    await bus.publish(f"bwc/cam-1/event/{user}", payload, qos=1)
                    reply = await seen.wait_for(_on("bwc/cam-1/ack", b'"%s"' % msg_id.encode()), since=mark,
                                                timeout=WAIT_S)
                    return _json(reply)

                start = dispatch.command("s-1", "activity_start", activity="arrest_warrant",
                                         activity_id="w-1")
                assert (await send(cad, "cad-1", start, "s-1"))["ok"] is True
                held_back = dispatch.command("s-9", "activity_start", activity="patrol", activity_id="p-9")
                recording = node.camera.snapshot()

                # activity_end from the device's account: unsigned, then signed with its own key
                # in dispatch's name, then signed as itself (a device may not end activities).
                unsigned = b'{"id":"f-1","type":"activity_end","activity_id":"w-1"}'
                forged = device.command("f-2", "activity_end", activity_id="w-1", claims="dispatch")
                own = device.command("f-3", "activity_end", activity_id="w-1")
                for payload, msg_id in ((unsigned, "f-1"), (forged, "f-2"), (own, "f-3")):
                    reply = await send(holster, "holster-17", payload, msg_id)
                    assert reply["ok"] is False and reply["error"].startswith("unauthorized"), reply
                # deactivate by the supervisor's account naming someone else as the actor.
                pause = supervisor.command("d-1", "deactivate", reason="victim_or_witness_request",
                                           actor="sgt-lee")
                reply = await send(sgt, "sgt-ray", pause, "d-1")
                assert reply["ok"] is False and reply["error"].startswith("unauthorized"), reply
                # A genuine command replayed later: its first answer again, no second effect.
                assert (await send(cad, "cad-1", start, "s-1"))["ok"] is True
                # Re-sequenced: signed before the last one, delivered after it.
                later = dispatch.command("s-2", "activity_start", activity="patrol", activity_id="p-2")
                assert (await send(cad, "cad-1", later, "s-2"))["ok"] is True
                reply = await send(cad, "cad-1", held_back, "s-9")
                assert reply["ok"] is False and reply["error"].startswith("replayed"), reply

                after = node.camera.snapshot()
                assert recording["active"] == ["w-1"] and after["active"] == ["w-1", "p-2"]
                assert after["state"] == "recording" and not after["deactivated"]


@pytest.mark.req("R-NODROP", "R-BOUND")
async def test_a_backlog_of_real_commands_waits_at_the_broker_instead_of_losing_its_acks(
    tmp_path: Path,
) -> None:
    """Triggers queued while the camera was away arrive in a rush; the camera holds back its
    acknowledgements while its replies pile up, so the broker paces them and none is shed."""
    with secured_broker(tmp_path) as broker:
        async with _camera(broker):
            pass  # the session exists now; the camera is away
        async with _client(broker, "cad-1") as cad:
            topic = "bwc/cam-1/event/cad-1"
            await asyncio.gather(*[cad.publish(topic, b'{"id":"q%d","type":"reactivate"}' % i, qos=1)
                                   for i in range(600)])
        async with _observer(broker, "bwc/cam-1/ack") as seen, _camera(broker, outbox_limit=300) as cam:
            for _ in range(300):
                if len({_json(m)["id"] for m in seen.received}) >= 600:
                    break
                await asyncio.sleep(0.1)
            acked = {_json(m)["id"] for m in seen.received if _json(m)["ok"]}
            assert cam.outbox.shed["reply"] == 0 and cam.stats.input_holds >= 1, (cam.outbox.shed, cam.stats)
            assert acked == {f"q{i}" for i in range(600)}, f"{600 - len(acked)} not acked"


@pytest.mark.req("R-BOUND")
async def test_huge_ids_and_deep_nesting_over_the_broker_are_refused_and_kept_nowhere(tmp_path: Path) -> None:
    """The issue's memory attacks, through Mosquitto: ids of 60 KB (memory grew 41 -> 243 MB and
    was never freed) and a deeply nested payload (NACKed ``internal_error: RecursionError``)."""
    import tracemalloc

    with secured_broker(tmp_path) as broker:
        async with _observer(broker, "bwc/cam-1/ack") as seen, _camera(broker) as cam, \
                _client(broker, "cad-1") as cad:
            node: Any = cam.node
            nested = b'{"id":"deep","type":"dock","x":' + b"[" * 5_000 + b"]" * 5_000 + b"}"
            await cad.publish("bwc/cam-1/event/cad-1", nested, qos=1)
            nack = await seen.wait_for(_on("bwc/cam-1/ack", b'"too_deep'), timeout=WAIT_S)
            assert _json(nack)["ok"] is False and _json(nack)["id"] is None  # refused before it is read
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for i in range(200):
                    big = b"%d-" % i + b"x" * 60_000
                    await cad.publish("bwc/cam-1/event/cad-1", b'{"id":"%s","type":"activity_start",'
                                      b'"activity":"arrest_warrant","activity_id":"w%d"}' % (big, i), qos=1)
                await seen.wait_for(_on("bwc/cam-1/ack", b'"too_long'), timeout=WAIT_S)
                await asyncio.sleep(1.0)  # the last of them handled and their NACKs sent
                kept = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            assert kept < 2_000_000, f"{kept} bytes kept after 12 MB of oversized ids"  # ~60 bytes each
            assert node.camera.windows == {} and node.camera.state.value == "pre_buffer", "nothing started"
            assert cam.stats.handler_errors == 0
            # The camera still serves.
            await cad.publish("bwc/cam-1/event/cad-1", START, qos=1)
            ok = await seen.wait_for(_on("bwc/cam-1/ack", b'"s-1"'), timeout=WAIT_S)
            assert _json(ok)["ok"] is True
