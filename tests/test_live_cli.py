"""Done-when checks for ``bwcsim live``, driven from outside by the stock Mosquitto clients.

A ``bwcsim live`` subprocess runs the reference controller on the real broker of the
``mqtt_broker`` fixture; ``mosquitto_pub`` sends it events and ``mosquitto_sub`` watches what it
publishes, exactly as an integrator would. Skipped when the Mosquitto clients are not installed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from brokers import BrokerAddress
from live_processes import ROOT, LiveCamera, Subscriber, forget_session, need, publish

pytestmark = [pytest.mark.live, pytest.mark.req("LIVE-CLI")]

START = '{"id":"s-1","type":"activity_start","activity":"search_warrant","activity_id":"sw-1"}'


def _cleanup(broker: BrokerAddress, camera: LiveCamera, prefix: str) -> None:
    camera.stop()
    for kind in ("state", "availability"):
        publish(broker.port, f"{prefix}/cam-1/{kind}", None, retain=True)
    forget_session(broker.port, camera.client_id)


@pytest.mark.req("R-TRIG", "R-BAD", "R-IDEM")
def test_live_records_acks_nacks_and_its_will_fires_when_killed(mqtt_broker: BrokerAddress) -> None:
    need("mosquitto_pub", "mosquitto_sub")
    prefix = f"l{uuid.uuid4().hex[:10]}"
    sub = Subscriber(mqtt_broker.port, f"{prefix}/#")
    camera = LiveCamera(mqtt_broker.url, "cam-1", prefix)
    try:
        camera.wait_event("connected")
        assert sub.wait_for(f"{prefix}/cam-1/availability") == "online"
        port, event_topic, ack_topic = mqtt_broker.port, f"{prefix}/cam-1/event", f"{prefix}/cam-1/ack"

        publish(port, event_topic, START)
        state = json.loads(sub.wait_for(f"{prefix}/cam-1/state", lambda p: '"recording"' in p))
        assert state["active"] == ["sw-1"]
        assert json.loads(sub.wait_for(ack_topic, lambda p: '"s-1"' in p)) == {"id": "s-1", "ok": True}

        mark = sub.tail.mark()
        publish(port, event_topic, b"\xffnot even utf-8")
        nack = json.loads(sub.wait_for(ack_topic, since=mark))
        assert nack["id"] is None and nack["ok"] is False and nack["error"].startswith("invalid_utf8")

        publish(port, event_topic, '{"id":42,"type":"button","action":"stop"}')  # refused: R-STOP
        refused = json.loads(sub.wait_for(ack_topic, lambda p: '"id":42' in p, since=mark))
        assert refused == {"id": 42, "ok": False, "error": "required_activity"}
        publish(port, event_topic, START)  # a repeated id: the first reply again, nothing else
        assert json.loads(sub.wait_for(ack_topic, lambda p: '"s-1"' in p, since=mark))["ok"] is True
        assert sub.payloads(f"{prefix}/cam-1/state", mark) == []

        mark = sub.tail.mark()
        camera.process.send_signal(signal.SIGKILL)
        camera.process.wait(timeout=10)
        assert sub.wait_for(f"{prefix}/cam-1/availability", since=mark) == "offline"  # the Last Will
    finally:
        sub.stop()
        _cleanup(mqtt_broker, camera, prefix)


def test_sigterm_stops_cleanly_with_offline_and_json_logs(mqtt_broker: BrokerAddress) -> None:
    need("mosquitto_pub", "mosquitto_sub")
    prefix = f"l{uuid.uuid4().hex[:10]}"
    sub = Subscriber(mqtt_broker.port, f"{prefix}/#")
    camera = LiveCamera(mqtt_broker.url, "cam-1", prefix)
    try:
        camera.wait_event("connected")
        publish(mqtt_broker.port, f"{prefix}/cam-1/event", START)
        sub.wait_for(f"{prefix}/cam-1/state", lambda p: '"recording"' in p)
        mark = sub.tail.mark()
        camera.signal(signal.SIGTERM)
        assert camera.process.wait(timeout=10) == 0
        meta = json.loads(sub.wait_for(f"{prefix}/cam-1/recording", since=mark))
        assert meta["open"] is True and meta["reasons"] == ["sw-1"]
        assert sub.wait_for(f"{prefix}/cam-1/availability", since=mark) == "offline"
        assert camera.events()[0] == "starting" and camera.events()[-2:] == ["stopping", "stopped"]
        for line in camera.log.lines:
            record = json.loads(line)  # every log line is one JSON object
            assert {"ts", "level", "event"} <= set(record)
    finally:
        sub.stop()
        _cleanup(mqtt_broker, camera, prefix)


def test_the_password_comes_from_the_environment_and_is_never_logged(mqtt_broker: BrokerAddress) -> None:
    need("mosquitto_pub", "mosquitto_sub")
    if mqtt_broker.kind == "amqtt":
        pytest.skip("needs a broker that accepts any credentials (Mosquitto with anonymous access)")
    prefix = f"l{uuid.uuid4().hex[:10]}"
    secret = f"pw-{uuid.uuid4().hex}"
    camera = LiveCamera(mqtt_broker.url, "cam-1", prefix, "--username", "officer",
                        env={"BWCSIM_MQTT_PASSWORD": secret})
    try:
        started = camera.wait_event("starting")
        assert started["username"] == "officer"
        camera.wait_event("connected")
        camera.signal(signal.SIGTERM)
        camera.process.wait(timeout=10)
        assert secret not in "\n".join(camera.log.lines)
    finally:
        _cleanup(mqtt_broker, camera, prefix)


def _live(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", "live", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--broker", "mqtt://127.0.0.1:1", "--camera", "c", "--password", "x"], "No such option"),
        (["--broker", "http://127.0.0.1", "--camera", "c"], "--broker"),
        (["--broker", "mqtt://user:pw@127.0.0.1", "--camera", "c"], "no credentials in the broker URL"),
        (["--broker", "mqtt://127.0.0.1", "--camera", "a/b"], "--camera"),
        (["--broker", "mqtt://127.0.0.1", "--camera", "c", "--cafile", "/nonexistent/ca.pem"], "--cafile"),
        (["--broker", "mqtt://127.0.0.1", "--camera", "c", "--policy", "no-such-policy"], "no-such-policy"),
        (["--broker", "mqtt://127.0.0.1", "--camera", "c", "--controller", "nope:make"], "controller"),
        (["--broker", "mqtt://127.0.0.1", "--camera", "c", "--log-format", "xml"], "--log-format"),
    ],
)
def test_bad_options_exit_2_with_a_message_and_no_traceback(args: list[str], needle: str) -> None:
    done = _live(*args)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr


def test_a_password_file_needs_a_username(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    done = _live("--broker", "mqtt://127.0.0.1:1", "--camera", "c", "--password-file", str(secret))
    assert done.returncode == 2 and "--username" in done.stderr and "s3cret" not in done.stderr


def test_endpoint_credentials_and_tls_come_from_files_and_the_environment(tmp_path: Path) -> None:
    from sim.live.command import LiveOptions, build_endpoint

    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    plain = build_endpoint(LiveOptions(broker="mqtt://broker.example", camera="c"), environ={})
    assert (plain.host, plain.port, plain.tls, plain.password) == ("broker.example", 1883, None, None)
    tls = build_endpoint(LiveOptions(broker="mqtts://broker.example", camera="c", username="u", cafile=ca),
                         environ={"BWCSIM_MQTT_PASSWORD": "from-env"})
    assert tls.port == 8883 and tls.tls is not None and tls.tls.cafile == str(ca)
    assert tls.password == "from-env" and "from-env" not in repr(tls)
    options = LiveOptions(broker="mqtt://h:1884", camera="c", username="u", password_file=secret)
    filed = build_endpoint(options, environ={"BWCSIM_MQTT_PASSWORD": "ignored"})
    assert filed.port == 1884 and filed.password == "from-file"
