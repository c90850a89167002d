"""The files a run writes (SPEC §10): trace, VCD, Perfetto, text report, and `run` writing all."""

from __future__ import annotations

import io
import itertools
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from output_scenarios import DOCK_MID_WARRANT, SHIFT_12H, run_text
from rich.console import Console
from typer.testing import CliRunner
from vcd.reader import TokenKind, tokenize

from controller.messages import STATES
from sim.cli import app
from sim.views.files import write_outputs
from sim.views.model import fmt_duration, fmt_hms, run_view
from sim.views.perfetto import perfetto_events
from sim.views.text import render_text
from sim.views.waveform import write_vcd

# ----------------------------------------------------------------------------------- trace


def _trace_bytes(text: str, tmp_path: Path, seed: int | None = None, name: str = "t") -> bytes:
    result, report, records = run_text(text, seed)
    path = tmp_path / f"{name}.jsonl"
    write_outputs(result, report, records, trace=path)
    return path.read_bytes()


@pytest.mark.req("OUT-TRACE")
def test_trace_has_every_message_state_change_action_and_alert(tmp_path: Path) -> None:
    result, report, records = run_text(DOCK_MID_WARRANT)
    path = tmp_path / "t.jsonl"
    write_outputs(result, report, records, trace=path)
    lines = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert lines == records
    times = [r["t"] for r in lines]
    assert times == sorted(times), "records are in sim-time order"
    kinds = [r["kind"] for r in lines]
    assert kinds[-1] == "end" and lines[-1]["t"] == 1800.0
    sends = [r for r in lines if r["kind"] == "send"]
    delivers = [r for r in lines if r["kind"] == "deliver"]
    assert [r["entry"] for r in sends] == [0, 1, 2]
    assert [json.loads(r["payload"])["type"] for r in delivers] == [
        "activity_start", "dock", "activity_end"]
    states = [(r["t"], r["prev"], r["state"]) for r in lines if r["kind"] == "state"]
    assert states == [(0.0, None, "pre_buffer"), (300.0, "pre_buffer", "recording"),
                      (900.0, "recording", "docked")]
    acks = [(r["id"], r["ok"]) for r in lines if r["kind"] == "ack"]
    assert acks == [("m-0", True), ("m-1", True), ("m-2", True)]
    (alert,) = [r for r in lines if r["kind"] == "alert"]
    assert alert == {"t": 900.0, "kind": "alert", "camera": "cam-1",
                     "alert": "missed_required_recording", "at": 900.0, "cause": "docked",
                     "activity_id": "w-2", "span": None}
    (rec,) = [r for r in lines if r["kind"] == "recording"]
    assert (rec["start"], rec["end"], rec["buffer_s"], rec["final"]) == (270.0, 900.0, 30.0, True)
    # each decoded record follows the raw publication it decodes
    for i, r in enumerate(lines):
        if r["kind"] in ("state", "ack", "alert", "recording"):
            assert lines[i - 1]["kind"] == "out"


@pytest.mark.req("P-DET", "OUT-TRACE")
def test_trace_is_byte_identical_for_same_scenario_and_seed(tmp_path: Path) -> None:
    first = _trace_bytes(SHIFT_12H, tmp_path, name="a")
    second = _trace_bytes(SHIFT_12H, tmp_path, name="b")
    assert first == second
    assert len(first.splitlines()) > 200


@pytest.mark.req("P-DET")
def test_another_seed_on_a_jittery_bus_changes_the_trace(tmp_path: Path) -> None:
    seed3 = _trace_bytes(SHIFT_12H, tmp_path, name="a")
    seed4 = _trace_bytes(SHIFT_12H, tmp_path, seed=4, name="b")
    assert seed3 != seed4


@pytest.mark.req("P-DET", "OUT-TIMELINE", "OUT-VCD", "OUT-PERFETTO")
def test_every_output_file_is_byte_identical_across_runs(tmp_path: Path) -> None:
    def files(tag: str) -> list[bytes]:
        result, report, records = run_text(SHIFT_12H)
        paths = [tmp_path / f"{tag}.{ext}" for ext in ("jsonl", "html", "vcd", "json")]
        write_outputs(result, report, records, trace=paths[0], timeline=paths[1], vcd=paths[2],
                      perfetto=paths[3])
        return [p.read_bytes() for p in paths]

    assert files("a") == files("b")


# ------------------------------------------------------------------------------------- VCD


