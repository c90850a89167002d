"""The scenario loader (SPEC §7): what it accepts, what it builds, and how it names errors."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from controller.errors import InvalidInput, ScenarioError
from controller.params import CameraParams
from sim.world.scenario import (
    BusSpec,
    Scenario,
    TimelineEntry,
    load_scenario,
    parse_scenario,
    parse_time,
)

CONFORMANCE = Path(__file__).resolve().parents[1] / "scenarios" / "conformance"
CONFORMANCE_FILES = sorted(CONFORMANCE.glob("*.yaml"))

# The example of SPEC §7, verbatim.
SPEC_EXAMPLE = """\
version: 1
name: Pre-planned arrest warrant, two officers
policy: dhs-2023            # built-in name, or a path relative to this file
seed: 7
end: "01:00:00"
cameras:
  - {id: cam-1, team: sr-1, initial: docked, prebuffer_s: 30}
  - {id: cam-2, team: sr-1, initial: pre_buffer}
bus: {latency_s: 0.05, drop: 0.0, duplicate: 0.0}
timeline:
  - {at: 0, camera: cam-1, event: undock}
  - {at: "00:10:00", team: sr-1, event: activity_start, activity: arrest_warrant, activity_id: w-17}
  - {at: "00:40:00", team: sr-1, event: activity_end, activity_id: w-17}
  - {at: "00:12:00", camera: cam-2, event: activity_start, activity: search_warrant,
     activity_id: s-3, delay_s: 20}          # really began at 00:12:00, trigger sent 20 s later
  - {at: "00:30:00", camera: cam-2, event: button, action: stop}
  - {at: "00:31:00", camera: cam-1, raw: {topic: bwc/cam-1/event, payload: "not json"}}
expect:                      # optional; checked by `run`/`check`
  verdict: pass
  missed_s: {controller: 0}
  final_state: {cam-1: pre_buffer}
"""

# Lines 1-9 are shared by most bad inputs below; each case appends or edits from line 7 on.
HEAD = """\
version: 1
name: bad input
end: "01:00:00"
cameras:
  - {id: cam-1, team: sr-1}
  - {id: cam-2, team: sr-1}
