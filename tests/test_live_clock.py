"""The scaled clock and power-on at a set time (SPEC §15a, R-CLOCK), and ``bwcsim live``'s
options for standing in for a device on a test bench: ``--speed``, ``--start-at``, ``--param``."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from brokers import BrokerAddress
from live_processes import ROOT, Subscriber, forget_session, need, publish

from controller.errors import InvalidInput
from controller.node import CameraSetup
from controller.params import CameraParams
from controller.policy import load_policy
from controller.reference import make_node
from sim.live.bus import Probe, SimHub
from sim.live.clock import ClockMapping, PowerOnAt
from sim.live.command import LiveOptions, parse_params, run_live
from sim.live.runtime import CameraRuntime

START = 1_800_000_000.25


def _node(initial: str = "pre_buffer", camera: str = "cam-1", prefix: str = "bwc") -> PowerOnAt:
    policy = load_policy("dhs-2023")
    setup = CameraSetup(camera_id=camera, policy=policy, params=policy.apply(CameraParams()),
                        initial=initial, prefix=prefix)  # type: ignore[arg-type]
    return PowerOnAt(make_node(setup), at=100.0 * START)


@pytest.mark.req("R-CLOCK")
def test_scenario_time_is_device_time_less_speed_times_the_start() -> None:
    clock = ClockMapping(100.0, START)
    assert clock.device_origin == 100.0 * START
    assert clock.device(600.0) == 100.0 * START + 600.0
    assert clock.from_device(clock.device(600.0)) == 600.0  # mapped to the millisecond
    assert clock.unix(600.0) == pytest.approx(START + 6.0)
    assert clock.from_unix(START + 6.0) == 600.0
    assert ClockMapping(1.0, START).device(5.0) == START + 5.0  # speed 1: the Unix clock
    with pytest.raises(ValueError, match="speed"):
        ClockMapping(0.0, START)


@pytest.mark.req("R-CLOCK", "R-DOCK")
def test_a_camera_powered_on_at_a_set_time_counts_boot_and_battery_from_then() -> None:
    node = _node("standby")
    at = 100.0 * START
    assert node.start(at - 500.0) == []  # connected, but off
    assert node.next_deadline() == at and node.finish(at - 1.0) == []
    out = node.on_timer(at + 7.0)  # woken late: powered on as of `at`, then boot done at +5
    states = [json.loads(p.payload) for p in out if p.topic == "bwc/cam-1/state"]
    assert [(s["state"], s["since"]) for s in states] == [("standby", at), ("pre_buffer", at + 5.0)]
    assert states[0]["battery_s"] == 43200.0


@pytest.mark.req("R-CLOCK")
def test_a_message_before_power_on_powers_the_camera_on_at_its_arrival() -> None:
    node = _node()
    at = 100.0 * START
    out = node.on_message("bwc/cam-1/event", b'{"id":"b","type":"button","action":"start"}', at - 40.0)
    states = [json.loads(p.payload) for p in out if p.topic == "bwc/cam-1/state"]
    assert (states[0]["state"], states[0]["since"], states[0]["battery_s"]) == \
        ("pre_buffer", at - 40.0, 43200.0)
    assert states[-1]["state"] == "recording" and node.powered


@pytest.mark.looptime
@pytest.mark.req("R-CLOCK", "LIVE-RUNTIME")
async def test_on_the_scaled_clock_the_camera_runs_speed_times_faster_than_the_loop() -> None:
    hub = SimHub()
    loop = asyncio.get_running_loop()

    def wall() -> float:  # the virtual Unix clock
        return START + loop.time()

    node = _node("standby", prefix="sc")
    node.at = 100.0 * (START + loop.time() + 1.0)  # one loop second from now
    runtime = CameraRuntime(node, hub.client(), prefix="sc", speed=100.0,
                            time_origin=lambda: 100.0 * wall())
    probe = Probe(hub.client())
    await probe.start("probe", ["sc/#"])
    task = asyncio.create_task(runtime.run())
    began = loop.time()
    ready = await probe.wait_for(lambda m: m.topic == "sc/cam-1/state" and b"pre_buffer" in m.payload,
                                 timeout=5.0)
    # Powered on one loop second in; boot_s = 5 device seconds = 0.05 loop seconds.
    assert loop.time() - began == pytest.approx(1.05, abs=1e-3)
    assert json.loads(ready.payload)["since"] == pytest.approx(node.at + 5.0, abs=1e-3)
    assert runtime.now() == pytest.approx(100.0 * wall(), abs=1e-2)
    runtime.stop()
    await task
    await probe.stop()
    hub.close()


@pytest.mark.req("LIVE-CLI")
@pytest.mark.parametrize(("params", "problem"), [
    (("prebuffer_s=200",), "prebuffer_s must be between 0 and 120"),
    (("colour=red",), "unknown camera parameter 'colour'"),
    (("boot_s",), "is not NAME=VALUE"),
    (("record_drain=fast",), "record_drain: 'fast' is not a number"),
    (("record_drain=nan",), "record_drain must be a finite number"),
    (("charge_rate=inf",), "charge_rate must be a finite number"),
    (("buffer_audio=maybe",), "buffer_audio: expected true or false"),
    (("boot_s=1:99",), "boot_s: '1:99' has two parts"),
])
def test_bad_camera_parameters_are_refused_by_name(params: tuple[str, ...], problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem) as info:
        parse_params(params, CameraParams())
    assert info.value.field == "--param"


@pytest.mark.req("LIVE-CLI")
def test_camera_parameters_accept_seconds_and_clock_times() -> None:
    params = parse_params(("prebuffer_s=60", "battery_s=01:00:00", "buffer_audio=true",
                           "record_drain=1.5"), CameraParams())
    assert (params.prebuffer_s, params.battery_s, params.buffer_audio, params.record_drain) == \
        (60.0, 3600.0, True, 1.5)


def _live(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", "live", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=30)


@pytest.mark.req("LIVE-CLI")
@pytest.mark.parametrize(("args", "needle"), [
    (["--speed", "0"], "--speed: 0 is not a speed"),
    (["--speed", "20000"], "--speed"),
    (["--start-at", "soon"], "--start-at: 'soon' is not a Unix time"),
    (["--param", "prebuffer_s=500"], "--param: prebuffer_s must be between 0 and 120"),
])
def test_bad_bench_options_exit_2_with_a_message(args: list[str], needle: str) -> None:
    done = _live("--broker", "mqtt://127.0.0.1:1", "--camera", "c", *args)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr


@pytest.mark.req("LIVE-CLI")
def test_start_at_stdin_says_ready_and_refuses_anything_but_a_time() -> None:
    out = io.StringIO()
    options = LiveOptions(broker="mqtt://127.0.0.1:1", camera="c", start_at_stdin=True)
    with pytest.raises(InvalidInput, match="expected a Unix time on standard input, got 'go'"):
        run_live(options, stdin=io.StringIO("go\n"), stdout=out)
    assert out.getvalue() == "ready\n"


@pytest.mark.live
@pytest.mark.req("R-CLOCK", "LIVE-CLI")
def test_bwcsim_live_on_a_scaled_clock_powers_on_when_told(
    mqtt_broker: BrokerAddress, tmp_path: Path
) -> None:
    need("mosquitto_sub")
    prefix = f"c{uuid.uuid4().hex[:10]}"
    sub = Subscriber(mqtt_broker.port, f"{prefix}/#")
    args = [sys.executable, "-m", "sim", "live", "--broker", mqtt_broker.url, "--camera", "cam-1",
            "--prefix", prefix, "--client-id", f"{prefix}-cam-1", "--speed", "100",
            "--start-at", "-", "--initial", "standby", "--param", "boot_s=20",
            "--state-dir", str(tmp_path / "cam-1")]
    process = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline() == "ready\n"
        start = time.time() + 0.5
        process.stdin.write(f"{start!r}\n")
        process.stdin.close()
        standby = json.loads(sub.wait_for(f"{prefix}/cam-1/state", lambda p: "standby" in p))
        ready = json.loads(sub.wait_for(f"{prefix}/cam-1/state", lambda p: "pre_buffer" in p))
        assert standby["since"] == pytest.approx(100.0 * start, abs=1e-3)
        assert ready["since"] - standby["since"] == pytest.approx(20.0, abs=1e-3)  # 0.2 s of wall
    finally:
        process.terminate()
        process.wait(timeout=10)
        sub.stop()
        for kind in ("state", "availability"):
            publish(mqtt_broker.port, f"{prefix}/cam-1/{kind}", None, retain=True)
        forget_session(mqtt_broker.port, f"{prefix}-cam-1")


@pytest.mark.req("LIVE-CLI")
def test_what_exists_before_serving_is_frozen_while_serving_and_thawed_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SPEC §13: the libraries and the node stay out of the collector's full passes while the
    camera serves (a full pass over them was a 50 ms stall at 1,000 msg/s), and a process that
    goes on after ``run_live`` collects as before."""
    import gc

    import sim.live.command as command

    seen: list[int] = []

    async def serve(_options: LiveOptions) -> None:
        seen.append(gc.get_freeze_count())

    monkeypatch.setattr(command, "serve", serve)
    assert gc.get_freeze_count() == 0
    assert run_live(LiveOptions(broker="mqtt://127.0.0.1:1", camera="c")) == 0
    assert seen and seen[0] > 10_000
    assert gc.get_freeze_count() == 0
