"""One asynchronous bus interface, two implementations: the simulated broker and a real one.

Theory of operation
-------------------
:class:`Bus` is what the camera runtime (:mod:`sim.live.runtime`) and the contract tests see of MQTT:
one client connection that can be opened, used and lost, then opened again::

    present = await bus.connect("cam-1", clean_session=False, will=Message(...))
    await bus.subscribe("bwc/cam-1/event", qos=1)
    await bus.publish("bwc/cam-1/state", b"{...}", qos=1, retain=True)
    async for msg in bus.messages():   # ends on disconnect(); raises BusError on a lost link
        ...
    await bus.disconnect()             # clean=False drops the link so the will fires

Every failure crosses the boundary as :class:`~controller.errors.BusError` — refused or timed-out
connects, publishes on a dead link, invalid topics — so callers handle one error kind.

**Messages survive the loss of the link that carried them.** Both implementations put every
delivery into one inbox that outlives connections. A message the broker has handed over (and, on
a real broker, that the client library has already acknowledged with PUBACK) is therefore never
dropped because the link died before the application read it: the next ``messages()`` iterator
yields it first. The end of a connection is an entry in the same inbox tagged with the
connection's epoch, so a stale "link lost" never ends a later connection's iterator.

:class:`SimBus` runs over :class:`~sim.world.broker.SimBroker` in the running loop's time.
:class:`SimHub` owns the broker and its :class:`~sim.world.scheduler.Scheduler` and keeps one loop
timer armed at the scheduler's next event, so the broker's virtual time *is* the loop's time
(since the hub was created). Under ``looptime`` the loop's time is itself virtual, so a test
that waits ten minutes for a backoff costs nothing; on a normal loop the same code runs in real
time. Faults that should be seen by clients go through the hub (:meth:`SimHub.cut`,
:meth:`SimHub.outage`) so the affected buses learn that their link is gone, as a TCP client does.

:class:`MqttBus` runs over ``aiomqtt`` (paho-mqtt underneath). A fresh ``aiomqtt.Client`` is built
for each connection, because a client whose link died cannot be re-entered reliably. Incoming
messages are forwarded straight from paho's callback into the inbox; a small watcher task notices
the end of the link. A publish races the link's end so that it fails at once instead of waiting
for a PUBACK that can no longer come.

**MQTT 5** (``MqttEndpoint(protocol="5")``, or ``"auto"``: 5, and 3.1.1 for a broker that refuses
5) is what makes a broker's "no" visible. A SUBACK or PUBACK reason code of 0x80 or above raises
:class:`~controller.errors.BusRefused` (the link stays up; the caller reports and retries), a
PUBACK that does not come in time raises :class:`~controller.errors.BusTimeout` (the caller
retries; QoS 1 allows a second copy), and a link closed because another connection took the
client id raises :class:`~controller.errors.SessionTakenOver`. Subscriptions can ask for no
retained messages (``retained=False``: retain handling "do not send", and retain-as-published,
so that a retained publication arriving live is recognisable) and for none of the client's own
publications (``no_local=True``). A persistent session (``clean_session=False``) is a clean-start
flag of false with a session expiry interval. Publications are sent straight through paho, with
their own PUBACK futures, so several can be in flight at once and each learns its reason code.
Over 3.1.1 the options are ignored and a refusal is invisible (Mosquitto acknowledges a publish it
dropped, and grants a subscription it will never serve).

**Acknowledging after the work is done.** With ``manual_ack=True`` a QoS 1 message is not
acknowledged (PUBACK) when it arrives but when the application calls :meth:`MqttBus.acknowledge`
— the camera runtime does that once what the message caused is safely on disk — so a crash
before that point leaves the message with the broker, which delivers it again. It is also flow
control: the broker sends no more than the receive maximum of unacknowledged messages, so a
flood waits at the broker instead of in this process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import aiomqtt
import paho.mqtt.client as paho
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from controller.errors import BusError, BusRefused, BusTimeout, SessionTakenOver
from sim.live import paho_lean
from sim.world.broker import BusConfig, Message, SimBroker, validate_filter, validate_topic
from sim.world.scheduler import Scheduler

# paho decodes a property set for every PUBLISH and PUBACK it receives; build them cheaply.
paho_lean.install()

__all__ = [
    "Bus",
    "Message",
    "MqttBus",
    "MqttEndpoint",
    "MqttVersion",
    "OptionsBus",
    "Probe",
    "SimBus",
    "SimHub",
    "TlsFiles",
    "parse_broker_url",
]

T = TypeVar("T")


class Bus(Protocol):
    """One MQTT client connection, simulated or real. Every failure is a ``BusError``."""

    @property
    def is_connected(self) -> bool:
        """Whether the link is up (as far as this side knows)."""
        ...

    async def connect(
        self, client_id: str, *, clean_session: bool = False, will: Message | None = None
    ) -> bool:
        """Open the link as ``client_id``; returns MQTT's *session present* flag."""
        ...

    async def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Subscribe and wait until the broker has granted it."""
        ...

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish; with QoS 1, return once the broker has acknowledged it."""
        ...

    def messages(self) -> AsyncIterator[Message]:
        """Incoming messages of the current connection (and any left over from earlier ones).

        The iterator ends after :meth:`disconnect` and raises ``BusError`` when the link is lost.
        """
        ...

    async def disconnect(self, *, clean: bool = True) -> None:
        """Close the link; ``clean=False`` drops it without DISCONNECT so the will is published."""
        ...