"""


def parse(text: str, file: str = "x.yaml") -> Scenario:
    return parse_scenario(text, file)


# ------------------------------------------------------------------------------ good files


@pytest.mark.req("SCN-FORMAT")
@pytest.mark.parametrize("path", CONFORMANCE_FILES, ids=lambda p: p.name)
def test_conformance_file_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.version == 1
    assert scenario.file == str(path)
    assert scenario.expect is not None
    assert scenario.timeline, "every conformance scenario scripts something"
    for entry in scenario.timeline:
        assert 0 <= entry.at <= scenario.end
        assert set(scenario.targets(entry)) <= {cam.id for cam in scenario.cameras}


@pytest.mark.req("SCN-FORMAT")
def test_spec_example_loads_with_every_value() -> None:
    scenario = parse(SPEC_EXAMPLE, "scenarios/example.yaml")
    assert scenario.name == "Pre-planned arrest warrant, two officers"
    assert (scenario.policy_ref, scenario.policy.name) == ("dhs-2023", "dhs-2023")
    assert (scenario.seed, scenario.end, scenario.prefix) == (7, 3600.0, "bwc")
    assert [(c.id, c.teams, c.initial) for c in scenario.cameras] == [
        ("cam-1", ("sr-1",), "docked"),
        ("cam-2", ("sr-1",), "pre_buffer"),
    ]
    assert scenario.bus == BusSpec(latency_s=0.05)
    # File order is kept (the scheduler orders by delivery time itself).
    assert [e.at for e in scenario.timeline] == [0.0, 600.0, 2400.0, 720.0, 1800.0, 1860.0]
    assert [e.index for e in scenario.timeline] == list(range(6))
    assert [e.line for e in scenario.timeline] == [11, 12, 13, 14, 16, 17]
    late = scenario.timeline[3]
    assert (late.event, late.delay_s, late.send_at) == ("activity_start", 20.0, 740.0)
    assert late.fields == {"activity": "search_warrant", "activity_id": "s-3"}
    raw = scenario.timeline[5]
    assert raw.event is None and raw.raw is not None
    assert (raw.raw.topic, raw.raw.payload_bytes) == ("bwc/cam-1/event", b"not json")
    assert scenario.expect is not None
    assert scenario.expect.verdict == "pass"
    assert scenario.expect.missed_s == {"controller": 0.0}
    assert scenario.expect.final_state == {"cam-1": "pre_buffer"}
    assert scenario.requirements == ()


@pytest.mark.req("SCN-FORMAT")
def test_defaults_when_optional_keys_are_absent() -> None:
    scenario = parse(HEAD)
    assert scenario.policy_ref == "dhs-2023"
    assert (scenario.seed, scenario.prefix, scenario.description) == (0, "bwc", "")
    assert scenario.bus == BusSpec()
    assert scenario.timeline == ()
    assert scenario.expect is None
    assert scenario.camera("cam-1").initial == "pre_buffer"
    assert scenario.camera("cam-1").params == CameraParams()
    assert parse(HEAD + "timeline:\nexpect:\n").timeline == ()  # empty keys mean "none"


@pytest.mark.req("SCN-FORMAT")
def test_optional_top_level_keys() -> None:
    scenario = parse(
        HEAD
        + "prefix: agency/bwc\nrequirements: [R-DOCK, P-NOMISS]\ndescription: text\n"
        + "bus: {latency: exponential, latency_s: 0.01, jitter_s: 0.2, duplicate: 0.5}\n"
    )
    assert scenario.prefix == "agency/bwc"
    assert scenario.requirements == ("R-DOCK", "P-NOMISS")
    assert scenario.description == "text"
    assert scenario.bus == BusSpec(
        latency="exponential", latency_s=0.01, jitter_s=0.2, duplicate=0.5
    )


# ------------------------------------------------------------------------------------ times


@pytest.mark.req("SCN-FORMAT")
@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (90, 90.0),
        (2.5, 2.5),
        ("00:10:00", 600.0),
        ("01:00:00", 3600.0),
        ("00:12:30", 750.0),
        ("00:00:01.25", 1.25),
        ("90:00:00", 324000.0),
        ("25:00:00", 90000.0),
    ],
)
def test_parse_time_accepts(value: object, seconds: float) -> None:
    assert parse_time(value) == seconds


@pytest.mark.req("SCN-FORMAT")
@pytest.mark.parametrize(
    "value", ["10 minutes", "", "1:2:3:4", "00:60:00", "00:00:60", "-5", -1, True, None,
              [1], float("nan"), float("inf"), "600", "12:30", "00:20", "90:00"],
)
def test_parse_time_rejects(value: object) -> None:
    with pytest.raises(InvalidInput):
        parse_time(value)


# ---------------------------------------------------------------------------- bad inputs

BAD_INPUTS = [
    # (case id, scenario text, line, field, fragment of the message)
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-1, id: x, event: dock}\n"
        "  - {at: 20, camera: cam-1, id: x, event: undock}\n",
        9, "timeline[1].id", "message id 'x' is already used by timeline[0] (line 8) for a "
        "different message", id="id-reused-for-another-message",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-1, event: dock}\n"
        "  - {at: 20, camera: cam-1, id: m-0, event: undock}\n",
        9, "timeline[1].id", "message id 'm-0' is already used by timeline[0]",
        id="explicit-id-clashes-with-generated-one",
    ),
    pytest.param(
        HEAD + "timeline:\n  - at: 10\n    camera: cam-1\n    event: activity_start\n"
        "    activity: patrol\n    activity_id: 17\n",
        12, "timeline[0].activity_id", "expected a non-empty string, got an integer (17)",
        id="wrong-type-event-field",
    ),
    pytest.param(
        HEAD + "seed: seven\n", 7, "seed", "expected an integer, got a string ('seven')",
        id="wrong-type-seed",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-1, event: dock}\n"
        "  - {at: 20, camera: cam-1, event: undock, colour: red}\n",
        9, "timeline[1].colour", "unknown key 'colour' for event undock (allowed here: at,",
        id="unknown-key-in-entry",
    ),
    pytest.param(
        HEAD + "timelines: []\n", 7, "timelines",
        "unknown key 'timelines'; did you mean `timeline`? (allowed here: version, name,",
        id="unknown-top-level-key",
    ),
    pytest.param(
        HEAD + "  - {id: cam-3, prebufer_s: 30}\n", 7, "cameras[2].prebufer_s",
        "unknown key 'prebufer_s'", id="unknown-camera-key",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-1, event: dock}\n"
        "  - {at: 4000, camera: cam-1, event: undock}\n",
        9, "timeline[1].at", "4000.0 is after end (3600.0, line 3): move this entry earlier or "
        "raise end", id="at-after-end",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-9, event: dock}\n", 8, "timeline[0].camera",
        "unknown camera 'cam-9' (declared: cam-1, cam-2)", id="unknown-camera",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, team: sr-2, event: dock}\n", 8, "timeline[0].team",
        "unknown team 'sr-2' (declared: sr-1)", id="unknown-team",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-1, event: explode}\n", 8,
        "timeline[0].event", "'explode' is not an event (one of: activity_start, activity_end, dock,",
        id="unknown-event",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-1, event: activity_start,\n"
        "     activity: patrol}\n",
        8, "timeline[0].activity_id",
        "missing (activity_start needs activity and activity_id): add e.g. activity_id: w-1",
        id="missing-activity-id",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-1, event: activity_start, "
        "activity: karaoke, activity_id: k-1}\n",
        8, "timeline[0].activity", "activity 'karaoke' is not in policy dhs-2023",
        id="unknown-activity",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-1, event: button, action: pause}\n", 8,
        "timeline[0].action", "'pause' is not a button action (one of: start, stop)",
        id="bad-button-action",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-1, team: sr-1, event: dock}\n", 8,
        "timeline[0]", "exactly one of camera or team", id="camera-and-team",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-1, event: dock, raw: {topic: a, payload: b}}\n",
        8, "timeline[0]", "exactly one of event, raw, fault, replay (has event and raw)",
        id="event-and-raw",
    ),
    pytest.param(
        HEAD + "timeline:\n  - at: \"10 minutes\"\n    camera: cam-1\n    event: dock\n", 8,
        "timeline[0].at", "bad time '10 minutes'", id="bad-time-string",
    ),
    pytest.param(
        HEAD.replace('"01:00:00"', '"01:75:00"'), 3, "end",
        "minutes and seconds must be below 60", id="bad-end-time",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-1, event: dock, delay_s: -2}\n", 8,
        "timeline[0].delay_s", "-2 is negative", id="negative-delay",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-1, event: dock\n", 8, "timeline[0]",
        "YAML syntax: did not find expected ',' or '}': close every {", id="bad-yaml-syntax",
    ),
    pytest.param(
        HEAD + "  - {id: cam-1, team: sr-2}\n", 7, "cameras[2].id",
        "duplicate camera id 'cam-1' (first declared at line 5)", id="duplicate-camera",
    ),
    pytest.param(
        HEAD + "policy: policies/missing.yaml\n", 7, "policy",
        "'policies/missing.yaml' is neither a built-in policy (dhs-2023) nor a file",
        id="policy-file-not-found",
    ),
    pytest.param(
        HEAD.replace("version: 1", "version: 2"), 1, "version",
        "unsupported format version 2 (supported: 1)", id="wrong-version",
    ),
    pytest.param(
        HEAD.replace("version: 1\n", ""), 1, "version", "missing", id="missing-version",
    ),
    pytest.param(
        HEAD + "bus:\n  latency_s: 0.1\n  drop: 1.5\n", 9, "bus.drop",
        "1.5 is not a probability (0 to 1)", id="bad-probability",
    ),
    pytest.param(
        HEAD + "bus: {latency: gaussian}\n", 7, "bus.latency",
        "'gaussian' is not one of fixed, uniform, exponential", id="bad-latency-model",
    ),
    pytest.param(
        HEAD.replace("{id: cam-2, team: sr-1}", "{id: cam-2, prebuffer_s: 200}"), 6,
        "cameras[1].prebuffer_s", "prebuffer_s must be between 0 and 120",
        id="camera-param-out-of-range",
    ),
    pytest.param(
        HEAD.replace("{id: cam-2, team: sr-1}", "{id: cam-2, upload_speed: .inf}"), 6,
        "cameras[1].upload_speed", "inf is not finite",
        id="camera-param-not-finite",
    ),
    pytest.param(
        HEAD.replace("{id: cam-2, team: sr-1}", "{id: cam-2, buffer_audio: 1}"), 6,
        "cameras[1].buffer_audio", "expected true or false", id="camera-param-wrong-type",
    ),
    pytest.param(
        HEAD.replace("{id: cam-2, team: sr-1}", "{id: cam/2}"), 6, "cameras[1].id",
        "'cam/2' is not a valid camera id", id="camera-id-with-slash",
    ),
    pytest.param(
        HEAD.replace("{id: cam-2, team: sr-1}", "{id: cam-2, initial: recording}"), 6,
        "cameras[1].initial", "'recording' is not one of docked, standby, pre_buffer",
        id="bad-initial-state",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, camera: cam-1, raw: {topic: bwc/+/event, payload: x}}\n",
        8, "timeline[0].raw.topic", "cannot hold '+'", id="raw-wildcard-topic",
    ),
    pytest.param(
        HEAD + "timeline:\n  - at: 10\n    raw:\n      topic: bwc/cam-1/event\n"
        "      payload_hex: zz\n",
        11, "timeline[0].raw.payload_hex", "not hex", id="raw-bad-hex",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, team: sr-1, raw: {topic: t, payload: x}}\n", 8,
        "timeline[0].team", "unknown key 'team' for a raw entry", id="raw-with-team",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, fault: disconnect, for_s: 30}\n", 8,
        "timeline[0].camera", "disconnect needs the camera", id="disconnect-without-camera",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, fault: broker_outage}\n", 8, "timeline[0].for_s",
        "missing (how long the fault lasts)", id="outage-without-duration",
    ),
    pytest.param(
        HEAD + "timeline:\n  - {at: 10, fault: earthquake, for_s: 5}\n", 8,
        "timeline[0].fault", "'earthquake' is not one of disconnect, broker_outage",
        id="unknown-fault",
    ),
    pytest.param(
        HEAD + "expect:\n  verdict: pass\n  recordings: {cam-1: 1, cam-7: 2}\n", 9,
        "expect.recordings.cam-7", "unknown camera 'cam-7'", id="expect-unknown-camera",
    ),
    pytest.param(
        HEAD + "expect:\n  missed_s: {controler: 0}\n", 8, "expect.missed_s.controler",
        "unknown key 'controler' (a miss cause); did you mean `controller`? (allowed here: total,",
        id="expect-unknown-cause",
    ),
    pytest.param(
        HEAD + "expect:\n  alerts:\n    cam-1: [late_trigger, battery_low]\n", 9,
        "expect.alerts.cam-1[1]", "'battery_low' is not an alert kind (one of late_trigger,",
        id="expect-unknown-alert-kind",
    ),
    pytest.param(
        HEAD + "expect:\n  final_state: {cam-1: booting}\n", 8, "expect.final_state.cam-1",
        "'booting' is not one of docked, standby, pre_buffer, recording, off",
        id="expect-unknown-state",
    ),
    pytest.param(
        HEAD + "expect:\n  verdict: ok\n", 8, "expect.verdict", "'ok' is not one of pass, fail",
        id="expect-bad-verdict",
    ),
    pytest.param(
        HEAD + "requirements:\n  - R-DOCK\n  - r-dock\n", 9, "requirements[1]",
        "is not a requirement id", id="bad-requirement-id",
    ),
    pytest.param(
        HEAD.replace("cameras:\n  - {id: cam-1, team: sr-1}\n  - {id: cam-2, team: sr-1}\n",
                     "cameras: []\n"),
        4, "cameras", "declare at least one camera", id="no-cameras",
    ),
    pytest.param("- just\n- a list\n", 1, None, "a scenario must be a mapping", id="not-a-mapping"),
]


@pytest.mark.req("SCN-FORMAT")
@pytest.mark.parametrize(("text", "line", "field", "fragment"), BAD_INPUTS)
def test_bad_input_names_line_and_field(
    text: str, line: int, field: str | None, fragment: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse(text, "scenarios/x.yaml")
    err = caught.value
    assert (err.file, err.line, err.field) == ("scenarios/x.yaml", line, field)
    assert fragment in err.message
    where = f"scenarios/x.yaml:{line}: " + (f"{field}: " if field else "")
    assert str(err) == where + err.message


@pytest.mark.req("SCN-FORMAT")
def test_error_text_is_one_line_with_file_line_field() -> None:
    text = HEAD + "timeline:\n" + "  - {at: 1, camera: cam-1, event: dock}\n" * 3
    text += "  - {at: 4000.0, camera: cam-1, event: undock}\n"
    with pytest.raises(ScenarioError) as caught:
        parse(text, "scenarios/x.yaml")
    assert str(caught.value) == (
        "scenarios/x.yaml:11: timeline[3].at: 4000.0 is after end (3600.0, line 3): move this "
        "entry earlier or raise end"
    )


@pytest.mark.req("SCN-FORMAT")
def test_unreadable_file_is_a_scenario_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError) as caught:
        load_scenario(missing)
    assert caught.value.file == str(missing)
    assert "cannot read" in caught.value.message
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"version: 1\nname: \xff\xfe\n")
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_scenario(binary)


# -------------------------------------------------------------------------------- payloads


@pytest.mark.req("SCN-FORMAT")
def test_event_payload_topic_and_bytes() -> None:
    scenario = parse(
        HEAD + "prefix: site\ntimeline:\n"
        "  - {at: \"00:10:00\", camera: cam-2, event: activity_start, activity_id: w-17,\n"
        "     activity: arrest_warrant, delay_s: 3}\n"
        "  - {at: 700.5, team: sr-1, event: activity_end, activity_id: w-17, id: again}\n"
        "  - {at: 800, camera: cam-1, event: deactivate, reason: supervisor_order, actor: sgt-4}\n"
    )
    start, end, deactivate = scenario.timeline
    # Event fields follow the envelope in the order the file gives them.
    assert start.payload(scenario.prefix) == (
        "site/cam-2/event",
        b'{"id":"m-0","type":"activity_start","ts":600.0,"activity_id":"w-17",'
        b'"activity":"arrest_warrant"}',
    )
    assert end.message_id == "again"
    assert end.payload("bwc") == (
        "bwc/team/sr-1/event",
        b'{"id":"again","type":"activity_end","ts":700.5,"activity_id":"w-17"}',
    )
    topic, body = deactivate.payload("bwc")
    assert topic == "bwc/cam-1/event"
    assert msgspec.json.decode(body) == {
        "id": "m-2", "type": "deactivate", "ts": 800.0,
        "reason": "supervisor_order", "actor": "sgt-4",
    }


@pytest.mark.req("SCN-FORMAT")
def test_explicit_ids_script_a_redelivery() -> None:
    scenario = parse(
        HEAD + "timeline:\n"
        "  - {at: 10, camera: cam-1, event: signal, source: holster, id: dup}\n"
        "  - {at: 10, delay_s: 1, camera: cam-1, event: signal, source: holster, id: dup}\n"
    )
    first, second = scenario.timeline
    assert first.message_id == second.message_id == "dup"
    # A redelivery is the same message, byte for byte, arriving again later.
    assert first.payload("bwc") == second.payload("bwc")
    assert (first.send_at, second.send_at) == (10.0, 11.0)
    with pytest.raises(ScenarioError, match="already used by timeline"):
        parse(
            HEAD + "timeline:\n"
            "  - {at: 10, camera: cam-1, event: signal, source: holster, id: dup}\n"
            "  - {at: 11, camera: cam-1, event: signal, source: holster, id: dup}\n"
        )


@pytest.mark.req("SCN-FORMAT")
def test_raw_and_fault_entries() -> None:
    scenario = parse(
        HEAD + "timeline:\n"
        "  - {at: 1, camera: cam-1, raw: {topic: bwc/cam-1/event, payload: 'caf\u00e9'}}\n"
        "  - {at: 2, raw: {topic: bwc/cam-1/event, payload_hex: 'ff 00 7b'}, delay_s: 1}\n"
        "  - {at: 3, camera: cam-2, fault: disconnect, for_s: \"00:01:30\"}\n"
        "  - {at: 4, fault: broker_outage, for_s: 5}\n"
    )
    text, hexed, disconnect, outage = scenario.timeline
    assert text.payload("ignored") == ("bwc/cam-1/event", "caf\u00e9".encode())
    assert hexed.raw is not None and hexed.raw.payload_bytes == b"\xff\x00{"
    assert hexed.payload("bwc") == ("bwc/cam-1/event", b"\xff\x00{")
    assert (disconnect.fault, disconnect.camera, disconnect.for_s) == ("disconnect", "cam-2", 90.0)
    assert (outage.fault, outage.camera, outage.for_s) == ("broker_outage", None, 5.0)
    assert scenario.targets(disconnect) == ("cam-2",)
    assert scenario.targets(outage) == ()
    assert scenario.targets(hexed) == ()
    assert scenario.targets(text) == ("cam-1",)
    with pytest.raises(ValueError, match="publishes nothing"):
        outage.payload("bwc")


# ----------------------------------------------------------------------------------- teams


@pytest.mark.req("SCN-FORMAT")
def test_team_targets_every_member_in_declaration_order() -> None:
    scenario = parse(
        "version: 1\nname: teams\nend: 100\ncameras:\n"
        "  - {id: cam-a, team: sr-1, teams: [k9, sr-1]}\n"
        "  - {id: cam-b, teams: [k9]}\n"
        "  - {id: cam-c, team: sr-1}\n"
        "timeline:\n"
        "  - {at: 1, team: sr-1, event: dock}\n"
        "  - {at: 2, team: k9, event: undock}\n"
        "  - {at: 3, camera: cam-b, event: dock}\n"
    )
    assert scenario.camera("cam-a").teams == ("sr-1", "k9")
    assert scenario.teams == ("sr-1", "k9")
    assert scenario.team_members("sr-1") == ("cam-a", "cam-c")
    assert scenario.team_members("nobody") == ()
    sr1, k9, single = scenario.timeline
    assert scenario.targets(sr1) == ("cam-a", "cam-c")
    assert scenario.targets(k9) == ("cam-a", "cam-b")
    assert scenario.targets(single) == ("cam-b",)
    with pytest.raises(KeyError):
        scenario.camera("cam-z")


# ------------------------------------------------------------------------ parameter layers

POLICY_WITH_OVERRIDES = """\
name: component-x
activities:
  patrol: {kind: required, post_s: 60}
