"""What the camera says is judged (SPEC §8b): replies, recording metadata, alerts, self-reports.

Each test replays a small scenario with the reference controller (which must pass) and with one
deliberately broken controller of ``tests/broken_controllers.py`` (which must fail with the
problem named), so a judgement that can never fire, or that fires on the reference, is caught.
"""

from __future__ import annotations

import io
import json
from typing import Any

import broken_controllers
import pytest
from rich.console import Console

from controller.node import ControllerFactory
from controller.reference import make_node
from sim.search.strategies import load_scenario_dict
from sim.views.report import build_report
from sim.views.text import render_text
from sim.world.replay import ReplayResult, replay
from sim.world.replies import parse


def _run(timeline: list[dict[str, Any]], factory: ControllerFactory = make_node,
         end: float = 600, **camera: Any) -> ReplayResult:
    data = {"version": 1, "name": "said", "policy": "dhs-2023", "end": end,
            "cameras": [{"id": "cam-1", **camera}], "timeline": timeline}
    return replay(load_scenario_dict(data), factory)


def _problems(result: ReplayResult, key: str) -> list[str]:
    return list(getattr(result.judgements["cam-1"], key))


WARRANT = {"at": 10, "camera": "cam-1", "event": "activity_start", "activity": "arrest_warrant",
           "activity_id": "w-1"}


# ------------------------------------------------------------------------------ reading ids


@pytest.mark.req("P-REPLY", "R-IDEM")
@pytest.mark.parametrize(("payload", "expected"), [
    (b'{"id": 7, "type": "dock"}', 7),
    (b'{"id": "7", "type": "dock"}', "7"),
    (b'{"id": true, "type": "dock"}', None),
    (b'{"id": 7.0, "type": "dock"}', None),
    (b'{"id": 1e3, "type": "dock"}', None),
    (b'{"id": 9223372036854775808, "type": "dock"}', None),
    (b'{"id": "' + b"x" * 129 + b'", "type": "dock"}', None),
    (b'[1, 2]', None),
    (b"not json", None),
    (b"\xff\xfe", None),
    (b'{"id": 1, "x": ' + b"[" * 17 + b"]" * 17 + b"}", None),
])
def test_an_id_is_read_as_the_spec_defines_it(payload: bytes, expected: object) -> None:
    got = parse(payload).id
    assert got == expected and type(got) is type(expected)


@pytest.mark.req("P-REPLY", "R-BAD")
def test_a_well_formed_event_needs_every_field_with_its_type() -> None:
    assert parse(b'{"id": 1, "type": "button", "action": "start"}').event is not None
    assert parse(b'{"id": 1, "type": "button", "action": "sideways"}').event is None
    assert parse(b'{"id": 1, "type": "signal"}').event is None
    assert parse(b'{"id": 1, "type": "deactivate", "reason": "r", "actor": ""}').event is None
    assert parse(b'{"id": 1, "type": "dock", "ts": "soon"}').event is None
    assert parse(b'{"id": 1, "type": "warp_drive"}').event is None


@pytest.mark.req("P-REPLY", "R-BOUND")
def test_depth_is_counted_outside_strings_and_a_reading_is_the_same_every_time() -> None:
    brackets_in_a_string = b'{"id": 1, "type": "signal", "source": "' + b"[{" * 20 + b'"}'
    deep = b'{"id": 1, "type": "dock", "x": ' + b"[" * 17 + b"]" * 17 + b"}"
    shallow = b'{"id": 1, "type": "dock", "x": ' + b"[" * 15 + b"]" * 15 + b"}"
    big = b'{"id": 2, "type": "dock", "pad": "' + b"x" * 5000 + b'"}'  # past the reading cache
    for payload in (brackets_in_a_string, deep, shallow, big):
        for signed in (False, True):
            assert parse(payload, signed) == parse(payload, signed)
    assert parse(brackets_in_a_string).id == 1  # readable: the brackets are text
    assert parse(deep).id is None  # deeper than MAX_DEPTH: not read at all
    assert parse(shallow).event is not None
    assert parse(big).id == 2 and parse(big).event is not None


# ------------------------------------------------------------------------------ P-REPLY


