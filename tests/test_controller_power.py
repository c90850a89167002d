"""Battery (R-POWER, SPEC §4a "Battery"): drain by state, low_battery once, depletion, charging."""

from __future__ import annotations

import pytest
from camera_driver import CameraDriver

pytestmark = pytest.mark.req("R-POWER")


def test_charge_falls_by_state_and_rises_while_docked() -> None:
    drv = CameraDriver(battery_s=10_000, record_drain=1.5, charge_rate=4)
    drv.start(100, "patrol", "p-1")                 # pre_buffer 0-100 at 1/s
    assert drv.states[-1].battery_s == pytest.approx(9_900)
    drv.end(300, "p-1")                             # recording 100-300 at 1.5/s
    assert drv.states[-1].battery_s == pytest.approx(9_600)
    drv.send(400, "dock")                           # pre_buffer 300-400
    assert drv.states[-1].battery_s == pytest.approx(9_500)
    drv.send(450, "undock")                         # docked 400-450 at +4/s
    assert drv.states[-1].battery_s == pytest.approx(9_700)
    drv.advance(455)                                # standby 450-455 at 1/s
    assert drv.states[-1].battery_s == pytest.approx(9_695)


def test_charging_stops_at_full() -> None:
    drv = CameraDriver(battery_s=1000, low_battery_s=0)
    drv.send(100, "dock")
    drv.send(10_000, "undock")
    assert drv.states[-1].battery_s == 1000


def test_low_battery_fires_once_at_the_crossing() -> None:
    drv = CameraDriver(battery_s=2000, low_battery_s=1200)
    assert drv.camera.next_deadline() == 800
    drv.advance(799.999)
    assert drv.alerts_of("low_battery") == []
    drv.advance(800)
    [alert] = drv.alerts_of("low_battery")
    assert alert.at == 800
    drv.start(900, "patrol", "p-1")
    drv.end(1000, "p-1")
    drv.advance(1500)
    assert len(drv.alerts_of("low_battery")) == 1, "fires once"


def test_low_battery_is_rearmed_by_charging_above_it() -> None:
    drv = CameraDriver(battery_s=2000, low_battery_s=1200, charge_rate=10)
    drv.advance(900)                                # fired at 800; charge 1100
    drv.send(900, "dock")
    drv.send(920, "undock")                         # +200 → 1300 > 1200: re-armed
    drv.advance(2000)
    lows = drv.alerts_of("low_battery")
    assert [a.at for a in lows] == [800, 1020]      # 1300 - 5 boot - 95 buffering = 1200


def test_low_battery_is_not_rearmed_below_the_threshold() -> None:
    drv = CameraDriver(battery_s=2000, low_battery_s=1200, charge_rate=10)
    drv.advance(900)                                # charge 1100
    drv.send(900, "dock")
    drv.send(905, "undock")                         # 1150: still below
    drv.advance(2000)
    assert len(drv.alerts_of("low_battery")) == 1


def test_depletion_while_recording_keeps_every_second_and_turns_off() -> None:
    drv = CameraDriver(battery_s=1000, low_battery_s=0, record_drain=2)
    drv.start(100, "patrol", "p-1")                 # 900 left, recording at 2/s
    assert drv.camera.next_deadline() == 550
    drv.advance(550)
    assert drv.state == "off"
    kinds = [(a.kind, a.cause) for a in drv.alerts]
    assert kinds == [("battery_empty", None), ("missed_required_recording", "battery")]
    assert all(a.at == 550 for a in drv.alerts)
    [rec] = drv.recordings
    assert (rec.start, rec.end, rec.final) == (70, 550, True)
    assert drv.states[-1].state == "off" and drv.states[-1].battery_s == 0


def test_off_camera_only_leaves_off_by_docking() -> None:
    drv = CameraDriver(battery_s=100, low_battery_s=0)
    drv.advance(100)
    assert drv.state == "off"
    assert drv.send(110, "undock").ok and drv.state == "off"
    ack = drv.send(120, "button", action="start")
    assert (ack.ok, ack.error) == (False, "not_ready")
    assert drv.send(125, "signal", source="holster").error == "not_ready"
    assert drv.camera.next_deadline() is None, "nothing drains or fires while off"
    drv.send(130, "dock")
    assert drv.state == "docked"


def test_battery_runs_out_while_recording_then_docks_recharges_and_resumes() -> None:
    drv = CameraDriver(battery_s=1000, low_battery_s=500, record_drain=1, charge_rate=10)
    drv.start(100, "patrol", "p-1")
    drv.advance(1050)                               # low at 500, empty at 1000
    assert [a.at for a in drv.alerts_of("low_battery")] == [500]
    assert drv.state == "off"
    drv.send(1100, "dock")
    assert drv.missed("docked")[0].at == 1100
    drv.send(1200, "undock")                        # 1000 charged: full, re-armed
    assert drv.states[-1].battery_s == 1000
    drv.advance(1205)
    assert drv.state == "recording", "the patrol is still on"
    drv.advance(1800)
    assert [a.at for a in drv.alerts_of("low_battery")] == [500, 1700]  # 1000 - 5 - 495
    drv.finish(1800)
    first, second = drv.recordings
    assert (first.end, second.start, second.buffer_s) == (1000, 1205, 0)
    assert first.incident != second.incident, "only a deactivation keeps the incident"


def test_depletion_while_booting() -> None:
    drv = CameraDriver(initial="standby", battery_s=3, boot_s=5, low_battery_s=0)
    drv.advance(10)
    assert drv.state == "off"
    assert [a.kind for a in drv.alerts] == ["battery_empty"]


def test_depletion_with_an_open_window_in_pre_buffer_is_announced() -> None:
    drv = CameraDriver(battery_s=100, low_battery_s=0, storage_s=10)
    drv.send(0, "button", action="start")           # 0-10 fills storage
    drv.start(20, "patrol", "p-1")                   # storage: cannot record
    drv.advance(100)
    # 10 s recording at 1.3/s, then 87 s of buffering: empty at 97
    assert [(a.cause, a.at) for a in drv.missed()] == [("storage", 20), ("battery", 97)]
