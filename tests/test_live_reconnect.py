"""Done-when check: the broker dies mid-warrant and comes back; nothing is lost.

A private Mosquitto (free loopback port, persistence saved on every change) serves a
``bwcsim live`` camera. The camera starts recording a search warrant; the broker is SIGKILLed and
restarted; while the camera is still backing off, the warrant's ``activity_end`` is published
(QoS 1). The broker keeps it in the camera's persistent session and delivers it when the camera
reconnects: the camera acks it, and the one recording it made covers the whole warrant — no QoS 1
trigger lost, no required second lost, no split.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from live_processes import LiveCamera, Subscriber, need, publish, restartable_mosquitto

pytestmark = [pytest.mark.live, pytest.mark.req("LIVE-RECONNECT", "R-TRIG", "R-NOSPLIT", "R-IDEM")]

START = '{"id":"s-1","type":"activity_start","activity":"search_warrant","activity_id":"sw-1"}'
END = '{"id":"e-1","type":"activity_end","activity_id":"sw-1"}'


def test_a_broker_restart_mid_warrant_loses_no_trigger_and_no_second(tmp_path: Path) -> None:
    need("mosquitto", "mosquitto_pub", "mosquitto_sub")
    prefix = f"r{uuid.uuid4().hex[:10]}"
    with restartable_mosquitto(tmp_path) as broker:
        port = broker.port
        observer_id = f"{prefix}-observer"
        sub = Subscriber(port, f"{prefix}/#", client_id=observer_id)
        # Reconnect delays of 1.5-3 s leave a wide window in which the camera is away.
        camera = LiveCamera(broker.url, "cam-1", prefix, "--backoff-initial", "3", "--backoff-max", "3")
        try:
            camera.wait_event("connected")
            sub.wait_for(f"{prefix}/cam-1/availability", lambda p: p == "online")
            started_at = time.monotonic()
            publish(port, f"{prefix}/cam-1/event", START)
            sub.wait_for(f"{prefix}/cam-1/state", lambda p: '"recording"' in p)
            deadline = time.monotonic() + 10
            while not broker.saved_after(time.time() - 0.5) and time.monotonic() < deadline:
                time.sleep(0.05)  # wait for the broker's own save of the sessions, not for a guess

            log_mark = camera.log.mark()
            broker.kill()
            camera.wait_event("connection_lost", since=log_mark)
            sub.stop()
            broker.start()
            publish(port, f"{prefix}/cam-1/event", END)
            ended_at = time.monotonic()
            assert "connected" not in camera.events(log_mark), "the end must be sent while the camera is away"

            sub = Subscriber(port, f"{prefix}/#", client_id=observer_id)  # its session kept what it missed
            reconnected = camera.wait_event("connected", since=log_mark, timeout=15)
            assert reconnected["session_present"] is True
            ack = json.loads(sub.wait_for(f"{prefix}/cam-1/ack", lambda p: '"e-1"' in p))
            assert ack == {"id": "e-1", "ok": True}
            meta = json.loads(sub.wait_for(f"{prefix}/cam-1/recording", lambda p: '"final":true' in p))
            assert meta["reasons"] == ["sw-1"] and meta["segments"] == 1 and meta["open"] is False
            # The camera's clock and the wall clock run alike: the recording spans at least the
            # time between the two publications.
            assert meta["end"] - meta["start"] >= (ended_at - started_at) - 0.05
            assert sub.wait_for(f"{prefix}/cam-1/state", lambda p: '"pre_buffer"' in p)
            recordings = {json.loads(p)["recording"] for p in sub.payloads(f"{prefix}/cam-1/recording")}
            assert recordings == {meta["recording"]}
        finally:
            sub.stop()
            camera.stop()
