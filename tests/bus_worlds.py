"""A small world for bus-level tests: a broker (simulated or real), cameras, a probe, an injector.

The same test body runs in both worlds through the ``make_world`` fixture, which is parametrised
``sim`` (the in-memory broker in virtual time, under ``looptime``) and ``mqtt`` (the real broker of
the ``mqtt_broker`` fixture, on a normal loop, marked ``live``)::

    from bus_worlds import make_world_fixture as make_world_fixture  # the fixture "make_world"

    async def test_something(make_world: WorldFactory) -> None:
        async with make_world() as world:
            cam = await world.camera("cam-1")
            ...

A world is entered *inside* the test, so that under ``looptime`` the simulated broker's clock
starts with the test's virtual clock. Every topic lives under a fresh prefix, and every client id
starts with it, so tests never see each other's traffic on a shared system broker. On leaving,
the world stops its cameras and clears the retained messages it created.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

import pytest
from brokers import BrokerAddress

from controller.codec import Topics
from controller.node import CameraNode, CameraSetup, ControllerFactory, Initial
from controller.params import CameraParams
from controller.policy import load_policy
from controller.reference import make_node
from sim.live.bus import Bus, MqttBus, MqttEndpoint, MqttVersion, Probe, SimHub
from sim.live.runtime import Backoff, CameraRuntime
from sim.world.broker import Message

Kind = Literal["sim", "mqtt"]
TIMEOUT_S = 5.0


class World:
    """Cameras, a probe and an injector on one broker, under one unique topic prefix."""

    def __init__(self, kind: Kind, broker: BrokerAddress | None = None) -> None:
        self.kind: Kind = kind
        self.address = broker
        self.prefix = f"t{uuid.uuid4().hex[:10]}"
        self.hub: SimHub | None = None
        self.runtimes: list[tuple[CameraRuntime, asyncio.Task[None]]] = []
        self._probes: list[Probe] = []
        self._injector: Bus | None = None
        self._retained_topics: set[str] = set()

    async def __aenter__(self) -> World:
        if self.kind == "sim":
            self.hub = SimHub()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for runtime, task in self.runtimes:
            runtime.stop()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, TIMEOUT_S)
        for probe in self._probes:
            await probe.stop()
        if self.kind == "mqtt":
            # Leave no persistent session behind on a shared broker: a clean connect ends it.
            for runtime, _task in self.runtimes:
                with contextlib.suppress(Exception):
                    bus = self.bus()
                    await bus.connect(runtime.client_id, clean_session=True)
                    await bus.disconnect()
        if self._injector is not None:
            # Leave nothing retained behind on a shared broker.
            for topic in sorted(self._retained_topics):
                with contextlib.suppress(Exception):
                    await self._injector.publish(topic, b"", qos=1, retain=True)
            with contextlib.suppress(Exception):
                await self._injector.disconnect()
        if self.hub is not None:
            self.hub.close()

    # ------------------------------------------------------------------------ clients

    def bus(self) -> Bus:
        """A new unconnected client bus on this world's broker."""
        if self.hub is not None:
            return self.hub.client()
        assert self.address is not None
        # MQTT 5, as `bwcsim live` speaks it, wherever the broker can (amqtt cannot).
        protocol: MqttVersion = "3.1.1" if self.address.kind == "amqtt" else "5"
        return MqttBus(MqttEndpoint(self.address.host, self.address.port, timeout_s=TIMEOUT_S,
                                    protocol=protocol))

    def client_id(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def topics(self, camera_id: str) -> Topics:
        return Topics(camera_id, self.prefix)

    async def probe(self, *filters: str) -> Probe:
        """A connected observer of ``filters`` (default: everything under the prefix)."""
        probe = Probe(self.bus())
        await probe.start(self.client_id(f"probe{len(self._probes)}"), list(filters) or [f"{self.prefix}/#"])
        self._probes.append(probe)
        return probe

    async def inject(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish as the test harness."""
        if retain:
            self._retained_topics.add(topic)
        if self.hub is not None:
            self.hub.publish(topic, payload, qos=qos, retain=retain)
            return
        if self._injector is None:
            self._injector = self.bus()
            await self._injector.connect(self.client_id("injector"), clean_session=True)
        await self._injector.publish(topic, payload, qos=qos, retain=retain)

    async def camera(
        self,
        camera_id: str,
        *,
        teams: tuple[str, ...] = (),
        initial: Initial = "pre_buffer",
        params: CameraParams | None = None,
        factory: ControllerFactory = make_node,
        backoff: Backoff | None = None,
        seed: int = 0,
        outbox_limit: int = 1000,
        wait: bool = True,
        time_origin: float = 0.0,
        bus: Bus | None = None,
        **runtime_options: Any,
    ) -> CameraRuntime:
        """Start a camera runtime (reference controller unless ``factory``); wait until connected.
        ``runtime_options`` go to :class:`CameraRuntime` (``store=``, ``audit=``, ``rate_limit=``...)."""
        policy = load_policy("dhs-2023")
        setup = CameraSetup(
            camera_id=camera_id, policy=policy, params=params or policy.apply(CameraParams()),
            teams=teams, initial=initial, prefix=self.prefix,
        )
        node: CameraNode = factory(setup)
        runtime = CameraRuntime(
            node, bus or self.bus(), prefix=self.prefix, client_id=self.client_id(camera_id),
            backoff=backoff or Backoff(initial_s=0.5, max_s=2.0), seed=seed, outbox_limit=outbox_limit,
            time_origin=time_origin, **runtime_options,
        )
        topics = runtime.topics
        self._retained_topics.update((topics.state, topics.availability))
        task = asyncio.create_task(runtime.run())
        self.runtimes.append((runtime, task))
        if wait:
            await asyncio.wait_for(runtime.wait_connected(), TIMEOUT_S)
            await asyncio.wait_for(runtime.wait_flushed(), TIMEOUT_S)
        return runtime


WorldFactory = Callable[[], World]


@pytest.fixture(
    name="make_world",
    params=[
        pytest.param("sim", marks=pytest.mark.looptime),
        pytest.param("mqtt", marks=pytest.mark.live),
    ]
)
def make_world_fixture(request: pytest.FixtureRequest) -> WorldFactory:
    """Builds a :class:`World` on the simulated broker or on the real one (see module doc)."""
    kind: Kind = request.param
    if kind == "mqtt":
        broker: BrokerAddress = request.getfixturevalue("mqtt_broker")
        return lambda: World("mqtt", broker)
    return lambda: World("sim")


def on(topic: str, payload: bytes | None = None) -> Callable[[Message], bool]:
    """Predicate: a message on ``topic`` (with exactly ``payload``, if given)."""
    return lambda m: m.topic == topic and (payload is None or m.payload == payload)


def containing(topic: str, *fragments: bytes) -> Callable[[Message], bool]:
    """Predicate: a message on ``topic`` whose payload contains every fragment."""
    return lambda m: m.topic == topic and all(f in m.payload for f in fragments)
