"""The asynchronous camera runtime: any :class:`~controller.node.CameraNode` on any
:class:`~sim.live.bus.Bus`.

Theory of operation
-------------------
The node is pure and synchronous; the runtime is the only thing here that waits. It owns three
activities that share one event loop and never a lock, because every call into the node is
synchronous and therefore atomic with respect to the others:

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
* **Sending.** Everything the node asks to publish goes into an :class:`Outbox`, which a sender task
  drains while the link is up. A publication leaves the outbox only after the bus accepted it
  (for QoS 1: after the broker's PUBACK), so a link that dies mid-publish loses nothing; the
  price is that such a message may be published twice, which QoS 1 allows anyway.

**Losing the broker.** The camera does not stop being a camera when its link drops: the node keeps
getting its timers, a recording of a required activity simply continues (the node holds it, not
the bus), and publications queue in the outbox. The outbox is bounded (oldest non-retained
publications are dropped first, and counted) and retained topics are last-value-wins: only the
newest ``state`` is worth sending after an outage. Meanwhile the runtime reconnects with
exponential backoff, capped and jittered from a seeded :class:`random.Random` so a fleet does
not reconnect in lock-step and a test sees the same delays every run. It reconnects on the same
client id with ``clean_session=False``, so the QoS 1 triggers the broker queued for it while it was
away are delivered when it comes back. On every (re)connect it subscribes again (harmless when
the session survived, essential when the broker lost it), republishes the retained
``availability: online`` first (its Last Will may have replaced it with ``offline``), then flushes
the outbox in order.

**Stopping.** :meth:`CameraRuntime.stop` ends the run cleanly: the node's ``finish`` output (the
open recording, marked ``open``) and the retained ``availability: offline`` are published, then the
link is closed with DISCONNECT, so the will does not fire. A stop that cannot get ``offline`` out
in time, and a run that is cancelled or fails, drop the link instead, so the will says it.
A publication the broker refuses while the link stays up (an invalid topic from a third-party
node) is dropped and logged, and a link that is up but unusable (a refused subscription) is
closed before the next attempt: retrying either on the same link would never succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from controller.codec import UNAVAILABLE, Topics, availability, peek_id
from controller.errors import BusError
from controller.messages import Ack
from controller.node import CameraNode, Publish
from sim.world.broker import Message

from .bus import Bus

__all__ = ["Backoff", "CameraRuntime", "Outbox", "RuntimeStats"]

log = logging.getLogger("bwcsim.runtime")

_ack_encoder = msgspec.json.Encoder()
_TIMER_RETRY_S = 1.0
"""How soon a timer whose handler raised is tried again."""


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


# ------------------------------------------------------------------------------ outbox


class _Entry:
    __slots__ = ("done", "pub")

    def __init__(self, pub: Publish) -> None:
        self.pub = pub
        self.done = False


class Outbox:
    """Publications waiting for the broker: FIFO, bounded, retained topics last-value-wins.

    ``limit`` bounds the pending publications; when it is reached the oldest non-retained one is
    dropped (counted in :attr:`dropped`). A retained publication replaces any pending one on the
    same topic and takes its place at the end of the queue, after what caused it.
    """

    def __init__(self, limit: int = 1000) -> None:
        if limit < 1:
            raise ValueError("outbox limit must be >= 1")
        self.limit = limit
        self.dropped = 0
        self._entries: deque[_Entry] = deque()
        self._retained: dict[str, _Entry] = {}
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def push(self, pub: Publish, *, first: bool = False) -> None:
        """Queue ``pub`` (at the head with ``first``)."""
        if pub.retain:
            old = self._retained.get(pub.topic)
            if old is not None:
                self._finish(old)
        elif self._live >= self.limit:
            self._drop_oldest()
        entry = _Entry(pub)
        if first:
            self._entries.appendleft(entry)
        else:
            self._entries.append(entry)
        self._live += 1
        if pub.retain:
            self._retained[pub.topic] = entry
        self._compact()

    def head(self) -> _Entry | None:
        """The oldest pending publication (it stays queued until :meth:`sent`)."""
        entries = self._entries
        while entries and entries[0].done:
            entries.popleft()
        return entries[0] if entries else None

    def sent(self, entry: _Entry) -> None:
        """``entry`` reached the broker."""
        self._finish(entry)

    def discard(self, entry: _Entry) -> None:
        """``entry`` was refused by the broker (not counted in :attr:`dropped`)."""
        self._finish(entry)

    def pending(self) -> list[Publish]:
        """What is queued, oldest first."""
        return [e.pub for e in self._entries if not e.done]

    def _finish(self, entry: _Entry) -> None:
        if not entry.done:
            entry.done = True
            self._live -= 1
            if self._retained.get(entry.pub.topic) is entry:
                del self._retained[entry.pub.topic]

    def _compact(self) -> None:
        # Superseded and dropped entries stay in the deque until the sender pops them at the
        # head; while the link is down nothing sends, so during a long outage they would pile
        # up without bound. Rebuilding once they outnumber the live ones costs O(1) per push.
        entries = self._entries
        while entries and entries[0].done:
            entries.popleft()
        if len(entries) > 2 * self._live + 1:
            self._entries = deque(e for e in entries if not e.done)

    def _drop_oldest(self) -> None:
        entries = self._entries
        while entries and entries[0].done:
            entries.popleft()
        for entry in entries:
            if not entry.done and not entry.pub.retain:
                self._finish(entry)
                self.dropped += 1
                return


# ----------------------------------------------------------------------------- runtime


@dataclass
class RuntimeStats:
    """Counters of one runtime, for logs, tests and the benchmark."""

    connects: int = 0
    connection_losses: int = 0
    failed_connects: int = 0
    received: int = 0
    published: int = 0
    handler_errors: int = 0
    refused_publications: int = 0
    reconnect_delays: list[float] = field(default_factory=list)


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
        outbox_limit: int = 1000,
        stop_timeout_s: float = 5.0,
        logger: logging.Logger | None = None,
        time_origin: float | Callable[[], float] = 0.0,
        speed: float = 1.0,
    ) -> None:
        self.node = node
        self.bus = bus
        self.topics = Topics(node.camera_id, prefix)
        self.client_id = client_id or f"bwcsim-{node.camera_id}"
        self.backoff = backoff or Backoff()
        self.outbox = Outbox(outbox_limit)
        self.stats = RuntimeStats()
        self.stop_timeout_s = stop_timeout_s
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

    # ------------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        """Whether the runtime currently has a working link."""
        return self._connected.is_set() and self.bus.is_connected

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
        """Run the camera: connect, serve, reconnect on loss, until :meth:`stop`."""
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        if callable(self._origin):
            self.time_origin = self._origin()
        self._emit(self.node.start(self.time_origin))
        self._arm_timer()
        delay = 0.0
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
                    if self.bus.is_connected:
                        # The link is up but unusable (a subscription refused, say): close it,
                        # or every reconnect attempt would fail with "already connected".
                        with contextlib.suppress(BusError):
                            await self.bus.disconnect(clean=False)
                    if self._loop.time() - started >= self.backoff.stable_s:
                        self._attempt, delay = 0, 0.0
                    else:
                        delay = self._next_delay()
                    log_event(self._log, logging.WARNING, "connection_lost", camera=self.node.camera_id,
                              error=str(exc), queued=len(self.outbox), retry_in_s=round(delay, 3))
            await self._shutdown()
        finally:
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

    # ------------------------------------------------------------------------ one link

    async def _serve(self, session_present: bool) -> None:
        """Serve one connection: returns on stop, raises ``BusError`` when the link is lost."""
        for topic_filter in self.node.subscriptions():
            await self.bus.subscribe(topic_filter, 1)
        # The will may have replaced the retained availability while we were away.
        self.outbox.push(availability(self.topics, online=True), first=True)
        self._flushed.clear()
        self._connected.set()
        log_event(self._log, logging.INFO, "connected", camera=self.node.camera_id,
                  client_id=self.client_id, session_present=session_present, queued=len(self.outbox))
        sender = asyncio.create_task(self._send_loop())
        receiver = asyncio.create_task(self._receive_loop())
        stopper = asyncio.create_task(self._stopping.wait())
        tasks = {sender, receiver, stopper}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done and not sender.done():
                # Stop taking input, but let the sender finish what it has (it returns once the
                # outbox is empty), so nothing in flight is cut off and published twice.
                receiver.cancel()
                with contextlib.suppress(TimeoutError, BusError):
                    await asyncio.wait_for(asyncio.shield(sender), self.stop_timeout_s)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if stopper in done:
            return
        for task in (receiver, sender):
            if task in done and not task.cancelled():
                error = task.exception()
                if error is not None:
                    raise error
        raise BusError("message stream ended")

    async def _send_loop(self) -> None:
        outbox, wake = self.outbox, self._wake_sender
        while True:
            entry = outbox.head()
            if entry is None:
                self._flushed.set()
                if self._stopping.is_set():
                    return
                wake.clear()
                await wake.wait()
                continue
            await self._publish(entry)

    async def _publish(self, entry: _Entry) -> None:
        """Publish ``entry``; one the broker refuses while the link stays up (an invalid topic
        from a third-party node, an oversized payload) is dropped, since sending it again would
        fail again and block everything queued behind it. A lost link raises ``BusError``."""
        pub = entry.pub
        try:
            await self.bus.publish(pub.topic, pub.payload, qos=pub.qos, retain=pub.retain)
        except BusError as exc:
            if not self.bus.is_connected:
                raise
            self.outbox.discard(entry)
            self.stats.refused_publications += 1
            log_event(self._log, logging.ERROR, "publish_refused", camera=self.node.camera_id,
                      topic=pub.topic, error=str(exc))
            return
        self.outbox.sent(entry)
        self.stats.published += 1

    async def _receive_loop(self) -> None:
        async for msg in self.bus.messages():
            self._handle(msg)

    # ---------------------------------------------------------------------- the node

    def _handle(self, msg: Message) -> None:
        self.stats.received += 1
        now = self.now()
        try:
            deadline = self.node.next_deadline()
        except Exception:
            deadline = None  # _arm_timer below meets the same error and leaves the timer off
        if deadline is not None and deadline <= now:
            # A timer handler that raises must not take the message down with it.
            self._run_timer(now)
        try:
            self._emit(self.node.on_message(msg.topic, msg.payload, now))
        except Exception as exc:  # a third-party node broke its contract; the camera lives on
            self.stats.handler_errors += 1
            log_event(self._log, logging.ERROR, "handler_error", camera=self.node.camera_id,
                      topic=msg.topic, error=f"{type(exc).__name__}: {exc}")
            nack = Ack(id=peek_id(msg.payload), ok=False, error=f"internal_error: {type(exc).__name__}")
            self._emit([Publish(self.topics.ack, _ack_encoder.encode(nack), False, 1)])
        self._arm_timer()

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
            self._emit(self.node.on_timer(now))
        except Exception as exc:
            self.stats.handler_errors += 1
            log_event(self._log, logging.ERROR, "timer_error", camera=self.node.camera_id,
                      error=f"{type(exc).__name__}: {exc}")
            return False
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

    def _emit(self, publications: list[Publish]) -> None:
        for pub in publications:
            self.outbox.push(pub)
        if publications:
            self._flushed.clear()
            self._wake_sender.set()

    # ------------------------------------------------------------------------ helpers

    async def _sleep_unless_stopped(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def _shutdown(self) -> None:
        """Clean stop: publish what is left, the open recording and ``offline``; DISCONNECT."""
        self._cancel_timer()
        try:
            self._emit(self.node.finish(self.now()))
        except Exception as exc:
            log_event(self._log, logging.ERROR, "finish_error", camera=self.node.camera_id, error=str(exc))
        self.outbox.push(availability(self.topics, online=False))
        if self.bus.is_connected:
            try:
                await asyncio.wait_for(self._drain(), self.stop_timeout_s)
            except (BusError, TimeoutError) as exc:
                log_event(self._log, logging.WARNING, "stop_incomplete", camera=self.node.camera_id,
                          error=str(exc) or type(exc).__name__, unsent=len(self.outbox))
            # A clean DISCONNECT cancels the will; do that only once "offline" is out, else the
            # broker would go on showing the camera "online".
            with contextlib.suppress(BusError):
                await self.bus.disconnect(clean=len(self.outbox) == 0)
        self._connected.clear()
        log_event(self._log, logging.INFO, "stopped", camera=self.node.camera_id, unsent=len(self.outbox))

    async def _drain(self) -> None:
        while (entry := self.outbox.head()) is not None:
            await self._publish(entry)
