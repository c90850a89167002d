"""``--controller exec:COMMAND``: controllers as child processes on the node protocol (SPEC §15).

The reference served by ``python -m controller.serve`` must be indistinguishable from the
in-process one (byte-identical reports and traces); a child that crashes, hangs, writes garbage
or answers out of order must be reported with the camera, the request and its stderr -- as a
failure of the controller (exit 1), and as a finding in ``fuzz`` and ``explore``.
"""

from __future__ import annotations

import gc
import json
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from brokers import BrokerAddress
from hypothesis import HealthCheck, given, settings
from live_processes import LiveCamera, Subscriber, forget_session, need, publish

from controller.audit import NoAuditTrail, trail_of, verify
from controller.errors import ControllerFailure, InvalidInput
from controller.node import CameraSetup
from controller.policy import load_policy
from controller.reference import make_node
from controller.wire import Audit, Deadline, ErrorAnswer
from sim.fleet.parallel import map_batches
from sim.nodes import load_factory, stdio
from sim.nodes.stdio import ExecFactory, StdioNode
from sim.search.explore import explore
from sim.search.fuzz import search
from sim.search.strategies import load_scenario_dict, scenarios
from sim.views.report import build_report
from sim.world.replay import CameraRun, replay
from sim.world.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
SERVE = f"{sys.executable} -m controller.serve"
CHILDREN = Path(__file__).with_name("wire_children.py")
DOCK_MID_WARRANT = SCENARIOS / "conformance" / "dock_mid_warrant.yaml"
WARRANT = SCENARIOS / "conformance" / "warrant_basic.yaml"

pytestmark = pytest.mark.req("R-NODE")


def child(mode: str, trigger: str = "dock") -> str:
    return f"{sys.executable} {CHILDREN} {mode} {trigger}"


def library() -> list[Path]:
    return sorted(p for p in SCENARIOS.rglob("*.yaml") if "policies" not in p.parts)


def report_and_trace(scenario: Scenario, factory: Any) -> tuple[bytes, bytes]:
    records: list[dict[str, Any]] = []
    result = replay(scenario, factory, records.append)
    encoder = msgspec.json.Encoder()
    return encoder.encode(build_report(result)), b"\n".join(encoder.encode(r) for r in records)


@pytest.fixture(scope="module")
def served() -> ExecFactory:
    factory = load_factory(f"exec:{SERVE}")
    assert isinstance(factory, ExecFactory)
    return factory


# ------------------------------------------------------------------ the reference, twice


@pytest.mark.parametrize("path", library(), ids=lambda p: p.relative_to(SCENARIOS).as_posix())
def test_reference_over_stdio_gives_byte_identical_reports_and_traces(
    path: Path, served: ExecFactory
) -> None:
    scenario = load_scenario(path)
    assert report_and_trace(scenario, served) == report_and_trace(scenario, make_node)


@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=scenarios())
def test_generated_scenarios_are_byte_identical_over_stdio(
    served: ExecFactory, data: dict[str, Any]
) -> None:
    # A fixed number of examples (not the profile's): the differential claim is "a few
    # hundred generated scenarios", and they must be the same ones on every run.
    scenario = load_scenario_dict(data)
    assert report_and_trace(scenario, served) == report_and_trace(scenario, make_node)


def test_one_child_serves_every_camera_of_every_scenario(served: ExecFactory) -> None:
    before = [c.proc.pid for c in served.children]
    for path in (WARRANT, SCENARIOS / "arrest_warrant_team.yaml", SCENARIOS / "team_shift_12h.yaml"):
        replay(load_scenario(path), served)
    assert [c.proc.pid for c in served.children] == before and len(before) == 1
    assert served.children[0].live == 0  # every node finished, so released in the child