signals: [holster]
deactivation_reasons: [supervisor_order]
camera: {prebuffer_s: 120, boot_s: 10}
"""


@pytest.mark.req("SCN-FORMAT")
def test_policy_overrides_apply_then_camera_values_win(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "component-x.yaml").write_text(POLICY_WITH_OVERRIDES)
    scenario_file = tmp_path / "warrant.yaml"
    scenario_file.write_text(
        "version: 1\nname: layers\npolicy: policies/component-x.yaml\nend: 100\ncameras:\n"
        "  - {id: cam-1}\n"
        "  - {id: cam-2, prebuffer_s: 45, battery_s: \"02:00:00\", buffer_audio: true}\n"
        "timeline:\n  - {at: 5, camera: cam-1, event: activity_start, activity: patrol,"
        " activity_id: p-1}\n"
    )
    scenario = load_scenario(scenario_file)  # the policy path is relative to the scenario
    assert scenario.policy_ref == "policies/component-x.yaml"
    assert scenario.policy.name == "component-x"
    defaults = CameraParams()
    cam1, cam2 = scenario.camera("cam-1").params, scenario.camera("cam-2").params
    assert (cam1.prebuffer_s, cam1.boot_s) == (120.0, 10.0)
    assert (cam2.prebuffer_s, cam2.boot_s, cam2.battery_s) == (45.0, 10.0, 7200.0)
    assert cam2.buffer_audio is True
    assert (cam1.segment_max_s, cam2.storage_s) == (defaults.segment_max_s, defaults.storage_s)
    # Activities are checked against the chosen policy, not the built-in one.
    with pytest.raises(ScenarioError, match="not in policy component-x"):
        parse_scenario(
            scenario_file.read_text().replace("activity: patrol", "activity: arrest_warrant"),
            str(scenario_file),
        )


@pytest.mark.req("SCN-FORMAT")
def test_invalid_policy_file_is_reported_against_itself(tmp_path: Path) -> None:
    (tmp_path / "bad-policy.yaml").write_text("name: bad\nactivities:\n  patrol: {kind: maybe}\n")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(HEAD + "policy: bad-policy.yaml\n", "x.yaml", tmp_path)
    assert caught.value.file == str(tmp_path / "bad-policy.yaml")
    assert caught.value.line is not None
    assert "'maybe'" in caught.value.message


@pytest.mark.req("SCN-FORMAT")
def test_entries_are_immutable() -> None:
    entry = parse(HEAD + "timeline:\n  - {at: 1, camera: cam-1, event: dock}\n").timeline[0]
    assert isinstance(entry, TimelineEntry)
    with pytest.raises(AttributeError):
        entry.at = 2.0  # type: ignore[misc]


# ------------------------------------------------------------- the five authoring mistakes

#: The mistakes a trainer writing a scenario by hand makes most, each with the line, field and
#: the words of the fix its one-line error must carry.
GOOD = """\
version: 1
name: warrant
end: "01:00:00"
cameras:
  - {id: cam-1, team: sr-1}
  - {id: cam-2, team: sr-1}
