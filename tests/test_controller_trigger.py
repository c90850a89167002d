"""Required activities start recordings (R-TRIG); the buffer arithmetic (R-BUF); late triggers (R-LATE)."""

from __future__ import annotations

import pytest
from camera_driver import CameraDriver, make_policy

from controller.policy import Policy

REQUIRED = ["patrol", "emergency_response", "arrest_warrant", "search_warrant"]


def _tail_policy(post_s: float) -> Policy:
    """Required ``patrol`` with the policy-wide ``post_s``; ``search_warrant`` with its own 10 s."""
    return make_policy(
        activities={"patrol": {"kind": "required"},
                    "search_warrant": {"kind": "required", "post_s": 10}},
        post_s=post_s,
    )


# ------------------------------------------------------------------------------------ R-TRIG


@pytest.mark.req("R-TRIG")
@pytest.mark.parametrize("activity", REQUIRED)
def test_every_required_activity_starts_a_recording_that_covers_it(activity: str) -> None:
    drv = CameraDriver()
    assert drv.start(100, activity, "a-1").ok
    assert drv.state == "recording"
    assert drv.states[-1].state == "recording" and drv.states[-1].active == ["a-1"]
    assert drv.end(400, "a-1").ok
    assert drv.state == "pre_buffer"
    [rec] = drv.recordings
    assert rec.start <= 100 and rec.end == 400
    assert rec.reasons == ["a-1"]


@pytest.mark.req("R-TRIG")
def test_recording_covers_the_post_s_tail_then_ends_by_itself() -> None:
    drv = CameraDriver(policy=_tail_policy(60))
    drv.start(100, "patrol", "p-1")
    drv.end(200, "p-1")
    assert drv.state == "recording", "the tail keeps recording after the end"
    assert drv.camera.next_deadline() == 260
    drv.advance(259.9)
    assert drv.state == "recording"
    drv.advance(260)
    assert drv.state == "pre_buffer"
    [rec] = drv.recordings
    assert rec.end == 260


@pytest.mark.req("R-TRIG")
def test_per_activity_post_s_overrides_the_policy_default() -> None:
    drv = CameraDriver(policy=_tail_policy(60))
    drv.start(100, "search_warrant", "s-1")
    drv.end(200, "s-1")
    drv.advance(1000)
    assert drv.recordings[0].end == 210


@pytest.mark.req("R-TRIG")
def test_restart_inside_the_tail_keeps_the_recording_and_reopens_the_window() -> None:
    drv = CameraDriver(policy=_tail_policy(60))
    drv.start(100, "patrol", "p-1")
    drv.end(200, "p-1")
    assert drv.start(230, "patrol", "p-1").ok  # the same activity resumes inside its tail
    drv.advance(500)
    assert drv.state == "recording", "the reopened window has no end yet"
    drv.end(600, "p-1")
    drv.advance(700)
    [rec] = drv.recordings
    assert (rec.start, rec.end, rec.segments) == (70, 660, 1)


# ------------------------------------------------------------------------------------- R-BUF


@pytest.mark.req("R-BUF")
def test_activation_prepends_at_most_prebuffer_s() -> None:
    drv = CameraDriver()  # buffering since 0
    drv.start(100, "patrol", "p-1")
    drv.finish(101)
    [rec] = drv.recordings
    assert (rec.start, rec.buffer_s) == (70, 30)


@pytest.mark.req("R-BUF")
def test_footage_before_the_buffer_ran_does_not_exist() -> None:
    drv = CameraDriver()
    drv.start(12, "patrol", "p-1")
    drv.finish(20)
    [rec] = drv.recordings
    assert (rec.start, rec.buffer_s) == (0, 12)


@pytest.mark.req("R-BUF")
def test_activation_at_the_instant_the_buffer_starts_has_no_buffer() -> None:
    drv = CameraDriver()
    drv.start(0, "patrol", "p-1")
    drv.finish(5)
    [rec] = drv.recordings
    assert (rec.start, rec.buffer_s) == (0, 0)


@pytest.mark.req("R-BUF")
def test_buffer_restarts_when_a_recording_ends() -> None:
    """SPEC §4a: when a recording ends the camera enters pre_buffer and its buffer restarts."""
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.end(200, "p-1")
    drv.start(210, "patrol", "p-2")
    drv.finish(300)
    first, second = drv.recordings
    assert (first.start, first.end) == (70, 200)
    assert (second.start, second.buffer_s) == (200, 10)


@pytest.mark.req("R-BUF")
def test_buffer_after_boot_starts_at_boot_completion() -> None:
    drv = CameraDriver(initial="docked")
    drv.send(50, "undock")
    assert drv.state == "standby"
    drv.advance(55)
    assert drv.state == "pre_buffer"
    drv.start(65, "patrol", "p-1")
    drv.finish(70)
    assert (drv.recordings[0].start, drv.recordings[0].buffer_s) == (55, 10)


@pytest.mark.req("R-BUF")
@pytest.mark.parametrize("prebuffer_s", [0, 30, 120])
def test_prebuffer_s_is_the_reach(prebuffer_s: float) -> None:
    drv = CameraDriver(prebuffer_s=prebuffer_s)
    drv.start(1000, "patrol", "p-1")
    drv.finish(1001)
    assert drv.recordings[0].start == 1000 - prebuffer_s


@pytest.mark.req("R-BUF", "R-LATE")
def test_activation_time_is_arrival_not_ts() -> None:
    """SPEC §4a: t_act is when the message is handled; ts only feeds R-LATE."""
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1", ts=90)
    drv.finish(110)
    assert drv.recordings[0].start == 70
    assert drv.alerts_of("late_trigger") == []


