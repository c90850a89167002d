"""The C example controllers (examples/c-controller/) judged by the bench over the node protocol.

``bwc-fixed`` is a second implementation of SPEC §4 in C: it must give the reference's
verdicts (its reports, in fact) on the whole library and on generated scenarios, and a fuzz
run must find nothing. ``bwc-naive`` is the first draft a firmware engineer writes: the fuzzer
must find its bugs, shrink one to a few timeline entries, and the saved file must replay to
the same failure. Both are built here from a copy of the sources with the system compiler,
cJSON and libcrypto; without those the tests skip and say what is missing (``.ci/run``
installs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from controller.node import CameraSetup
from controller.policy import load_policy
from controller.wire import PROTOCOL
from sim.nodes.stdio import ExecFactory
from sim.search.fuzz import search
from sim.search.strategies import load_scenario_dict, scenarios
from sim.views.report import build_report
from sim.world.replay import replay
from sim.world.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "examples" / "c-controller"
SCENARIOS = ROOT / "scenarios"

pytestmark = pytest.mark.req("R-NODE")


def _missing_toolchain() -> str | None:
    for tool in ("make", "pkg-config"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt install build-essential pkg-config)"
    if shutil.which(os.environ.get("CC", "cc")) is None:
        return "no C compiler (apt install build-essential)"
    if subprocess.run(["pkg-config", "--exists", "libcjson"]).returncode != 0:
        return "cJSON is not installed (apt install libcjson-dev)"
    if subprocess.run(["pkg-config", "--exists", "libcrypto"]).returncode != 0:
        return "OpenSSL's libcrypto is not installed (apt install libssl-dev)"
    return None


def _build(folder: Path, *make_args: str) -> Path:
    reason = _missing_toolchain()
    if reason is not None:
        pytest.skip(f"cannot build the C example: {reason}")
    shutil.copytree(SOURCES, folder, ignore=shutil.ignore_patterns("*.o", "bwc-naive", "bwc-fixed"))
    proc = subprocess.run(["make", "-C", str(folder), *make_args], capture_output=True, text=True)
    assert proc.returncode == 0, f"make failed:\n{proc.stdout}\n{proc.stderr}"
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("c") / "c-controller")


@pytest.fixture(scope="module")
def fixed(built: Path) -> Iterator[ExecFactory]:
    factory = ExecFactory(str(built / "bwc-fixed"))
    factory.start()
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def naive(built: Path) -> Iterator[ExecFactory]:
    factory = ExecFactory(str(built / "bwc-naive"))
    factory.start()
    yield factory
    factory.close()


def library() -> list[Path]:
    return sorted(p for p in SCENARIOS.rglob("*.yaml") if "policies" not in p.parts)


def bwcsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def _rounded(value: Any) -> Any:
    """A report as comparable data: floats to the microsecond, and each refusal's ``error`` cut
    to its word -- the words are the spec's (R-BAD), the detail after them each controller's
    own (cJSON and msgspec do not describe a broken payload alike)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: v.split(":")[0] if k == "error" and isinstance(v, str) else _rounded(v)
                for k, v in value.items()}
    return value


# ------------------------------------------------------------------ bwc-fixed


@pytest.mark.parametrize("path", library(), ids=lambda p: p.relative_to(SCENARIOS).as_posix())
def test_fixed_gives_the_reference_report_on_every_library_scenario(
    path: Path, fixed: ExecFactory
) -> None:
    scenario = load_scenario(path)
    report = build_report(replay(scenario, fixed))
    assert report["expect"]["failures"] == []
    assert report["verdict"] == "pass"
    # Not only the verdict: the same recordings, alerts, misses and refusals, to the microsecond.
    assert _rounded(report) == _rounded(build_report(replay(scenario)))


@settings(max_examples=150, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=scenarios())
def test_fixed_gives_the_reference_report_on_generated_scenarios(
    fixed: ExecFactory, data: dict[str, Any]
) -> None:
    scenario = load_scenario_dict(data)
    assert _rounded(build_report(replay(scenario, fixed))) == _rounded(build_report(replay(scenario)))


