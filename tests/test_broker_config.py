"""``bwcsim broker-config``: the generated Mosquitto configuration lets every role do exactly its
job (R-ISOLATE).

The expected rights below are written out by hand, from the table in the spec and in
``sim/live/brokerconfig.py``, not computed by the generator: a private Mosquitto runs with the
generated files, every user tries every operation of the matrix over MQTT 5, and the broker's
reason codes must say yes exactly where the table does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from secured_broker import secured_broker

from controller.errors import BusRefused
from sim.live.brokerconfig import grants, load_deployment
from sim.live.bus import MqttBus

pytestmark = pytest.mark.req("R-ISOLATE")

ROOT = Path(__file__).resolve().parents[1]

PUBLISH = [
    "cam-1/event/{me}", "cam-2/event/{me}", "team/sr-1/event/{me}", "team/sr-2/event/{me}",
    "cam-1/event", "cam-1/event/cad-1", "cam-1/state", "cam-1/availability", "cam-1/alert", "cam-2/state",
]
SUBSCRIBE = [
    "cam-1/event", "cam-1/event/+", "team/sr-1/event/+", "team/sr-2/event", "cam-1/ack", "cam-2/ack",
    "+/alert", "cam-1/state", "#",
]
ALLOWED: dict[str, tuple[set[str], set[str]]] = {
    # user: (topics it may publish on, filters it may subscribe to)
    "cam-1": ({"cam-1/state", "cam-1/availability", "cam-1/alert"},
              {"cam-1/event", "cam-1/event/+", "team/sr-1/event/+", "cam-1/state"}),
    "cam-2": ({"cam-2/state"}, {"team/sr-2/event"}),
    "cad-1": ({"cam-1/event/{me}", "cam-2/event/{me}", "team/sr-1/event/{me}", "team/sr-2/event/{me}",
               "cam-1/event/cad-1"},
              {"cam-1/ack", "cam-2/ack", "+/alert", "cam-1/state"}),
    "sgt-ray": ({"cam-1/event/{me}", "team/sr-1/event/{me}"}, {"cam-1/ack", "cam-1/state"}),
    "off-17": ({"cam-1/event/{me}"}, {"cam-1/ack", "cam-1/state"}),
    "holster-17": ({"cam-1/event/{me}"}, {"cam-1/ack"}),
    "evidence": (set(), {"cam-1/ack", "cam-2/ack", "+/alert", "cam-1/state"}),
}


async def _try_everything(broker_endpoint: object, user: str, prefix: str, subscribe: bool
                          ) -> tuple[set[str], set[str]]:
    bus = MqttBus(broker_endpoint)  # type: ignore[arg-type]
    await bus.connect(user, clean_session=True)
    published, subscribed = set(), set()
    try:
        for template in PUBLISH:
            with contextlib.suppress(BusRefused):
                await bus.publish(f"{prefix}/{template.format(me=user)}", b"{}", qos=1)
                published.add(template)
        if subscribe:
            for topic_filter in SUBSCRIBE:
                with contextlib.suppress(BusRefused):
                    await bus.subscribe(f"{prefix}/{topic_filter}", 1)
                    subscribed.add(topic_filter)
    finally:
        await bus.disconnect()
    return published, subscribed


@pytest.mark.live
@pytest.mark.parametrize("backend", ["dynsec", "acl"])
async def test_each_role_can_do_exactly_what_it_should(tmp_path: Path, backend: str) -> None:
    with secured_broker(tmp_path, prefix="bwc", backend=backend) as broker:
        for user, (may_publish, may_subscribe) in ALLOWED.items():
            published, subscribed = await _try_everything(broker.endpoint(user), user, "bwc",
                                                          subscribe=backend == "dynsec")
            assert published == {t.format(me="{me}") for t in may_publish}, user
            if backend == "dynsec":
                assert subscribed == may_subscribe, user


@pytest.mark.live
async def test_with_an_acl_file_a_forbidden_subscription_is_granted_but_stays_silent(tmp_path: Path) -> None:
    """Why dynsec is the default: Mosquitto 2.0's ACL file checks reads at delivery only."""
    with secured_broker(tmp_path, backend="acl") as broker:
        reader, writer = MqttBus(broker.endpoint("cam-2")), MqttBus(broker.endpoint("cad-1"))
        await reader.connect("cam-2", clean_session=True)
        await writer.connect("cad-1", clean_session=True)
        try:
            await reader.subscribe("bwc/cam-1/event/+", 1)  # not cam-2's: granted all the same
            await reader.subscribe("bwc/cam-2/event/+", 1)
            await writer.publish("bwc/cam-1/event/cad-1", b"for cam-1", qos=1)
            await writer.publish("bwc/cam-2/event/cad-1", b"for cam-2", qos=1)
            async with asyncio.timeout(5):
                async for msg in reader.messages():
                    assert msg.payload == b"for cam-2", "cam-2 must never read cam-1's commands"
                    break
        finally:
            await reader.disconnect()
            await writer.disconnect()


