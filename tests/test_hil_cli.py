"""``bwcsim run/check --live``: the options, and what is refused before any broker is touched."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from typer.testing import CliRunner

from sim.check import CheckResult, report_name, write_junit
from sim.cli import app

pytestmark = pytest.mark.req("R-HIL")

ROOT = Path(__file__).resolve().parents[1]
WARRANT = str(ROOT / "scenarios" / "conformance" / "warrant_basic.yaml")
OUTAGE = str(ROOT / "scenarios" / "bus_disconnect_and_outage.yaml")
NOWHERE = "mqtt://127.0.0.1:1"  # nothing listens: every case below must fail before connecting


@pytest.mark.parametrize(("args", "message"), [
    (["run", WARRANT, "--speed", "50"], "--speed: only with --live URL"),
    (["check", WARRANT, "--spawn"], "--spawn: only with --live URL"),
    (["run", WARRANT, "--live", NOWHERE, "--speed", "0"], "--speed: 0 is not a speed"),
    (["run", WARRANT, "--live", NOWHERE, "--camera-map", "cam-1"], "is not CAM=DEVICE"),
    (["run", WARRANT, "--live", NOWHERE, "--camera-map", "cam-9=dev"],
     "--camera-map: 'cam-9' is not a camera of"),
    (["run", WARRANT, "--live", NOWHERE, "--prompt", "teleport"], "not a physical event"),
    (["check", WARRANT, "--live", NOWHERE, "--jobs", "2"], "--jobs: devices on the broker"),
    (["run", WARRANT, "--live", NOWHERE, "--controller", "broken_controllers:zero_buffer"],
     "--controller: with --live the devices are the controllers"),
    (["run", WARRANT, "--live", "http://x"], "--live: "),
    (["run", OUTAGE, "--live", NOWHERE],
     "cannot run live: timeline[0] is a disconnect fault: the harness cannot cut a device's link"),
])
def test_what_cannot_be_played_live_exits_2_with_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_check_live_skips_what_a_real_broker_cannot_play_with_the_reason(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = CliRunner().invoke(app, ["check", OUTAGE, "--live", NOWHERE, "--junit", str(junit)])
    assert result.exit_code == 0, result.output
    assert f"SKIP {OUTAGE}" in result.output
    assert "broker_outage fault: the harness cannot take down a broker" in result.output
    assert "0 passed, 0 failed, 1 skipped (cannot run live) · live" in result.output
    suite = ET.parse(junit).getroot()
    assert suite.get("skipped") == "1"
    assert [child.tag for case in suite for child in case] == ["skipped"]


def test_junit_counts_an_incomplete_live_run_as_a_failure(tmp_path: Path) -> None:
    results = [CheckResult(Path("a.yaml"), "a", "incomplete", ["cam-1: device x offline 0-10 s"]),
               CheckResult(Path("b.yaml"), "b")]
    write_junit(results, tmp_path / "j.xml")
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert suite.get("failures") == "1" and suite.get("skipped") is None
    (failure,) = suite.iter("failure")
    assert failure.get("message") == "cam-1: device x offline 0-10 s"


def test_check_writes_each_scenarios_report_when_asked(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["check", WARRANT, "--reports", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "r" / report_name(Path(WARRANT))).read_text())
    assert doc["verdict"] == "pass" and "live" not in doc
    assert report_name(Path("scenarios/conformance/x.yaml")) == "scenarios__conformance__x.json"