class OptionsBus(Bus, Protocol):
    """A bus whose subscriptions take MQTT 5's options (both buses here do; the runtime uses them
    when a bus has them)."""

    async def subscribe(
        self, topic_filter: str, qos: int = 1, *, retained: bool = True, no_local: bool = False
    ) -> None:
        """Subscribe; ``retained=False``: send no retained messages for it; ``no_local=True``: not
        this client's own publications (a protocol without these options ignores them)."""
        ...


# ------------------------------------------------------------------------------- the inbox


@dataclass(frozen=True, slots=True)
class _End:
    epoch: int
    error: BusError | None


_Token = tuple[int, int]
"""What acknowledges one QoS 1 delivery: (connection epoch, packet id)."""


class _Inbox:
    """Deliveries of every connection, in arrival order, plus one end marker per connection.

    With manual acknowledgement each delivery carries a token; :attr:`yielded` collects the
    tokens of what the consumer has taken, for :meth:`MqttBus.acknowledge`.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Message | _End | tuple[Message, _Token]] = asyncio.Queue()
        self.epoch = 0
        self._ended: set[int] = set()
        self.yielded: list[_Token] = []

    def open(self) -> int:
        self.epoch += 1
        return self.epoch

    def put(self, msg: Message, token: _Token | None = None) -> None:
        self._queue.put_nowait(msg if token is None else (msg, token))

    def end(self, epoch: int, error: BusError | None) -> None:
        if epoch not in self._ended:
            self._ended.add(epoch)
            self._queue.put_nowait(_End(epoch, error))

    def pending(self) -> int:
        return self._queue.qsize()

    async def iterate(self, epoch: int) -> AsyncIterator[Message]:
        while True:
            item = await self._queue.get()
            if isinstance(item, _End):
                if item.epoch != epoch:
                    continue  # the end of an earlier connection, already dealt with
                if item.error is not None:
                    raise item.error
                return
            if isinstance(item, tuple):
                item, token = item
                self.yielded.append(token)
            yield item


# --------------------------------------------------------------------------- simulated bus


class SimHub:
    """A :class:`SimBroker` whose virtual time is the running asyncio loop's clock.

    Create it inside a coroutine (it binds to the running loop). ``now`` is seconds since the
    hub was created. Extra keyword arguments go to :class:`SimBroker`.
    """

    def __init__(
        self, config: BusConfig | None = None, rng: Any = None, **broker_options: Any
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self.scheduler = Scheduler()
        self.broker = SimBroker(self.scheduler, config, rng, **broker_options)
        self._armed: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._buses: dict[str, SimBus] = {}

    @property
    def now(self) -> float:
        """The broker's clock: loop time since the hub was created."""
        return self._loop.time() - self._t0

    def client(self) -> SimBus:
        """A new, unconnected client bus on this broker."""
        return SimBus(self)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Inject a publication as the harness (always connected, not a client)."""
        self.sync()
        self.broker.publish(None, topic, payload, qos, retain)
        self.kick()

    def cut(self, client_id: str) -> None:
        """Fault: drop ``client_id``'s link uncleanly (its will fires); it must reconnect itself."""
        bus = self._buses.get(client_id)
        self.sync()
        self.broker.disconnect(client_id, clean=False)
        if bus is not None:
            bus._link_lost(BusError(f"connection of {client_id!r} lost"))
        self.kick()

    def outage(self, for_s: float) -> None:
        """Fault: the broker is down for ``for_s`` seconds. Every client's link drops (no wills);
        connects fail until it is back; sessions and retained messages survive."""
        self.sync()
        self.broker.outage(for_s)
        for client_id, bus in list(self._buses.items()):
            # The broker would reconnect its clients by itself when the outage ends; a real
            # client has to do that on its own, so cancel the automatic reconnect.
            with contextlib.suppress(BusError):
                self.broker.disconnect(client_id)
            bus._link_lost(BusError("broker outage"))
        self.kick()

    def close(self) -> None:
        """Stop driving the scheduler."""
        if self._armed is not None:
            self._armed.cancel()
            self._armed = None
            self._armed_at = None

    def sync(self) -> None:
        """Bring the broker's clock up to the loop's (running anything due), before acting on it.

        The scheduler's clock only moves when it runs; without this a client acting after a quiet
        spell would meet the broker still living at its last event (say, still inside an outage).
        """
        self.scheduler.run(until=max(self.now, self.scheduler.now))

    def kick(self) -> None:
        """Re-arm the loop timer at the scheduler's next event (after any direct broker call)."""
        upcoming = self.scheduler.peek()
        if upcoming == self._armed_at:
            return
        if self._armed is not None:
            self._armed.cancel()
        if upcoming is None:
            self._armed = self._armed_at = None
            return
        self._armed_at = upcoming
        self._armed = self._loop.call_at(self._t0 + upcoming, self._fire)

    def _fire(self) -> None:
        due = self._armed_at
        self._armed = self._armed_at = None
        # The loop fired us for `due`; rounding may put its clock a hair earlier.
        until = max(self.now, due if due is not None else 0.0, self.scheduler.now)
        self.scheduler.run(until=until)
        self.kick()

    def _register(self, client_id: str, bus: SimBus) -> None:
        self._buses[client_id] = bus

    def _unregister(self, client_id: str, bus: SimBus) -> None:
        if self._buses.get(client_id) is bus:
            del self._buses[client_id]


