"""The outbox against a plain model of its rules (LIVE-OUTBOX, R-NODROP).

The model keeps one list in send order and scans it for every answer, the way the outbox's
docstring states the rules: the oldest entry ready goes first; a retained status value gives way
to what is queued behind it unless it was pushed ``first``; a newer value of a retained topic
replaces the pending one; an entry the link lost goes back to the head; a refused one is parked
until its retry time and then goes first. The outbox keeps lazy queues instead, and must answer
exactly as the model does under any sequence of operations — with a status value waiting at the
head under a steady load too, the case that once made every ``take`` scan everything behind it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from controller.node import Publish
from sim.live.outbox import Entry, Kind, Outbox

pytestmark = [pytest.mark.req("LIVE-OUTBOX"), pytest.mark.req("R-NODROP")]


@dataclass
class Item:
    payload: bytes
    kind: Kind
    topic: str
    retain: bool
    first: bool
    state: str = "pending"  # pending | flying | parked
    retry_at: float = 0.0


class Model:
    """No limits (the shedding rules are the outbox's own, unchanged by its queues)."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.parked: list[Item] = []

    def push(self, item: Item) -> None:
        if item.retain:
            self.items = [i for i in self.items if not (i.retain and i.topic == item.topic)]
            self.parked = [i for i in self.parked if not (i.retain and i.topic == item.topic)]
        if item.first:
            self.items.insert(0, item)
        else:
            self.items.append(item)

    def take(self, now: float) -> Item | None:
        due = [i for i in self.parked if i.retry_at <= now]
        self.parked = [i for i in self.parked if i.retry_at > now]
        for item in due:
            item.state = "pending"
        self.items = due + self.items
        pending = [i for i in self.items if i.state == "pending"]
        ready = [i for i in pending if not (i.kind == "status" and not i.first)] or pending
        if not ready:
            return None
        ready[0].state = "flying"
        return ready[0]

    def finish(self, item: Item) -> None:
        self.items = [i for i in self.items if i is not item]

    def release(self, item: Item, retry_at: float | None) -> None:
        self.items = [i for i in self.items if i is not item]
        if retry_at is None:
            item.state = "pending"
            self.items.insert(0, item)
        else:
            item.state, item.retry_at = "parked", retry_at
            self.parked.append(item)

    def release_all(self, order: list[Item]) -> None:
        flying = [i for i in order if i.state == "flying"]
        self.items = [i for i in self.items if i.state != "flying"]
        for item in flying:
            item.state = "pending"
        self.items = flying + self.items

    def pending(self) -> list[bytes]:
        return [i.payload for i in self.items] + [i.payload for i in self.parked]


KINDS: list[tuple[Kind, str, bool]] = [
    ("reply", "c/ack", False), ("cheap", "c/ack", False), ("evidence", "c/alert", False),
    ("status", "c/state", True), ("status", "c/availability", True), ("status", "c/audit", True),
]


class OutboxAgainstModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.box = Outbox(limit=10_000, cheap_limit=10_000)
        self.model = Model()
        self.now = 0.0
        self.seq = 0
        self.flying: list[tuple[Entry, Item]] = []  # in the order they were taken

    @rule(which=st.integers(0, len(KINDS) - 1), first=st.booleans())
    def push(self, which: int, first: bool) -> None:
        kind, topic, retain = KINDS[which]
        first = first and retain  # the runtime pushes only a status value first
        self.seq += 1
        payload = b"%s-%d" % (kind.encode(), self.seq)
        self.box.push(Publish(topic, payload, retain=retain), first=first, kind=kind)
        self.model.push(Item(payload, kind, topic, retain, first))
        # A value superseded in flight is sent all the same, but is done with in both.
        self.flying = [(e, i) for e, i in self.flying if not (retain and i.topic == topic and e.done)]

    @rule()
    def take(self) -> None:
        entry = self.box.take(self.now)
        item = self.model.take(self.now)
        assert (entry.pub.payload if entry else None) == (item.payload if item else None)
        if entry is not None and item is not None:
            self.flying.append((entry, item))

    @precondition(lambda self: self.flying)
    @rule(index=st.integers(0, 99), outcome=st.sampled_from(["sent", "discard", "release", "park"]))
    def land(self, index: int, outcome: str) -> None:
        entry, item = self.flying.pop(index % len(self.flying))
        if entry.done:  # superseded while in flight: gone from both already
            return
        if outcome == "sent":
            self.box.sent(entry)
            self.model.finish(item)
        elif outcome == "discard":
            self.box.discard(entry)
            self.model.finish(item)
        elif outcome == "release":
            self.box.release(entry)
            self.model.release(item, None)
        else:
            self.box.release(entry, retry_at=self.now + 1.0)
            self.model.release(item, self.now + 1.0)

    @rule()
    def link_lost(self) -> None:
        order = sorted(self.flying, key=lambda pair: pair[0].seq)
        self.box.release_all()
        self.model.release_all([item for _, item in order])
        self.flying = []

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @invariant()
    def same_queue(self) -> None:
        assert sorted(p.payload for p in self.box.pending()) == sorted(self.model.pending())
        assert len(self.box) == len(self.model.items) + len(self.model.parked)


def test_the_outbox_answers_as_its_model_does() -> None:
    # A few hundred runs of up to 50 steps each: the profile's thousands add nothing here but time.
    active = settings()  # the profile in force
    run_state_machine_as_test(OutboxAgainstModel,
                              settings=settings(active, max_examples=min(active.max_examples, 500)))


def test_a_status_value_waiting_under_steady_load_costs_no_scan() -> None:
    """A state value queued behind replies that never stop coming: each take looks at the head
    of a queue, not at everything taken since the value was queued."""
    box = Outbox(limit=100_000)
    box.push(Publish("c/state", b"s", retain=True))
    for n in range(5_000):
        box.push(Publish("c/ack", b"%d" % n))
        entry = box.take()
        assert entry is not None and entry.pub.payload == b"%d" % n
        box.sent(entry)
        assert len(box._queue) <= 1 and len(box._deferred) == 1
    last = box.take()
    assert last is not None and last.pub.payload == b"s"
