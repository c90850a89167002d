"""The camera runtime and the buses under the faults an integrator meets in the field: a
publication or a subscription the broker refuses, a second connection under the same client id,
a clean stop that cannot finish, a runtime task cancelled from outside, many starts and stops,
and a long outage with a chatty node. Each test here pins a defect that once existed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from brokers import BrokerAddress
from bus_worlds import TIMEOUT_S, World, WorldFactory, containing
from bus_worlds import make_world_fixture as make_world_fixture  # the fixture "make_world"

from controller.errors import BusError
from controller.node import CameraNode, CameraSetup, Publish
from controller.params import CameraParams
from controller.policy import load_policy
from controller.reference import ReferenceNode, make_node
from sim.live.bus import Bus, MqttBus, MqttEndpoint, SimHub
from sim.live.runtime import Backoff, CameraRuntime, Outbox
from sim.world.broker import Message

START = b'{"id":"s-1","type":"activity_start","activity":"arrest_warrant","activity_id":"w-1"}'


class _Wrapped(ReferenceNode):
    """A reference node with a hook to change what it subscribes to or publishes."""

    def __init__(self, setup: CameraSetup) -> None:
        super().__init__(setup)
        self.extra_subscriptions: list[str] = []
        self.extra_publications: list[Publish] = []

    def subscriptions(self) -> list[str]:
        return super().subscriptions() + self.extra_subscriptions

    def on_message(self, topic: str, payload: bytes, now: float) -> list[Publish]:
        out = super().on_message(topic, payload, now)
        extra, self.extra_publications = self.extra_publications, []
        return extra + out


def _wrapped(setup: CameraSetup) -> CameraNode:
    return _Wrapped(setup)


@pytest.mark.looptime
@pytest.mark.req("LIVE-RUNTIME", "R-BAD")
async def test_a_publication_the_bus_refuses_is_dropped_and_the_camera_keeps_serving() -> None:
    async with World("sim") as world:
        cam = await world.camera("cam-1", factory=_wrapped)
        node = cam.node
        assert isinstance(node, _Wrapped)
        probe = await world.probe()
        mark = probe.mark()
        # A third-party node asks for a topic no broker accepts for publishing.
        node.extra_publications = [Publish(f"{world.prefix}/cam-1/+/oops", b"x")]
        await world.inject(cam.topics.event, START)
        await probe.wait_for(containing(cam.topics.state, b'"recording"'), since=mark, timeout=TIMEOUT_S)
        ack = await probe.wait_for(containing(cam.topics.ack, b'"s-1"'), since=mark, timeout=TIMEOUT_S)
        assert json.loads(ack.payload)["ok"] is True
        assert cam.connected and cam.stats.connects == 1 and cam.stats.connection_losses == 0
        assert cam.stats.refused_publications == 1 and cam.outbox.dropped == 0 and len(cam.outbox) == 0


class _Passthrough:
    """A bus that forwards everything to another one; subclasses add one misbehaviour."""

    def __init__(self, inner: Bus) -> None:
        self.inner = inner

    @property
    def is_connected(self) -> bool:
        return self.inner.is_connected

    async def connect(
        self, client_id: str, *, clean_session: bool = False, will: Message | None = None
    ) -> bool:
        return await self.inner.connect(client_id, clean_session=clean_session, will=will)

    async def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        await self.inner.subscribe(topic_filter, qos)

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        await self.inner.publish(topic, payload, qos=qos, retain=retain)

    def messages(self) -> AsyncIterator[Message]:
        return self.inner.messages()

    async def disconnect(self, *, clean: bool = True) -> None:
        await self.inner.disconnect(clean=clean)


class _RefusedOnce(_Passthrough):
    """A bus whose first subscription is refused by the broker (an ACL not yet loaded, say),
    while the link itself stays up."""

    refused = 0

    async def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        if self.refused == 0:
            self.refused += 1
            raise BusError(f"broker refused the subscription to {topic_filter!r}")
        await self.inner.subscribe(topic_filter, qos)


def _runtime(bus: Bus, camera_id: str = "cam-1", prefix: str = "bwc", **options: object) -> CameraRuntime:
    policy = load_policy("dhs-2023")
    setup = CameraSetup(camera_id=camera_id, policy=policy, params=policy.apply(CameraParams()),
                        prefix=prefix)
    return CameraRuntime(make_node(setup), bus, prefix=prefix, client_id=f"{prefix}-{camera_id}",
                         **options)  # type: ignore[arg-type]


@pytest.mark.looptime
@pytest.mark.req("LIVE-RECONNECT")
async def test_a_refused_subscription_with_the_link_up_leads_to_a_real_reconnect() -> None:
    hub = SimHub()
    bus = _RefusedOnce(hub.client())
    runtime = _runtime(bus, backoff=Backoff(initial_s=1.0, max_s=1.0, jitter=0.0))
    task = asyncio.create_task(runtime.run())
    try:
        await asyncio.wait_for(runtime.wait_connected(), 10.0)
        assert runtime.stats.failed_connects == 0, "it retried on a link it had never closed"
        assert runtime.stats.connects == 2 and runtime.stats.connection_losses == 1
    finally:
        runtime.stop()
        await asyncio.wait_for(task, TIMEOUT_S)
        hub.close()


@pytest.mark.req("BUS-CONTRACT")
async def test_a_second_connection_under_the_same_client_id_takes_the_session_over(
    make_world: WorldFactory,
) -> None:
    async with make_world() as world:
        client_id = world.client_id("twin")
        first, second = world.bus(), world.bus()
        await first.connect(client_id, clean_session=True)
        await second.connect(client_id, clean_session=True)
        with pytest.raises(BusError):
            async with asyncio.timeout(TIMEOUT_S):
                async for _ in first.messages():
                    pass
        assert not first.is_connected and second.is_connected
        with pytest.raises(BusError):
            await first.publish(f"{world.prefix}/twin/x", b"1")
        # Closing the superseded link must not close the one that replaced it.
        await first.disconnect()
        assert second.is_connected
        await second.disconnect()


class _StallsOffline(_Passthrough):
    """A bus on which the ``offline`` publication never completes (a broker that has stopped
    acknowledging), so a clean stop cannot finish its drain."""

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        if payload == b"offline":
            await asyncio.Event().wait()
        await self.inner.publish(topic, payload, qos=qos, retain=retain)


@pytest.mark.looptime
@pytest.mark.req("LIVE-RUNTIME")
async def test_a_stop_that_cannot_publish_offline_lets_the_will_say_it() -> None:
    hub = SimHub()
    runtime = _runtime(_StallsOffline(hub.client()), stop_timeout_s=1.0)
    task = asyncio.create_task(runtime.run())
    await asyncio.wait_for(runtime.wait_flushed(), TIMEOUT_S)
    assert [m.payload for m in hub.broker.retained(runtime.topics.availability)] == [b"online"]
    runtime.stop()
    await asyncio.wait_for(task, 5.0)
    assert [m.payload for m in hub.broker.retained(runtime.topics.availability)] == [b"offline"]
    hub.close()


@pytest.mark.looptime
@pytest.mark.req("LIVE-RUNTIME")
async def test_a_cancelled_runtime_closes_its_link_and_the_will_fires() -> None:
    hub = SimHub()
    bus = hub.client()
    runtime = _runtime(bus)
    task = asyncio.create_task(runtime.run())
    await asyncio.wait_for(runtime.wait_flushed(), TIMEOUT_S)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert not bus.is_connected and not hub.broker.is_connected(runtime.client_id)
    assert [m.payload for m in hub.broker.retained(runtime.topics.availability)] == [b"offline"]
    hub.close()


def _other_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


@pytest.mark.looptime
@pytest.mark.req("LIVE-RUNTIME")
async def test_fifty_starts_and_stops_on_the_sim_bus_leave_no_task_behind() -> None:
    hub = SimHub()
    before = _other_tasks()
    for round_no in range(50):
        runtime = _runtime(hub.client())
        task = asyncio.create_task(runtime.run())
        await asyncio.wait_for(runtime.wait_flushed(), TIMEOUT_S)
        if round_no % 2:
            hub.publish(runtime.topics.event, START)
            await asyncio.sleep(0.5)
        runtime.stop()
        await asyncio.wait_for(task, TIMEOUT_S)
    await asyncio.sleep(0)
    assert _other_tasks() - before == set()
    assert not hub.broker.is_connected("bwc-cam-1")
    hub.close()


def _open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd"))


@pytest.mark.live
@pytest.mark.req("LIVE-RUNTIME")
async def test_fifty_starts_and_stops_on_a_real_broker_leave_no_task_or_socket_behind(
    mqtt_broker: BrokerAddress,
) -> None:
    world = World("mqtt", mqtt_broker)
    endpoint = MqttEndpoint(mqtt_broker.host, mqtt_broker.port, timeout_s=TIMEOUT_S)
    before_tasks, before_fds = _other_tasks(), _open_fds()
    for _ in range(50):
        runtime = _runtime(MqttBus(endpoint), prefix=world.prefix)
        task = asyncio.create_task(runtime.run())
        await asyncio.wait_for(runtime.wait_flushed(), TIMEOUT_S)
        runtime.stop()
        await asyncio.wait_for(task, TIMEOUT_S)
    await asyncio.sleep(0.05)
    assert _other_tasks() - before_tasks == set()
    assert _open_fds() <= before_fds
    # Leave nothing behind on a shared broker: the session and the retained topics.
    cleaner = MqttBus(endpoint)
    await cleaner.connect(runtime.client_id, clean_session=True)
    for topic in (runtime.topics.state, runtime.topics.availability):
        await cleaner.publish(topic, b"", retain=True)
    await cleaner.disconnect()


@pytest.mark.req("LIVE-RUNTIME")
async def test_failed_connects_to_a_closed_port_leave_no_socket_behind() -> None:
    from brokers import free_loopback_port

    endpoint = MqttEndpoint("127.0.0.1", free_loopback_port(), timeout_s=2.0)
    before = _open_fds()
    for _ in range(20):
        with pytest.raises(BusError):
            await MqttBus(endpoint).connect("nobody", clean_session=True)
    await asyncio.sleep(0.05)
    assert _open_fds() <= before


@pytest.mark.req("LIVE-RUNTIME")
def test_a_long_outage_with_a_chatty_node_keeps_the_outbox_small() -> None:
    box = Outbox(limit=100)
    for index in range(20_000):
        box.push(Publish("c/alert", f"a{index}".encode()))
        box.push(Publish("c/state", f"s{index}".encode(), retain=True))
    # The retained state counts towards the limit: 99 alerts and the latest state.
    assert len(box) == 100 and box.dropped == 20_000 - 99
    pending = box.pending()
    assert pending[-1].payload == b"s19999" and pending[0].payload == b"a19901"
    # Entries superseded or dropped while nothing is sending must not pile up behind the scenes.
    assert len(box._entries) <= 2 * box.limit + 2


@pytest.mark.req("LIVE-RECONNECT")
async def test_connects_that_time_out_waiting_for_connack_leave_no_socket_or_task_behind() -> None:
    """A port that accepts TCP but never answers MQTT (a hung broker, a proxy, a TLS port
    spoken to in plain text): every retry of the runtime's reconnect loop times out here."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        endpoint = MqttEndpoint("127.0.0.1", silent.getsockname()[1], timeout_s=0.2)
        before_tasks, before_fds = _other_tasks(), _open_fds()
        for _ in range(5):
            with pytest.raises(BusError, match="cannot connect"):
                await MqttBus(endpoint).connect("nobody", clean_session=True)
        for _ in range(3):
            await asyncio.sleep(0)  # let cancelled tasks finish
        assert _other_tasks() - before_tasks == set()
        assert _open_fds() <= before_fds