def test_a_child_limited_to_one_camera_gets_one_process_per_camera() -> None:
    factory = ExecFactory(f"{SERVE} --max-cameras 1")
    try:
        scenario = load_scenario(SCENARIOS / "arrest_warrant_team.yaml")
        assert len(scenario.cameras) == 3
        assert report_and_trace(scenario, factory) == report_and_trace(scenario, make_node)
        assert len(factory.children) == 3
        assert {c.max_cameras for c in factory.children} == {1}
        replay(scenario, factory)  # the finished children are reused, not multiplied
        assert len(factory.children) == 3
    finally:
        factory.close()


def test_a_dropped_node_is_closed_in_the_child(served: ExecFactory) -> None:
    setup = CameraSetup(camera_id="cam-9", policy=load_policy("dhs-2023"))
    node = served(setup)
    node.start(0.0)
    number = node._node
    child_proc = served.children[0]
    del node
    gc.collect()
    served(setup).start(0.0)  # the next request sends the pending close first
    answer = child_proc.exchange(Deadline(seq=child_proc.seq, node=number), "cam-9")
    assert isinstance(answer, ErrorAnswer) and "no node" in answer.error


# ------------------------------------------------------------------ the audit feature


def _drive(node: Any) -> None:
    node.start(0.0)
    node.on_message("bwc/cam-1/event", b'{"id":"a","type":"activity_start","activity":"patrol",'
                    b'"activity_id":"p-1"}', 12.5)
    node.on_message("bwc/cam-1/event", b"not json", 13.0)
    node.on_message("bwc/cam-1/event", b'{"id":"a","type":"activity_start","activity":"patrol",'
                    b'"activity_id":"p-1"}', 14.0)  # a redelivery


@pytest.mark.req("R-AUDIT", "P-AUDIT")
def test_the_audit_log_is_read_over_the_wire_before_and_after_finish(served: ExecFactory) -> None:
    setup = CameraSetup(camera_id="cam-1", policy=load_policy("dhs-2023"), initial="standby")
    node, local = served(setup), make_node(setup)
    assert served.children[0].features == {"audit"}
    _drive(node)
    _drive(local)
    assert trail_of(node) == trail_of(local)  # the same entries, floats and all, and head
    node.finish(60.0)
    local.finish(60.0)
    trail = trail_of(node)
    assert trail == trail_of(local) and trail.entries[-1].kind == "segment_close"
    assert verify("cam-1", trail.entries, head=trail.head) is None
    assert [e.kind for e in trail.entries].count("duplicate") == 1
    node.close()
    with pytest.raises(NoAuditTrail, match="closed"):
        trail_of(node)


def test_a_finished_node_stays_in_the_child_until_it_is_dropped(served: ExecFactory) -> None:
    result = replay(load_scenario(WARRANT), served)
    run = next(iter(result.cameras.values()))
    assert isinstance(run, CameraRun)
    node = run.node
    assert isinstance(node, StdioNode)
    number, child_proc = node._node, node._child
    assert child_proc.live == 0  # finished: no longer counts against max_cameras
    assert len(trail_of(node)) > 0
    del node, run, result
    gc.collect()
    assert number in child_proc.pending_close
    replay(load_scenario(WARRANT), served)  # the next request sends the pending close first
    answer = child_proc.exchange(Audit(seq=child_proc.seq, node=number), "cam-1")
    assert isinstance(answer, ErrorAnswer) and "no node" in answer.error


@pytest.mark.parametrize("command", [child("no-features"), f"{SERVE} --no-audit"])
def test_a_child_without_the_audit_feature_keeps_working_and_says_so(command: str) -> None:
    factory = ExecFactory(command)
    try:
        scenario = load_scenario(WARRANT)
        assert report_and_trace(scenario, factory) == report_and_trace(scenario, make_node)
        (child_proc,) = factory.children
        assert child_proc.features == frozenset()
        result = replay(scenario, factory)
        run = next(iter(result.cameras.values()))
        assert isinstance(run, CameraRun)
        with pytest.raises(NoAuditTrail, match="did not accept the audit feature"):
            trail_of(run.node)
        del result
        gc.collect()
        assert child_proc.pending_close == []  # finish freed its nodes: nothing to close
    finally:
        factory.close()


