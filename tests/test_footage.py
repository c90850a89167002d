"""The footage judgements (P-NOPHANTOM, P-PRIVACY) on hand-built observations and on replays,
and how the report, its schema, the text report and the timeline show them."""

from __future__ import annotations

import json
from pathlib import Path

import broken_controllers
import jsonschema  # type: ignore[import-untyped]
import pytest
from rich.console import Console

from controller.messages import RecordingMeta
from sim.search.invariants import no_phantom, privacy
from sim.search.strategies import load_scenario_dict
from sim.spec.report_schema import report_schema
from sim.views.model import run_view
from sim.views.projector import render_projector
from sim.views.report import build_report
from sim.views.text import render_text
from sim.views.timeline import render_timeline
from sim.world.footage import FootageFacts, ProhibitedActivity, judge_footage
from sim.world.oracle import StatePoint
from sim.world.replay import replay
from sim.world.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
FREE = 36000.0


def rec(start: float, end: float, buffer_s: float = 0.0, rid: str = "r1",
        segments: list[tuple[float, float]] | None = None, is_open: bool = False) -> RecordingMeta:
    return RecordingMeta(camera="cam-1", recording=rid, incident="i1", start=start, end=end,
                         buffer_s=buffer_s, reasons=[], segments=1,
                         segment_list=segments if segments is not None else [(start, end)],
                         final=True, open=is_open)


def states(*points: tuple[float, str]) -> list[StatePoint]:
    return [StatePoint(at, state, FREE) for at, state in points]


# ------------------------------------------------------------------------------ P-NOPHANTOM


@pytest.mark.req("P-NOPHANTOM", "R-BUF")
def test_a_buffer_longer_than_the_time_in_pre_buffer_is_phantom() -> None:
    seen = states((0.0, "docked"), (100.0, "standby"), (105.0, "pre_buffer"), (115.0, "recording"))
    ok = judge_footage(30.0, seen, FootageFacts(recordings=[rec(105.0, 200.0, 10.0)]))
    assert ok.phantom == [] and ok.ok
    bad = judge_footage(30.0, seen, FootageFacts(recordings=[rec(85.0, 200.0, 30.0)]))
    kinds = {p.kind for p in bad.phantom}
    assert kinds == {"buffer", "docked", "standby"}
    buffer = next(p for p in bad.phantom if p.kind == "buffer")
    assert (buffer.start, buffer.end) == (85.0, 105.0)
    assert bad.phantom_s == pytest.approx(20.0) and not bad.ok


@pytest.mark.req("P-NOPHANTOM", "R-BUF")
def test_a_buffer_longer_than_prebuffer_s_is_phantom() -> None:
    seen = states((0.0, "pre_buffer"), (500.0, "recording"))
    judged = judge_footage(30.0, seen, FootageFacts(recordings=[rec(440.0, 600.0, 60.0)]))
    assert [(p.kind, p.start, p.end) for p in judged.phantom] == [("buffer", 440.0, 470.0)]


@pytest.mark.req("P-NOPHANTOM", "R-DOCK")
def test_footage_while_docked_or_off_is_phantom_and_a_gap_between_segments_fails() -> None:
    seen = states((0.0, "recording"), (100.0, "docked"), (200.0, "pre_buffer"))
    judged = judge_footage(30.0, seen, FootageFacts(recordings=[
        rec(0.0, 150.0, segments=[(0.0, 60.0), (70.0, 150.0)])]))
    assert [(p.kind, p.start, p.end) for p in judged.phantom] == [
        ("gap", 60.0, 70.0), ("docked", 100.0, 150.0)]
    assert judged.phantom_s == pytest.approx(50.0)  # the gap counts no seconds, but fails


