"""`bwcsim check`: the per-scenario lines and the summary are the command's output (stdout), a
JUnit file for CI, and exit codes that a CI job can trust."""

from __future__ import annotations

import os
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app

ROOT = Path(__file__).resolve().parents[1]
PASSING = ROOT / "scenarios" / "search_warrant.yaml"

FAILING = textwrap.dedent("""\
    version: 1
    name: expects the wrong thing
    end: 600
    cameras: [{id: cam-1}]
    timeline:
      - {at: 100, camera: cam-1, event: activity_start, activity: patrol, activity_id: p-1}
    expect: {recordings: {cam-1: 2}}
    """)


@pytest.mark.req("CHECK-CLI")
def test_summary_and_lines_go_to_stdout_and_junit_records_each_case(tmp_path: Path) -> None:
    failing = tmp_path / "failing.yaml"
    failing.write_text(FAILING, "utf-8")
    junit = tmp_path / "j.xml"
    result = CliRunner().invoke(app, ["check", str(PASSING), str(failing), "--junit", str(junit)])
    assert result.exit_code == 1
    assert f"PASS {PASSING}" in result.stdout
    assert f"FAIL {failing}" in result.stdout
    assert "recordings.cam-1: expected 2, got 1" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == "1 passed, 1 failed"
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    failure = suite.find(f"testcase[@name='{failing}']/failure")
    assert failure is not None and "expected 2, got 1" in (failure.text or "")


@pytest.mark.req("CHECK-CLI")
def test_an_unwritable_junit_file_fails_the_check(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["check", str(PASSING), "--junit", str(tmp_path / "missing" / "j.xml")]
    )
    assert result.exit_code == 2
    assert "cannot write" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.req("CHECK-CLI")
def test_an_invalid_scenario_is_reported_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nend: 10\ncameras: [{id: cam-1, colour: red}]\n", "utf-8")
    result = CliRunner().invoke(app, ["check", str(bad)])
    assert result.exit_code == 2
    assert f"ERROR {bad}" in result.stdout
    assert f"{bad}:4: cameras[0].colour" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == "0 passed, 0 failed, 1 invalid"


@pytest.mark.req("CHECK-CLI")
def test_a_controller_module_in_the_working_folder_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A firmware team's adapter next to its scenarios imports without being installed."""
    (tmp_path / "my_fw_adapter.py").write_text(
        "from controller.reference import make_node as reference\n"
        "def make_node(setup):\n    return reference(setup)\n",
        "utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", os.getcwd())])
    result = CliRunner().invoke(
        app, ["check", str(PASSING), "--controller", "my_fw_adapter:make_node"]
    )
    assert result.exit_code == 0, result.output