def test_the_deadline_request_agrees_with_the_step_answers(served: ExecFactory) -> None:
    setup = CameraSetup(camera_id="cam-1", policy=load_policy("dhs-2023"), initial="standby")
    node = served(setup)
    node.start(0.0)
    assert node.next_deadline() == 5.0  # boot_s
    assert node.ask_deadline() == 5.0
    node.finish(1.0)


def test_payloads_are_binary_safe(served: ExecFactory) -> None:
    setup = CameraSetup(camera_id="cam-1", policy=load_policy("dhs-2023"))
    garbage = bytes(range(256)) + b"\n\x00{"
    remote, local = served(setup), make_node(setup)
    remote.start(0.0)
    local.start(0.0)
    assert remote.on_message("bwc/cam-1/event", garbage, 1.0) == local.on_message(
        "bwc/cam-1/event", garbage, 1.0)
    remote.finish(2.0)


def test_the_factory_pickles_as_its_command_and_rebuilds_in_a_worker(served: ExecFactory) -> None:
    copy = pickle.loads(pickle.dumps(served))
    assert isinstance(copy, ExecFactory) and copy.command == served.command
    assert copy.children == []  # children are never shared between processes
    reports = map_batches(_replay_with_exec, [str(WARRANT)] * 2, workers=2)
    expected = msgspec.json.encode(build_report(replay(load_scenario(WARRANT)))).decode()
    assert reports == [expected, expected]


def _replay_with_exec(paths: list[str]) -> list[str]:
    """In a worker process: rebuild the factory from the spec string, as ``fleet`` does."""
    factory = load_factory(f"exec:{SERVE}")
    return [msgspec.json.encode(build_report(replay(load_scenario(Path(p)), factory))).decode()
            for p in paths]


def test_the_same_spec_gives_the_same_factory(served: ExecFactory) -> None:
    assert load_factory(f"exec:{SERVE}") is served


# ------------------------------------------------------------------ children that misbehave


MISBEHAVIOUR = {
    "crash": "killed by SIGSEGV",
    "exit": "exited with status 3",
    "hang": "no answer within 0.5 s",
    "garbage": "not a deliver answer",
    "order": "answered out of order: request seq",
    "partial": "closed its stdout before answering",
    "bad-answer": "not a deliver answer",
    "error": "answered with an error: assertion failed: state != DOCKED",
}



@pytest.mark.parametrize("mode", sorted(MISBEHAVIOUR))
def test_a_misbehaving_child_is_an_error_naming_camera_request_and_stderr(mode: str) -> None:
    factory = ExecFactory(child(mode), timeout_s=0.5)
    try:
        with pytest.raises(ControllerFailure) as caught:
            replay(load_scenario(DOCK_MID_WARRANT), factory)
        message = str(caught.value)
        assert message.startswith(f"controller exec:{child(mode)}, camera cam-1: request deliver")
        assert "t=900" in message and '"type":"dock"' in message  # the request, with its time
        assert MISBEHAVIOUR[mode] in message
        assert "handling dock at t=900" in message  # the child's stderr tail
        if mode == "garbage":
            assert "flux capacitor" in message  # the offending line is quoted
        # The factory is not poisoned: the next scenario gets a working child (or the same
        # one, when it only refused one request).
        assert report_and_trace(load_scenario(WARRANT), factory) == report_and_trace(
            load_scenario(WARRANT), make_node)
    finally:
        factory.close()


def test_a_child_whose_deadline_never_moves_on_is_stopped() -> None:
    factory = ExecFactory(child("stuck"))
    try:
        # Stuck from the dock on: the next delivery (the end, at 1500) asks for a timer at
        # 1500, and every timer at 1500 asks for 1500 again.
        with pytest.raises(ControllerFailure, match=r"request timer \(t=1500\): the child asked 100 "
                           r"times in a row to be woken at 1500.*never moves on"):
            replay(load_scenario(DOCK_MID_WARRANT), factory)
    finally:
        factory.close()


