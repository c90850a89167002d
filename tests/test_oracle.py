"""The oracle on hand-built observations: cause attribution and the alerts each miss needs."""

from __future__ import annotations

import pytest

from controller.messages import Alert
from sim.world.oracle import Observation, StatePoint, Window, judge


def docked_camera(windows: list[Window], alerts: list[Alert]) -> Observation:
    return Observation(
        camera_id="cam-1", prebuffer_s=30.0, windows=windows, footage=[],
        states=[StatePoint(0.0, "docked", 36000.0)], deactivations=[], alerts=alerts,
    )


def docked_alert(at: float, activity_id: str) -> Alert:
    return Alert(kind="missed_required_recording", at=at, cause="docked", activity_id=activity_id)


# A window the camera never heard of (b) around one it did hear of at 100 (a).
UNKNOWN_B = Window(activity="patrol", activity_id="b", start=50.0, end=600.0)
KNOWN_A = Window(activity="search_warrant", activity_id="a", start=100.0, end=500.0,
                 delivered=100.0, prior_state="docked")


@pytest.mark.req("R-MISS")
def test_a_window_the_camera_never_heard_of_does_not_excuse_a_known_ones_alert() -> None:
    judgement = judge(docked_camera([UNKNOWN_B, KNOWN_A], alerts=[]))
    assert judgement.missed_s["docked"] == 550.0
    assert [u.split(" ")[0] for u in judgement.unannounced] == ["100.000-500.000"]
    assert not judgement.ok


@pytest.mark.req("R-MISS")
def test_the_known_windows_alert_at_its_arrival_announces_the_whole_stretch() -> None:
    judgement = judge(docked_camera([UNKNOWN_B, KNOWN_A], alerts=[docked_alert(100.0, "a")]))
    assert judgement.unannounced == []
    assert judgement.ok


@pytest.mark.req("R-MISS")
def test_a_window_announced_later_inside_a_stretch_needs_its_own_alert() -> None:
    # a is known from 100; c starts (and is announced) at 500, as a ends: the docked stretch
    # 100-800 runs on, and c's seconds are due an alert at 500.
    known_c = Window(activity="patrol", activity_id="c", start=500.0, end=800.0,
                     delivered=500.0, prior_state="docked")
    only_a = judge(docked_camera([KNOWN_A, known_c], alerts=[docked_alert(100.0, "a")]))
    assert [u.split(" ")[0] for u in only_a.unannounced] == ["500.000-800.000"]
    both = judge(docked_camera(
        [KNOWN_A, known_c], alerts=[docked_alert(100.0, "a"), docked_alert(500.0, "c")]
    ))
    assert both.ok


@pytest.mark.req("R-STORE", "R-BUF")
def test_buffered_seconds_that_did_not_fit_in_storage_are_storage_not_controller() -> None:
    # Buffering since 100 with 10 s of free storage; a trigger for a window that began at 180
    # arrives at 200: the buffer reaches back to 170, but only 190-200 fit.
    window = Window(activity="patrol", activity_id="p", start=180.0, end=300.0, delivered=200.0,
                    prior_state="pre_buffer", prior_since=100.0, prior_storage_free=10.0)
    obs = Observation(
        camera_id="cam-1", prebuffer_s=30.0, windows=[window], footage=[(190.0, 200.0)],
        states=[StatePoint(100.0, "pre_buffer", 10.0), StatePoint(200.0, "pre_buffer", 0.0)],
        deactivations=[],
        alerts=[Alert(kind="missed_required_recording", at=200.0, cause="storage",
                      activity_id="p")],
    )
    judgement = judge(obs)
    assert [(m.start, m.end, m.cause) for m in judgement.misses] == [
        (180.0, 190.0, "storage"), (200.0, 300.0, "storage"),
    ]
    assert judgement.ok


@pytest.mark.req("R-BUF")
def test_buffered_seconds_that_fitted_but_were_not_kept_are_the_controllers() -> None:
    window = Window(activity="patrol", activity_id="p", start=180.0, end=300.0, delivered=200.0,
                    prior_state="pre_buffer", prior_since=100.0, prior_storage_free=1000.0)
    obs = Observation(
        camera_id="cam-1", prebuffer_s=30.0, windows=[window], footage=[(190.0, 300.0)],
        states=[StatePoint(100.0, "pre_buffer", 1000.0)], deactivations=[], alerts=[],
    )
    judgement = judge(obs)
    assert [(m.start, m.end, m.cause) for m in judgement.misses] == [(180.0, 190.0, "controller")]
