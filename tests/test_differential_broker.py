"""Differential test: the in-memory broker routes like Mosquitto (SPEC §6).

Hypothesis generates sequences of subscriptions (filters with ``+`` and ``#``, QoS 0/1) and
publications (retained or not, empty retained payloads that clear) from a few clients, under a
fresh topic prefix. The same sequence runs on :class:`~sim.world.broker.SimBroker` and on Mosquitto,
and the sets of deliveries — (subscriber, topic, payload, retain flag) — must be equal.

Making the real run deterministic takes care, because three clients talk to Mosquitto over three
sockets: every step waits for the broker's acknowledgement (SUBACK, PUBACK), and a QoS 0 publish,
which has none, is followed by a QoS 1 publish on a topic outside the prefix, whose PUBACK proves
the broker has processed everything before it on that socket. At the end each subscriber gets a
marker on a private topic; since a broker delivers to one client in routing order, the marker
arriving means everything before it has arrived.

Mosquitto is required (the system one or a spawned one); with only amqtt the test is skipped, as
amqtt is not the reference being matched.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import pytest
from brokers import BrokerAddress
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.live.bus import MqttBus, MqttEndpoint
from sim.world.broker import SimBroker
from sim.world.scheduler import Scheduler

pytestmark = [pytest.mark.req("BUS-DIFF"), pytest.mark.live]

SUBSCRIBERS = 2
Delivery = tuple[int, str, bytes, bool]


@dataclass(frozen=True)
class Subscribe:
    client: int
    levels: tuple[str, ...]  # relative to the prefix
    qos: int


@dataclass(frozen=True)
class Publish:
    levels: tuple[str, ...]
    payload: bytes
    qos: int
    retain: bool


Step = Subscribe | Publish

_TOPIC_LEVEL = st.sampled_from(["a", "b", ""])
_FILTER_LEVEL = st.sampled_from(["a", "b", "", "+"])


@st.composite
def _filter(draw: st.DrawFn) -> tuple[str, ...]:
    levels = tuple(draw(st.lists(_FILTER_LEVEL, max_size=2)))
    return (*levels, "#") if draw(st.booleans()) else levels


@st.composite
def steps(draw: st.DrawFn) -> list[Step]:
    count = draw(st.integers(1, 12))
    out: list[Step] = []
    for index in range(count):
        if draw(st.booleans()):
            client = draw(st.integers(0, SUBSCRIBERS - 1))
            out.append(Subscribe(client, draw(_filter()), draw(st.sampled_from([0, 1]))))
        else:
            retain = draw(st.booleans())
            # An empty retained payload clears the topic's retained message.
            payload = b"" if retain and draw(st.integers(0, 4)) == 0 else f"p{index}".encode()
            out.append(Publish(tuple(draw(st.lists(_TOPIC_LEVEL, max_size=2))), payload,
                               draw(st.sampled_from([0, 1])), retain))
    return out


def _name(prefix: str, levels: tuple[str, ...]) -> str:
    return "/".join((prefix, *levels))


def run_on_sim(sequence: list[Step], prefix: str) -> set[Delivery]:
    scheduler = Scheduler()
    broker = SimBroker(scheduler)
    got: set[Delivery] = set()

    def collector(client: int) -> object:
        return lambda msg: got.add((client, msg.topic, msg.payload, msg.retain))

    for client in range(SUBSCRIBERS):
        broker.connect(f"s{client}", collector(client), clean_session=True)  # type: ignore[arg-type]
    broker.connect("pub", lambda msg: None, clean_session=True)
    for step in sequence:
        if isinstance(step, Subscribe):
            broker.subscribe(f"s{step.client}", _name(prefix, step.levels), step.qos)
        else:
            broker.publish("pub", _name(prefix, step.levels), step.payload, step.qos, step.retain)
        scheduler.run()
    return got


async def run_on_mosquitto(sequence: list[Step], prefix: str, address: BrokerAddress) -> set[Delivery]:
    endpoint = MqttEndpoint(address.host, address.port, timeout_s=5.0)
    subscribers = [MqttBus(endpoint) for _ in range(SUBSCRIBERS)]
    publisher = MqttBus(endpoint)
    sync_topic = f"{prefix}-sync"
    got: set[Delivery] = set()
    markers: list[asyncio.Event] = [asyncio.Event() for _ in subscribers]

    async def collect(index: int, bus: MqttBus) -> None:
        async for msg in bus.messages():
            if msg.topic == f"{sync_topic}/{index}":
                markers[index].set()
            elif not msg.topic.startswith(sync_topic):
                got.add((index, msg.topic, msg.payload, msg.retain))

    tasks = []
    retained: set[str] = set()
    try:
        for index, bus in enumerate(subscribers):
            await bus.connect(f"{prefix}-s{index}", clean_session=True)
            await bus.subscribe(f"{sync_topic}/{index}", 1)
            tasks.append(asyncio.create_task(collect(index, bus)))
        await publisher.connect(f"{prefix}-pub", clean_session=True)
        for step in sequence:
            if isinstance(step, Subscribe):
                await subscribers[step.client].subscribe(_name(prefix, step.levels), step.qos)
            else:
                topic = _name(prefix, step.levels)
                await publisher.publish(topic, step.payload, qos=step.qos, retain=step.retain)
                if step.retain:
                    retained.add(topic)
                if step.qos == 0:
                    await publisher.publish(f"{sync_topic}/pub", b"", qos=1)
        for index in range(SUBSCRIBERS):
            await publisher.publish(f"{sync_topic}/{index}", b"end", qos=1)
        await asyncio.wait_for(asyncio.gather(*(m.wait() for m in markers)), 5.0)
        observed = set(got)
    finally:
        for task in tasks:
            task.cancel()
        for bus in subscribers:
            await bus.disconnect()
        if publisher.is_connected:
            for topic in retained:  # leave the shared broker as we found it
                await publisher.publish(topic, b"", qos=1, retain=True)
        await publisher.disconnect()
    return observed


@pytest.fixture(scope="module")
def mosquitto(mqtt_broker: BrokerAddress) -> BrokerAddress:
    if mqtt_broker.kind == "amqtt":
        pytest.skip("the differential test compares with Mosquitto; only amqtt is available")
    return mqtt_broker


# A real broker round trip per step: a modest, fixed number of examples keeps this to seconds
# (the deep searches run on the simulated bus alone).
@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps())
def test_simulated_broker_delivers_what_mosquitto_delivers(
    mosquitto: BrokerAddress, sequence: list[Step]
) -> None:
    prefix = f"d{uuid.uuid4().hex[:10]}"
    expected = asyncio.run(run_on_mosquitto(sequence, prefix, mosquitto))
    assert run_on_sim(sequence, prefix) == expected


def test_a_hand_picked_sequence_covers_the_tricky_rules(mosquitto: BrokerAddress) -> None:
    sequence: list[Step] = [
        Publish(("a",), b"kept", 1, True),
        Publish(("a", "b"), b"deep", 0, True),
        Subscribe(0, ("#",), 1),           # gets both retained, retain=True
        Subscribe(1, ("+",), 0),           # gets 'a' only; '+' is one level
        Publish((), b"parent", 1, False),  # 'X/#' matches 'X' itself
        Publish(("a",), b"", 1, True),     # clears, and is still forwarded
        Subscribe(1, ("a", "#"), 1),       # 'a' is cleared: nothing retained from it
        Publish(("",), b"empty-level", 1, False),
    ]
    prefix = f"d{uuid.uuid4().hex[:10]}"
    real = asyncio.run(run_on_mosquitto(sequence, prefix, mosquitto))
    assert run_on_sim(sequence, prefix) == real
    assert (0, f"{prefix}/a", b"kept", True) in real and (0, prefix, b"parent", False) in real
    assert (1, f"{prefix}/a", b"", False) in real and (1, f"{prefix}/", b"empty-level", False) in real
    assert not any(d[0] == 1 and d[3] and d[1] == f"{prefix}/a" and d[2] == b"" for d in real)


def test_the_sim_run_alone_is_deterministic() -> None:
    sequence: list[Step] = [Subscribe(0, ("+", "#"), 1), Publish(("a", "b"), b"x", 1, True)]
    assert run_on_sim(sequence, "p") == run_on_sim(sequence, "p") == {(0, "p/a/b", b"x", False)}