class SimBus:
    """A client of a :class:`SimHub`'s broker, behind the :class:`Bus` interface."""

    def __init__(self, hub: SimHub) -> None:
        self.hub = hub
        self._inbox = _Inbox()
        self._client_id: str | None = None
        self._epoch = 0
        self._up = False

    @property
    def is_connected(self) -> bool:
        return self._up and self._client_id is not None and self.hub.broker.is_connected(self._client_id)

    async def connect(
        self, client_id: str, *, clean_session: bool = False, will: Message | None = None
    ) -> bool:
        if self._up:
            raise BusError(f"{client_id!r}: already connected")
        epoch = self._inbox.open()
        inbox = self._inbox
        self.hub.sync()
        present = self.hub.broker.connect(client_id, inbox.put, clean_session=clean_session, will=will)
        previous = self.hub._buses.get(client_id)
        if previous is not None and previous is not self:
            # Session takeover: the broker dropped the older connection under this id, and a
            # real client would see its socket close; without this the old bus would go on
            # acting, and disconnecting, as the new connection.
            previous._link_lost(SessionTakenOver(f"connection of {client_id!r} taken over by a new one"))
        self._client_id, self._epoch, self._up = client_id, epoch, True
        self.hub._register(client_id, self)
        self.hub.kick()
        return present

    async def subscribe(
        self, topic_filter: str, qos: int = 1, *, retained: bool = True, no_local: bool = False
    ) -> None:
        # The simulated broker has MQTT 3.1.1's routing: ``no_local`` is ignored (a client sees
        # its own publications) and forwarded messages carry retain=False as 3.1.1 says.
        client_id = self._require()
        self.hub.sync()
        self.hub.broker.subscribe(client_id, topic_filter, qos, send_retained=retained)
        self.hub.kick()

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        client_id = self._require()
        self.hub.sync()
        self.hub.broker.publish(client_id, topic, payload, qos, retain)
        self.hub.kick()

    def messages(self) -> AsyncIterator[Message]:
        return self._inbox.iterate(self._epoch)

    async def disconnect(self, *, clean: bool = True) -> None:
        if not self._up or self._client_id is None:
            return
        client_id = self._client_id
        self.hub.sync()
        with contextlib.suppress(BusError):  # already cut by a fault: nothing left to close
            self.hub.broker.disconnect(client_id, clean=clean)
        self._up = False
        self._inbox.end(self._epoch, None)
        self.hub._unregister(client_id, self)
        self.hub.kick()

    def drop_link(self) -> None:
        """Fault: the link dies under this client (unclean: the will fires)."""
        if self._up and self._client_id is not None:
            self.hub.cut(self._client_id)

    def _require(self) -> str:
        client_id = self._client_id
        if not self._up or client_id is None:
            raise BusError("not connected")
        if not self.hub.broker.is_connected(client_id):
            # Cut behind our back (a fault injected on the broker directly): the link is gone.
            self._link_lost(BusError(f"connection of {client_id!r} lost"))
            raise BusError(f"connection of {client_id!r} lost")
        return client_id

    def _link_lost(self, error: BusError) -> None:
        if self._up:
            self._up = False
            self._inbox.end(self._epoch, error)
            if self._client_id is not None:
                self.hub._unregister(self._client_id, self)


