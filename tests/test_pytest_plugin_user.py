"""The CI maintainer's first run, for real: a fresh virtual environment, a throwaway repository.

The environment holds bwcsim (installed from this source tree like any package) and pytest,
nothing else: no test extras, no conftest, no ``PYTHONPATH``. The repository is the one of
``tests/plugin_projects.py``: three scenario files, one failing on purpose, a controller
adapter and a ``pytest.ini``. Building the environment costs some seconds, once per session,
and needs the package index; without it the tests skip and say why.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from plugin_projects import ROOT, make_project

pytestmark = pytest.mark.req("PYTEST-PLUGIN")

#: What a user has: the package as pip would build it from a release.
SOURCE = ("pyproject.toml", "README.md", "controller", "sim")


def _clean_env() -> dict[str, str]:
    """The environment of someone who has never seen this repository's test set-up."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "HYPOTHESIS", "PYTEST", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment with bwcsim and pytest installed, and nothing else."""
    base = tmp_path_factory.mktemp("user")
    source = base / "bwcsim-src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCE:
        target = ROOT / name
        if target.is_dir():
            shutil.copytree(target, source / name, ignore=ignore)
        else:
            shutil.copy(target, source / name)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source), "pytest"],
        capture_output=True, text=True, timeout=900, env=_clean_env(), cwd=base,
    )
    if install.returncode != 0:
        tail = "\n".join((install.stderr or install.stdout).strip().splitlines()[-3:])
        pytest.skip(f"cannot install bwcsim into a fresh virtual environment: {tail}")
    yield venv


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    make_project(tmp_path)
    return tmp_path


def _run(venv: Path, repo: Path, program: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = _clean_env()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([str(venv / "bin" / program), *args], cwd=repo, capture_output=True,
                          text=True, timeout=600, env=env)


def test_the_environment_holds_bwcsim_and_pytest_only(user_venv: Path) -> None:
    listed = subprocess.run([str(user_venv / "bin" / "python"), "-m", "pip", "list",
                             "--format=json"], capture_output=True, text=True, check=True)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"bwcsim", "pytest", "hypothesis"} <= names
    assert not names & {"pytest-asyncio", "looptime", "amqtt", "dask", "mypy", "jsonschema"}


def test_pytest_runs_the_scenario_files_and_attaches_the_report(user_venv: Path, user_repo: Path) -> None:
    done = _run(user_venv, user_repo, "pytest", "--junitxml=out/junit.xml")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "collected 3 items" in done.stdout
    assert re.search(r"^=+ 1 failed, 2 passed in ", done.stdout, re.MULTILINE), done.stdout
    command = "bwcsim run scenarios/wrong_on_purpose.yaml --controller adapter:make_node"
    assert f"reproduce: {command}" in done.stdout
    case = next(c for c in ET.parse(user_repo / "out" / "junit.xml").iter("testcase")
                if c.find("failure") is not None)
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["bwcsim_replay"] == command
    report = user_repo / str(props["bwcsim_report"])
    assert f"[[ATTACHMENT|{props['bwcsim_report']}]]" in (case.findtext("system-out") or "")
    # The command the failure names reproduces it, with the same report.
    replayed = _run(user_venv, user_repo, "bwcsim", *command.split()[1:], "--report", "json")
    assert replayed.returncode == 1
    assert json.loads(replayed.stdout) == json.loads(report.read_text(encoding="utf-8"))


@pytest.mark.parametrize("controller", [
    "broken_controllers:no_refcount",
    # The same broken controller as a child process on the node protocol, as firmware in any
    # language is run (the venv's python is first on PATH).
    "exec:python -m controller.serve --factory broken_controllers:no_refcount",
], ids=["module", "exec"])
def test_pytest_with_a_controller_searches_it_and_saves_a_replayable_failure(
    user_venv: Path, user_repo: Path, controller: str
) -> None:
    done = _run(user_venv, user_repo, "pytest", "--bwcsim-controller", controller,
                "--bwcsim-properties", "P-NOMISS", "-k", "test_no_required_second_is_missed",
                "--hypothesis-seed", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED bwcsim-properties/nomiss.py::test_no_required_second_is_missed" in done.stdout
    saved = re.search(r"^  saved: (\S+\.yaml)  \(replay: (bwcsim run .+)\)$", done.stdout, re.MULTILINE)
    assert saved is not None, done.stdout
    assert (user_repo / saved.group(1)).is_file()
    command = shlex.split(saved.group(2))
    assert command == ["bwcsim", "run", saved.group(1), "--controller", controller]
    problems = re.findall(r"^  (cam-\d+: [\d.]+ controller second\(s\) missed \([^)]*\))$",
                          done.stdout, re.MULTILINE)
    assert problems, done.stdout
    replayed = _run(user_venv, user_repo, *command, "--report", "json")
    assert replayed.returncode == 1, replayed.stderr
    report = json.loads(replayed.stdout)
    assert report["verdict"] == "fail"
    for problem in set(problems):  # the same cameras, seconds and spans as pytest reported
        cam, seconds = re.match(r"(cam-\d+): ([\d.]+)", problem).groups()  # type: ignore[union-attr]
        assert report["cameras"][cam]["missed_s"]["controller"] == pytest.approx(float(seconds))
