"""The in-memory MQTT broker (SPEC §6): routing, retained messages, QoS, sessions, wills, faults.

Every test drives the broker through virtual time only; randomness comes from seeded
``random.Random`` instances, so each test is deterministic.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.errors import BusError
from sim.world.broker import (
    NO_FAULTS,
    BusConfig,
    BusSettings,
    LossReason,
    Message,
    SimBroker,
    topic_matches,
    validate_filter,
    validate_topic,
)
from sim.world.scenario import BusSpec
from sim.world.scheduler import TIMER, Scheduler

# ---------------------------------------------------------------------------- helpers


Delivered = tuple[str, Message, float]
Lost = tuple[str | None, Message, float, LossReason]


@dataclass
class Log:
    """A broker observer that keeps every report, in order."""

    events: list[Delivered | Lost] = field(default_factory=list)
    delivered: list[Delivered] = field(default_factory=list)
    lost: list[Lost] = field(default_factory=list)

    def on_deliver(self, client_id: str, msg: Message, at: float) -> None:
        self.delivered.append((client_id, msg, at))
        self.events.append(self.delivered[-1])

    def on_lost(self, client_id: str | None, msg: Message, at: float, reason: LossReason) -> None:
        self.lost.append((client_id, msg, at, reason))
        self.events.append(self.lost[-1])

    def deliveries(self, client_id: str) -> list[tuple[float, Message]]:
        return [(at, msg) for who, msg, at in self.delivered if who == client_id]

    def losses(self) -> list[tuple[str | None, bytes, str]]:
        return [(who, msg.payload, reason) for who, msg, _, reason in self.lost]


@dataclass
class Inbox:
    """A client's ``on_message``: records what arrived and when."""

    sched: Scheduler
    received: list[tuple[float, Message]] = field(default_factory=list)

    def __call__(self, msg: Message) -> None:
        self.received.append((self.sched.now, msg))

    @property
    def payloads(self) -> list[bytes]:
        return [msg.payload for _, msg in self.received]


@dataclass
class Bench:
    sched: Scheduler
    broker: SimBroker
    log: Log

    def client(self, client_id: str, *filters: str, qos: int = 1, clean: bool = True) -> Inbox:
        inbox = Inbox(self.sched)
        self.broker.connect(client_id, inbox, clean_session=clean)
        for topic_filter in filters:
            self.broker.subscribe(client_id, topic_filter, qos)
        return inbox

    def at(self, when: float, action: object) -> None:
        self.sched.schedule(when, action, TIMER)  # type: ignore[arg-type]


def bench(config: BusConfig | None = None, seed: int = 0, **options: object) -> Bench:
    sched = Scheduler()
    broker = SimBroker(sched, config, random.Random(seed), **options)  # type: ignore[arg-type]
    log = Log()
    broker.add_observer(log)
    return Bench(sched, broker, log)


# ------------------------------------------------------------------------- routing

WILDCARD_TABLE = [
    # (filter, topic, matches) — the MQTT 3.1.1 §4.7 examples and their edges
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),  # '#' matches the parent level
    ("a/b/#", "a", False),
    ("#", "sport/tennis", True),
    ("#", "/", True),
    ("+/#", "a", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),  # '+' matches an empty level
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("+", "finance", True),
    ("a/+/b", "a//b", True),
    ("a//b", "a//b", True),
    ("a/b", "a/B", False),  # case-sensitive
    ("a/b", "a/b/", False),
    ("bwc/+/event", "bwc/cam-1/event", True),
    ("bwc/+/event", "bwc/team/sr-1/event", False),
    ("bwc/team/+/event", "bwc/team/sr-1/event", True),
    # '$' topics: never matched by a filter whose first level is a wildcard
    ("#", "$SYS/broker/uptime", False),
    ("+/broker/uptime", "$SYS/broker/uptime", False),
    ("+", "$SYS", False),
    ("$SYS/#", "$SYS/broker/uptime", True),
    ("$SYS/#", "$SYS", True),
    ("$SYS/+/uptime", "$SYS/broker/uptime", True),
    ("a/#", "a/$b", True),  # only the first level is special
    ("a/+", "a/$b", True),
]