@pytest.mark.live
async def test_wrong_passwords_and_anonymous_clients_are_refused(tmp_path: Path) -> None:
    with secured_broker(tmp_path) as broker:
        with pytest.raises(BusRefused):
            await MqttBus(broker.endpoint("cam-1", password="guess")).connect("cam-1", clean_session=True)
        endpoint = broker.endpoint("cam-1")
        anonymous = type(endpoint)(endpoint.host, endpoint.port, protocol="5", timeout_s=5.0)
        with pytest.raises(BusRefused):
            await MqttBus(anonymous).connect("anyone", clean_session=True)


def test_the_rules_name_a_role_for_every_right_and_nobody_writes_a_bare_event_topic(tmp_path: Path) -> None:
    source = tmp_path / "d.yaml"
    source.write_text((ROOT / "docs" / "examples" / "deployment.yaml").read_text())
    rights = grants(load_deployment(source))
    assert {g.rule.split(":")[0] for g in rights} == {"camera", "team", "role", "principal"}
    assert not [g for g in rights if g.access == "publish" and g.topic.endswith("/event")]
    cameras = {g.user for g in rights if g.rule.startswith("camera:")}
    status = [g for g in rights
              if g.access == "publish" and g.topic.rsplit("/", 1)[1] in ("state", "availability")]
    assert {g.user for g in status} == cameras
    assert all(g.topic == f"bwc/{g.user}/{g.topic.rsplit('/', 1)[1]}" for g in status)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize(("text", "where"), [
    ("cameras: [{id: cam/1}]\n", "1: cameras[0].id"),
    ("cameras: [{id: cam-1}]\nprincipals:\n  - {name: cam-1, role: dispatch}\n", "3: principals[0].name"),
    ("cameras: [{id: cam-1}]\nprincipals:\n  - {name: o, role: officer}\n", "3: principals[0].camera"),
    ("cameras: [{id: cam-1}]\nprincipals:\n  - {name: o, role: king}\n", "3: principals[0].role"),
    ("cameras: [{id: cam-1, teams: [a]}]\nprincipals:\n  - {name: d, role: dispatch, teams: [b]}\n",
     "3: principals[0].teams[0]"),
])
def test_a_bad_deployment_file_is_one_line_naming_file_line_and_field(tmp_path: Path, text: str,
                                                                       where: str) -> None:
    source = tmp_path / "deployment.yaml"
    source.write_text(text)
    result = _cli("broker-config", str(source), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stdout == ""
    assert f"deployment.yaml:{where}" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_generating_again_keeps_the_passwords_and_writes_no_secret_anyone_can_read(tmp_path: Path) -> None:
    out = tmp_path / "out"
    example = ROOT / "docs" / "examples" / "deployment.yaml"
    for backend in ("dynsec", "acl"):
        first = _cli("broker-config", str(example), "--out", str(out), "--backend", backend)
        assert first.returncode == 0, first.stderr
    password = (out / "credentials" / "cam-1").read_text()
    again = _cli("broker-config", str(example), "--out", str(out))
    assert again.returncode == 0 and (out / "credentials" / "cam-1").read_text() == password
    for secret in [*(out / "credentials").iterdir(), out / "dynamic-security.json", out / "passwd"]:
        assert secret.stat().st_mode & 0o077 == 0, secret
    assert password.strip() not in (out / "dynamic-security.json").read_text()
    conf = (out / "mosquitto.conf").read_text()
    for setting in ("use_username_as_clientid true", "allow_anonymous false", "persistence true",
                    "max_queued_messages 100000", f"persistence_location {out.resolve() / 'data'}/"):
        assert setting in conf
    doc = json.loads((out / "dynamic-security.json").read_text())
    assert {c["username"]: c["clientid"] for c in doc["clients"]}["cam-1"] == "cam-1"


@pytest.mark.live
async def test_nobody_takes_over_the_cameras_session(tmp_path: Path) -> None:
    """Another user connecting with the camera's client id gets its own session, not the camera's."""
    with secured_broker(tmp_path, prefix=f"t{uuid.uuid4().hex[:6]}") as broker:
        px = broker.deployment.prefix
        camera = MqttBus(broker.endpoint("cam-1"))
        await camera.connect("cam-1", clean_session=False)
        await camera.subscribe(f"{px}/cam-1/event/+", 1)
        intruder = MqttBus(broker.endpoint("evidence"))
        with contextlib.suppress(BusRefused):  # refused outright, or connected as itself
            await intruder.connect("cam-1", clean_session=False)
        dispatcher = MqttBus(broker.endpoint("cad-1"))
        await dispatcher.connect("cad-1", clean_session=True)
        try:
            await dispatcher.publish(f"{px}/cam-1/event/cad-1", b"trigger", qos=1)
            async with asyncio.timeout(5):
                async for msg in camera.messages():
                    assert msg.payload == b"trigger"
                    break
            assert camera.is_connected
        finally:
            for bus in (dispatcher, intruder, camera):
                await bus.disconnect()