timeline:
  - {at: "00:10:00", team: sr-1, event: activity_start, activity: arrest_warrant, activity_id: w-1}
  - {at: "00:20:00", camera: cam-1, event: dock}
  - {at: "00:30:00", camera: cam-1, event: undock}
"""

AUTHORING_MISTAKES = [
    pytest.param(
        GOOD.replace("  - {at: \"00:30:00\"", "   - {at: \"00:30:00\""), 10, "timeline[2]",
        "check the indentation", id="bad-indentation",
    ),
    pytest.param(
        GOOD.replace("event: undock", "event: undok"), 10, "timeline[2].event",
        "did you mean `undock`?", id="wrong-event-word",
    ),
    pytest.param(
        GOOD.replace('at: "00:20:00"', 'at: "00:20"'), 9, "timeline[1].at",
        'write "00:20:00" or "00:00:20"', id="two-part-time",
    ),
    pytest.param(
        GOOD.replace(", activity_id: w-1", ""), 8, "timeline[0].activity_id",
        "add e.g. activity_id: w-1", id="missing-field",
    ),
    pytest.param(
        GOOD.replace("camera: cam-1, event: dock", "camera: cam-3, event: dock"), 9,
        "timeline[1].camera", "declare it under cameras: as - {id: cam-3}",
        id="undeclared-camera",
    ),
]


@pytest.mark.req("SCN-FORMAT")
@pytest.mark.parametrize(("text", "line", "field", "fix"), AUTHORING_MISTAKES)
def test_each_authoring_mistake_is_one_line_naming_file_line_field_and_fix(
    tmp_path: Path, text: str, line: int, field: str, fix: str
) -> None:
    from typer.testing import CliRunner

    from sim.cli import app

    parse(GOOD)  # the file is good before the mistake
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"bwcsim: {path}:{line}: {field}: "), lines[0]
    assert fix in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.req("SCN-FORMAT")
def test_an_unquoted_clock_time_is_read_as_the_clock_it_shows() -> None:
    # YAML 1.1 reads 00:20 as base-60 (20) and 01:00:00 as 3600: the same numbers by luck for
    # three parts, a silent misreading for two. Both are taken as the text written.
    assert parse(HEAD.replace('"01:00:00"', "01:00:00")).end == 3600.0
    with pytest.raises(ScenarioError, match="has two parts"):
        parse(HEAD.replace('"01:00:00"', "01:00"))


@pytest.mark.req("SCN-FORMAT")
def test_a_guessed_word_gets_the_nearest_valid_one() -> None:
    with pytest.raises(ScenarioError, match="did you mean `arrest_warrant`"):
        parse(GOOD.replace("activity: arrest_warrant", "activity: arrest_warant"))
    with pytest.raises(ScenarioError, match="did you mean `delay_s`"):
        parse(GOOD.replace("event: dock}", "event: dock, dealy_s: 5}"))
    with pytest.raises(ScenarioError, match="did you mean `sr-1`"):
        parse(GOOD.replace("team: sr-1, event", "team: sr1, event"))
