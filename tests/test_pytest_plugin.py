"""The pytest plugin, run the way another repository runs it: a scratch project, no conftest.

Each test builds a small project with :mod:`pytester` (scenario files, a controller adapter, an
ini file) and runs ``pytest`` on it in a subprocess, which loads the plugin through its entry
point as any installed copy of bwcsim does. ``tests/test_pytest_plugin_user.py`` repeats the
essential run in a fresh virtual environment holding bwcsim and pytest only.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from broken_controllers import no_refcount
from plugin_projects import CONFORMANCE, make_project
from typer.testing import CliRunner

from controller.reference import make_node
from sim.cli import app
from sim.search.fuzz import saved_line
from sim.world.replay import replay
from sim.world.scenario import load_scenario

pytestmark = pytest.mark.req("PYTEST-PLUGIN")

@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    make_project(pytester.path)
    return pytester


def _collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if "::" in line and not line.startswith(" ")]


# ------------------------------------------------------------------------------ scenario files


def test_scenario_files_are_found_by_content(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--collect-only", "-q")
    assert sorted(_collected(result)) == [
        "scenarios/late_trigger.yaml::Search warrant triggered 50 s late",
        "scenarios/warrant_basic.yaml::Pre-planned arrest warrant, buffer running",
        "scenarios/wrong_on_purpose.yaml::Docked mid-warrant, expectations wrong on purpose",
    ]


def test_a_glob_or_none_chooses_the_scenario_files(project: pytest.Pytester) -> None:
    ini = project.path / "pytest.ini"
    base = ini.read_text(encoding="utf-8")
    ini.write_text(base + "bwcsim_scenarios = scenarios/w*.yaml\n", encoding="utf-8")
    result = project.runpytest_subprocess("--collect-only", "-q")
    assert [line.split("::")[0] for line in sorted(_collected(result))] == [
        "scenarios/warrant_basic.yaml", "scenarios/wrong_on_purpose.yaml"]
    ini.write_text(base + "bwcsim_scenarios = none\n", encoding="utf-8")
    result = project.runpytest_subprocess("--collect-only", "-q")
    assert _collected(result) == []


def test_a_failing_scenario_reads_like_the_cli_and_attaches_its_report(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--junitxml=out/junit.xml")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*scenario 'Docked mid-warrant, expectations wrong on purpose' "
        "(scenarios/wrong_on_purpose.yaml) with controller adapter:make_node",
        "*verdict: pass",
        "*missed seconds by cause: docked 600 s (total 600 s)",
        "*unmet expect:",
        "*missed_s.docked: expected 0, got 600",
        "*recordings.cam-1: expected 2, got 1",
        "*reproduce: bwcsim run scenarios/wrong_on_purpose.yaml --controller adapter:make_node",
        "*report: bwcsim-artifacts/scenarios/wrong_on_purpose.report.json",
        "*timeline: bwcsim-artifacts/scenarios/wrong_on_purpose.timeline.html",
    ])
    report_file = project.path / "bwcsim-artifacts" / "scenarios" / "wrong_on_purpose.report.json"
    timeline = report_file.with_name("wrong_on_purpose.timeline.html")
    assert "<svg" in timeline.read_text(encoding="utf-8")
    # The attached report is the very output of the command the failure says to run.
    cli = CliRunner().invoke(app, ["run", str(project.path / "scenarios" / "wrong_on_purpose.yaml"),
                                   "--report", "json"])
    assert cli.exit_code == 1
    assert json.loads(report_file.read_text(encoding="utf-8")) == json.loads(cli.stdout)

    case = next(c for c in ET.parse(project.path / "out" / "junit.xml").iter("testcase")
                if c.get("name") == "Docked mid-warrant, expectations wrong on purpose")
    failure = case.find("failure")
    assert failure is not None and failure.text is not None
    assert "reproduce: bwcsim run scenarios/wrong_on_purpose.yaml" in failure.text
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props == {
        "bwcsim_replay": "bwcsim run scenarios/wrong_on_purpose.yaml --controller adapter:make_node",
        "bwcsim_report": "bwcsim-artifacts/scenarios/wrong_on_purpose.report.json",
        "bwcsim_timeline": "bwcsim-artifacts/scenarios/wrong_on_purpose.timeline.html",
    }
    attached = [line for line in (case.findtext("system-out") or "").splitlines()
                if line.startswith("[[ATTACHMENT|")]
    # Relative to the project, as GitLab wants; the timeline first (GitLab links the first).
    assert attached == ["[[ATTACHMENT|bwcsim-artifacts/scenarios/wrong_on_purpose.timeline.html]]",
                        "[[ATTACHMENT|bwcsim-artifacts/scenarios/wrong_on_purpose.report.json]]"]
    assert "expect: not met" in (case.findtext("system-out") or "")  # the text report, for the log


def test_a_scenario_file_that_does_not_load_fails_with_one_line(project: pytest.Pytester) -> None:
    bad = (CONFORMANCE / "warrant_basic.yaml").read_text(encoding="utf-8")
    (project.path / "scenarios" / "broken.yaml").write_text(bad.replace("at: ", "at: soon", 1))
    result = project.runpytest_subprocess("scenarios/broken.yaml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["invalid scenario file: *broken.yaml:*: timeline[[]0[]].at: *"])
    assert "Traceback" not in result.stdout.str()


def test_a_controller_that_cannot_be_loaded_is_named_in_one_line(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--bwcsim-controller", "nowhere:make",
                                          "--bwcsim-properties", "none", "scenarios/warrant_basic.yaml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*bwcsim controller 'nowhere:make': cannot import 'nowhere'*"])
    assert "Traceback" not in result.stdout.str()


def test_the_adapter_beside_the_ini_file_imports_from_a_sub_folder(project: pytest.Pytester) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "."],
                          cwd=project.path / "scenarios", capture_output=True, text=True, timeout=300)
    assert "1 failed, 2 passed" in done.stdout, done.stdout + done.stderr


# ------------------------------------------------------------------------------ property suites


def _suite_items(result: pytest.RunResult) -> list[str]:
    return sorted(line for line in _collected(result) if line.startswith("bwcsim-properties/"))


def test_the_property_suites_run_when_a_controller_is_named_on_the_command_line(
    project: pytest.Pytester,
) -> None:
    assert _suite_items(project.runpytest_subprocess("--collect-only", "-q")) == []
    everything = _suite_items(project.runpytest_subprocess(
        "--collect-only", "-q", "--bwcsim-controller", "adapter:make_node"))
    assert [item.split("::")[0] for item in everything] == sorted(
        f"bwcsim-properties/{suite}.py" for suite in
        ("audit", "bad_idem", "bad_idem", "det", "footage", "footage", "machine", "nomiss",
         "nomiss", "nomiss", "said", "said", "said"))
    det_only = _suite_items(project.runpytest_subprocess(
        "--collect-only", "-q", "--bwcsim-properties", "P-DET"))
    assert det_only == ["bwcsim-properties/det.py::test_same_scenario_and_seed_give_the_same_trace_bytes"]
    deselected = project.runpytest_subprocess(
        "--collect-only", "-q", "--bwcsim-controller", "adapter:make_node", "-m", "not bwcsim_property")
    assert _suite_items(deselected) == []
    assert len(_collected(deselected)) == 3
    bad = project.runpytest_subprocess("--bwcsim-properties", "P-FAST")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--bwcsim-properties: unknown property 'P-FAST' (known: P-NOMISS, *"])


def test_the_suites_pass_for_the_reference_controller(project: pytest.Pytester) -> None:
    # A fixed seed: this checks the plugin's wiring; the searching is the suites' own business
    # (tests/properties/ runs them with fresh examples).
    result = project.runpytest_subprocess(
        "--bwcsim-controller", "adapter:make_node", "--bwcsim-properties", "P-NOMISS,P-DET",
        "--hypothesis-profile", "bwcsim-dev", "--hypothesis-seed", "0", "-m", "bwcsim_property",
        "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-4000:]
    result.assert_outcomes(passed=3, deselected=3)
    result.stdout.fnmatch_lines(["bwcsim: controller=adapter:make_node properties=P-NOMISS,P-DET "
                                 "hypothesis-profile=bwcsim-dev"])


def test_a_falsified_property_is_saved_and_printed_as_bwcsim_fuzz_does(project: pytest.Pytester) -> None:
    ini = project.path / "pytest.ini"
    ini.write_text(ini.read_text(encoding="utf-8") + "bwcsim_attachments = absolute\n")
    result = project.runpytest_subprocess(
        "--bwcsim-controller", "broken_controllers:no_refcount", "--bwcsim-properties", "P-NOMISS",
        "--bwcsim-save", "out/failures", "-k", "test_no_required_second_is_missed",
        "--hypothesis-profile", "bwcsim-dev", "--hypothesis-seed", "1", "-p", "no:cacheprovider",
        "--junitxml", "out/junit.xml",
    )
    result.assert_outcomes(failed=1, deselected=4)
    saved = Path("out/failures/p-nomiss-test_no_required_second_is_missed.yaml")
    line = saved_line(saved, "broken_controllers:no_refcount")
    assert line.startswith("saved: out/failures/p-nomiss-") and "(replay: bwcsim run " in line
    out = result.stdout.str()
    assert out.count(line) == 2  # in the failure, and in the summary at the end
    assert "P-NOMISS does not hold for controller broken_controllers:no_refcount" in out
    assert "Falsifying example" not in out  # the scenario is shown as YAML, not as a dict
    scenario = load_scenario(project.path / saved)
    assert len(scenario.timeline) <= 8
    assert replay(scenario, no_refcount).verdict == "fail"
    assert replay(scenario, make_node).verdict == "pass"
    case = next(ET.parse(project.path / "out" / "junit.xml").iter("testcase"))
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["bwcsim_counterexample"] == str(saved)
    assert props["bwcsim_replay"] == f"bwcsim run {saved} --controller broken_controllers:no_refcount"
    assert f"[[ATTACHMENT|{(project.path / saved).resolve()}]]" in (case.findtext("system-out") or "")


def test_a_bad_attachment_form_is_refused(project: pytest.Pytester) -> None:
    ini = project.path / "pytest.ini"
    ini.write_text(ini.read_text(encoding="utf-8") + "bwcsim_attachments = sideways\n")
    result = project.runpytest_subprocess("--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*bwcsim_attachments: 'sideways' is not one of relative, absolute*"])


# ------------------------------------------------------------------------------ profiles


def test_profiles_are_registered_without_replacing_a_repositorys_own(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    pytester.makeconftest("""
        from hypothesis import settings
        settings.register_profile("ci", max_examples=7)
    """)
    pytester.makepyfile(test_profiles=textwrap.dedent("""
        import os
        from pathlib import Path
        from hypothesis import settings

        def test_profiles():
            if os.environ.get("WITH_BWCSIM"):
                assert settings.get_profile("ci").max_examples == 7  # the repository's own
                assert settings.get_profile("bwcsim-ci").max_examples == 2000
                assert settings.get_profile("nightly").max_examples == 20000  # a free name
                assert settings.get_profile("bwcsim-dev").deadline is None
            Path("active.txt").write_text(
                f"{settings.get_current_profile_name()} {settings.default.max_examples}")
    """))

    def active(*args: str, plugin: bool = True) -> str:
        monkeypatch.setenv("WITH_BWCSIM", "1" if plugin else "")
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args,
                                               *([] if plugin else ["-p", "no:bwcsim"]))
        result.assert_outcomes(passed=1)
        return (pytester.path / "active.txt").read_text(encoding="utf-8")

    # Installing bwcsim changes nothing that is active (hypothesis' own ci profile included,
    # which it loads by itself when it sees a CI machine).
    assert active() == active(plugin=False)
    assert active("--hypothesis-profile", "bwcsim-nightly") == "bwcsim-nightly 20000"
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    assert active() == "ci 7"
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "deep")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert re.search(r"HYPOTHESIS_PROFILE='deep' is not a registered hypothesis profile",
                     result.stderr.str())


@pytest.mark.req("P-NOPHANTOM", "P-PRIVACY")
@pytest.mark.parametrize(("broken", "prop", "test_name"), [
    ("full_buffer", "P-NOPHANTOM", "test_no_footage_the_camera_could_not_capture"),
    ("docked_buffer", "P-NOPHANTOM", "test_no_footage_the_camera_could_not_capture"),
    ("prohibited_records", "P-PRIVACY", "test_nothing_recorded_that_policy_forbids"),
    ("signal_splits", "P-PRIVACY", "test_nothing_recorded_that_policy_forbids"),
    ("duplicate_splits", "P-PRIVACY", "test_nothing_recorded_that_policy_forbids"),
])
def test_the_footage_suite_catches_each_footage_bug_in_the_dev_profile(
    project: pytest.Pytester, broken: str, prop: str, test_name: str
) -> None:
    import broken_controllers

    result = project.runpytest_subprocess(
        "--bwcsim-controller", f"broken_controllers:{broken}", "--bwcsim-properties", prop,
        "--bwcsim-save", "out/failures", "-k", test_name,
        "--hypothesis-profile", "bwcsim-dev", "--hypothesis-seed", "0", "-p", "no:cacheprovider",
    )
    result.assert_outcomes(failed=1, deselected=4)  # the other footage test, machine, 2 files
    assert f"{prop} does not hold for controller broken_controllers:{broken}" in result.stdout.str()
    saved = project.path / "out" / "failures" / f"{prop.lower()}-{test_name}.yaml"
    scenario = load_scenario(saved)
    assert len(scenario.timeline) <= 8
    assert replay(scenario, getattr(broken_controllers, broken)).verdict == "fail"
    assert replay(scenario, make_node).verdict == "pass"
