"""An in-memory MQTT broker in virtual time, with a seeded fault model (SPEC §6).

Theory of operation
-------------------
The broker has no sockets and no clock. Clients are callbacks registered under a client id;
every delivery is an event on the :class:`~sim.world.scheduler.Scheduler` at priority ``MESSAGE``, and
every random choice comes from the one :class:`random.Random` passed in, drawn in a fixed order,
so the same calls with the same seed give the same delivery log, byte for byte.

A publication reaches the broker the instant it is published; the fault model's latency is the
broker-to-subscriber leg, sampled once per delivery. The rules follow MQTT 3.1.1 as Mosquitto 2
implements it for 3.1.1 clients, because a differential test compares this broker with Mosquitto:

* **Topics and filters.** Names and filters are validated as Mosquitto does (non-empty, at most
  65,535 UTF-8 bytes, no NUL, control characters, surrogates or non-characters; ``+`` and ``#``
  only as whole levels, ``#`` only last; no wildcards in names). A bad one raises
  :class:`~controller.errors.BusError`. ``#`` also matches the parent level (``a/#`` matches
  ``a``), ``+`` matches an empty level, and a filter whose first level is a wildcard never matches
  a topic beginning with ``$``.
* **Routing** walks a trie of filter levels, so its cost depends on the topic's depth and the
  wildcard branches, not on the number of subscriptions; the result is cached per topic until a
  subscription changes. A client whose filters overlap receives one copy at the highest granted
  QoS (Mosquitto's 3.1.1 behaviour); ``copy_per_subscription=True`` gives one copy per matching
  filter instead (Mosquitto's MQTT 5 behaviour).
* **QoS.** 0 and 1. A delivery's QoS is ``min(published, granted)``. Forwarded messages carry
  ``retain=False``; only retained messages sent because of a new subscription carry
  ``retain=True``.
* **Retained messages.** A publish with ``retain`` replaces the topic's retained message; one with
  an empty payload clears it (and is still forwarded, as the protocol says). Every (re)subscribe
  sends the matching retained messages, in topic order.
* **Ordering.** Each subscriber's deliveries are FIFO: a sampled delivery time earlier than that
  subscriber's previous one is raised to it, and ties run in insertion order. A *duplicate*
  (the fault model's simulated QoS 1 redelivery) always arrives after its original but does not
  hold back later messages, so it may arrive after them, as a real redelivery can.
* **Sessions.** ``clean_session=False`` keeps a session (subscriptions and queued QoS 1
  messages) while the client is offline; on reconnect the queue is delivered in order.
  ``clean_session=True`` discards the session at disconnect. A message still in flight when its
  subscriber drops is requeued if it is QoS 1 on a persistent session, else lost. QoS 0 to an
  offline client is lost (Mosquitto's ``queue_qos0_messages false``). ``max_queued`` bounds the
  offline queue like Mosquitto's ``max_queued_messages`` (unbounded by default).
* **Last Will** is published when a client drops without a clean disconnect: an unclean
  :meth:`SimBroker.disconnect`, a session takeover by a second connect with the same id, or a
  :meth:`SimBroker.disconnect_client` fault. A clean disconnect discards it. A broker outage
  publishes no wills: the broker that would send them is down.
* **Faults.** Latency is ``fixed`` (``latency_s``), ``uniform`` (``latency_s + U(0, jitter_s)``)
  or ``exponential`` (``latency_s + Exp(mean jitter_s)``). Each QoS 0 delivery is dropped with
  probability ``drop``; each QoS 1 delivery is duplicated with probability ``duplicate``.
  :meth:`SimBroker.disconnect_client` cuts one client for a window and reconnects it with the
  same parameters; :meth:`SimBroker.outage` cuts every client, and until it ends nothing routes
  and every publication is lost; sessions and retained messages survive. Overlapping windows
  extend each other. After an automatic reconnect ``on_connect(session_present)`` runs, which is
  where a clean-session client re-subscribes, as a real one would.
* **Observers** see every delivery (``on_deliver``) and every loss (``on_lost`` with a
  :data:`LossReason`), so an oracle can tell "the bus lost it" from "still in flight"
  (:meth:`SimBroker.undelivered`). A publication nobody subscribes to is not a loss.

Example::

    sched = Scheduler()
    broker = SimBroker(sched, BusSettings(latency_s=0.05), random.Random(7))
    broker.connect("cam-1", on_message=print, clean_session=False,
                   will=Message("bwc/cam-1/availability", b"offline", qos=1, retain=True))
    broker.subscribe("cam-1", "bwc/cam-1/event", qos=1)
    broker.publish(None, "bwc/cam-1/event", b'{"id": 1, "type": "dock"}', qos=1)
    sched.run()                      # prints the delivery at t = 0.05
"""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter, deque
from collections.abc import Callable
from functools import partial
from typing import Final, Literal, Protocol