@pytest.mark.req("P-REPLY", "R-STOP")
def test_a_stop_acked_during_a_warrant_is_a_wrong_reply() -> None:
    timeline = [WARRANT, {"at": 20, "camera": "cam-1", "event": "button", "action": "stop"}]
    assert _run(timeline).verdict == "pass"
    broken = _run(timeline, broken_controllers.stop_acked)
    assert broken.verdict == "fail"
    assert broken.judgements["cam-1"].missed_s["controller"] == 0  # nothing missed: only said
    [problem] = _problems(broken, "replies")
    assert "button stop during a required window (R-STOP) must be refused required_activity" in problem


@pytest.mark.req("P-REPLY", "R-BAD")
def test_garbage_without_an_id_still_gets_its_null_nack() -> None:
    timeline = [{"at": 5, "camera": "cam-1", "raw": {"topic": "bwc/cam-1/event", "payload": "{"}}]
    assert _run(timeline).verdict == "pass"
    [problem] = _problems(_run(timeline, broken_controllers.silent_null_nack), "replies")
    assert "message null" in problem and "got 0 replies" in problem


@pytest.mark.req("P-REPLY", "R-IDEM")
def test_the_end_of_an_activity_that_never_started_must_be_refused() -> None:
    timeline = [{"at": 5, "camera": "cam-1", "event": "activity_end", "activity_id": "ghost"}]
    assert _run(timeline).verdict == "pass"
    [problem] = _problems(_run(timeline, broken_controllers.unknown_end_acked), "replies")
    assert "never started (R-IDEM) must be refused unknown_activity" in problem


@pytest.mark.req("P-REPLY", "R-STOP")
def test_a_required_refusal_is_not_an_acceptance_either_way() -> None:
    """The reference refusing a stop during a warrant and acking one after it are both right."""
    timeline = [WARRANT,
                {"at": 20, "camera": "cam-1", "event": "button", "action": "stop"},
                {"at": 30, "camera": "cam-1", "event": "activity_end", "activity_id": "w-1"},
                {"at": 40, "camera": "cam-1", "event": "button", "action": "stop"},
                {"at": 50, "camera": "cam-1", "event": "deactivate", "reason": "coffee_break",
                 "actor": "sgt"}]
    result = _run(timeline)
    assert _problems(result, "replies") == []
    oks = [d.acks[0].ok for d in result.cameras["cam-1"].deliveries]
    assert oks == [True, False, True, True, True]


# ------------------------------------------------------------------------------ P-EVIDENCE


@pytest.mark.req("P-EVIDENCE", "R-META")
def test_a_resumed_recording_must_keep_its_incident() -> None:
    timeline = [WARRANT,
                {"at": 60, "camera": "cam-1", "event": "deactivate",
                 "reason": "medical_facility_privacy", "actor": "sgt"},
                {"at": 120, "camera": "cam-1", "event": "reactivate"}]
    assert _run(timeline).verdict == "pass"
    [problem] = _problems(_run(timeline, broken_controllers.new_incident_on_resume), "evidence")
    assert "resumes the deactivation" in problem and "'cam-1-1'" in problem


@pytest.mark.req("P-EVIDENCE", "R-LATE")
def test_a_late_trigger_span_must_stop_where_the_buffer_begins() -> None:
    late = {**WARRANT, "at": 0, "delay_s": 45}
    assert _run([late]).verdict == "pass"
    [problem] = _problems(_run([late], broken_controllers.late_span_to_arrival), "evidence")
    assert "span [0.0, 45.0], R-LATE gives [0, 15]" in problem


# ------------------------------------------------------------------------------ P-RESOURCE


@pytest.mark.req("P-RESOURCE", "R-POWER")
def test_the_battery_must_drain_at_record_drain_while_recording() -> None:
    timeline = [WARRANT, {"at": 110, "camera": "cam-1", "event": "activity_end",
                          "activity_id": "w-1"}]
    assert _run(timeline).verdict == "pass"
    [problem] = _problems(_run(timeline, broken_controllers.flat_drain), "resources")
    assert "reported battery_s 43090 at 110; the §2 model gives 43060" in problem


@pytest.mark.req("P-RESOURCE", "R-POWER")
def test_low_battery_is_due_again_after_charging_above_it() -> None:
    timeline = [{"at": 250, "camera": "cam-1", "event": "dock"},
                {"at": 300, "camera": "cam-1", "event": "undock"}]
    params: dict[str, Any] = {"battery_s": 300, "low_battery_s": 100}
    ok = _run(timeline, end=600, **params)
    assert ok.verdict == "pass"
    assert [a.kind for a in ok.cameras["cam-1"].alerts].count("low_battery") == 2
    [problem] = _problems(_run(timeline, broken_controllers.low_battery_once, end=600, **params),
                          "resources")
    assert "no low_battery alert within 1 s of 500" in problem


