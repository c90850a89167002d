"""Every message has an id; a redelivery is answered again with no second effect (R-IDEM)."""

from __future__ import annotations

import pytest
from camera_driver import CameraDriver, NodeDriver, make_event

from controller.messages import Ack

pytestmark = pytest.mark.req("R-IDEM")


def audit_kinds(drv: CameraDriver | NodeDriver) -> list[str]:
    return [e.kind for e in drv.camera.audit.entries]


def test_redelivered_start_has_no_second_effect() -> None:
    drv = CameraDriver()
    start = make_event("button", "b-1", action="start")
    drv.deliver(100, start)
    drv.send(200, "button", action="stop")
    assert drv.deliver(210, start) == Ack(id="b-1", ok=True)
    assert drv.state == "pre_buffer" and len(drv.recordings) == 1
    assert audit_kinds(drv)[-1] == "duplicate"


def test_redelivered_nack_replays_the_first_reply_even_after_things_changed() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    stop = make_event("button", "b-1", action="stop")
    first = drv.deliver(150, stop)
    assert (first.ok, first.error) == (False, "required_activity")
    drv.end(200, "p-1")
    drv.send(210, "button", action="start")
    again = drv.deliver(220, stop)      # would now be accepted, and would stop the recording
    assert again == first
    assert drv.state == "recording"


def test_redelivered_activity_end_is_not_refused_as_unknown() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    end = make_event("activity_end", "e-1", activity_id="p-1")
    assert drv.deliver(200, end).ok
    assert drv.deliver(201, end).ok


def test_redelivered_activity_start_after_its_end_does_not_reopen_it() -> None:
    drv = CameraDriver()
    start = make_event("activity_start", "s-1", activity="patrol", activity_id="p-1")
    drv.deliver(100, start)
    drv.end(200, "p-1")
    drv.deliver(300, start)             # QoS 1 redelivery after the end
    assert drv.state == "pre_buffer" and drv.camera.active == ()


def test_int_and_str_ids_are_different_messages() -> None:
    drv = CameraDriver()
    drv.deliver(100, make_event("button", 1, action="start"))
    ack = drv.deliver(200, make_event("button", "1", action="stop"))
    assert ack == Ack(id="1", ok=True)
    assert drv.state == "pre_buffer", "the str id was a new message"
    assert drv.deliver(300, make_event("button", 1, action="start")).id == 1
    assert drv.state == "pre_buffer", "the int id was a duplicate"


def test_unknown_activity_end_is_refused() -> None:
    drv = CameraDriver()
    ack = drv.end(10, "nobody")
    assert ack.ok is False and ack.error == "unknown_activity: nobody"


def test_end_of_an_already_ended_activity_is_acked_with_no_effect() -> None:
    """Reading: a second activity_end (a new id, e.g. sent to the team and to the camera) names
    a known activity, so it is not 'unknown'; it is acked and changes nothing."""
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.end(200, "p-1")
    assert drv.end(210, "p-1").ok
    assert len(drv.recordings) == 1


def test_redelivered_bad_payload_with_a_readable_id_replays_its_nack() -> None:
    drv = NodeDriver()
    payload = '{"id": "x-1", "type": "activity_start", "activity": "patrol"}'
    first = drv.raw_ack(10, payload)
    assert first.error == "missing_field: activity_id"
    assert drv.raw_ack(11, payload) == first
    assert audit_kinds(drv)[-2:] == ["refused", "duplicate"]


def test_nack_without_a_readable_id_carries_null_and_never_enters_the_table() -> None:
    drv = NodeDriver()
    a = drv.raw_ack(10, "not json")
    b = drv.raw_ack(11, "not json")
    assert a.id is None and b.id is None and a == b
    assert audit_kinds(drv).count("refused") == 2, "each unreadable delivery is its own refusal"
    assert None not in drv.camera.replies
