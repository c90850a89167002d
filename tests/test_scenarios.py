"""Replay the scenario library and the conformance scenarios; check what each expects.

Every scenario file in ``scenarios/`` (the conformance floor in ``scenarios/conformance/``
included; policy files under a ``policies`` folder excepted) becomes one test, marked with
``SCN-LIBRARY`` and with the requirement IDs the file itself names in its top-level
``requirements:`` list, so a failing scenario shows up against the requirement it
demonstrates. A scenario passes when its replay meets every ``expect:`` key and the oracle's
verdict is ``pass``.

A scenario that exposes a known controller bug is listed in :data:`KNOWN_CONTROLLER_BUGS`; its
test is a strict xfail, so it turns into a failure the moment the bug is fixed and the entry
must be removed.

The remaining tests check what ``expect:`` cannot express (segment lists, incident ids, the
audit chain, NACK texts) on particular library files, and the two command-line contracts the
library depends on: ``bwcsim check scenarios`` exits 0, and ``bwcsim run`` on an invalid file
exits 2 with ``file:line: field`` on stderr and nothing on stdout.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from _pytest.mark.structures import ParameterSet
from typer.testing import CliRunner

from controller.audit import NoAuditTrail, trail_of, verify
from controller.node import ControllerFactory
from sim.cli import app
from sim.views.report import build_report
from sim.world.replay import CameraRun, ReplayResult, replay
from sim.world.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_DIR = ROOT / "scenarios"

#: Scenario file (relative to the repository root) → why it is
#: expected to fail. Each entry is a controller bug; the expectation in the file is what the
#: SPEC demands, so the test becomes a strict xfail until the controller is fixed.
KNOWN_CONTROLLER_BUGS: dict[str, str] = {}


def scenario_files(folder: Path) -> list[Path]:
    """Scenario files under ``folder``, sorted; component policies (``policies/``) excluded."""
    if not folder.is_dir():
        return []
    return sorted(
        path for path in folder.rglob("*")
        if path.is_file() and path.suffix in (".yaml", ".yml")
        and "policies" not in path.relative_to(folder).parts
    )


def declared_requirements(path: Path) -> list[str]:
    """The file's own ``requirements:`` list, read leniently (the replay reports bad files)."""
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    declared = data.get("requirements") if isinstance(data, dict) else None
    return [r for r in declared if isinstance(r, str)] if isinstance(declared, list) else []


def _label(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def scenario_params(
    library: pytest.MarkDecorator, *known: pytest.MarkDecorator
) -> list[ParameterSet]:
    """``(path, unmarked)`` per scenario file, marked ``library`` plus its own requirements.

    ``known`` holds one ``req`` mark per requirement ID a scenario may name. They are written
    out as literals at the call site because ``bwcsim trace-reqs`` reads marks statically (and
    a test checks that pytest never sees a mark the static scan misses). ``unmarked`` lists the
    IDs a file names that have no such literal; the test fails on them.
    """
    by_id = {mark.args[0]: mark for mark in known}
    params = []
    for path in scenario_files(SCENARIO_DIR):  # scenarios/conformance/ included
        label = _label(path)
        declared = declared_requirements(path)
        marks = [library, *(by_id[r] for r in declared if r in by_id)]
        if label in KNOWN_CONTROLLER_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_CONTROLLER_BUGS[label]))
        unmarked = tuple(r for r in declared if r not in by_id)
        params.append(pytest.param(path, unmarked, id=label, marks=marks))
    return params


def _replay(path: Path, factory: ControllerFactory) -> ReplayResult:
    return replay(load_scenario(path), factory)


