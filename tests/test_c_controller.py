"""The C example controllers (examples/c-controller/) judged by the bench over the node protocol.

``bwc-fixed`` is a second implementation of SPEC §4 in C: it must give the reference's
verdicts (its reports, in fact, and its audit log) on the whole library and on generated
scenarios, read message ids and sequence numbers exactly as the reference reads them, and a
fuzz run must find nothing. ``bwc-naive`` is the first draft a firmware engineer writes: the fuzzer
must find its bugs, shrink one to a few timeline entries, and the saved file must replay to
the same failure. Both are built here from a copy of the sources with the system compiler,
cJSON and libcrypto; without those the tests skip and say what is missing (``.ci/run``
installs them).
"""

from __future__ import annotations

import contextlib
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
from hypothesis import strategies as st
from signing import CAM, DHS, EVENT, Sender, trust

from controller.audit import AuditTrail, NoAuditTrail, trail_of, verify
from controller.node import CameraSetup, Publish
from controller.policy import load_policy
from controller.reference import make_node
from controller.wire import PROTOCOL
from sim.nodes.stdio import ExecFactory
from sim.search.fuzz import search
from sim.search.strategies import load_scenario_dict, scenarios
from sim.views.report import build_report
from sim.world.replay import CameraRun, replay
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


def _entries(trail: AuditTrail) -> list[Any]:
    """An audit log as comparable data (index, time, kind, data), as :func:`_rounded` makes it."""
    return [_rounded([e.seq, e.at, e.kind, e.data]) for e in trail.entries]


def _same_audit_logs(result: Any, reference: Any) -> None:
    """Every camera's C log verifies, up to its head, and holds the reference's entries."""
    for cam, run in result.cameras.items():
        trail = trail_of(run.node)
        assert verify(cam, trail.entries, head=trail.head) is None, cam
        assert _entries(trail) == _entries(trail_of(reference.cameras[cam].node)), cam


# ------------------------------------------------------------------ bwc-fixed


@pytest.mark.req("R-NODE", "R-AUDIT")
@pytest.mark.parametrize("path", library(), ids=lambda p: p.relative_to(SCENARIOS).as_posix())
def test_fixed_gives_the_reference_report_and_audit_log_on_every_library_scenario(
    path: Path, fixed: ExecFactory
) -> None:
    scenario = load_scenario(path)
    result, reference = replay(scenario, fixed), replay(scenario)
    report = build_report(result)
    assert report["expect"]["failures"] == []
    assert report["verdict"] == "pass"
    # Not only the verdict: the same recordings, alerts, misses and refusals, to the microsecond.
    assert _rounded(report) == _rounded(build_report(reference))
    # And the same audit entries (every state change, message, alert, deactivation), chained.
    _same_audit_logs(result, reference)


@pytest.mark.req("R-NODE", "R-AUDIT")
@settings(max_examples=150, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=scenarios())
def test_fixed_gives_the_reference_report_and_audit_log_on_generated_scenarios(
    fixed: ExecFactory, data: dict[str, Any]
) -> None:
    scenario = load_scenario_dict(data)
    result, reference = replay(scenario, fixed), replay(scenario)
    assert _rounded(build_report(result)) == _rounded(build_report(reference))
    _same_audit_logs(result, reference)


@pytest.mark.req("R-AUDIT", "P-AUDIT")
@settings(max_examples=25, derandomize=True, deadline=None)
@given(times=st.lists(st.floats(min_value=0.0, allow_nan=False, allow_infinity=False),
                      min_size=1, max_size=80))
def test_fixed_hashes_any_time_in_the_reference_canonical_form(
    fixed: ExecFactory, times: list[float]
) -> None:
    """Every refusal is logged at the time of its delivery: with times of every magnitude
    (subnormals, powers of two, 1e16, 0.1 + 0.2) the C camera's float text must be the
    reference's to the byte, or its chain does not verify here."""
    times = sorted([*times, 0.1 + 0.2, 1.5e-7, 5e-324, 2.0**-44, 1e15, 1e16, 2.0**60])
    setup = CameraSetup(camera_id="cam-7", policy=load_policy("dhs-2023"))
    node, local = fixed(setup), make_node(setup)
    for n in (node, local):
        n.start(0.0)
        for t in times:
            n.on_message("bwc/cam-7/event", b"\x00", t)
    trail = trail_of(node)
    assert verify("cam-7", trail.entries, head=trail.head) is None
    assert [e.at for e in trail.entries if e.kind == "refused"] == times
    assert trail == trail_of(local)


