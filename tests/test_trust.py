"""Who may command the camera (R-AUTH) and how fresh a command must be (R-FRESH), SPEC §14.

Each test drives a reference node provisioned with a trust file of test principals and checks
the NACK a command gets, that a refused one changes nothing (state, recordings, audit apart
from the refusal, which names the principal the message claimed), and that what is allowed
still works.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from signing import (
    CAM,
    DHS,
    EVENT,
    TEAM,
    TEAM_EVENT,
    Sender,
    ack,
    envelope,
    signed_node,
    states,
    trust,
)

from controller.errors import ScenarioError
from controller.messages import ActivityStart
from controller.policy import parse_policy
from controller.principals import load_trust, parse_trust
from controller.trust import GateState
from controller.yamlsrc import load_yaml

dispatch, supervisor = Sender("dispatch"), Sender("supervisor")


def _start(node: object, t: float = 10.0, aid: str = "w-1", who: Sender | None = None) -> None:
    from controller.reference import ReferenceNode

    assert isinstance(node, ReferenceNode)
    sender = who or Sender("dispatch")
    out = node.on_message(EVENT, sender.command(f"start-{aid}", "activity_start",
                                                activity="arrest_warrant", activity_id=aid), t)
    assert ack(out).ok, ack(out)


@pytest.mark.req("R-AUTH")
def test_a_signed_command_from_an_entitled_principal_is_obeyed_and_the_state_says_signed() -> None:
    node = signed_node()
    first = node.camera.snapshot()
    out = node.on_message(EVENT, Sender("dispatch").command(
        "m-1", "activity_start", activity="arrest_warrant", activity_id="w-1"), 10.0)
    assert ack(out).ok
    assert node.camera.snapshot()["state"] == "recording" != first["state"]
    assert [s.auth for s in states(out)] == ["signed"]
    entry = node.camera.audit.entries[-1]
    assert (entry.kind, entry.data["by"]) == ("accepted", "dispatch")


@pytest.mark.req("R-AUTH")
def test_an_unsigned_camera_reports_auth_none() -> None:
    node = signed_node(signed=False)
    out = node.on_message(EVENT, json.dumps({"id": 1, "type": "dock"}).encode(), 5.0)
    assert ack(out).ok
    assert [s.auth for s in states(out)] == ["none"]


def _refused_without_effect(node: object, topic: str, payload: bytes, t: float, error: str,
                            claimed: str | None) -> None:
    from controller.reference import ReferenceNode

    assert isinstance(node, ReferenceNode)
    node.on_timer(t)  # battery and storage moved on to t: what the message may not change
    before = node.camera.snapshot()
    n_audit = len(node.camera.audit)
    out = node.on_message(topic, payload, t)
    reply = ack(out)
    assert not reply.ok and reply.error is not None and reply.error.startswith(error), reply
    assert [p.topic.rsplit("/", 1)[1] for p in out] == ["ack"], "a refusal publishes only its NACK"
    assert node.camera.snapshot() == before
    new = node.camera.audit.entries[n_audit:]
    assert [e.kind for e in new] == ["refused"]
    assert new[0].data.get("by") == claimed


@pytest.mark.req("R-AUTH")
@pytest.mark.parametrize(("payload", "error", "claimed"), [
    (json.dumps({"id": "x", "type": "activity_end", "activity_id": "w-1"}).encode(),
     "unauthorized: unsigned activity_end", None),
    (json.dumps({"id": "x", "type": "deactivate", "reason": "supervisor_order", "actor": ""}).encode(),
     "unauthorized: unsigned deactivate", None),
    (Sender("intruder").command("x", "activity_end", activity_id="w-1"),
     "unauthorized: unknown principal 'intruder'", "intruder"),
    (Sender("intruder").command("x", "activity_end", activity_id="w-1", claims="dispatch"),
     "unauthorized: bad signature for 'dispatch'", "dispatch"),
    (Sender("officer-cam-1").command("x", "activity_end", activity_id="w-1"),
     "unauthorized: role officer may not send activity_end", "officer-cam-1"),
    (Sender("officer-cam-1").command("x", "deactivate", reason="supervisor_order", actor="officer-cam-1"),
     "unauthorized: role officer may not send deactivate", "officer-cam-1"),
    (Sender("officer-cam-2").command("x", "button", action="stop"),
     "unauthorized: officer-cam-2 may command only its own camera (cam-2)", "officer-cam-2"),
    (Sender("supervisor").command("x", "deactivate", reason="supervisor_order", actor="sgt-x"),
     "unauthorized: actor 'sgt-x' is not the signer 'supervisor'", "supervisor"),
    (Sender("dispatch").command("x", "activity_end", to="cam-2", activity_id="w-1"),
     "unauthorized: signed for 'cam-2', delivered to 'cam-1'", "dispatch"),
    (Sender("dispatch").signed(msgspec.json.encode({"id": "x", "type": "activity_end",
                                                    "activity_id": "w-1", "to": CAM})),
     "unauthorized: no seq", "dispatch"),
])
def test_a_command_without_the_right_is_refused_audited_with_its_claim_and_changes_nothing(
    payload: bytes, error: str, claimed: str | None
) -> None:
    node = signed_node()
    _start(node)
    _refused_without_effect(node, EVENT, payload, 20.0, error, claimed)


@pytest.mark.req("R-AUTH")
def test_a_tampered_body_or_signature_does_not_verify() -> None:
    node = signed_node()
    _start(node)
    good = envelope(Sender("dispatch").command("end", "activity_end", activity_id="w-1"))
    tampered = {**good, "body": good["body"].replace("w-1", "w-2")}
    _refused_without_effect(node, EVENT, json.dumps(tampered).encode(), 20.0,
                            "unauthorized: bad signature", "dispatch")
    sig = good["sig"]
    flipped = {**good, "sig": ("A" if sig[0] != "A" else "B") + sig[1:]}
    _refused_without_effect(node, EVENT, json.dumps(flipped).encode(), 21.0,
                            "unauthorized: bad signature", "dispatch")
    # The exact bytes are signed: the same event re-encoded with other spacing is another body.
    spaced = {**good, "body": json.dumps(json.loads(good["body"]), indent=1)}
    _refused_without_effect(node, EVENT, json.dumps(spaced).encode(), 22.0,
                            "unauthorized: bad signature", "dispatch")


@pytest.mark.req("R-AUTH")
def test_officers_and_devices_command_their_own_camera_only_and_not_through_the_team() -> None:
    node = signed_node()
    officer = Sender("officer-cam-1")
    assert ack(node.on_message(EVENT, officer.command("b-1", "button", action="start"), 5.0)).ok
    team_press = officer.command("b-2", "button", to=f"team/{TEAM}", action="stop")
    _refused_without_effect(node, TEAM_EVENT, team_press, 6.0,
                            "unauthorized: officer-cam-1 may command only its own camera", "officer-cam-1")
    device = Sender("device-cam-1")
    assert ack(node.on_message(EVENT, device.command("d-1", "dock"), 7.0)).ok
    assert node.camera.snapshot()["state"] == "docked"


@pytest.mark.req("R-FRESH", "R-AUTH")
def test_only_the_starter_or_dispatch_ends_an_activity() -> None:
    # A policy in which officers may start and end activities themselves.
    policy = parse_policy(load_yaml("""
