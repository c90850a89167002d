"""Missed required recordings are announced (R-MISS); docking and undocking (R-DOCK); teams and no-ops."""

from __future__ import annotations

import pytest
from camera_driver import CameraDriver, NodeDriver

# ------------------------------------------------------------------------------------ R-MISS


@pytest.mark.req("R-MISS")
@pytest.mark.parametrize(
    ("initial", "cause"), [("docked", "docked"), ("standby", "not_ready")]
)
def test_required_start_while_unable_to_record_is_announced_at_arrival(
    initial: str, cause: str
) -> None:
    drv = CameraDriver(initial=initial, boot_s=30)
    ack = drv.start(10, "patrol", "p-1")
    assert ack.ok, "the trigger is accepted even though the camera cannot record"
    [alert] = drv.missed()
    assert (alert.at, alert.cause, alert.activity_id) == (10, cause, "p-1")


@pytest.mark.req("R-MISS")
def test_required_start_while_off_is_announced_with_cause_battery() -> None:
    drv = CameraDriver(battery_s=50, low_battery_s=0)
    drv.advance(60)
    assert drv.state == "off"
    assert drv.start(70, "patrol", "p-1").ok
    [alert] = drv.missed()
    assert (alert.at, alert.cause) == (70, "battery")


@pytest.mark.req("R-MISS", "R-STORE")
def test_required_start_while_storage_is_full_is_announced_with_cause_storage() -> None:
    drv = CameraDriver(storage_s=100)
    drv.send(50, "button", action="start")       # 20..120 fills the 100 s
    drv.advance(200)
    assert drv.state == "pre_buffer" and drv.camera.storage_free == 0
    assert drv.start(210, "patrol", "p-1").ok
    [alert] = drv.missed()
    assert (alert.at, alert.cause, alert.activity_id) == (210, "storage", "p-1")
    assert drv.state == "pre_buffer"


@pytest.mark.req("R-MISS")
def test_every_open_window_is_announced_when_the_cause_changes() -> None:
    """A new alert each time the cause changes: docked, then not_ready while booting."""
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.start(110, "search_warrant", "s-1")
    drv.send(200, "dock")
    assert [(a.at, a.cause, a.activity_id) for a in drv.missed()] == [
        (200, "docked", "p-1"), (200, "docked", "s-1"),
    ]
    drv.send(300, "undock")
    assert [(a.at, a.cause) for a in drv.missed()][2:] == [(300, "not_ready"), (300, "not_ready")]
    drv.advance(305)
    assert drv.state == "recording", "boot completion goes straight to recording"
    assert len(drv.missed()) == 4, "nothing more to announce once recording"


@pytest.mark.req("R-MISS")
def test_boot_completion_with_an_open_window_records_from_that_instant() -> None:
    drv = CameraDriver(initial="docked")
    drv.start(10, "patrol", "p-1")
    drv.send(20, "undock")
    drv.advance(25)
    assert drv.state == "recording"
    assert drv.states[-1].state == "recording" and drv.states[-1].since == 25
    drv.end(100, "p-1")
    [rec] = drv.recordings
    assert (rec.start, rec.buffer_s, rec.end) == (25, 0, 100)


@pytest.mark.req("R-MISS")
def test_nothing_is_announced_without_a_required_window() -> None:
    drv = CameraDriver()
    drv.send(10, "button", action="start")
    drv.send(20, "dock")
    drv.start(30, "first_amendment_activity", "fa-1")
    drv.send(40, "undock")
    assert drv.missed() == []


@pytest.mark.req("R-MISS")
def test_ended_window_is_not_announced_again() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.end(150, "p-1")
    drv.send(200, "dock")
    assert drv.missed() == []


# ------------------------------------------------------------------------------------ R-DOCK


@pytest.mark.req("R-DOCK")
def test_dock_closes_the_recording_with_every_second_kept() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    assert drv.send(4000.5, "dock").ok
    assert drv.state == "docked"
    [rec] = drv.recordings
    assert (rec.start, rec.end, rec.final, rec.open) == (70, 4000.5, True, False)
    assert drv.states[-1].active == ["p-1"], "the activity goes on without the camera"


@pytest.mark.req("R-DOCK")
@pytest.mark.parametrize("initial", ["standby", "pre_buffer"])
def test_dock_succeeds_from_every_state(initial: str) -> None:
    drv = CameraDriver(initial=initial)
    assert drv.send(1, "dock").ok
    assert drv.state == "docked"