# Payloads whose id, seq or ts a parser that reads every number as a double gets wrong, and
# the reference's reading of each (SPEC §4a: an id is a JSON string or integer).
ODD_NUMBERS = [
    b'{"id":7.0,"type":"dock"}',  # a float: no id at all (refused, answered with a null id)
    b'{"id":7,"type":"dock"}',
    b'{"id":7E0,"type":"undock"}',
    b'{"id":1e2,"type":"undock"}',
    b'{"id":-0,"type":"undock"}',  # the integer 0
    b'{"id":0.0,"type":"undock"}',
    b'{"id":9007199254740993,"type":"undock"}',  # 2**53 + 1, exactly
    b'{"id":9007199254740992,"type":"undock"}',  # ... a different id from 2**53
    b'{"id":9223372036854775807,"type":"dock"}',
    b'{"id":9223372036854775808,"type":"dock"}',  # beyond 64 bits: too_long
    b'{"id":-9223372036854775808,"type":"dock"}',
    b'{"id":-9223372036854775809,"type":"dock"}',
    b'{"id":123456789012345678901234567890,"type":"dock"}',
    b'{"id":01,"type":"dock"}',  # not JSON numbers at all
    b'{"id":1.,"type":"dock"}',
    b'{"id":1.e5,"type":"dock"}',
    b'{"id":1e400,"type":"dock"}',  # beyond a double
    b'{"id":"x","type":"dock","ts":1e400}',
    b'{"id":"y","type":"dock","extra":1e400}',  # ... unread by the reference: accepted
    b'{"id":"z","type":"nope","extra":1e400}',
    b'{"id":"t","type":"dock","ts":1' + b"0" * 400 + b"}",  # an integer ts beyond a double
    b'{"id":"a\\u0000b","type":"dock"}',  # three characters
    b'{"id":"a\\u0000c","type":"dock"}',  # ... not a redelivery of the one before
    b'{"id":"\\ud83d\\ude00 \\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u007f","type":"dock"}',
    b'{"id":"s1","type":"dock","seq":7.0}',
    b'{"id":"s2","type":"dock","seq":9223372036854775808}',
    b'{"id":"s3","type":"dock","seq":-0}',
    b'{"id":"s4","type":"dock","seq":-1}',
    b'{"id":"s5","type":"dock","seq":-100000000000000000000000}',
    b'{"id":7,"type":"dock"}',  # a redelivery of 7 ...
    b'{"id":7.0,"type":"dock"}',  # ... and 7.0, which is not 7
    b"[1e400]",
]


def _comparable(pubs: list[Publish]) -> list[Any]:
    """Publications as bytes, but an invalid_json NACK cut to its word: after it, each JSON
    parser describes the break in its own words."""
    out: list[Any] = []
    for p in pubs:
        doc = msgspec.json.decode(p.payload) if p.topic.endswith("/ack") else None
        if doc is not None and str(doc.get("error", "")).startswith("invalid_json"):
            out.append((p.topic, doc["id"], doc["ok"], "invalid_json"))
        else:
            out.append((p.topic, p.payload, p.retain, p.qos))
    return out


@pytest.mark.req("R-NODE", "R-BAD", "R-IDEM")
def test_fixed_reads_ids_seqs_and_times_as_the_reference_does(fixed: ExecFactory) -> None:
    setup = CameraSetup(camera_id="cam-1", policy=load_policy("dhs-2023"))
    node, local = fixed(setup), make_node(setup)
    assert node.start(0.0) == local.start(0.0)
    for i, payload in enumerate(ODD_NUMBERS):
        now = 1.0 + i
        mine, theirs = node.on_message(EVENT, payload, now), local.on_message(EVENT, payload, now)
        assert _comparable(mine) == _comparable(theirs), payload
    acks = [msgspec.json.decode(p.payload) for p in local.finish(99.0)]
    assert acks == [msgspec.json.decode(p.payload) for p in node.finish(99.0)]
    # The audit log names each id as the reference reads it, and verifies.
    trail, reference = trail_of(node), trail_of(local)
    assert verify("cam-1", trail.entries, head=trail.head) is None
    assert [e.data.get("id") for e in trail.entries] == [e.data.get("id") for e in reference.entries]
    assert 9007199254740993 in [e.data.get("id") for e in trail.entries]


