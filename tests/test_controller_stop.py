"""Manual stop and deactivation (R-STOP, SPEC §4a "Holds" and "Deactivation")."""

from __future__ import annotations

import pytest
from camera_driver import ALLOWED_REASON, DHS, CameraDriver, make_policy

pytestmark = pytest.mark.req("R-STOP")

DHS_REASONS = [
    "medical_facility_privacy",
    "victim_or_witness_request",
    "informant_or_undercover_safety",
    "supervisor_order",
]


def deactivated(drv: CameraDriver) -> bool:
    return bool(drv.camera.snapshot()["deactivated"])


def audit_kinds(drv: CameraDriver) -> list[str]:
    return [e.kind for e in drv.camera.audit.entries]


def test_dhs_allows_exactly_the_four_reasons() -> None:
    assert DHS.deactivation_reasons == frozenset(DHS_REASONS)


def test_button_stop_is_refused_during_a_required_activity() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    ack = drv.send(150, "button", action="stop")
    assert (ack.ok, ack.error) == (False, "required_activity")
    assert drv.state == "recording"
    drv.end(200, "p-1")
    [rec] = drv.recordings
    assert (rec.start, rec.end) == (70, 200)


def test_button_stop_is_refused_during_the_post_s_tail() -> None:
    """The required window runs to end + post_s, so the tail is as protected as the activity."""
    drv = CameraDriver(policy=make_policy(post_s=60))
    drv.start(100, "patrol", "p-1")
    drv.end(200, "p-1")
    ack = drv.send(230, "button", action="stop")
    assert (ack.ok, ack.error) == (False, "required_activity")
    drv.advance(300)
    assert drv.recordings[0].end == 260


def test_button_stop_releases_a_manual_hold() -> None:
    drv = CameraDriver()
    drv.send(100, "button", action="start")
    assert drv.send(200, "button", action="stop").ok
    assert drv.state == "pre_buffer"
    assert drv.recordings[0].end == 200


@pytest.mark.parametrize("initial", ["pre_buffer", "docked", "standby"])
def test_button_stop_when_nothing_records_is_acked_with_no_effect(initial: str) -> None:
    drv = CameraDriver(initial=initial)
    before = drv.camera.snapshot()
    ack = drv.send(1, "button", action="stop")
    assert ack.ok and ack.error is None
    assert drv.camera.snapshot()["state"] == before["state"]
    assert drv.recordings == []


@pytest.mark.parametrize("reason", DHS_REASONS)
def test_allowed_deactivation_pauses_and_is_audited(reason: str) -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    ack = drv.send(200, "deactivate", reason=reason, actor="ofc-7")
    assert ack.ok
    assert drv.state == "pre_buffer" and deactivated(drv)
    assert drv.recordings[0].end == 200
    [entry] = [e for e in drv.camera.audit.entries if e.kind == "deactivation"]
    assert entry.at == 200
    assert entry.data["reason"] == reason and entry.data["actor"] == "ofc-7"
    assert entry.data["windows"] == ["p-1"]


def test_disallowed_reason_is_refused_and_recording_continues() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    ack = drv.send(200, "deactivate", reason="felt_like_it", actor="ofc-7")
    assert (ack.ok, ack.error) == (False, "reason_not_allowed")
    assert drv.state == "recording" and not deactivated(drv)
    assert drv.segments_published == []


@pytest.mark.parametrize(
    "resume",
    [
        ("reactivate", {}),
        ("activity_start", {"activity": "search_warrant", "activity_id": "s-1"}),
        ("signal", {"source": "holster"}),
        ("button", {"action": "start"}),
    ],
    ids=["reactivate", "new-required-activity", "signal", "button-start"],
)
def test_resume_keeps_the_incident_and_prepends_the_buffer(
    resume: tuple[str, dict[str, str]]
) -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.send(200, "deactivate", reason=ALLOWED_REASON, actor="ofc-7")
    event_type, fields = resume
    assert drv.send(215, event_type, **fields).ok
    assert drv.state == "recording" and not deactivated(drv)
    drv.finish(300)
    first, second = drv.recordings
    assert second.incident == first.incident
    assert (second.start, second.buffer_s) == (200, 15), "buffer since the pause, per R-BUF"
    assert "deactivation_end" in audit_kinds(drv)


def test_resume_after_a_long_pause_prepends_only_prebuffer_s() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.send(200, "deactivate", reason=ALLOWED_REASON, actor="ofc-7")
    drv.send(500, "reactivate")
    drv.finish(600)
    assert (drv.recordings[1].start, drv.recordings[1].buffer_s) == (470, 30)