# -------------------------------------------------------------------------------- real bus


@dataclass(frozen=True)
class TlsFiles:
    """TLS material for :class:`MqttBus` (PEM files); ``cafile=None`` uses the system CAs."""

    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None


MqttVersion = Literal["3.1.1", "5", "auto"]


@dataclass(frozen=True)
class MqttEndpoint:
    """Where and how to reach a real broker. The password is never logged or shown in repr.

    ``protocol``: ``"3.1.1"``, ``"5"``, or ``"auto"`` (5, falling back to 3.1.1 when the broker
    refuses 5). ``manual_ack``: acknowledge deliveries only on :meth:`MqttBus.acknowledge`.
    ``session_expiry_s``: how long an MQTT 5 broker keeps a persistent session of a client that
    is away. ``receive_maximum``: unacknowledged QoS 1 deliveries the broker may have in flight.
    ``max_inflight``: unacknowledged QoS 1 publications this client may have in flight, lowered
    to the broker's receive maximum (Mosquitto's ``max_inflight_messages``, 20 by default) when
    the broker announces a smaller one; a broker's round trip, not the camera's CPU, then bounds
    how fast the camera publishes.
    """

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: TlsFiles | None = None
    keepalive_s: int = 30
    timeout_s: float = 10.0
    protocol: MqttVersion = "3.1.1"
    manual_ack: bool = False
    session_expiry_s: int = 7 * 24 * 3600
    receive_maximum: int = 100
    max_inflight: int = 100

    def __repr__(self) -> str:
        return (
            f"MqttEndpoint(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"password={'***' if self.password else None}, tls={self.tls!r}, protocol={self.protocol!r})"
        )


