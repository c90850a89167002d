"""What the camera has to publish, in order, by value: evidence kept, the cheap shed first.

Theory of operation
-------------------
Every publication waits in the :class:`Outbox` until the broker has taken it. Not all of them are
worth the same, and under load or during an outage the difference decides what survives:

========== ====================================== =============================================
kind       what                                   when the outbox is full
========== ====================================== =============================================
evidence   alerts, recording metadata             never dropped (and kept on disk by the runtime)
status     retained topics: state, availability,  one per topic: a newer value replaces the
           the audit head                         pending one (coalesced, counted)
reply      acks of accepted commands              shed, oldest first, after every ``cheap`` one
cheap      NACKs of garbage, refused senders      shed first, oldest first; bounded on its own
========== ====================================== =============================================

``limit`` bounds everything but evidence; ``cheap_limit`` bounds the cheap on their own, so a
flood of garbage cannot push out the replies to real commands. What is shed is counted by kind
(:attr:`Outbox.shed`; :attr:`Outbox.dropped` is the total) and coalesced status values in
:attr:`Outbox.coalesced`.

**Sending.** The sender takes entries in order with :meth:`Outbox.take`, several in flight at
once; a status value lets what is queued behind it go first, so that under load it is replaced
rather than sent in every version. It then reports back: :meth:`~Outbox.sent` (the broker has
it), :meth:`~Outbox.release` (the link died: it goes back to where it was, to be sent again after
the reconnect; or the broker refused it: it is parked and retried at ``retry_at``),
:meth:`~Outbox.discard` (it can never be sent, e.g. an invalid topic). A retained value
superseded while in flight is not sent again.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Literal

from controller.node import Publish

__all__ = ["Entry", "Kind", "Outbox"]

Kind = Literal["evidence", "status", "reply", "cheap"]

_PENDING, _FLYING, _PARKED, _DONE = 0, 1, 2, 3


class Entry:
    """One queued publication. ``key`` is the runtime's (its row on disk, for evidence)."""

    __slots__ = ("first", "key", "kind", "pub", "retry_at", "seq", "state")

    def __init__(self, pub: Publish, kind: Kind, key: int | None, seq: int, first: bool = False) -> None:
        self.pub = pub
        self.kind = kind
        self.key = key
        self.seq = seq
        self.first = first
        self.state = _PENDING
        self.retry_at = 0.0

    @property
    def done(self) -> bool:
        return self.state == _DONE