def test_deactivation_ends_by_itself_when_no_window_remains() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.send(200, "deactivate", reason=ALLOWED_REASON, actor="ofc-7")
    drv.end(300, "p-1")
    assert not deactivated(drv)
    [end] = [e for e in drv.camera.audit.entries if e.kind == "deactivation_end"]
    assert end.at == 300 and end.data == {"by": "windows_closed", "since": 200}
    drv.start(400, "patrol", "p-2")  # a new incident, not a resumption
    drv.finish(410)
    assert drv.recordings[0].incident != drv.recordings[1].incident


def test_deactivation_ends_when_the_last_tail_expires() -> None:
    drv = CameraDriver(policy=make_policy(post_s=60))
    drv.start(100, "patrol", "p-1")
    drv.end(200, "p-1")
    drv.send(230, "deactivate", reason=ALLOWED_REASON, actor="ofc-7")
    assert deactivated(drv) and drv.state == "pre_buffer"
    drv.advance(260)
    assert not deactivated(drv)


def test_deactivate_outside_a_window_is_a_button_stop() -> None:
    """SPEC §4a: outside a required window deactivate acts as button stop — any reason."""
    drv = CameraDriver()
    drv.send(100, "button", action="start")
    assert drv.send(150, "deactivate", reason="not_a_listed_reason", actor="ofc-7").ok
    assert drv.state == "pre_buffer" and not deactivated(drv)
    assert "deactivation" not in audit_kinds(drv)
    assert drv.recordings[0].end == 150


def test_deactivate_when_nothing_records_is_acked_with_no_effect() -> None:
    drv = CameraDriver()
    assert drv.send(10, "deactivate", reason=ALLOWED_REASON, actor="ofc-7").ok
    assert drv.state == "pre_buffer" and drv.recordings == []


def test_reactivate_without_a_deactivation_is_acked_with_no_effect() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    assert drv.send(150, "reactivate").ok
    assert drv.send(160, "reactivate").ok
    drv.end(200, "p-1")
    assert len(drv.recordings) == 1


def test_deactivation_drops_the_manual_hold() -> None:
    drv = CameraDriver()
    drv.send(90, "button", action="start")
    drv.start(100, "patrol", "p-1")
    drv.send(200, "deactivate", reason=ALLOWED_REASON, actor="ofc-7")
    assert drv.state == "pre_buffer" and not drv.camera.manual_hold
    drv.end(300, "p-1")
    assert drv.state == "pre_buffer", "no hold left once the window closed"


def test_button_stop_while_deactivated_is_acked() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.send(200, "deactivate", reason=ALLOWED_REASON, actor="ofc-7")
    assert drv.send(210, "button", action="stop").ok
    assert drv.state == "pre_buffer"


def test_second_deactivate_keeps_the_first() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.send(200, "deactivate", reason=ALLOWED_REASON, actor="ofc-7")
    assert drv.send(210, "deactivate", reason="supervisor_order", actor="sgt-2").ok
    assert audit_kinds(drv).count("deactivation") == 1


def test_disallowed_reason_while_deactivated_is_still_refused() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.send(200, "deactivate", reason=ALLOWED_REASON, actor="ofc-7")
    ack = drv.send(210, "deactivate", reason="bored", actor="ofc-7")
    assert (ack.ok, ack.error) == (False, "reason_not_allowed")
    assert deactivated(drv)


@pytest.mark.req("R-STOP", "R-DOCK", "R-MISS")
def test_dock_while_deactivated_announces_the_dock_and_stays_paused_after_boot() -> None:
    """Docked seconds outrank deactivated ones (SPEC §8), so the dock still needs its alert.
    After undocking the deactivation still holds: the camera buffers, and resumes on reactivate."""
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.send(200, "deactivate", reason=ALLOWED_REASON, actor="ofc-7")
    drv.send(250, "dock")
    assert [(a.cause, a.at) for a in drv.missed()] == [("docked", 250)]
    drv.send(300, "undock")
    assert [(a.cause, a.at) for a in drv.missed()][-1] == ("not_ready", 300)
    drv.advance(400)
    assert drv.state == "pre_buffer" and deactivated(drv)
    drv.send(410, "reactivate")
    drv.finish(420)
    first, second = drv.recordings
    assert second.incident == first.incident
    assert (second.start, second.buffer_s) == (380, 30)  # buffering since boot at 305
