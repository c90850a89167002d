"""What if: edits to a scenario document (run --set), and two runs compared (bwcsim diff)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.errors import InvalidInput, ScenarioError
from sim.cli import app
from sim.world.whatif import Edit, ScenarioText, parse_assignment, parse_field

pytestmark = pytest.mark.req("WHATIF")

ROOT = Path(__file__).resolve().parents[1]
WARRANT = ROOT / "scenarios" / "arrest_warrant_team.yaml"


def _json(args: list[str]) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(app, args)
    return result.exit_code, json.loads(result.stdout)


def test_parse_field_and_assignment() -> None:
    assert parse_field("timeline[3].delay_s") == ("timeline", 3, "delay_s")
    assert parse_field("policy") == ("policy",)
    assert parse_assignment("timeline[3].delay_s=15") == Edit("set", ("timeline", 3, "delay_s"), 15)
    assert parse_assignment('end="00:30:00"').value == "00:30:00"
    assert parse_assignment("cameras[0].team=null") == Edit("unset", ("cameras", 0, "team"))
    entry = parse_assignment("timeline[0]={at: 10, camera: cam-1, event: dock}").value
    assert entry == {"at": 10, "camera": "cam-1", "event": "dock"}
    for bad in ("timeline[3]", "timeline[x]=1", "3=4", "a..b=1"):
        with pytest.raises(InvalidInput):
            parse_assignment(bad)


def test_no_edit_keeps_the_file_byte_for_byte() -> None:
    text = ScenarioText.read(WARRANT)
    text.apply([])
    assert text.text() == WARRANT.read_text("utf-8")


def test_edits_keep_comments_and_replay_through_the_ordinary_loader() -> None:
    text = ScenarioText.read(WARRANT)
    text.apply([parse_assignment("timeline[1].delay_s=90"),
                parse_assignment("cameras[1].prebuffer_s=120"),
                Edit("add", ("timeline",), {"at": "00:20:00", "camera": "cam-1", "event": "dock"})])
    out = text.text()
    assert "# boots 5 s: buffering from 00:09:05" in out  # a comment on an entry
    assert "# Required window for every camera" in out  # a comment in a block
    assert '- {at: "00:20:00", camera: cam-1, event: dock}' in out  # the library's style
    scenario = text.scenario()
    assert scenario.timeline[1].delay_s == 90.0
    assert scenario.camera("cam-2").params.prebuffer_s == 120.0
    assert (scenario.timeline[3].at, scenario.timeline[3].event) == (1200.0, "dock")


def test_an_edit_that_does_not_fit_names_its_field() -> None:
    text = ScenarioText.read(WARRANT)
    with pytest.raises(InvalidInput) as caught:
        text.apply([parse_assignment("timeline[9].delay_s=1")])
    assert caught.value.field == "timeline[9]"
    assert "timeline has 3 item(s): timeline[0] to timeline[2]" in caught.value.message
    with pytest.raises(InvalidInput, match="holds a single value"):
        ScenarioText.read(WARRANT).apply([parse_assignment("name.x=1")])
    # a value that fits the document but not the format is the loader's, with its line
    bad = ScenarioText.read(WARRANT)
    bad.apply([parse_assignment("timeline[1].delay_s=-5")])
    with pytest.raises(ScenarioError) as err:
        bad.scenario()
    assert (err.value.line, err.value.field) == (21, "timeline[1].delay_s")


def test_run_set_delays_a_trigger_past_the_buffer() -> None:
    code, report = _json(["run", str(WARRANT), "--report", "json"])
    assert code == 0 and report["missed_s"]["late_trigger"] == 0  # type: ignore[index]
    code, report = _json(["run", str(WARRANT), "--report", "json",
                          "--set", "timeline[1].delay_s=90", "--set", "cameras[1].prebuffer_s=120"])
    # 90 s late: cam-1 and cam-3 (30 s buffers) lose 60 s each; cam-2's 120 s buffer reaches back
    assert report["missed_s"]["late_trigger"] == 120.0  # type: ignore[index]
    assert code == 1  # its expect: (nothing missed) no longer holds


def test_run_set_errors_are_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(app, ["run", str(WARRANT), "--set", "timeline[9].delay_s=1"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "bwcsim: --set timeline[9]: timeline has 3 item(s): timeline[0] to timeline[2]")
    result = CliRunner().invoke(app, ["run", str(WARRANT), "--set", "timeline[1].at=00:20"])
    assert result.exit_code == 2
    assert "timeline[1].at: '00:20' has two parts" in result.stderr
    assert result.stderr.strip().endswith("(after --set)")


def test_diff_lines_up_verdicts_and_causes_per_camera(tmp_path: Path) -> None:
    late = tmp_path / "late.yaml"
    text = ScenarioText.read(WARRANT)
    text.apply([parse_assignment("timeline[1].delay_s=90")])
    late.write_text(text.text(), encoding="utf-8")
    code, diff = _json(["diff", str(WARRANT), str(late), "--report", "json"])
    assert code == 0
    assert diff["verdict_changed"] is False
    assert diff["missed_s"] == [
        {"cause": "total", "a": 0.0, "b": 150.0, "change": 150.0},
        {"cause": "late_trigger", "a": 0.0, "b": 150.0, "change": 150.0},
    ]
    cams = diff["cameras"]
    assert isinstance(cams, dict)
    assert cams["cam-2"]["missed_s"][1] == {"cause": "late_trigger", "a": 0.0, "b": 30.0,
                                            "change": 30.0}
    # the same question asked with --set, and the text a person reads
    result = CliRunner().invoke(app, ["diff", str(WARRANT), str(WARRANT), "--set",
                                      "timeline[1].delay_s=90"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    out = result.stdout
    assert "verdict: PASS → PASS  (same)" in out
    assert "late_trigger" in out and "+150 s" in out
    assert "cam-1: final pre_buffer → pre_buffer · recordings 1 → 1 · refused 0 → 0" in out
