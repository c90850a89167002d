"""The run report (SPEC §9) and the check of a scenario's ``expect:`` block.

A run on a real broker (SPEC §15) reports exactly the same structure plus a ``live`` block (the
broker, the devices, the clock mapping, the tolerance, what was offline or excused as jitter),
and its ``expect: missed_s`` figures are compared within that tolerance: twice the tolerance per
stretch of the cause, since each stretch has two edges that jitter may move — plus, likewise,
the harness's own lateness (``lag_s``): a message it published late made the scenario it played
differ from the file by that much.
"""

from __future__ import annotations

from typing import Any

from sim.world.oracle import REPORT_KEYS, Judgement, empty_missed
from sim.world.replay import ObservedCamera, ReplayResult
from sim.world.scenario import Expect

from .words import refusals

MISSED_TOLERANCE = 0.01


def _r(x: float) -> float:
    """Round for the report: microsecond resolution hides float noise, keeps determinism."""
    v = round(x, 6)
    return 0.0 if v == 0 else v


def refused_count(run: ObservedCamera) -> int:
    """NACKed deliveries; a redelivered id is answered again but not counted again."""
    seen: set[object] = set()
    n = 0
    for ack in run.acks:
        if ack.ok:
            continue
        if ack.id is None:
            n += 1
        elif ack.id not in seen:
            seen.add(ack.id)
            n += 1
    return n


def _recordings(run: ObservedCamera) -> list[dict[str, Any]]:
    out = []
    for rec in sorted(run.recordings.values(), key=lambda r: (r.start, r.recording)):
        out.append({
            "start": _r(rec.start),
            "end": _r(rec.end),
            "buffer_s": _r(rec.buffer_s),
            "reasons": list(rec.reasons),
            "incident": rec.incident,
            "segments": rec.segments,
            "segment_list": [[_r(a), _r(b)] for a, b in rec.segment_list],
            "open": rec.open,
        })
    return out


def _alert(a: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"at": _r(a.at), "kind": a.kind}
    if a.cause is not None:
        d["cause"] = a.cause
    if a.activity_id is not None:
        d["activity_id"] = a.activity_id
    if a.span is not None:
        d["span"] = [_r(a.span[0]), _r(a.span[1])]
    return d


def _missed(m: dict[str, float]) -> dict[str, float]:
    return {k: _r(m[k]) for k in REPORT_KEYS}


def footage_block(j: Judgement) -> dict[str, Any]:
    """A camera's footage judgement (P-NOPHANTOM, P-PRIVACY) as report keys."""
    f = j.footage
    return {
        "phantom_s": _r(f.phantom_s),
        "phantom": [{"start": _r(p.start), "end": _r(p.end), "kind": p.kind,
                     "recording": p.recording, "detail": p.detail} for p in f.phantom],
        "prohibited_s": _r(f.prohibited_s),
        "prohibited": [{"start": _r(s.start), "end": _r(s.end), "recording": s.recording,
                        "activity_ids": list(s.activity_ids)} for s in f.prohibited],
        "stopped": list(f.stopped),
    }


def build_report(result: ReplayResult) -> dict[str, Any]:
    """The JSON report of SPEC §9, ``expect`` included."""
    sc = result.scenario
    total = empty_missed()
    phantom_s = prohibited_s = 0.0
    cameras: dict[str, Any] = {}
    for cam, run in result.cameras.items():
        j = result.judgements[cam]
        for k in REPORT_KEYS:
            total[k] += j.missed_s[k]
        phantom_s += j.footage.phantom_s
        prohibited_s += j.footage.prohibited_s
        cameras[cam] = {
            "final_state": run.last_state.state if run.last_state else run.spec.initial,
            "required": [
                {"activity": w.activity, "activity_id": w.activity_id, "start": _r(w.start),
                 "end": _r(w.end),
                 "missed": [{"start": _r(m.start), "end": _r(m.end), "cause": m.cause}
                            for m in misses]}
                for w, misses in zip(result.windows[cam], j.per_window, strict=True)
            ],
            "recordings": _recordings(run),
            "alerts": [_alert(a) for a in run.alerts],
            "refused": refused_count(run),
            "refusals": refusals(run, sc.policy),
            "missed_s": _missed(j.missed_s),
            **footage_block(j),
        }
        if j.unannounced:
            cameras[cam]["unannounced"] = list(j.unannounced)
        if j.overdue_boot:
            cameras[cam]["overdue_boot"] = list(j.overdue_boot)
        # What the camera said that the spec contradicts (SPEC §8b), each category only when
        # it has something to say.
        for key, problems in (("replies", j.replies), ("evidence", j.evidence),
                              ("resources", j.resources)):
            if problems:
                cameras[cam][key] = list(problems)
        if result.forgeries.get(cam):
            cameras[cam]["accepted_forgeries"] = list(result.forgeries[cam])
    report: dict[str, Any] = {
        "scenario": sc.name,
        "policy": sc.policy.name,
        # How the cameras authenticated commands: "none" means anyone on the bus could
        # command them, which every report says (SPEC §14).
        "auth": sc.auth,
        "seed": sc.seed,
        "end": float(sc.end),
        "verdict": result.verdict,
        "expect": None,
        "missed_s": _missed(total),
        "phantom_s": _r(phantom_s),
        "prohibited_s": _r(prohibited_s),
        "cameras": cameras,
    }
    tolerance = 0.0
    if result.live is not None:
        report["live"] = dict(result.live)
        # The scenario as played differs from the file by how late the harness itself was.
        tolerance = float(result.live.get("tolerance_s", 0.0)) + float(result.live.get("lag_s", 0.0))
    if sc.expect is not None:
        failures = check_expect(sc.expect, report, tolerance)
        report["expect"] = {"ok": not failures, "failures": failures}
    return report


