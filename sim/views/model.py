"""Files a run can write next to its report: trace, timeline, waveform, Perfetto (SPEC §10).

Theory of operation
-------------------
Every picture of a run is drawn from one :class:`RunView`, built here from three inputs:

* the :class:`~sim.world.replay.ReplayResult` — what each camera *reported* (its retained ``state``
  publications, its recordings and alerts), the ground-truth required windows and the
  oracle's misses;
* the SPEC §9 report dict — the verdict, the ``missed_s`` totals and the ``expect`` outcome,
  so a picture never disagrees with the report printed beside it;
* the trace records — the only place that says which inbound message reached which camera
  when, and what the camera answered.

States become spans by merging consecutive reports of the same state (a camera re-publishes
its state when only its battery or active list changes) and closing the last one at ``end``.
A ``pre_buffer`` report with no free storage is its own span, flagged ``storage_full``, since
a trainer needs to see *why* nothing recorded. An inbound delivery is paired with the first
``ack`` the same camera published after it: the reference node answers synchronously, and a
node that does not ack simply leaves ``ok`` unknown. A delivery whose message id the camera has
already seen is flagged ``repeat`` (QoS 1 redelivery; R-IDEM says it has no second effect).

Nothing here reads a clock or iterates an unordered collection, so every output is
byte-identical for the same scenario and seed (P-DET).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.policy import Policy
from controller.spans import EPS
from sim.world.oracle import Judgement, Window
from sim.world.replay import ObservedCamera, ReplayResult

from .words import describe_refusal

__all__ = [
    "AlertMark",
    "CameraView",
    "DeactivationSpan",
    "Finding",
    "FootageSpan",
    "Inbound",
    "MissSpan",
    "RunView",
    "StateSpan",
    "fmt_duration",
    "fmt_hms",
    "live_summary",
    "miss_tone",
    "run_view",
]


# ------------------------------------------------------------------------------ formatting


def fmt_hms(t: float) -> str:
    """Sim seconds as ``HH:MM:SS``, with hundredths only when the time has a fraction."""
    cs = round(t * 100)
    sign = "-" if cs < 0 else ""
    cs = abs(cs)
    secs, frac = divmod(cs, 100)
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    out = f"{sign}{h:02d}:{m:02d}:{s:02d}"
    return f"{out}.{frac:02d}" if frac else out


def fmt_duration(s: float) -> str:
    """A duration for people: ``20 s``, ``600 s (10 min)``, ``5400 s (1 h 30 min)``."""
    text = f"{s:.2f}".rstrip("0").rstrip(".") + " s"
    if s < 60 - EPS:
        return text
    mins = round(s / 60)
    h, m = divmod(mins, 60)
    human = f"{h} h {m} min" if h and m else f"{h} h" if h else f"{m} min"
    approx = "" if abs(s - mins * 60) < 0.5 else "~"
    return f"{text} ({approx}{human})"


#: The report's categories of what a camera said that the spec contradicts (SPEC §8b), with
#: the words the text report and the timeline print before each problem.
SAID_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("replies", "wrong reply"),
    ("evidence", "untrue evidence"),
    ("resources", "untrue self-report"),
)


def miss_tone(missed_s: Mapping[str, float], unannounced: Sequence[str]) -> str:
    """How alarming a camera's misses are, for the colour of its summary line.

    ``"fault"`` when the controller lost seconds it could have kept or a miss went without
    the alert it needs — what fails the verdict; ``"excused"`` when seconds were missed but
    every one is explained (docked, battery, late trigger, ... and announced); ``"none"``
    when nothing required was missed. Painting an excused miss red would tell a trainer a
    passing camera did something wrong.
    """
    if missed_s.get("controller", 0.0) > EPS or unannounced:
        return "fault"
    return "excused" if missed_s.get("total", 0.0) > EPS else "none"


def live_summary(live: Mapping[str, Any]) -> list[str]:
    """A live run's metadata as short sentences, for every picture of it (SPEC §15)."""
    clock = live["clock"]
    devices = ", ".join(
        cam if info["device"] == cam else f"{cam} = device {info['device']}"
        for cam, info in live["devices"].items()
    )
    lines = [
        f"Live run on {live['broker']}{' (TLS)' if live.get('tls') else ''}, topic prefix "
        f"{live['prefix']}, run {live['run']}; devices: {devices}.",
        f"Clock: devices read {clock['speed']:g} x Unix time; scenario second 0 = Unix "
        f"{clock['start_unix']:.3f} (device time {clock['device_origin']:.3f}).",
        f"Tolerance {fmt_duration(live['tolerance_s'])} of scenario time "
        f"({live['tolerance_wall_s'] * 1000:g} ms of wall time); the harness ran at most "
        f"{fmt_duration(live['lag_s'])} late; jitter excused: {fmt_duration(live['excused_s'])}.",
    ]
    for cam, info in live["devices"].items():
        if info.get("offline"):
            spans = ", ".join(f"{fmt_hms(a)}-{fmt_hms(b)}" for a, b in info["offline"])
            lines.append(f"{cam} was OFFLINE {spans}: misses there count as bus, not as the "
                         "controller's.")
        if info.get("unacknowledged"):
            lines.append(f"{cam} never acknowledged {', '.join(info['unacknowledged'])}.")
    if live.get("prompted"):
        lines.append(f"Caused by the operator when prompted: {', '.join(live['prompted'])}.")
    lines.extend(live.get("notes", []))
    if not live.get("complete", True):
        lines.append("Incomplete: a device was offline or silent, so not everything was judged.")
    return lines


