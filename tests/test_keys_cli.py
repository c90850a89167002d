"""``bwcsim keys``: identities, trust files, signing, and the rotation story (R-AUTH, SPEC §14).

The commands are run as a user would; the trust file they produce provisions a real reference
node (as ``bwcsim live --trust`` does), and the envelopes ``keys sign`` prints are what that
node obeys or refuses.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.codec import decode_outbound
from controller.messages import Ack
from controller.principals import load_trust
from controller.reference import ReferenceNode
from sim.cli import app
from sim.live.command import LiveOptions, build_node

runner = CliRunner()
START = '{"id": "m-1", "type": "activity_start", "activity": "patrol", "activity_id": "p-1"}'


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _node(tmp_path: Path, trust: Path) -> ReferenceNode:
    node = build_node(LiveOptions(broker="mqtt://127.0.0.1:1883", camera="cam-1", trust=trust))
    assert isinstance(node, ReferenceNode)
    return node


def _ack(node: ReferenceNode, payload: str, t: float) -> Ack:
    pubs = node.on_message("bwc/cam-1/event", payload.encode(), t)
    (reply,) = [decode_outbound("ack", p.payload) for p in pubs if p.topic.endswith("/ack")]
    assert isinstance(reply, Ack)
    return reply


@pytest.mark.req("R-AUTH", "LIVE-CLI")
def test_new_export_sign_provision_a_camera_that_obeys_only_its_principals(tmp_path: Path) -> None:
    dispatch, officer = tmp_path / "dispatch.key.yaml", tmp_path / "officer.key.yaml"
    entry = _ok(["keys", "new", "dispatch", "--role", "dispatch", "--out", str(dispatch)])
    assert "ed25519:" in entry and "PRIVATE" not in entry
    assert stat.S_IMODE(dispatch.stat().st_mode) == 0o600
    _ok(["keys", "new", "officer-cam-1", "--role", "officer", "--camera", "cam-1", "--out", str(officer)])
    trust = tmp_path / "trust.yaml"
    _ok(["keys", "export", str(dispatch), str(officer), "--out", str(trust)])
    assert "PRIVATE" not in trust.read_text() and len(load_trust(trust).principals) == 2
    node = _node(tmp_path, trust)
    assert node.gate.mode == "signed"

    signed = _ok(["keys", "sign", str(dispatch), START, "--to", "cam-1", "--seq", "7"])
    assert json.loads(json.loads(signed)["body"])["seq"] == 7
    assert _ack(node, signed, 1.0).ok
    assert _ack(node, START.replace("m-1", "m-2"), 2.0).error == "unauthorized: unsigned activity_start"
    by_officer = _ok(["keys", "sign", str(officer), START.replace("m-1", "m-3"), "--to", "cam-1"])
    assert _ack(node, by_officer, 3.0).error == "unauthorized: role officer may not send activity_start"

    # A key is never overwritten by accident.
    again = runner.invoke(app, ["keys", "new", "dispatch", "--role", "dispatch", "--out", str(dispatch)])
    assert again.exit_code == 2 and "exists" in again.stderr


@pytest.mark.req("R-AUTH", "R-FRESH")
def test_rotation_overlap_then_retirement_and_the_count_goes_on(tmp_path: Path) -> None:
    old, new = tmp_path / "old.key.yaml", tmp_path / "new.key.yaml"
    _ok(["keys", "new", "dispatch", "--role", "dispatch", "--out", str(old)])
    _ok(["keys", "new", "dispatch", "--role", "dispatch", "--out", str(new)])
    overlap = tmp_path / "overlap.yaml"
    _ok(["keys", "export", str(old), str(new), "--out", str(overlap)])
    (principal,) = load_trust(overlap).principals
    assert len(principal.keys) == 2
    node = _node(tmp_path, overlap)
    by_old = _ok(["keys", "sign", str(old), START, "--to", "cam-1", "--seq", "10"])
    assert _ack(node, by_old, 1.0).ok
    # The sequence number is the principal's: the new key carries on from the old one's count.
    stale = _ok(["keys", "sign", str(new), START.replace("m-1", "m-2"), "--to", "cam-1", "--seq", "10"])
    assert (_ack(node, stale, 2.0).error or "").startswith("replayed: seq 10 <= 10")
    by_new = _ok(["keys", "sign", str(new), START.replace("m-1", "m-3"), "--to", "cam-1", "--seq", "11"])
    assert _ack(node, by_new, 3.0).ok
    # Retired: a trust file without the old key refuses what it signs.
    retired = tmp_path / "retired.yaml"
    _ok(["keys", "export", str(new), "--out", str(retired)])
    node = _node(tmp_path, retired)
    late_old = _ok(["keys", "sign", str(old), START.replace("m-1", "m-4"), "--to", "cam-1", "--seq", "12"])
    assert _ack(node, late_old, 4.0).error == "unauthorized: bad signature for 'dispatch'"


@pytest.mark.req("R-AUTH", "LIVE-CLI")
def test_trust_files_merge_and_disagreements_are_errors(tmp_path: Path) -> None:
    a, b = tmp_path / "a.key.yaml", tmp_path / "b.key.yaml"
    _ok(["keys", "new", "dispatch", "--role", "dispatch", "--out", str(a)])
    _ok(["keys", "new", "dispatch", "--role", "supervisor", "--out", str(b)])
    part = tmp_path / "part.yaml"
    _ok(["keys", "export", str(a), "--out", str(part)])
    merged = _ok(["keys", "export", str(part), str(a)])
    assert merged.count("ed25519:") == 1  # the same key met twice is kept once
    clash = runner.invoke(app, ["keys", "export", str(a), str(b)])
    assert clash.exit_code == 2 and "is supervisor/- here but dispatch/- elsewhere" in clash.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nprincipals:\n  - {name: x, role: dispatch, keys: [nope]}\n")
    with pytest.raises(Exception, match=r"principals\[0\]\.keys\[0\]"):
        _node(tmp_path, broken)
    result = runner.invoke(app, ["live", "--broker", "mqtt://127.0.0.1:1", "--camera", "cam-1",
                                 "--trust", str(broken)])
    assert result.exit_code == 2 and "broken.yaml:3" in result.stderr