def stretches(report: dict[str, Any], cause: str) -> int:
    """How many stretches of ``cause`` (every cause for ``total``) the report's windows show."""
    return sum(1 for cam in report["cameras"].values() for w in cam["required"]
               for m in w["missed"] if cause == "total" or m["cause"] == cause)


def missed_allowance(report: dict[str, Any], cause: str, tolerance_s: float) -> float:
    """How far a ``missed_s`` figure may be from the expected one: 0.01 s in simulation; in a
    live run, twice the tolerance more per stretch of the cause (at least one)."""
    if tolerance_s <= 0:
        return MISSED_TOLERANCE
    return MISSED_TOLERANCE + 2 * tolerance_s * max(1, stretches(report, cause))


def check_expect(expect: Expect, report: dict[str, Any], tolerance_s: float = 0.0) -> list[str]:
    """Each unmet expectation, as a sentence naming what was expected and what happened.

    ``tolerance_s`` is a live run's timing tolerance; it loosens ``missed_s`` and nothing else.
    """
    fails: list[str] = []
    cams = report["cameras"]
    if expect.verdict is not None and report["verdict"] != expect.verdict:
        fails.append(f"verdict: expected {expect.verdict}, got {report['verdict']}")
    for cause, want in expect.missed_s.items():
        got = report["missed_s"][cause]
        allowed = missed_allowance(report, cause, tolerance_s)
        if abs(got - want) > allowed:
            within = f" (live: within {allowed:g})" if tolerance_s > 0 else ""
            fails.append(f"missed_s.{cause}: expected {want:g}, got {got:g}{within}")
    for cam, state in expect.final_state.items():
        got_state = cams[cam]["final_state"]
        if got_state != state:
            fails.append(f"final_state.{cam}: expected {state}, got {got_state}")
    for cam, n in expect.recordings.items():
        got_n = len(cams[cam]["recordings"])
        if got_n != n:
            fails.append(f"recordings.{cam}: expected {n}, got {got_n}")
    for cam, kinds in expect.alerts.items():
        seen = {a["kind"] for a in cams[cam]["alerts"]}
        for kind in kinds:
            if kind not in seen:
                fails.append(f"alerts.{cam}: expected a {kind} alert, got {sorted(seen) or 'none'}")
    for cam, n in expect.refused.items():
        got_r = cams[cam]["refused"]
        if got_r != n:
            fails.append(f"refused.{cam}: expected {n}, got {got_r}")
    return fails


def exit_code(report: dict[str, Any], expect: Expect | None) -> int:
    """0 pass; 1 verdict fail or unmet ``expect`` (SPEC §9).

    A ``fail`` verdict is the expected outcome only for a scenario that says
    ``expect: {verdict: fail}`` (e.g. one that demonstrates a broken controller).
    """
    exp = report.get("expect")
    if exp is not None and not exp["ok"]:
        return 1
    if report["verdict"] == "pass":
        return 0
    return 0 if expect is not None and expect.verdict == "fail" else 1


__all__ = ["build_report", "check_expect", "exit_code", "footage_block", "missed_allowance", "refused_count",
           "stretches"]