@pytest.mark.req("P-RESOURCE", "R-STORE")
def test_storage_is_freed_only_when_the_whole_upload_is_confirmed() -> None:
    timeline = [WARRANT,
                {"at": 110, "camera": "cam-1", "event": "activity_end", "activity_id": "w-1"},
                {"at": 200, "camera": "cam-1", "event": "dock"},
                {"at": 202, "camera": "cam-1", "event": "undock"}]
    assert _run(timeline).verdict == "pass"  # 130 s of footage need 6.5 s of upload: none freed
    [problem] = _problems(_run(timeline, broken_controllers.freed_at_dock), "resources")
    assert "storage freed before its upload was confirmed" in problem


# ------------------------------------------------------------------------------ reports


@pytest.mark.req("P-REPLY", "OUT-TEXT")
def test_the_reports_list_what_was_said_wrongly_in_its_own_category() -> None:
    timeline = [WARRANT, {"at": 20, "camera": "cam-1", "event": "button", "action": "stop"}]
    result = _run(timeline, broken_controllers.stop_acked)
    report = build_report(result)
    cam = report["cameras"]["cam-1"]
    assert report["verdict"] == "fail" and len(cam["replies"]) == 1
    assert "evidence" not in cam and "resources" not in cam
    json.dumps(report)
    out = io.StringIO()
    render_text(report, Console(file=out, width=200, highlight=False))
    assert "wrong reply:" in out.getvalue()
    assert "replies" not in build_report(_run(timeline))["cameras"]["cam-1"]


@pytest.mark.req("P-EVIDENCE", "R-META")
def test_a_deactivation_ended_in_the_instant_it_began_still_keeps_the_incident() -> None:
    """Found by fuzzing the C controller: the recording the pause closed is not its resumption."""
    timeline = [{**WARRANT, "at": 0},
                {"at": 0, "camera": "cam-1", "event": "deactivate",
                 "reason": "informant_or_undercover_safety", "actor": "officer-1"},
                {**WARRANT, "at": 0, "activity_id": "w-2"}]
    assert _run(timeline).verdict == "pass"
    [problem] = _problems(_run(timeline, broken_controllers.new_incident_on_resume), "evidence")
    assert "resumes the deactivation that closed cam-1-r1" in problem


@pytest.mark.req("P-EVIDENCE", "R-META")
def test_a_resumption_docked_in_the_same_instant_still_resumes_the_deactivation() -> None:
    """Found by the P-EVIDENCE suite: the resuming recording also closes at once (a dock in the
    same instant), so it ends where the pause began and is still the resumption, not a reuse."""
    timeline = [{**WARRANT, "at": 0},
                {"at": 0, "camera": "cam-1", "event": "deactivate",
                 "reason": "informant_or_undercover_safety", "actor": "officer-1"},
                {**WARRANT, "at": 0, "activity_id": "w-2"},
                {"at": 0, "camera": "cam-1", "event": "dock"}]
    assert _problems(_run(timeline, end=300), "evidence") == []
    [problem] = _problems(_run(timeline, broken_controllers.new_incident_on_resume, end=300),
                          "evidence")
    assert "resumes the deactivation that closed cam-1-r1" in problem


@pytest.mark.req("P-EVIDENCE", "R-MISS")
def test_a_late_trigger_announces_every_cause_since_its_ts_not_only_within_its_true_end() -> None:
    """The camera hears of the warrant after it truly ended; it cannot know that, so the boot
    after its dock is a cause it rightly announces."""
    timeline = [{"at": 600, "camera": "cam-1", "event": "dock"},
                {"at": 1200, "camera": "cam-1", "event": "activity_end", "activity_id": "w-1"},
                {"at": 3001, "camera": "cam-1", "event": "undock"},
                {**WARRANT, "at": 0, "delay_s": 3601}]
    result = _run(timeline, end=3900)
    causes = {a.cause for a in result.cameras["cam-1"].alerts
              if a.kind == "missed_required_recording"}
    assert causes == {"docked", "not_ready"}
    assert _problems(result, "evidence") == []