def _parse_vcd(text: str) -> tuple[str, dict[str, dict[str, str]], dict[str, list[tuple[int, Any]]],
                                   dict[str, str]]:
    """(timescale, scope → var name → id, id → [(tick, value)], id → var type) from VCD text."""
    timescale = ""
    scopes: list[str] = []
    variables: dict[str, dict[str, str]] = defaultdict(dict)
    types: dict[str, str] = {}
    changes: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    now = 0
    for tok in tokenize(io.BytesIO(text.encode())):
        if tok.kind is TokenKind.TIMESCALE:
            timescale = f"{int(tok.timescale.magnitude)} {tok.timescale.unit.value}"
        elif tok.kind is TokenKind.SCOPE:
            scopes.append(tok.scope.ident)
        elif tok.kind is TokenKind.UPSCOPE:
            scopes.pop()
        elif tok.kind is TokenKind.VAR:
            variables[".".join(scopes)][tok.var.reference] = tok.var.id_code
            types[tok.var.id_code] = tok.var.type_.value
        elif tok.kind is TokenKind.CHANGE_TIME:
            now = tok.time_change
        elif tok.kind is TokenKind.CHANGE_SCALAR:
            changes[tok.scalar_change.id_code].append((now, tok.scalar_change.value))
        elif tok.kind is TokenKind.CHANGE_STRING:
            changes[tok.string_change.id_code].append((now, tok.string_change.value))
    return timescale, variables, changes, types


@pytest.mark.req("OUT-VCD")
def test_vcd_parses_back_with_a_wire_per_state_and_trigger_and_a_state_string() -> None:
    result, report, records = run_text(DOCK_MID_WARRANT)
    out = io.StringIO()
    write_vcd(run_view(result, report, records), out)
    text = out.getvalue()
    assert "$date sim time 0 = scenario start $end" in text  # no wall-clock date (P-DET)
    timescale, variables, changes, types = _parse_vcd(text)
    assert timescale == "1 ms"
    cam = variables["bwcsim.cam_1"]
    for name in (*STATES, "required", "req_w_2", "dock", "footage", "missed", "alert"):
        assert types[cam[name]] == "wire", name
    for name in ("state", "missed_cause", "last_alert"):
        assert types[cam[name]] == "string", name

    def wave(name: str) -> list[tuple[int, Any]]:
        return changes[cam[name]]

    # sim seconds map to whole milliseconds
    assert wave("pre_buffer") == [(0, "1"), (300_000, "0")]
    assert wave("recording") == [(0, "0"), (300_000, "1"), (900_000, "0")]
    assert wave("docked") == [(0, "0"), (900_000, "1")]  # still docked at the end: no fall
    assert wave("req_w_2") == [(0, "0"), (300_000, "1"), (1_500_000, "0")]
    assert wave("dock") == [(0, "0"), (900_000, "1")]
    assert wave("footage") == [(0, "0"), (270_000, "1"), (900_000, "0")]
    assert wave("missed") == [(0, "0"), (900_000, "1"), (1_500_000, "0")]
    assert wave("alert") == [(0, "0"), (900_000, "1"), (900_001, "0")]
    assert wave("state") == [(0, "pre_buffer"), (300_000, "recording"), (900_000, "docked")]
    assert wave("missed_cause") == [(0, "-"), (900_000, "docked"), (1_500_000, "-")]
    assert wave("last_alert") == [(0, "-"), (900_000, "missed_required_recording:docked")]
    assert text.rstrip().endswith("#1800000")  # the dump runs to the scenario end


@pytest.mark.req("OUT-VCD")
def test_vcd_of_a_busy_shift_has_exactly_one_state_high_at_every_change() -> None:
    result, report, records = run_text(SHIFT_12H)
    out = io.StringIO()
    write_vcd(run_view(result, report, records), out)
    _ts, variables, changes, _types = _parse_vcd(out.getvalue())
    assert set(variables) == {f"bwcsim.cam_{i}" for i in range(1, 5)}
    assert "sig_taser" in variables["bwcsim.cam_2"]
    assert {"btn_start", "btn_stop", "nack"} <= set(variables["bwcsim.cam_4"])
    for scope, names in variables.items():
        ticks = sorted({t for s in STATES for t, _ in changes[names[s]]})
        level = dict.fromkeys(STATES, "0")
        for tick in ticks:
            for s in STATES:
                for t, v in changes[names[s]]:
                    if t == tick:
                        level[s] = v
            assert sum(v == "1" for v in level.values()) == 1, (scope, tick, level)
        for name, code in names.items():
            wave = changes[code]
            assert [t for t, _ in wave] == sorted({t for t, _ in wave}), (scope, name)


# -------------------------------------------------------------------------------- Perfetto


