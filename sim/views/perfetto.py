"""A run as Chrome trace-event JSON, for ui.perfetto.dev or chrome://tracing (SPEC §10).

Theory of operation
-------------------
Each camera is one process track (``pid`` = its position in the scenario, named by a
``process_name`` metadata event and kept in scenario order by ``process_sort_index``). Inside
it, named thread tracks hold one kind of thing each, so a camera reads top to bottom like the
HTML timeline:

====  ============  =============================================================
tid   track         events
====  ============  =============================================================
1     state         complete slices (``ph: "X"``), one per reported state span
2     required      complete slices per required window (ground truth)
3     footage       complete slices per recording, the buffer part as a child slice
4     missed        complete slices per uncovered span, named by cause
5     messages      thread-scoped instants (``ph: "i"``) per delivered message
6     alerts        thread-scoped instants per alert
====  ============  =============================================================

The trace-event format nests complete slices on one thread by containment and cannot show
two slices that overlap without one containing the other; required windows may do exactly
that (two warrants that overlap in time), so a slice that would overlap a previous one on its
track goes to a further track of the same kind (``required 2``, tid 12, ...). Timestamps and
durations are integer microseconds (sim seconds x 1e6, rounded), so the file is identical for
identical runs (P-DET).
"""

from __future__ import annotations

from typing import Any

import msgspec

from .model import CameraView, RunView

__all__ = ["TRACKS", "perfetto_events", "render_perfetto"]

#: Track name → base thread id; overflow tracks of a kind use base + 10, base + 20, ...
TRACKS: dict[str, int] = {
    "state": 1, "required": 2, "footage": 3, "missed": 4, "messages": 5, "alerts": 6,
}


def _us(t: float) -> int:
    return round(t * 1_000_000)


class _Track:
    """Slices of one kind for one camera, spread over as few threads as nesting allows."""

    def __init__(self, pid: int, kind: str) -> None:
        self.pid = pid
        self.kind = kind
        self.lanes: list[list[tuple[int, int]]] = []  # per lane: open (start, end) stack

    def _lane_for(self, start: int, end: int) -> int:
        for i, stack in enumerate(self.lanes):
            while stack and stack[-1][1] <= start:
                stack.pop()
            if not stack or end <= stack[-1][1]:  # fits after, or nests inside, the top slice
                stack.append((start, end))
                return i
        self.lanes.append([(start, end)])
        return len(self.lanes) - 1

    def tid(self, lane: int) -> int:
        return TRACKS[self.kind] + 10 * lane

    def slice(self, name: str, start: float, end: float, args: dict[str, Any]) -> dict[str, Any]:
        a, b = _us(start), _us(end)
        lane = self._lane_for(a, b)
        return {"name": name, "cat": self.kind, "ph": "X", "ts": a, "dur": b - a,
                "pid": self.pid, "tid": self.tid(lane), "args": args}

    def names(self) -> list[tuple[int, str, int]]:
        """(tid, name, sort index) of each thread; overflow threads sort beside their kind."""
        count = max(1, len(self.lanes))
        return [(self.tid(i), self.kind if i == 0 else f"{self.kind} {i + 1}",
                 TRACKS[self.kind] * 100 + i) for i in range(count)]


def _camera_events(cam: CameraView, pid: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    tracks = {kind: _Track(pid, kind) for kind in TRACKS}
    for s in cam.states:
        if s.end > s.start:
            events.append(tracks["state"].slice(
                s.state, s.start, s.end, {"storage_full": s.storage_full}))
    for w in cam.windows:
        events.append(tracks["required"].slice(
            f"{w.activity} {w.activity_id}", w.start, w.end,
            {"activity": w.activity, "activity_id": w.activity_id, "delivered": w.delivered,
             "lost": w.lost}))
    for f in sorted(cam.footage, key=lambda f: (f.start, -f.end)):
        events.append(tracks["footage"].slice(
            f"recording {f.incident}", f.start, f.end,
            {"recording": f.recording, "incident": f.incident, "reasons": list(f.reasons),
             "segments": [list(seg) for seg in f.segments], "open": f.open}))
        if f.buffer_end > f.start:
            events.append(tracks["footage"].slice(
                "pre-event buffer", f.start, f.buffer_end,
                {"buffer_s": round(f.buffer_end - f.start, 6)}))
    for m in cam.misses:
        events.append(tracks["missed"].slice(
            f"missed: {m.cause}", m.start, m.end,
            {"cause": m.cause, "activity_ids": list(m.activity_ids),
             "seconds": round(m.end - m.start, 6)}))
    msg_tid = TRACKS["messages"]
    for msg in cam.inbound:
        events.append({"name": msg.label, "cat": "message", "ph": "i", "s": "t",
                       "ts": _us(msg.t), "pid": pid, "tid": msg_tid,
                       "args": {"id": msg.msg_id, "event": msg.event, **msg.fields,
                                "ts": msg.ts, "ok": msg.ok, "error": msg.error,
                                "repeat": msg.repeat}})
    alert_tid = TRACKS["alerts"]
    for al in cam.alerts:
        events.append({"name": al.label, "cat": "alert", "ph": "i", "s": "t",
                       "ts": _us(al.t), "pid": pid, "tid": alert_tid,
                       "args": {"kind": al.kind, "cause": al.cause,
                                "activity_id": al.activity_id,
                                "span": list(al.span) if al.span else None}})
    meta: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
         "args": {"name": cam.camera_id}},
        {"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
         "args": {"sort_index": pid}},
    ]
    for track in tracks.values():
        for tid, name, sort_index in track.names():
            meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                         "args": {"name": name}})
            meta.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                         "args": {"sort_index": sort_index}})
    return meta + events


def perfetto_events(view: RunView) -> dict[str, Any]:
    """The trace as a JSON-ready dict: ``{"traceEvents": [...], ...}``."""
    events: list[dict[str, Any]] = []
    for pid, cam in enumerate(view.cameras, start=1):
        events.extend(_camera_events(cam, pid))
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {"scenario": view.name, "policy": view.policy, "seed": view.seed,
                      "end_s": view.end, "verdict": view.verdict,
                      "missed_s_total": view.missed_s.get("total", 0.0)},
    }


def render_perfetto(view: RunView) -> bytes:
    """The trace as UTF-8 JSON bytes."""
    return msgspec.json.encode(perfetto_events(view)) + b"\n"
