"""The published schemas (``bwcsim schema``): real payloads of the reference controller validate
against the JSON Schema, bad events do not, and the AsyncAPI document hangs together."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from controller.codec import split_topic
from controller.node import CameraSetup, Publish
from controller.policy import load_policy
from controller.reference import make_node
from sim.spec.schema import asyncapi_document, json_schema, payload_schema

pytestmark = pytest.mark.req("SCHEMA")

KIND_TO_SCHEMA = {"ack": "Ack", "state": "StateReport", "alert": "Alert", "recording": "RecordingMeta",
                  "availability": "Availability"}


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(payload_schema(name))


def _scripted_publications() -> list[Publish]:
    """Everything the reference camera publishes along a shift that exercises every payload."""
    node = make_node(CameraSetup(camera_id="cam-1", policy=load_policy("dhs-2023"), teams=("sr-1",)))
    out = list(node.start(0.0))
    events: list[tuple[float, bytes]] = [
        (100.0, b'{"id":1,"type":"activity_start","activity":"arrest_warrant","activity_id":"w-1","ts":10}'),
        (150.0, b'{"id":2,"type":"button","action":"stop"}'),
        (160.0, b'{"id":3,"type":"deactivate","reason":"supervisor_order","actor":"sgt"}'),
        (170.0, b'{"id":4,"type":"reactivate"}'),
        (200.0, b'{"id":5,"type":"signal","source":"taser"}'),
        (300.0, b'{"id":6,"type":"activity_end","activity_id":"w-1"}'),
        (310.0, b"not json"),
        (320.0, b'{"id":7,"type":"dock"}'),
        (330.0, b'{"id":8,"type":"activity_start","activity":"patrol","activity_id":"p-1"}'),
        (340.0, b'{"id":9,"type":"undock"}'),
        (400.0, b'{"id":10,"type":"button","action":"start"}'),
    ]
    for now, payload in events:
        deadline = node.next_deadline()
        while deadline is not None and deadline <= now:
            out += node.on_timer(deadline)
            deadline = node.next_deadline()
        out += node.on_message("bwc/cam-1/event", payload, now)
    out += node.finish(500.0)
    return out


def test_the_json_schema_is_a_valid_2020_12_schema_naming_every_payload() -> None:
    doc = json_schema()
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for name in ("Event", "Ack", "StateReport", "Alert", "RecordingMeta", "Availability", "ActivityStart"):
        assert name in doc["$defs"] and doc["$defs"][name]["description"]
    for prop in doc["$defs"]["ActivityStart"]["properties"].values():
        assert prop.get("description"), "every event field is described"


def test_every_payload_the_reference_camera_publishes_validates() -> None:
    seen: Counter[str] = Counter()
    for pub in _scripted_publications():
        where = split_topic(pub.topic)
        assert where is not None
        kind = where[1]
        name = KIND_TO_SCHEMA[kind]
        value: Any = pub.payload.decode() if kind == "availability" else json.loads(pub.payload)
        errors = list(_validator(name).iter_errors(value))
        assert errors == [], f"{pub.topic} {pub.payload!r}: {errors[0].message}"
        # ... and it is not mistaken for another payload kind.
        seen[name] += 1
        if name == "Alert":
            seen[f"alert:{value['kind']}"] += 1
        if name == "Ack" and not value["ok"]:
            seen["nack"] += 1
    for needed in ("Ack", "nack", "StateReport", "RecordingMeta", "Availability",
                   "alert:late_trigger", "alert:missed_required_recording"):
        assert seen[needed] > 0, f"the script produced no {needed}"
    full = jsonschema.Draft202012Validator(json_schema())
    for pub in _scripted_publications():
        if not pub.topic.endswith("/availability"):
            full.validate(json.loads(pub.payload))


@pytest.mark.parametrize(
    ("event", "valid"),
    [
        ({"id": 1, "type": "dock"}, True),
        ({"id": "a", "type": "activity_start", "activity": "patrol", "activity_id": "p", "ts": 3}, True),
        ({"id": "a", "type": "button", "action": "start", "extra": "ignored"}, True),
        ({"type": "dock"}, False),
        ({"id": 1.5, "type": "dock"}, False),
        ({"id": 1, "type": "teleport"}, False),
        ({"id": 1, "type": "button", "action": "pause"}, False),
        ({"id": 1, "type": "activity_start", "activity": "patrol"}, False),
        ({"id": 1, "type": "signal", "source": 4}, False),
        (["id", 1], False),
    ],
)
def test_the_event_schema_agrees_with_the_decoder(event: Any, valid: bool) -> None:
    from controller.codec import DecodeError, decode_event

    assert _validator("Event").is_valid(event) is valid
    decoded = decode_event(json.dumps(event).encode())
    assert (not isinstance(decoded, DecodeError)) is valid


def test_bwcsim_schema_prints_the_schema_and_the_asyncapi_document() -> None:
    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "sim", "schema", *args], capture_output=True, text=True,
                              check=True, timeout=60)
        return done.stdout

    assert json.loads(run()) == json_schema()
    assert yaml.safe_load(run("--asyncapi")) == json.loads(run("--asyncapi", "--format", "json"))


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if isinstance(node, dict) and set(node) == {"$ref"}:  # a reference to a reference
        return _resolve(doc, node["$ref"])
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def test_the_asyncapi_document_is_structurally_sound() -> None:
    doc = asyncapi_document("bwc")
    assert doc["asyncapi"] == "3.0.0" and doc["info"]["title"] and doc["info"]["version"]
    for ref in _refs(doc):
        _resolve(doc, ref)  # every reference points at something
    channels = doc["channels"]
    addresses = {key: ch["address"] for key, ch in channels.items()}
    assert addresses["cameraEvent"] == "bwc/{camera}/event"
    assert addresses["teamEvent"] == "bwc/team/{team}/event"
    for key in ("state", "availability", "ack", "alert", "recording"):
        assert addresses[key] == f"bwc/{{camera}}/{key}"
    for channel in channels.values():
        placeholders = set(re.findall(r"{(\w+)}", channel["address"]))
        assert placeholders == set(channel["parameters"]), channel["address"]
    retained: dict[str, bool] = {}
    for op in doc["operations"].values():
        channel = _resolve(doc, op["channel"]["$ref"])
        assert op["action"] in ("send", "receive")
        for msg_ref in op["messages"]:
            assert msg_ref["$ref"].startswith(op["channel"]["$ref"] + "/messages/")
            message = _resolve(doc, msg_ref["$ref"])
            assert _resolve(doc, message["payload"]["$ref"]) is not None
        binding = op["bindings"]["mqtt"]
        assert binding["qos"] == 1
        # Events arrive on .../event or, naming their sender, on .../event/{sender}.
        kind = "event" if re.search(r"/event(/\{sender\})?$", channel["address"]) else \
            channel["address"].rsplit("/", 1)[1]
        retained[kind] = binding["retain"]
        assert op["action"] == ("receive" if kind == "event" else "send")
    assert retained == {"event": False, "state": True, "availability": True, "ack": False,
                        "alert": False, "recording": False, "audit": True}
    assert addresses["cameraEventBySender"] == "bwc/{camera}/event/{sender}"
    will = doc["servers"]["local"]["bindings"]["mqtt"]["lastWill"]
    assert will == {"topic": "bwc/{camera}/availability", "qos": 1, "message": "offline", "retain": True}
    for name, schema in doc["components"]["schemas"].items():
        jsonschema.Draft7Validator.check_schema(schema)  # the AsyncAPI schema dialect is draft-07 based
        assert "prefixItems" not in json.dumps(schema), name
    state_schema = doc["components"]["schemas"]["StateReport"]
    states = ["docked", "standby", "pre_buffer", "recording", "off"]
    assert state_schema["properties"]["state"]["enum"] == states