class _TimerRaises(_Wrapped):
    """A third-party node whose timer handler raises every time, its deadline left standing."""

    def on_timer(self, now: float) -> list[Publish]:
        raise RuntimeError("timer bug")


def _timer_raises(setup: CameraSetup) -> CameraNode:
    return _TimerRaises(setup)


@pytest.mark.looptime
@pytest.mark.req("LIVE-RUNTIME")
async def test_a_timer_handler_that_keeps_raising_is_retried_calmly_not_in_a_tight_loop() -> None:
    async with World("sim") as world:
        cam = await world.camera("cam-1", factory=_timer_raises, initial="docked")
        probe = await world.probe()
        mark = probe.mark()
        await world.inject(cam.topics.event, b'{"id":"u-1","type":"undock"}')  # arms the boot timer
        await probe.wait_for(containing(cam.topics.ack, b'"u-1"'), since=mark, timeout=TIMEOUT_S)
        await asyncio.sleep(60.0)
        assert 1 <= cam.stats.handler_errors <= 61  # about once a second, not every millisecond
        # Messages are still served meanwhile: the failing timer does not take them down.
        await world.inject(cam.topics.event, START)
        ack = await probe.wait_for(containing(cam.topics.ack, b'"s-1"'), since=mark, timeout=TIMEOUT_S)
        assert json.loads(ack.payload) == {"id": "s-1", "ok": True}


