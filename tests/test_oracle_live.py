"""The oracle's rules for runs on a real broker (SPEC §15a): offline spans and the tolerance.

Hand-built observations, as in ``tests/test_oracle.py``. With a zero tolerance and no offline
span (every simulated run) none of this applies; with them, exactly three things loosen and
nothing else does.
"""

from __future__ import annotations

import pytest

from controller.messages import Alert
from sim.world.oracle import Observation, StatePoint, Window, judge

# A warrant 600-2400 whose trigger reached a buffering camera (buffer running since 0) at 600.
WARRANT = Window(activity="arrest_warrant", activity_id="w", start=600.0, end=2400.0,
                 delivered=600.0, prior_state="pre_buffer", prior_since=0.0)
BUFFERING = [StatePoint(0.0, "pre_buffer", 36000.0)]


def camera(footage: list[tuple[float, float]], *, tolerance: float = 0.0,
           deactivations: list[tuple[float, float]] | None = None,
           states: list[StatePoint] | None = None, alerts: list[Alert] | None = None,
           offline: list[tuple[float, float]] | None = None,
           windows: list[Window] | None = None) -> Observation:
    return Observation(
        camera_id="cam-1", prebuffer_s=30.0, windows=windows or [WARRANT], footage=footage,
        states=states or BUFFERING, deactivations=deactivations or [], alerts=alerts or [],
        offline=offline or [], tolerance_s=tolerance,
    )


@pytest.mark.req("R-JITTER")
def test_a_sliver_at_a_deactivations_edge_is_jitter_within_the_tolerance_only() -> None:
    # Deactivated from 1200 (as the harness timed the ack); the device closed its recording
    # 0.3 s earlier, at 1199.7, by its own clock.
    footage = [(570.0, 1199.7), (1470.0, 2400.0)]
    exact = judge(camera(footage, deactivations=[(1200.0, 1500.0)]))
    assert exact.missed_s["controller"] == pytest.approx(0.3) and not exact.ok
    live = judge(camera(footage, deactivations=[(1200.0, 1500.0)], tolerance=0.5))
    assert live.missed_s["controller"] == 0 and live.ok
    assert [(m.start, m.end, m.cause) for m in live.excused] == [(1199.7, 1200.0, "controller")]
    assert live.missed_s["deactivated"] == pytest.approx(270.0)  # nothing else moved
    tight = judge(camera(footage, deactivations=[(1200.0, 1500.0)], tolerance=0.2))
    assert tight.missed_s["controller"] == pytest.approx(0.3) and not tight.ok


@pytest.mark.req("R-JITTER", "R-NOSPLIT")
def test_a_gap_between_two_recordings_away_from_any_timed_moment_is_never_jitter() -> None:
    judgement = judge(camera([(570.0, 1000.0), (1000.3, 2400.0)], tolerance=5.0))
    assert judgement.missed_s["controller"] == pytest.approx(0.3)
    assert judgement.excused == [] and not judgement.ok


@pytest.mark.req("R-JITTER", "R-MISS")
def test_an_alert_counts_within_the_tolerance_of_its_window_and_not_beyond() -> None:
    docked = [StatePoint(0.0, "pre_buffer", 36000.0), StatePoint(900.0, "docked", 36000.0)]
    footage = [(570.0, 900.0)]

    def alerted(at: float, tolerance: float) -> bool:
        alert = Alert(kind="missed_required_recording", at=at, cause="docked", activity_id="w")
        return judge(camera(footage, states=docked, alerts=[alert], tolerance=tolerance)).ok

    assert alerted(900.5, 0.0) and not alerted(899.5, 0.0) and not alerted(902.5, 0.0)
    assert alerted(899.5, 1.0) and alerted(902.5, 2.0)
    assert not alerted(897.0, 2.0) and not alerted(904.0, 2.0)


@pytest.mark.req("R-JITTER", "R-LATE")
def test_a_late_sliver_at_a_windows_edge_needs_no_alert_within_the_tolerance() -> None:
    # No buffer (prebuffer 0): the device recorded from its own arrival, 0.2 s after the
    # window began as the harness played it; it owes no late_trigger alert for that.
    window = Window(activity="arrest_warrant", activity_id="w", start=600.0, end=2400.0,
                    delivered=600.2, prior_state="pre_buffer", prior_since=0.0)
    obs = camera([(600.2, 2400.0)], windows=[window], tolerance=0.5)
    obs.prebuffer_s = 0.0
    live = judge(obs)
    assert live.missed_s["late_trigger"] == pytest.approx(0.2) and live.ok
    obs.tolerance_s = 0.0
    assert not judge(obs).ok  # exactly: 0.2 s late, and no late_trigger alert


@pytest.mark.req("R-HIL")
def test_seconds_while_the_device_was_offline_are_bus_not_controller() -> None:
    judgement = judge(camera([(570.0, 1000.0)], offline=[(1000.0, 3600.0)]))
    assert judgement.missed_s["bus"] == pytest.approx(1400.0)
    assert judgement.missed_s["controller"] == 0 and judgement.ok
    # Docked wins over offline, as every physical state the device reported does (SPEC §8).
    states = [*BUFFERING, StatePoint(1000.0, "docked", 36000.0)]
    both = judge(camera([(570.0, 1000.0)], states=states, offline=[(1500.0, 3600.0)],
                        alerts=[Alert(kind="missed_required_recording", at=1000.0, cause="docked",
                                      activity_id="w")]))
    assert both.missed_s["docked"] == pytest.approx(1400.0) and both.missed_s["bus"] == 0
