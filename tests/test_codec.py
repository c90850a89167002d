"""The codec (SPEC §5): inbound decoding with NACK texts that name the problem, outbound
encoding on the right topic with the right retain flag, and the topic scheme."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from controller.codec import (
    MAX_PAYLOAD,
    DecodeError,
    Topics,
    availability,
    camera_event_topic,
    decode_event,
    decode_outbound,
    encode,
    encode_event,
    peek_id,
    split_topic,
    team_event_topic,
)
from controller.messages import (
    EVENT_TYPES,
    Ack,
    ActivityEnd,
    ActivityStart,
    Alert,
    Button,
    Deactivate,
    Dock,
    MsgId,
    Reactivate,
    RecordingMeta,
    Signal,
    StateReport,
    Undock,
)

# ----------------------------------------------------------------------------------- inbound

VALID: list[tuple[dict[str, Any], object]] = [
    ({"id": "a", "type": "activity_start", "activity": "patrol", "activity_id": "p-1", "ts": 12.5},
     ActivityStart(id="a", ts=12.5, activity="patrol", activity_id="p-1")),
    ({"id": 2, "type": "activity_end", "activity_id": "p-1"}, ActivityEnd(id=2, activity_id="p-1")),
    ({"id": 3, "type": "dock"}, Dock(id=3)),
    ({"id": 4, "type": "undock", "ts": 7}, Undock(id=4, ts=7.0)),
    ({"id": 5, "type": "button", "action": "start"}, Button(id=5, action="start")),
    ({"id": 6, "type": "button", "action": "stop"}, Button(id=6, action="stop")),
    ({"id": 7, "type": "signal", "source": "taser"}, Signal(id=7, source="taser")),
    ({"id": 8, "type": "deactivate", "reason": "supervisor_order", "actor": "sgt-1"},
     Deactivate(id=8, reason="supervisor_order", actor="sgt-1")),
    ({"id": 9, "type": "reactivate"}, Reactivate(id=9)),
]


@pytest.mark.req("R-BAD")
@pytest.mark.parametrize(("obj", "expected"), VALID, ids=[v[0]["type"] for v in VALID])
def test_every_event_type_decodes(obj: dict[str, Any], expected: object) -> None:
    event = decode_event(json.dumps(obj).encode())
    assert event == expected
    assert decode_event(encode_event(event)) == event  # type: ignore[arg-type]


@pytest.mark.req("R-BAD")
def test_every_event_type_is_covered() -> None:
    assert {v[0]["type"] for v in VALID} == set(EVENT_TYPES)


@pytest.mark.req("R-IDEM")
def test_ids_keep_their_json_type() -> None:
    as_int = decode_event(b'{"id": 1, "type": "dock"}')
    as_str = decode_event(b'{"id": "1", "type": "dock"}')
    assert isinstance(as_int, Dock) and as_int.id == 1 and isinstance(as_int.id, int)
    assert isinstance(as_str, Dock) and as_str.id == "1"
    assert as_int != as_str


NACKS: list[tuple[str, bytes, MsgId | None, str]] = [
    # (case, payload, id in the NACK, exact error text)
    ("invalid-utf8", b'{"id": 1, "type": "d\xc3"}', None, "invalid_utf8: byte 20"),
    ("not-an-object", b"[]", None, "not_an_object: got array"),
    ("number", b"42", None, "not_an_object: got number"),
    ("null", b"null", None, "not_an_object: got null"),
    ("missing-id", b'{"type": "dock"}', None, "missing_field: id"),
    ("null-id", b'{"id": null, "type": "dock"}', None,
     "invalid_field: id: expected string or integer, got null"),
    ("object-id", b'{"id": {}, "type": "dock"}', None,
     "invalid_field: id: expected string or integer, got object"),
    ("missing-type", b'{"id": "x"}', "x", "missing_field: type"),
    ("null-type", b'{"id": "x", "type": null}', "x",
     "invalid_field: type: expected string, got null"),
    ("numeric-type", b'{"id": "x", "type": 1}', "x",
     "invalid_field: type: expected string, got number"),
    ("unknown-type", b'{"id": "x", "type": "fly"}', "x",
     "unknown_type: 'fly' (one of " + ", ".join(EVENT_TYPES) + ")"),
    ("missing-activity", b'{"id": "x", "type": "activity_start", "activity_id": "a"}', "x",
     "missing_field: activity"),
    ("missing-reason", b'{"id": "x", "type": "deactivate", "actor": "a"}', "x",
     "missing_field: reason"),
    ("missing-source", b'{"id": "x", "type": "signal"}', "x", "missing_field: source"),
    ("wrong-type-source", b'{"id": "x", "type": "signal", "source": 3}', "x",
     "invalid_field: source: Expected `str`, got `int`"),
    ("bool-ts", b'{"id": "x", "type": "dock", "ts": true}', "x",
     "invalid_field: ts: Expected `float | null`, got `bool`"),
    ("bad-action", b'{"id": 3, "type": "button", "action": "hold"}', 3,
     "invalid_field: action: Invalid enum value 'hold'"),
]


@pytest.mark.req("R-BAD")
@pytest.mark.parametrize(("payload", "msg_id", "error"), [n[1:] for n in NACKS],
                         ids=[n[0] for n in NACKS])
def test_each_error_kind_names_the_problem(
    payload: bytes, msg_id: MsgId | None, error: str
) -> None:
    assert decode_event(payload) == DecodeError(msg_id, error)


@pytest.mark.req("R-BAD")
@pytest.mark.parametrize("payload", [b"", b"{", b"not json", b"{'id': 1}", b'{"id": 1,}'])
def test_not_json_says_so_and_where(payload: bytes) -> None:
    result = decode_event(payload)
    assert isinstance(result, DecodeError) and result.id is None
    assert result.error.startswith("invalid_json: ")
    assert len(result.error) > len("invalid_json: ")


@pytest.mark.req("R-BAD")
def test_payload_size_limit_is_64_kib() -> None:
    head = b'{"id": 1, "type": "dock", "x": "'
    fits = head + b"a" * (MAX_PAYLOAD - len(head) - 2) + b'"}'
    assert len(fits) == MAX_PAYLOAD == 65536
    assert isinstance(decode_event(fits), Dock)
    over = fits[:-2] + b'a"}'
    assert decode_event(over) == DecodeError(None, "payload_too_large: 65537 bytes > 65536")


@pytest.mark.req("R-BAD")
def test_decode_never_raises_on_nasty_input() -> None:
    nasty = [b"\x00", b"\xff\xfe", b"[" * 100_000, b'{"id": "\\ud800", "type": "dock"}',
             b'{"id": 1, "type": "dock", "ts": NaN}', b"1e999", b'"\\u0000"']
    for payload in nasty:
        assert isinstance(decode_event(payload), DecodeError), payload[:20]


@pytest.mark.req("R-BAD")
def test_peek_id_reads_ids_only_where_they_are_readable() -> None:
    assert peek_id(b'{"id": "a", "type": 5}') == "a"
    assert peek_id(b'{"id": 5}') == 5
    assert peek_id(b'{"id": true}') is None
    assert peek_id(b"[1]") is None
    assert peek_id(b"junk") is None
    assert peek_id(b'{"id": 1, "x": "' + b"a" * MAX_PAYLOAD + b'"}') is None


# ---------------------------------------------------------------------------------- outbound

TOPICS = Topics("cam-1")
STATE = StateReport(state="recording", since=1.5, active=["p-1"], battery_s=100.0, storage_s=9.0)
ALERT = Alert(kind="late_trigger", at=3.0, activity_id="s-1", span=(1.0, 2.0))
RECORDING = RecordingMeta(camera="cam-1", recording="cam-1-r1", incident="cam-1-1", start=0.0,
                          end=10.0, buffer_s=5.0, reasons=["p-1"], segments=1,
                          segment_list=[(0.0, 10.0)], final=True)
OUTBOUND: list[tuple[str, object, str, bool]] = [
    ("ack", Ack(id="m-1", ok=True), "bwc/cam-1/ack", False),
    ("nack", Ack(id=None, ok=False, error="invalid_json: x"), "bwc/cam-1/ack", False),
    ("state", STATE, "bwc/cam-1/state", True),
    ("alert", ALERT, "bwc/cam-1/alert", False),
    ("recording", RECORDING, "bwc/cam-1/recording", False),
]


@pytest.mark.req("R-META", "R-IDEM")
@pytest.mark.parametrize(("msg", "topic", "retain"), [o[1:] for o in OUTBOUND],
                         ids=[o[0] for o in OUTBOUND])
def test_each_outbound_kind_goes_on_its_topic_with_its_retain_flag(
    msg: Any, topic: str, retain: bool
) -> None:
    pub = encode(msg, TOPICS)
    assert (pub.topic, pub.retain, pub.qos) == (topic, retain, 1)
    kind = topic.rsplit("/", 1)[1]
    assert decode_outbound(kind, pub.payload) == msg


@pytest.mark.req("R-IDEM")
def test_ack_payloads_are_minimal_and_nack_ids_may_be_null() -> None:
    assert json.loads(encode(Ack(id=7, ok=True), TOPICS).payload) == {"id": 7, "ok": True}
    assert json.loads(encode(Ack(id=None, ok=False, error="e"), TOPICS).payload) == {
        "id": None, "ok": False, "error": "e"}


@pytest.mark.req("R-MISS")
def test_alert_payload_carries_only_the_fields_that_apply() -> None:
    missed = Alert(kind="missed_required_recording", at=4.0, cause="docked", activity_id="p-1")
    assert json.loads(encode(missed, TOPICS).payload) == {
        "kind": "missed_required_recording", "at": 4.0, "cause": "docked", "activity_id": "p-1"}
    assert json.loads(encode(ALERT, TOPICS).payload)["span"] == [1.0, 2.0]
    assert json.loads(encode(Alert(kind="low_battery", at=1.0), TOPICS).payload) == {
        "kind": "low_battery", "at": 1.0}


@pytest.mark.req("R-META", "R-AUTH")
def test_state_payload_has_the_spec_fields() -> None:
    # auth says how the camera authenticates commands: an unsigned camera says so (SPEC §14).
    assert json.loads(encode(STATE, TOPICS).payload) | {"auth": "none"} == json.loads(
        encode(STATE, TOPICS).payload)
    assert set(json.loads(encode(STATE, TOPICS).payload)) == {
        "state", "since", "active", "battery_s", "storage_s", "auth"}


@pytest.mark.req("BUS-RETAIN")
def test_availability_is_retained_online_or_offline() -> None:
    online, offline = availability(TOPICS), availability(TOPICS, online=False)
    assert (online.topic, online.payload, online.retain) == ("bwc/cam-1/availability", b"online", True)
    assert (offline.payload, offline.retain) == (b"offline", True)


@pytest.mark.req("R-META")
def test_decode_outbound_refuses_a_payload_that_breaks_the_schema() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_outbound("ack", b'{"ok": "yes", "id": 1}')
    with pytest.raises(msgspec.DecodeError):
        decode_outbound("state", b"nope")


# ------------------------------------------------------------------------------------ topics


@pytest.mark.req("R-BAD")
def test_topic_scheme_under_a_prefix() -> None:
    t = Topics("cam-7", "agency/bwc")
    assert (t.event, t.state, t.ack, t.alert, t.recording, t.availability) == (
        "agency/bwc/cam-7/event", "agency/bwc/cam-7/state", "agency/bwc/cam-7/ack",
        "agency/bwc/cam-7/alert", "agency/bwc/cam-7/recording", "agency/bwc/cam-7/availability")
    assert t.team_event("sr-1") == "agency/bwc/team/sr-1/event" == team_event_topic(
        "sr-1", "agency/bwc")
    assert camera_event_topic("cam-7") == "bwc/cam-7/event"


@pytest.mark.req("R-BAD")
@pytest.mark.parametrize(("topic", "expected"), [
    ("bwc/cam-1/state", ("cam-1", "state")),
    ("bwc/team/sr-1/event", ("team/sr-1", "event")),
    ("other/cam-1/state", None),
    ("bwc/cam-1", None),
    ("bwc/a/b/c", None),
])
def test_split_topic(topic: str, expected: tuple[str, str] | None) -> None:
    assert split_topic(topic) == expected