# ------------------------------------------------------------------------------ the view


@dataclass(frozen=True, slots=True)
class StateSpan:
    """The camera reported ``state`` from ``start`` to ``end``."""

    start: float
    end: float
    state: str
    storage_full: bool = False


@dataclass(frozen=True, slots=True)
class FootageSpan:
    """One recording: ``start``..``buffer_end`` came from the pre-event buffer."""

    recording: str
    incident: str
    start: float
    end: float
    buffer_end: float
    segments: tuple[tuple[float, float], ...]
    reasons: tuple[str, ...]
    open: bool


@dataclass(frozen=True, slots=True)
class MissSpan:
    """Uncovered required seconds with their one cause, and the windows they belong to."""

    start: float
    end: float
    cause: str
    activity_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    """Footage that should not be there: ``phantom`` (it cannot exist, with its ``kind``) or
    ``prohibited`` (recorded while a prohibited activity was open, nothing justifying it)."""

    start: float
    end: float
    what: str  # "phantom" or "prohibited"
    kind: str  # the phantom kind, or the prohibited activity ids
    recording: str
    detail: str

    @property
    def label(self) -> str:
        return f"phantom: {self.kind}" if self.what == "phantom" else "prohibited"


@dataclass(frozen=True, slots=True)
class Inbound:
    """One delivery of an inbound message to a camera, with the camera's answer."""

    t: float
    event: str  # the ``type`` field, or ``malformed``
    detail: str  # the distinguishing field: activity id, source, action, reason
    msg_id: str | None
    fields: dict[str, Any]
    ok: bool | None = None
    error: str | None = None
    repeat: bool = False
    ts: float | None = None
    # For a refusal: what it means in plain words, and the words that would have been taken.
    meaning: str = ""
    allowed: tuple[str, ...] = ()
    nearest: str | None = None
    actor: str | None = None

    @property
    def label(self) -> str:
        return f"{self.event} {self.detail}".strip()


@dataclass(frozen=True, slots=True)
class DeactivationSpan:
    """An allowed deactivation: recording paused from ``start`` to ``end`` by ``actor``."""

    start: float
    end: float
    reason: str
    actor: str


@dataclass(frozen=True, slots=True)
class AlertMark:
    t: float
    kind: str
    cause: str | None
    activity_id: str | None
    span: tuple[float, float] | None

    @property
    def label(self) -> str:
        short = {"missed_required_recording": "missed"}.get(self.kind, self.kind)
        return f"{short}: {self.cause}" if self.cause else short

    @property
    def description(self) -> str:
        parts = [f"{fmt_hms(self.t)} alert {self.kind}"]
        if self.cause:
            parts.append(f"cause {self.cause}")
        if self.activity_id:
            parts.append(f"activity {self.activity_id}")
        if self.span is not None:
            parts.append(f"uncovered {fmt_hms(self.span[0])}-{fmt_hms(self.span[1])}")
        return ", ".join(parts)


