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


def _standby_camera(states: list[StatePoint], window: Window, boot_s: float | None,
                    footage: list[tuple[float, float]] | None = None) -> Observation:
    return Observation(
        camera_id="cam-1", prebuffer_s=30.0, windows=[window], footage=footage or [],
        states=states, deactivations=[],
        alerts=[Alert(kind="missed_required_recording", at=window.start, cause="not_ready",
                      activity_id=window.activity_id)],
        boot_s=boot_s,
    )


# Undocked at 100 (standby, boot_s 5); a warrant starts and is delivered at 102.
UNDOCKED_WARRANT = Window(activity="search_warrant", activity_id="w", start=102.0, end=400.0,
                          delivered=102.0, prior_state="standby", prior_since=100.0)


@pytest.mark.req("R-MISS")
def test_standby_excuses_only_the_boot_time() -> None:
    stuck = [StatePoint(0.0, "docked", 36000.0), StatePoint(100.0, "standby", 36000.0)]
    judgement = judge(_standby_camera(stuck, UNDOCKED_WARRANT, boot_s=5.0))
    # 102-105 booting (not_ready, announced); 105-400 a booted camera would have recorded.
    assert judgement.missed_s["not_ready"] == pytest.approx(3.0)
    assert judgement.missed_s["controller"] == pytest.approx(295.0)
    assert not judgement.ok
    assert len(judgement.overdue_boot) == 1 and "due 105.000" in judgement.overdue_boot[0]
    # Without a boot time (a live device) the reports are taken at their word, as before.
    unjudged = judge(_standby_camera(stuck, UNDOCKED_WARRANT, boot_s=None))
    assert unjudged.missed_s["not_ready"] == pytest.approx(298.0) and unjudged.ok


@pytest.mark.req("R-MISS")
def test_a_camera_booted_on_time_is_not_blamed() -> None:
    booted = [StatePoint(0.0, "docked", 36000.0), StatePoint(100.0, "standby", 36000.0),
              StatePoint(105.0, "recording", 36000.0)]
    judgement = judge(_standby_camera(booted, UNDOCKED_WARRANT, 5.0, footage=[(105.0, 400.0)]))
    assert judgement.missed_s["not_ready"] == pytest.approx(3.0)
    assert judgement.missed_s["controller"] == 0.0 and judgement.overdue_boot == []
    assert judgement.ok


@pytest.mark.req("R-MISS", "R-BUF")
def test_a_trigger_heard_past_the_boot_is_held_to_a_booted_cameras_buffer() -> None:
    # Still standby at 200, when a window that began at 150 is delivered: a camera booted at
    # 105 would have buffered since then and reached back 30 s, to 170. 150-170 is late, not
    # the controller's; 170-400 is the controller's.
    stuck = [StatePoint(0.0, "docked", 36000.0), StatePoint(100.0, "standby", 36000.0)]
    late = Window(activity="search_warrant", activity_id="w", start=150.0, end=400.0,
                  delivered=200.0, prior_state="standby", prior_since=100.0)
    judgement = judge(_standby_camera(stuck, late, boot_s=5.0))
    assert judgement.missed_s["late_trigger"] == pytest.approx(20.0)
    assert judgement.missed_s["controller"] == pytest.approx(230.0)