name: officers-start-patrols
activities: {patrol: {kind: required}}
roles:
  dispatch: {events: [activity_start, activity_end]}
  officer: {events: [activity_start, activity_end, button]}
""", "<test>"))
    node = signed_node(policy, trust_file=trust({
        "dispatch": ("dispatch", None), "dispatch-2": ("dispatch", None),
        "officer-cam-1": ("officer", CAM), "officer-cam-2": ("officer", "cam-2")}))
    own, other = Sender("officer-cam-1"), Sender("officer-cam-2")
    for aid, who in (("p-1", own), ("p-2", dispatch_a := Sender("dispatch"))):
        assert ack(node.on_message(EVENT, who.command(f"s-{aid}", "activity_start",
                                                      activity="patrol", activity_id=aid), 1.0)).ok
    _refused_without_effect(node, EVENT, other.command("e-1", "activity_end", activity_id="p-1"), 2.0,
                            "unauthorized: only officer-cam-1 (who started it) or dispatch", "officer-cam-2")
    _refused_without_effect(node, EVENT, own.command("e-2", "activity_end", activity_id="p-2"), 3.0,
                            "unauthorized: only dispatch (who started it) or dispatch", "officer-cam-1")
    assert ack(node.on_message(EVENT, own.command("e-3", "activity_end", activity_id="p-1"), 4.0)).ok
    # Another dispatcher may end dispatch's activity: dispatch ends anything.
    assert ack(node.on_message(EVENT, Sender("dispatch-2").command(
        "e-4", "activity_end", activity_id="p-2"), 5.0)).ok
    assert node.camera.snapshot()["active"] == [] and dispatch_a.seq == 1


@pytest.mark.req("R-FRESH")
def test_a_sequence_number_at_or_below_the_last_is_replayed_whatever_its_id() -> None:
    node = signed_node()
    boss = Sender("supervisor")
    _start(node)
    assert ack(node.on_message(EVENT, boss.command("d-1", "deactivate", reason="supervisor_order",
                                                   actor="supervisor"), 20.0)).ok
    assert ack(node.on_message(EVENT, boss.command("r-1", "reactivate"), 30.0)).ok
    # The same number under a fresh id (a properly signed resend), and an older number.
    for payload in (boss.command("d-2", "deactivate", seq=2, reason="supervisor_order", actor="supervisor"),
                    boss.command("d-3", "deactivate", seq=1, reason="supervisor_order", actor="supervisor")):
        _refused_without_effect(node, EVENT, payload, 40.0, "replayed: seq", "supervisor")
    # Numbers may skip; they must only rise.
    assert ack(node.on_message(EVENT, boss.command("r-2", "reactivate", seq=50), 50.0)).ok
    assert node.gate.state.last_seq["supervisor"] == 50


@pytest.mark.req("R-FRESH", "R-IDEM")
def test_a_redelivery_gets_its_first_reply_not_a_replay_nack() -> None:
    node = signed_node()
    payload = Sender("dispatch").command("m-1", "activity_start", activity="patrol", activity_id="p-1")
    first = ack(node.on_message(EVENT, payload, 10.0))
    n = len(node.camera.audit)
    again = ack(node.on_message(EVENT, payload, 10.5))
    assert first == again and first.ok
    assert [e.kind for e in node.camera.audit.entries[n:]] == ["duplicate"]


@pytest.mark.req("R-AUTH", "R-IDEM")
def test_nobody_can_pre_empt_a_principals_message_id() -> None:
    node = signed_node()
    squat = json.dumps({"id": "m-1", "type": "activity_start", "activity": "patrol",
                        "activity_id": "p-0"}).encode()
    assert not ack(node.on_message(EVENT, squat, 5.0)).ok
    forged = Sender("intruder").command("m-1", "activity_start", activity="patrol", activity_id="p-0",
                                        claims="dispatch")
    assert not ack(node.on_message(EVENT, forged, 6.0)).ok
    real = Sender("dispatch").command("m-1", "activity_start", activity="patrol", activity_id="p-1")
    assert ack(node.on_message(EVENT, real, 7.0)).ok
    assert node.camera.snapshot()["active"] == ["p-1"]


@pytest.mark.req("R-FRESH")
@pytest.mark.parametrize("signed", [True, False])
def test_a_ts_beyond_max_skew_is_stale_and_a_past_ts_is_accepted(signed: bool) -> None:
    node = signed_node(signed=signed)
    boss = Sender("dispatch")

    def send(msg_id: str, ts: float, t: float) -> bytes:
        if signed:
            return boss.command(msg_id, "activity_start", activity="patrol", activity_id=msg_id, ts=ts)
        return json.dumps({"id": msg_id, "type": "activity_start", "activity": "patrol",
                           "activity_id": msg_id, "ts": ts}).encode()

    claimed = "dispatch" if signed else None
    for i, ts in enumerate((1e300, 1000.0 + 365 * 86400, 1000.0 + 300.001)):
        _refused_without_effect(node, EVENT, send(f"s-{i}", ts, 1000.0), 1000.0, "stale: ts", claimed)
    assert ack(node.on_message(EVENT, send("ok-1", 1300.0, 1000.0), 1000.0)).ok  # exactly max_skew_s
    assert ack(node.on_message(EVENT, send("ok-2", -5.0, 1001.0), 1001.0)).ok  # the past: R-LATE's
    assert node.camera.snapshot()["active"] == ["ok-1", "ok-2"]


@pytest.mark.req("R-FRESH", "R-IDEM")
@pytest.mark.parametrize("signed", [True, False])
def test_a_redelivery_gets_its_first_reply_even_where_it_would_now_be_stale(signed: bool) -> None:
    """The duplicate table answers before freshness is judged: a driver whose clock is behind
    at the redelivery (ts now beyond max_skew_s) still gets the first reply, and a refused
    stale message is refused again, with no effect either way."""
    node = signed_node(signed=signed)
    boss = Sender("dispatch")

    def send(msg_id: str, ts: float) -> bytes:
        if signed:
            return boss.command(msg_id, "activity_start", activity="patrol", activity_id=msg_id,
                                ts=ts)
        return json.dumps({"id": msg_id, "type": "activity_start", "activity": "patrol",
                           "activity_id": msg_id, "ts": ts}).encode()

    payload = send("r-1", 1200.0)
    first = ack(node.on_message(EVENT, payload, 1000.0))
    assert first.ok and ack(node.on_message(EVENT, payload, 800.0)) == first
    late = send("r-2", 5000.0)
    for t in (1000.0, 1000.5):
        reply = ack(node.on_message(EVENT, late, t))
        assert not reply.ok and reply.error is not None and reply.error.startswith("stale: ts")
    assert node.camera.snapshot()["active"] == ["r-1"]


@pytest.mark.req("R-FRESH")
def test_max_skew_s_is_policy_data() -> None:
    policy = parse_policy(load_yaml("name: tight\nactivities: {patrol: {kind: required}}\nmax_skew_s: 5\n",
                                    "<test>"))
    node = signed_node(policy)
    late = Sender("dispatch").command("a", "activity_start", activity="patrol", activity_id="a", ts=16.0)
    assert ack(node.on_message(EVENT, late, 10.0)).error == (
        "stale: ts 16 is 6 s ahead of the camera's clock (max_skew_s 5)")
    with pytest.raises(ScenarioError, match="max_skew_s must be > 0"):
        parse_policy(load_yaml("name: x\nactivities: {}\nmax_skew_s: 0\n", "<test>"))


@pytest.mark.req("R-AUTH")
def test_roles_name_only_known_event_types() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_policy(load_yaml(
            "name: x\nactivities: {}\nroles:\n  dispatch: {events: [activity_start, warp]}\n", "p.yaml"))
    assert (caught.value.line, caught.value.field) == (4, "roles.dispatch.events[1]")
    assert DHS.may_send("supervisor", "deactivate") and not DHS.may_send("officer", "deactivate")


@pytest.mark.req("R-AUTH")
def test_an_unsigned_camera_takes_the_body_of_a_signed_command_as_it_is() -> None:
    node = signed_node(signed=False)
    payload = Sender("intruder").command("m-1", "activity_start", activity="patrol", activity_id="p-1")
    assert ack(node.on_message(EVENT, payload, 1.0)).ok
    assert node.camera.snapshot()["active"] == ["p-1"]


@pytest.mark.req("R-AUTH")
def test_trust_files_are_validated_with_file_line_and_field(tmp_path: Path) -> None:
    key = trust().principals[0].keys[0]
    cases = {
        "version: 2\nprincipals: []\n": (1, "version", "unsupported trust file version"),
        f"version: 1\nprincipals:\n  - {{name: a, role: dispatch, keys: [{key}]}}\n"
        f"  - {{name: a, role: supervisor, keys: [{key}x]}}\n": (4, "principals[1].name", "listed twice"),
        "version: 1\nprincipals:\n  - {name: a, role: dispatch, keys: [nope]}\n":
            (3, "principals[0].keys[0]", "a key is written ed25519:"),
        f"version: 1\nprincipals:\n  - {{name: a, role: dispatch, keys: [{key}]}}\n"
        f"  - {{name: b, role: supervisor, keys: [{key}]}}\n":
            (4, "principals[1].keys[0]", "already belongs"),
        "version: 1\nprincipals:\n  - {name: a, role: dispatch, keys: []}\n":
            (3, "principals[0].keys", "has no key"),
        "version: 1\nprincipals:\n  - {name: a, role: dispatch, keys: [], colour: red}\n":
            (3, "principals[0].colour", "unknown key"),
    }
    for i, (text, (line, field, fragment)) in enumerate(cases.items()):
        path = tmp_path / f"t{i}.yaml"
        path.write_text(text, "utf-8")
        with pytest.raises(ScenarioError) as caught:
            load_trust(path)
        assert (caught.value.file, caught.value.line, caught.value.field) == (str(path), line, field)
        assert fragment in caught.value.message
    good = parse_trust(load_yaml(f"version: 1\nprincipals:\n  - {{name: a, role: dispatch, keys: [{key}]}}\n",
                                 "ok.yaml"))
    assert good.principals[0].name == "a"


@pytest.mark.req("R-FRESH", "R-AUTH")
def test_the_gate_state_is_plain_data_a_journal_can_keep() -> None:
    node = signed_node()
    _start(node, aid="w-9")
    state = node.gate.state
    data = msgspec.json.encode(state)
    assert msgspec.json.decode(data, type=GateState) == state
    assert json.loads(data) == {"last_seq": {"dispatch": 1}, "starters": {"w-9": "dispatch"}}
    assert isinstance(msgspec.convert({"id": 1, "activity": "p", "activity_id": "a"}, ActivityStart),
                      ActivityStart)
