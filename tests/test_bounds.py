"""Bounded resources (R-BOUND, SPEC §14): what an outsider sends cannot grow the camera.

Covered: payload nesting depth (``too_deep``, never an ``internal_error``), id and field lengths
(``too_long``, nothing kept or echoed), the cap on open activities, the capped and expiring
duplicate table (and its journal form), the bounded memory of ended activities, and the cost
of one event, which must not grow with the number of open activities. That last one is
measured by counting the Python lines executed per event (deterministic), never by a clock;
``bench/bound_activities.py`` prints the times.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec
import pytest
from signing import CAM, EVENT, Sender, ack, signed_node

from controller import trust
from controller.bounds import MAX_DEPTH, Limits, Remembered, ReplyTable, depth_exceeds, long_field
from controller.codec import decode_event, peek_id
from controller.messages import Ack
from controller.node import CameraSetup
from controller.policy import load_policy
from controller.reference import ReferenceNode
from controller.trust import Admitted, Gate, Refusal

CBP = load_policy(str(Path(__file__).resolve().parents[1] / "scenarios/policies/cbp-like.yaml"))


def _event(msg_id: object, event_type: str = "dock", **fields: Any) -> bytes:
    return json.dumps({"id": msg_id, "type": event_type, **fields}).encode()


@pytest.mark.req("R-BOUND")
@pytest.mark.parametrize(("payload", "deep"), [
    (b"[" * 16 + b"]" * 16, False),
    (b"[" * 17 + b"]" * 17, True),
    (b'{"a": {"b": [1, [2, [3]]]}}', False),
    (b'{"x": "' + b"[" * 500 + b'"}', False),  # brackets inside a string nest nothing
    (b'{"x": "\\"' + b"[" * 500 + b'"}', False),  # nor after an escaped quote
    (b"[]" * 5000, False),  # wide is not deep
    (b"[" * 5000, True),  # unpaired: counted as if it all nested
    (b"[" * 10 + b"}" * 10, False),  # broken, but shallow: the parser names the problem
    (b'{"id": 1, "type": "dock", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", True),
])
def test_depth_is_measured_without_a_parser(payload: bytes, deep: bool) -> None:
    assert depth_exceeds(payload, MAX_DEPTH) is deep


@pytest.mark.req("R-BOUND", "R-BAD")
@pytest.mark.parametrize("signed", [False, True])
def test_a_deeply_nested_payload_is_nacked_too_deep_and_changes_nothing(signed: bool) -> None:
    node = signed_node(signed=signed)
    before = node.camera.snapshot()
    for depth in (17, 1_000, 30_000):
        payload = b'{"id": "deep", "type": "dock", "x": ' + b"[" * depth + b"]" * depth + b"}"
        if len(payload) > 64 * 1024:
            payload = b"[" * depth  # oversized would be refused for its size first
        reply = ack(node.on_message(EVENT, payload, 1.0))
        assert reply.error == f"too_deep: nested more than {MAX_DEPTH} levels", reply
    if signed:  # a body nested deep inside a valid signature
        body = b'{"id":"d","type":"dock","seq":1,"to":"cam-1","x":' + b"[" * 40 + b"]" * 40 + b"}"
        reply = ack(node.on_message(EVENT, Sender("device-cam-1").signed(body), 2.0))
        assert reply.error is not None and reply.error.startswith("too_deep"), reply
    node.on_timer(2.0)
    assert node.camera.snapshot() == {**before, "charge": node.camera.charge}
    assert decode_event(b"[" * 3000) is not None and peek_id(b"[" * 3000 + b"]" * 3000) is None


@pytest.mark.req("R-BOUND")
def test_long_ids_and_fields_are_refused_and_never_kept_or_echoed() -> None:
    node = signed_node(signed=False)
    cases = [
        (_event("i" * 129), None, "too_long: id"),
        (_event("é" * 100), None, "too_long: id"),  # 100 characters, 200 bytes
        (_event(2**64), None, "too_long: id"),
        (_event(-(2**63) - 1), None, "too_long: id"),
        (_event("ok-1", "activity_start", activity="patrol", activity_id="a" * 500), "ok-1",
         "too_long: activity_id"),
        (_event("ok-2", "activity_start", activity="patrol", activity_id="é" * 100), "ok-2",
         "too_long: activity_id"),
        (_event("ok-3", "deactivate", reason="r" * 129, actor="x"), "ok-3", "too_long: reason"),
        (_event("ok-4", "signal", source="s" * 4000), "ok-4", "too_long: source"),
    ]
    for payload, echoed, error in cases:
        reply = ack(node.on_message(EVENT, payload, 1.0))
        assert (reply.id, reply.ok) == (echoed, False)
        assert reply.error is not None and reply.error.startswith(error), reply
    assert node.camera.snapshot()["active"] == []
    kept = [e.id for e in node.camera.replies.entries()]
    assert all(len(str(i).encode()) <= 128 for i in kept)
    # At the limit everything is accepted.
    assert ack(node.on_message(EVENT, _event("i" * 128, "activity_start", activity="patrol",
                                             activity_id="a" * 128), 2.0)).ok
    assert ack(node.on_message(EVENT, _event(2**63 - 1), 3.0)).ok
    assert long_field([("x", "é" * 64)], 128) is None and long_field([("x", "é" * 65)], 128)


@pytest.mark.req("R-BOUND")
def test_open_activities_are_capped_and_one_more_changes_nothing() -> None:
    node = signed_node(signed=False, limits=Limits(max_open_activities=3))
    for i in range(3):
        assert ack(node.on_message(EVENT, _event(f"s-{i}", "activity_start", activity="patrol",
                                                 activity_id=f"p-{i}"), 1.0 + i)).ok
    node.on_timer(10.0)
    before = node.camera.snapshot()
    reply = ack(node.on_message(EVENT, _event("s-3", "activity_start", activity="patrol",
                                              activity_id="p-3"), 10.0))
    assert reply.error == "too_many_activities: 3 open"
    assert node.camera.snapshot() == before
    # Discretionary and prohibited activities count too: each is kept until it ends.
    assert not ack(node.on_message(EVENT, _event("s-4", "activity_start",
                                                 activity="first_amendment_activity",
                                                 activity_id="fa-1"), 11.0)).ok
    # A repeat of a running activity is no new one; ending one makes room.
    assert ack(node.on_message(EVENT, _event("s-5", "activity_start", activity="patrol",
                                             activity_id="p-0"), 12.0)).ok
    assert ack(node.on_message(EVENT, _event("e-0", "activity_end", activity_id="p-0"), 13.0)).ok
    assert ack(node.on_message(EVENT, _event("s-6", "activity_start", activity="patrol",
                                             activity_id="p-3"), 14.0)).ok


@pytest.mark.req("R-BOUND", "R-IDEM")
def test_ended_activities_are_remembered_for_the_newest_only() -> None:
    node = signed_node(signed=False, limits=Limits(max_remembered=5))
    for i in range(20):
        node.on_message(EVENT, _event(f"s-{i}", "activity_start", activity="patrol",
                                      activity_id=f"p-{i}"), float(i))
        node.on_message(EVENT, _event(f"e-{i}", "activity_end", activity_id=f"p-{i}"), i + 0.5)
    assert list(node.camera.ended) == [f"p-{i}" for i in range(15, 20)]
    assert len(node.camera.replies) == 5
    assert ack(node.on_message(EVENT, _event("again-19", "activity_end", activity_id="p-19"), 30.0)).ok
    assert ack(node.on_message(EVENT, _event("again-0", "activity_end", activity_id="p-0"), 31.0)).error == (
        "unknown_activity: p-0")


@pytest.mark.req("R-BOUND")
@pytest.mark.parametrize("limit", [1, 8, 40, 128])
def test_a_field_is_too_long_exactly_when_its_utf8_exceeds_the_limit_whatever_the_payload_size(
    limit: int,
) -> None:
    """The gate skips the field check for payloads no longer than the limit (no string in them
    can be longer): at, below and above that size the verdict is the one long_field gives."""
    gate = Gate("cam-1", CBP, None, Limits(max_field_bytes=limit))
    for text in ("", "a", "é", "\U0001F600", "x" * limit, "é" * limit, "a" * (limit + 1)):
        for escaped in (False, True):
            payload = json.dumps({"id": 1, "type": "signal", "source": text},
                                 ensure_ascii=escaped, separators=(",", ":")).encode()
            verdict = gate.admit(payload)
            expected = long_field([("source", text)], limit)
            if expected is None:
                assert not isinstance(verdict, Refusal) or not verdict.error.startswith(
                    "too_long"), (payload, verdict)
            else:
                # (over 128 characters the schema's own length names it first)
                assert isinstance(verdict, Refusal) and verdict.error.startswith(
                    "too_long: source"), payload


@pytest.mark.req("R-BOUND")
def test_cameras_without_signatures_share_the_verdict_on_the_same_bytes_per_field_limit() -> None:
    """A team message reaches every camera of the team as the same bytes: decoded once."""
    payload = _event("t-1", "activity_start", activity="patrol", activity_id="a" * 60)
    first, second = Gate("cam-1", CBP), Gate("cam-2", CBP)
    verdict = first.admit(payload)
    assert isinstance(verdict, Admitted) and second.admit(payload) is verdict
    strict = Gate("cam-3", CBP, None, Limits(max_field_bytes=40)).admit(payload)
    assert isinstance(strict, Refusal) and strict.error.startswith("too_long: activity_id")
    assert Gate("cam-4", CBP).admit(bytes(payload)) == verdict  # equal bytes, another object
    assert Gate("cam-5", CBP).admit(bytearray(payload)) == verdict  # type: ignore[arg-type]  # not a key


@pytest.mark.req("R-BOUND")
def test_only_short_payloads_are_remembered_so_a_long_one_costs_no_hash_of_its_length() -> None:
    """A payload longer than the memo's bound is neither looked up nor kept: hashing it would
    cost as much as it is long, and one over the payload limit must be refused at once."""
    gate = Gate("cam-1", CBP)
    memo = trust._UNSIGNED[gate.limits.max_field_bytes]
    memo.clear()
    short = _event("m-1", "activity_start", activity="patrol", activity_id="a1")
    padded = _event("m-2", "activity_start", activity="patrol", activity_id="a2", note="x" * 2000)
    huge = b'{"id":"m-3","type":"signal","source":"holster","pad":"' + b"y" * (1 << 20) + b'"}'
    assert isinstance(gate.admit(short), Admitted) and short in memo
    assert isinstance(gate.admit(padded), Admitted) and padded not in memo
    refused = gate.admit(huge)
    assert isinstance(refused, Refusal) and refused.error.startswith("payload_too_large")
    assert list(memo) == [short]


@pytest.mark.req("R-BOUND", "R-IDEM")
def test_the_duplicate_table_is_capped_expires_after_the_redelivery_window_and_restores() -> None:
    table = ReplyTable(Limits(max_remembered=3, duplicate_window_s=100.0))
    for i in range(5):
        table.put((None, i), Ack(id=i, ok=True), float(i))
    assert len(table) == 3 and table.get((None, 0), 5.0) is None
    assert table.get((None, 4), 5.0) == Ack(id=4, ok=True)
    assert table.get((None, 4), 104.0) is not None  # exactly the window: kept
    assert table.get((None, 4), 104.5) is None and len(table) == 0
    table.put(("dispatch", "m-1"), Ack(id="m-1", ok=False, error="x"), 200.0)
    data = msgspec.json.encode(table.entries())
    restored = ReplyTable(Limits(max_remembered=3, duplicate_window_s=100.0))
    restored.restore(msgspec.json.decode(data, type=list[Remembered]))
    assert restored.get(("dispatch", "m-1"), 250.0) == Ack(id="m-1", ok=False, error="x")
    assert restored.get((None, "m-1"), 250.0) is None  # ids are the sender's own


@pytest.mark.req("R-BOUND", "R-IDEM", "R-FRESH")
def test_a_redelivery_after_the_window_has_no_second_effect_when_signed() -> None:
    node = signed_node(limits=Limits(duplicate_window_s=60.0))
    dispatch = Sender("dispatch")
    start = dispatch.command("m-1", "activity_start", activity="patrol", activity_id="p-1")
    end = dispatch.command("m-2", "activity_end", activity_id="p-1")
    assert ack(node.on_message(EVENT, start, 1.0)).ok
    assert ack(node.on_message(EVENT, end, 2.0)).ok
    assert ack(node.on_message(EVENT, start, 30.0)).ok  # within the window: the first reply
    late = ack(node.on_message(EVENT, start, 100.0))  # after it: the spent number says replayed
    assert late.error is not None and late.error.startswith("replayed")
    assert node.camera.snapshot()["active"] == []


@pytest.mark.req("R-BOUND")
def test_memory_stays_bounded_under_a_flood_of_distinct_ids() -> None:
    node = signed_node(signed=False, limits=Limits(max_remembered=100))
    for i in range(3_000):
        node.on_message(EVENT, _event(f"{i:0>120}", "activity_end", activity_id=f"a{i}"), i * 0.001)
    assert len(node.camera.replies) == 100
    assert len(node.camera.ended) == 0 and node.camera.activities == {}


# ------------------------------------------------------------------ cost per event


def _lines_executed(call: Callable[[], object]) -> int:
    """Python lines executed by ``call`` (a deterministic measure of its work)."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        call()
    finally:
        sys.settrace(previous)
    return count