async def _connects_reach(cam: CameraRuntime, count: int, within_s: float) -> None:
    async def poll() -> None:
        while cam.stats.connects < count:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), within_s)


@pytest.mark.looptime
@pytest.mark.req("LIVE-RECONNECT")
async def test_a_link_that_stayed_up_resets_the_backoff_and_a_flapping_one_does_not() -> None:
    async with World("sim") as world:
        assert world.hub is not None
        backoff = Backoff(initial_s=1.0, max_s=8.0, jitter=0.0, stable_s=10.0)
        cam = await world.camera("cam-1", backoff=backoff)
        world.hub.outage(60.0)
        await _connects_reach(cam, 2, 70.0)
        assert cam.stats.reconnect_delays[-1] == 8.0  # backed off up to the cap
        await asyncio.sleep(20.0)  # a stable link
        loop = asyncio.get_running_loop()
        world.hub.cut(cam.client_id)
        lost_at = loop.time()
        await _connects_reach(cam, 3, 1.0)
        assert loop.time() - lost_at < 0.02  # at once: the sequence was reset
        await asyncio.sleep(1.0)  # a link that did not stay up
        world.hub.cut(cam.client_id)
        await _connects_reach(cam, 4, 2.0)
        await asyncio.sleep(1.0)
        world.hub.cut(cam.client_id)
        await _connects_reach(cam, 5, 3.0)
        assert cam.stats.reconnect_delays[-2:] == [1.0, 2.0]  # flapping: backing off again
