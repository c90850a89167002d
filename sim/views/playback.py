"""A replay paused at a moment: what each camera knew, held and said then (the studio's cursor).

Theory of operation
-------------------
The studio lets a trainer stop a replay at any second and ask each camera "what did you know,
what were you holding, what had you been told?". Everything shown comes from what the run
recorded, the same inputs as every other picture (:mod:`sim.views.model`):

* the camera's **state reports** (the trace's ``out`` records on its ``state`` topic): state and
  since when, the required activities it held, battery and free storage at that report;
* **ground truth** from the scenario: the required windows open at the cursor;
* the **view model**: deliveries with their answers (refusals explained), recordings, allowed
  deactivations with their reason and actor, alerts, misses with their cause.

Battery and free storage are reported only when something changes, so between reports they are
carried forward at the rates of SPEC §2 for the reported state (1 s of charge per second while
buffering or booting, ``record_drain`` while recording, ``charge_rate`` back in the dock, none
while off; storage fills one second per second recorded). Each figure says the time of the
report it was carried from. The pre-event buffer held at ``t`` is what SPEC §2 says the camera
has: ``min(prebuffer_s, t - since)`` while in ``pre_buffer``, nothing otherwise (while
recording, the buffer has become the head of the recording).

:class:`Playback` is built once per run; :meth:`Playback.at` is a binary search plus a few
look-ups, so a cursor dragged across a 12-hour shift answers at once. It reads no clock and
iterates nothing unordered: the same run and time give the same answer.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from typing import Any

from controller.spans import EPS
from sim.world.replay import ReplayResult

from .model import CameraView, RunView, fmt_hms

__all__ = ["Playback"]

_RECENT_MESSAGES = 5
_RECENT_ALERTS = 3


@dataclass(frozen=True, slots=True)
class _Report:
    t: float
    state: str
    since: float
    active: tuple[str, ...]
    battery_s: float
    storage_s: float


def _reports(records: list[dict[str, Any]], prefix: str) -> dict[str, list[_Report]]:
    out: dict[str, list[_Report]] = {}
    for rec in records:
        if rec.get("kind") != "out" or not str(rec.get("topic", "")).endswith("/state"):
            continue
        cam = rec.get("camera")
        if not isinstance(cam, str) or rec["topic"] != f"{prefix}/{cam}/state":
            continue
        try:
            body = json.loads(rec["payload"])
            out.setdefault(cam, []).append(_Report(
                float(rec["t"]), str(body["state"]), float(body["since"]),
                tuple(str(a) for a in body.get("active", [])), float(body["battery_s"]),
                float(body["storage_s"]),
            ))
        except (ValueError, KeyError, TypeError):
            continue  # a controller that publishes a broken state report shows nothing new
    return out


def _events(result: ReplayResult, view: RunView) -> list[dict[str, Any]]:
    """Every moment worth stopping at, with what happened then (sorted, one entry per time)."""
    sc = result.scenario
    at: dict[float, list[str]] = {}

    def add(t: float, text: str) -> None:
        at.setdefault(round(t, 6), []).append(text)

    for e in sc.timeline:
        who = e.camera or (f"team {e.team}" if e.team else "all")
        if e.event is not None:
            detail = " ".join(str(v) for k, v in e.fields.items() if k != "actor")
            late = f", sent {e.delay_s:g} s later" if e.delay_s > 0 else ""
            add(e.at, f"{e.event} {detail} ({who}{late})".replace("  ", " "))
        elif e.fault is not None:
            add(e.at, f"{e.fault.replace('_', ' ')} for {e.for_s:g} s ({who})")
        else:
            add(e.at, f"raw message ({who})")
    for cam in view.cameras:
        for m in cam.inbound:
            if m.ts is not None and m.ts < m.t - 0.5:
                add(m.t, f"{cam.camera_id} receives {m.label} late")
            if m.ok is False and not m.repeat:
                add(m.t, f"{cam.camera_id} refuses {m.label}")
        prev = None
        for s in cam.states:
            if s.state != prev:
                add(s.start, f"{cam.camera_id} → {s.state}")
            prev = s.state
        for a in cam.alerts:
            add(a.t, f"{cam.camera_id} alert {a.label}")
        for miss in cam.misses:
            add(miss.start, f"{cam.camera_id} starts missing ({miss.cause})")
    return [{"t": t, "what": texts} for t, texts in sorted(at.items())]


class Playback:
    """The run at any moment (see module docs)."""

    def __init__(self, result: ReplayResult, view: RunView, records: list[dict[str, Any]]) -> None:
        self.result = result
        self.view = view
        self.end = view.end
        self._reports = _reports(records, result.scenario.prefix)
        self._times = {cam: [r.t for r in reps] for cam, reps in self._reports.items()}
        self.events = _events(result, view)
        self._event_times = [e["t"] for e in self.events]

    # ------------------------------------------------------------------ stepping

    def next_event(self, t: float) -> float:
        """The first event strictly after ``t`` (the end when none)."""
        i = bisect.bisect_right(self._event_times, t + EPS)
        return self._event_times[i] if i < len(self._event_times) else self.end

    def previous_event(self, t: float) -> float:
        """The last event strictly before ``t`` (0 when none)."""
        i = bisect.bisect_left(self._event_times, t - EPS)
        return self._event_times[i - 1] if i > 0 else 0.0

    # ------------------------------------------------------------------ the cursor

    def at(self, t: float) -> dict[str, Any]:
        """Every camera at ``t`` (clamped to the run), JSON-ready."""
        t = max(0.0, min(float(t), self.end))
        i = bisect.bisect_right(self._event_times, t + EPS)
        return {
            "t": t,
            "label": fmt_hms(t),
            "happening": self.events[i - 1]["what"] if i and abs(self._event_times[i - 1] - t) <= EPS
            else [],
            "cameras": [self._camera(cam, t) for cam in self.view.cameras],
        }

    def _camera(self, cam: CameraView, t: float) -> dict[str, Any]:
        spec = self.result.scenario.camera(cam.camera_id)
        p = spec.params
        reps = self._reports.get(cam.camera_id, [])
        i = bisect.bisect_right(self._times.get(cam.camera_id, []), t + EPS) - 1
        rep = reps[i] if i >= 0 else None
        state = rep.state if rep else spec.initial
        since = rep.since if rep else 0.0
        battery = storage = None
        if rep is not None:
            dt = t - rep.t
            rate = {"recording": -p.record_drain, "docked": p.charge_rate, "off": 0.0}.get(
                state, -1.0)
            battery = max(0.0, min(p.battery_s, rep.battery_s + rate * dt))
            storage = max(0.0, rep.storage_s - dt) if state == "recording" else rep.storage_s
        buffer_held = min(p.prebuffer_s, max(0.0, t - since)) if state == "pre_buffer" else 0.0

        recording = next((f for f in cam.footage if f.start - EPS <= t < f.end - EPS), None)
        pause = next((d for d in cam.deactivations if d.start - EPS <= t < d.end - EPS), None)
        holds = [f"required activity {a}" for a in (rep.active if rep else ())]
        if pause is not None:
            holds = [f"{h} (paused)" for h in holds]
        if recording is not None and state == "recording":
            holds += [f"manual: {r}" for r in recording.reasons
                      if r == "button" or r.startswith("signal:")]
        missed: dict[str, float] = {}
        missing_now = None
        for m in cam.misses:
            if m.start < t:
                missed[m.cause] = round(missed.get(m.cause, 0.0) + min(m.end, t) - m.start, 6)
            if m.start - EPS <= t < m.end - EPS:
                missing_now = m.cause
        messages = [m for m in cam.inbound if m.t <= t + EPS][-_RECENT_MESSAGES:]
        alerts = [a for a in cam.alerts if a.t <= t + EPS][-_RECENT_ALERTS:]
        return {
            "camera": cam.camera_id,
            "state": state,
            "since": since,
            "reported_at": rep.t if rep else None,
            "buffer_s": round(buffer_held, 6),
            "prebuffer_s": p.prebuffer_s,
            "battery_s": None if battery is None else round(battery, 3),
            "battery_full_s": p.battery_s,
            "storage_free_s": None if storage is None else round(storage, 3),
            "storage_s": p.storage_s,
            "required_now": [
                {"activity": w.activity, "activity_id": w.activity_id, "start": w.start, "end": w.end}
                for w in cam.windows if w.start - EPS <= t < w.end - EPS
            ],
            "holds": holds,
            "recording": None if recording is None or state != "recording" else {
                "incident": recording.incident, "start": recording.start,
                "buffer_s": round(recording.buffer_end - recording.start, 6),
            },
            "deactivation": None if pause is None else {
                "reason": pause.reason, "actor": pause.actor, "since": pause.start, "until": pause.end,
            },
            "missing_now": missing_now,
            "missed_so_far": missed,
            "messages": [
                {"t": m.t, "message": m.label, "id": m.msg_id, "repeat": m.repeat,
                 "answer": "refused" if m.ok is False else "accepted" if m.ok else "no answer",
                 "error": m.error, "meaning": m.meaning, "allowed": list(m.allowed),
                 "nearest": m.nearest}
                for m in messages
            ],
            "alerts": [{"t": a.t, "alert": a.label, "description": a.description} for a in alerts],
        }
