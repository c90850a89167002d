"""The node protocol itself (SPEC §15): its messages, the child-side dispatcher, the published
schema and the worked transcript of ``docs/node-protocol.md``."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import msgspec
import pytest

from controller.audit import AuditTrail, canonical, entry_hash, genesis, verify
from controller.node import CameraSetup, Publish
from controller.params import CameraParams
from controller.policy import load_policy
from controller.reference import make_node
from controller.wire import (
    PROTOCOL,
    Audit,
    AuditAnswer,
    Bye,
    Close,
    Deadline,
    DeadlineAnswer,
    Deliver,
    DoneAnswer,
    ErrorAnswer,
    Finish,
    Hello,
    HelloAnswer,
    NodeServer,
    Request,
    SetupAnswer,
    Start,
    StepAnswer,
    Timer,
    WireError,
    camera_setup,
    decode_answer,
    decode_request,
    encode,
    policy_doc,
    policy_from_doc,
    setup_request,
)
from sim.nodes.stdio import ExecFactory
from sim.spec.node_protocol import node_protocol_schema, transcript
from sim.world.replay import replay
from sim.world.scenario import parse_scenario

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "node-protocol.md"

pytestmark = pytest.mark.req("R-NODE")


def _setup(**changes: Any) -> CameraSetup:
    values: dict[str, Any] = {"camera_id": "cam-1", "policy": load_policy("dhs-2023"), **changes}
    return CameraSetup(**values)


# ------------------------------------------------------------------ messages


def test_every_request_round_trips_through_its_line() -> None:
    requests: list[Request] = [
        Hello(seq=0, protocol=PROTOCOL, host="bwcsim"),
        Hello(seq=0, protocol=PROTOCOL, host="bwcsim", features=["audit"]),
        setup_request(1, 7, _setup(teams=("t-1", "t-2"), initial="docked", prefix="agency/bwc",
                                   params=CameraParams(prebuffer_s=120.0))),
        Start(seq=2, node=7, now=0.0),
        Deliver(seq=3, node=7, now=1.5, topic="bwc/cam-1/event", payload=bytes(range(256))),
        Timer(seq=4, node=7, now=5.0),
        Deadline(seq=5, node=7),
        Finish(seq=6, node=7, now=9.0),
        Audit(seq=6, node=7),
        Audit(seq=6, node=7, first=3),
        Close(seq=7, node=7),
        Bye(seq=8),
    ]
    for req in requests:
        line = encode(req)
        assert line.endswith(b"\n") and line.count(b"\n") == 1  # one message, one line
        assert decode_request(line) == req


def test_payloads_travel_as_base64_so_any_bytes_arrive_intact() -> None:
    payload = b"\xff\x00\n{not json}"
    line = encode(Deliver(seq=1, node=1, now=0.0, topic="t", payload=payload))
    assert b'"payload":"/wAKe25vdCBqc29ufQ=="' in line
    decoded = decode_request(line)
    assert isinstance(decoded, Deliver) and decoded.payload == payload


def test_the_setup_carries_the_whole_camera_and_its_resolved_policy() -> None:
    policy = load_policy(str(ROOT / "scenarios" / "policies" / "cbp-like.yaml"))
    setup = _setup(policy=policy, params=policy.apply(CameraParams()), teams=("sr-1",),
                   initial="standby", prefix="x")
    req = setup_request(3, 1, setup)
    assert req.policy.activities["enforcement_encounter"].post_s == 120.0
    assert req.policy.activities["patrol"].post_s == 60.0  # the policy default, filled in
    assert req.params.prebuffer_s == 120.0  # the policy's camera override, applied
    back = camera_setup(decode_request(encode(req)))  # type: ignore[arg-type]
    assert (back.camera_id, back.teams, back.initial, back.prefix, back.params) == (
        "cam-1", ("sr-1",), "standby", "x", setup.params)
    again = policy_from_doc(policy_doc(back.policy))
    assert (again.activities, again.post_s, again.signals, again.deactivation_reasons) == (
        policy.activities, policy.post_s, policy.signals, policy.deactivation_reasons)


@pytest.mark.parametrize(("op", "line", "expected"), [
    ("hello", b'{"seq":0,"protocol":1,"name":"c","max_cameras":null}', HelloAnswer),
    ("hello", b'{"seq":0,"protocol":1,"name":"c","features":["audit"]}', HelloAnswer),
    ("audit", b'{"seq":6,"entries":[[0,1.0,"power_on",{"state":"docked"},"a","b"]],"head":"b"}',
     AuditAnswer),
    ("setup", b'{"seq":1,"subscriptions":["a"]}', SetupAnswer),
    ("deliver", b'{"seq":2,"publish":[{"topic":"t","payload":"eA==","retain":false,"qos":1}],'
                b'"deadline":3}', StepAnswer),
    ("deadline", b'{"seq":3,"deadline":null}', DeadlineAnswer),
    ("bye", b'{"seq":4}', DoneAnswer),
    ("timer", b'{"seq":5,"error":"no node 9"}', ErrorAnswer),
])
def test_answers_decode_to_their_type(op: str, line: bytes, expected: type) -> None:
    assert isinstance(decode_answer(op, line), expected)


@pytest.mark.parametrize(("op", "line", "words"), [
    ("deliver", b"DEBUG hello", "malformed"),
    ("deliver", b'{"seq":2,"publish":[]}', "missing required field `deadline`"),
    ("deliver", b'{"seq":2,"publish":[],"deadline":null,"deadlin":1}', "unknown field `deadlin`"),
    ("deliver", b'{"seq":2,"publish":[{"topic":"t","payload":"not base64!"}],"deadline":null}',
     "base64"),
    ("hello", b'{"seq":0}', "missing required field `protocol`"),
    ("audit", b'{"seq":6,"entries":[[0,1.0,"power_on"]],"head":"b"}',
     "Expected `array` of at least length 6"),
])
def test_a_line_that_is_not_the_expected_answer_is_a_wire_error(op: str, line: bytes, words: str) -> None:
    with pytest.raises(WireError, match=re.escape(words)):
        decode_answer(op, line)


# ------------------------------------------------------------------ the child side


def _ask(server: NodeServer, req: Any) -> Any:
    return msgspec.json.decode(server.answer(encode(req)))


def test_the_server_drives_a_node_exactly_as_the_node_contract_says() -> None:
    server = NodeServer(make_node, "test")
    local = make_node(_setup(initial="standby"))
    assert _ask(server, Hello(seq=0, protocol=PROTOCOL, host="t")) == {
        "seq": 0, "protocol": PROTOCOL, "name": "test", "max_cameras": None}
    assert _ask(server, setup_request(1, 4, _setup(initial="standby"))) == {
        "seq": 1, "subscriptions": local.subscriptions()}
    started = decode_answer("start", server.answer(encode(Start(seq=2, node=4, now=0.0))))
    assert isinstance(started, StepAnswer)
    assert started.publish == local.start(0.0) and started.deadline == local.next_deadline() == 5.0
    timer = decode_answer("timer", server.answer(encode(Timer(seq=3, node=4, now=5.0))))
    assert isinstance(timer, StepAnswer) and timer.publish == local.on_timer(5.0)
    assert _ask(server, Deadline(seq=4, node=4)) == {"seq": 4, "deadline": local.next_deadline()}
    finished = decode_answer("finish", server.answer(encode(Finish(seq=5, node=4, now=9.0))))
    assert isinstance(finished, StepAnswer) and finished.deadline is None
    assert "no node 4" in _ask(server, Timer(seq=6, node=4, now=10.0))["error"]  # released
    assert _ask(server, Bye(seq=7)) == {"seq": 7} and server.done


def test_the_server_answers_what_it_cannot_serve_with_an_error() -> None:
    server = NodeServer(make_node, "test", max_cameras=1)
    assert "unsupported protocol 2" in _ask(server, Hello(seq=0, protocol=2, host="t"))["error"]
    assert _ask(server, setup_request(1, 1, _setup()))["seq"] == 1
    assert "already exists" in _ask(server, setup_request(2, 1, _setup()))["error"]
    assert "at most 1 camera" in _ask(server, setup_request(3, 2, _setup()))["error"]
    assert _ask(server, Close(seq=4, node=1)) == {"seq": 4}
    assert _ask(server, setup_request(5, 2, _setup()))["seq"] == 5  # room again
    bad = msgspec.json.decode(server.answer(b'{"seq":9,"op":"warp"}'))
    assert bad["seq"] == 9 and "bad request" in bad["error"]
    assert msgspec.json.decode(server.answer(b"garbage"))["seq"] == -1


def test_features_are_agreed_in_the_handshake_and_a_host_that_offers_none_never_sees_them() -> None:
    hello = Hello(seq=0, protocol=PROTOCOL, host="t")
    assert "features" not in _ask(NodeServer(make_node, "t"), hello)  # a host of before features
    offered = msgspec.structs.replace(hello, features=["audit", "telepathy"])
    assert _ask(NodeServer(make_node, "t"), offered)["features"] == ["audit"]
    declining = NodeServer(make_node, "t", features=())
    assert _ask(declining, offered)["features"] == []
    assert _ask(declining, setup_request(1, 1, _setup()))["seq"] == 1
    assert "not agreed" in _ask(declining, Audit(seq=2, node=1))["error"]


def test_with_audit_a_finished_node_keeps_its_log_until_close() -> None:
    server = NodeServer(make_node, "test")
    _ask(server, Hello(seq=0, protocol=PROTOCOL, host="t", features=["audit"]))
    _ask(server, setup_request(1, 4, _setup(initial="standby")))
    local = make_node(_setup(initial="standby"))
    for reply, mine in ((_ask(server, Start(seq=2, node=4, now=0.0)), local.start(0.0)),
                        (_ask(server, Finish(seq=3, node=4, now=9.0)), local.finish(9.0))):
        assert len(reply["publish"]) == len(mine)
    answer = decode_answer("audit", server.answer(encode(Audit(seq=4, node=4))))
    assert isinstance(answer, AuditAnswer)
    assert AuditTrail("cam-1", tuple(answer.entries), answer.head) == local.audit_trail()  # type: ignore[attr-defined]
    assert [e.kind for e in answer.entries] == ["power_on", "state"]  # standby, booted at 5
    tail = decode_answer("audit", server.answer(encode(Audit(seq=5, node=4, first=1))))
    assert isinstance(tail, AuditAnswer) and tail.entries == answer.entries[1:]
    assert "no node 4" in _ask(server, Timer(seq=6, node=4, now=10.0))["error"]  # finished
    assert "already exists" in _ask(server, setup_request(7, 4, _setup()))["error"]
    assert _ask(server, Close(seq=8, node=4)) == {"seq": 8}
    assert "no node 4" in _ask(server, Audit(seq=9, node=4))["error"]  # closed: gone


def test_a_node_that_raises_is_reported_as_an_error_answer() -> None:
    class Exploding:
        camera_id = "cam-1"

        def subscriptions(self) -> list[str]:
            return []

        def start(self, now: float) -> list[Publish]:
            raise ZeroDivisionError("boom")

    server = NodeServer(lambda setup: Exploding(), "test")  # type: ignore[arg-type,return-value]
    _ask(server, setup_request(0, 1, _setup()))
    assert _ask(server, Start(seq=1, node=1, now=0.0)) == {"seq": 1, "error": "ZeroDivisionError: boom"}


# ------------------------------------------------------------------ schema and transcript


def _transcript_block(name: str = "transcript") -> str:
    text = DOC.read_text("utf-8")
    block = text.split(f"<!-- {name}:begin -->", 1)[1].split(f"<!-- {name}:end -->", 1)[0]
    return block.strip().removeprefix("```text").removesuffix("```").strip("\n") + "\n"


def _frames(block: str) -> list[tuple[str, bytes]]:
    return [(line[0], line[2:].encode()) for line in block.splitlines() if line[:1] in ("→", "←")]


def test_the_transcript_is_what_the_reference_answers() -> None:
    frames = _frames(_transcript_block())
    assert [d for d, _ in frames] == ["→", "←"] * (len(frames) // 2)
    server = NodeServer(make_node, "bwcsim reference")
    for (_, request), (_, answer) in zip(frames[::2], frames[1::2], strict=True):
        assert server.answer(request) == answer + b"\n", request
    assert transcript(frames) == _transcript_block(), (
        "the decoded payload lines of the transcript are stale: regenerate them with "
        "sim.spec.node_protocol.transcript()")


def test_the_audit_transcript_continues_the_conversation_and_its_hashes_are_as_documented() -> None:
    server = NodeServer(make_node, "bwcsim reference")
    for _, request in _frames(_transcript_block())[::2][:-1]:  # the conversation up to its bye
        server.answer(request)
    frames = _frames(_transcript_block("audit-transcript"))
    for (_, request), (_, answer) in zip(frames[::2], frames[1::2], strict=True):
        assert server.answer(request) == answer + b"\n", request
    assert transcript(frames) == _transcript_block("audit-transcript")
    shown = decode_answer("audit", frames[1][1])
    assert isinstance(shown, AuditAnswer) and shown.entries[-1].hash == shown.head
    for before, entry in zip(shown.entries, shown.entries[1:], strict=False):
        assert entry.prev == before.hash
    for e in shown.entries:
        assert entry_hash(e.prev, e.seq, e.at, e.kind, e.data) == e.hash
    # The canonical text the document shows for entry 7 is what its hash covers.
    last = shown.entries[-1]
    text = DOC.read_text("utf-8").split("Entry 7 above hashes", 1)[1].split("```text\n", 1)[1]
    assert text.split("\n", 1)[0].encode() == canonical(last.prev, last.seq, last.at, last.kind, last.data)
    # ... and the whole log, read the same way from its start, verifies from the camera's
    # genesis value up to the same head.
    again = NodeServer(make_node, "bwcsim reference")
    for _, request in _frames(_transcript_block())[::2][:-1]:
        again.answer(request)
    whole = decode_answer("audit", again.answer(encode(Audit(seq=7, node=1))))
    assert isinstance(whole, AuditAnswer) and whole.entries[0].prev == genesis("cam-1")
    assert verify("cam-1", whole.entries, head=whole.head) is None
    assert whole.entries[5:] == shown.entries and whole.head == shown.head


def test_the_transcript_is_what_the_host_sends_for_its_scenario(tmp_path: Path) -> None:
    text = DOC.read_text("utf-8")
    scenario_yaml = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    captured = tmp_path / "requests.jsonl"
    factory = ExecFactory(f"sh -c 'tee {captured} | {sys.executable} -m controller.serve'")
    replay(parse_scenario(scenario_yaml, "transcript.yaml"), factory)
    factory.close()  # the bye
    sent = captured.read_bytes().splitlines()
    assert sent == [line for d, line in _frames(_transcript_block()) if d == "→"]


def test_every_transcript_line_validates_against_the_published_schema() -> None:
    schema = node_protocol_schema()
    validator = jsonschema.Draft202012Validator(schema)
    requests = jsonschema.Draft202012Validator({**schema, "anyOf": [{"$ref": "#/$defs/Request"}]})
    for direction, line in _frames(_transcript_block()):
        doc = msgspec.json.decode(line)
        assert (requests if direction == "→" else validator).is_valid(doc), line


def test_the_schema_rejects_what_the_host_rejects() -> None:
    validator = jsonschema.Draft202012Validator(
        {**node_protocol_schema(), "anyOf": [{"$ref": "#/$defs/StepAnswer"}]})
    assert validator.is_valid({"seq": 1, "publish": [], "deadline": None})
    assert not validator.is_valid({"seq": 1, "publish": []})  # the deadline is required
    assert not validator.is_valid({"seq": 1, "publish": [], "deadline": 1, "deadlin": 2})