def test_nodes_of_a_dead_child_keep_failing_with_the_first_story() -> None:
    factory = ExecFactory(child("crash"), timeout_s=5)
    try:
        setup = CameraSetup(camera_id="cam-1", policy=load_policy("dhs-2023"))
        node: StdioNode = factory(setup)
        node.start(0.0)
        with pytest.raises(ControllerFailure, match="killed by SIGSEGV"):
            node.on_message("bwc/cam-1/event", b'{"id":"d","type":"dock"}', 1.0)
        with pytest.raises(ControllerFailure, match=r"request timer .*failed earlier.*SIGSEGV"):
            node.on_timer(2.0)
    finally:
        factory.close()


@pytest.mark.parametrize(("command", "words"), [
    (child("die-at-start"), ["exited with status 1", "cannot open /dev/camera0"]),
    (child("old-protocol"), ["speaks protocol 0; bwcsim speaks 1"]),
    (child("refuse-hello"), ["refused the handshake: I only speak protocol 0"]),
    ("/no/such/firmware --flag", ["cannot start '/no/such/firmware'", "No such file"]),
    ("'unbalanced", ["No closing quotation"]),
])
def test_a_child_that_cannot_start_is_invalid_input(command: str, words: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        ExecFactory(command).start()
    assert all(w in str(caught.value) for w in words), str(caught.value)


def test_a_silent_child_fails_the_handshake_at_its_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stdio, "HANDSHAKE_TIMEOUT_S", 0.3)
    with pytest.raises(InvalidInput, match=r"handshake failed: no answer within 0.3 s"):
        ExecFactory(child("silent"), timeout_s=0.1).start()


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan"])
def test_a_bad_timeout_setting_is_invalid_input(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stdio.TIMEOUT_ENV, value)
    with pytest.raises(InvalidInput, match="BWCSIM_NODE_TIMEOUT must be a positive number"):
        ExecFactory(SERVE)


# ------------------------------------------------------------------ commands


def bwcsim(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **env}, timeout=300)


def test_run_with_a_crashing_child_exits_1_with_the_story_and_no_report() -> None:
    proc = bwcsim("run", str(DOCK_MID_WARRANT), "--report", "json",
                  "--controller", f"exec:{child('crash')}")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert "camera cam-1: request deliver" in proc.stderr and "killed by SIGSEGV" in proc.stderr
    assert "handling dock at t=900" in proc.stderr


def test_run_and_check_take_an_exec_controller() -> None:
    proc = bwcsim("run", str(WARRANT), "--report", "json", "--controller", f"exec:{SERVE}")
    assert proc.returncode == 0, proc.stderr
    assert json_report(proc.stdout) == msgspec.json.decode(
        msgspec.json.encode(build_report(replay(load_scenario(WARRANT)))))
    proc = bwcsim("check", str(DOCK_MID_WARRANT), str(WARRANT), "--controller", f"exec:{child('crash')}")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("FAIL") and "dock_mid_warrant" in lines[0]
    assert any("killed by SIGSEGV" in line for line in lines)
    assert any(line.startswith("PASS") and "warrant_basic" in line for line in lines)
    assert "1 passed, 1 failed" in proc.stdout


def json_report(text: str) -> Any:
    return msgspec.json.decode(text.encode())


def test_a_command_that_cannot_run_exits_2_at_once() -> None:
    proc = bwcsim("run", str(WARRANT), "--controller", "exec:/no/such/firmware")
    assert proc.returncode == 2
    assert "cannot start '/no/such/firmware'" in proc.stderr and "Traceback" not in proc.stderr


