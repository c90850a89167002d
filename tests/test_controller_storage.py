"""Storage and offload (R-STORE, SPEC §4a "Storage"); segment rollover (R-ROLL)."""

from __future__ import annotations

import pytest
from camera_driver import CameraDriver

# ----------------------------------------------------------------------------------- R-STORE


@pytest.mark.req("R-STORE")
def test_buffered_part_counts_against_storage_and_full_storage_closes_the_recording() -> None:
    drv = CameraDriver(storage_s=100)
    drv.start(100, "patrol", "p-1")                   # 30 s written at once
    assert drv.states[-1].storage_s == 70
    assert drv.camera.next_deadline() == 170
    drv.advance(170)
    assert drv.state == "pre_buffer", "the camera stays buffering"
    assert [(a.kind, a.cause, a.at) for a in drv.alerts] == [
        ("storage_full", None, 170), ("missed_required_recording", "storage", 170),
    ]
    [rec] = drv.recordings
    assert (rec.start, rec.end, rec.final) == (70, 170, True)
    assert drv.states[-1].storage_s == 0


@pytest.mark.req("R-STORE")
def test_nothing_records_until_space_is_freed() -> None:
    drv = CameraDriver(storage_s=100)
    drv.send(100, "button", action="start")
    drv.advance(200)
    assert drv.state == "pre_buffer"
    ack = drv.send(210, "button", action="stop")
    assert ack.ok, "no hold remains: storage_full dropped it"
    ack = drv.send(220, "button", action="start")
    assert (ack.ok, ack.error) == (False, "storage_full")
    drv.start(230, "patrol", "p-1")
    assert drv.state == "pre_buffer"
    assert len(drv.recordings) == 1
    assert drv.camera.used == 100, "evidence is never overwritten"


@pytest.mark.req("R-STORE")
def test_buffer_is_clipped_to_free_space_keeping_the_latest_seconds() -> None:
    drv = CameraDriver(storage_s=100)
    drv.send(10, "button", action="start")           # 0..10 buffered
    drv.send(90, "button", action="stop")             # 90 used
    drv.start(200, "patrol", "p-1")                   # wants 30 s of buffer, 10 fit
    drv.advance(300)
    second = drv.recordings[1]
    # the 10 newest buffered seconds fit; storage is full at the activation instant
    assert (second.start, second.buffer_s, second.end) == (190, 10, 200)
    assert drv.missed("storage")[0].at == 200


def two_recordings_then_dock() -> CameraDriver:
    """100 s then 50 s of footage, docked at 200 with an upload speed of 10 s/s."""
    drv = CameraDriver(storage_s=1000, upload_speed=10, prebuffer_s=0)
    drv.send(0, "button", action="start")
    drv.send(100, "button", action="stop")
    drv.send(110, "button", action="start")
    drv.send(160, "button", action="stop")
    drv.send(200, "dock")
    return drv


@pytest.mark.req("R-STORE")
@pytest.mark.parametrize(
    ("undock_at", "free"), [(200.5, 850), (209.9, 850), (210, 950), (214.9, 950), (215, 1000)]
)
def test_uploads_oldest_first_and_free_space_only_per_confirmed_recording(
    undock_at: float, free: float
) -> None:
    drv = two_recordings_then_dock()
    drv.send(undock_at, "undock")
    assert drv.states[-1].storage_s == pytest.approx(free)


@pytest.mark.req("R-STORE", "R-ROLL")
def test_a_multi_segment_recording_is_freed_only_when_all_its_segments_are_uploaded() -> None:
    """SPEC §4a: "A recording is freed only once its whole upload is confirmed" — not each
    of its segment files as it goes."""
    drv = CameraDriver(storage_s=1000, upload_speed=10, prebuffer_s=0, segment_max_s=50)
    drv.send(0, "button", action="start")
    drv.send(200, "button", action="stop")           # one recording, four 50 s segments
    assert len(drv.recordings[-1].segment_list) == 4
    drv.send(300, "dock")
    drv.send(319.9, "undock")                        # 199 of 200 s uploaded: nothing freed
    assert drv.states[-1].storage_s == pytest.approx(800)
    drv.send(400, "dock")
    drv.send(400.1, "undock")                        # the last second confirmed: all freed
    assert drv.states[-1].storage_s == pytest.approx(1000)


@pytest.mark.req("R-STORE")
def test_nothing_uploads_while_undocked() -> None:
    drv = CameraDriver(storage_s=1000, prebuffer_s=0)
    drv.send(0, "button", action="start")
    drv.send(100, "button", action="stop")
    drv.advance(10_000)
    drv.send(10_000, "dock")
    assert drv.states[-1].storage_s == 900