@pytest.mark.req("OUT-PERFETTO")
def test_perfetto_has_a_named_track_per_camera_with_slices_and_instants() -> None:
    result, report, records = run_text(SHIFT_12H)
    doc = perfetto_events(run_view(result, report, records))
    json.dumps(doc)  # plain JSON values only
    events = doc["traceEvents"]
    procs = {e["pid"]: e["args"]["name"] for e in events
             if e["ph"] == "M" and e["name"] == "process_name"}
    assert procs == {1: "cam-1", 2: "cam-2", 3: "cam-3", 4: "cam-4"}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
               if e["ph"] == "M" and e["name"] == "thread_name"}
    for pid in procs:
        assert {"state", "required", "footage", "missed", "messages", "alerts"} <= {
            name for (p, _t), name in threads.items() if p == pid}
    for e in events:
        if e["ph"] in ("X", "i"):
            assert (e["pid"], e["tid"]) in threads, e
            assert isinstance(e["ts"], int)
    slices = [e for e in events if e["ph"] == "X"]
    assert all(isinstance(e["dur"], int) and e["dur"] >= 0 for e in slices)
    # states: slices on cam-2's state track tile the run in microseconds
    cam2_states = sorted((e["ts"], e["ts"] + e["dur"]) for e in slices
                         if e["pid"] == 2 and e["cat"] == "state")
    assert cam2_states[0][0] == 0 and cam2_states[-1][1] == 12 * 3600 * 1_000_000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cam2_states))
    # one recording slice per recording, one instant per alert, one miss slice per miss
    for pid, cam in enumerate(report["cameras"].values(), start=1):
        mine = [e for e in events if e["pid"] == pid and e["ph"] != "M"]
        assert len([e for e in mine if e["cat"] == "footage" and e["name"].startswith("recording")]
                   ) == len(cam["recordings"])
        assert len([e for e in mine if e["ph"] == "i" and e["cat"] == "alert"]) == len(cam["alerts"])
    n_misses = sum(len(j.misses) for j in result.judgements.values())
    assert len([e for e in slices if e["cat"] == "missed"]) == n_misses
    # slices on one thread nest or follow each other, never partly overlap
    by_thread: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for e in slices:
        by_thread[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for spans in by_thread.values():
        stack: list[tuple[int, int]] = []
        for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1][1] <= start:
                stack.pop()
            assert not stack or end <= stack[-1][1], (stack[-1], (start, end))
            stack.append((start, end))


@pytest.mark.req("OUT-PERFETTO")
def test_perfetto_puts_partly_overlapping_windows_on_separate_threads() -> None:
    text = DOCK_MID_WARRANT.replace(
        "  - {at: 900, camera: cam-1, event: dock}\n",
        "  - {at: 600, camera: cam-1, event: activity_start, activity: search_warrant, "
        "activity_id: s-9}\n  - {at: 1700, camera: cam-1, event: activity_end, activity_id: s-9}\n",
    ).split("expect:")[0]
    result, report, records = run_text(text)
    events = perfetto_events(run_view(result, report, records))["traceEvents"]
    req = {e["name"]: e["tid"] for e in events if e["ph"] == "X" and e["cat"] == "required"}
    assert req["arrest_warrant w-2"] != req["search_warrant s-9"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert names[req["search_warrant s-9"]] == "required 2"


# ----------------------------------------------------------------------------- text report


def _text_report(report: dict[str, Any], width: int = 80) -> str:
    con = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    render_text(report, con)
    return con.export_text()


@pytest.mark.req("OUT-TEXT")
def test_text_report_shows_verdict_windows_coverage_recordings_alerts_and_expect() -> None:
    _result, report, _records = run_text(DOCK_MID_WARRANT)
    text = _text_report(report)
    assert "PASS" in text
    assert "Camera docked in the middle of a warrant service" in text
    assert re.search(r"arrest_warrant\s+w-2\s+00:05:00\s+00:25:00\s+50\.0%\s+docked 600 s", text)
    assert re.search(r"cam-1-1\s+00:04:30\s+00:15:00\s+30 s\s+1\s+w-2", text)
    assert re.search(r"00:15:00\s+missed_required_recording\s+docked\s+w-2", text)
    assert "0 refused" in text
    assert "expect: met" in text


@pytest.mark.req("OUT-TEXT")
@pytest.mark.parametrize("scenario", [DOCK_MID_WARRANT, SHIFT_12H], ids=["dock", "shift"])
def test_text_report_fits_an_80_column_terminal(scenario: str) -> None:
    _result, report, _records = run_text(scenario)
    text = _text_report(report)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    # times and percentages are never broken across lines
    for line in text.splitlines():
        assert not re.search(r"\d\d:\d\d:?$", line.rstrip()), line


#: A late team trigger, then a dock and an undock, on a bus with 0.2 s latency: every alert
#: time has hundredths and the late_trigger span is the widest a span gets, so the Alerts table
#: is wider than 80 columns before anything gives way.
FRACTIONAL_ALERTS = """\
version: 1
name: Late trigger and a dock on a slow link
policy: dhs-2023
end: "00:50:00"
cameras:
  - {id: cam-1, team: t-2}
bus: {latency_s: 0.2}
timeline:
  - {at: "00:20:00", team: t-2, event: activity_start, activity: arrest_warrant,
     activity_id: warrant-2024-0117, delay_s: 90}
  - {at: "00:30:00", camera: cam-1, event: dock}
  - {at: "00:35:00", camera: cam-1, event: undock}
  - {at: "00:45:00", team: t-2, event: activity_end, activity_id: warrant-2024-0117}
"""


@pytest.mark.req("OUT-TEXT")
@pytest.mark.parametrize("width", [80, 72])
def test_text_report_never_folds_an_alert_kind_or_cause(width: int) -> None:
    _result, report, _records = run_text(FRACTIONAL_ALERTS)
    alerts = report["cameras"]["cam-1"]["alerts"]
    kinds = {a["kind"] for a in alerts}
    assert {"late_trigger", "missed_required_recording"} <= kinds
    assert any(a["at"] != int(a["at"]) for a in alerts), "alert times have a fraction"
    text = _text_report(report, width)
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("Alerts")):]
    # each alert is a row starting with its time, and the row holds its kind and cause whole
    for alert in alerts:
        (row,) = [line for line in table if line.startswith(fmt_hms(alert["at"]) + " ")
                  and f" {alert['kind']} " in line + " "
                  and (not alert.get("cause") or f" {alert['cause']} " in line + " ")]
        assert row
    # the span gives way instead, and breaks between its times, never inside one
    (span,) = [a["span"] for a in alerts if a["kind"] == "late_trigger"]
    assert fmt_hms(span[0]) in text and fmt_hms(span[1]) in text