@pytest.mark.parametrize(("path", "unmarked"), scenario_params(
    pytest.mark.req("SCN-LIBRARY"),
    pytest.mark.req("R-TRIG"), pytest.mark.req("R-BUF"), pytest.mark.req("R-LATE"),
    pytest.mark.req("R-NOSPLIT"), pytest.mark.req("R-STOP"), pytest.mark.req("R-MISS"),
    pytest.mark.req("R-DOCK"), pytest.mark.req("R-POWER"), pytest.mark.req("R-STORE"),
    pytest.mark.req("R-ROLL"), pytest.mark.req("R-SIG"), pytest.mark.req("R-IDEM"),
    pytest.mark.req("R-BAD"), pytest.mark.req("R-AUDIT"), pytest.mark.req("R-META"),
    pytest.mark.req("R-AUTH"), pytest.mark.req("R-FRESH"), pytest.mark.req("R-BOUND"),
    pytest.mark.req("P-NOPHANTOM"), pytest.mark.req("P-PRIVACY"),
))
def test_scenario_meets_its_expectations(
    path: Path, unmarked: tuple[str, ...], controller_factory: ControllerFactory
) -> None:
    assert not unmarked, (
        f"{path.name} names {list(unmarked)}: add a literal pytest.mark.req for each to the "
        "parametrize decorator of this test, or fix the ID"
    )
    scenario = load_scenario(path)
    report = build_report(replay(scenario, controller_factory))
    unannounced = {cam: c["unannounced"] for cam, c in report["cameras"].items()
                   if c.get("unannounced")}
    assert scenario.expect is not None, f"{path.name} has no expect: block"
    assert report["expect"]["failures"] == [], f"{path.name}: expect not met"
    assert report["verdict"] == "pass", (
        f"{path.name}: verdict fail; controller seconds {report['missed_s']['controller']}, "
        f"unannounced misses {unannounced}"
    )


@pytest.mark.req("SCN-LIBRARY")
def test_library_is_big_enough_and_covers_every_controller_requirement() -> None:
    files = scenario_files(SCENARIO_DIR)
    assert len(files) >= 20
    named = {req for path in files for req in declared_requirements(path)}
    spec = {"R-TRIG", "R-BUF", "R-LATE", "R-NOSPLIT", "R-STOP", "R-MISS", "R-DOCK", "R-POWER",
            "R-STORE", "R-ROLL", "R-SIG", "R-IDEM", "R-BAD", "R-AUDIT", "R-META"}
    assert spec - named == set()
    for path in files:
        assert load_scenario(path).description.strip(), f"{path.name} has no description"