def parse_broker_url(url: str) -> tuple[str, int, bool]:
    """``mqtt://HOST[:PORT]`` → ``(host, port, tls=False)``; ``mqtts://`` defaults to 8883 and TLS."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise BusError(f"broker URL must start with mqtt:// or mqtts://, got {url!r}")
    if parts.username or parts.password:
        raise BusError("put no credentials in the broker URL; use --username and --password-file")
    if not parts.hostname:
        raise BusError(f"broker URL has no host: {url!r}")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise BusError(f"broker URL has an invalid port: {url!r}") from None
    return parts.hostname, port, tls


class MqttBus:
    """A real MQTT connection (3.1.1 or 5) through ``aiomqtt``, behind the :class:`Bus` interface."""

    def __init__(self, endpoint: MqttEndpoint) -> None:
        self.endpoint = endpoint
        self._inbox = _Inbox()
        self._client: aiomqtt.Client | None = None
        self._epoch = 0
        self._lost: asyncio.Future[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._closing = False
        self._publishes: dict[int, asyncio.Future[int]] = {}
        self._sent_at: dict[int, float] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._v5 = endpoint.protocol != "3.1.1"
        self.dropped_qos0 = 0

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._lost is not None and not self._lost.done()

    @property
    def protocol(self) -> Literal["3.1.1", "5"]:
        """The MQTT version of the current (or next) connection."""
        return "5" if self._v5 else "3.1.1"

    async def connect(
        self, client_id: str, *, clean_session: bool = False, will: Message | None = None
    ) -> bool:
        if self.is_connected:
            raise BusError(f"{client_id!r}: already connected")
        await self._release()
        try:
            return await self._connect(client_id, clean_session, will)
        except _Unsupported:
            if self.endpoint.protocol != "auto":
                raise BusRefused(
                    f"{self.endpoint.host}:{self.endpoint.port} does not speak MQTT 5", 0x84
                ) from None
            self._v5 = False  # an MQTT 3.1.1 broker: connect again in its language
            return await self._connect(client_id, clean_session, will)

    async def _connect(self, client_id: str, clean_session: bool, will: Message | None) -> bool:
        endpoint = self.endpoint
        epoch = self._inbox.open()
        inbox = self._inbox
        manual = endpoint.manual_ack
        bus = self

        class _Forward(asyncio.Queue[aiomqtt.Message]):
            # aiomqtt hands every incoming message to put_nowait from paho's callback; sending
            # it straight to the inbox keeps it even if this connection dies before it is read.
            def put_nowait(self, item: aiomqtt.Message) -> None:
                msg = _from_aiomqtt(item)
                if msg.qos == 0 and inbox.pending() > _MAX_QOS0_BACKLOG:
                    bus.dropped_qos0 += 1  # at most once: nobody waits for it, and it would pile up
                    return
                inbox.put(msg, (epoch, item.mid) if manual and msg.qos > 0 else None)

        tls = None
        if endpoint.tls is not None:
            tls = aiomqtt.TLSParameters(
                ca_certs=endpoint.tls.cafile, certfile=endpoint.tls.certfile, keyfile=endpoint.tls.keyfile
            )
        v5 = self._v5
        options: dict[str, Any] = {}
        if v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0 if clean_session else endpoint.session_expiry_s
            props.ReceiveMaximum = endpoint.receive_maximum
            options = {"protocol": aiomqtt.ProtocolVersion.V5, "clean_start": clean_session,
                       "properties": props}
        else:
            options = {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": clean_session}
        try:
            client = aiomqtt.Client(
                endpoint.host,
                endpoint.port,
                identifier=client_id,
                will=None if will is None else aiomqtt.Will(will.topic, will.payload, will.qos, will.retain),
                username=endpoint.username,
                password=endpoint.password,
                tls_params=tls,
                keepalive=endpoint.keepalive_s,
                timeout=endpoint.timeout_s,
                queue_type=_Forward,
                max_inflight_messages=endpoint.max_inflight,
                # Small packets answered by small packets: without TCP_NODELAY, Nagle's algorithm
                # meets the peer's delayed ACK and a trigger's reply waits ~40 ms per write.
                socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
                **options,
            )
        except (ValueError, TypeError) as exc:
            raise BusError(f"invalid connection settings: {exc}") from None
        inner: paho.Client = client._client
        if manual:
            inner.manual_ack_set(True)
        session_present = _capture_session_present(client)
        publishes: dict[int, asyncio.Future[int]] = {}
        _capture_puback_codes(client, publishes)
        try:
            await client.__aenter__()
        except MqttConnectError as exc:
            _close_socket(client)
            if v5 and _code_value(exc.rc) == 0x84:
                raise _Unsupported from None
            code = _code_value(exc.rc)
            raise BusRefused(f"{endpoint.host}:{endpoint.port} refused the connection: {exc}", code) from None
        except (aiomqtt.MqttError, OSError) as exc:  # OSError: TLS files that cannot be read
            # A connect that timed out waiting for CONNACK leaves paho's socket open and
            # aiomqtt's housekeeping task running; a reconnect loop would leak one of each
            # per attempt until the process runs out of file descriptors.
            _close_socket(client)
            raise BusError(f"cannot connect to {endpoint.host}:{endpoint.port}: {exc}") from None
        self._client, self._epoch, self._closing = client, epoch, False
        self._publishes = publishes
        self._sent_at = {}
        self._inbox.yielded.clear()
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lost = lost
        self._watcher = asyncio.create_task(self._watch(client, epoch, lost))
        self._sweeper = asyncio.create_task(self._sweep(publishes, self._sent_at))
        return session_present[0]

    async def subscribe(
        self, topic_filter: str, qos: int = 1, *, retained: bool = True, no_local: bool = False
    ) -> None:
        client = self._require()
        try:
            validate_filter(topic_filter)
            if self._v5:
                options = SubscribeOptions(
                    qos=qos,
                    noLocal=no_local,
                    # Without retained messages, the flag of what arrives is the publisher's: a
                    # retained publication is then recognisable when it comes in live.
                    retainAsPublished=not retained,
                    retainHandling=(
                        SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE if retained
                        else SubscribeOptions.RETAIN_DO_NOT_SEND
                    ),
                )
                granted = await self._guarded(client.subscribe(topic_filter, options=options))
            else:
                granted = await self._guarded(client.subscribe(topic_filter, qos))
        except aiomqtt.MqttError as exc:
            if "timed out" in str(exc):
                raise BusTimeout(f"subscribe {topic_filter!r}: no SUBACK in time") from None
            raise BusError(f"subscribe {topic_filter!r} failed: {exc}") from None
        for code in granted:
            value = _code_value(code)
            if value >= 0x80:
                reason = _reason_name(value)
                raise BusRefused(f"broker refused the subscription to {topic_filter!r} ({reason})", value)

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        client = self._require()
        validate_topic(topic)
        inner: paho.Client = client._client
        try:
            info = inner.publish(topic, payload, qos, retain)
        except ValueError as exc:  # paho's own checks (e.g. a payload over 256 MB)
            raise BusError(f"publish on {topic!r} refused: {exc}") from None
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise BusError(f"publish on {topic!r} failed: {paho.error_string(info.rc)}")
        if qos == 0:
            return
        # One future per PUBACK, resolved by paho's callback, failed by the watcher when the link
        # ends and by the sweeper when it is overdue: no task and no wait() per publication.
        future = self._publishes.get(info.mid)
        if future is None:
            future = self._publishes[info.mid] = asyncio.get_running_loop().create_future()
        self._sent_at[info.mid] = time.monotonic()
        try:
            code = await future
        finally:
            if self._publishes.get(info.mid) is future:
                del self._publishes[info.mid]
            self._sent_at.pop(info.mid, None)
        if code >= 0x80:
            raise BusRefused(f"broker refused the publication on {topic!r} ({_reason_name(code)})", code)

    def messages(self) -> AsyncIterator[Message]:
        return self._inbox.iterate(self._epoch)

    def acknowledge(self) -> None:
        """Acknowledge (PUBACK) every QoS 1 delivery taken from :meth:`messages` so far, with
        ``manual_ack``; those of a link that has since died are left to the broker to resend."""
        tokens = self._inbox.yielded
        if not tokens:
            return
        self._inbox.yielded = []
        client = self._client
        if client is None or not self.is_connected:
            return
        inner: paho.Client = client._client
        for epoch, mid in tokens:
            if epoch == self._epoch:
                inner.ack(mid, 1)

    async def disconnect(self, *, clean: bool = True) -> None:
        client = self._client
        if client is None:
            return
        self._closing = True
        if not clean:
            # Drop the TCP link without DISCONNECT: the broker then publishes the will.
            self.drop_link()
            if self._lost is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._lost), self.endpoint.timeout_s)
        await self._release()
        self._inbox.end(self._epoch, None)

    def drop_link(self) -> None:
        """Fault: kill the TCP link without DISCONNECT, as a network failure would (the will
        fires, and :meth:`messages` raises ``BusError`` as for any lost link)."""
        client = self._client
        if client is None:
            return
        sock = client._client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------------------- internals

    def _require(self) -> aiomqtt.Client:
        if self._client is None or self._lost is None or self._lost.done():
            raise BusError("not connected")
        return self._client

    async def _guarded(self, operation: Any, timeout: float | None = None) -> Any:
        """Await ``operation`` unless the link dies first (then ``BusError`` at once) or
        ``timeout`` passes (then ``BusTimeout``)."""
        lost = self._lost
        task = asyncio.ensure_future(operation)
        if lost is None:
            task.cancel()
            raise BusError("not connected")
        try:
            await asyncio.wait((task, lost), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await task
        if not lost.done():
            raise BusTimeout(f"no answer from the broker within {timeout} s")
        raise BusError("connection lost")

    async def _sweep(self, publishes: dict[int, asyncio.Future[int]], sent_at: dict[int, float]) -> None:
        """Fail publications whose PUBACK is overdue with ``BusTimeout``."""
        timeout = self.endpoint.timeout_s
        while True:
            await asyncio.sleep(max(0.05, timeout / 4))
            now = time.monotonic()
            for mid, at in list(sent_at.items()):
                future = publishes.get(mid)
                if future is not None and not future.done() and now - at > timeout:
                    future.set_exception(BusTimeout(f"no PUBACK from the broker within {timeout:g} s"))

    def _fail_publishes(self, publishes: dict[int, asyncio.Future[int]]) -> None:
        for future in publishes.values():
            if not future.done():
                future.set_exception(BusError("connection lost"))

    async def _watch(self, client: aiomqtt.Client, epoch: int, lost: asyncio.Future[None]) -> None:
        # The forwarding queue never fills, so this iterator only ever ends: with MqttError when
        # the link goes down (clean or not) — which is all it is here for.
        error: BusError | None
        try:
            async for _ in client.messages:
                pass
            error = BusError("message stream ended")
        except aiomqtt.MqttError as exc:
            cause = exc.__cause__
            if isinstance(cause, aiomqtt.MqttCodeError) and _code_value(cause.rc) == 0x8E:
                error = SessionTakenOver("connection lost: another connection took over the client id")
            else:
                error = BusError(f"connection lost: {cause or exc}")
        except asyncio.CancelledError:
            error = None
        if not lost.done():
            lost.set_result(None)
        if self._epoch == epoch:
            self._fail_publishes(self._publishes)
        self._inbox.end(epoch, None if self._closing else error)

    async def _release(self) -> None:
        """Forget the current aiomqtt client (disconnecting it cleanly if it is still up)."""
        client, watcher, sweeper = self._client, self._watcher, self._sweeper
        self._client = self._watcher = self._sweeper = None
        self._fail_publishes(self._publishes)
        if sweeper is not None:
            sweeper.cancel()
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, OSError, TimeoutError):
                await asyncio.wait_for(client.__aexit__(None, None, None), self.endpoint.timeout_s)
        if watcher is not None and not watcher.done():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)


_MAX_QOS0_BACKLOG = 10_000
"""QoS 0 deliveries beyond this many waiting are dropped (counted in ``dropped_qos0``)."""


class _Unsupported(Exception):
    """The broker refused MQTT 5 (reason code 0x84)."""


def _code_value(code: Any) -> int:
    """The number of a paho reason or return code (a ``ReasonCode``, an enum or an int)."""
    value = getattr(code, "value", code)
    return int(value) if isinstance(value, int) else 0


def _reason_name(code: int) -> str:
    names = {0x80: "Unspecified error", 0x83: "Implementation specific error", 0x87: "Not authorized",
             0x90: "Topic Name invalid", 0x97: "Quota exceeded", 0x99: "Payload format invalid"}
    return f"{names.get(code, 'refused')}, 0x{code:02X}"


def _capture_puback_codes(client: aiomqtt.Client, pending: dict[int, asyncio.Future[int]]) -> None:
    """Resolve our own future for each PUBACK with its reason code, which aiomqtt drops."""
    inner: paho.Client = client._client
    original: Callable[..., None] | None = inner.on_publish

    def on_publish(paho_client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        future = pending.get(mid)
        if future is None:
            # The PUBACK beat the caller to registering its future (paho can complete a send
            # inside publish()); leave the answer where publish() will find it.
            future = pending[mid] = client._loop.create_future()
        if not future.done():
            future.set_result(_code_value(reason_code))
        if original is not None:
            original(paho_client, userdata, mid, reason_code, properties)

    inner.on_publish = on_publish


def _from_aiomqtt(item: aiomqtt.Message) -> Message:
    payload = item.payload
    if isinstance(payload, bytes | bytearray):
        data = bytes(payload)
    elif payload is None:
        data = b""
    else:
        data = str(payload).encode()
    return Message(item.topic.value, data, int(item.qos), bool(item.retain))


def _close_socket(client: aiomqtt.Client) -> None:
    """Close the socket of a client whose connect failed (paho then stops aiomqtt's tasks)."""
    close = getattr(client._client, "_sock_close", None)
    if callable(close):
        with contextlib.suppress(OSError):
            close()


def _capture_session_present(client: aiomqtt.Client) -> list[bool]:
    """Record CONNACK's session-present flag, which aiomqtt does not expose; and keep paho within
    the broker's receive maximum, which it does not read (a client that sends more unacknowledged
    publications than that is disconnected by an MQTT 5 broker)."""
    seen = [False]
    inner: paho.Client = client._client
    original: Callable[..., None] | None = inner.on_connect

    def on_connect(*args: Any) -> None:
        flags = args[2] if len(args) > 2 else None
        seen[0] = bool(getattr(flags, "session_present", False))
        properties = args[4] if len(args) > 4 else None
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        if isinstance(receive_maximum, int) and 0 < receive_maximum < inner._max_inflight_messages:
            # Before the first publication; paho's setter refuses once the socket is open.
            inner._max_inflight_messages = receive_maximum
        if original is not None:
            original(*args)

    inner.on_connect = on_connect
    return seen


# ------------------------------------------------------------------------------- observing


class Probe:
    """An observer client: subscribes to some filters and lets a caller await a message.

    Used by the contract and live tests and by the latency benchmark::

        probe = Probe(bus)
        await probe.start("probe-1", ["bwc/cam-1/#"])
        mark = probe.mark()
        ...                                   # act
        msg = await probe.wait_for(lambda m: m.topic.endswith("/ack"), since=mark, timeout=5)
    """

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.received: list[Message] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, client_id: str, filters: list[str], qos: int = 1) -> None:
        """Connect (clean session) and subscribe to ``filters``; collection starts at once."""
        await self.bus.connect(client_id, clean_session=True)
        self._task = asyncio.create_task(self._collect())
        for topic_filter in filters:
            await self.bus.subscribe(topic_filter, qos)

    def mark(self) -> int:
        """A position in :attr:`received`, to wait only for what arrives after it."""
        return len(self.received)

    def since(self, mark: int, topic: str | None = None) -> list[Message]:
        """Messages received after ``mark`` (on ``topic`` only, if given)."""
        return [m for m in self.received[mark:] if topic is None or m.topic == topic]

    async def wait_for(
        self, predicate: Callable[[Message], bool], *, since: int = 0, timeout: float = 5.0
    ) -> Message:
        """The first message after ``since`` that satisfies ``predicate``; ``TimeoutError`` if
        none arrives within ``timeout`` seconds (of the loop's clock)."""

        async def search() -> Message:
            index = since
            while True:
                while index < len(self.received):
                    msg = self.received[index]
                    index += 1
                    if predicate(msg):
                        return msg
                self._arrived.clear()
                await self._arrived.wait()

        return await asyncio.wait_for(search(), timeout)

    async def stop(self) -> None:
        """Disconnect and stop collecting."""
        with contextlib.suppress(BusError):
            await self.bus.disconnect()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, BusError):
                await self._task

    async def _collect(self) -> None:
        with contextlib.suppress(BusError):  # a lost link just ends the observation
            async for msg in self.bus.messages():
                self.received.append(msg)
                self._arrived.set()
