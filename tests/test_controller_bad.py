"""Malformed input is refused with a NACK naming the problem, and changes nothing (R-BAD).

These drive the bytes-level :class:`~controller.reference.ReferenceNode`, since decoding is
where most malformed input is caught.
"""

from __future__ import annotations

from typing import Any

import pytest
from camera_driver import NodeDriver

from controller.codec import MAX_PAYLOAD
from controller.messages import Ack

pytestmark = pytest.mark.req("R-BAD")

BAD_PAYLOADS: list[tuple[str, bytes, Any, str]] = [
    # (case, payload, id the NACK carries, start of the error text)
    ("not-json", b"not json at all", None, "invalid_json"),
    ("empty", b"", None, "invalid_json"),
    ("not-utf8", b'{"id": "\xff"}', None, "invalid_utf8"),
    ("cut-utf8-sequence", b'{"id": 1, "type": "d\xc3"}', None, "invalid_utf8: byte 20"),
    ("array", b"[1, 2]", None, "not_an_object: got array"),
    ("string", b'"dock"', None, "not_an_object: got string"),
    ("no-id", b'{"type": "dock"}', None, "missing_field: id"),
    ("bool-id", b'{"id": true, "type": "dock"}', None, "invalid_field: id"),
    ("float-id", b'{"id": 1.5, "type": "dock"}', None, "invalid_field: id"),
    ("no-type", b'{"id": 7}', 7, "missing_field: type"),
    ("null-type", b'{"id": 7, "type": null}', 7, "invalid_field: type"),
    ("unknown-type", b'{"id": 7, "type": "teleport"}', 7, "unknown_type: 'teleport'"),
    ("missing-field", b'{"id": "a", "type": "activity_start", "activity": "patrol"}', "a",
     "missing_field: activity_id"),
    ("wrong-type", b'{"id": "a", "type": "activity_start", "activity": 5, "activity_id": "x"}',
     "a", "invalid_field: activity"),
    ("bad-ts", b'{"id": "a", "type": "dock", "ts": "noon"}', "a", "invalid_field: ts"),
    ("bad-action", b'{"id": "a", "type": "button", "action": "pause"}', "a",
     "invalid_field: action"),
    ("unknown-activity",
     b'{"id": "a", "type": "activity_start", "activity": "karaoke", "activity_id": "k"}', "a",
     "unknown_activity: karaoke"),
    ("huge-number", b'{"id": "a", "type": "dock", "ts": 1e999}', None, "invalid_json"),
]


def observable(drv: NodeDriver) -> tuple[Any, ...]:
    cam = drv.camera
    return (cam.snapshot(), cam.active, cam.manual_hold, len(drv.recordings),
            len(drv.segments_published), list(cam.uploads))


def warrant_running(settled_at: float = 150) -> NodeDriver:
    """A camera recording a warrant, with battery and storage brought up to ``settled_at``
    (they advance lazily), so that a snapshot taken now compares with one taken after a
    bad message at that same instant."""
    drv = NodeDriver()
    drv.raw(100, '{"id": "w", "type": "activity_start", "activity": "arrest_warrant", '
                 '"activity_id": "w-1"}')
    drv.advance(settled_at)
    drv.node.on_timer(settled_at)
    return drv


@pytest.mark.parametrize(("payload", "msg_id", "error"),
                         [c[1:] for c in BAD_PAYLOADS], ids=[c[0] for c in BAD_PAYLOADS])
def test_bad_payload_is_nacked_naming_the_problem_and_changes_nothing(
    payload: bytes, msg_id: Any, error: str
) -> None:
    drv = warrant_running()
    before = observable(drv)
    n_audit = len(drv.camera.audit)
    out = drv.raw(150, payload)
    [ack] = out
    assert isinstance(ack, Ack) and ack.ok is False and ack.id == msg_id
    assert ack.error is not None and ack.error.startswith(error), ack.error
    assert observable(drv) == before
    entries = drv.camera.audit.entries[n_audit:]
    assert [e.kind for e in entries] == ["refused"] and entries[0].at == 150


def test_oversized_payload_is_refused_and_the_limit_itself_is_accepted() -> None:
    drv = NodeDriver()
    body = b'{"id": "big", "type": "dock", "pad": "'
    exact = body + b"x" * (MAX_PAYLOAD - len(body) - 2) + b'"}'
    assert len(exact) == 64 * 1024
    assert drv.raw_ack(1, exact).ok
    over = body.replace(b"big", b"bi2") + b"x" * (MAX_PAYLOAD - len(body) - 1) + b'"}'
    ack = drv.raw_ack(2, over)
    assert ack.ok is False and ack.error is not None
    assert ack.error.startswith("payload_too_large") and "65537" in ack.error
    assert ack.id is None, "an oversized payload is not parsed at all"
    assert drv.camera.state.value == "docked"


def test_wrong_topic_is_refused_naming_the_topic() -> None:
    drv = warrant_running()
    before = observable(drv)
    ack = drv.raw_ack(150, '{"id": "s", "type": "button", "action": "stop"}',
                      topic="bwc/cam-2/event")
    assert (ack.ok, ack.id, ack.error) == (False, "s", "wrong_topic: bwc/cam-2/event")
    assert observable(drv) == before


def test_unknown_fields_are_tolerated() -> None:
    """Reading: extra fields are ignored, as MQTT consumers usually do, so a newer sender can
    add fields without older cameras refusing its messages."""
    drv = NodeDriver()
    assert drv.raw_ack(1, '{"id": 1, "type": "button", "action": "start", "by": "ofc"}').ok


def test_handler_never_raises_even_when_the_core_does(monkeypatch: pytest.MonkeyPatch) -> None:
    drv = NodeDriver()

    def explode(*args: object) -> list[Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(drv.camera, "handle", explode)
    ack = drv.raw_ack(5, '{"id": 1, "type": "dock"}')
    assert (ack.ok, ack.error) == (False, "internal_error: RuntimeError")


@pytest.mark.parametrize("payload", [
    b"\x00\x01\x02", b"{" * 10_000, b'{"id": {"nested": [1, 2, {"x": null}]}, "type": "dock"}',
    b'{"id": 1, "type": "activity_end"}', b'{"id": 18446744073709551616, "type": "dok"}',
    b'{"id": "a", "type": "signal", "source": null}', "{\"id\": \"\u00e9\", \"type\": 3}".encode(),
])
def test_arbitrary_bytes_never_raise_and_never_change_state(payload: bytes) -> None:
    drv = warrant_running()
    before = observable(drv)
    out = drv.raw(150, payload)
    assert len(out) == 1 and isinstance(out[0], Ack)
    assert observable(drv) == before


def test_bad_input_does_not_touch_the_state_topic() -> None:
    drv = warrant_running()
    n = len(drv.publishes)
    drv.raw(150, b"garbage")
    assert [p.topic for p in drv.publishes[n:]] == ["bwc/cam-1/ack"]