@pytest.mark.req("R-STORE")
def test_partial_upload_resumes_at_the_next_dock() -> None:
    drv = CameraDriver(storage_s=1000, upload_speed=10, prebuffer_s=0)
    drv.send(0, "button", action="start")
    drv.send(100, "button", action="stop")
    drv.send(200, "dock")
    drv.send(206, "undock")                           # 60 of 100 uploaded: nothing freed
    assert drv.states[-1].storage_s == 900
    drv.send(300, "dock")
    drv.send(303.9, "undock")
    assert drv.states[-1].storage_s == 900
    drv.send(400, "dock")
    drv.send(400.1, "undock")                         # 100 of 100: freed
    assert drv.states[-1].storage_s == 1000


@pytest.mark.req("R-STORE", "R-MISS")
def test_full_storage_freed_by_docking_records_again_after_boot() -> None:
    drv = CameraDriver(storage_s=100, upload_speed=100)
    drv.start(100, "patrol", "p-1")
    drv.advance(170)                                   # full
    drv.send(200, "dock")
    drv.send(210, "undock")
    drv.advance(215)
    assert drv.state == "recording"
    assert [a.cause for a in drv.missed()] == ["storage", "docked", "not_ready"]


@pytest.mark.req("R-STORE", "R-MISS")
def test_undocking_before_space_is_freed_announces_storage_again_at_boot() -> None:
    drv = CameraDriver(storage_s=100, upload_speed=1)
    drv.start(100, "patrol", "p-1")
    drv.advance(170)
    drv.send(200, "dock")
    drv.send(210, "undock")                            # 10 of 100 uploaded: still full
    drv.advance(215)
    assert drv.state == "pre_buffer"
    assert [(a.cause, a.at) for a in drv.missed()][-1] == ("storage", 215)


@pytest.mark.req("R-STORE", "R-ROLL")
def test_storage_filling_exactly_at_rollover_makes_no_empty_segment() -> None:
    drv = CameraDriver(storage_s=100, segment_max_s=100, prebuffer_s=30)
    drv.start(30, "patrol", "p-1")                    # from 0; rollover and full both at 100
    drv.advance(200)
    [rec] = drv.recordings
    assert rec.segment_list == [(0, 100)] and rec.segments == 1 and rec.final
    assert [a.kind for a in drv.alerts][:1] == ["storage_full"]
    assert list(drv.camera.uploads) == [[100, 0.0]]


# ------------------------------------------------------------------------------------ R-ROLL


@pytest.mark.req("R-ROLL")
def test_long_recording_rolls_over_with_no_gap_and_the_same_incident() -> None:
    drv = CameraDriver(segment_max_s=1000)
    drv.start(100, "patrol", "p-1")                   # from 70
    drv.end(2500, "p-1")
    pubs = drv.segments_published
    assert [(p.segments, p.final) for p in pubs] == [(1, False), (2, False), (3, True)]
    assert {p.recording for p in pubs} == {pubs[0].recording}
    assert {p.incident for p in pubs} == {pubs[0].incident}
    assert pubs[-1].segment_list == [(70, 1070), (1070, 2070), (2070, 2500)]
    assert (pubs[-1].start, pubs[-1].end) == (70, 2500)
    assert drv.states[-1].state == "pre_buffer"


@pytest.mark.req("R-ROLL")
def test_rollover_is_not_a_state_change() -> None:
    drv = CameraDriver(segment_max_s=100)
    drv.start(100, "patrol", "p-1")
    n_states = len(drv.states)
    drv.advance(500)
    assert len(drv.states) == n_states
    assert len(drv.segments_published) == 4


@pytest.mark.req("R-ROLL")
def test_default_segment_is_four_hours() -> None:
    drv = CameraDriver()
    drv.start(0, "patrol", "p-1")
    drv.advance(14_400)
    [first] = drv.segments_published
    assert first.segment_list == [(0, 14_400)] and not first.final


@pytest.mark.req("R-ROLL")
@pytest.mark.parametrize("closer", ["end", "dock", "finish"])
def test_close_at_the_rollover_instant_adds_no_empty_segment(closer: str) -> None:
    drv = CameraDriver(segment_max_s=100)
    drv.start(100, "patrol", "p-1")                   # from 70, rollover at 170
    if closer == "end":
        drv.end(170, "p-1")
    elif closer == "dock":
        drv.send(170, "dock")
    else:
        drv.finish(170)
    [rec] = drv.recordings
    assert rec.segment_list == [(70, 170)] and rec.segments == 1
    assert rec.final and rec.open == (closer == "finish")
