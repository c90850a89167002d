"""What a live run saw, turned into what a replay observes (SPEC §15a).

Theory of operation
-------------------
During a run the harness (:mod:`sim.live.hil`) only keeps a :class:`RunLog`: every timeline entry
it played (:class:`Sent`: when, as what bytes, and how many device publications it had received
by then) and every publication it received (:class:`Seen`), each stamped with the harness's own
clock in scenario seconds. Everything else happens here, after the run, from that log alone — so
it can be tested without a broker, and the same log always gives the same judgement.

Per camera, :class:`_Camera` rebuilds the :class:`~sim.world.replay.ObservedCamera` a replay would
have recorded:

* **States** on the device's clock: a change (a new state, or the same state entered anew) holds
  from its ``since``; a refresh of the same state (a new active list) from when it arrived.
* **Alerts and recordings** on the device's clock, mapped; a recording closed after ``end`` is
  cut there and marked ``open``; one the device never got to publish is judged from its reported
  state (from the ``recording`` state's ``since``, no buffer: only the device could show that).
* **Availability** as offline spans: not ``online`` (the Last Will, or never seen) is offline.
  Offline to the end while recording, the span reaches back to the start of that recording.
* **Deliveries.** Acks are matched to what was sent by id (the run's tag stripped again), or, for
  scripted raw bytes whose id is not ours, in the order sent. A message reached a device that
  was online when it was *sent*; one queued for an offline device when its ack came. The state it
  found is the last one the device reported before it was sent (:func:`_prior_state`). A message
  an online device never acked is taken as delivered (and listed); one sent while it was offline
  and never acked is lost. As in a replay, only the first of byte-identical copies (a
  redelivery) is a delivery; the device answers the others again. Acks of messages the harness
  did not send — another client on a shared bus — are no part of the run.

The scenario is judged *as played* (:func:`played_scenario`): each entry at the moment it really
went out, less its ``delay_s``. The trace is built alongside, in a replay's record kinds: ``send``
(or ``prompt``) with what went on the wire, ``out`` for every device publication as it arrived,
and the decoded ``state``/``alert``/``recording``/``deliver``/``ack`` records on the scenario clock.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from controller.codec import AVAILABLE, Topics, decode_outbound, peek_id, split_topic
from controller.messages import Ack, Alert, MsgId, RecordingMeta, StateReport
from controller.spans import EPS, union
from sim.world.oracle import StatePoint
from sim.world.replay import FirstDelivery, ObservedCamera, Refusal, ReplayResult, judge_run
from sim.world.scenario import CameraSpec, Scenario, TimelineEntry
from sim.world.senders import wire_messages

from .clock import ClockMapping

__all__ = ["CLOSE_ID", "RunLog", "Seen", "Sent", "observe", "played_scenario"]

CLOSE_ID = "close"
"""The id (after the run's tag) of the ``dock`` that closes a recording at the end."""

Span = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Sent:
    """One timeline entry as played: when (scenario time), and what went on the wire."""

    t: float
    played_at: float  # when its activity happened: t - delay_s
    topic: str
    payload: bytes
    seen_before: int  # how many device publications the harness had received when it sent this
    prompted: bool = False


@dataclass(frozen=True, slots=True)
class Seen:
    """One publication received from a device, at scenario time ``t`` (harness clock)."""

    t: float
    topic: str
    payload: bytes
    retain: bool


@dataclass(slots=True)
class RunLog:
    """Everything one live run saw, in scenario seconds of the harness's clock."""

    clock: ClockMapping
    tag: str
    prefix: str
    devices: dict[str, str]  # scenario camera → device id
    sent: dict[int, Sent] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    closed_at: float = math.inf  # when the closing phase began (after end + settle)
    closing: dict[str, str] = field(default_factory=dict)  # camera → how its recording was closed
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Reported:
    """One decoded publication of one camera, with when (and in which order) it was seen."""

    t: float
    order: int
    msg: StateReport | Ack | Alert | RecordingMeta | bytes  # bytes: availability


@dataclass(slots=True)
class _State:
    """One state report on the scenario clock."""

    since: float
    order: int
    report: StateReport
    change: bool  # a new state or the same one entered anew (not a refresh)


class _Trace:
    """Trace records in a replay's kinds, sorted by time, ties in the order they were made."""

    def __init__(self) -> None:
        self._records: list[tuple[float, int, dict[str, Any]]] = []

    def add(self, t: float, record: dict[str, Any]) -> None:
        self._records.append((t, len(self._records), {"t": t, **record}))

    def records(self) -> list[dict[str, Any]]:
        return [r for _, _, r in sorted(self._records, key=lambda r: (r[0], r[1]))]


def observe(
    scenario: Scenario, log: RunLog, *, tolerance_s: float, header: Mapping[str, Any]
) -> tuple[ReplayResult, list[dict[str, Any]]]:
    """Judge a run's log; the result carries a ``live`` block (``header`` first), and the trace.

    ``header`` holds what the harness knows of the broker (``broker``, ``tls``, ``username``)
    and of the operator (``prompted``).
    """
    clock = log.clock
    trace = _Trace()
    played = played_scenario(scenario, log)
    context = _Context(scenario, played, log, trace, tolerance_s)
    cameras: dict[str, ObservedCamera] = {}
    devices: dict[str, Any] = {}
    for spec in scenario.cameras:
        camera = _Camera(context, spec)
        cameras[spec.id] = camera.observed
        devices[spec.id] = camera.info()
    for idx, sent in sorted(log.sent.items(), key=lambda kv: kv[1].t):
        trace.add(sent.t, {"kind": "prompt" if sent.prompted else "send", "entry": idx,
                           "topic": sent.topic, "payload": _text(sent.payload)})
    trace.add(scenario.end, {"kind": "end"})
    lag = max((s.t - scenario.timeline[i].send_at for i, s in log.sent.items()), default=0.0)
    live: dict[str, Any] = {
        **header,
        "prefix": log.prefix,
        "run": log.tag,
        "devices": devices,
        "clock": clock.describe(),
        "tolerance_s": tolerance_s,
        "tolerance_wall_s": tolerance_s / clock.speed,
        "lag_s": max(0.0, round(lag, 3)),
        "notes": list(log.notes) + context.notes,
    }
    result = judge_run(played, cameras, tolerance_s=tolerance_s, live=live)
    live["excused"] = {cam: [[m.start, m.end] for m in j.excused]
                       for cam, j in result.judgements.items() if j.excused}
    live["excused_s"] = round(sum(m.seconds for j in result.judgements.values()
                                  for m in j.excused), 6)
    live["complete"] = not context.incomplete and not any(
        "offline" in d or "unacknowledged" in d for d in devices.values())
    return result, trace.records()


def played_scenario(scenario: Scenario, log: RunLog) -> Scenario:
    """The scenario as it was played: every entry at the moment it really happened."""
    def as_played(e: TimelineEntry) -> TimelineEntry:
        sent = log.sent.get(e.index)
        if sent is None:
            return e  # never sent: as the file says
        at = max(0.0, sent.played_at)
        ts = None if e.ts is None else e.ts + (at - e.at)  # a set ts moves with its entry
        return msgspec.structs.replace(e, at=at, ts=ts)

    return dataclasses.replace(scenario, timeline=tuple(as_played(e) for e in scenario.timeline))


class _Context:
    """What every camera of one run shares."""

    def __init__(self, scenario: Scenario, played: Scenario, log: RunLog, trace: _Trace,
                 tolerance_s: float) -> None:
        self.scenario = scenario
        self.tolerance_s = tolerance_s
        self.played = played
        self.log = log
        self.trace = trace
        self.notes: list[str] = []
        self.incomplete = False
        # Only the first of byte-identical copies of a message is a delivery (a replay's rule).
        scripted = wire_messages(scenario)
        first: dict[tuple[str, bytes], int] = {}
        for index in sorted(scripted):
            first.setdefault(scripted[index], index)
        self.first_copies = set(first.values())
        self.wire_ids = {f"{log.tag}-{e.message_id}": e for e in scenario.timeline if e.event}
        # Ids a scripted raw payload carries (None: unreadable): acks the run may see for it.
        self.raw_ids: set[MsgId | None] = {peek_id(e.raw.payload_bytes) for e in scenario.timeline
                                            if e.raw is not None}
        self.reported = self._by_camera()

    def _by_camera(self) -> dict[str, list[_Reported]]:
        log = self.log
        by_device = {device: cam for cam, device in log.devices.items()}
        out: dict[str, list[_Reported]] = {cam: [] for cam in log.devices}
        for order, seen in enumerate(log.seen):
            where = split_topic(seen.topic, log.prefix)
            if where is None or where[0] not in by_device or where[1] == "event":
                continue
            cam, kind = by_device[where[0]], where[1]
            if 0.0 <= seen.t <= log.closed_at:
                self.trace.add(seen.t, {"kind": "out", "camera": cam, "topic": seen.topic,
                                        "payload": _text(seen.payload), "retain": seen.retain})
            if kind == "availability":
                if seen.payload:  # an empty payload clears a retained message: no news
                    out[cam].append(_Reported(seen.t, order, seen.payload))
                continue
            try:
                msg = decode_outbound(kind, seen.payload)
            except (KeyError, msgspec.MsgspecError):
                continue  # not a topic the oracle reads, or a payload that breaks the schema
            out[cam].append(_Reported(seen.t, order, msg))
        return out


class _Camera:
    """One camera's observations, rebuilt from the log (see the module docstring)."""

    def __init__(self, ctx: _Context, spec: CameraSpec) -> None:
        self.ctx = ctx
        self.cam = spec.id
        self.device = ctx.log.devices[spec.id]
        self.clock = ctx.log.clock
        self.end = ctx.scenario.end
        items = ctx.reported[spec.id]
        self.before_close = [r for r in items if r.t <= ctx.log.closed_at]
        self.observed = ObservedCamera(spec=spec, topics=Topics(spec.id, ctx.scenario.prefix))
        self.unacked: list[str] = []
        self.offline = _offline_spans(self.before_close, self.end)
        self.states = self._states()
        self._publications(items)
        self._open_at_end()
        self.observed.offline = union(self.offline)
        self._deliveries()

    # ------------------------------------------------------------------------ states

    def _states(self) -> list[_State]:
        seen, trace = self.observed, self.ctx.trace
        states: list[_State] = []
        prev: StateReport | None = None
        prev_since: float | None = None
        for r in self.before_close:
            if not isinstance(r.msg, StateReport):
                continue
            since = self.clock.from_device(r.msg.since)
            if since > self.end + EPS:
                continue  # a change after the end (the closing dock)
            change = prev is None or r.msg.state != prev.state or since != prev_since
            at = since if change else max(since, min(r.t, self.end))
            states.append(_State(since, r.order, r.msg, change))
            seen.states.append(StatePoint(at, r.msg.state, r.msg.storage_s))
            seen.reports.append((at, r.msg))
            if prev is None or r.msg.state != prev.state:
                trace.add(at, {"kind": "state", "camera": self.cam, "state": r.msg.state,
                               "prev": prev.state if prev else None, "active": list(r.msg.active),
                               "battery_s": r.msg.battery_s, "storage_s": r.msg.storage_s})
            prev, prev_since = r.msg, since
            seen.last_state = msgspec.structs.replace(r.msg, since=since)
        seen.states.sort(key=lambda p: p.at)
        seen.reports.sort(key=lambda p: p[0])
        note = self._clock_check(states)
        if note is not None:
            self.ctx.notes.append(note)
            self.ctx.incomplete = True
        return states

    def _clock_check(self, states: list[_State]) -> str | None:
        """A device whose clock is not the run's: its state changes happen at the wrong time.

        A device publishes a change of state as it happens, so a change received during the run
        has a ``since`` a moment before it arrived. Ahead by more than the tolerance, or far
        behind, the device is not on this run's clock (another speed, or not Unix time).
        """
        received = {r.order: r.t for r in self.before_close}
        offsets = sorted(s.since - received[s.order] for s in states
                         if s.change and received[s.order] >= 0.0)
        if not offsets:
            return None
        tol = self.ctx.tolerance_s
        median = offsets[len(offsets) // 2]
        if offsets[-1] <= tol and median >= -max(5 * tol, 10.0):
            return None
        return (f"{self.cam}: device {self.device}'s clock disagrees with the run's by "
                f"{median:+.3g} s (scenario time): is it on the scaled clock, "
                f"{self.clock.speed:g} x Unix time?")

    # ------------------------------------------------------------------ publications

    def _publications(self, items: list[_Reported]) -> None:
        seen, trace, clock, end = self.observed, self.ctx.trace, self.clock, self.end
        for r in items:
            if isinstance(r.msg, Alert):
                at = clock.from_device(r.msg.at)
                if r.t > self.ctx.log.closed_at or at > end + EPS or r.t < 0:
                    continue  # after the end, or left over from before the run
                span = r.msg.span
                alert = msgspec.structs.replace(r.msg, at=at, span=None if span is None else (
                    clock.from_device(span[0]), clock.from_device(span[1])))
                seen.alerts.append(alert)
                trace.add(at, {"kind": "alert", "camera": self.cam, "alert": alert.kind, "at": at,
                               "cause": alert.cause, "activity_id": alert.activity_id,
                               "span": list(alert.span) if alert.span is not None else None})
            elif isinstance(r.msg, RecordingMeta):
                rec = _clip_recording(r.msg, clock, end)
                if rec is not None:
                    seen.recordings[rec.recording] = rec
                    trace.add(min(r.t, end), {
                        "kind": "recording", "camera": self.cam, "recording": rec.recording,
                        "incident": rec.incident, "start": rec.start, "end": rec.end,
                        "buffer_s": rec.buffer_s, "reasons": list(rec.reasons),
                        "segments": rec.segments, "final": rec.final, "open": rec.open})

    def _open_at_end(self) -> None:
        seen, end = self.observed, self.end
        last = seen.last_state
        if last is None or last.state != "recording":
            return
        if self.offline and self.offline[-1][1] >= end - EPS:
            # Offline to the end while recording: what it recorded since is unknown, not missed.
            self.offline[-1] = (min(self.offline[-1][0], last.since), self.offline[-1][1])
        elif not any(rec.open for rec in seen.recordings.values()):
            # Never published for the harness to see: judged from the state the device reported.
            seen.recordings["(open)"] = RecordingMeta(
                camera=self.cam, recording="(open)", incident="(unknown)", start=last.since,
                end=end, buffer_s=0.0, reasons=list(last.active), segments=1,
                segment_list=[(last.since, end)], final=False, open=True)

    # -------------------------------------------------------------------- deliveries

    def _deliveries(self) -> None:
        ctx, log, seen, cam = self.ctx, self.ctx.log, self.observed, self.cam
        scenario = ctx.scenario
        mine = {i: s for i, s in log.sent.items()
                if not s.prompted and cam in scenario.targets(scenario.timeline[i])}
        taken: set[int] = set()
        raw_waiting = sorted((i for i in mine if scenario.timeline[i].raw is not None),
                             key=lambda i: mine[i].t)
        for r in self.before_close:
            if not isinstance(r.msg, Ack):
                continue
            ack = r.msg
            entry = ctx.wire_ids.get(ack.id) if isinstance(ack.id, str) else None
            if entry is not None:
                candidates = [i for i in sorted(mine, key=lambda i: mine[i].t)
                              if scenario.timeline[i].message_id == entry.message_id]
                msg_id: MsgId | None = entry.message_id
            elif ack.id in ctx.raw_ids:
                candidates, msg_id = raw_waiting, ack.id
            else:
                continue  # the closing dock's, or an answer to another client on a shared bus
            idx = next((i for i in candidates if i not in taken and mine[i].t <= r.t + EPS), None)
            at = r.t
            if idx is not None:
                taken.add(idx)
                at = self._delivered(idx, ack.ok, r.t)
                entry_ = scenario.timeline[idx]
                ctx.trace.add(at, {"kind": "deliver", "camera": cam,
                                   "topic": entry_.payload(scenario.prefix)[0],
                                   "payload": self._as_played(entry_), "entry": idx})
            plain = Ack(id=msg_id, ok=ack.ok, error=ack.error)
            seen.acks.append(plain)
            if not ack.ok and idx is not None:
                entry_ = scenario.timeline[idx]
                topic, payload = (entry_.raw.topic, entry_.raw.payload_bytes) if entry_.raw \
                    else ctx.played.timeline[idx].payload(scenario.prefix)
                seen.refusals.append(Refusal(at, topic, payload, plain))
            ctx.trace.add(at, {"kind": "ack", "camera": cam, "id": plain.id, "ok": plain.ok,
                               "error": plain.error, "received": r.t})
        for idx, sent in mine.items():
            e = scenario.timeline[idx]
            if e.event is None or idx not in ctx.first_copies or idx in taken:
                continue
            if _covered(self.offline, sent.t):
                seen.lost.add(idx)  # sent while the device was offline, never acknowledged
            else:
                # Online and silent: the device had the message (R-IDEM says it must answer).
                self._delivered(idx, None, sent.t)
                self.unacked.append(e.message_id)
        # Arrival order, as a replay counts it: by arrival, then in the order sent.
        order = sorted(seen.delivered.items(), key=lambda kv: (kv[1].at, log.sent[kv[0]].t))
        for arrival, (_, first) in enumerate(order, 1):
            first.seq = arrival
        seen.timed = sorted(s.t for s in mine.values())

    def _delivered(self, idx: int, ok: bool | None, acked_at: float) -> float:
        """Record the first delivery of entry ``idx``; when it reached the device."""
        sent = self.ctx.log.sent[idx]
        # Sent to a device that was online, a message reaches it a hop later; its ack may come
        # back much later (a broker's Nagle and delayed ACKs hold small packets up to ~40 ms,
        # seconds on a scaled clock). Queued for a device that was offline, it arrived when the
        # ack says.
        at = acked_at if _covered(self.offline, sent.t) else sent.t
        e = self.ctx.scenario.timeline[idx]
        if e.event is not None and idx in self.ctx.first_copies and idx not in self.observed.delivered:
            prior = _prior_state(self.states, sent)
            self.observed.delivered[idx] = FirstDelivery(
                0, at, prior.state if prior else None,
                self.clock.from_device(prior.since) if prior else 0.0,
                prior.storage_s if prior else math.inf, ok)
        return at

    def _as_played(self, entry: TimelineEntry) -> str:
        """The scenario's message as the trace shows it delivered: with the ``ts`` it was played at."""
        if entry.raw is not None:
            return _text(entry.raw.payload_bytes)
        return _text(self.ctx.played.timeline[entry.index].payload(self.ctx.scenario.prefix)[1])

    # -------------------------------------------------------------------------- info

    def info(self) -> dict[str, Any]:
        """The camera's entry in the report's ``live.devices``."""
        info: dict[str, Any] = {"device": self.device}
        if self.observed.offline:
            info["offline"] = [[a, b] for a, b in self.observed.offline]
        if self.unacked:
            info["unacknowledged"] = list(self.unacked)
        if self.cam in self.ctx.log.closing:
            info["closed_at_end"] = self.ctx.log.closing[self.cam]
        return info


def _prior_state(states: list[_State], sent: Sent) -> StateReport | None:
    """The state a message found: the last one reported before it was sent — received before
    the send, or received after it but with a ``since`` before it (a report on its way). A
    report received after the send with a ``since`` from then on is the message's own doing."""
    best: StateReport | None = None
    for state in states:
        if state.order < sent.seen_before or state.since < sent.t - EPS:
            best = state.report
    return best


def _offline_spans(items: list[_Reported], end: float) -> list[Span]:
    spans: list[Span] = []
    down_since: float | None = 0.0  # nothing heard yet: not known to be online
    for r in items:
        if not isinstance(r.msg, bytes):
            continue
        online = r.msg == AVAILABLE
        if online and down_since is not None:
            spans.append((max(0.0, down_since), max(0.0, min(r.t, end))))
            down_since = None
        elif not online and down_since is None:
            down_since = r.t
    if down_since is not None:
        spans.append((max(0.0, down_since), end))
    return [(a, b) for a, b in spans if b > a + EPS]


def _covered(spans: list[Span], t: float) -> bool:
    return any(a - EPS <= t < b for a, b in spans)


def _clip_recording(meta: RecordingMeta, clock: ClockMapping, end: float) -> RecordingMeta | None:
    """A device recording on the scenario clock; one closed after ``end`` is cut there, open."""
    start = clock.from_device(meta.start)
    stop = clock.from_device(meta.end)
    if start >= end - EPS or stop <= 0:
        return None  # after the run, or left over from before it
    segments = [(clock.from_device(a), clock.from_device(b)) for a, b in meta.segment_list]
    segments = [(a, min(b, end)) for a, b in segments if a < end - EPS]
    cut = stop > end + EPS
    return msgspec.structs.replace(
        meta, start=start, end=min(stop, end), segment_list=segments, segments=len(segments),
        open=meta.open or cut, final=meta.final and not cut,
    )


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + payload.hex()
