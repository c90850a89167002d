"""One recording, however many reasons hold it (R-NOSPLIT, SPEC §4a "Holds")."""

from __future__ import annotations

import itertools

import pytest
from camera_driver import CameraDriver, make_policy

pytestmark = pytest.mark.req("R-NOSPLIT")


def one_recording(drv: CameraDriver) -> tuple[float, float, int]:
    [rec] = drv.recordings
    return rec.start, rec.end, rec.segments


def test_duplicate_trigger_for_a_running_activity_changes_nothing() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    assert drv.start(150, "patrol", "p-1").ok  # a second trigger (new message id)
    assert drv.camera.active == ("p-1",)
    drv.end(200, "p-1")
    assert one_recording(drv) == (70, 200, 1)


def test_further_activities_join_the_running_recording() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.start(120, "search_warrant", "s-1")
    drv.start(130, "patrol", "p-2")
    assert drv.states[-1].active == ["p-1", "s-1", "p-2"]
    assert drv.segments_published == [], "nothing closed in between"
    drv.end(300, "p-1")
    drv.end(310, "s-1")
    drv.end(320, "p-2")
    start, end, segments = one_recording(drv)
    assert (start, end, segments) == (70, 320, 1)
    assert drv.recordings[0].reasons == ["p-1", "s-1", "p-2"]


@pytest.mark.parametrize("order", list(itertools.permutations(["a", "b", "c"])))
def test_nested_and_overlapping_activities_ending_in_any_order(order: tuple[str, ...]) -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "a")
    drv.start(110, "search_warrant", "b")
    drv.start(120, "patrol", "c")
    for i, aid in enumerate(order):
        drv.end(200 + 10 * i, aid)
        if i < 2:
            assert drv.state == "recording", f"still held after {order[: i + 1]}"
    assert drv.state == "pre_buffer"
    assert one_recording(drv) == (70, 220, 1)


def test_tails_are_counted_too() -> None:
    drv = CameraDriver(policy=make_policy(post_s=60))
    drv.start(100, "patrol", "a")
    drv.start(110, "patrol", "b")
    drv.end(200, "a")            # tail to 260
    drv.end(250, "b")            # tail to 310
    drv.advance(300)
    assert drv.state == "recording"
    drv.advance(400)
    assert one_recording(drv) == (70, 310, 1)


def test_a_window_closing_inside_another_tail_does_not_shorten_it() -> None:
    drv = CameraDriver(policy=make_policy(activities={
        "patrol": {"kind": "required", "post_s": 100},
        "search_warrant": {"kind": "required", "post_s": 0},
    }))
    drv.start(100, "patrol", "a")
    drv.end(150, "a")                  # tail to 250
    drv.start(160, "search_warrant", "b")
    drv.end(170, "b")                  # b's window closes at once; a's tail still holds
    assert drv.state == "recording"
    drv.advance(1000)
    assert one_recording(drv) == (70, 250, 1)


def test_manual_hold_outlives_the_required_window() -> None:
    drv = CameraDriver()
    drv.send(100, "button", action="start")
    drv.start(150, "patrol", "p-1")
    drv.end(200, "p-1")
    assert drv.state == "recording", "the manual hold still holds"
    assert drv.send(300, "button", action="stop").ok
    assert one_recording(drv) == (70, 300, 1)
    assert drv.recordings[0].reasons == ["button", "p-1"]


def test_required_window_outlives_a_manual_hold_taken_inside_it() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.send(110, "button", action="start")
    drv.send(120, "signal", source="taser")
    assert drv.camera.manual_hold
    drv.end(200, "p-1")
    assert drv.state == "recording", "the button hold remains after the window"
    drv.send(250, "button", action="stop")
    assert one_recording(drv) == (70, 250, 1)
    assert drv.recordings[0].reasons == ["p-1", "button", "signal:taser"]


def test_triggers_never_restart_a_recording_that_rolls_over() -> None:
    drv = CameraDriver(segment_max_s=100)
    drv.start(100, "patrol", "p-1")       # recording from 70: rollovers at 170, 270
    drv.start(170, "patrol", "p-2")       # at the rollover instant
    drv.send(200, "signal", source="holster")
    drv.end(300, "p-1")
    drv.end(300, "p-2")
    drv.send(300, "button", action="stop")
    [rec] = drv.recordings
    assert rec.segment_list == [(70, 170), (170, 270), (270, 300)]


def test_state_report_lists_open_windows_in_order() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "a")
    drv.start(110, "patrol", "b")
    drv.end(120, "a")
    assert drv.states[-1].active == ["b"]
    assert drv.states[-1].state == "recording"
    assert drv.states[-1].since == 100