import msgspec

from controller.errors import BusError

from .scheduler import MESSAGE, Handle, Scheduler

__all__ = [
    "NO_FAULTS",
    "BrokerObserver",
    "BusConfig",
    "BusSettings",
    "LatencyKind",
    "LossReason",
    "Message",
    "SimBroker",
    "topic_matches",
    "validate_filter",
    "validate_topic",
]

LatencyKind = Literal["fixed", "uniform", "exponential"]

LossReason = Literal[
    "qos0_drop",  # the fault model dropped a QoS 0 delivery
    "offline_qos0",  # QoS 0 routed to a subscriber whose persistent session is offline
    "disconnected",  # in flight when the subscriber dropped, and not requeued
    "broker_outage",  # published while the broker was down, or in flight when it went down
    "session_ended",  # queued for a persistent session that a clean connect discarded
    "publisher_offline",  # published by a client that was not connected
    "queue_full",  # the offline queue was at ``max_queued``
]

MAX_TOPIC_BYTES: Final = 65535


# ------------------------------------------------------------------------------- values


class Message(msgspec.Struct, frozen=True, gc=False):
    """One application message as a subscriber receives it (or as a will is registered)."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


class BusConfig(Protocol):
    """The fault model's settings. The scenario loader's ``BusSpec`` satisfies it as is."""

    @property
    def latency_s(self) -> float: ...
    @property
    def jitter_s(self) -> float: ...
    @property
    def latency(self) -> str: ...  # one of LatencyKind
    @property
    def drop(self) -> float: ...
    @property
    def duplicate(self) -> float: ...


class BusSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A ready-made :class:`BusConfig`; the defaults are zero latency and no faults."""

    latency_s: float = 0.0
    jitter_s: float = 0.0
    latency: LatencyKind = "fixed"
    drop: float = 0.0
    duplicate: float = 0.0


NO_FAULTS: Final = BusSettings()


class BrokerObserver(Protocol):
    """Receives every delivery and every loss, at the virtual time it happens."""

    def on_deliver(self, client_id: str, msg: Message, at: float) -> None: ...

    def on_lost(self, client_id: str | None, msg: Message, at: float, reason: LossReason) -> None:
        """``client_id`` is the subscriber that missed it, ``None`` when nobody got it."""
        ...


OnMessage = Callable[[Message], None]
OnConnect = Callable[[bool], None]


# ------------------------------------------------------------------------- validation


def _forbidden_class() -> str:
    # Mosquitto refuses these code points in topics (mosquitto_validate_utf8): C0 and C1
    # controls, UTF-16 surrogates, and the Unicode non-characters.
    parts = [r"\x00-\x1f", r"\x7f-\x9f", r"\ud800-\udfff", r"\ufdd0-\ufdef"]
    parts += [rf"\U{(plane << 16) | 0xFFFE:08x}\U{(plane << 16) | 0xFFFF:08x}" for plane in range(17)]
    return "[" + "".join(parts) + "]"


