"""The live-broker fixture and each of its fallbacks speak real MQTT.

The session fixture normally finds the system Mosquitto on this project's machines, so the two
fallbacks (a spawned Mosquitto, in-process amqtt) are also started explicitly here: a fresh
machine relies on them, and they must not first be tried there.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Iterator

import aiomqtt
import brokers
import pytest
from brokers import BrokerAddress

pytestmark = [pytest.mark.req("BUS-LIVE"), pytest.mark.live]

# Generous: a loaded CI machine, not the broker, decides how long a delivery takes.
DELIVERY_TIMEOUT_S = 10.0


def _unique_prefix() -> str:
    # The system broker is shared with everything else on the machine: keep topics private.
    return f"bwcsim-test/{uuid.uuid4().hex}"


def _payload_bytes(message: aiomqtt.Message) -> bytes:
    payload = message.payload
    assert isinstance(payload, bytes | bytearray), f"unexpected payload type {type(payload)}"
    return bytes(payload)


async def _next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(DELIVERY_TIMEOUT_S):
        return await anext(aiter(client.messages))


async def _assert_round_trip(address: BrokerAddress) -> None:
    """A QoS 1 publication reaches a subscriber with topic and payload intact."""
    topic = f"{_unique_prefix()}/cam-1/event"
    async with (
        aiomqtt.Client(address.host, address.port, identifier=f"sub-{uuid.uuid4().hex}") as sub,
        aiomqtt.Client(address.host, address.port, identifier=f"pub-{uuid.uuid4().hex}") as pub,
    ):
        await sub.subscribe(topic.rsplit("/", 2)[0] + "/+/event", qos=1)
        await pub.publish(topic, b'{"id":"e-1","type":"dock"}', qos=1)
        message = await _next_message(sub)
        assert message.topic.value == topic
        assert _payload_bytes(message) == b'{"id":"e-1","type":"dock"}'
        assert message.qos == 1
        assert not message.retain


async def _assert_retained(address: BrokerAddress) -> None:
    """A retained state reaches a later subscriber flagged retained; an empty payload clears it."""
    prefix = _unique_prefix()
    state_topic = f"{prefix}/cam-1/state"
    marker_topic = f"{prefix}/cam-1/marker"
    async with aiomqtt.Client(address.host, address.port) as publisher:
        await publisher.publish(state_topic, b'{"state":"pre_buffer"}', qos=1, retain=True)

        async with aiomqtt.Client(address.host, address.port) as late:
            await late.subscribe(state_topic, qos=1)
            message = await _next_message(late)
            assert message.topic.value == state_topic
            assert _payload_bytes(message) == b'{"state":"pre_buffer"}'
            assert message.retain

        await publisher.publish(state_topic, b"", qos=1, retain=True)

        # Absence is shown without waiting on the clock: retained messages are delivered on
        # subscribe, before anything published afterwards, so a cleared topic means the
        # first message seen is the marker.
        async with aiomqtt.Client(address.host, address.port) as after_clear:
            await after_clear.subscribe(f"{prefix}/cam-1/#", qos=1)
            await publisher.publish(marker_topic, b"marker", qos=1)
            first = await _next_message(after_clear)
            assert first.topic.value == marker_topic


# --- the session fixture -------------------------------------------------------------------


def test_fixture_prefers_the_system_broker_when_it_answers(mqtt_broker: BrokerAddress) -> None:
    assert mqtt_broker.host == brokers.LOOPBACK
    if brokers.mqtt_answers(brokers.LOOPBACK, brokers.SYSTEM_PORT):
        assert mqtt_broker == BrokerAddress(brokers.LOOPBACK, 1883, "mosquitto-system")
    else:
        assert mqtt_broker.kind in ("mosquitto-spawned", "amqtt")
    assert brokers.mqtt_answers(mqtt_broker.host, mqtt_broker.port)


async def test_fixture_broker_round_trip(mqtt_broker: BrokerAddress) -> None:
    await _assert_round_trip(mqtt_broker)


async def test_fixture_broker_retains_and_clears(mqtt_broker: BrokerAddress) -> None:
    await _assert_retained(mqtt_broker)


# --- each fallback, started explicitly ---------------------------------------------------


@pytest.mark.skipif(brokers.mosquitto_binary() is None, reason="mosquitto is not installed")
async def test_spawned_mosquitto_serves_and_stops() -> None:
    with brokers.spawned_mosquitto() as address:
        assert address.kind == "mosquitto-spawned"
        assert address.host == "127.0.0.1"
        assert address.port != brokers.SYSTEM_PORT
        await _assert_round_trip(address)
        await _assert_retained(address)
    assert not brokers.mqtt_answers(address.host, address.port, timeout_s=0.5)


async def test_inprocess_amqtt_serves_and_stops() -> None:
    with brokers.inprocess_amqtt() as address:
        assert address.kind == "amqtt"
        assert address.host == "127.0.0.1"
        assert address.port > 0
        await _assert_round_trip(address)
        await _assert_retained(address)
    assert not brokers.mqtt_answers(address.host, address.port, timeout_s=0.5)


@pytest.fixture
def no_system_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the fallback chain look for the system broker on a port where nothing listens."""
    monkeypatch.setattr(brokers, "SYSTEM_PORT", brokers.free_loopback_port())


@pytest.mark.skipif(brokers.mosquitto_binary() is None, reason="mosquitto is not installed")
@pytest.mark.usefixtures("no_system_broker")
def test_chain_spawns_mosquitto_without_a_system_broker() -> None:
    with brokers.any_broker() as address:
        assert address.kind == "mosquitto-spawned"


@pytest.mark.usefixtures("no_system_broker")
async def test_chain_falls_back_to_amqtt_without_mosquitto(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(brokers, "mosquitto_binary", lambda: None)
    with brokers.any_broker() as address:
        assert address.kind == "amqtt"
        await _assert_round_trip(address)


# --- the probe itself ------------------------------------------------------------------------


@pytest.fixture
def silent_tcp_server() -> Iterator[int]:
    """A loopback TCP server that accepts connections and never speaks MQTT."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((brokers.LOOPBACK, 0))
    listener.listen()
    listener.settimeout(0.05)  # so the accept loop notices ``closing`` promptly
    accepted: list[socket.socket] = []
    closing = threading.Event()

    def accept_forever() -> None:
        while not closing.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        closing.set()
        thread.join(timeout=5)
        listener.close()
        for connection in accepted:
            connection.close()


def test_probe_rejects_a_tcp_service_that_does_not_speak_mqtt(silent_tcp_server: int) -> None:
    assert not brokers.mqtt_answers(brokers.LOOPBACK, silent_tcp_server, timeout_s=0.3)


def test_probe_rejects_a_closed_port() -> None:
    assert not brokers.mqtt_answers(brokers.LOOPBACK, brokers.free_loopback_port(), timeout_s=0.3)