@pytest.mark.req("BUS-ROUTE")
@pytest.mark.parametrize(("topic_filter", "topic", "expected"), WILDCARD_TABLE)
def test_wildcard_table_pure_function_and_broker_agree(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected
    b = bench()
    inbox = b.client("sub", topic_filter)
    b.broker.publish(None, topic, b"x", qos=1)
    b.sched.run()
    assert inbox.payloads == ([b"x"] if expected else [])


INVALID_FILTERS = [
    "",
    "a/#/b",
    "#/",
    "a#",
    "a/b#",
    "a+",
    "+a/b",
    "a/++",
    "a/\x00",
    "a\x01b",
    "a\x7fb",
    "a\x85b",  # C1 control
    "a\ud800",  # lone surrogate
    "a\ufdd0",
    "a\ufffe",
    "a\U0010ffff",
    "x" * 65536,
]


@pytest.mark.req("BUS-ROUTE")
@pytest.mark.parametrize("bad", INVALID_FILTERS)
def test_invalid_filters_are_refused(bad: str) -> None:
    with pytest.raises(BusError):
        validate_filter(bad)
    b = bench()
    b.client("c")
    with pytest.raises(BusError):
        b.broker.subscribe("c", bad)
    assert b.broker.subscriptions("c") == {}


@pytest.mark.req("BUS-ROUTE")
@pytest.mark.parametrize(
    "bad", ["", "a/+", "a/#", "#", "+", "a\x00", "a\x1fb", "a\udfff", "x" * 65536, "€" * 21846]
)
def test_invalid_topics_are_refused(bad: str) -> None:
    with pytest.raises(BusError):
        validate_topic(bad)
    b = bench()
    with pytest.raises(BusError):
        b.broker.publish(None, bad, b"x")
    with pytest.raises(BusError):
        b.broker.connect("c", Inbox(b.sched), will=Message(bad, b"offline"))


@pytest.mark.req("BUS-ROUTE")
@pytest.mark.parametrize(
    "good", ["+", "#", "/", "//", "+/+/#", "a/+/c/#", "$SYS/#", "ü/€/𝄞", "a b", "x" * 65535, "€" * 21845]
)
def test_valid_filters_and_lengths_are_accepted(good: str) -> None:
    validate_filter(good)
    if "+" not in good and "#" not in good:
        validate_topic(good)


@pytest.mark.req("BUS-ROUTE")
def test_non_string_topics_and_non_bytes_payloads_are_refused() -> None:
    b = bench()
    with pytest.raises(BusError):
        validate_topic(b"a/b")  # type: ignore[arg-type]
    with pytest.raises(BusError):
        b.broker.publish(None, "a", "text")  # type: ignore[arg-type]
    b.broker.publish(None, "a", bytearray(b"ok"))  # type: ignore[arg-type]  # bytes-like is accepted


LEVEL = st.sampled_from(["a", "b", "", "$x"])


@pytest.mark.req("BUS-ROUTE")
@given(
    filters=st.lists(
        st.lists(st.one_of(LEVEL, st.just("+")), min_size=1, max_size=4)
        .flatmap(lambda levels: st.sampled_from(["/".join(levels), "/".join([*levels, "#"])]))
        .filter(bool),
        max_size=8,
    ),
    topics=st.lists(st.lists(LEVEL, min_size=1, max_size=5).map("/".join).filter(bool), max_size=8),
)
def test_trie_routing_agrees_with_topic_matches(filters: list[str], topics: list[str]) -> None:
    b = bench()
    inboxes = {f"c{index}": b.client(f"c{index}", topic_filter) for index, topic_filter in enumerate(filters)}
    for topic in topics:
        b.broker.publish(None, topic, topic.encode(), qos=1)
    b.sched.run()
    for index, topic_filter in enumerate(filters):
        expected = [topic.encode() for topic in topics if topic_matches(topic_filter, topic)]
        assert inboxes[f"c{index}"].payloads == expected, topic_filter


@pytest.mark.req("BUS-ROUTE")
def test_overlapping_filters_give_one_copy_at_the_highest_granted_qos() -> None:
    b = bench()
    inbox = Inbox(b.sched)
    b.broker.connect("c", inbox)
    b.broker.subscribe("c", "a/#", 0)
    b.broker.subscribe("c", "a/+", 1)
    b.broker.subscribe("c", "a/b", 0)
    b.broker.publish(None, "a/b", b"x", qos=1)
    b.sched.run()
    assert [msg for _, msg in inbox.received] == [Message("a/b", b"x", qos=1)]


@pytest.mark.req("BUS-ROUTE")
def test_copy_per_subscription_mode_gives_one_copy_per_matching_filter() -> None:
    b = bench(copy_per_subscription=True)
    inbox = Inbox(b.sched)
    b.broker.connect("c", inbox)
    b.broker.subscribe("c", "a/#", 0)
    b.broker.subscribe("c", "a/+", 1)
    b.broker.publish(None, "a/b", b"x", qos=1)
    b.sched.run()
    assert sorted(msg.qos for _, msg in inbox.received) == [0, 1]


@pytest.mark.req("BUS-ROUTE")
def test_unsubscribe_and_resubscribe_change_routing_immediately() -> None:
    b = bench()
    inbox = b.client("c", "a/+", "b")
    b.broker.publish(None, "a/1", b"1", qos=1)  # routed, then cached
    b.broker.unsubscribe("c", "a/+")
    b.broker.unsubscribe("c", "never/subscribed")
    b.broker.publish(None, "a/1", b"2", qos=1)
    b.broker.subscribe("c", "a/#", 0)
    b.broker.publish(None, "a/1", b"3", qos=1)
    b.sched.run()
    assert [(msg.payload, msg.qos) for _, msg in inbox.received] == [(b"1", 1), (b"3", 0)]
    assert b.broker.subscriptions("c") == {"b": 1, "a/#": 0}


@pytest.mark.req("BUS-ROUTE")
def test_publisher_receives_its_own_message_when_subscribed() -> None:
    b = bench()
    inbox = b.client("c", "a")
    b.broker.publish("c", "a", b"echo", qos=1)
    b.sched.run()
    assert inbox.payloads == [b"echo"]


# ------------------------------------------------------------------------- retained


@pytest.mark.req("BUS-RETAIN")
def test_retained_message_goes_to_later_subscribers_with_retain_set() -> None:
    b = bench()
    live = b.client("live", "bwc/+/state")
    b.broker.publish(None, "bwc/cam-1/state", b"s1", qos=1, retain=True)
    b.broker.publish(None, "bwc/cam-1/state", b"s2", qos=1, retain=True)  # replaces s1
    b.broker.publish(None, "bwc/cam-2/state", b"t1", qos=0, retain=True)
    b.broker.publish(None, "bwc/cam-3/state", b"plain", qos=1)  # not retained
    b.sched.run()
    assert [(msg.payload, msg.retain) for _, msg in live.received] == [
        (b"s1", False),
        (b"s2", False),
        (b"t1", False),
        (b"plain", False),
    ]
    late = b.client("late")
    sent = b.broker.subscribe("late", "bwc/#", 1)
    assert sent == [
        Message("bwc/cam-1/state", b"s2", qos=1, retain=True),
        Message("bwc/cam-2/state", b"t1", qos=0, retain=True),
    ]
    b.sched.run()
    assert [msg for _, msg in late.received] == sent


@pytest.mark.req("BUS-RETAIN")
def test_empty_retained_payload_clears_and_is_still_forwarded() -> None:
    b = bench()
    live = b.client("live", "a/#")
    b.broker.publish(None, "a/b", b"kept", qos=1, retain=True)
    b.broker.publish(None, "a/b", b"", qos=1, retain=True)
    b.broker.publish(None, "a/never", b"", qos=1, retain=True)  # clearing nothing is harmless
    b.sched.run()
    assert live.payloads == [b"kept", b"", b""]
    assert b.broker.retained("#") == []
    b.client("late")
    assert b.broker.subscribe("late", "a/#") == []


@pytest.mark.req("BUS-RETAIN")
def test_retained_query_follows_wildcard_and_dollar_rules() -> None:
    b = bench()
    for topic in ["a", "a/b", "a/b/c", "x/b", "$SYS/load", "a/$c"]:
        b.broker.publish(None, topic, topic.encode(), qos=1, retain=True)

    def topics(topic_filter: str) -> list[str]:
        return [msg.topic for msg in b.broker.retained(topic_filter)]

    assert topics("#") == ["a", "a/$c", "a/b", "a/b/c", "x/b"]
    assert topics("a/#") == ["a", "a/$c", "a/b", "a/b/c"]
    assert topics("+/b") == ["a/b", "x/b"]
    assert topics("+") == ["a"]
    assert topics("$SYS/#") == ["$SYS/load"]
    assert topics("a/b/c") == ["a/b/c"]
    assert topics("nothing/#") == []
    with pytest.raises(BusError):
        b.broker.retained("a/#/b")


@pytest.mark.req("BUS-RETAIN")
def test_retained_qos_is_downgraded_to_the_subscription_and_resubscribe_resends() -> None:
    b = bench()
    b.broker.publish(None, "a", b"r", qos=1, retain=True)
    inbox = b.client("c")
    assert b.broker.subscribe("c", "a", 0) == [Message("a", b"r", qos=0, retain=True)]
    assert b.broker.subscribe("c", "a", 1) == [Message("a", b"r", qos=1, retain=True)]
    b.sched.run()
    assert [msg.qos for _, msg in inbox.received] == [0, 1]


@pytest.mark.req("BUS-RETAIN")
def test_retained_messages_survive_an_outage_and_publishes_during_it_are_not_retained() -> None:
    b = bench()
    b.broker.publish(None, "a", b"before", qos=1, retain=True)
    b.broker.outage(5.0)
    b.broker.publish(None, "a", b"during", qos=1, retain=True)
    b.sched.run(until=5.0)
    assert [msg.payload for msg in b.broker.retained("a")] == [b"before"]


# ------------------------------------------------------------------------------ QoS


@pytest.mark.req("BUS-QOS")
@pytest.mark.parametrize(("published", "granted"), [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_delivered_qos_is_the_minimum_of_published_and_granted(published: int, granted: int) -> None:
    b = bench()
    inbox = b.client("c", "t", qos=granted)
    b.broker.publish(None, "t", b"x", qos=published)
    b.sched.run()
    assert [msg.qos for _, msg in inbox.received] == [min(published, granted)]


@pytest.mark.req("BUS-QOS")
@pytest.mark.parametrize("qos", [2, -1, True])
def test_unsupported_qos_is_refused(qos: int) -> None:
    b = bench()
    b.client("c")
    with pytest.raises(BusError):
        b.broker.subscribe("c", "t", qos)
    with pytest.raises(BusError):
        b.broker.publish(None, "t", b"x", qos=qos)


@pytest.mark.req("BUS-QOS")
def test_subscribers_with_different_grants_share_the_two_forwarded_variants() -> None:
    b = bench()
    zero = [b.client(f"z{index}", "t", qos=0) for index in range(3)]
    one = [b.client(f"o{index}", "t", qos=1) for index in range(3)]
    b.broker.publish(None, "t", b"x", qos=1, retain=True)
    b.sched.run()
    zero_msgs = {id(inbox.received[0][1]) for inbox in zero}
    one_msgs = {id(inbox.received[0][1]) for inbox in one}
    assert len(zero_msgs) == 1 and len(one_msgs) == 1  # no per-subscriber copies


@pytest.mark.req("BUS-QOS")
@given(
    kind=st.sampled_from(["uniform", "exponential"]),
    jitter=st.floats(min_value=0.0, max_value=5.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    duplicate=st.sampled_from([0.0, 0.5]),
    sends=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=10.0),
            st.sampled_from([None, "p1", "p2"]),
            st.sampled_from([0, 1]),
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_per_subscriber_order_holds_under_jittered_latency(
    kind: str,
    jitter: float,
    seed: int,
    duplicate: float,
    sends: list[tuple[float, str | None, int]],
) -> None:
    b = bench(BusSettings(latency_s=0.01, jitter_s=jitter, latency=kind, duplicate=duplicate), seed)  # type: ignore[arg-type]
    subscribers = [b.client(name, "t/#") for name in ("s1", "s2")]
    b.client("p1")
    b.client("p2")
    order: list[bytes] = []
    for index, (when, publisher, qos) in enumerate(sorted(sends, key=lambda send: send[0])):
        payload = str(index).encode()

        def send(publisher: str | None = publisher, payload: bytes = payload, qos: int = qos) -> None:
            order.append(payload)
            b.broker.publish(publisher, f"t/{publisher}", payload, qos=qos)

        b.at(when, send)
    b.sched.run()
    for inbox in subscribers:
        times = [at for at, _ in inbox.received]
        first_seen: list[bytes] = []
        for payload in inbox.payloads:
            if payload not in first_seen:
                first_seen.append(payload)
        assert first_seen == order
        if duplicate == 0.0:
            assert times == sorted(times)
            assert inbox.payloads == order


@pytest.mark.req("BUS-QOS")
def test_duplicates_only_for_qos1_and_always_after_their_original() -> None:
    b = bench(BusSettings(latency_s=0.1, jitter_s=0.5, latency="uniform", duplicate=1.0), seed=3)
    inbox = b.client("c", "t")
    for index in range(20):
        b.broker.publish(None, "t", b"q1-%d" % index, qos=1)
        b.broker.publish(None, "t", b"q0-%d" % index, qos=0)
    b.sched.run()
    counts: dict[bytes, list[float]] = {}
    for at, msg in inbox.received:
        counts.setdefault(msg.payload, []).append(at)
    for index in range(20):
        original, duplicate = counts[b"q1-%d" % index]
        assert duplicate >= original
        assert len(counts[b"q0-%d" % index]) == 1


# ---------------------------------------------------------------------- sessions


@pytest.mark.req("BUS-SESSION")
def test_persistent_session_queues_qos1_during_a_disconnect_window_and_loses_qos0() -> None:
    b = bench(BusSettings(latency_s=0.2))
    inbox = b.client("cam", "bwc/cam/event", clean=False)
    b.at(1.0, lambda: b.broker.disconnect_client("cam", 10.0))
    b.at(2.0, lambda: b.broker.publish(None, "bwc/cam/event", b"q1-a", qos=1))
    b.at(3.0, lambda: b.broker.publish(None, "bwc/cam/event", b"q0", qos=0))
    b.at(4.0, lambda: b.broker.publish(None, "bwc/cam/event", b"q1-b", qos=1))
    b.sched.run(until=5.0)
    assert inbox.received == []
    assert not b.broker.is_connected("cam")
    assert [msg.payload for msg in b.broker.undelivered("cam")] == [b"q1-a", b"q1-b"]
    assert b.broker.subscriptions("cam") == {"bwc/cam/event": 1}
    assert b.log.losses() == [("cam", b"q0", "offline_qos0")]
    b.sched.run()
    assert b.broker.is_connected("cam")
    assert [msg.payload for _, msg in inbox.received] == [b"q1-a", b"q1-b"]
    assert [at for at, _ in inbox.received] == pytest.approx([11.2, 11.2])
    assert b.broker.undelivered("cam") == []


@pytest.mark.req("BUS-SESSION")
def test_in_flight_messages_at_a_cut_are_requeued_qos1_or_lost_qos0() -> None:
    b = bench(BusSettings(latency_s=1.0))
    inbox = b.client("cam", "t", clean=False)
    b.broker.publish(None, "t", b"q1", qos=1)
    b.broker.publish(None, "t", b"q0", qos=0)
    b.at(0.5, lambda: b.broker.disconnect_client("cam", 2.0))
    b.sched.run()
    assert [(at, msg.payload) for at, msg in inbox.received] == [(3.5, b"q1")]
    assert b.log.losses() == [("cam", b"q0", "disconnected")]


@pytest.mark.req("BUS-SESSION")
def test_clean_session_is_discarded_and_on_connect_lets_the_client_resubscribe() -> None:
    b = bench()
    inbox = Inbox(b.sched)
    sessions_present: list[bool] = []

    def on_connect(present: bool) -> None:
        sessions_present.append(present)
        b.broker.subscribe("c", "t", 1)

    b.broker.connect("c", inbox, clean_session=True, on_connect=on_connect)
    b.broker.disconnect_client("c", 5.0)
    assert b.broker.subscriptions("c") == {}
    b.broker.publish(None, "t", b"while-away", qos=1)  # nobody subscribed: not a loss
    b.sched.run()
    b.broker.publish(None, "t", b"after", qos=1)
    b.sched.run()
    assert sessions_present == [False, False]
    assert inbox.payloads == [b"after"]
    assert b.log.losses() == []


@pytest.mark.req("BUS-SESSION")
def test_session_present_and_clean_reconnect_discards_the_queue() -> None:
    b = bench()
    inbox = b.client("c", "t", clean=False)
    b.broker.disconnect("c")
    b.broker.publish(None, "t", b"queued-1", qos=1)
    assert b.broker.connect("c", inbox, clean_session=False) is True
    b.sched.run()
    assert inbox.payloads == [b"queued-1"]

    b.broker.disconnect("c")
    b.broker.publish(None, "t", b"queued-2", qos=1)
    assert b.broker.connect("c", inbox, clean_session=True) is False
    b.broker.publish(None, "t", b"unrouted", qos=1)
    b.sched.run()
    assert inbox.payloads == [b"queued-1"]
    assert b.log.losses() == [("c", b"queued-2", "session_ended")]
    assert b.broker.subscriptions("c") == {}


@pytest.mark.req("BUS-SESSION")
def test_offline_queue_is_bounded_by_max_queued() -> None:
    b = bench(max_queued=2)
    inbox = b.client("c", "t", clean=False)
    b.broker.disconnect("c")
    for index in range(4):
        b.broker.publish(None, "t", b"%d" % index, qos=1)
    b.broker.connect("c", inbox, clean_session=False)
    b.sched.run()
    assert inbox.payloads == [b"0", b"1"]
    assert b.log.losses() == [("c", b"2", "queue_full"), ("c", b"3", "queue_full")]


@pytest.mark.req("BUS-SESSION")
def test_operations_on_unconnected_clients() -> None:
    b = bench()
    with pytest.raises(BusError):
        b.broker.subscribe("ghost", "t")
    with pytest.raises(BusError):
        b.broker.publish("ghost", "t", b"x")
    with pytest.raises(BusError):
        b.broker.disconnect("ghost")
    with pytest.raises(BusError):
        b.broker.disconnect_client("ghost", 1.0)
    with pytest.raises(BusError):
        b.broker.connect("", Inbox(b.sched))
    listener = b.client("listener", "t")
    b.client("p", clean=False)
    b.broker.disconnect("p")
    b.broker.publish("p", "t", b"from-offline", qos=1)  # a known client that is offline
    b.sched.run()
    assert listener.payloads == []
    assert b.log.losses() == [(None, b"from-offline", "publisher_offline")]


@pytest.mark.req("BUS-SESSION")
def test_disconnect_during_a_fault_window_cancels_the_reconnect() -> None:
    b = bench()
    b.client("c", "t", clean=False)
    b.broker.disconnect_client("c", 5.0)
    b.broker.disconnect("c")
    b.sched.run()
    assert not b.broker.is_connected("c")
    assert b.broker.subscriptions("c") == {"t": 1}


# --------------------------------------------------------------------------- wills

WILL = Message("bwc/cam/availability", b"offline", qos=1, retain=True)


def _will_bench() -> tuple[Bench, Inbox]:
    b = bench()
    watcher = b.client("watcher", "bwc/+/availability")
    b.broker.connect("cam", Inbox(b.sched), clean_session=False, will=WILL)
    return b, watcher


@pytest.mark.req("BUS-WILL")
def test_will_is_published_on_unclean_disconnect() -> None:
    b, watcher = _will_bench()
    b.broker.disconnect("cam", clean=False)
    b.sched.run()
    assert [msg for _, msg in watcher.received] == [Message(WILL.topic, b"offline", qos=1)]
    assert b.broker.retained(WILL.topic) == [WILL]


@pytest.mark.req("BUS-WILL")
def test_will_is_not_published_on_clean_disconnect() -> None:
    b, watcher = _will_bench()
    b.broker.disconnect("cam", clean=True)
    b.sched.run()
    assert watcher.received == []
    assert b.broker.retained("#") == []


@pytest.mark.req("BUS-WILL")
def test_will_is_published_when_a_fault_cuts_the_client_and_again_at_each_cut() -> None:
    b, watcher = _will_bench()
    b.at(1.0, lambda: b.broker.disconnect_client("cam", 2.0))
    b.at(5.0, lambda: b.broker.disconnect_client("cam", 2.0))
    b.sched.run()
    assert [at for at, _ in watcher.received] == [1.0, 5.0]
    assert b.broker.is_connected("cam")


@pytest.mark.req("BUS-WILL")
def test_will_is_published_on_session_takeover() -> None:
    b, watcher = _will_bench()
    assert b.broker.connect("cam", Inbox(b.sched), clean_session=False) is True
    b.sched.run()
    assert watcher.payloads == [b"offline"]


@pytest.mark.req("BUS-WILL")
def test_no_will_during_a_broker_outage() -> None:
    b, watcher = _will_bench()
    b.broker.outage(3.0)
    b.sched.run()
    assert watcher.received == []
    assert b.broker.is_connected("cam") and b.broker.is_connected("watcher")


# -------------------------------------------------------------------------- faults


@pytest.mark.req("BUS-FAULT")
def test_fixed_latency_is_exact() -> None:
    b = bench(BusSettings(latency_s=0.25, jitter_s=9.0, latency="fixed"))
    inbox = b.client("c", "t")
    b.at(1.0, lambda: b.broker.publish(None, "t", b"x", qos=0))
    b.sched.run()
    assert [at for at, _ in inbox.received] == [1.25]


@pytest.mark.req("BUS-FAULT")
def test_uniform_latency_stays_in_its_interval() -> None:
    b = bench(BusSettings(latency_s=0.1, jitter_s=0.4, latency="uniform"), seed=11)
    sink = b.client("c", "t")
    for index in range(500):
        b.at(float(index), lambda: b.broker.publish(None, "t", b"x", qos=1))
    b.sched.run()
    delays = [at - index for index, (at, _) in enumerate(sink.received)]
    assert all(0.1 <= delay <= 0.5 for delay in delays)
    assert max(delays) - min(delays) > 0.3  # actually spread over the interval


@pytest.mark.req("BUS-FAULT")
def test_exponential_latency_has_the_configured_floor_and_mean() -> None:
    b = bench(BusSettings(latency_s=0.05, jitter_s=0.2, latency="exponential"), seed=5)
    sink = b.client("c", "t")
    for index in range(2000):
        b.at(float(index), lambda: b.broker.publish(None, "t", b"x", qos=1))
    b.sched.run()
    delays = [at - index for index, (at, _) in enumerate(sink.received)]
    assert min(delays) >= 0.05
    assert statistics.fmean(delays) == pytest.approx(0.25, rel=0.1)


@pytest.mark.req("BUS-FAULT")
def test_qos0_drop_probability_applies_to_qos0_only() -> None:
    b = bench(BusSettings(drop=0.3), seed=2)
    inbox = b.client("c", "t")
    for index in range(2000):
        b.broker.publish(None, "t", b"0-%d" % index, qos=0)
        b.broker.publish(None, "t", b"1-%d" % index, qos=1)
    b.sched.run()
    qos0 = [p for p in inbox.payloads if p.startswith(b"0-")]
    qos1 = [p for p in inbox.payloads if p.startswith(b"1-")]
    assert len(qos1) == 2000
    assert 0.25 < 1 - len(qos0) / 2000 < 0.35
    dropped = b.log.losses()
    assert {reason for _, _, reason in dropped} == {"qos0_drop"}
    assert len(dropped) + len(qos0) == 2000


@pytest.mark.req("BUS-FAULT")
def test_outage_cuts_everyone_loses_publishes_and_reconnects_sessions() -> None:
    b = bench(BusSettings(latency_s=1.0))
    persistent = b.client("p", "t", clean=False)
    b.client("pub")
    b.broker.publish(None, "t", b"in-flight-q1", qos=1)
    b.broker.publish(None, "t", b"in-flight-q0", qos=0)
    b.at(0.5, lambda: b.broker.outage(4.0))
    b.at(1.0, lambda: b.broker.publish(None, "t", b"during-harness", qos=1))
    b.at(2.0, lambda: b.broker.publish("pub", "t", b"during-client", qos=1))
    b.sched.run(until=3.0)
    assert b.broker.is_down()
    assert not b.broker.is_connected("p") and not b.broker.is_connected("pub")
    with pytest.raises(BusError):
        b.broker.connect("new", Inbox(b.sched))
    with pytest.raises(BusError):
        b.broker.subscribe("p", "u")
    b.sched.run(until=4.5)
    assert not b.broker.is_down()
    assert b.broker.is_connected("p") and b.broker.is_connected("pub")
    b.broker.publish("pub", "t", b"after", qos=1)
    b.sched.run()
    assert [(at, msg.payload) for at, msg in persistent.received] == [
        (5.5, b"in-flight-q1"),
        (5.5, b"after"),
    ]
    assert b.log.losses() == [
        ("p", b"in-flight-q0", "broker_outage"),
        (None, b"during-harness", "broker_outage"),
        (None, b"during-client", "broker_outage"),
    ]


@pytest.mark.req("BUS-FAULT")
def test_overlapping_fault_windows_extend_each_other() -> None:
    b = bench()
    b.client("c", "t", clean=False)
    b.at(1.0, lambda: b.broker.disconnect_client("c", 10.0))  # until 11
    b.at(2.0, lambda: b.broker.outage(3.0))  # until 5: the client window is longer
    b.at(3.0, lambda: b.broker.outage(10.0))  # until 13: now the outage is longer
    b.at(4.0, lambda: b.broker.disconnect_client("c", 1.0))  # shorter than what is pending
    b.sched.run(until=12.9)
    assert not b.broker.is_connected("c")
    b.sched.run(until=13.0)
    assert b.broker.is_connected("c")


@pytest.mark.req("BUS-FAULT")
@pytest.mark.parametrize(
    "config",
    [
        BusSettings(latency_s=-1.0),
        BusSettings(jitter_s=float("nan")),
        BusSettings(drop=1.5),
        BusSettings(duplicate=-0.1),
        BusSpec(latency="gaussian"),  # type: ignore[arg-type]
    ],
)
def test_invalid_bus_configs_are_refused(config: BusConfig) -> None:
    with pytest.raises(BusError):
        SimBroker(Scheduler(), config, random.Random(0))


@pytest.mark.req("BUS-FAULT")
def test_the_scenario_bus_spec_is_accepted_as_config() -> None:
    spec: BusConfig = BusSpec(latency_s=0.5, jitter_s=0.0, latency="uniform")
    b = bench(spec)
    inbox = b.client("c", "t")
    b.broker.publish(None, "t", b"x")
    b.sched.run()
    assert [at for at, _ in inbox.received] == [0.5]
    assert SimBroker(Scheduler()).config is NO_FAULTS


@pytest.mark.req("BUS-FAULT")
def test_observers_account_for_every_message_exactly_once() -> None:
    """Per persistent subscriber, each routed publication is delivered, lost or still owed."""
    b = bench(BusSettings(latency_s=0.3, jitter_s=1.0, latency="exponential", drop=0.2), seed=9)
    names = [f"s{index}" for index in range(4)]
    for name in names:
        b.client(name, "t/#", clean=False)
    rng = random.Random(1)
    routed: list[bytes] = []

    def publish(payload: bytes, qos: int) -> None:
        down = b.broker.is_down()
        b.broker.publish(None, "t/x", payload, qos=qos)
        if not down:
            routed.append(payload)

    for index in range(300):
        when = rng.uniform(0, 100)
        b.at(when, lambda payload=b"%d" % index, qos=index % 2: publish(payload, qos))
    for when in (10.0, 40.0, 70.0):
        b.at(when, lambda: b.broker.disconnect_client(names[rng.randrange(4)], rng.uniform(1, 8)))
    b.at(50.0, lambda: b.broker.outage(3.0))
    b.sched.run(until=100.5)  # stop early: some messages are still in flight
    for name in names:
        delivered = [msg.payload for _, msg in b.log.deliveries(name)]
        lost = [payload for who, payload, _ in b.log.losses() if who == name]
        owed = [msg.payload for msg in b.broker.undelivered(name)]
        assert sorted(delivered + lost + owed) == sorted(routed), name
    lost_globally = [payload for who, payload, _ in b.log.losses() if who is None]
    assert len(lost_globally) + len(routed) == 300
    assert lost_globally  # the outage did lose some


@pytest.mark.req("BUS-FAULT")
def test_an_observer_of_losses_only_sees_every_loss_and_no_delivery() -> None:
    """``add_observer(..., deliveries=False)``: the losses are reported as to any observer."""
    b = bench(BusSettings(drop=0.5), seed=3)
    losses_only = Log()
    b.broker.add_observer(losses_only, deliveries=False)
    b.client("s", "t")
    for index in range(40):
        b.broker.publish(None, "t", b"%d" % index, qos=0)
    b.sched.run()
    assert b.log.delivered and not losses_only.delivered
    assert losses_only.lost == b.log.lost and len(b.log.lost) + len(b.log.delivered) == 40
    seen = len(losses_only.lost)
    b.broker.remove_observer(losses_only)
    for index in range(40):
        b.broker.publish(None, "t", b"again %d" % index, qos=0)
    b.sched.run()
    assert len(b.log.lost) > seen == len(losses_only.lost)


@pytest.mark.req("BUS-FAULT")
def test_a_publication_nobody_subscribes_to_is_counted_and_retained_but_delivered_to_none() -> None:
    """The broker's short cut for topics without subscribers keeps the totals and the retained
    message, and a later subscriber still gets routed to."""
    b = bench()
    b.client("pub")
    for _ in range(2):  # the second time the empty route is cached
        b.broker.publish("pub", "a/ack", b"x", qos=1)
        b.broker.publish("pub", "a/state", b"s", qos=1, retain=True)
    assert b.broker.counts["published"] == 4
    inbox = b.client("sub", "a/#")
    b.broker.publish("pub", "a/ack", b"y", qos=1)
    b.sched.run()
    assert inbox.payloads == [b"s", b"y"] and not b.log.lost


# ---------------------------------------------------------------------- determinism


def _faulty_run(seed: int) -> list[Delivered | Lost]:
    config = BusSettings(latency_s=0.05, jitter_s=0.5, latency="uniform", drop=0.1, duplicate=0.2)
    b = bench(config, seed)
    for name in ("a", "b", "c"):
        b.client(name, "bwc/#", qos=1, clean=name != "c")
    for index in range(200):
        b.at(index * 0.1, lambda index=index: b.broker.publish(None, "bwc/e", b"%d" % index, qos=index % 2))
    b.at(5.0, lambda: b.broker.disconnect_client("a", 2.0))
    b.at(12.0, lambda: b.broker.outage(1.0))
    b.sched.run()
    return b.log.events


@pytest.mark.req("P-DET")
def test_same_seed_gives_the_same_delivery_log() -> None:
    first = _faulty_run(42)
    assert first == _faulty_run(42)
    assert repr(first) == repr(_faulty_run(42))
    assert first != _faulty_run(43)


@pytest.mark.req("P-DET")
def test_the_global_random_generator_is_never_used() -> None:
    random.seed(1234)
    state = random.getstate()
    sched = Scheduler()
    broker = SimBroker(sched, BusSettings(latency_s=0.1, jitter_s=1.0, latency="exponential", drop=0.5))
    inbox = Inbox(sched)
    broker.connect("c", inbox)
    broker.subscribe("c", "t", 1)
    for index in range(100):
        broker.publish(None, "t", b"%d" % index, qos=index % 2)
    sched.run()
    assert random.getstate() == state
    assert inbox.received  # something did happen
