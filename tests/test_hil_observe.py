"""A live run's log turned into a replay's observations (``sim.live.observe``), on hand-made logs:
what the harness sent and what it saw, each stamped in scenario seconds of its own clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sim.live.clock import ClockMapping
from sim.live.observe import RunLog, Seen, Sent, observe
from sim.views.report import build_report
from sim.world.scenario import scenario_from_data

pytestmark = pytest.mark.req("R-HIL")

CLOCK = ClockMapping(10.0, 1000.0)  # device time = 10000 + scenario time
TAG = "t0"
SCENARIO = scenario_from_data({
    "version": 1, "name": "warrant", "end": 1000,
    "cameras": [{"id": "cam-1"}],
    "timeline": [
        {"at": 100, "camera": "cam-1", "event": "activity_start", "activity": "arrest_warrant",
         "activity_id": "w-1"},
        {"at": 900, "camera": "cam-1", "event": "activity_end", "activity_id": "w-1"},
    ],
})


def _dev(t: float) -> float:
    return CLOCK.device(t)


def _state(t_seen: float, state: str, since: float, active: list[str] | None = None) -> Seen:
    body = {"state": state, "since": _dev(since), "active": active or [], "battery_s": 40000.0,
            "storage_s": 30000.0}
    return Seen(t_seen, "lab/BWC-1/state", json.dumps(body).encode(), False)


def _ack(t_seen: float, msg_id: object, ok: bool = True) -> Seen:
    return Seen(t_seen, "lab/BWC-1/ack", json.dumps({"id": msg_id, "ok": ok}).encode(), False)


def _recording(t_seen: float, start: float, end: float) -> Seen:
    body = {"camera": "BWC-1", "recording": "r1", "incident": "i1", "start": _dev(start),
            "end": _dev(end), "buffer_s": 30.0, "reasons": ["w-1"], "segments": 1,
            "segment_list": [[_dev(start), _dev(end)]], "final": True}
    return Seen(t_seen, "lab/BWC-1/recording", json.dumps(body).encode(), False)


def _online(t_seen: float, online: bool = True) -> Seen:
    return Seen(t_seen, "lab/BWC-1/availability", b"online" if online else b"offline", True)


def _sent(log: RunLog, index: int, t: float) -> None:
    log.sent[index] = Sent(t, t, "lab/BWC-1/event", b"{}", seen_before=len(log.seen))


def _judge(log: RunLog) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    result, records = observe(SCENARIO, log, tolerance_s=0.5, header={"broker": "mqtt://lab"})
    return build_report(result), records


def _log() -> RunLog:
    log = RunLog(CLOCK, TAG, "lab", {"cam-1": "BWC-1"}, closed_at=1000.3)
    log.seen += [_online(-1.0), _state(-0.9, "pre_buffer", 0.0)]
    return log


def test_a_device_that_did_its_job_is_judged_on_its_own_clock() -> None:
    log = _log()
    _sent(log, 0, 100.0)
    log.seen += [_ack(100.04, f"{TAG}-m-0"), _state(100.05, "recording", 100.002, ["w-1"])]
    _sent(log, 1, 900.0)
    log.seen += [_ack(900.04, f"{TAG}-m-1"), _recording(900.05, 70.002, 900.003),
                 _state(900.05, "pre_buffer", 900.003)]
    report, records = _judge(log)
    assert report["verdict"] == "pass" and report["missed_s"]["total"] == 0
    assert report["cameras"]["cam-1"]["recordings"][0]["start"] == 70.002
    assert report["live"]["devices"] == {"cam-1": {"device": "BWC-1"}}
    assert report["live"]["complete"]
    # The trace speaks the scenario's ids; the ack's arrival is kept beside the delivery.
    acks = [r for r in records if r["kind"] == "ack"]
    assert [(a["id"], a["t"], a["received"]) for a in acks] == [("m-0", 100.0, 100.04),
                                                                 ("m-1", 900.0, 900.04)]


def test_answers_to_other_clients_and_the_closing_dock_are_no_part_of_the_run() -> None:
    log = _log()
    _sent(log, 0, 100.0)
    log.seen += [_ack(50.0, "someone-else", ok=False), _ack(100.04, f"{TAG}-m-0"),
                 _state(100.05, "recording", 100.0, ["w-1"]), _ack(1000.2, f"{TAG}-close")]
    report, _ = _judge(log)
    assert report["cameras"]["cam-1"]["refused"] == 0


def test_a_message_an_online_device_never_acked_is_taken_as_delivered_and_listed() -> None:
    log = _log()
    _sent(log, 0, 100.0)  # no ack, no recording: the device did nothing
    report, _ = _judge(log)
    assert report["live"]["devices"]["cam-1"]["unacknowledged"] == ["m-0"]
    assert report["missed_s"]["controller"] == pytest.approx(800.0)  # it had the trigger
    assert report["verdict"] == "fail" and not report["live"]["complete"]


def test_a_device_gone_while_recording_is_offline_from_that_recordings_start() -> None:
    log = _log()
    _sent(log, 0, 100.0)
    log.seen += [_ack(100.04, f"{TAG}-m-0"), _state(100.05, "recording", 100.0, ["w-1"]),
                 _online(500.0, online=False)]
    _sent(log, 1, 900.0)  # never acked: the device is gone
    report, _ = _judge(log)
    assert report["live"]["devices"]["cam-1"]["offline"] == [[100.0, 1000.0]]
    assert report["missed_s"]["bus"] == pytest.approx(800.0)
    assert report["missed_s"]["controller"] == 0 and report["verdict"] == "pass"
    assert not report["live"]["complete"]


def test_a_recording_closed_after_the_end_is_cut_there_and_marked_open() -> None:
    log = _log()
    _sent(log, 0, 100.0)
    log.seen += [_ack(100.04, f"{TAG}-m-0"), _state(100.05, "recording", 100.0, ["w-1"]),
                 _recording(1000.4, 70.0, 1000.35), _state(1000.4, "docked", 1000.35)]
    report, _ = _judge(log)
    (rec,) = report["cameras"]["cam-1"]["recordings"]
    assert (rec["end"], rec["open"], rec["segment_list"]) == (1000.0, True, [[70.0, 1000.0]])
    assert report["cameras"]["cam-1"]["final_state"] == "recording"  # the dock was after the end


def test_a_device_on_another_clock_makes_the_run_incomplete_with_a_note() -> None:
    log = _log()
    _sent(log, 0, 100.0)
    slow = {"state": "recording", "since": 1000.0 + 100.0, "active": ["w-1"],  # speed 1, not 10
            "battery_s": 1.0, "storage_s": 1.0}
    log.seen += [_ack(100.04, f"{TAG}-m-0"),
                 Seen(100.05, "lab/BWC-1/state", json.dumps(slow).encode(), False)]
    report, _ = _judge(log)
    assert any("clock disagrees with the run's" in n and "10 x Unix time" in n
               for n in report["live"]["notes"])
    assert not report["live"]["complete"]