def _costs(n_open: int) -> dict[str, int]:
    """Lines executed by typical events on a camera holding ``n_open`` open activities."""
    node = ReferenceNode(CameraSetup(camera_id=CAM, policy=CBP,
                                     limits=Limits(max_open_activities=n_open + 10)))
    node.start(0.0)
    t = 1.0
    for i in range(n_open):
        node.on_message(EVENT, _event(f"s-{i}", "activity_start", activity="patrol",
                                      activity_id=f"p-{i}"), t)
        t += 0.001
    events = {
        "new activity": _event("n-1", "activity_start", activity="patrol", activity_id="new"),
        "end with tail": _event("n-2", "activity_end", activity_id="new"),
        "button": _event("n-3", "button", action="start"),
        "stop refused": _event("n-4", "button", action="stop"),
        "redelivery": _event("n-3", "button", action="start"),
        "garbage": b"not json",
        "signal": _event("n-5", "signal", source="taser"),
    }
    costs = {}
    for name, payload in events.items():
        t += 1.0
        at = t
        costs[name] = _lines_executed(lambda: node.on_message(EVENT, payload, at))  # noqa: B023
    t += 200.0  # past the tail: the timer that closes it
    costs["tail timer"] = _lines_executed(lambda: node.on_timer(t))
    return costs


@pytest.mark.req("R-BOUND")
def test_the_cost_of_an_event_does_not_grow_with_the_open_activities() -> None:
    few, many = _costs(20), _costs(4_000)
    # O(log n) allows a few more heap steps; O(n) would be thousands of lines more.
    for name in few:
        assert many[name] <= few[name] + 40, (name, few[name], many[name])
