"""docs/ci.md's pipelines say what they claim, and every command they run exists.

The GitHub Actions and GitLab CI examples are parsed as YAML. Each must run the scenario files
on every push, the ``ci`` profile on pull (merge) requests and the ``nightly`` profile on a
schedule, write JUnit files and keep them, the reports, timelines and saved failures as
artefacts, and keep the example database between scheduled runs. Every command line in them
is split as a shell would; a ``bwcsim`` command must name an existing subcommand and options
it takes, a ``pytest`` command only options that ``pytest --help`` lists with the plugin loaded.
"""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from sim.cli import app

pytestmark = pytest.mark.req("CI-DOCS")

DOC = Path(__file__).resolve().parents[1] / "docs" / "ci.md"

#: Programs the examples may run besides ``bwcsim`` and ``pytest``.
OTHER_PROGRAMS = {"pip"}


def example(name: str) -> str:
    """The fenced block that follows ``<!-- ci-example: NAME -->`` in docs/ci.md."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- ci-example: {re.escape(name)} -->\n```\w+\n(.*?)\n```", text, re.S)
    assert match is not None, f"docs/ci.md has no ci-example block {name!r}"
    return match.group(1)


@cache
def pytest_options() -> frozenset[str]:
    """Every long option and ini name ``pytest --help`` lists, with this package's plugin loaded."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True,
                          text=True, timeout=120, cwd=DOC.parent)
    assert done.returncode == 0, done.stderr
    options = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", done.stdout))
    inis = set(re.findall(r"^  ([a-z_]+) \(", done.stdout, re.MULTILINE))
    return frozenset(options | inis)


def _bwcsim_options() -> dict[str, set[str]]:
    group = typer.main.get_command(app)
    commands: dict[str, set[str]] = {"": {"--version", "--help"}}
    for name in group.list_commands(None):  # type: ignore[attr-defined]
        command = group.get_command(None, name)  # type: ignore[attr-defined]
        commands[name] = {opt for p in command.params for opt in getattr(p, "opts", [])} | {"--help"}
    return commands


def check_command(line: str) -> list[str]:
    """What is wrong with one shell command line of an example (``[]``: nothing)."""
    words = shlex.split(line)
    program, args = words[0], words[1:]
    options = [a.split("=", 1)[0] for a in args if a.startswith("--")]
    if program == "bwcsim":
        known = _bwcsim_options()
        sub = args[0] if args and not args[0].startswith("-") else ""
        if sub not in known:
            return [f"{line}: bwcsim has no command {sub!r}"]
        return [f"{line}: bwcsim {sub} has no option {o}" for o in options if o not in known[sub]]
    if program == "pytest":
        return [f"{line}: pytest has no option {o}" for o in options if o not in pytest_options()]
    if program in OTHER_PROGRAMS:
        return []
    return [f"{line}: {program!r} is not a command these examples are checked for"]


def commands_of(script: str | list[str]) -> list[str]:
    lines = script if isinstance(script, list) else script.splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


# ------------------------------------------------------------------------------ GitHub Actions


def github() -> dict[str, Any]:
    doc: dict[Any, Any] = yaml.safe_load(example("github"))
    # YAML 1.1 reads the key `on` as true.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def _job_for(doc: dict[str, Any], event: str) -> dict[str, Any]:
    jobs: list[dict[str, Any]] = [job for job in doc["jobs"].values()
                                  if f"github.event_name == '{event}'" in job.get("if", "")]
    assert len(jobs) == 1, f"one job runs on {event}"
    return jobs[0]


def _runs(job: dict[str, Any]) -> list[str]:
    return [line for step in job["steps"] if "run" in step for line in commands_of(step["run"])]


def _uploaded(job: dict[str, Any]) -> set[str]:
    paths: set[str] = set()
    for step in job["steps"]:
        if str(step.get("uses", "")).startswith("actions/upload-artifact@"):
            assert step.get("if") == "${{ !cancelled() }}", "artefacts are kept when tests fail"
            paths.update(commands_of(step["with"]["path"]))
    return paths