@dataclass(slots=True)
class CameraView:
    camera_id: str
    final_state: str
    refused: int
    missed_s: dict[str, float]
    states: list[StateSpan] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    footage: list[FootageSpan] = field(default_factory=list)
    misses: list[MissSpan] = field(default_factory=list)
    inbound: list[Inbound] = field(default_factory=list)
    alerts: list[AlertMark] = field(default_factory=list)
    unannounced: list[str] = field(default_factory=list)
    # What the camera said that the spec contradicts (SPEC §8b): (category label, problem).
    said: list[tuple[str, str]] = field(default_factory=list)
    deactivations: list[DeactivationSpan] = field(default_factory=list)
    # The footage judged (P-NOPHANTOM, P-PRIVACY): findings, totals, stopped recordings, and
    # the prohibited activities (ground truth: activity id, activity, start, end).
    findings: list[Finding] = field(default_factory=list)
    phantom_s: float = 0.0
    prohibited_s: float = 0.0
    stopped: list[str] = field(default_factory=list)
    prohibited_windows: list[tuple[str, str, float, float]] = field(default_factory=list)

    @property
    def footage_fault(self) -> bool:
        return bool(self.findings or self.stopped)


@dataclass(slots=True)
class RunView:
    """Everything the timeline, waveform and Perfetto writers draw."""

    name: str
    description: str
    policy: str
    seed: int
    end: float
    verdict: str
    missed_s: dict[str, float]
    expect: dict[str, Any] | None
    cameras: list[CameraView]
    live: dict[str, Any] | None = None  # a run on a real broker: the report's ``live`` block
    phantom_s: float = 0.0
    prohibited_s: float = 0.0


def _state_spans(run: ObservedCamera, end: float) -> list[StateSpan]:
    spans: list[StateSpan] = []
    for point in run.states:
        full = point.state == "pre_buffer" and point.storage_free <= EPS
        if spans and spans[-1].state == point.state and spans[-1].storage_full == full:
            continue
        if spans:
            prev = spans[-1]
            spans[-1] = StateSpan(prev.start, point.at, prev.state, prev.storage_full)
        spans.append(StateSpan(point.at, end, point.state, full))
    # Same-instant transitions (e.g. undock then dock at one sim time) leave empty spans.
    return [s for s in spans if s.end > s.start + EPS or s is spans[-1]]


def _footage(run: ObservedCamera) -> list[FootageSpan]:
    out = []
    for rec in sorted(run.recordings.values(), key=lambda r: (r.start, r.recording)):
        out.append(FootageSpan(
            recording=rec.recording, incident=rec.incident, start=rec.start, end=rec.end,
            buffer_end=min(rec.end, rec.start + rec.buffer_s),
            segments=tuple((a, b) for a, b in rec.segment_list), reasons=tuple(rec.reasons),
            open=rec.open,
        ))
    return out


def _inbound(records: list[dict[str, Any]]) -> dict[str, list[Inbound]]:
    """Deliveries per camera, each paired with the camera's next ack (see module docs)."""
    out: dict[str, list[Inbound]] = {}
    waiting: dict[str, int] = {}  # camera → index in out[camera] awaiting its ack
    seen_ids: dict[str, set[str]] = {}
    for rec in records:
        kind = rec.get("kind")
        cam = rec.get("camera")
        if not isinstance(cam, str):
            continue
        if kind == "deliver":
            item = _decode_delivery(rec, seen_ids.setdefault(cam, set()))
            lst = out.setdefault(cam, [])
            waiting[cam] = len(lst)
            lst.append(item)
        elif kind == "ack" and cam in waiting:
            i = waiting.pop(cam)
            item = out[cam][i]
            out[cam][i] = Inbound(item.t, item.event, item.detail, item.msg_id, item.fields,
                                  bool(rec.get("ok")), rec.get("error"), item.repeat, item.ts)
    return out