def test_fuzz_saves_a_crash_as_a_scenario_that_replays_to_the_same_crash(tmp_path: Path) -> None:
    command = child("crash", "dock")
    # Small one-camera scenarios: every shrink step that still crashes costs a fresh child.
    small = scenarios(max_steps=6, max_cameras=1, faults=False, raw=False, bus=False)
    outcome = search(ExecFactory(command), examples=200, seed=1, save_dir=tmp_path,
                     controller=f"exec:{command}", strategy=small)
    assert outcome.counterexample is not None
    assert any("killed by SIGSEGV" in p for p in outcome.problems)
    timeline = outcome.counterexample["timeline"]
    assert [e.get("event") for e in timeline] == ["dock"]  # shrunk to what sets it off
    assert outcome.saved is not None
    proc = bwcsim("run", str(outcome.saved), "--controller", f"exec:{command}")
    assert proc.returncode == 1 and "killed by SIGSEGV" in proc.stderr


def test_explore_reports_a_hang_as_a_failing_sequence() -> None:
    factory = ExecFactory(child("hang"), timeout_s=0.3)
    try:
        result = explore(2, factory, max_failures=2)
    finally:
        factory.close()
    assert len(result.failures) == 2
    for seq, problems in result.failures:
        assert "dock" in seq
        assert any("controller failed" in p and "no answer within 0.3 s" in p for p in problems)


def test_pytest_runs_its_suites_on_an_exec_controller(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests_dir = pytester.mkdir("tests")
    for helper in ("conftest.py", "brokers.py"):
        shutil.copy(ROOT / "tests" / helper, tests_dir / helper)
    # As in this repository's own ini: the plugin does not add its property suites here.
    pytester.makeini("[pytest]\nmarkers =\n    req(id): requirement\n    live: broker\n"
                     "bwcsim_properties = none\n")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    (tests_dir / "test_inner.py").write_text(textwrap.dedent("""
        import pytest
        from controller.node import CameraSetup
        from controller.policy import load_policy

        @pytest.mark.req("R-NODE")
        def test_node(controller_factory):
            node = controller_factory(CameraSetup(camera_id="c", policy=load_policy("dhs-2023")))
            assert type(node).__name__ == "StdioNode"
            assert node.start(0.0)
    """))
    result = pytester.runpytest_subprocess("tests", f"--controller=exec:{SERVE}")
    result.assert_outcomes(passed=1)


@pytest.mark.live
def test_live_runs_an_exec_controller_on_a_real_broker(mqtt_broker: BrokerAddress) -> None:
    need("mosquitto_pub", "mosquitto_sub")
    prefix = f"x{uuid.uuid4().hex[:10]}"
    sub = Subscriber(mqtt_broker.port, f"{prefix}/#")
    camera = LiveCamera(mqtt_broker.url, "cam-1", prefix, "--controller", f"exec:{SERVE}")
    try:
        camera.wait_event("connected")
        assert sub.wait_for(f"{prefix}/cam-1/availability") == "online"
        publish(mqtt_broker.port, f"{prefix}/cam-1/event",
                '{"id":"s-1","type":"activity_start","activity":"search_warrant","activity_id":"sw-1"}')
        state = json.loads(sub.wait_for(f"{prefix}/cam-1/state", lambda p: '"recording"' in p))
        assert state["active"] == ["sw-1"]
        mark = sub.tail.mark()
        camera.signal(signal.SIGTERM)  # the child is in its own session: it outlives the signal
        assert camera.process.wait(timeout=10) == 0
        meta = json.loads(sub.wait_for(f"{prefix}/cam-1/recording", since=mark))
        assert meta["open"] is True and meta["reasons"] == ["sw-1"]  # finish went to the child
    finally:
        sub.stop()
        camera.stop()
        for kind in ("state", "availability"):
            publish(mqtt_broker.port, f"{prefix}/cam-1/{kind}", None, retain=True)
        forget_session(mqtt_broker.port, camera.client_id)


def test_threads_sharing_a_child_never_interleave_requests(served: ExecFactory) -> None:
    """The studio replays in a thread pool: each request still gets its own answer."""
    from concurrent.futures import ThreadPoolExecutor

    scenario = load_scenario(SCENARIOS / "arrest_warrant_team.yaml")
    expected = report_and_trace(scenario, make_node)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: report_and_trace(scenario, served), range(8)))
    assert results == [expected] * 8