_FORBIDDEN = re.compile(_forbidden_class())


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise BusError(f"{what} must be a string, got {type(text).__name__}")
    if not text:
        raise BusError(f"{what} must not be empty")
    # Printable ASCII (nearly every topic) has none of the forbidden code points: the
    # pattern, slow on its many ranges, is searched only otherwise.
    if not (text.isascii() and text.isprintable()):
        bad = _FORBIDDEN.search(text)
        if bad is not None:
            raise BusError(f"{what} {text!r} contains forbidden character U+{ord(bad.group()):04X}")
    # Each code point is at most 4 bytes, so short strings need no encoding to be measured.
    if len(text) * 4 > MAX_TOPIC_BYTES and len(text.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise BusError(f"{what} is longer than {MAX_TOPIC_BYTES} bytes")
    return text


def validate_topic(topic: str) -> None:
    """Raise :class:`BusError` unless ``topic`` is a valid topic name (no wildcards)."""
    _check_text(topic, "topic")
    if "+" in topic or "#" in topic:
        raise BusError(f"topic {topic!r} contains a wildcard")


def validate_filter(topic_filter: str) -> None:
    """Raise :class:`BusError` unless ``topic_filter`` is a valid subscription filter."""
    _check_text(topic_filter, "topic filter")
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != last):
            raise BusError(f"topic filter {topic_filter!r}: '#' must be a whole, last level")
        if "+" in level and level != "+":
            raise BusError(f"topic filter {topic_filter!r}: '+' must be a whole level")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic_filter`` matches ``topic``; raises :class:`BusError` if either is invalid."""
    validate_filter(topic_filter)
    validate_topic(topic)
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    if topic.startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels) or (level != "+" and level != topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)


# --------------------------------------------------------------------- internal state


class _SubNode:
    """One level of the subscription trie; ``subscribers`` maps client id to granted QoS."""

    __slots__ = ("children", "subscribers")

    def __init__(self) -> None:
        self.children: dict[str, _SubNode] = {}
        self.subscribers: dict[str, int] = {}


class _RetainedNode:
    """One level of the retained-message trie (topics, no wildcards)."""

    __slots__ = ("children", "message")

    def __init__(self) -> None:
        self.children: dict[str, _RetainedNode] = {}
        self.message: Message | None = None


class _ConnectParams:
    """What a client connected with; an automatic reconnect reuses it."""

    __slots__ = ("clean_session", "on_connect", "on_message", "will")

    def __init__(
        self,
        on_message: OnMessage,
        clean_session: bool,
        will: Message | None,
        on_connect: OnConnect | None,
    ) -> None:
        self.on_message = on_message
        self.clean_session = clean_session
        self.will = will
        self.on_connect = on_connect


class _Session:
    """A client's session. ``epoch`` changes at every cut, which voids scheduled deliveries."""

    __slots__ = (
        "client_id",
        "connected",
        "epoch",
        "inflight",
        "params",
        "queue",
        "subscriptions",
        "watermark",
    )

    def __init__(self, client_id: str, params: _ConnectParams) -> None:
        self.client_id = client_id
        self.params = params
        self.subscriptions: dict[str, int] = {}
        self.connected = False
        self.epoch = 0
        # Latest delivery time scheduled on this connection: keeps the subscriber's FIFO.
        self.watermark = 0.0
        # token -> (message, is_duplicate), in scheduling order (= publication order).
        self.inflight: dict[int, tuple[Message, bool]] = {}
        self.queue: deque[Message] = deque()


class _PendingReconnect:
    __slots__ = ("at", "handle", "params")

    def __init__(self, params: _ConnectParams, at: float, handle: Handle) -> None:
        self.params = params
        self.at = at
        self.handle = handle


Route = tuple[tuple[_Session, int], ...]
_ROUTE_CACHE_LIMIT: Final = 1 << 16


def _latency_sampler(config: BusConfig, rng: random.Random) -> Callable[[], float]:
    base = float(config.latency_s)
    jitter = float(config.jitter_s)
    kind = config.latency
    if kind == "fixed" or (kind in ("uniform", "exponential") and jitter == 0.0):
        return lambda: base
    if kind == "uniform":
        draw = rng.random
        return lambda: base + draw() * jitter
    if kind == "exponential":
        expo = rng.expovariate
        rate = 1.0 / jitter
        return lambda: base + expo(rate)
    raise BusError(f"unknown latency distribution {kind!r} (fixed, uniform, exponential)")


def _check_config(config: BusConfig) -> None:
    for name in ("latency_s", "jitter_s"):
        value = getattr(config, name)
        if not 0.0 <= value < float("inf"):
            raise BusError(f"bus {name} must be a finite number >= 0, got {value!r}")
    for name in ("drop", "duplicate"):
        value = getattr(config, name)
        if not 0.0 <= value <= 1.0:
            raise BusError(f"bus {name} must be a probability in [0, 1], got {value!r}")