def test_fixed_passes_check_on_the_conformance_scenarios_and_the_library(built: Path) -> None:
    for folder in ("scenarios/conformance", "scenarios"):
        proc = bwcsim("check", folder, "--controller", f"exec:{built / 'bwc-fixed'}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert " 0 failed" in proc.stdout


def test_a_fuzz_run_finds_nothing_in_fixed(fixed: ExecFactory) -> None:
    # A short run here; .ci/run runs `bwcsim fuzz --examples 2000` on it as well.
    outcome = search(fixed, examples=100, seed=0)
    assert outcome.passed, outcome.problems


# ------------------------------------------------------------------ bwc-naive


def test_fuzz_finds_shrinks_and_saves_a_naive_miss_that_replays(built: Path, tmp_path: Path) -> None:
    naive_cmd = f"exec:{built / 'bwc-naive'}"
    proc = bwcsim("fuzz", "--controller", naive_cmd, "--seed", "1", "--save", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert "FAIL P-NOMISS" in proc.stderr
    (saved,) = tmp_path.glob("*.yaml")
    doc = yaml.safe_load(saved.read_text("utf-8"))
    assert 1 <= len(doc["timeline"]) <= 4  # shrunk to a few entries
    assert doc["expect"] == {"verdict": "pass"}
    # The saved file replays to the same failure with the naive controller ...
    proc = bwcsim("run", str(saved), "--report", "json", "--controller", naive_cmd)
    assert proc.returncode == 1
    report = msgspec.json.decode(proc.stdout.encode())
    assert report["verdict"] == "fail"
    unannounced = [u for cam in report["cameras"].values() for u in cam.get("unannounced", [])]
    assert report["missed_s"]["controller"] > 0 or unannounced
    # ... and passes with the fixed one: the scenario pins the bug, not the camera.
    proc = bwcsim("run", str(saved), "--controller", f"exec:{built / 'bwc-fixed'}")
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize(("name", "words"), [
    # overlapping activities: the first end stops the recording (no reference count)
    ("patrol_nested_emergency.yaml", ["controller"]),
    # a manual stop during a warrant is obeyed
    ("manual_stop_refused.yaml", ["controller"]),
    # dock mid-warrant: no alert, and no recording after the boot
    ("dock_during_warrant.yaml", ["docked: no missed_required_recording", "controller"]),
    # a late trigger is not announced
    ("late_trigger_beyond_buffer.yaml", ["late_trigger: no late_trigger alert"]),
])
def test_naive_misses_what_the_first_draft_always_misses(
    name: str, words: list[str], naive: ExecFactory
) -> None:
    report = build_report(replay(load_scenario(SCENARIOS / name), naive))
    assert report["verdict"] == "fail"
    said = " ".join(
        [f"controller {report['missed_s']['controller']:g}" if report["missed_s"]["controller"] else ""]
        + [u for cam in report["cameras"].values() for u in cam.get("unannounced", [])]
    )
    for word in words:
        assert word in said, said


# ------------------------------------------------------------------ the stdio shell


def _talk(program: Path, *lines: str) -> tuple[list[dict[str, Any]], subprocess.CompletedProcess[str]]:
    proc = subprocess.run([str(program)], input="".join(line + "\n" for line in lines),
                          capture_output=True, text=True, timeout=30)
    return [msgspec.json.decode(line) for line in proc.stdout.splitlines()], proc


SETUP = (
    '{"seq":1,"op":"setup","node":7,"camera_id":"cam-1","teams":["t"],"initial":"standby",'
    '"prefix":"bwc","params":{"prebuffer_s":30,"buffer_audio":false,"boot_s":5,'
    '"segment_max_s":14400,"battery_s":43200,"record_drain":1.3,"charge_rate":10,'
    '"low_battery_s":1200,"storage_s":36000,"upload_speed":20},"policy":{"name":"p",'
    '"activities":{"patrol":{"kind":"required","post_s":0}},"signals":[],'
    '"deactivation_reasons":[],"roles":{"dispatch":{"events":["activity_start"],"own_camera":false}},'
    '"max_skew_s":300},"trust":null,"limits":{"max_field_bytes":128,"max_open_activities":256,'
    '"max_remembered":4096,"duplicate_window_s":3600}}'
)


@pytest.mark.parametrize("program", ["bwc-fixed", "bwc-naive"])
def test_the_c_shell_speaks_the_protocol_and_refuses_what_it_cannot_serve(
    program: str, built: Path
) -> None:
    answers, proc = _talk(
        built / program,
        f'{{"seq":0,"op":"hello","protocol":{PROTOCOL},"host":"test"}}',
        SETUP,
        '{"seq":2,"op":"start","node":7,"now":0}',
        '{"seq":3,"op":"deadline","node":7}',
        '{"seq":4,"op":"deliver","node":7,"now":1,"topic":"bwc/cam-1/event","payload":"%%%"}',
        '{"seq":5,"op":"timer","node":99,"now":1}',
        '{"seq":6,"op":"warp","node":7,"now":1}',
        "this is not a request",
        '{"seq":8,"op":"finish","node":7,"now":10}',
        '{"seq":9,"op":"deadline","node":7}',
        '{"seq":10,"op":"bye"}',
        '{"seq":11,"op":"hello","protocol":1,"host":"never read"}',
    )
    assert proc.returncode == 0
    assert [a["seq"] for a in answers] == [0, 1, 2, 3, 4, 5, 6, -1, 8, 9, 10]
    assert answers[0]["protocol"] == PROTOCOL and answers[0]["max_cameras"] is None
    assert answers[1] == {"seq": 1, "subscriptions": ["bwc/cam-1/event", "bwc/team/t/event"]}
    assert [p["topic"] for p in answers[2]["publish"]] == ["bwc/cam-1/availability", "bwc/cam-1/state"]
    assert answers[2]["deadline"] == answers[3]["deadline"] == 5  # boot_s
    assert "base64" in answers[4]["error"]
    assert "no such node" in answers[5]["error"]
    assert "unknown op" in answers[6]["error"]
    assert "bad request" in answers[7]["error"]
    assert answers[8]["deadline"] is None
    assert "no such node" in answers[9]["error"]  # finish released it
    assert answers[10] == {"seq": 10}


def test_the_c_shell_refuses_another_protocol_version(built: Path) -> None:
    answers, _ = _talk(built / "bwc-fixed", '{"seq":0,"op":"hello","protocol":2,"host":"future"}')
    assert answers == [{"seq": 0, "error": "unsupported protocol: this child speaks 1"}]


def test_the_c_controllers_run_clean_under_address_and_undefined_sanitizers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flags = "-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -Wno-format-truncation"
    folder = _build(tmp_path / "asan", f"CFLAGS={flags}", "LDFLAGS=-fsanitize=address,undefined")
    monkeypatch.setenv("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    monkeypatch.setenv("ASAN_OPTIONS", "exitcode=23")
    for program in ("bwc-fixed", "bwc-naive"):
        factory = ExecFactory(str(folder / program), timeout_s=30)
        factory.start()
        children = list(factory.children)
        for path in library():
            replay(load_scenario(path), factory)  # a sanitizer abort would raise here
        garbage = [b"\xff\xfe", b"{" * 70_000, b"[" * 40 + b"]" * 40, b'{"id":[{"a":null}],"type":9}',
                   b"\x00", b'"\\ud800"', b'{"by":"x","sig":"!!","body":"{\\"id\\":1}"}',
                   b'{"id":"' + b"L" * 300 + b'","type":"dock"}']
        node = factory(CameraSetup(camera_id="cam-1", policy=load_policy("dhs-2023")))
        node.start(0.0)
        for payload in garbage:
            node.on_message("bwc/cam-1/event", payload, 1.0)
            node.on_message("elsewhere", payload, 2.0)
        node.finish(3.0)
        factory.close()  # bye: the child exits, and LeakSanitizer reports any leak
        for child in children:
            tail = child.stderr_tail()
            assert child.proc.returncode == 0, f"{program} exited {child.proc.returncode}:\n{tail}"
            assert "Sanitizer" not in tail and "runtime error" not in tail, tail