@pytest.mark.req("P-NOPHANTOM")
def test_two_recordings_covering_the_same_second_overlap() -> None:
    seen = states((0.0, "recording"))
    judged = judge_footage(30.0, seen, FootageFacts(recordings=[
        rec(0.0, 100.0, rid="r1"), rec(90.0, 200.0, rid="r2")]))
    assert [(p.kind, p.start, p.end, p.recording) for p in judged.phantom] == [
        ("overlap", 90.0, 100.0, "r2")]


# ------------------------------------------------------------------------------ P-PRIVACY

DEMO = ProhibitedActivity("fa-1", "first_amendment_activity", 100.0, 400.0)


@pytest.mark.req("P-PRIVACY")
def test_recording_a_prohibited_activity_with_no_reason_counts_its_seconds() -> None:
    seen = states((0.0, "pre_buffer"), (100.0, "recording"), (400.0, "pre_buffer"))
    judged = judge_footage(30.0, seen, FootageFacts(recordings=[rec(100.0, 400.0)],
                                                    prohibited=[DEMO]))
    assert judged.prohibited_s == pytest.approx(300.0)
    assert judged.prohibited[0].activity_ids == ("fa-1",) and not judged.ok


@pytest.mark.req("P-PRIVACY", "R-SIG", "R-BUF")
def test_a_hold_justifies_its_recording_buffer_included_until_the_recording_ends() -> None:
    seen = states((0.0, "pre_buffer"), (200.0, "recording"), (300.0, "pre_buffer"))
    facts = FootageFacts(recordings=[rec(170.0, 300.0, 30.0)], prohibited=[DEMO], holds=[200.0])
    assert judge_footage(30.0, seen, facts).prohibited_s == 0.0
    # The same recording with no hold: every second in the demonstration counts.
    bare = FootageFacts(recordings=[rec(170.0, 300.0, 30.0)], prohibited=[DEMO])
    assert judge_footage(30.0, seen, bare).prohibited_s == pytest.approx(130.0)


@pytest.mark.req("P-PRIVACY")
def test_a_required_window_beats_a_prohibited_activity() -> None:
    seen = states((0.0, "pre_buffer"), (150.0, "recording"), (450.0, "pre_buffer"))
    facts = FootageFacts(recordings=[rec(120.0, 450.0, 30.0)], prohibited=[DEMO],
                         required=[(150.0, 350.0)])
    judged = judge_footage(30.0, seen, facts)
    # Buffer 120-150 is justified by the activation; 350-400 is not (the window had closed).
    assert [(s.start, s.end) for s in judged.prohibited] == [(350.0, 400.0)]


@pytest.mark.req("P-PRIVACY", "R-SIG", "R-NOSPLIT")
def test_a_recording_that_closes_when_only_a_signal_arrived_was_stopped_by_it() -> None:
    seen = states((0.0, "pre_buffer"), (10.0, "recording"), (50.0, "pre_buffer"))
    stopped = judge_footage(30.0, seen, FootageFacts(
        recordings=[rec(0.0, 50.0, 10.0)], nudges=[(50.0, "signal:taser")]))
    assert stopped.stopped == ["recording r1 stopped at 50 by signal:taser"] and not stopped.ok
    explained = judge_footage(30.0, seen, FootageFacts(
        recordings=[rec(0.0, 50.0, 10.0)], nudges=[(50.0, "signal:taser")], explained=[50.0]))
    assert explained.stopped == []


# ------------------------------------------------------------------------------ replays


def _demo(extra: list[dict[str, object]]) -> dict[str, object]:
    return {
        "version": 1, "name": "demo", "end": 120, "cameras": [{"id": "cam-1"}],
        "timeline": [
            {"at": 10, "camera": "cam-1", "event": "activity_start",
             "activity": "first_amendment_activity", "activity_id": "fa-1"},
            {"at": 90, "camera": "cam-1", "event": "activity_end", "activity_id": "fa-1"},
            *extra,
        ],
    }