def _check_qos(qos: int) -> int:
    if qos not in (0, 1) or isinstance(qos, bool):
        raise BusError(f"QoS must be 0 or 1, got {qos!r}")
    return qos


# ---------------------------------------------------------------------------- broker


class SimBroker:
    """The in-memory broker. See the module docstring for the rules it keeps.

    ``rng`` defaults to ``random.Random(0)``; it is never the global generator.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        config: BusConfig | None = None,
        rng: random.Random | None = None,
        *,
        max_queued: int | None = None,
        copy_per_subscription: bool = False,
    ) -> None:
        config = NO_FAULTS if config is None else config
        _check_config(config)
        if max_queued is not None and max_queued < 0:
            raise BusError(f"max_queued must be >= 0, got {max_queued!r}")
        self.scheduler = scheduler
        self._schedule = scheduler.schedule
        # _deliver as a function: a delivery's partial then calls it without a bound method.
        self._deliver_fn = type(self)._deliver
        self.config = config
        self._rng = random.Random(0) if rng is None else rng
        self._latency = _latency_sampler(config, self._rng)
        self._drop = float(config.drop)
        self._duplicate = float(config.duplicate)
        self._max_queued = max_queued
        self._copy_per_subscription = copy_per_subscription
        self._sessions: dict[str, _Session] = {}
        self._reconnects: dict[str, _PendingReconnect] = {}
        self._sub_root = _SubNode()
        self._retained_root = _RetainedNode()
        # topic → its node in the retained trie, while that node is in the trie (a clear
        # that prunes nodes forgets them all): a camera republishes its state on one topic.
        self._retained_at: dict[str, _RetainedNode] = {}
        self._routes: dict[str, Route] = {}
        self._tokens = itertools.count()
        self._observers: list[BrokerObserver] = []
        # The observers that asked to see deliveries too (see add_observer).
        self._delivery_observers: list[BrokerObserver] = []
        self._down_until: float | None = None
        # Plain ints on the hot path; losses are rare enough for a Counter.
        self._published = 0
        self._delivered = 0
        self._losses: Counter[str] = Counter()

    # ----------------------------------------------------------------- observers, queries

    def add_observer(self, observer: BrokerObserver, *, deliveries: bool = True) -> None:
        """Report every later delivery and loss to ``observer``.

        ``deliveries=False`` reports losses only: an observer that sees deliveries anyway (a
        harness whose clients are its own callbacks) spares the bus a call per delivery.
        """
        self._observers.append(observer)
        if deliveries:
            self._delivery_observers.append(observer)

    def remove_observer(self, observer: BrokerObserver) -> None:
        self._observers.remove(observer)
        if observer in self._delivery_observers:
            self._delivery_observers.remove(observer)

    def close(self) -> None:
        """Forget every session, subscription, retained message and observer (a finished run).

        The callbacks a broker holds (each client's ``on_message``, the observers) usually point
        back at the harness that holds the broker; dropping them here frees a run's objects as
        soon as it ends instead of leaving the cycle to the cyclic collector. The totals stay.
        """
        self._sessions = {}
        self._reconnects = {}
        self._sub_root = _SubNode()
        self._retained_root = _RetainedNode()
        self._retained_at = {}
        self._routes = {}
        self._observers = []
        self._delivery_observers = []

    @property
    def counts(self) -> Counter[str]:
        """Totals so far: ``published`` (routed), ``delivered``, and one per loss reason seen."""
        totals: Counter[str] = Counter(published=self._published, delivered=self._delivered)
        totals.update(self._losses)
        return totals

    def is_down(self) -> bool:
        """Whether a broker outage is in progress."""
        return self._down_until is not None and self.scheduler.now < self._down_until

    def is_connected(self, client_id: str) -> bool:
        session = self._sessions.get(client_id)
        return session is not None and session.connected

    def subscriptions(self, client_id: str) -> dict[str, int]:
        """The client's session's filters and granted QoS (empty if it has no session)."""
        session = self._sessions.get(client_id)
        return dict(session.subscriptions) if session is not None else {}

    def undelivered(self, client_id: str) -> list[Message]:
        """Messages the bus still owes ``client_id``: in flight, then queued while offline."""
        session = self._sessions.get(client_id)
        if session is None:
            return []
        in_flight = [msg for msg, is_dup in session.inflight.values() if not is_dup]
        return in_flight + list(session.queue)

    def retained(self, topic_filter: str) -> list[Message]:
        """The retained messages matching ``topic_filter``, sorted by topic."""
        validate_filter(topic_filter)
        found: list[Message] = []
        self._collect_retained(topic_filter.split("/"), found)
        found.sort(key=lambda msg: msg.topic)
        return found

    # ------------------------------------------------------------------------ connections

    def connect(
        self,
        client_id: str,
        on_message: OnMessage,
        *,
        clean_session: bool = True,
        will: Message | None = None,
        on_connect: OnConnect | None = None,
    ) -> bool:
        """Connect ``client_id``; returns whether a session was present (MQTT's flag).

        A client id already connected is taken over: the old connection drops uncleanly and
        its will is published. ``on_connect(session_present)`` runs after this and after every
        automatic reconnect. Raises :class:`BusError` during an outage.
        """
        if not isinstance(client_id, str) or not client_id:
            raise BusError(f"client id must be a non-empty string, got {client_id!r}")
        if will is not None:
            validate_topic(will.topic)
            _check_qos(will.qos)
        if self.is_down():
            raise BusError(f"cannot connect {client_id!r}: the broker is down")
        pending = self._reconnects.pop(client_id, None)
        if pending is not None:
            self.scheduler.cancel(pending.handle)
        return self._open(client_id, _ConnectParams(on_message, clean_session, will, on_connect))

    def disconnect(self, client_id: str, *, clean: bool = True) -> None:
        """Disconnect ``client_id``; an unclean disconnect publishes its will.

        Called during a fault window it cancels the automatic reconnect instead.
        """
        pending = self._reconnects.pop(client_id, None)
        if pending is not None:
            self.scheduler.cancel(pending.handle)
        session = self._sessions.get(client_id)
        if session is not None and session.connected:
            self._cut(session, publish_will=not clean, reason="disconnected")
        elif pending is None:
            raise BusError(f"{client_id!r} is not connected")

    def disconnect_client(self, client_id: str, for_s: float) -> None:
        """Fault: drop ``client_id`` uncleanly now (its will fires) and reconnect it after
        ``for_s`` seconds with the same parameters. Extends a window already in progress."""
        if not 0.0 <= for_s < float("inf"):
            raise BusError(f"disconnect window must be a finite number >= 0, got {for_s!r}")
        at = self.scheduler.now + for_s
        session = self._sessions.get(client_id)
        if session is not None and session.connected:
            params = session.params
            self._cut(session, publish_will=True, reason="disconnected")
            self._plan_reconnect(client_id, params, at)
        elif client_id in self._reconnects:
            self._plan_reconnect(client_id, self._reconnects[client_id].params, at)
        else:
            raise BusError(f"{client_id!r} is not connected")

    def outage(self, for_s: float) -> None:
        """Fault: the broker is down for ``for_s`` seconds. Every client is cut (no wills),
        every publication meanwhile is lost, and the clients reconnect when it ends."""
        if not 0.0 <= for_s < float("inf"):
            raise BusError(f"outage length must be a finite number >= 0, got {for_s!r}")
        end = self.scheduler.now + for_s
        if self._down_until is None or end > self._down_until:
            self._down_until = end
        end = self._down_until
        for session in list(self._sessions.values()):
            if session.connected:
                params = session.params
                self._cut(session, publish_will=False, reason="broker_outage")
                self._plan_reconnect(session.client_id, params, end)
        for client_id, pending in list(self._reconnects.items()):
            self._plan_reconnect(client_id, pending.params, end)

    # ---------------------------------------------------------------------- subscriptions

    def subscribe(
        self, client_id: str, topic_filter: str, qos: int = 1, *, send_retained: bool = True
    ) -> list[Message]:
        """Subscribe with granted QoS ``qos``; returns the retained messages that will now be
        delivered to the client (``retain=True``, QoS downgraded to ``qos``). With
        ``send_retained=False`` none are (MQTT 5's retain handling 2, "do not send")."""
        validate_filter(topic_filter)
        _check_qos(qos)
        session = self._online_session(client_id, "subscribe")
        session.subscriptions[topic_filter] = qos
        node = self._sub_root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _SubNode()
            node = child
        node.subscribers[client_id] = qos
        if "+" in topic_filter or "#" in topic_filter:
            self._routes.clear()
        else:  # a filter without wildcards changes the route of the one topic it names
            self._routes.pop(topic_filter, None)

        matching: list[Message] = []
        if not send_retained:
            return matching
        self._collect_retained(topic_filter.split("/"), matching)
        matching.sort(key=lambda msg: msg.topic)
        sent: list[Message] = []
        for stored in matching:
            out = stored if stored.qos <= qos else Message(stored.topic, stored.payload, qos, True)
            sent.append(out)
            self._send(session, out)
        return sent

    def unsubscribe(self, client_id: str, topic_filter: str) -> None:
        """Remove a subscription; unknown filters are ignored, as MQTT's UNSUBACK does."""
        validate_filter(topic_filter)
        session = self._online_session(client_id, "unsubscribe")
        if session.subscriptions.pop(topic_filter, None) is not None:
            self._trie_remove(topic_filter, client_id)

    # ------------------------------------------------------------------------ publishing

    def publish(
        self,
        client_id: str | None,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
    ) -> None:
        """Publish as ``client_id`` (``None``: injected by the harness, always connected).

        A client that has a session or a pending reconnect but is offline loses the message
        (``publisher_offline``); an id the broker never saw raises :class:`BusError`.
        """
        route = self._routes.get(topic)
        if route is None:  # a cached route means the topic was validated
            validate_topic(topic)
        if type(qos) is not int or not 0 <= qos <= 1:
            _check_qos(qos)
        if type(payload) is not bytes:
            if not isinstance(payload, bytes | bytearray | memoryview):
                raise BusError(f"payload must be bytes, got {type(payload).__name__}")
            payload = bytes(payload)
        session: _Session | None = None
        if client_id is not None:
            session = self._sessions.get(client_id)
            if session is None and client_id not in self._reconnects:
                raise BusError(f"{client_id!r} is not connected")
        down_until = self._down_until
        if down_until is not None and self.scheduler.now < down_until:
            self._lost(None, Message(topic, payload, qos, bool(retain)), "broker_outage")
            return
        if client_id is not None and (session is None or not session.connected):
            self._lost(None, Message(topic, payload, qos, bool(retain)), "publisher_offline")
            return
        if route is not None and not route:
            # A topic nobody subscribes to (a camera's state, acks, alerts, recording metadata):
            # counted as routed, with a message built only when it is to be retained.
            self._published += 1
            if retain:
                self._store_retained(Message(topic, payload, qos, True))
            return
        self._route(Message(topic, payload, qos, bool(retain)), route)

    # ----------------------------------------------------------------------- internals

    def _online_session(self, client_id: str, action: str) -> _Session:
        session = self._sessions.get(client_id)
        if session is None or not session.connected:
            raise BusError(f"cannot {action}: {client_id!r} is not connected")
        return session

    def _open(self, client_id: str, params: _ConnectParams) -> bool:
        session = self._sessions.get(client_id)
        if session is not None and session.connected:
            # Session takeover: the old connection is dropped without DISCONNECT.
            self._cut(session, publish_will=True, reason="disconnected")
            session = self._sessions.get(client_id)
        if session is not None and params.clean_session:
            self._discard(session)
            session = None
        present = session is not None
        if session is None:
            session = self._sessions[client_id] = _Session(client_id, params)
        else:
            session.params = params
        session.connected = True
        session.watermark = self.scheduler.now
        if session.queue:
            queued = session.queue
            session.queue = deque()
            for msg in queued:
                self._send(session, msg)
        if params.on_connect is not None:
            params.on_connect(present)
        return present

    def _cut(self, session: _Session, *, publish_will: bool, reason: LossReason) -> None:
        """Drop a connection: void its scheduled deliveries, requeue or lose what was in
        flight, discard a clean session, then publish the will if asked."""
        session.connected = False
        session.epoch += 1
        persistent = not session.params.clean_session
        if session.inflight:
            requeue: list[Message] = []
            for msg, is_dup in session.inflight.values():
                if is_dup:
                    continue  # its original was delivered, or is requeued/lost on its own
                if msg.qos and persistent:
                    requeue.append(msg)
                else:
                    self._lost(session.client_id, msg, reason)
            session.inflight = {}
            session.queue.extendleft(reversed(requeue))
        if not persistent:
            self._discard(session)
        will = session.params.will
        if publish_will and will is not None:
            self._route(will)

    def _discard(self, session: _Session) -> None:
        """Forget a session: its subscriptions leave the trie, its queue is lost."""
        for topic_filter in session.subscriptions:
            self._trie_remove(topic_filter, session.client_id)
        session.subscriptions = {}
        for msg in session.queue:
            self._lost(session.client_id, msg, "session_ended")
        session.queue.clear()
        session.epoch += 1
        if self._sessions.get(session.client_id) is session:
            del self._sessions[session.client_id]

    def _plan_reconnect(self, client_id: str, params: _ConnectParams, at: float) -> None:
        pending = self._reconnects.get(client_id)
        if pending is not None:
            if pending.at >= at:
                return
            self.scheduler.cancel(pending.handle)
        handle = self.scheduler.schedule(at, partial(self._reconnect, client_id), MESSAGE)
        self._reconnects[client_id] = _PendingReconnect(params, at, handle)

    def _reconnect(self, client_id: str) -> None:
        pending = self._reconnects.pop(client_id)
        if self.is_down():
            assert self._down_until is not None
            self._plan_reconnect(client_id, pending.params, self._down_until)
            return
        self._open(client_id, pending.params)

    def _route(self, msg: Message, route: Route | None = None) -> None:
        """Hand a publication to every matching subscriber (the broker is up); ``route`` is
        the topic's cached route when the caller has looked it up already."""
        self._published += 1
        topic = msg.topic
        if msg.retain:
            self._store_retained(msg)
        if route is None:
            route = self._routes.get(topic)
        if route is None:
            route = self._match(topic)
            if len(self._routes) >= _ROUTE_CACHE_LIMIT:
                self._routes.clear()
            self._routes[topic] = route
        if not route:
            return
        # At most two forwarded variants (QoS 0 and 1), shared by every subscriber.
        variants: list[Message | None] = [None, None]
        published_qos = msg.qos
        for session, granted in route:
            qos = granted if granted < published_qos else published_qos
            out = variants[qos]
            if out is None:
                if qos == published_qos and not msg.retain:
                    out = msg
                else:
                    out = Message(topic, msg.payload, qos, False)
                variants[qos] = out
            if session.connected:
                self._send(session, out)
            elif qos:
                if self._max_queued is not None and len(session.queue) >= self._max_queued:
                    self._lost(session.client_id, out, "queue_full")
                else:
                    session.queue.append(out)
            else:
                self._lost(session.client_id, out, "offline_qos0")

    def _send(self, session: _Session, msg: Message) -> None:
        """Schedule one delivery to a connected session, applying the fault model."""
        qos = msg.qos
        if not qos and self._drop and self._rng.random() < self._drop:
            self._lost(session.client_id, msg, "qos0_drop")
            return
        at = self.scheduler.now + self._latency()
        if at < session.watermark:
            at = session.watermark
        session.watermark = at
        token = next(self._tokens)
        session.inflight[token] = (msg, False)
        deliver = self._deliver_fn
        self._schedule(at, partial(deliver, self, session, session.epoch, token), MESSAGE)
        if qos and self._duplicate and self._rng.random() < self._duplicate:
            # Later than the original, but off the FIFO watermark: a redelivery may trail
            # messages published after it.
            dup_token = next(self._tokens)
            session.inflight[dup_token] = (msg, True)
            dup_at = at + self._latency()
            self._schedule(dup_at, partial(deliver, self, session, session.epoch, dup_token),
                           MESSAGE)

    def _deliver(self, session: _Session, epoch: int, token: int) -> None:
        if session.epoch != epoch:
            return  # the connection this was sent on is gone; _cut accounted for it
        msg, _is_dup = session.inflight.pop(token)
        self._delivered += 1
        observers = self._delivery_observers
        if observers:
            now = self.scheduler.now
            client_id = session.client_id
            for observer in observers:
                observer.on_deliver(client_id, msg, now)
        session.params.on_message(msg)

    def _lost(self, client_id: str | None, msg: Message, reason: LossReason) -> None:
        self._losses[reason] += 1
        now = self.scheduler.now
        for observer in self._observers:
            observer.on_lost(client_id, msg, now, reason)

    # ---------------------------------------------------------------------- the tries

    def _match(self, topic: str) -> Route:
        """Every (session, granted QoS) whose filter matches ``topic``."""
        levels = topic.split("/")
        depth = len(levels)
        leading_wildcards_allowed = not topic.startswith("$")
        hits: list[dict[str, int]] = []
        stack: list[tuple[_SubNode, int]] = [(self._sub_root, 0)]
        while stack:
            node, index = stack.pop()
            children = node.children
            if index == depth:
                if node.subscribers:
                    hits.append(node.subscribers)
                hash_node = children.get("#")  # 'a/#' matches 'a'
                if hash_node is not None and hash_node.subscribers:
                    hits.append(hash_node.subscribers)
                continue
            if index or leading_wildcards_allowed:
                hash_node = children.get("#")
                if hash_node is not None and hash_node.subscribers:
                    hits.append(hash_node.subscribers)
                plus_node = children.get("+")
                if plus_node is not None:
                    stack.append((plus_node, index + 1))
            exact = children.get(levels[index])
            if exact is not None:
                stack.append((exact, index + 1))
        sessions = self._sessions
        if self._copy_per_subscription:
            return tuple((sessions[client_id], qos) for found in hits for client_id, qos in found.items())
        merged: dict[str, int] = {}
        for found in hits:
            for client_id, qos in found.items():
                if merged.get(client_id, -1) < qos:
                    merged[client_id] = qos
        return tuple((sessions[client_id], qos) for client_id, qos in merged.items())

    def _trie_remove(self, topic_filter: str, client_id: str) -> None:
        levels = topic_filter.split("/")
        path = [self._sub_root]
        for level in levels:
            child = path[-1].children.get(level)
            if child is None:
                return
            path.append(child)
        path[-1].subscribers.pop(client_id, None)
        for index in range(len(levels) - 1, -1, -1):
            node = path[index + 1]
            if node.subscribers or node.children:
                break
            del path[index].children[levels[index]]
        self._routes.clear()

    def _store_retained(self, msg: Message) -> None:
        if msg.payload:
            node = self._retained_at.get(msg.topic)
            if node is None:
                node = self._retained_root
                for level in msg.topic.split("/"):
                    child = node.children.get(level)
                    if child is None:
                        child = node.children[level] = _RetainedNode()
                    node = child
                if len(self._retained_at) >= _ROUTE_CACHE_LIMIT:
                    self._retained_at.clear()
                self._retained_at[msg.topic] = node
            node.message = msg
            return
        levels = msg.topic.split("/")
        path = [self._retained_root]
        for level in levels:
            next_node = path[-1].children.get(level)
            if next_node is None:
                return
            path.append(next_node)
        path[-1].message = None
        for index in range(len(levels) - 1, -1, -1):
            node = path[index + 1]
            if node.message is not None or node.children:
                break
            del path[index].children[levels[index]]
            self._retained_at.clear()  # the nodes it knew may be out of the trie now

    def _collect_retained(self, filter_levels: list[str], out: list[Message]) -> None:
        depth = len(filter_levels)
        stack: list[tuple[_RetainedNode, int]] = [(self._retained_root, 0)]
        while stack:
            node, index = stack.pop()
            if index == depth:
                if node.message is not None:
                    out.append(node.message)
                continue
            level = filter_levels[index]
            if level == "#":
                # The parent level itself ('a/#' matches 'a'), then the whole subtree.
                if node.message is not None:
                    out.append(node.message)
                subtree = [child for key, child in node.children.items() if index or not key.startswith("$")]
                while subtree:
                    current = subtree.pop()
                    if current.message is not None:
                        out.append(current.message)
                    subtree.extend(current.children.values())
            elif level == "+":
                for key, child in node.children.items():
                    if index or not key.startswith("$"):
                        stack.append((child, index + 1))
            else:
                exact = node.children.get(level)
                if exact is not None:
                    stack.append((exact, index + 1))
