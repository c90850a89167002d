"""The asynchronous camera runtime: any :class:`~controller.node.CameraNode` on any
:class:`~sim.live.bus.Bus` — durable, bounded, and wary of the bus it shares.

Theory of operation
-------------------
The node is pure and synchronous; the runtime is the only thing here that waits. Every call into
the node is synchronous and therefore atomic with respect to everything else on the loop, so
nothing here needs a lock.

* **Receiving.** Each delivery is handed to ``node.on_message(topic, payload, now)``. Before that,
  any internal deadline already due runs (``on_timer``), as the node contract requires. The node
  acks or NACKs every id itself; the runtime additionally catches anything a third-party node
  might raise and NACKs the message, so the handler never dies on bad input.
* **Timing.** One loop timer is armed at ``node.next_deadline()`` and re-armed after every call into
  the node. ``now`` is ``time_origin`` plus the loop's clock since the runtime's start: with
  origin 0 the node sees seconds since the runtime started (virtual seconds under ``looptime``);
  ``bwcsim live`` passes the Unix time at start, so the node's times — and the ``ts`` a
  dispatcher puts on a trigger — are Unix seconds. With ``speed`` N the node's clock runs N
  times faster than the loop's (the scaled clock of :mod:`sim.live.clock`); reconnect delays
  and the other waits of the link stay in wall-clock seconds.
* **Sending.** Everything the node asks to publish goes into an :class:`~sim.live.outbox.Outbox`,
  which a sender task drains while the link is up, with up to ``window`` publications in flight
  at once. A publication leaves the outbox only after the bus accepted it (for QoS 1: after the
  broker's PUBACK), so a link that dies mid-publish loses nothing; the price is that such a
  message may be published twice, which QoS 1 allows anyway.

**Batches and the commit (R-NODROP, R-DURABLE).** With a :class:`~sim.live.store.StateStore`, what
a burst of deliveries and timers causes is held back until it is on disk: each call that may
have changed the node is journaled, each alert and recording metadata is written to the
evidence table, and one commit (fsynced) at the end of the burst releases the burst's
publications to the sender and acknowledges its inbound messages to the broker (with a bus that
acknowledges by hand). The burst ends when the inbox is empty — a callback scheduled with
``call_soon`` runs after the receive loop has taken everything waiting — or after ``batch_max``
messages. Evidence leaves the disk only when the broker has acknowledged it, so alerts and
recording metadata survive outages, floods and ``kill -9``. Now and then (``snapshot_every``
journaled calls, or ``snapshot_interval_s``) the node's state is snapshotted and the journal
before it dropped; after a crash :meth:`CameraRuntime.run` restores the snapshot, replays the
journal, asks the node to :meth:`~controller.node.DurableNode.resume`, publishes the evidence that
was still waiting, and alerts ``restarted`` with the span from the last moment the camera was
known to run (``alive_at``, refreshed every ``heartbeat_s``) to now.

**Inbound: who, how much, and never a retained command (R-ISOLATE, R-BOUND).** For every topic
the node subscribes to, the runtime also subscribes to its per-sender form ``<topic>/+``
(``bwc/cam-1/event/cad-7``) and hands the node the message under the plain topic; the sender
name — vouched for by the broker ACL — keys a per-sender rate limit
(:class:`~sim.live.limits.RateLimiter`): a message beyond it is NACKed ``rate_limited`` before it
costs a decode. Subscriptions ask the broker for no retained messages, and a retained message
that arrives all the same (an MQTT 3.1.1 broker, or a command published with the retain flag) is
NACKed ``retained`` and never reaches the node: a retained ``dock`` must not dock the camera at
every start. The camera also watches its own ``state`` and ``availability``: a live publication
there that is not its own (nor its Last Will) is another client writing the camera's status; the
camera republishes its own value at once, logs and audits it, and alerts ``bus_fault``.

**Outbound: by value under load.** The outbox keeps evidence whatever happens, coalesces retained
status (only the newest ``state`` is worth sending), and sheds NACKs before the replies to real
commands when it is full; everything shed is counted (:attr:`CameraRuntime.stats`, the
``overload`` log line, the audit file).

**Faults are reported and retried, never taken for success.** A subscription or publication
the broker refuses (:class:`~controller.errors.BusRefused`, an MQTT 5 reason code) is logged,
audited and alerted (``bus_fault``, once per episode) and retried with backoff while the link
stays up: a refused team subscription no longer passes in silence. A publication that times out
(:class:`~controller.errors.BusTimeout`) goes back in its place and the link is dropped and
re-established, after which it is sent again. A connection taken over by another client with
the camera's id is alerted too. Only a publication that can never succeed (an invalid topic
from a third-party node) is dropped, logged and counted.

**Losing the broker.** The camera does not stop being a camera when its link drops: the node keeps
getting its timers, a recording of a required activity simply continues (the node holds it, not
the bus), and publications queue in the outbox. Meanwhile the runtime reconnects with
exponential backoff, capped and jittered from a seeded :class:`random.Random` so a fleet does
not reconnect in lock-step and a test sees the same delays every run. It reconnects on the same
client id with ``clean_session=False``, so the QoS 1 triggers the broker queued for it while it was
away are delivered when it comes back. On every (re)connect it subscribes again (harmless when
the session survived, essential when the broker lost it), republishes the retained
``availability: online`` first (its Last Will may have replaced it with ``offline``), then flushes
the outbox in order.

**Audit (R-AUDITFILE).** With an :class:`~sim.live.auditfile.AuditFile`, the node's audit entries
(:meth:`~controller.node.AuditSource.drain_audit`) and the runtime's own (connections, faults,
refusals, restarts, what was shed) go to the hash-chained file, and the chain head is published
retained on ``<prefix>/<cam>/audit`` every ``head_interval_s`` and at every rotation.

**Stopping.** :meth:`CameraRuntime.stop` ends the run cleanly: the node's state is snapshotted,
its ``finish`` output (the open recording, marked ``open``) and the retained
``availability: offline`` are published, then the link is closed with DISCONNECT, so the will does
not fire. A stop that cannot get ``offline`` out in time, and a run that is cancelled or fails,
drop the link instead, so the will says it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import sqlite3
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec

from controller.codec import UNAVAILABLE, Topics, availability, encode, peek_id
from controller.errors import BusError, BusRefused, BusTimeout, SessionTakenOver
from controller.messages import Ack, Alert
from controller.node import CameraNode, Publish
from sim.world.broker import Message

from .auditfile import AuditFile
from .bus import Bus, OptionsBus
from .limits import RateLimit, RateLimiter
from .outbox import Entry, Kind, Outbox
from .store import JournalRecord, StateStore

__all__ = ["Backoff", "CameraRuntime", "Outbox", "RuntimeStats"]

log = logging.getLogger("bwcsim.runtime")

_ack_encoder = msgspec.json.Encoder()
_ack_decoder = msgspec.json.Decoder(Ack)
_head_encoder = msgspec.json.Encoder()
_TIMER_RETRY_S = 1.0
"""How soon a timer whose handler raised is tried again."""
_HOLD_HIGH, _HOLD_LOW = 1.0, 0.5
"""Input is held back when the replies queued leave no room below the outbox limit for the
broker's window of deliveries still on their way (a share of that room: 1.0), and resumed once
they are down to half of it. The hold is for a backlog the outbox cannot take; in normal
operation it never engages, since holding adds the wait of the whole queue to every command."""
_RESTART_LOG_PAGES = 4096
"""A state store log this long (16 MB of 4 KB pages) is made to start again (see
:meth:`~sim.live.store.StateStore.checkpoint_tail`)."""
_UNSTABLE_AFTER = 3
"""Links lost this many times in a row soon after connecting are alerted as unstable."""
_FAULT_ALERT_EVERY_S = 60.0
"""A fault that keeps happening is alerted at most this often (it is logged every time)."""


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log one structured event: ``event`` is the message, ``fields`` travel as ``bwc_fields``."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"bwc_fields": fields})


# ----------------------------------------------------------------------------- backoff


@dataclass(frozen=True)
class Backoff:
    """Exponential reconnect delays: ``initial_s * factor**attempt``, capped at ``max_s``, then
    jittered down by up to ``jitter`` of itself (``0.5``: uniformly in ``[d/2, d]``)."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5
    stable_s: float = 10.0
    """A link that stayed up this long resets the sequence; a shorter one (a broker that accepts
    and drops, two processes fighting over one client id) keeps backing off."""

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.max_s) or self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ValueError(f"invalid backoff {self!r}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry number ``attempt`` (0-based); one draw from ``rng``."""
        exponent = min(attempt, 64)  # beyond this the cap has long been reached
        base = min(self.max_s, self.initial_s * self.factor**exponent)
        return base * (1.0 - self.jitter * rng.random())


_RETRY = Backoff(initial_s=2.0, max_s=60.0, jitter=0.0)
"""How refused publications and subscriptions are retried while the link stays up."""


# ----------------------------------------------------------------------------- runtime


@dataclass
class RuntimeStats:
    """Counters of one runtime, for logs, tests and the benchmark."""

    connects: int = 0
    connection_losses: int = 0
    failed_connects: int = 0
    received: int = 0
    """Deliveries on the node's topics (the camera's own status coming back is not counted)."""
    published: int = 0
    handler_errors: int = 0
    refused_publications: int = 0
    reconnect_delays: list[float] = field(default_factory=list)
    publish_timeouts: int = 0
    refused_subscriptions: int = 0
    retained_refused: int = 0
    rate_limited: int = 0
    foreign_status: int = 0
    session_takeovers: int = 0
    commits: int = 0
    snapshots: int = 0
    store_errors: int = 0
    restored: bool = False
    replayed: int = 0
    input_holds: int = 0
    """Times the camera held back its acknowledgements because replies were piling up."""


class CameraRuntime:
    """Runs one camera node on a bus until :meth:`stop`. See the module docstring."""

    def __init__(
        self,
        node: CameraNode,
        bus: Bus,
        *,
        prefix: str = "bwc",
        client_id: str | None = None,
        backoff: Backoff | None = None,
        seed: int = 0,
        outbox_limit: int = 5000,
        stop_timeout_s: float = 5.0,
        logger: logging.Logger | None = None,
        time_origin: float | Callable[[], float] = 0.0,
        speed: float = 1.0,
        store: StateStore | None = None,
        audit: AuditFile | None = None,
        rate_limit: RateLimit | None = None,
        window: int = 100,
        batch_max: int = 256,
        heartbeat_s: float = 1.0,
        snapshot_every: int = 10_000,
        snapshot_interval_s: float = 60.0,
        head_interval_s: float = 60.0,
    ) -> None:
        self.node = node
        self.bus = bus
        self.topics = Topics(node.camera_id, prefix)
        self.client_id = client_id or f"bwcsim-{node.camera_id}"
        self.backoff = backoff or Backoff()
        self.outbox = Outbox(outbox_limit)
        self.stats = RuntimeStats()
        self.stop_timeout_s = stop_timeout_s
        self.store = store
        self.audit = audit
        self.limiter = RateLimiter(rate_limit) if rate_limit is not None else None
        self.window = max(1, window)
        self.batch_max = max(1, batch_max)
        self.heartbeat_s = heartbeat_s
        self.snapshot_every = snapshot_every
        self.snapshot_interval_s = snapshot_interval_s
        self.head_interval_s = head_interval_s
        self._rng = random.Random(seed)
        self._attempt = 0
        self._log = logger or log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        # What the node's clock reads when the run starts: 0 (seconds since start) or the Unix
        # time, so that a trigger's ``ts`` in Unix seconds can be compared with it (R-LATE).
        # A callable is read at the very moment run() starts, next to the loop's clock, so that
        # a clock such as "speed x Unix time" is not skewed by the time spent getting there.
        self._origin = time_origin
        self.time_origin = 0.0 if callable(time_origin) else time_origin
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed  # node seconds per loop second (sim.live.clock)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._wake_sender = asyncio.Event()
        self._flushed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._connected = asyncio.Event()
        self._will = Message(self.topics.availability, UNAVAILABLE, qos=1, retain=True)
        # Optional node abilities (controller.node.DurableNode / AuditSource).
        self._durable = all(callable(getattr(node, m, None)) for m in ("dump_state", "load_state", "resume"))
        self._drain_node_audit = getattr(node, "drain_audit", None)
        self._acknowledge = getattr(bus, "acknowledge", None)
        self._sub_options = "retained" in inspect.signature(bus.subscribe).parameters
        # Inbound routing: the node's exact topics, and the status topics the camera guards.
        self._node_topics: set[str] = set()
        self._status_topics = (self.topics.state, self.topics.availability)
        self._own_status: dict[str, deque[bytes]] = {
            self.topics.state: deque(maxlen=16),
            self.topics.availability: deque([UNAVAILABLE], maxlen=16),
        }
        self._last_status: dict[str, Publish] = {}
        # Batches (see the module docstring).
        self._staged: list[tuple[Publish, Kind, int | None]] = []
        self._batch = 0
        self._commit_pending = False
        self._send_error: BaseException | None = None
        self._refused_subs: dict[str, str] = {}
        self._fault_alerted: dict[str, float] = {}
        self._last_snapshot = 0.0
        self._last_head = float("-inf")
        self._rotations_seen = 0
        self._reported_counts: Counter[str] = Counter()
        self._releases: deque[tuple[asyncio.Future[None] | None, list[tuple[Publish, Kind, int | None]]]] = \
            deque()
        self._waiting_on: asyncio.Future[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._holding_input = False
        self._input_resumed = asyncio.Event()
        self._unreleased_replies = 0
        self._edge_alerts = 0  # without a store: this run's count of the edge's own alerts
        # How many unacknowledged deliveries the broker may push (MQTT 5 receive maximum).
        self._in_window = int(getattr(getattr(bus, "endpoint", None), "receive_maximum", 0) or 0)

    # ------------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        """Whether the runtime currently has a working link."""
        return self._connected.is_set() and self.bus.is_connected

    @property
    def refused_subscriptions(self) -> dict[str, str]:
        """Subscriptions the broker currently refuses: filter → reason."""
        return dict(self._refused_subs)

    def now(self) -> float:
        """What the node sees: ``time_origin`` plus the seconds since :meth:`run` started, on the
        loop's clock."""
        if self._loop is None:
            return self.time_origin
        return self.time_origin + self.speed * (self._loop.time() - self._t0)

    async def wait_connected(self) -> None:
        """Return once the runtime is connected and subscribed."""
        await self._connected.wait()

    async def wait_flushed(self) -> None:
        """Return once everything the node has published so far reached the broker."""
        await self._flushed.wait()

    def stop(self) -> None:
        """Ask :meth:`run` to finish cleanly (safe to call from a signal handler)."""
        self._stopping.set()
        self._wake_sender.set()

    async def run(self) -> None:
        """Run the camera: restore or start, connect, serve, reconnect on loss, until :meth:`stop`."""
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        if callable(self._origin):
            self.time_origin = self._origin()
        self._power_on()
        self._arm_timer()
        housekeeping = asyncio.create_task(self._housekeeping())
        delay = 0.0
        short_links = 0
        try:
            while not self._stopping.is_set():
                if delay:
                    await self._sleep_unless_stopped(delay)
                    if self._stopping.is_set():
                        break
                try:
                    present = await self.bus.connect(self.client_id, clean_session=False, will=self._will)
                except BusError as exc:
                    self.stats.failed_connects += 1
                    delay = self._next_delay()
                    log_event(self._log, logging.WARNING, "connect_failed", camera=self.node.camera_id,
                              error=str(exc), attempt=self._attempt, retry_in_s=round(delay, 3))
                    continue
                self.stats.connects += 1
                started = self._loop.time()
                try:
                    await self._serve(present)
                except BusError as exc:
                    self._connected.clear()
                    self.stats.connection_losses += 1
                    if isinstance(exc, SessionTakenOver):
                        self.stats.session_takeovers += 1
                        self._fault("session_taken_over", "session_taken_over: another client connected "
                                    f"with the camera's client id {self.client_id!r}")
                    if self.bus.is_connected:
                        # The link is up but unusable (a publish that timed out, say): close it,
                        # or every reconnect attempt would fail with "already connected".
                        with contextlib.suppress(BusError):
                            await self.bus.disconnect(clean=False)
                    if self._loop.time() - started >= self.backoff.stable_s:
                        self._attempt, delay, short_links = 0, 0.0, 0
                    else:
                        delay = self._next_delay()
                        short_links += 1
                        if short_links >= _UNSTABLE_AFTER and not isinstance(exc, SessionTakenOver):
                            # Brokers that close a taken-over link without saying why (Mosquitto
                            # 2.0) leave only this trace of two clients fighting over one id.
                            self._fault("link_unstable", f"link_unstable: lost {short_links} times within "
                                        f"{self.backoff.stable_s:g} s of connecting (another client with "
                                        f"the client id {self.client_id!r}, or a broker dropping it)")
                    log_event(self._log, logging.WARNING, "connection_lost", camera=self.node.camera_id,
                              error=str(exc), queued=len(self.outbox), retry_in_s=round(delay, 3))
                    self._audit_note("connection_lost", {"error": str(exc)})
            await self._shutdown()
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            if self._pool is not None:
                self._pool.shutdown(wait=True)  # no fsync may outlive the store it syncs
                self._pool = None
            self._connected.clear()
            self._cancel_timer()
            if self.bus.is_connected:
                # Cancelled or broken without a clean stop: drop the link so that it does not
                # linger (with its client task) and the will tells the truth about the camera.
                with contextlib.suppress(BusError):
                    await self.bus.disconnect(clean=False)

    def _next_delay(self) -> float:
        delay = self.backoff.delay(self._attempt, self._rng)
        self._attempt += 1
        self.stats.reconnect_delays.append(delay)
        return delay

    # ------------------------------------------------------------------- power on / restore

    def _power_on(self) -> None:
        """Start the node afresh, or restore it from the state directory and resume it."""
        store = self.store
        recovered = store.recover() if store is not None else None
        self._last_snapshot = self.now()
        if recovered is None or recovered.fresh:
            for seq, pub in recovered.evidence if recovered is not None else ():
                self.outbox.push(pub, kind="evidence", key=seq)
            now = self.now()
            pubs = self.node.start(now)
            self._after_call("start", now, "", b"", pubs)
            self._commit()
            return
        if recovered.alive_at is not None and self.time_origin < recovered.alive_at and self.time_origin == 0:
            # A run clock restarts at zero; the node's restored times must not go backwards.
            self.time_origin = recovered.alive_at
        now = self.now()
        down_since = recovered.alive_at if recovered.alive_at is not None else now
        for seq, pub in recovered.evidence:
            self.outbox.push(pub, kind="evidence", key=seq)
        if self._durable:
            pubs = self._restore(recovered.snapshot, recovered.journal, down_since, now)
            self.stats.restored = True
        else:
            log_event(self._log, logging.WARNING, "state_not_restored", camera=self.node.camera_id,
                      reason="the controller has no dump_state/load_state/resume")
            pubs = self.node.start(now)
        self._after_call("resume", now, "", b"", pubs, journal=False)
        self._stage(self._alert(Alert(kind="restarted", at=now, span=(down_since, now))))
        self._audit_note("restarted", {"down_since": down_since, "clean_stop": recovered.clean_stop,
                                       "replayed": len(recovered.journal)})
        log_event(self._log, logging.WARNING if not recovered.clean_stop else logging.INFO, "restarted",
                  camera=self.node.camera_id, down_since=down_since, down_s=round(now - down_since, 3),
                  clean_stop=recovered.clean_stop, replayed=len(recovered.journal),
                  evidence_waiting=len(recovered.evidence))
        if self._durable and store is not None:
            self._snapshot(now)  # resume changed the node: keep that, so it is never replayed
        self._commit()

    def _restore(self, snapshot: bytes | None, journal: list[JournalRecord], down_since: float,
                 now: float) -> list[Publish]:
        node: Any = self.node
        if snapshot is not None:
            node.load_state(snapshot)
        for record in journal:
            # Replayed calls were answered and audited the first time: their output is dropped.
            with contextlib.suppress(Exception):
                if record.kind == "start":
                    node.start(record.at)
                elif record.kind == "message":
                    node.on_message(record.topic, record.payload, record.at)
                else:
                    node.on_timer(record.at)
        self.stats.replayed = len(journal)
        if self._drain_node_audit is not None:
            self._drain_node_audit()
        pubs: list[Publish] = node.resume(down_since, now)
        return pubs

    # ------------------------------------------------------------------------ one link

    def _subscriptions(self) -> list[tuple[str, dict[str, bool]]]:
        """What to subscribe to: the node's topics, their per-sender forms, the guarded status."""
        out: list[tuple[str, dict[str, bool]]] = []
        self._node_topics = set()
        for topic_filter in self.node.subscriptions():
            out.append((topic_filter, {"retained": False}))
            if "+" not in topic_filter and "#" not in topic_filter:
                self._node_topics.add(topic_filter)
                out.append((f"{topic_filter}/+", {"retained": False}))
        # The status topics keep the plain retain flag: a stored value arrives once, flagged, at
        # subscribe time (and is ignored); another client's live write arrives unflagged.
        out += [(topic, {"no_local": True}) for topic in self._status_topics]
        return out

    async def _subscribe(self, topic_filter: str, options: dict[str, bool]) -> bool:
        """Subscribe; a refusal is a reported fault (``False``), a lost link raises."""
        try:
            if self._sub_options:
                await cast(OptionsBus, self.bus).subscribe(topic_filter, 1, **options)
            else:
                await self.bus.subscribe(topic_filter, 1)
        except BusRefused as exc:
            self.stats.refused_subscriptions += 1
            first = topic_filter not in self._refused_subs
            self._refused_subs[topic_filter] = str(exc)
            log_event(self._log, logging.ERROR, "subscribe_refused", camera=self.node.camera_id,
                      topic=topic_filter, error=str(exc))
            if first:
                self._fault(f"subscribe:{topic_filter}", f"subscribe_refused: {topic_filter} ({exc})")
            return False
        if self._refused_subs.pop(topic_filter, None) is not None:
            log_event(self._log, logging.INFO, "subscribe_restored", camera=self.node.camera_id,
                      topic=topic_filter)
            self._audit_note("subscribe_restored", {"topic": topic_filter})
        return True

    async def _serve(self, session_present: bool) -> None:
        """Serve one connection: returns on stop, raises ``BusError`` when the link is lost."""
        self._send_error = None
        wanted = self._subscriptions()
        for topic_filter, options in wanted:
            await self._subscribe(topic_filter, options)
        # The will may have replaced the retained availability while we were away.
        online = availability(self.topics, online=True)
        self._note_status(online)
        self.outbox.push(online, first=True, kind="status")
        self._flushed.clear()
        self._connected.set()
        protocol = getattr(self.bus, "protocol", None)
        log_event(self._log, logging.INFO, "connected", camera=self.node.camera_id,
                  client_id=self.client_id, session_present=session_present, queued=len(self.outbox),
                  **({"mqtt": protocol} if protocol else {}),
                  **({"refused": sorted(self._refused_subs)} if self._refused_subs else {}))
        self._audit_note("connected", {"client_id": self.client_id, "session_present": session_present,
                                       "refused": sorted(self._refused_subs)})
        sender = asyncio.create_task(self._send_loop())
        receiver = asyncio.create_task(self._receive_loop())
        stopper = asyncio.create_task(self._stopping.wait())
        resubscriber = asyncio.create_task(self._resubscribe_loop(wanted))
        tasks = {sender, receiver, stopper, resubscriber}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done and not sender.done():
                # Stop taking input, but let the sender finish what it has (it returns once the
                # outbox is empty), so nothing in flight is cut off and published twice.
                receiver.cancel()
                self._commit()
                with contextlib.suppress(TimeoutError, BusError):
                    await asyncio.wait_for(asyncio.shield(sender), self.stop_timeout_s)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.outbox.release_all()
        if stopper in done:
            return
        for task in (receiver, sender, resubscriber):
            if task in done and not task.cancelled():
                error = task.exception()
                if error is not None:
                    raise error
        raise BusError("message stream ended")

    async def _resubscribe_loop(self, wanted: list[tuple[str, dict[str, bool]]]) -> None:
        """Retry refused subscriptions, backing off, for as long as the link lasts."""
        attempt = 0
        while True:
            await asyncio.sleep(_RETRY.delay(attempt, self._rng) if self._refused_subs else self.heartbeat_s)
            if not self._refused_subs:
                attempt = 0
                continue
            attempt += 1
            for topic_filter, options in wanted:
                if topic_filter in self._refused_subs:
                    await self._subscribe(topic_filter, options)

    # ------------------------------------------------------------------------ sending

    async def _send_loop(self) -> None:
        """Publish from the outbox with up to ``window`` in flight; returns when the outbox is
        empty and a stop was asked for; raises when the link is lost."""
        outbox, wake = self.outbox, self._wake_sender
        flying: set[asyncio.Task[None]] = set()

        def landed(task: asyncio.Task[None]) -> None:
            flying.discard(task)
            wake.set()

        try:
            while True:
                wake.clear()
                if self._send_error is not None:
                    error, self._send_error = self._send_error, None
                    raise error
                while len(flying) < self.window and (entry := outbox.take(self.now())) is not None:
                    task = asyncio.create_task(self._publish(entry))
                    flying.add(task)
                    task.add_done_callback(landed)
                if not flying and len(outbox) == 0:
                    self._flushed.set()
                    if self._stopping.is_set():
                        return
                retry = outbox.next_retry() if not flying else None
                if retry is None:
                    await wake.wait()
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), max(0.0, retry - self.now()))
        finally:
            for task in list(flying):
                task.cancel()
            if flying:
                await asyncio.gather(*flying, return_exceptions=True)

    async def _publish(self, entry: Entry) -> None:
        """Publish one entry and tell the outbox how it went (see the module docstring)."""
        pub = entry.pub
        try:
            await self.bus.publish(pub.topic, pub.payload, qos=pub.qos, retain=pub.retain)
        except asyncio.CancelledError:
            self.outbox.release(entry)
            raise
        except BusRefused as exc:
            # The broker said no (not authorised, quota): a fault to report, and to retry.
            self.stats.refused_publications += 1
            self.outbox.release(entry, retry_at=self.now() + _RETRY.delay(0, self._rng))
            log_event(self._log, logging.ERROR, "publish_refused", camera=self.node.camera_id,
                      topic=pub.topic, error=str(exc), retry=True)
            if pub.topic != self.topics.alert:  # an alert about a refused alert would be refused too
                self._fault(f"publish:{pub.topic}", f"publish_refused: {pub.topic} ({exc})")
        except BusTimeout as exc:
            self.stats.publish_timeouts += 1
            self.outbox.release(entry)
            log_event(self._log, logging.WARNING, "publish_timeout", camera=self.node.camera_id,
                      topic=pub.topic, error=str(exc))
            self._send_error = BusError(f"publish on {pub.topic} timed out; reconnecting to send it again")
        except BusError as exc:
            if not self.bus.is_connected:
                self.outbox.release(entry)
                self._send_error = exc
            else:
                # Refused for good while the link stays up (an invalid topic from a third-party
                # node, an oversized payload): sending it again would fail again.
                self.outbox.discard(entry)
                self.stats.refused_publications += 1
                log_event(self._log, logging.ERROR, "publish_refused", camera=self.node.camera_id,
                          topic=pub.topic, error=str(exc), retry=False)
        else:
            self.outbox.sent(entry)
            self.stats.published += 1
            if self._holding_input:
                self._acknowledge_input()
            if entry.key is not None and self.store is not None:
                self.store.delivered(entry.key)
            self._fault_alerted.pop(f"publish:{pub.topic}", None)

    # ------------------------------------------------------------------------ receiving

    async def _receive_loop(self) -> None:
        async for msg in self.bus.messages():
            if self._acknowledge is not None and self._replies_queued() >= self._hold_mark():
                self._commit()  # decides the hold now, not after the whole burst
            if self._holding_input:
                # Replies are piling up: this message waits (in order) until they drain, rather
                # than having its own ack shed. Brokers that honour the receive maximum stop
                # sending meanwhile; others fill the inbox, bounded by their own queue.
                await self._input_resumed.wait()
            self._handle(msg)

    def _route(self, topic: str) -> tuple[str, str] | None:
        """The node topic and the sender of a delivery; ``None`` for a guarded status topic."""
        if topic in self._node_topics:
            return topic, ""
        parent, _, sender = topic.rpartition("/")
        if parent in self._node_topics:
            return parent, sender
        if topic in self._status_topics:
            return None
        return topic, ""  # a wildcard subscription of a third-party node

    def _handle(self, msg: Message) -> None:
        now = self.now()
        route = self._route(msg.topic)
        if route is None:
            self._check_status(msg, now)
            return
        self.stats.received += 1
        topic, sender = route
        if msg.retain:
            self.stats.retained_refused += 1
            msg_id = peek_id(msg.payload)
            self._audit_note("refused", {"id": msg_id, "error": "retained", "sender": sender, "topic": topic})
            self._nack(msg_id, "retained: a command must not be a retained message")
            return
        if self.limiter is not None and not self.limiter.allow(sender, now):
            self.stats.rate_limited += 1
            if self.outbox.count("cheap") < self.outbox.cheap_limit:
                self._nack(peek_id(msg.payload), "rate_limited")
            else:  # overloaded: not even the NACK (nor the parse it needs) is worth it
                self.outbox.shed["cheap"] += 1
                self.outbox.dropped += 1
            self._batch_done()
            return
        try:
            deadline = self.node.next_deadline()
        except Exception:
            deadline = None  # _arm_timer below meets the same error and leaves the timer off
        if deadline is not None and deadline <= now:
            # A timer handler that raises must not take the message down with it.
            self._run_timer(now)
        try:
            pubs = self.node.on_message(topic, msg.payload, now)
        except Exception as exc:  # a third-party node broke its contract; the camera lives on
            self.stats.handler_errors += 1
            log_event(self._log, logging.ERROR, "handler_error", camera=self.node.camera_id,
                      topic=msg.topic, error=f"{type(exc).__name__}: {exc}")
            self._nack(peek_id(msg.payload), f"internal_error: {type(exc).__name__}")
        else:
            self._after_call("message", now, topic, msg.payload, pubs)
        self._arm_timer()

    def _nack(self, msg_id: Any, error: str) -> None:
        nack = Ack(id=msg_id, ok=False, error=error)
        self._stage(Publish(self.topics.ack, _ack_encoder.encode(nack), False, 1), kind="cheap")
        self._batch_done()

    def _check_status(self, msg: Message, now: float) -> None:
        """A publication on the camera's own status topic: its own (fine) or another client's."""
        if msg.retain:
            return  # a stored value a (re)subscription brought: the camera's own fresh one follows
        if msg.payload in self._own_status[msg.topic]:
            # The camera's own publication coming back (no-local is MQTT 5 only), or its Last
            # Will queued in its session while it was away: whoever wrote it, it is not true now.
            if msg.topic == self.topics.availability and msg.payload != b"online" and self.connected:
                self._stage(availability(self.topics, online=True), kind="status")
                self._batch_done()
            return
        self.stats.foreign_status += 1
        log_event(self._log, logging.WARNING, "status_overwritten", camera=self.node.camera_id,
                  topic=msg.topic, payload=msg.payload[:64].decode("utf-8", "replace"))
        self._fault(f"status:{msg.topic}", f"status_overwritten: {msg.topic}",
                    extra={"payload": msg.payload[:256].decode("utf-8", "replace")})
        own = self._last_status.get(msg.topic)
        if msg.topic == self.topics.availability:
            own = availability(self.topics, online=True)
        if own is not None:
            self._stage(own, kind="status")
        self._batch_done()

    # ---------------------------------------------------------------------- the node

    def _on_timer(self) -> None:
        due = self._timer_at
        self._timer = self._timer_at = None
        now = max(self.now(), due if due is not None else 0.0)
        ok = self._run_timer(now)
        # A handler that raised keeps its deadline; retrying it every millisecond would spin
        # the loop and flood the log, so a failed timer is retried a second later.
        self._arm_timer(after=now, retry_s=1e-3 if ok else _TIMER_RETRY_S * self.speed)

    def _run_timer(self, now: float) -> bool:
        """The node's ``on_timer``; ``False`` (logged and counted) if it raised."""
        try:
            pubs = self.node.on_timer(now)
        except Exception as exc:
            self.stats.handler_errors += 1
            log_event(self._log, logging.ERROR, "timer_error", camera=self.node.camera_id,
                      error=f"{type(exc).__name__}: {exc}")
            return False
        self._after_call("timer", now, "", b"", pubs)
        return True

    def _arm_timer(self, after: float | None = None, retry_s: float = 1e-3) -> None:
        try:
            deadline = self.node.next_deadline()
        except Exception:
            deadline = None
        if deadline is not None and after is not None and deadline <= after:
            # A node that keeps asking for a time it was just woken for would spin the loop.
            deadline = after + retry_s
        if deadline == self._timer_at:
            return
        self._cancel_timer()
        if deadline is not None and self._loop is not None:
            self._timer_at = deadline
            loop_at = self._t0 + (deadline - self.time_origin) / self.speed
            self._timer = self._loop.call_at(loop_at, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None

    def _after_call(self, kind: str, now: float, topic: str, payload: bytes, pubs: list[Publish],
                    *, journal: bool = True) -> None:
        """Journal a call into the node if it may have changed it, copy its audit entries to the
        file, and stage what it published."""
        store = self.store
        if store is not None and self._durable and journal and (kind != "message" or _changes_state(
                pubs, self.topics.ack)):
            try:
                store.journal(kind, now, topic, payload)  # type: ignore[arg-type]
            except sqlite3.Error as exc:
                self._store_failed(exc)
        if self._drain_node_audit is not None and self.audit is not None:
            for at, entry_kind, data in self._drain_node_audit():
                self.audit.append(at, entry_kind, data)
        for pub in pubs:
            self._stage(pub)
        self._batch_done()

    # --------------------------------------------------------------- staging and committing

    def _kind(self, pub: Publish) -> Kind:
        topics = self.topics
        if pub.topic in (topics.alert, topics.recording):
            return "evidence"
        if pub.retain:
            return "status"
        if pub.topic == topics.ack and not _is_ok(pub.payload):
            return "cheap"
        return "reply"

    def _stage(self, pub: Publish, kind: Kind | None = None) -> None:
        kind = kind or self._kind(pub)
        key = None
        if kind == "evidence" and self.store is not None:
            try:
                key = self.store.add_evidence(pub)
            except sqlite3.Error as exc:
                self._store_failed(exc)
        if pub.retain and pub.topic in self._own_status:
            self._note_status(pub)
        if kind == "reply":
            self._unreleased_replies += 1
        self._staged.append((pub, kind, key))

    def _note_status(self, pub: Publish) -> None:
        self._own_status[pub.topic].append(pub.payload)
        self._last_status[pub.topic] = pub

    def _batch_done(self) -> None:
        """One call's worth is staged: commit at the end of the burst, or now if it is long."""
        self._batch += 1
        if self._batch >= self.batch_max:
            self._commit()
        elif not self._commit_pending and self._loop is not None:
            self._commit_pending = True
            self._loop.call_soon(self._commit)

    def _commit(self) -> None:
        """Make the batch durable, then release its publications and acknowledge its input.

        The commit itself is quick (the log is written, not fsynced). A batch that holds evidence
        must also reach stable storage before it is released: that fsync runs in a worker
        thread, so the loop goes on receiving meanwhile, and batches are released in order, each
        once its own fsync (if any) is done.
        """
        self._commit_pending = False
        self._batch = 0
        if self.audit is not None:
            # Before the commit: a crash between the two then repeats an audit entry (the
            # unacknowledged message comes again) rather than losing one.
            self.audit.flush()
        store = self.store
        synced: asyncio.Future[None] | None = None
        if store is not None and store.pending:
            try:
                if store.commit(alive_at=self.now(), sync=False):
                    synced = self._fsync_store()
                self.stats.commits += 1
            except sqlite3.Error as exc:
                self._store_failed(exc)
        staged, self._staged = self._staged, []
        if staged or synced is not None:
            self._releases.append((synced, staged))
        self._release_ready()
        self._acknowledge_input()

    def _fsync_store(self) -> asyncio.Future[None] | None:
        """Fsync what the store committed so far, off the loop; ``None`` if there is nothing."""
        assert self.store is not None and self._loop is not None
        fd = self.store.sync_target()
        if fd is None:
            return None
        return self._loop.run_in_executor(self._fsync_pool(), _fsync_quietly, fd)

    def _fsync_pool(self) -> ThreadPoolExecutor:
        # One thread: fsyncs are done in the order they were asked for.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bwcsim-fsync")
        return self._pool

    def _release_ready(self) -> None:
        """Hand the committed batches to the sender, in order, as far as their fsyncs allow."""
        released = False
        while self._releases:
            synced, staged = self._releases[0]
            if synced is not None and not synced.done():
                if self._waiting_on is not synced:
                    self._waiting_on = synced
                    synced.add_done_callback(lambda _done: self._release_ready())
                break
            self._releases.popleft()
            for pub, kind, key in staged:
                if kind == "reply":
                    self._unreleased_replies -= 1
                self.outbox.push(pub, kind=kind, key=key)
            released = released or bool(staged)
        if released:
            self._flushed.clear()
            self._wake_sender.set()

    def _replies_queued(self) -> int:
        """Replies to real commands not yet sent: in the outbox, or staged and not released."""
        return self.outbox.count("reply") + self._unreleased_replies

    def _hold_mark(self) -> float:
        # Up to the broker's window of unacknowledged deliveries may still arrive after the
        # hold begins: the high water mark leaves room for it below the outbox limit.
        return max(1.0, min(self.outbox.limit * _HOLD_HIGH, self.outbox.limit - self._in_window))

    async def _settle(self) -> None:
        """Wait until every committed batch has been released."""
        while self._releases:
            synced = self._releases[-1][0]
            if synced is not None:
                with contextlib.suppress(Exception):
                    await synced
            self._release_ready()
            await asyncio.sleep(0)

    def _acknowledge_input(self) -> None:
        """Acknowledge what was handled to the broker — unless the replies to earlier messages
        are piling up: then the camera holds its acknowledgements (between the high and the low
        water mark of the outbox), the broker stops sending at its receive maximum, and a
        backlog of real commands waits at the broker instead of having its acks shed here."""
        if self._acknowledge is None or not self.bus.is_connected:
            return
        replies = self._replies_queued()
        high = self._hold_mark()
        if self._holding_input:
            if replies > high * _HOLD_LOW:
                return
            self._holding_input = False
            self._input_resumed.set()
        elif replies >= high:
            self._holding_input = True
            self._input_resumed.clear()
            self.stats.input_holds += 1
            return
        self._acknowledge()

    def _store_failed(self, exc: sqlite3.Error) -> None:
        # A full disk must not stop the camera recording: it goes on, undurably, and says so.
        self.stats.store_errors += 1
        log_event(self._log, logging.ERROR, "store_error", camera=self.node.camera_id, error=str(exc))

    # ---------------------------------------------------------------------- housekeeping

    async def _housekeeping(self) -> None:
        """Every ``heartbeat_s``: keep ``alive_at`` fresh and the journal on stable storage,
        snapshot when due, publish the audit head when due (and after a rotation), and report
        what was shed or refused since the last time."""
        while True:
            await asyncio.sleep(self.heartbeat_s)
            now = self.now()
            store = self.store
            if store is not None and self._durable and store.journal_since_snapshot and (
                    store.journal_since_snapshot >= self.snapshot_every
                    or now - self._last_snapshot >= self.snapshot_interval_s):
                self._snapshot(now)
            if store is not None:
                with contextlib.suppress(sqlite3.Error):
                    store._begin()  # the heartbeat itself: alive_at moves on
            self._commit()
            if store is not None:
                synced = self._fsync_store()  # the journal of the last second, on stable storage
                if synced is not None:
                    await synced
                await self._checkpoint(store)
            audit = self.audit
            if audit is not None and (now - self._last_head >= self.head_interval_s
                                      or audit.rotations != self._rotations_seen):
                await self._publish_head(now)
            self._report_overload()

    async def _checkpoint(self, store: StateStore) -> None:
        """Keep the store's log short without stalling the loop (see :mod:`sim.live.store`)."""
        assert self._loop is not None
        try:
            pages = await self._loop.run_in_executor(self._fsync_pool(), store.checkpoint)
            if pages >= _RESTART_LOG_PAGES:
                store.checkpoint_tail()
        except sqlite3.Error as exc:
            self._store_failed(exc)

    def _snapshot(self, now: float) -> None:
        assert self.store is not None
        try:
            self.store.snapshot(self.node.dump_state(), now)  # type: ignore[attr-defined]
            self.stats.snapshots += 1
            self._last_snapshot = now
        except sqlite3.Error as exc:
            self._store_failed(exc)

    async def _publish_head(self, now: float) -> None:
        """Publish the audit chain's head — only once it is on stable storage."""
        audit = self.audit
        assert audit is not None and self._loop is not None
        audit.flush()
        record, rotations = audit.head_record(), audit.rotations
        await self._loop.run_in_executor(self._fsync_pool(), _fsync_quietly, audit.fileno())
        if audit.rotations != rotations:
            return  # rotated meanwhile (and synced by the rotation): the next heartbeat publishes
        self._rotations_seen = rotations
        self._last_head = now
        pub = Publish(self.topics.audit, _head_encoder.encode(record), True, 1)
        self.outbox.push(pub, kind="status")
        self._wake_sender.set()

    def _report_overload(self) -> None:
        counts: Counter[str] = Counter({f"shed_{k}": v for k, v in self.outbox.shed.items()})
        counts.update(coalesced=self.outbox.coalesced, rate_limited=self.stats.rate_limited,
                      retained_refused=self.stats.retained_refused)
        if self.limiter is not None:
            counts.update({f"rate_limited:{s or '(bare topic)'}": n for s, n in self.limiter.refused.items()})
        new = {k: v - self._reported_counts[k] for k, v in counts.items() if v != self._reported_counts[k]}
        if not new or set(new) == {"coalesced"}:
            return
        self._reported_counts = counts
        log_event(self._log, logging.WARNING, "overload", camera=self.node.camera_id, since_last=new,
                  queued=len(self.outbox))
        self._audit_note("overload", new)

    # ------------------------------------------------------------------------- faults

    def _alert(self, alert: Alert) -> Publish:
        """An alert of the live edge, named ``<camera>-e<n>`` (``n`` kept in the state store, so a
        restart goes on counting rather than reusing an id)."""
        number = None
        if self.store is not None:
            try:
                number = self.store.count_edge_alert()
            except sqlite3.Error as exc:
                self._store_failed(exc)
        if number is None:
            self._edge_alerts += 1
            number = self._edge_alerts
        else:
            self._edge_alerts = number
        alert = msgspec.structs.replace(alert, alert_id=f"{self.node.camera_id}-e{number}")
        return encode(alert, self.topics)

    def _fault(self, key: str, detail: str, extra: dict[str, Any] | None = None) -> None:
        """Report a fault of the live edge: audit it, and alert ``bus_fault`` (rate-limited)."""
        now = self.now()
        self._audit_note("bus_fault", {"detail": detail, **(extra or {})})
        last = self._fault_alerted.get(key)
        if last is not None and now - last < _FAULT_ALERT_EVERY_S:
            return
        self._fault_alerted[key] = now
        self._stage(self._alert(Alert(kind="bus_fault", at=now, detail=detail)))
        self._batch_done()

    def _audit_note(self, kind: str, data: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.append(self.now(), kind, data)

    # ------------------------------------------------------------------------ helpers

    async def _sleep_unless_stopped(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def _shutdown(self) -> None:
        """Clean stop: keep the state, publish the open recording and ``offline``; DISCONNECT."""
        self._cancel_timer()
        now = self.now()
        self._commit()
        if self.store is not None and self._durable:
            # Kept as it was before `finish`: a restart resumes the recording, it is not closed.
            self._snapshot(now)
            self._commit()
        try:
            pubs = self.node.finish(now)
        except Exception as exc:
            log_event(self._log, logging.ERROR, "finish_error", camera=self.node.camera_id, error=str(exc))
            pubs = []
        self._after_call("finish", now, "", b"", pubs, journal=False)
        self._audit_note("stopping", {})
        offline = availability(self.topics, online=False)
        self._note_status(offline)
        self._stage(offline, kind="status")
        self._commit()
        await self._settle()
        if self.store is not None:
            with contextlib.suppress(sqlite3.Error):
                self.store.mark_stopped(now)
        if self.bus.is_connected:
            try:
                await asyncio.wait_for(self._send_loop(), self.stop_timeout_s)
            except (BusError, TimeoutError) as exc:
                log_event(self._log, logging.WARNING, "stop_incomplete", camera=self.node.camera_id,
                          error=str(exc) or type(exc).__name__, unsent=len(self.outbox))
            # A clean DISCONNECT cancels the will; do that only once "offline" is out, else the
            # broker would go on showing the camera "online".
            with contextlib.suppress(BusError):
                await self.bus.disconnect(clean=len(self.outbox) == 0)
        self._connected.clear()
        if self.store is not None:
            with contextlib.suppress(sqlite3.Error):
                self.store.commit(alive_at=now)  # forget the evidence that did get out
                self.store.mark_stopped(now)
        if self.audit is not None:
            self.audit.sync()
        log_event(self._log, logging.INFO, "stopped", camera=self.node.camera_id, unsent=len(self.outbox))


def _fsync_quietly(fd: int) -> None:
    """fsync in a worker thread; a descriptor closed meanwhile (the camera stopping) is no error."""
    with contextlib.suppress(OSError):
        os.fsync(fd)


def _is_ok(payload: bytes) -> bool:
    try:
        return _ack_decoder.decode(payload).ok
    except (msgspec.DecodeError, msgspec.ValidationError):
        return True  # not an ack we can read: treat it as a reply worth keeping


def _changes_state(pubs: list[Publish], ack_topic: str) -> bool:
    """Whether a delivery may have changed the node: anything but NACKs came out of it."""
    return any(p.topic != ack_topic or _is_ok(p.payload) for p in pubs)