class Outbox:
    """Publications waiting for the broker (see the module docstring).

    Internally every live entry is in ``_entries`` (queue order, for :meth:`pending`); those ready
    to send also in ``_queue``, except status values that give way, which wait in ``_deferred``
    (at most one per retained topic, as newer values replace older ones); replies and NACKs are
    also in a FIFO of their kind, for shedding. Entries that were sent, shed or superseded are
    dropped from these lazily, and each is rebuilt once stale entries outnumber live ones, so
    every operation is O(1) amortised, plus the handful in flight that the shedding steps over.
    (With one queue, a status value giving way at its head made every :meth:`take` step over all
    that was taken behind it: quadratic under a steady load, which never lets the value go.)
    """

    def __init__(self, limit: int = 1000, cheap_limit: int | None = None) -> None:
        if limit < 1:
            raise ValueError("outbox limit must be >= 1")
        self.limit = limit
        self.cheap_limit = cheap_limit if cheap_limit is not None else max(1, limit // 4)
        self.dropped = 0
        self.shed: Counter[str] = Counter()
        self.coalesced = 0
        self._entries: deque[Entry] = deque()
        self._queue: deque[Entry] = deque()
        self._deferred: deque[Entry] = deque()
        self._fifo: dict[str, deque[Entry]] = {"cheap": deque(), "reply": deque()}
        self._retained: dict[str, Entry] = {}
        self._flying: set[Entry] = set()
        self._parked: list[Entry] = []
        self._live = 0
        self._counts: Counter[str] = Counter()
        self._seq = 0

    def __len__(self) -> int:
        return self._live

    def count(self, kind: Kind) -> int:
        """Live entries of one kind."""
        return self._counts[kind]

    @property
    def in_flight(self) -> int:
        return len(self._flying)

    def push(self, pub: Publish, *, first: bool = False, kind: Kind | None = None,
             key: int | None = None) -> Entry:
        """Queue ``pub`` (at the head with ``first``). Without ``kind``: ``status`` if retained,
        else ``reply``."""
        kind = kind or ("status" if pub.retain else "reply")
        if pub.retain:
            old = self._retained.get(pub.topic)
            if old is not None:
                self._finish(old)
                self.coalesced += 1
        if kind == "cheap" and self._counts["cheap"] >= self.cheap_limit:
            self._shed(("cheap",))
        if kind in ("reply", "cheap") and self._live - self._counts["evidence"] >= self.limit:
            self._shed(("cheap", "reply"))
        self._seq += 1
        entry = Entry(pub, kind, key, -self._seq if first else self._seq, first)
        if first:
            self._entries.appendleft(entry)
        else:
            self._entries.append(entry)
        self._enqueue(entry, at_head=first)
        fifo = self._fifo.get(kind)
        if fifo is not None:
            fifo.append(entry)
        self._live += 1
        self._counts[kind] += 1
        if pub.retain:
            self._retained[pub.topic] = entry
        self._compact()
        return entry

    def take(self, now: float = 0.0) -> Entry | None:
        """The oldest entry ready to send (marked in flight), or ``None``.

        A retained status value gives way to what is queued behind it, unless it was pushed
        ``first``: while it waits, a newer value can still replace it, so under load the camera
        sends its latest state instead of every intermediate one.
        """
        self._unpark(now)
        for queue in (self._queue, self._deferred):
            while queue:
                entry = queue.popleft()
                if entry.state == _PENDING:
                    return self._fly(entry)
        return None

    def _fly(self, entry: Entry) -> Entry:
        entry.state = _FLYING
        self._flying.add(entry)
        return entry

    def head(self) -> Entry | None:
        """The oldest entry not yet sent (it stays queued)."""
        entries = self._entries
        while entries and entries[0].state == _DONE:
            entries.popleft()
        return next((e for e in entries if e.state in (_PENDING, _FLYING)), None)

    def sent(self, entry: Entry) -> None:
        """``entry`` reached the broker."""
        self._finish(entry)

    def discard(self, entry: Entry) -> None:
        """``entry`` can never be sent (not counted as shed)."""
        self._finish(entry)

    def release(self, entry: Entry, retry_at: float | None = None) -> None:
        """``entry`` did not get through: back in its place, or parked until ``retry_at``."""
        self._flying.discard(entry)
        if entry.state == _DONE:
            return  # superseded or shed meanwhile
        if retry_at is None:
            entry.state = _PENDING
            self._enqueue(entry, at_head=True)  # it was among the oldest: it goes again first
            return
        entry.state = _PARKED
        entry.retry_at = retry_at
        self._parked.append(entry)

    def release_all(self) -> None:
        """The link is gone: everything in flight goes back to its place, in order."""
        flying = sorted(self._flying, key=lambda e: e.seq)
        self._flying.clear()
        for entry in reversed(flying):
            if entry.state == _FLYING:
                entry.state = _PENDING
                self._enqueue(entry, at_head=True)

    def next_retry(self) -> float | None:
        """When the earliest parked entry may be tried again."""
        live = [e.retry_at for e in self._parked if e.state == _PARKED]
        return min(live) if live else None

    def pending(self) -> list[Publish]:
        """What is queued (parked entries last), oldest first."""
        queued = [e.pub for e in self._entries if e.state in (_PENDING, _FLYING)]
        return queued + [e.pub for e in self._parked if e.state == _PARKED]

    # ------------------------------------------------------------------------- internals

    def _enqueue(self, entry: Entry, *, at_head: bool) -> None:
        """Make ``entry`` ready to take; a status value that gives way waits apart."""
        queue = self._deferred if entry.kind == "status" and not entry.first else self._queue
        if at_head:
            queue.appendleft(entry)
        else:
            queue.append(entry)

    def _unpark(self, now: float) -> None:
        if not self._parked:
            return
        due = [e for e in self._parked if e.state != _PARKED or e.retry_at <= now]
        if not due:
            return
        self._parked = [e for e in self._parked if e.state == _PARKED and e.retry_at > now]
        for entry in reversed(due):
            if entry.state == _PARKED:
                entry.state = _PENDING
                self._enqueue(entry, at_head=True)  # refused evidence goes first when its time comes

    def _finish(self, entry: Entry) -> None:
        self._flying.discard(entry)
        if entry.state != _DONE:
            entry.state = _DONE
            self._live -= 1
            self._counts[entry.kind] -= 1
            if self._retained.get(entry.pub.topic) is entry:
                del self._retained[entry.pub.topic]

    def _shed(self, kinds: tuple[str, ...]) -> None:
        for kind in kinds:
            fifo = self._fifo[kind]
            in_flight: list[Entry] = []  # on their way already: kept, and stepped over
            while fifo:
                entry = fifo.popleft()
                if entry.state == _FLYING:
                    in_flight.append(entry)
                elif entry.state != _DONE:
                    self._finish(entry)
                    self.dropped += 1
                    self.shed[kind] += 1
                    fifo.extendleft(reversed(in_flight))
                    return
            fifo.extendleft(reversed(in_flight))

    def _prune(self, queue: deque[Entry]) -> deque[Entry]:
        while queue and queue[0].state != _PENDING:
            queue.popleft()
        if len(queue) > 2 * self._live + 1:
            return deque(e for e in queue if e.state == _PENDING)
        return queue

    def _compact(self) -> None:
        # Sent, superseded and shed entries stay in the deques until they reach a head; while
        # the link is down nothing sends, so during a long outage they would pile up without
        # bound. Rebuilding once they outnumber the live ones costs O(1) per push, amortised.
        # A parked entry stays: it is live, and comes back in its place when its time comes.
        entries = self._entries
        while entries and entries[0].state == _DONE:
            entries.popleft()
        if len(entries) > 2 * self._live + 1:
            self._entries = deque(e for e in entries if e.state != _DONE)
        # The queues hold only what is still to be taken.
        self._queue = self._prune(self._queue)
        self._deferred = self._prune(self._deferred)
        for kind, fifo in self._fifo.items():
            while fifo and fifo[0].state == _DONE:
                fifo.popleft()
            if len(fifo) > 2 * self._counts[kind] + 1:
                self._fifo[kind] = deque(e for e in fifo if e.state != _DONE)