def test_github_workflow_runs_scenarios_on_push_ci_on_pull_requests_nightly_on_schedule() -> None:
    doc = github()
    assert set(doc["on"]) == {"push", "pull_request", "schedule"}
    assert doc["on"]["schedule"][0]["cron"]
    push, pull, nightly = (_job_for(doc, e) for e in ("push", "pull_request", "schedule"))
    [push_pytest] = [c for c in _runs(push) if c.startswith("pytest")]
    assert "--bwcsim-controller" not in push_pytest and "--junit-xml=out/" in push_pytest
    assert any("--hypothesis-profile=bwcsim-ci" in c and "--bwcsim-controller" in c for c in _runs(pull))
    assert any("--hypothesis-profile=bwcsim-nightly" in c for c in _runs(nightly))
    assert any(c.startswith("bwcsim fuzz") and "--save bwcsim-failures" in c for c in _runs(nightly))
    assert {"out/", "bwcsim-artifacts/"} <= _uploaded(push)
    assert {"out/", "bwcsim-artifacts/", "bwcsim-failures/"} <= _uploaded(pull) & _uploaded(nightly)
    cached = {step["uses"].split("@")[0]: step for step in nightly["steps"]
              if str(step.get("uses", "")).startswith("actions/cache/")}
    assert cached["actions/cache/restore"]["with"]["path"] == ".hypothesis"
    assert cached["actions/cache/save"]["with"]["path"] == ".hypothesis"
    assert cached["actions/cache/save"]["if"] == "${{ !cancelled() }}", "saved even when red"


# ------------------------------------------------------------------------------ GitLab CI


def gitlab() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(example("gitlab"))
    return doc


def _gitlab_jobs(source: str) -> list[dict[str, Any]]:
    doc = gitlab()
    return [job for name, job in doc.items() if isinstance(job, dict) and "script" in job
            and any(f'$CI_PIPELINE_SOURCE == "{source}"' in rule.get("if", "")
                    for rule in job.get("rules", []))]


def test_gitlab_pipeline_runs_scenarios_on_push_ci_on_merge_requests_nightly_on_schedule() -> None:
    [push] = _gitlab_jobs("push")
    [merge] = _gitlab_jobs("merge_request_event")
    scheduled = _gitlab_jobs("schedule")
    for job in (push, merge, *scheduled):
        assert job["artifacts"]["when"] == "always"
    assert "--bwcsim-controller" not in " ".join(push["script"])
    assert any("--hypothesis-profile=bwcsim-ci" in c for c in merge["script"])
    nightly = next(j for j in scheduled
                   if any("--hypothesis-profile=bwcsim-nightly" in c for c in j["script"]))
    assert nightly["cache"]["paths"] == [".hypothesis/"] and nightly["cache"]["when"] == "always"
    for job in (push, merge, nightly):
        junit = job["artifacts"]["reports"]["junit"]
        assert any(f"--junit-xml={junit}" in c for c in job["script"])
        assert "bwcsim-artifacts/" in job["artifacts"]["paths"]
    assert "bwcsim-failures/" in merge["artifacts"]["paths"]
    assert any(c.startswith("bwcsim fuzz") for j in scheduled for c in j["script"])


# ------------------------------------------------------------------------------ every command


def _all_commands() -> list[str]:
    lines: list[str] = []
    for job in github()["jobs"].values():
        lines += _runs(job)
    doc = gitlab()
    for job in doc.values():
        if isinstance(job, dict):
            lines += commands_of(job.get("before_script", [])) + commands_of(job.get("script", []))
    return lines


def test_every_command_the_pipelines_run_exists_with_its_options() -> None:
    lines = _all_commands()
    assert {shlex.split(line)[0] for line in lines} == {"pip", "pytest", "bwcsim"}
    problems = [p for line in lines for p in check_command(line)]
    assert problems == []


def test_the_checker_catches_a_command_or_option_that_does_not_exist() -> None:
    assert check_command("bwcsim replay x.yaml") == [
        "bwcsim replay x.yaml: bwcsim has no command 'replay'"]
    assert check_command("bwcsim fuzz --budget 3") == [
        "bwcsim fuzz --budget 3: bwcsim fuzz has no option --budget"]
    assert check_command("pytest --bwcsim-ctrl=x") == [
        "pytest --bwcsim-ctrl=x: pytest has no option --bwcsim-ctrl"]
    assert check_command("make test") != []


def test_the_ini_example_uses_options_pytest_knows() -> None:
    parser = configparser.ConfigParser()
    parser.read_string(example("pytest.ini"))
    assert set(parser["pytest"]) <= pytest_options()
    assert parser["pytest"]["junit_logging"] == "system-out"
