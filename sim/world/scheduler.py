"""A deterministic discrete-event scheduler in virtual time.

Theory of operation
-------------------
The whole simulator is one binary heap of ``(time, priority, seq, handle)`` tuples, in the style
of simpy's core. ``seq`` comes from :func:`itertools.count`, so two events at the same time and
priority run in the order they were scheduled, and because ``seq`` is unique the tuple comparison
never reaches the handle. Nothing reads a wall clock: :attr:`Scheduler.now` only moves when an
event is taken off the heap, and it never moves backwards (scheduling before ``now`` raises).

Two priorities exist. At equal times :data:`TIMER` events (a camera's internal deadlines: boot
done, battery depletion, segment rollover) run before :data:`MESSAGE` events (bus deliveries),
which is the order the scenario format promises (SPEC §7).

Cancellation is lazy and O(1): :meth:`Scheduler.cancel` clears the handle's callback and the
dead entry is discarded when it reaches the top of the heap. Every operation is therefore
O(log n) in the number of pending events, and simulated time costs nothing while nothing happens:
there is no polling, only the events someone scheduled.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Final

import msgspec

TIMER: Final = 0
"""Priority of internal events: at equal times they run before messages."""

MESSAGE: Final = 1
"""Priority of bus deliveries."""

Callback = Callable[[], None]


class Handle(msgspec.Struct):
    """A scheduled event; pass it to :meth:`Scheduler.cancel` to revoke it.

    ``at`` is the event's time. :attr:`pending` is true until the event runs or is cancelled.
    (A struct for its cheap construction: one is made for every event scheduled.)
    """

    at: float
    _callback: Callback | None

    @property
    def pending(self) -> bool:
        """Whether the event has neither run nor been cancelled."""
        return self._callback is not None

    def __repr__(self) -> str:
        return f"Handle(at={self.at!r}, pending={self.pending})"


class Scheduler:
    """Runs callbacks in virtual-time order.

    >>> sched = Scheduler()
    >>> log: list[float] = []
    >>> _ = sched.schedule(2.0, lambda: log.append(sched.now))
    >>> sched.run(until=5.0)
    >>> log, sched.now
    ([2.0], 5.0)
    """

    __slots__ = ("_heap", "_live", "_seq", "now")

    def __init__(self, start: float = 0.0) -> None:
        if not math.isfinite(start):
            raise ValueError(f"start time must be finite, got {start!r}")
        self.now: float = float(start)
        self._heap: list[tuple[float, int, int, Handle]] = []
        self._seq = itertools.count()
        self._live = 0

    def __len__(self) -> int:
        """Number of events still pending (cancelled ones excluded)."""
        return self._live

    def schedule(self, at: float, callback: Callback, priority: int = MESSAGE) -> Handle:
        """Run ``callback()`` at virtual time ``at``.

        Raises :class:`ValueError` if ``at`` is before :attr:`now` or not a finite number:
        time never goes backwards.
        """
        # `not at >= now` also rejects NaN, which would silently corrupt the heap order.
        if not at >= self.now or at == math.inf:
            raise ValueError(f"cannot schedule at {at!r}: now is {self.now!r}")
        handle = Handle(at, callback)
        heapq.heappush(self._heap, (at, priority, next(self._seq), handle))
        self._live += 1
        return handle

    def schedule_after(self, delay: float, callback: Callback, priority: int = MESSAGE) -> Handle:
        """Run ``callback()`` ``delay`` seconds from :attr:`now` (``delay >= 0``)."""
        if not delay >= 0:
            raise ValueError(f"delay must be >= 0, got {delay!r}")
        return self.schedule(self.now + delay, callback, priority)

    def cancel(self, handle: Handle) -> None:
        """Revoke a pending event. Cancelling one that already ran or was cancelled is a no-op."""
        if handle._callback is not None:
            handle._callback = None
            self._live -= 1

    def clear(self) -> None:
        """Revoke every pending event (a finished run): their callbacks, which usually point back
        at whoever scheduled them, are dropped at once instead of left for the cyclic collector."""
        for _at, _priority, _seq, handle in self._heap:
            handle._callback = None
        self._heap.clear()
        self._live = 0

    def peek(self) -> float | None:
        """Time of the next pending event, or ``None`` when nothing is pending."""
        heap = self._heap
        while heap and heap[0][3]._callback is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def step(self) -> bool:
        """Run the next pending event. Returns ``False`` (and does nothing) when none is left."""
        heap = self._heap
        while heap:
            at, _priority, _seq, handle = heapq.heappop(heap)
            callback = handle._callback
            if callback is None:
                continue
            handle._callback = None
            self._live -= 1
            self.now = at
            callback()
            return True
        return False

    def run(self, until: float | None = None) -> None:
        """Run events in order.

        With ``until``, run every event whose time is ``<= until`` (including events scheduled
        by those events) and leave :attr:`now` at ``until``. Without it, run until nothing is
        pending; :attr:`now` is then the time of the last event.
        """
        if until is not None and not (self.now <= until < math.inf):
            raise ValueError(f"cannot run until {until!r}: now is {self.now!r}")
        heap = self._heap
        pop = heapq.heappop
        limit = math.inf if until is None else until
        # The loop body is `step()` inlined: this is the simulator's innermost loop.
        while heap and heap[0][0] <= limit:
            at, _priority, _seq, handle = pop(heap)
            callback = handle._callback
            if callback is None:
                continue
            handle._callback = None
            self._live -= 1
            self.now = at
            callback()
        if until is not None:
            self.now = until