@pytest.mark.req("P-PRIVACY", "R-SIG")
def test_the_reference_passes_and_a_camera_recording_a_demonstration_fails() -> None:
    scenario = load_scenario_dict(_demo([{"at": 40, "camera": "cam-1", "event": "signal",
                                          "source": "holster"}]))
    good = replay(scenario)
    assert good.verdict == "pass" and privacy(good) == [] and no_phantom(good) == []
    bad = replay(scenario, broken_controllers.prohibited_records)
    assert bad.verdict == "fail"
    assert privacy(bad) == ["cam-1: 30 prohibited second(s) 10-40 in cam-1-r1 while fa-1 was "
                            "open and nothing justified recording"]


@pytest.mark.req("P-NOPHANTOM", "R-DOCK")
def test_a_camera_that_buffers_in_its_dock_shows_footage_that_cannot_exist() -> None:
    scenario = load_scenario_dict({
        "version": 1, "name": "dock", "end": 100, "cameras": [{"id": "cam-1", "initial": "docked"}],
        "timeline": [
            {"at": 10, "camera": "cam-1", "event": "undock"},
            {"at": 20, "camera": "cam-1", "event": "activity_start", "activity": "patrol",
             "activity_id": "p-1"},
        ],
    })
    assert replay(scenario).verdict == "pass"
    bad = replay(scenario, broken_controllers.docked_buffer)
    assert bad.verdict == "fail"
    assert {p.kind for p in bad.judgements["cam-1"].footage.phantom} >= {"buffer", "standby"}


# ------------------------------------------------------------------------------ outputs


@pytest.mark.req("P-PRIVACY", "P-NOPHANTOM", "SCHEMA")
def test_every_library_report_meets_the_report_schema() -> None:
    validator = jsonschema.Draft202012Validator(report_schema())
    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    assert len(files) > 20
    for path in files:
        report = json.loads(json.dumps(build_report(replay(load_scenario(path)))))
        errors = sorted(validator.iter_errors(report), key=str)
        assert not errors, f"{path.name}: {errors[0].message}"
        assert report["prohibited_s"] == 0.0 and report["phantom_s"] == 0.0, path.name


@pytest.mark.req("P-PRIVACY", "P-NOPHANTOM")
def test_the_json_and_text_reports_and_the_timeline_show_what_should_not_be_there() -> None:
    scenario = load_scenario_dict(_demo([]))
    result = replay(scenario, broken_controllers.prohibited_records)
    report = build_report(result)
    jsonschema.validate(report, report_schema())
    assert report["prohibited_s"] == 80.0 and report["verdict"] == "fail"
    cam = report["cameras"]["cam-1"]
    assert cam["prohibited_s"] == 80.0 and cam["phantom_s"] == 0.0
    assert cam["prohibited"] == [{"start": 10.0, "end": 90.0, "recording": "cam-1-r1",
                                  "activity_ids": ["fa-1"]}]
    console = Console(width=80, record=True, color_system=None)
    render_text(report, console)
    text = console.export_text()
    assert "a camera recorded 80 s (~1 min) the policy prohibits" in text
    assert "Recorded while the policy prohibits it" in text
    page = render_timeline(run_view(result, report, []))
    assert 'class="prohibited"' in page and 'class="prohibited-window"' in page
    assert "recorded while the policy prohibits it" in page
    room = render_projector(run_view(result, report, []))
    assert 'class="prohibited"' in room and "recorded 80 s (~1 min) while prohibited" in room

    phantom = replay(load_scenario_dict(_demo([{"at": 20, "camera": "cam-1", "event": "button",
                                                "action": "start"}])),
                     broken_controllers.full_buffer)
    report = build_report(phantom)
    assert report["phantom_s"] == 10.0  # 30 s claimed at 20, buffering since 0
    assert [p["kind"] for p in report["cameras"]["cam-1"]["phantom"]] == ["buffer"]
    page = render_timeline(run_view(phantom, report, []))
    assert 'class="phantom phantom-buffer"' in page and "Footage that should not be there" in page
    assert "footage that cannot exist" in render_projector(run_view(phantom, report, []))
