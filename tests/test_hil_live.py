"""The proof of hardware in the loop: real processes on a real broker agree with the simulation.

A private Mosquitto (``set_tcp_nodelay true``: on a scaled clock a broker that holds small
packets back ~40 ms would add seconds of scenario time), the scenario library played through
``bwcsim check --live --spawn`` — every camera a ``bwcsim live`` process on the scaled clock,
powered on at scenario second 0 — and judged: each scenario gets the verdict it gets in
simulation, and missed seconds by cause within the documented tolerance. A deliberately broken
controller run live the same way fails the scenarios it fails in simulation, and only those.
Devices already on the broker (``--camera-map``) and a device that is not there are covered too.

Time budget (docs/live.md): the library at speed ``SPEED`` with ``JOBS`` scenarios at once, the
broken controllers at the same time, about 2 minutes of wall time on a 2-core machine. The
scenarios longer than ``LONGEST_S`` (10 and 12 hours) run only with ``BWCSIM_HIL_ALL=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from brokers import BrokerAddress, spawned_mosquitto
from live_processes import need

from controller.node import ControllerFactory
from controller.reference import make_node
from sim.check import report_name
from sim.live.hil import live_obstacles
from sim.nodes import load_factory
from sim.views.report import build_report, exit_code, missed_allowance
from sim.world.replay import replay
from sim.world.scenario import load_scenario

pytestmark = [pytest.mark.live]

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "scenarios"
SPEED = 200.0
JOBS = 8
LONGEST_S = 7200.0
RUN_TIMEOUT_S = 600.0

#: Broken controllers run live on a few scenarios each: some they fail (by their verdict: seconds
#: lost through the controller's fault), some they pass. A broken controller that only moves an
#: ``expect: missed_s`` figure by less than the live tolerance allows (``half_buffer`` on
#: ``deactivation_allowed_reactivated``: 15 s per paused stretch, at speed 200 within 2 x 4 s
#: per edge) is no case for this test: there the tolerance, documented, is what it is.
BROKEN_RUNS: dict[str, list[str]] = {
    # With P-EVIDENCE judged, a halved buffer_s fails every scenario that prepends a buffer; the
    # last one here starts from standby, so nothing is buffered and it passes live as in
    # simulation. (buffer_does_not_fit_after_deactivation also passes in simulation, but its
    # nearly full card makes its live verdict hang on a fraction of a second.)
    "broken_controllers:half_buffer": [
        "conformance/late_trigger.yaml", "conformance/warrant_basic.yaml",
        "late_trigger_within_buffer.yaml", "standby_at_start_boots.yaml",
    ],
    "broken_controllers:dock_drops": [
        "conformance/dock_mid_warrant.yaml", "dock_during_warrant.yaml",
        "conformance/bad_input.yaml", "search_warrant.yaml",
    ],
}


def _library() -> list[Path]:
    everything = os.environ.get("BWCSIM_HIL_ALL") == "1"
    files = [p for p in sorted(LIBRARY.rglob("*.yaml")) if "policies" not in p.parts]
    return [p for p in files if everything or load_scenario(p).end <= LONGEST_S]


@pytest.fixture(scope="module")
def bench_broker() -> Iterator[BrokerAddress]:
    need("mosquitto")
    with spawned_mosquitto(extra_config="set_tcp_nodelay true\n") as broker:
        yield broker


def _bwcsim(*args: str) -> list[str]:
    return [sys.executable, "-m", "sim", *args]


def _env() -> dict[str, str]:
    # The broken controllers live in tests/: the harness and the devices it starts import them.
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}


def _check_live(broker: BrokerAddress, files: list[Path], out: Path, *extra: str,
                jobs: int = JOBS) -> subprocess.Popen[str]:
    out.mkdir(parents=True, exist_ok=True)
    args = _bwcsim("check", *(str(f.relative_to(ROOT)) for f in files), "--live", broker.url,
                   "--spawn", "--speed", f"{SPEED:g}", "--jobs", str(jobs),
                   "--junit", str(out / "junit.xml"), "--reports", str(out / "reports"), *extra)
    return subprocess.Popen(args, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _statuses(junit: Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = [child.tag for child in case]
        out[case.get("name", "")] = kinds[0] if kinds else "pass"
    return out


def _simulated(path: Path, factory: ControllerFactory) -> dict[str, Any]:
    return build_report(replay(load_scenario(path), factory))


def _disagreements(live: dict[str, Any], sim: dict[str, Any]) -> list[str]:
    """Where a live report departs from the simulated one beyond the documented tolerance."""
    tol = live["live"]["tolerance_s"] + live["live"]["lag_s"]
    problems = []
    if live["verdict"] != sim["verdict"]:
        problems.append(f"verdict {live['verdict']}, simulated {sim['verdict']}")
    for cause, want in sim["missed_s"].items():
        allowed = max(missed_allowance(sim, cause, tol), missed_allowance(live, cause, tol))
        if abs(live["missed_s"][cause] - want) > allowed:
            problems.append(f"missed_s.{cause} {live['missed_s'][cause]:g}, simulated {want:g} "
                            f"(allowed ±{allowed:g})")
    return problems


@pytest.mark.req("R-HIL", "R-CLOCK", "R-JITTER")
def test_the_library_checked_live_agrees_with_the_simulation(
    bench_broker: BrokerAddress, tmp_path: Path
) -> None:
    files = _library()
    started = time.monotonic()
    runs = {"reference": _check_live(bench_broker, files, tmp_path / "reference")}
    for controller, names in BROKEN_RUNS.items():
        runs[controller] = _check_live(bench_broker, [LIBRARY / n for n in names],
                                       tmp_path / controller.split(":")[1], "--controller",
                                       controller, jobs=len(names))
    outputs = {name: proc.communicate(timeout=RUN_TIMEOUT_S)[0] for name, proc in runs.items()}
    wall = time.monotonic() - started
    print(f"live check of {len(files)} scenarios (+ broken controllers): {wall:.0f} s wall")

    # The reference: every scenario a real broker can play passes, as in simulation, with the
    # same verdicts and missed seconds by cause; the others are skipped with their reason.
    out = outputs["reference"]
    assert runs["reference"].returncode == 0, out
    statuses = _statuses(tmp_path / "reference" / "junit.xml")
    for path in files:
        name = str(path.relative_to(ROOT))
        scenario = load_scenario(path)
        if live_obstacles(scenario):
            assert statuses[name] == "skipped", out
            continue
        assert statuses[name] == "pass", f"{name}\n{out}"
        live = json.loads((tmp_path / "reference" / "reports" / report_name(Path(name))).read_text())
        assert live["live"]["complete"], live["live"]
        assert _disagreements(live, _simulated(path, make_node)) == [], name

    # Broken firmware fails live exactly where it fails in simulation.
    for controller, names in BROKEN_RUNS.items():
        factory = load_factory(controller)
        folder = tmp_path / controller.split(":")[1]
        statuses = _statuses(folder / "junit.xml")
        for n in names:
            scenario = load_scenario(LIBRARY / n)
            sim = _simulated(LIBRARY / n, factory)
            expected = "failure" if exit_code(sim, scenario.expect) else "pass"
            name = str((LIBRARY / n).relative_to(ROOT))
            assert statuses[name] == expected, f"{controller} {n}\n{outputs[controller]}"
            live = json.loads((folder / "reports" / report_name(Path(name))).read_text())
            assert live["verdict"] == sim["verdict"], f"{controller} {n}"
        assert any(s == "failure" for s in statuses.values())
        assert any(s == "pass" for s in statuses.values())


def _device(
    broker: BrokerAddress, device: str, prefix: str, state: Path, *extra: str
) -> subprocess.Popen[str]:
    """A camera on the bench: ``bwcsim live`` on the scaled clock, told when to power on."""
    args = _bwcsim("live", "--broker", broker.url, "--camera", device, "--prefix", prefix,
                   "--client-id", f"{prefix}-{device}", "--team", "sr-1", "--speed", f"{SPEED:g}",
                   "--start-at", "-", "--state-dir", str(state / device), *extra)
    return subprocess.Popen(args, cwd=ROOT, env=_env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


@pytest.mark.req("R-HIL", "R-CLOCK")
def test_devices_already_on_the_broker_are_judged_under_their_own_ids(
    bench_broker: BrokerAddress, tmp_path: Path
) -> None:
    """A firmware team's cameras: connected before the run, under ids of their own."""
    scenario_file = LIBRARY / "trigger_on_camera_and_team_topics.yaml"
    scenario = load_scenario(scenario_file)
    prefix = f"lab{os.getpid()}"
    devices = {
        "BWC-0001": _device(bench_broker, "BWC-0001", prefix, tmp_path, "--initial", "docked"),
        "BWC-0002": _device(bench_broker, "BWC-0002", prefix, tmp_path),
    }
    try:
        for device in devices.values():
            assert device.stdout is not None and device.stdout.readline() == "ready\n"
        start = time.time() + 5.0  # the devices power on with scenario second 0
        for device in devices.values():
            assert device.stdin is not None
            device.stdin.write(f"{start!r}\n")
            device.stdin.close()
        result = subprocess.run(
            _bwcsim("run", str(scenario_file), "--live", bench_broker.url, "--prefix", prefix,
                    "--camera-map", "cam-1=BWC-0001", "--camera-map", "cam-2=BWC-0002",
                    "--speed", f"{SPEED:g}", "--start-at", repr(start), "--report", "json"),
            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60,
        )
    finally:
        for device in devices.values():
            device.terminate()
            device.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    live = json.loads(result.stdout)
    assert live["live"]["devices"]["cam-1"]["device"] == "BWC-0001"
    assert _disagreements(live, _simulated(scenario_file, make_node)) == []
    assert live["expect"]["ok"], live["expect"]
    assert exit_code(live, scenario.expect) == 0


@pytest.mark.req("R-HIL")
def test_a_device_that_is_not_there_makes_the_run_incomplete_not_failed(
    bench_broker: BrokerAddress, tmp_path: Path
) -> None:
    scenario_file = LIBRARY / "conformance" / "manual_stop_refused.yaml"
    result = subprocess.run(
        _bwcsim("check", str(scenario_file), "--live", bench_broker.url, "--prefix",
                f"nobody{os.getpid()}", "--speed", "400", "--junit", str(tmp_path / "j.xml")),
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1, result.stdout
    assert f"INCOMPLETE {scenario_file.relative_to(ROOT)}" in result.stdout or \
        f"INCOMPLETE {scenario_file}" in result.stdout, result.stdout
    assert "cam-1: device cam-1 offline 0-2400 s (bus)" in result.stdout
    assert "0 passed, 0 failed, 1 incomplete" in result.stdout
