"""Recording metadata (R-META), and the node's own lifecycle around the core."""

from __future__ import annotations

import pytest
from camera_driver import ALLOWED_REASON, CAM, DHS, CameraDriver, NodeDriver

from controller.messages import StateReport
from controller.node import CameraNode, CameraSetup
from controller.reference import ReferenceNode, make_node


@pytest.mark.req("R-META")
def test_recording_carries_every_field() -> None:
    drv = CameraDriver(segment_max_s=100)
    drv.send(100, "signal", source="holster")
    drv.start(120, "patrol", "p-1")
    drv.send(130, "button", action="start")
    drv.start(140, "search_warrant", "s-1")
    drv.end(300, "p-1")
    drv.end(310, "s-1")
    drv.send(320, "button", action="stop")
    [rec] = drv.recordings
    assert rec.camera == CAM
    assert rec.incident == f"{CAM}-1"
    assert rec.reasons == ["signal:holster", "p-1", "button", "s-1"]
    assert (rec.start, rec.end, rec.buffer_s) == (70, 320, 30)
    assert rec.segment_list == [(70, 170), (170, 270), (270, 320)] and rec.segments == 3
    assert rec.final and not rec.open


@pytest.mark.req("R-META")
def test_each_segment_publication_carries_the_list_so_far() -> None:
    drv = CameraDriver(segment_max_s=100)
    drv.start(100, "patrol", "p-1")
    drv.advance(280)
    first, second = drv.segments_published
    assert first.segment_list == [(70, 170)] and second.segment_list == [(70, 170), (170, 270)]
    assert first.end == 170 and second.end == 270
    assert not first.final and not second.final


@pytest.mark.req("R-META")
def test_incident_ids_count_up_and_only_a_deactivation_keeps_one() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "a")
    drv.end(200, "a")
    drv.start(300, "patrol", "b")
    drv.send(400, "deactivate", reason=ALLOWED_REASON, actor="ofc-7")
    drv.send(450, "reactivate")
    drv.end(500, "b")
    drv.start(600, "patrol", "c")
    drv.finish(700)
    assert [r.incident for r in drv.recordings] == [
        "cam-1-1", "cam-1-2", "cam-1-2", "cam-1-3",
    ]
    assert len({r.recording for r in drv.recordings}) == 4
    assert drv.recordings[2].reasons == ["b"], "the resumed recording names its window"


@pytest.mark.req("R-META")
def test_finish_publishes_the_open_recording_as_it_stands() -> None:
    drv = CameraDriver()
    drv.start(100, "patrol", "p-1")
    drv.finish(3600)
    [rec] = drv.recordings
    assert (rec.end, rec.open, rec.final) == (3600, True, True)


@pytest.mark.req("R-META")
def test_recording_metadata_goes_out_on_the_recording_topic() -> None:
    drv = NodeDriver()
    drv.raw(100, '{"id": 1, "type": "button", "action": "start"}')
    drv.raw(200, '{"id": 2, "type": "button", "action": "stop"}')
    rec_pubs = [p for p in drv.publishes if p.topic == "bwc/cam-1/recording"]
    assert len(rec_pubs) == 1 and not rec_pubs[0].retain
    [rec] = drv.recordings
    assert rec.reasons == ["button"]


# ------------------------------------------------------------------------------ node lifecycle


@pytest.mark.req("R-META")
def test_reference_factory_builds_a_camera_node() -> None:
    node = make_node(CameraSetup(camera_id="cam-9", policy=DHS))
    assert isinstance(node, CameraNode) and isinstance(node, ReferenceNode)
    pubs = node.start(0.0)
    assert (pubs[0].topic, pubs[0].payload, pubs[0].retain) == (
        "bwc/cam-9/availability", b"online", True)
    assert pubs[1].topic == "bwc/cam-9/state" and pubs[1].retain


@pytest.mark.req("R-DOCK", "R-POWER")
def test_node_powered_on_later_counts_boot_and_battery_from_then() -> None:
    node = ReferenceNode(CameraSetup(camera_id=CAM, policy=DHS, initial="standby"))
    node.start(1000.0)
    assert node.next_deadline() == 1005.0
    drv_state = node.camera.snapshot()
    assert drv_state["since"] == 1000.0 and drv_state["charge"] == DHS.apply(
        node.setup.params).battery_s


@pytest.mark.req("R-DOCK")
def test_state_changed_by_an_unwoken_deadline_is_reported_before_the_next_reply() -> None:
    """A driver that did not wake the node at its deadline still sees the state it missed
    published, before the reply to the next message — even a refused one."""
    drv = NodeDriver(initial="standby")
    out = drv.node.on_message("bwc/cam-1/event", b"junk", 50.0)
    states = [p for p in out if p.topic == "bwc/cam-1/state"]
    assert len(states) == 1 and b'"pre_buffer"' in states[0].payload
    assert out[-1].topic == "bwc/cam-1/ack"
    assert isinstance(drv.states[-1], StateReport)