def _decode_delivery(rec: dict[str, Any], seen: set[str]) -> Inbound:
    t = float(rec["t"])
    try:
        body = json.loads(rec.get("payload", ""))
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        return Inbound(t, "malformed", "", None, {})
    fields = {k: v for k, v in body.items() if k not in ("id", "type", "ts")}
    detail_key = {"activity_start": "activity_id", "activity_end": "activity_id",
                  "button": "action", "signal": "source", "deactivate": "reason"}
    detail = fields.get(detail_key.get(body["type"], ""), "")
    raw_id = body.get("id")
    msg_id = None if raw_id is None else str(raw_id)
    repeat = msg_id is not None and msg_id in seen
    if msg_id is not None:
        seen.add(msg_id)
    ts = body.get("ts")
    return Inbound(t, body["type"], str(detail), msg_id, fields, repeat=repeat,
                   ts=float(ts) if isinstance(ts, (int, float)) else None)


def _explained(msg: Inbound, policy: Policy) -> Inbound:
    """A refused delivery with its meaning and the allowed words (see :mod:`.words`)."""
    if msg.ok is not False:
        return msg
    why = describe_refusal(msg.event, msg.fields, msg.error or "", policy)
    actor = msg.fields.get("actor")
    return dataclasses.replace(
        msg, meaning=why["meaning"], allowed=tuple(why.get("allowed", ())),
        nearest=why.get("nearest"), actor=actor if isinstance(actor, str) else None,
    )


def _deactivations(run: ObservedCamera, inbound: list[Inbound]) -> list[DeactivationSpan]:
    """The oracle's allowed pauses, each with the reason and actor of the accepted message."""
    out = []
    for start, end in run.paused:
        msg = next((m for m in inbound if m.event == "deactivate" and m.ok
                    and abs(m.t - start) <= EPS), None)
        reason = str(msg.fields.get("reason", "?")) if msg else "?"
        actor = str(msg.fields.get("actor", "?")) if msg else "?"
        out.append(DeactivationSpan(start, end, reason, actor))
    return out


def run_view(
    result: ReplayResult, report: dict[str, Any], records: list[dict[str, Any]]
) -> RunView:
    """Gather what every output draws; ``records`` may be empty (no inbound markers then)."""
    sc = result.scenario
    inbound = _inbound(records)
    cameras: list[CameraView] = []
    for cam, run in result.cameras.items():
        rep = report["cameras"][cam]
        windows = result.windows[cam]
        judgement = result.judgements[cam]
        misses = [
            MissSpan(m.start, m.end, m.cause, tuple(
                w.activity_id for w in windows if w.start < m.end - EPS and m.start < w.end - EPS
            ))
            for m in judgement.misses
        ]
        cameras.append(CameraView(
            camera_id=cam,
            final_state=rep["final_state"],
            refused=rep["refused"],
            missed_s=dict(rep["missed_s"]),
            states=_state_spans(run, sc.end),
            windows=list(windows),
            footage=_footage(run),
            misses=misses,
            inbound=[_explained(m, sc.policy) for m in inbound.get(cam, [])],
            alerts=[AlertMark(a.at, a.kind, a.cause, a.activity_id, a.span) for a in run.alerts],
            unannounced=list(judgement.unannounced),
            said=[(label, p) for key, label in SAID_CATEGORIES for p in rep.get(key, [])],
            deactivations=_deactivations(run, inbound.get(cam, [])),
            findings=_findings(judgement),
            phantom_s=judgement.footage.phantom_s,
            prohibited_s=judgement.footage.prohibited_s,
            stopped=list(judgement.footage.stopped),
            prohibited_windows=[(a.activity_id, a.activity, a.start, a.end)
                                for a in judgement.footage.activities],
        ))
    return RunView(
        name=sc.name, description=sc.description, policy=report["policy"], seed=sc.seed,
        end=float(sc.end), verdict=report["verdict"], missed_s=dict(report["missed_s"]),
        expect=report.get("expect"), cameras=cameras, live=report.get("live"),
        phantom_s=float(report.get("phantom_s", 0.0)),
        prohibited_s=float(report.get("prohibited_s", 0.0)),
    )


def _findings(judgement: Judgement) -> list[Finding]:
    f = judgement.footage
    out = [Finding(p.start, p.end, "phantom", p.kind, p.recording, p.detail) for p in f.phantom]
    out += [Finding(s.start, s.end, "prohibited", ", ".join(s.activity_ids), s.recording,
                    f"recorded while {', '.join(s.activity_ids)} was open; nothing justified it")
            for s in f.prohibited]
    out.sort(key=lambda x: (x.start, x.end, x.what))
    return out


# ------------------------------------------------------------------------------ writing
