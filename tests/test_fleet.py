"""Fleet simulation: team plans, the generated shift, the summary and ``bwcsim fleet``."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.fleet import (
    DENSE_PROFILE,
    TeamPlan,
    plan_fleet,
    run_fleet,
    run_team,
    scenario_yaml,
    team_scenario,
)
from sim.views.report import build_report
from sim.world.oracle import REPORT_KEYS
from sim.world.replay import replay
from sim.world.scenario import Scenario, TimelineEntry, load_scenario

pytestmark = pytest.mark.req("FLEET")


def _windows_of(sc: Scenario, activity: str) -> list[tuple[float, float, str | None]]:
    """(start, end, team) of every activity of that name, from the timeline."""
    starts: dict[tuple[str | None, str | None, str], float] = {}
    out = []
    for e in sc.timeline:
        aid = str(e.fields.get("activity_id"))
        key = (e.team, e.camera, aid)
        if e.event == "activity_start" and e.fields.get("activity") == activity:
            starts[key] = e.at
        elif e.event == "activity_end" and key in starts:
            out.append((starts.pop(key), e.at, e.team))
    return out


def test_teams_of_two_to_six_cover_every_camera_once() -> None:
    for n in (1, 2, 3, 7, 50, 333):
        plans = plan_fleet(n, 12, seed=4)
        cams = [c for p in plans for c in p.cameras]
        assert len(cams) == n and len(set(cams)) == n
        assert len({p.team for p in plans}) == len(plans)
        if n > 1:
            assert all(2 <= len(p.cameras) <= 6 for p in plans)


def test_a_team_shift_depends_on_seed_and_team_only() -> None:
    small, large = plan_fleet(40, 12, seed=9), plan_fleet(400, 12, seed=9)
    assert small[0] == large[0]
    assert team_scenario(small[0]) == team_scenario(large[0])
    other_seed = plan_fleet(40, 12, seed=10)[0]
    moved = TeamPlan(small[0].team, small[0].cameras, 12, 10)
    assert team_scenario(moved).timeline != team_scenario(small[0]).timeline
    assert other_seed.seed == 10


def test_timeline_entries_are_immutable_and_each_owns_its_fields() -> None:
    """A generated timeline's entries are shared by every camera and judgement of a team's run:
    none may change one, and no two share a ``fields`` map."""
    timeline = team_scenario(plan_fleet(40, 12, seed=2, profile=DENSE_PROFILE)[1]).timeline
    assert {e.fault for e in timeline} >= {None, "disconnect"} and any(e.delay_s for e in timeline)
    assert [e.index for e in timeline] == list(range(len(timeline)))
    assert all(e.line == 0 for e in timeline)
    entry = TimelineEntry(index=7, line=0, at=1.5, team="t", event="dock")
    assert entry.fields == {} and entry.fields is not TimelineEntry(index=8, line=0, at=1.5).fields
    with pytest.raises(AttributeError):
        entry.at = 2.0  # type: ignore[misc]
    moved = msgspec.structs.replace(entry, at=2.0)
    assert (moved.at, entry.at) == (2.0, 1.5) and moved.index == entry.index


def test_generated_shifts_hold_every_kind_of_happening() -> None:
    plans = plan_fleet(120, 12, seed=1)
    events: set[str] = set()
    faults: set[str] = set()
    late = 0
    for plan in plans:
        sc = team_scenario(plan)
        assert sc.end == 12 * 3600.0
        assert all(0 <= e.at <= sc.end for e in sc.timeline)
        assert [e.index for e in sc.timeline] == list(range(len(sc.timeline)))
        events.update(e.event for e in sc.timeline if e.event is not None)
        faults.update(e.fault for e in sc.timeline if e.fault is not None)
        late += sum(e.delay_s > 0 for e in sc.timeline)
        patrols = _windows_of(sc, "patrol")
        # Patrols cover most of the shift ...
        assert sum(b - a for a, b, _ in patrols) > 0.6 * sc.end
        # ... and every emergency call is nested in one of them.
        for a, b, _ in _windows_of(sc, "emergency_response"):
            assert any(pa <= a and b <= pb for pa, pb, _ in patrols), (plan.team, a, b)
        warrants = _windows_of(sc, "arrest_warrant") + _windows_of(sc, "search_warrant")
        assert all(team == plan.team for _, _, team in warrants)  # warrant ops are team events
        docks = [e.at for e in sc.timeline if e.event == "dock"]
        assert len(docks) >= len(plan.cameras)  # at least the end of the shift
    assert {"activity_start", "activity_end", "dock", "undock", "signal", "button",
            "deactivate", "reactivate"} <= events
    assert "disconnect" in faults
    assert late > 0
    # Broker outages are rare in a normal shift; a busy one has them.
    busy = plan_fleet(200, 12, seed=1, profile=DENSE_PROFILE)
    assert any(e.fault == "broker_outage" for p in busy for e in team_scenario(p).timeline)


def test_the_reference_controller_passes_a_fleet_and_totals_add_up() -> None:
    result = run_fleet(30, 12, seed=2)
    doc = result.to_json()
    cams = result.camera_summaries()
    assert doc["cameras"] == len(cams) == 30
    assert doc["verdict"] == "pass", doc["worst"]
    assert doc["missed_s"]["controller"] == 0.0
    assert list(doc["missed_s"]) == list(REPORT_KEYS)
    for key in REPORT_KEYS:
        assert doc["missed_s"][key] == pytest.approx(sum(c.missed_s[key] for c in cams), abs=0.01)
    assert doc["events"] == sum(c.events for c in cams) > 30 * 10
    assert doc["recordings"] == sum(c.recordings for c in cams) > 0
    assert doc["footage_h"] > 0 and doc["required_h"] > doc["footage_h"] * 0.5
    assert sum(doc["final_states"].values()) == 30
    worst = doc["worst"]
    totals = [w["missed_s"]["total"] for w in worst]
    assert totals == sorted(totals, reverse=True)


def test_same_seed_same_fleet() -> None:
    assert run_fleet(12, 6, seed=5).to_json() == run_fleet(12, 6, seed=5).to_json()


def test_a_team_summary_agrees_with_the_scenario_report() -> None:
    plan = plan_fleet(6, 12, seed=3, profile=DENSE_PROFILE)[0]
    team = run_team(plan)
    report = build_report(replay(team_scenario(plan)))
    for cam in team.cameras:
        rep = report["cameras"][cam.camera]
        assert cam.missed_s == rep["missed_s"]
        assert cam.recordings == len(rep["recordings"])
        assert cam.final_state == rep["final_state"]
        assert cam.refused == rep["refused"]


def test_generated_scenario_written_as_yaml_replays_identically(tmp_path: Path) -> None:
    plan = plan_fleet(4, 3, seed=8, profile=DENSE_PROFILE)[0]
    sc = team_scenario(plan)
    path = tmp_path / "shift.yaml"
    path.write_text(scenario_yaml(sc), encoding="utf-8")
    loaded = load_scenario(path)
    assert len(loaded.timeline) == len(sc.timeline)
    direct, from_file = build_report(replay(sc)), build_report(replay(loaded))
    assert from_file == direct


def test_cli_fleet_json_is_one_object_and_exit_code_follows_the_verdict() -> None:
    res = CliRunner().invoke(app, ["fleet", "--cameras", "10", "--hours", "2", "--seed", "1",
                                   "--report", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["cameras"] == 10 and doc["verdict"] == "pass"
    assert doc == run_fleet(10, 2, seed=1).to_json()


def test_cli_fleet_text_summary() -> None:
    res = CliRunner().invoke(app, ["fleet", "--cameras", "8", "--hours", "12"])
    assert res.exit_code == 0, res.output
    assert "verdict: PASS" in res.stdout
    assert "missed seconds by cause" in res.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--cameras", "0", "--hours", "1"],
        ["--cameras", "5", "--hours", "0"],
        ["--cameras", "5", "--hours", "1", "--workers", "0"],
        ["--cameras", "5", "--hours", "1", "--policy", "no-such-policy.yaml"],
    ],
)
def test_cli_fleet_invalid_input_exits_2(args: list[str]) -> None:
    res = CliRunner().invoke(app, ["fleet", *args])
    assert res.exit_code == 2
    assert res.stdout == ""


def test_cli_fleet_timeline_of_the_worst_team(tmp_path: Path) -> None:
    out = tmp_path / "worst.html"
    res = CliRunner().invoke(app, ["fleet", "--cameras", "12", "--hours", "12", "--seed", "3",
                                   "--timeline", str(out), "--report", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    if "timeline skipped" in res.stderr:
        assert not out.exists()
    else:
        assert doc["worst"], "a 12-hour fleet should have some excused misses"
        assert out.exists() and "<svg" in out.read_text(encoding="utf-8")


def _not_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("the fleet ran although its output path was bad")


@pytest.mark.parametrize("where", ["missing-folder", "folder", "under-a-file"])
def test_cli_fleet_timeline_that_cannot_be_written_exits_2_before_running(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plain").write_text("x", encoding="utf-8")
    target = {"missing-folder": tmp_path / "nope" / "x.html", "folder": tmp_path,
              "under-a-file": tmp_path / "plain" / "x.html"}[where]
    monkeypatch.setattr("sim.fleet.command.run_fleet", _not_run)  # checked before minutes of work
    res = CliRunner().invoke(app, ["fleet", "--cameras", "4", "--hours", "1",
                                   "--timeline", str(target), "--report", "json"])
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    [line] = res.stderr.splitlines()
    assert line.startswith(f"bwcsim: cannot write {target}: ")
    assert not isinstance(res.exception, AssertionError)


def test_worst_timelines_report_a_write_failure_as_invalid_input(tmp_path: Path) -> None:
    from rich.console import Console

    from controller.errors import InvalidInput
    from sim.fleet import write_worst_timelines

    result = run_fleet(12, 12, seed=3)
    assert result.worst(), "a 12-hour fleet should have some excused misses"
    target = tmp_path / "gone" / "x.html"  # the folder vanished after the early check
    with pytest.raises(InvalidInput, match=rf"^cannot write {target}: "):
        write_worst_timelines(result, target, Console(stderr=True))


def test_team_shift_names_the_fleet_seed_and_labels_its_own_bus_seed(tmp_path: Path) -> None:
    plan = plan_fleet(10, 4, seed=5)[1]
    sc = team_scenario(plan)
    assert sc.name == f"fleet shift {plan.team} (fleet seed 5)"
    assert sc.seed != 5  # the team's bus seed is derived, so it must be explained
    assert "bus seed (latency jitter, duplicates), derived from fleet seed 5" in sc.description
    assert f"The run's seed, {sc.seed}, is this team's own bus seed" in sc.description
    assert "bwcsim fleet --seed 5" in sc.description and ", ".join(plan.cameras) in sc.description
    written = tmp_path / "shift.yaml"
    written.write_text(scenario_yaml(sc), encoding="utf-8")
    assert load_scenario(written).description == sc.description


def test_text_summary_gives_every_seconds_figure_one_decimal() -> None:
    import re

    from rich.console import Console

    from sim.fleet import render_text

    doc = run_fleet(4, 1, seed=2).to_json()
    doc["worst"] = [{"camera": "cam-00001", "team": "team-0001", "verdict": "pass",
                     "missed_s": {"battery": 8579.64, "docked": 695.293, "total": 9274.933}}]
    con = Console(record=True, width=200, highlight=False)
    render_text(doc, con)
    text = con.export_text()
    assert "battery 8579.6, docked 695.3" in text and "9274.9" in text
    causes = "|".join(REPORT_KEYS)
    numbers = re.findall(rf"\b(?:{causes})[\s│]+(\d+(?:\.\d+)?)", text)
    assert len(numbers) >= len(REPORT_KEYS) + 2, text
    assert all(re.fullmatch(r"\d+\.\d", n) for n in numbers), numbers


def test_a_finished_team_run_is_freed_without_the_cyclic_collector() -> None:
    """The replay breaks its own reference cycles (broker callbacks, scheduler events, the
    camera's state machine) when the run ends, so dropping the result frees everything."""
    import gc

    plan = plan_fleet(12, 2.0, seed=5)[0]
    run_team(plan)  # warm up: imports and caches leave their own garbage once
    gc.collect()
    gc.disable()
    try:
        summary = run_team(plan)
        result = replay(team_scenario(plan))
        assert result.verdict == "pass" and summary.cameras
        del result, summary
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_teams_run_with_the_young_generation_spaced_out_and_the_thresholds_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a batch of teams runs, the cyclic collector's youngest generation waits for
    YOUNG_GC_THRESHOLD allocations (the runs free themselves by reference counting); the
    caller's thresholds are back afterwards, also when a run fails."""
    import gc

    from controller.node import CameraNode, CameraSetup
    from controller.reference import make_node
    from sim.fleet import engine

    seen: list[tuple[int, int, int]] = []

    def recording(setup: CameraSetup) -> CameraNode:
        seen.append(gc.get_threshold())
        return make_node(setup)

    def broken(setup: CameraSetup) -> CameraNode:
        raise RuntimeError("no camera")

    before = gc.get_threshold()
    plan = plan_fleet(4, 1.0, seed=3)[0]
    monkeypatch.setattr(engine, "controller_factory", lambda _spec: recording)
    engine.run_teams([plan])
    assert gc.get_threshold() == before
    assert seen and all(t[0] >= engine.YOUNG_GC_THRESHOLD and t[1:] == before[1:] for t in seen)
    monkeypatch.setattr(engine, "controller_factory", lambda _spec: broken)
    with pytest.raises(RuntimeError, match="no camera"):
        engine.run_teams([plan])
    assert gc.get_threshold() == before