@pytest.mark.req("SCN-LIBRARY")
def test_readme_library_table_lists_every_scenario_file() -> None:
    readme = (SCENARIO_DIR / "README.md").read_text("utf-8")
    section = readme.split("## What is in the library", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([^`]+)` \|", section, re.M)
    files = {path.relative_to(SCENARIO_DIR).as_posix() for path in scenario_files(SCENARIO_DIR)}
    assert len(listed) == len(set(listed)), "a file is listed twice"
    assert files - set(listed) == set(), (
        "scenarios/README.md's library table lacks these files: add a row saying what each shows")
    assert set(listed) - files == set(), "the table lists files that do not exist"


# ---------------------------------------------------------- what expect: cannot express


@pytest.mark.req("R-ROLL", "R-META")
def test_ten_hour_patrol_is_one_recording_in_three_gapless_segments(
    controller_factory: ControllerFactory,
) -> None:
    report = build_report(_replay(SCENARIO_DIR / "patrol_10h_segment_rollover.yaml",
                                  controller_factory))
    (rec,) = report["cameras"]["cam-1"]["recordings"]
    # 60 - 30 = 30 -> 36060, cut every 14400 s.
    assert rec["segment_list"] == [[30.0, 14430.0], [14430.0, 28830.0], [28830.0, 36060.0]]
    assert rec["segments"] == 3
    assert (rec["start"], rec["end"], rec["buffer_s"]) == (30.0, 36060.0, 30.0)
    assert rec["reasons"] == ["p-10h"]


@pytest.mark.req("R-STOP", "R-META")
def test_recordings_resumed_after_a_deactivation_keep_the_incident_id(
    controller_factory: ControllerFactory,
) -> None:
    report = build_report(_replay(SCENARIO_DIR / "deactivation_allowed_reactivated.yaml",
                                  controller_factory))
    recs = report["cameras"]["cam-1"]["recordings"]
    assert [(r["start"], r["end"]) for r in recs] == [(570.0, 1200.0), (1470.0, 2000.0),
                                                      (2270.0, 3000.0)]
    assert len({r["incident"] for r in recs}) == 1
    assert all(r["buffer_s"] == 30.0 for r in recs)

    # A deactivation that ran out with its activity is over: the next recording is a new
    # incident, and the one resumed by a button press after a second pause shares its id.
    report = build_report(_replay(SCENARIO_DIR / "deactivation_until_activity_end.yaml",
                                  controller_factory))
    first, second, third = report["cameras"]["cam-1"]["recordings"]
    assert first["incident"] != second["incident"] == third["incident"]
    assert "signal:crash" in second["reasons"]
    assert (third["end"], third["open"]) == (3000.0, True)


@pytest.mark.req("R-BAD")
def test_every_refusal_names_the_problem(controller_factory: ControllerFactory) -> None:
    result = _replay(SCENARIO_DIR / "malformed_messages.yaml", controller_factory)
    nacks = [ack for ack in result.cameras["cam-1"].acks if not ack.ok]
    assert len(nacks) == 14
    assert all(ack.error for ack in nacks)
    # Payloads whose id could be read are answered under that id, the rest with a null id.
    assert {ack.id for ack in nacks} == {None, "bad-1", "bad-2", "bad-3", "bad-4", "bad-5",
                                         "bad-6", "bad-7"}


@pytest.mark.req("R-AUDIT")
def test_audit_chains_verify_and_record_deactivations(
    controller_factory: ControllerFactory,
) -> None:
    checked = 0
    for path in scenario_files(SCENARIO_DIR):
        for cam, run in _replay(path, controller_factory).cameras.items():
            assert isinstance(run, CameraRun)  # a replay drives a node per camera
            try:
                trail = trail_of(run.node)
            except NoAuditTrail as why:
                pytest.skip(str(why))
            broken = verify(cam, trail.entries, head=trail.head)
            assert broken is None, f"{path.name}: {cam} audit chain broken at entry {broken}"
            checked += 1
    assert checked >= 20

    result = _replay(SCENARIO_DIR / "full_shift_12h.yaml", controller_factory)
    run = result.cameras["cam-1"]
    assert isinstance(run, CameraRun)
    entries = trail_of(run.node).entries
    (deactivation,) = [e for e in entries if e.kind == "deactivation"]
    assert deactivation.at == 32400.0
    assert deactivation.data["reason"] == "medical_facility_privacy"
    assert deactivation.data["actor"] == "officer-2208"
    assert any(e.kind == "refused" for e in entries)  # the stop pressed during the patrol


# ------------------------------------------------------------------------- command line


@pytest.mark.req("SCN-LIBRARY")
def test_check_command_passes_the_library(bwcsim_controller_spec: str) -> None:
    result = CliRunner().invoke(app, ["check", str(SCENARIO_DIR), "--controller", bwcsim_controller_spec])
    assert result.exit_code == 0, result.stderr


INVALID_SCENARIO = """\
version: 1
name: A misspelt key
end: 600
cameras:
  - {id: cam-1}
timeline:
  - {at: 10, camera: cam-1, event: activity_start, activity: patrol, activity_id: p-1}
  - {at: 20, camera: cam-1, event: dock, dealy_s: 5}
"""


@pytest.mark.req("SCN-FORMAT")
def test_run_on_an_invalid_file_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "misspelt.yaml"
    bad.write_text(INVALID_SCENARIO, "utf-8")
    result = CliRunner().invoke(app, ["run", str(bad), "--report", "json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert re.search(rf"{re.escape(str(bad))}:8: timeline\[1\]\.dealy_s\b", result.stderr), (
        result.stderr
    )
    assert "Traceback" not in result.stderr
