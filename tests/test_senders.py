"""Scenarios that say who sends each message (SPEC §7, §14): loading, signing, judging.

The replay signs with deterministic test keys (same file, same bytes), provisions the cameras
with the trusted principals' keys, and the oracle treats what a camera must refuse as nothing
happening; a camera that acts on it anyway fails the verdict, which is what an ``auth: none``
camera does with a forgery.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from controller.errors import ScenarioError
from sim.spec.schema import payload_schema
from sim.views.report import build_report
from sim.views.text import render_text
from sim.world.replay import replay
from sim.world.scenario import parse_scenario
from sim.world.senders import must_refuse, wire_messages

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = ROOT / "scenarios" / "attacks"

FORGED_END = """\
version: 1
name: forged end
auth: {auth}
end: 600
cameras:
  - {{id: cam-1, team: sr-1}}
timeline:
  - {{at: 60, team: sr-1, event: activity_start, activity: arrest_warrant, activity_id: WA}}
  - {{at: 120, camera: cam-1, as: intruder, claims: dispatch, event: activity_end, activity_id: WA}}
  - {{at: 500, team: sr-1, event: activity_end, activity_id: WA}}
"""


def _run(text: str) -> dict[str, Any]:
    return build_report(replay(parse_scenario(text, "s.yaml")))


@pytest.mark.req("R-AUTH")
def test_a_signed_camera_refuses_the_forgery_and_an_unsigned_one_fails_the_verdict() -> None:
    signed = _run(FORGED_END.format(auth="signed"))
    assert (signed["auth"], signed["verdict"], signed["missed_s"]["total"]) == ("signed", "pass", 0.0)
    assert signed["cameras"]["cam-1"]["refused"] == 1
    assert "accepted_forgeries" not in signed["cameras"]["cam-1"]

    unsigned = _run(FORGED_END.format(auth="none"))
    cam = unsigned["cameras"]["cam-1"]
    assert (unsigned["auth"], unsigned["verdict"]) == ("none", "fail")
    assert unsigned["missed_s"]["controller"] == 380.0  # 120-500: the warrant went unrecorded
    (forgery,) = cam["accepted_forgeries"]
    assert "timeline[1]" in forgery and forgery.endswith("intruder is not trusted")


@pytest.mark.req("R-AUTH")
def test_the_text_report_says_how_commands_were_authenticated(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    console = Console(width=100, force_terminal=False)
    render_text(_run(FORGED_END.format(auth="none")), console)
    out = capsys.readouterr().out
    assert "auth none: commands are not signed" in out
    assert "accepted forgery: timeline[1]" in out
    render_text(_run(FORGED_END.format(auth="signed")), console)
    assert "auth signed: commands verified against the trust file" in capsys.readouterr().out


@pytest.mark.req("P-DET", "R-AUTH")
def test_signed_replays_are_byte_identical_and_match_the_schema() -> None:
    text = (ATTACKS / "replay_fresh_id.yaml").read_text("utf-8")
    runs = []
    for _ in range(2):
        records: list[dict[str, Any]] = []
        replay(parse_scenario(text, str(ATTACKS / "replay_fresh_id.yaml")), trace=records.append)
        runs.append("\n".join(json.dumps(r, sort_keys=True) for r in records))
    assert runs[0] == runs[1]
    scenario = parse_scenario(text, str(ATTACKS / "replay_fresh_id.yaml"))
    wire = wire_messages(scenario)
    envelope = json.loads(wire[0][1])
    jsonschema.validate(envelope, payload_schema("Signed"))
    body = json.loads(envelope["body"])
    jsonschema.validate(body, payload_schema("Event"))
    assert (body["seq"], body["to"], envelope["by"]) == (1, "cam-1", "dispatch")
    # A replay repeats the bytes; with a fresh id only the body's id changes, not the signature.
    assert wire[5] == wire[1]
    fresh = json.loads(wire[6][1])
    assert fresh["sig"] == json.loads(wire[1][1])["sig"] and '"id":"sup-1-again"' in fresh["body"]


@pytest.mark.req("R-FRESH", "R-AUTH")
def test_must_refuse_names_every_refusable_entry_and_nothing_else() -> None:
    scenario = parse_scenario("""\
version: 1
name: judged
auth: signed
end: 3000
principals:
  - {name: sgt-lee, role: supervisor}
  - {name: rogue, role: dispatch, trusted: false}
cameras:
  - {id: cam-1}
  - {id: cam-2}
timeline:
  - {at: 10, camera: cam-1, event: activity_start, activity: patrol, activity_id: p-1}
  - {at: 20, camera: cam-1, as: rogue, event: activity_end, activity_id: p-1}
  - {at: 30, camera: cam-1, as: officer-cam-2, event: button, action: stop}
  - {at: 40, camera: cam-1, as: sgt-lee, event: deactivate, reason: supervisor_order, actor: sgt-lee}
  - {at: 50, camera: cam-1, as: sgt-lee, event: deactivate, reason: supervisor_order, actor: boss}
  - {at: 60, camera: cam-1, event: reactivate, seq: 1}
  - {at: 70, camera: cam-1, event: activity_end, activity_id: p-1, ts: "1e300"}
  - {at: 80, camera: cam-1, event: activity_end, activity_id: p-1, ts: 380}
  - {at: 90, camera: cam-2, as: device-cam-2, event: dock}
""", "judged.yaml")
    assert must_refuse(scenario, "cam-1") == {
        1: "rogue is not trusted",
        2: "officer-cam-2 may command only cam-2",
        4: "actor is not the signer sgt-lee",
        6: "ts 1e+300 more than max_skew_s ahead",
    }
    assert must_refuse(scenario, "cam-2") == {}
    report = build_report(replay(scenario))
    assert report["verdict"] == "pass"
    # Sequence numbers count per sender; the supervisor's explicit 1 is its first, so it stands.
    assert report["cameras"]["cam-1"]["refused"] == 4


@pytest.mark.req("SCN-FORMAT", "R-AUTH")
@pytest.mark.parametrize(("entry", "extra", "fragment"), [
    ("{at: 1, camera: cam-1, as: nobody, event: dock}", "", "unknown principal 'nobody'"),
    ("{at: 1, camera: cam-1, event: dock, claims: ghost}", "", "unknown principal 'ghost'"),
    ("{at: 1, team: sr-1, event: dock}", "auth: signed\n", "a dock on a team topic has no default sender"),
    ("{at: 1, replay: {of: m-9}}", "", "no earlier event entry has id 'm-9'"),
    ("{at: 1, camera: cam-1, event: dock, seq: -1}", "", "is not a sequence number"),
    ("{at: 1, camera: cam-1, event: dock, ts: soon}", "", "bad time 'soon'"),
    ("{at: 1, camera: cam-1, event: dock}", "principals:\n  - {name: x, role: janitor}\n",
     "role 'janitor' is not in policy dhs-2023"),
    ("{at: 1, camera: cam-1, event: dock}", "principals:\n  - {name: x, role: officer}\n",
     "missing (a officer is bound to one camera)"),
    ("{at: 1, camera: cam-1, event: dock}", "auth: maybe\n", "'maybe' is not one of signed, none"),
])
def test_sender_keys_are_validated(entry: str, extra: str, fragment: str) -> None:
    text = (f"version: 1\nname: x\nend: 100\n{extra}cameras:\n  - {{id: cam-1, team: sr-1}}\n"
            f"timeline:\n  - {entry}\n")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "x.yaml")
    assert fragment in caught.value.message
    assert caught.value.line is not None