# ------------------------------------------------------------------------------------ R-LATE


@pytest.mark.req("R-LATE")
def test_trigger_older_than_the_buffer_names_the_uncovered_span() -> None:
    drv = CameraDriver()
    drv.start(200, "search_warrant", "s-1", ts=150)
    [alert] = drv.alerts_of("late_trigger")
    assert alert.at == 200 and alert.activity_id == "s-1" and alert.span == (150, 170)
    assert drv.state == "recording"


@pytest.mark.req("R-LATE")
def test_trigger_exactly_at_the_buffer_reach_is_not_late() -> None:
    drv = CameraDriver()
    drv.start(200, "patrol", "p-1", ts=170)
    assert drv.alerts_of("late_trigger") == []


@pytest.mark.req("R-LATE")
def test_trigger_from_the_future_is_not_late() -> None:
    drv = CameraDriver()
    drv.start(200, "patrol", "p-1", ts=250)
    assert drv.alerts_of("late_trigger") == []


@pytest.mark.req("R-LATE")
def test_late_trigger_inside_a_running_recording_counts_from_its_start() -> None:
    drv = CameraDriver()
    drv.send(100, "button", action="start")  # records from 70
    drv.start(150, "patrol", "p-1", ts=40)
    [alert] = drv.alerts_of("late_trigger")
    assert alert.span == (40, 70)


@pytest.mark.req("R-LATE")
def test_late_trigger_reaching_into_earlier_footage_is_not_reported() -> None:
    """Seconds that an earlier recording holds are not missed: no late_trigger for them."""
    drv = CameraDriver()
    drv.send(50, "button", action="start")
    drv.send(100, "button", action="stop")   # footage 20-100, buffer restarts at 100
    drv.start(110, "patrol", "p-1", ts=95)   # buffer reaches 100; 95-100 is in recording 1
    assert drv.alerts_of("late_trigger") == []
    drv.start(120, "patrol", "p-2", ts=10)   # 10-20 is covered by nothing
    [alert] = drv.alerts_of("late_trigger")
    assert alert.activity_id == "p-2" and alert.span == (10, 20)


@pytest.mark.req("R-LATE", "R-MISS")
def test_late_trigger_reaching_back_into_a_dock_announces_both_causes() -> None:
    """Buffering until 100, docked at 100; the trigger of an activity begun at 90 arrives at
    110. 90-100 was capture time the camera lost (late_trigger), 100-110 the dock (docked)."""
    drv = CameraDriver()
    drv.send(100, "dock")
    drv.start(110, "patrol", "p-1", ts=90)
    [late] = drv.alerts_of("late_trigger")
    assert late.span == (90, 100) and late.at == 110
    [missed] = drv.missed()
    assert (missed.cause, missed.at, missed.activity_id) == ("docked", 110, "p-1")


@pytest.mark.req("R-LATE", "R-MISS")
def test_late_trigger_reaching_back_through_dock_and_boot() -> None:
    drv = CameraDriver(initial="docked")
    drv.send(100, "undock")                   # standby 100-105, buffer from 105
    drv.start(110, "patrol", "p-1", ts=95)
    assert sorted(a.cause or "" for a in drv.missed()) == ["docked", "not_ready"]
    assert all(a.at == 110 for a in drv.missed())
    assert drv.alerts_of("late_trigger") == [], "the buffer reached back to boot completion"
    drv.finish(120)
    assert drv.recordings[0].start == 105


@pytest.mark.req("R-LATE", "R-MISS")
def test_late_trigger_reaching_back_into_an_empty_battery() -> None:
    drv = CameraDriver(battery_s=100, low_battery_s=0)
    drv.advance(100)
    assert drv.state == "off"
    drv.send(150, "dock")
    drv.start(160, "patrol", "p-1", ts=90)
    causes = [a.cause for a in drv.missed()]
    assert causes == ["battery", "docked"]
    [late] = drv.alerts_of("late_trigger")
    assert late.span == (90, 100)


@pytest.mark.req("R-LATE", "R-STOP")
def test_late_trigger_reaching_into_a_deactivation_is_not_late() -> None:
    """Deactivated seconds need no alert (SPEC §4a): a late trigger does not call them late."""
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.send(200, "deactivate", reason="supervisor_order", actor="sgt-1")
    drv.start(300, "search_warrant", "s-1", ts=150)  # resumes; 150-200 is recorded
    assert drv.alerts_of("late_trigger") == []
    assert drv.recordings[0].end == 200 and drv.state == "recording"


@pytest.mark.req("R-LATE")
@pytest.mark.parametrize(("ts", "span"), [
    (150.0, None),  # recording since 100 with its buffer from 70: nothing to announce
    (100.0, None),  # exactly when it started
    (80.0, None),  # before the press, but inside the buffered footage
    (50.0, (50.0, 70.0)),  # before the buffer: the gap is late
])
def test_a_late_trigger_while_recording_is_announced_only_for_what_no_footage_covers(
    ts: float, span: tuple[float, float] | None,
) -> None:
    drv = CameraDriver(prebuffer_s=30)
    drv.send(100, "button", action="start")  # records from 70 (30 s of buffer)
    assert drv.state == "recording" and drv.recordings == [] and drv.camera.rec is not None
    assert drv.start(200, "patrol", "p-1", ts=ts).ok
    late = drv.alerts_of("late_trigger")
    assert [a.span for a in late] == ([] if span is None else [span])
    assert drv.missed() == []