@pytest.mark.req("OUT-TEXT")
def test_text_report_lists_unmet_expectations_and_fail_banner() -> None:
    text = DOCK_MID_WARRANT.replace("docked: 600}", "docked: 500}")
    _result, report, _records = run_text(text)
    out = _text_report(report)
    assert "expect: not met" in out
    assert "missed_s.docked: expected 500, got 600" in out


@pytest.mark.req("OUT-TEXT")
def test_durations_and_times_read_as_people_write_them() -> None:
    assert fmt_hms(0) == "00:00:00"
    assert fmt_hms(43200) == "12:00:00"
    assert fmt_hms(900.05) == "00:15:00.05"
    assert fmt_duration(20) == "20 s"
    assert fmt_duration(600) == "600 s (10 min)"
    assert fmt_duration(5400) == "5400 s (1 h 30 min)"
    assert fmt_duration(899.85) == "899.85 s (15 min)"


# ------------------------------------------------------------------------------------- CLI


@pytest.mark.req("OUT-TRACE", "OUT-TIMELINE", "OUT-VCD", "OUT-PERFETTO")
def test_one_run_writes_all_four_files(tmp_path: Path) -> None:
    scenario = tmp_path / "dock.yaml"
    scenario.write_text(DOCK_MID_WARRANT)
    out = {ext: tmp_path / f"run.{ext}" for ext in ("jsonl", "html", "vcd", "json")}
    res = CliRunner().invoke(app, [
        "run", str(scenario), "--report", "json", "--trace", str(out["jsonl"]),
        "--timeline", str(out["html"]), "--vcd", str(out["vcd"]), "--perfetto", str(out["json"]),
    ])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["verdict"] == "pass"
    assert out["jsonl"].read_text().splitlines()[-1] == '{"t":1800.0,"kind":"end"}'
    assert out["html"].read_text().startswith("<!DOCTYPE html>")
    assert "$timescale 1 ms $end" in out["vcd"].read_text()
    assert "traceEvents" in json.loads(out["json"].read_text())


@pytest.mark.req("OUT-TEXT")
def test_run_prints_the_text_report_by_default(tmp_path: Path) -> None:
    scenario = tmp_path / "dock.yaml"
    scenario.write_text(DOCK_MID_WARRANT)
    res = CliRunner().invoke(app, ["run", str(scenario)], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "PASS" in res.stdout and "expect: met" in res.stdout
    assert max(len(line) for line in res.stdout.splitlines()) <= 80
