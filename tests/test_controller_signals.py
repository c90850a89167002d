"""Device signals start recordings and never stop them; prohibited and discretionary activities (R-SIG)."""

from __future__ import annotations

import pytest
from camera_driver import DHS, CameraDriver, make_policy

pytestmark = pytest.mark.req("R-SIG")


@pytest.mark.parametrize("source", sorted(DHS.signals))
def test_listed_signal_starts_a_recording_with_the_buffer_and_a_manual_hold(source: str) -> None:
    drv = CameraDriver()
    assert drv.send(100, "signal", source=source).ok
    assert drv.state == "recording" and drv.camera.manual_hold
    drv.send(200, "button", action="stop")
    [rec] = drv.recordings
    assert (rec.start, rec.end, rec.reasons) == (70, 200, [f"signal:{source}"])


def test_dhs_lists_exactly_the_five_vehicle_and_weapon_signals() -> None:
    assert DHS.signals == frozenset({"holster", "taser", "lightbar", "siren", "crash"})


@pytest.mark.parametrize("source", ["button", "doorbell"])
def test_unlisted_source_is_acked_and_starts_nothing(source: str) -> None:
    drv = CameraDriver()
    assert drv.send(100, "signal", source=source).ok
    assert drv.state == "pre_buffer" and drv.recordings == [] and not drv.camera.manual_hold


def test_unlisted_source_is_acked_even_when_docked() -> None:
    drv = CameraDriver(initial="docked")
    assert drv.send(10, "signal", source="doorbell").ok


@pytest.mark.parametrize("initial", ["docked", "standby"])
def test_listed_signal_when_not_capturing_is_refused_not_ready(initial: str) -> None:
    drv = CameraDriver(initial=initial)
    ack = drv.send(1, "signal", source="siren")
    assert (ack.ok, ack.error) == (False, "not_ready")


def test_signals_never_stop_a_recording() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    for t, source in enumerate(sorted(DHS.signals), start=110):
        drv.send(t, "signal", source=source)
    drv.end(200, "p-1")
    assert drv.state == "recording", "the signals' manual hold outlives the patrol"
    drv.send(300, "signal", source="holster")
    assert drv.state == "recording"
    assert drv.segments_published == []


def test_signal_policy_can_list_button_as_a_source() -> None:
    drv = CameraDriver(policy=make_policy(signals=["button"]))
    drv.send(10, "signal", source="button")
    assert drv.state == "recording"
    assert drv.send(11, "signal", source="holster").ok and drv.camera.manual_hold


def test_prohibited_activity_starts_nothing_and_is_no_reason() -> None:
    drv = CameraDriver()
    assert drv.start(100, "first_amendment_activity", "fa-1").ok
    assert drv.state == "pre_buffer" and drv.states[-1].active == []
    assert drv.end(150, "fa-1").ok, "its activity_end is acked too"
    assert drv.missed() == []


def test_prohibited_activity_does_not_hold_or_join_a_recording() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.start(110, "first_amendment_activity", "fa-1")
    drv.end(200, "p-1")
    assert drv.state == "pre_buffer", "the prohibited activity does not keep it open"
    assert drv.recordings[0].reasons == ["p-1"]
    assert drv.end(210, "fa-1").ok


def test_prohibited_activity_does_not_stop_a_recording_either() -> None:
    drv = CameraDriver()
    drv.send(100, "button", action="start")
    drv.start(110, "first_amendment_activity", "fa-1")
    assert drv.state == "recording"


def test_discretionary_activity_is_acked_and_starts_nothing() -> None:
    drv = CameraDriver(policy=make_policy())
    assert drv.start(100, "traffic_stop", "t-1").ok
    assert drv.state == "pre_buffer"
    assert drv.end(120, "t-1").ok
