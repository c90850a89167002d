"""Per-sender rate limits for the camera's inbound topics (R-BOUND).

Who sent a message is not part of MQTT. The camera learns it from the topic: a sender publishes
on ``<prefix>/<cam>/event/<sender>`` (and ``<prefix>/team/<team>/event/<sender>``), and the broker
configuration that ``bwcsim broker-config`` generates lets each principal write only under its
own name — so the name is vouched for by the broker, not claimed by the sender. Messages on the
bare ``event`` topics share one bucket (sender ``""``).

Each sender has a token bucket: ``rate`` messages a second on average, up to ``burst`` at once.
A message beyond it is refused ``rate_limited`` before it costs a decode, and counted. The table
of buckets is bounded (``max_senders``): the least recently seen sender is forgotten first, and
a forgotten sender simply starts again with a full bucket.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass

__all__ = ["RateLimit", "RateLimiter"]


@dataclass(frozen=True)
class RateLimit:
    """``rate`` messages per second per sender, ``burst`` at once (default: one second's worth)."""

    rate: float = 2000.0
    burst: float | None = None
    max_senders: int = 1024

    def __post_init__(self) -> None:
        if self.rate <= 0 or (self.burst is not None and self.burst < 1) or self.max_senders < 1:
            raise ValueError(f"invalid rate limit {self!r}")


class RateLimiter:
    """Token buckets per sender (see the module docstring)."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._burst = limit.burst if limit.burst is not None else max(1.0, limit.rate)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.refused: Counter[str] = Counter()

    def allow(self, sender: str, now: float) -> bool:
        """Take one token from ``sender``'s bucket; ``False`` (and counted) when it is empty."""
        buckets = self._buckets
        state = buckets.get(sender)
        if state is None:
            tokens = self._burst
            if len(buckets) >= self.limit.max_senders:
                buckets.popitem(last=False)
        else:
            tokens, then = state
            tokens = min(self._burst, tokens + max(0.0, now - then) * self.limit.rate)
            buckets.move_to_end(sender)
        if tokens >= 1.0:
            buckets[sender] = (tokens - 1.0, now)
            return True
        buckets[sender] = (tokens, now)
        if len(self.refused) < self.limit.max_senders or sender in self.refused:
            self.refused[sender] += 1
        else:
            self.refused["(others)"] += 1
        return False