@pytest.mark.req("R-DOCK")
def test_dock_succeeds_from_off() -> None:
    drv = CameraDriver(battery_s=10, low_battery_s=0)
    drv.advance(10)
    assert drv.state == "off"
    assert drv.send(20, "dock").ok and drv.state == "docked"


@pytest.mark.req("R-DOCK")
def test_undock_boots_to_standby_then_pre_buffer_after_boot_s() -> None:
    drv = CameraDriver(initial="docked", boot_s=7)
    assert drv.send(100, "undock").ok
    assert (drv.state, drv.states[-1].state, drv.states[-1].since) == ("standby", "standby", 100)
    assert drv.camera.next_deadline() == 107
    drv.advance(106.99)
    assert drv.state == "standby"
    drv.advance(107)
    assert (drv.states[-1].state, drv.states[-1].since) == ("pre_buffer", 107)


@pytest.mark.req("R-DOCK")
def test_redock_while_booting_cancels_the_boot() -> None:
    drv = CameraDriver(initial="docked")
    drv.send(100, "undock")
    drv.send(102, "dock")
    drv.advance(200)
    assert drv.state == "docked"


@pytest.mark.req("R-DOCK")
def test_dock_releases_the_manual_hold() -> None:
    drv = CameraDriver()
    drv.send(10, "button", action="start")
    drv.send(20, "dock")
    drv.send(30, "undock")
    drv.advance(100)
    assert drv.state == "pre_buffer", "a button press does not survive the dock"


@pytest.mark.req("R-DOCK")
def test_docked_camera_refuses_a_button_start() -> None:
    drv = CameraDriver(initial="docked")
    ack = drv.send(10, "button", action="start")
    assert (ack.ok, ack.error) == (False, "not_ready")


@pytest.mark.req("R-DOCK")
def test_dock_when_docked_and_undock_when_not_are_acked_with_no_effect() -> None:
    """SPEC §4a No-ops."""
    drv = CameraDriver(initial="docked")
    n_states = len(drv.states)
    assert drv.send(10, "dock").ok
    assert len(drv.states) == n_states and drv.state == "docked"
    drv.send(20, "undock")
    drv.advance(30)
    n_states = len(drv.states)
    assert drv.send(40, "undock").ok
    assert len(drv.states) == n_states and drv.state == "pre_buffer"
    assert drv.camera.buffer_since == 25, "the buffer was not restarted"
    drv.start(41, "patrol", "p-1")
    assert drv.send(42, "undock").ok and drv.state == "recording"


# ------------------------------------------------------------------------------------ teams


@pytest.mark.req("R-MISS", "R-DOCK")
def test_team_event_reaches_a_docked_camera_which_acks_and_announces() -> None:
    """SPEC §4a Teams: a team event applies whatever the state; docked → R-MISS `docked`."""
    drv = NodeDriver(teams=("sr-1",), initial="docked")
    team_topic = "bwc/team/sr-1/event"
    assert team_topic in drv.node.subscriptions()
    ack = drv.raw_ack(
        10, '{"id": "t-1", "type": "activity_start", "activity": "arrest_warrant", '
            '"activity_id": "w-1"}', topic=team_topic)
    assert ack.ok and ack.id == "t-1"
    [alert] = drv.missed()
    assert (alert.cause, alert.activity_id, alert.at) == ("docked", "w-1", 10)
    assert drv.raw_ack(20, '{"id": "t-2", "type": "activity_end", "activity_id": "w-1"}',
                       topic=team_topic).ok


@pytest.mark.req("R-TRIG")
def test_team_event_starts_a_recording_like_a_camera_event() -> None:
    drv = NodeDriver(teams=("sr-1", "sr-2"))
    drv.raw(100, '{"id": 1, "type": "activity_start", "activity": "search_warrant", '
                 '"activity_id": "s-1"}', topic="bwc/team/sr-2/event")
    assert drv.camera.state.value == "recording"


@pytest.mark.req("R-BAD")
def test_camera_subscribes_only_to_its_own_and_its_teams_event_topics() -> None:
    drv = NodeDriver(teams=("sr-1",), prefix="agency/bwc")
    assert sorted(drv.node.subscriptions()) == ["agency/bwc/cam-1/event",
                                               "agency/bwc/team/sr-1/event"]
    ack = drv.raw_ack(5, '{"id": 9, "type": "dock"}', topic="agency/bwc/team/sr-9/event")
    assert ack.ok is False and ack.error is not None and ack.error.startswith("wrong_topic")
    assert drv.camera.state.value == "pre_buffer"