@pytest.mark.req("R-NODE", "R-FRESH")
def test_fixed_orders_signed_sequence_numbers_beyond_a_double_exactly(fixed: ExecFactory) -> None:
    setup = CameraSetup(camera_id=CAM, policy=DHS, trust=trust())
    node, local = fixed(setup), make_node(setup)
    dispatch = Sender("dispatch")
    bodies = [
        dispatch.body("w-1", "activity_start", seq=2**53, activity="arrest_warrant", activity_id="w"),
        dispatch.body("w-2", "activity_end", seq=2**53 + 1, activity_id="w"),  # a double: no later
        dispatch.body("w-3", "activity_start", seq=2**53 + 1, activity="patrol", activity_id="p"),
        b'{"id":"w-4","type":"activity_end","activity_id":"p","seq":9007199254740994.0,"to":"cam-1"}',
    ]
    node.start(0.0)
    local.start(0.0)
    for i, body in enumerate(bodies):
        command = dispatch.signed(body)
        mine, theirs = node.on_message(EVENT, command, 1.0 + i), local.on_message(EVENT, command, 1.0 + i)
        assert _comparable(mine) == _comparable(theirs), body
    words = [e.data.get("error", "").split(":")[0] for e in trail_of(node).entries if e.kind == "refused"]
    assert words == ["replayed", "invalid_field"]


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
    # The naive camera reports no battery or storage model either (P-RESOURCE fails at once):
    # the search is narrowed to the missed footage this test is about.
    proc = bwcsim("fuzz", "--controller", naive_cmd, "--seed", "1", "--property", "P-NOMISS",
                  "--save", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert "FAIL P-NOMISS" in proc.stderr
    (saved,) = tmp_path.glob("*.yaml")
    doc = yaml.safe_load(saved.read_text("utf-8"))
    assert 1 <= len(doc["timeline"]) <= 4  # shrunk to a few entries
    assert doc["expect"]["verdict"] == "pass"  # plus `holds` for any other property it falsifies
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
    return _talk_to([str(program)], *lines)


def _talk_to(argv: list[str], *lines: str) -> tuple[list[dict[str, Any]], subprocess.CompletedProcess[str]]:
    proc = subprocess.run(argv, input="".join(line + "\n" for line in lines),
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
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
    assert answers == [{"seq": 0, "error": "unsupported protocol 2: this child speaks 1"}]


@pytest.mark.req("R-NODE", "R-AUDIT")
@pytest.mark.parametrize(("program", "accepted"), [("bwc-fixed", ["audit"]), ("bwc-naive", [])])
def test_fixed_accepts_the_audit_feature_and_naive_declines_it(
    program: str, accepted: list[str], built: Path
) -> None:
    answers, _ = _talk(
        built / program,
        '{"seq":0,"op":"hello","protocol":1,"host":"t","features":["audit","telepathy"]}',
        SETUP,
        '{"seq":2,"op":"start","node":7,"now":0}',
        '{"seq":3,"op":"finish","node":7,"now":10}',
        '{"seq":4,"op":"audit","node":7,"first":1}',
        '{"seq":5,"op":"timer","node":7,"now":11}',
        '{"seq":6,"op":"close","node":7}',
        '{"seq":7,"op":"audit","node":7}',
    )
    assert answers[0]["features"] == accepted
    assert "no such node" in answers[5]["error"]  # finished: the camera is gone either way
    assert answers[6] == {"seq": 6}
    if not accepted:
        assert "not agreed" in answers[4]["error"]
        return
    # power_on, then the boot at 5 (standby -> pre_buffer): from index 1 on, one entry
    assert [e[:3] for e in answers[4]["entries"]] == [[1, 5.0, "state"]]
    assert answers[4]["entries"][0][5] == answers[4]["head"]
    assert "no such node" in answers[7]["error"]  # closed: the log is gone


# Request lines whose seq, node or protocol version a parser that reads every number as a
# double gets wrong. The reference answers each under the seq it can read (-1: none).
ODD_REQUESTS = [
    '{"op":"hello","seq":7.0,"protocol":1,"host":"t"}',
    '{"op":"hello","seq":9007199254740993,"protocol":1,"host":"t"}',
    '{"op":"hello","seq":18446744073709551616,"protocol":1,"host":"t"}',
    '{"op":"hello","seq":-0,"protocol":1,"host":"t"}',
    '{"op":"hello","seq":1e400,"protocol":1,"host":"t"}',
    '{"op":"hello","seq":true,"protocol":1,"host":"t"}',
    '{"op":"hello","seq":01,"protocol":1,"host":"t"}',
    '{"op":"hello","seq":3,"protocol":1.0,"host":"t"}',
    '{"op":"hello","seq":4,"protocol":2,"host":"t"}',
    '{"op":"deadline","seq":5,"node":1.0}',
    '{"op":"deadline","seq":6,"node":1e400}',
    '{"op":"deadline","seq":7,"node":100000000000000000000000}',
    '{"op":"timer","seq":8,"node":1,"now":1e400}',
    '{"op":"warp","seq":9}',
    '{"op":"close","seq":10,"node":12345}',
    '{"op":"hello","seq":11,"protocol":1,"host":"t","features":["audit"]}',
    SETUP.replace('"seq":1,', '"seq":12,').replace('"node":7', '"node":9007199254740993'),
    '{"op":"start","seq":13,"node":9007199254740992,"now":0}',  # another node
    '{"op":"start","seq":14,"node":9007199254740993,"now":0}',
    '{"op":"audit","seq":15,"node":9007199254740993,"first":1.5}',
    '{"op":"audit","seq":16,"node":9007199254740993,"first":100000000000000000000}',
    '{"seq":17}',
    "[1]",
    '{"op":"bye","seq":18,"extra":1e400}',
]


@pytest.mark.req("R-NODE")
def test_the_c_shell_reads_seq_and_node_numbers_as_the_reference_does(built: Path) -> None:
    mine, _ = _talk(built / "bwc-fixed", *ODD_REQUESTS)
    theirs, _ = _talk_to([sys.executable, "-m", "controller.serve"], *ODD_REQUESTS)
    assert len(mine) == len(theirs) == len(ODD_REQUESTS)
    for request, a, b in zip(ODD_REQUESTS, mine, theirs, strict=True):
        assert a["seq"] == b["seq"], request  # 9007199254740993 stays itself
        assert set(a) == set(b), request
        # The same refusals: "bad request" for what does not decode, an error for the rest.
        assert a.get("error", "").startswith("bad request") == b.get("error", "").startswith(
            "bad request"), (request, a, b)
    assert mine[1]["seq"] == 9007199254740993 and mine[0]["seq"] == -1
    assert mine[16] == {"seq": 12, "subscriptions": ["bwc/cam-1/event", "bwc/team/t/event"]}
    assert "error" in mine[17] and "error" not in mine[18]
    # Past its end, a log is empty; its head is the reference's, hash for hash.
    assert mine[20]["entries"] == [] and mine[20]["head"] == theirs[20]["head"]


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
            result = replay(load_scenario(path), factory)  # a sanitizer abort would raise here
            for run in result.cameras.values():
                assert isinstance(run, CameraRun)
                with contextlib.suppress(NoAuditTrail):
                    trail_of(run.node)  # the audit request too, after finish
        garbage = [b"\xff\xfe", b"{" * 70_000, b"[" * 40 + b"]" * 40, b'{"id":[{"a":null}],"type":9}',
                   b"\x00", b'"\\ud800"', b'{"by":"x","sig":"!!","body":"{\\"id\\":1}"}',
                   b'{"id":"' + b"L" * 300 + b'","type":"dock"}', *ODD_NUMBERS]
        node = factory(CameraSetup(camera_id="cam-1", policy=load_policy("dhs-2023")))
        node.start(0.0)
        for payload in garbage:
            node.on_message("bwc/cam-1/event", payload, 1.0)
            node.on_message("elsewhere", payload, 2.0)
        node.finish(3.0)
        _, proc = _talk(folder / program, *ODD_REQUESTS)
        assert proc.returncode == 0 and "Sanitizer" not in proc.stderr, proc.stderr
        factory.close()  # bye: the child exits, and LeakSanitizer reports any leak
        for child in children:
            tail = child.stderr_tail()
            assert child.proc.returncode == 0, f"{program} exited {child.proc.returncode}:\n{tail}"
            assert "Sanitizer" not in tail and "runtime error" not in tail, tail

