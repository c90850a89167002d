"""Done-when check: ``kill -9`` of a live camera mid-warrant, and a restart (R-DURABLE, R-NODROP).

A ``bwcsim live`` process runs as camera ``cam-1`` on a private Mosquitto with the generated
configuration, recording a warrant (segments of two seconds, so that recording metadata keeps
coming). It is killed with SIGKILL and started again on the same state directory. Then:

* the warrant is still open: the camera records again with ``active: ["w-1"]``, under the same
  incident id, and the later ``activity_end`` is accepted;
* a ``restarted`` alert names the span the camera was down;
* every alert and every recording metadata the camera produced before the kill — as its audit
  file on disk says — reached an observer, before or after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from live_processes import LiveCamera, need
from secured_broker import SecuredBroker, secured_broker

from sim.live.auditfile import audit_files, verify_files
from sim.live.bus import Message, MqttBus, Probe

pytestmark = [pytest.mark.live, pytest.mark.req("R-DURABLE", "R-NODROP", "R-AUDITFILE")]

POLICY = (Path(__file__).resolve().parents[1] / "controller" / "policies" / "dhs-2023.yaml").read_text()
START = '{"id":"s-1","type":"activity_start","activity":"search_warrant","activity_id":"w-1","ts":%f}'
END = b'{"id":"e-1","type":"activity_end","activity_id":"w-1"}'


def _json(msg: Message) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(msg.payload)
    return doc


def _on(kind: str, fragment: bytes) -> Any:
    return lambda m: m.topic == f"bwc/cam-1/{kind}" and fragment in m.payload


def _camera(broker: SecuredBroker, state: Path, policy: Path) -> LiveCamera:
    return LiveCamera(broker.url, "cam-1", "bwc", "--username", "cam-1", "--password-file",
                      str(broker.password_file("cam-1")), "--mqtt-version", "5", "--policy", str(policy),
                      "--backoff-initial", "0.2", "--backoff-max", "0.5", state_dir=state)


async def test_kill_9_mid_warrant_then_restart_resumes_it_and_loses_no_evidence(tmp_path: Path) -> None:
    need("mosquitto")
    policy = tmp_path / "policy.yaml"
    # Segments of 2 s and a battery that warns after 3 s: evidence keeps coming before the kill.
    overrides = "camera: {segment_max_s: 2, battery_s: 200, low_battery_s: 197}"
    policy.write_text(POLICY.replace("camera: {}", overrides))
    state = tmp_path / "state"
    with secured_broker(tmp_path) as broker:
        observer = Probe(MqttBus(broker.endpoint("evidence")))
        await observer.start("evidence", ["bwc/cam-1/alert", "bwc/cam-1/recording", "bwc/cam-1/state",
                                          "bwc/cam-1/ack"])
        cad = MqttBus(broker.endpoint("cad-1"))
        await cad.connect("cad-1", clean_session=True)
        camera = _camera(broker, state, policy)
        restarted_camera: LiveCamera | None = None
        try:
            camera.wait_event("connected")
            await cad.publish("bwc/cam-1/event/cad-1", (START % time.time()).encode(), qos=1)
            first = await observer.wait_for(_on("state", b'"recording"'), timeout=10)
            incident_seen = await observer.wait_for(_on("recording", b'"segments":3'), timeout=15)
            await observer.wait_for(_on("alert", b"low_battery"), timeout=10)
            incident = _json(incident_seen)["incident"]
            await asyncio.sleep(0.3)  # between two rollovers
            camera.signal(signal.SIGKILL)
            camera.process.wait(timeout=10)
            killed_at = time.time()
            before = [json.loads(line) for f in audit_files(state) for line in f.read_text().splitlines()]

            await asyncio.sleep(3.0)
            mark = observer.mark()
            restarted_camera = _camera(broker, state, policy)
            back_at = time.time()
            restarted = await observer.wait_for(_on("alert", b'"restarted"'), since=mark, timeout=15)
            down, up = _json(restarted)["span"]
            assert killed_at - 1.5 <= down <= killed_at and back_at - 0.5 <= up <= back_at + 5
            state_msg = await observer.wait_for(_on("state", b'"recording"'), since=mark, timeout=10)
            assert _json(state_msg)["active"] == ["w-1"] and _json(first)["active"] == ["w-1"]

            await cad.publish("bwc/cam-1/event/cad-1", END, qos=1)
            ack = await observer.wait_for(_on("ack", b'"e-1"'), since=mark, timeout=10)
            assert _json(ack) == {"id": "e-1", "ok": True}
            await observer.wait_for(_on("state", b'"pre_buffer"'), since=mark, timeout=10)
            await asyncio.sleep(1.0)

            metas = [_json(m) for m in observer.received if m.topic == "bwc/cam-1/recording"]
            finals = [m for m in metas if m["final"]]
            assert len(finals) == 2, "the interrupted recording, then the resumed one"
            assert {m["incident"] for m in metas} == {incident}, "the resumed recording keeps the incident"
            assert finals[0]["end"] == pytest.approx(down, abs=0.01) and finals[1]["start"] >= up - 0.01
            alerts = [_json(m) for m in observer.received if m.topic == "bwc/cam-1/alert"]
            published = {(m["recording"], m["segments"], m["final"]) for m in metas}
            for entry in before:
                if entry["kind"] == "segment_close":
                    data = entry["data"]
                    assert (data["recording"], data["segment"], data["final"]) in published, entry
                if entry["kind"] == "alert":
                    wanted = {k: v for k, v in entry["data"].items() if v is not None}
                    assert any(wanted.items() <= a.items() for a in alerts), entry
            kinds = {e["kind"] for e in before}
            assert {"segment_close", "alert"} <= kinds
        finally:
            with contextlib.suppress(Exception):
                await cad.disconnect()
            await observer.stop()
            camera.stop()
            if restarted_camera is not None:
                restarted_camera.stop()
    verdict = verify_files(audit_files(state), camera="cam-1")
    assert verdict.ok, verdict.problem


@pytest.mark.req("R-FRESH", "R-AUTH")
async def test_after_kill_9_a_held_back_command_is_still_a_replay_and_a_forgery_still_refused(
    tmp_path: Path,
) -> None:
    """The signers' sequence numbers and who started what are part of the state that survives."""
    from signing import Sender, trust

    from sim.live.keys import trust_yaml

    need("mosquitto")
    dispatch, device = Sender("dispatch"), Sender("device-cam-1")
    trust_file = tmp_path / "trust.yaml"
    trust_file.write_text(trust_yaml(trust()))
    state = tmp_path / "state"
    with secured_broker(tmp_path) as broker:
        observer = Probe(MqttBus(broker.endpoint("evidence")))
        await observer.start("evidence", ["bwc/cam-1/ack", "bwc/cam-1/state", "bwc/cam-1/alert"])
        cad, holster = MqttBus(broker.endpoint("cad-1")), MqttBus(broker.endpoint("holster-17"))
        await cad.connect("cad-1", clean_session=True)
        await holster.connect("holster-17", clean_session=True)

        async def send(bus: MqttBus, user: str, payload: bytes, msg_id: str) -> dict[str, Any]:
            mark = observer.mark()
            await bus.publish(f"bwc/cam-1/event/{user}", payload, qos=1)
            reply = await observer.wait_for(_on("ack", b'"%s"' % msg_id.encode()), since=mark, timeout=15)
            return _json(reply)

        def camera() -> LiveCamera:
            return LiveCamera(broker.url, "cam-1", "bwc", "--username", "cam-1", "--password-file",
                              str(broker.password_file("cam-1")), "--mqtt-version", "5", "--trust",
                              str(trust_file), state_dir=state)

        first = camera()
        second: LiveCamera | None = None
        try:
            first.wait_event("connected")
            start = dispatch.command("s-1", "activity_start", activity="arrest_warrant", activity_id="w-1")
            assert (await send(cad, "cad-1", start, "s-1"))["ok"] is True
            held_back = dispatch.command("s-9", "activity_start", activity="patrol", activity_id="p-9")
            later = dispatch.command("s-2", "activity_start", activity="patrol", activity_id="p-2")
            assert (await send(cad, "cad-1", later, "s-2"))["ok"] is True
            first.signal(signal.SIGKILL)
            first.process.wait(timeout=10)

            second = camera()
            await observer.wait_for(_on("alert", b'"restarted"'), timeout=15)
            reply = await send(cad, "cad-1", held_back, "s-9")
            assert reply["ok"] is False and reply["error"].startswith("replayed"), reply
            forged = device.command("f-1", "activity_end", activity_id="w-1", claims="dispatch")
            reply = await send(holster, "holster-17", forged, "f-1")
            assert reply["ok"] is False and reply["error"].startswith("unauthorized"), reply
            end = dispatch.command("e-1", "activity_end", activity_id="w-1")
            assert (await send(cad, "cad-1", end, "e-1"))["ok"] is True
            state_msg = await observer.wait_for(_on("state", b'"active":["p-2"]'), timeout=10)
            assert _json(state_msg)["auth"] == "signed" and _json(state_msg)["state"] == "recording"
        finally:
            for bus in (cad, holster):
                with contextlib.suppress(Exception):
                    await bus.disconnect()
            await observer.stop()
            first.stop()
            if second is not None:
                second.stop()
