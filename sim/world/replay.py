"""Replay one scenario in virtual time: scheduler + simulated broker + controller nodes.

The harness is deliberately thin. It publishes each timeline entry on the simulated bus at
``at + delay_s``, hands every delivery to the camera's node, publishes what the node answers,
and wakes each node at its own deadline. While it does so it *observes*: first delivery of each
timeline message per camera (and what state the camera had reported just before), losses on the
bus, and every publication each camera made. At ``end`` the oracle judges those observations
against the scenario's ground truth.

With ``auth: signed`` (SPEC §14) the cameras are provisioned with the scenario's trust file and
every message goes out as its sender signed it (:mod:`sim.world.senders`). Whatever a camera
is obliged to refuse — a forgery, a replay, a stale or re-sequenced command — is, for the
oracle, nothing happening; a camera that acts on one anyway fails the verdict.

What the oracle needs of a camera is an :class:`ObservedCamera`; :func:`judge_run` judges a set of
them. A run on a real broker (:mod:`sim.live.hil`) observes the same things from outside the
device and is judged by the same function, so its report, trace and timeline are a replay's.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from controller.codec import Topics, availability, outbound_decoder
from controller.messages import Ack, Alert, RecordingMeta, StateReport
from controller.node import CameraNode, CameraSetup, ControllerFactory, Publish
from controller.policy import BUILTIN
from controller.reference import make_node

from .broker import LossReason, Message, SimBroker
from .evidence import judge_evidence, judge_resources
from .footage import arrival_order, facts_of
from .oracle import Judgement, Observation, StatePoint, Window, judge
from .policy_reading import PolicyReading, builtin_document, file_document, read_policy
from .replies import Delivery, Pause, judge_replies
from .scenario import CameraSpec, Scenario, TimelineEntry
from .scheduler import MESSAGE, TIMER, Handle, Scheduler
from .senders import may_refuse, must_refuse, send_order, sequence_numbers, trust_file, wire_messages

TraceSink = Callable[[dict[str, Any]], None]


class FirstDelivery(msgspec.Struct, gc=False):
    """The first delivery of a timeline entry to a camera. (A struct for its cheap
    construction: one per entry and camera; it refers to no container, so it needs no tracking
    by the cyclic collector.)"""

    seq: int  # order of arrival at the camera, across the whole run
    at: float
    prior_state: str | None
    prior_since: float
    prior_storage_free: float  # free storage in that report (constant while buffering)
    ok: bool | None = None  # the camera's ack, when it sent one


@dataclass(frozen=True, slots=True)
class Refusal:
    """One delivery the camera answered with a NACK: what arrived, when, and the answer."""

    at: float
    topic: str
    payload: bytes
    ack: Ack


@dataclass(eq=False, slots=True, kw_only=True)
class ObservedCamera:
    """Everything observed of one camera during a run: what the oracle and the views read."""

    spec: CameraSpec
    topics: Topics
    last_state: StateReport | None = None
    states: list[StatePoint] = field(default_factory=list)
    recordings: dict[str, RecordingMeta] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    delivered: dict[int, FirstDelivery] = field(default_factory=dict)
    # Every delivery, redeliveries included: (when, timeline entry or None).
    arrivals: list[tuple[float, int | None]] = field(default_factory=list)
    lost: set[int] = field(default_factory=set)
    # Entries this camera was obliged to refuse (SPEC §14) → why; filled in when judging.
    refusable: dict[int, str] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    # Every delivery with its replies, and every state report with its time (P-REPLY,
    # P-RESOURCE); a live run does not fill them, and those judgements are then skipped.
    deliveries: list[Delivery] = field(default_factory=list)
    reports: list[tuple[float, StateReport]] = field(default_factory=list)
    # Allowed deactivations as the oracle derived them (set when the run is judged).
    paused: list[tuple[float, float]] = field(default_factory=list)
    # Live runs only: when the device was offline, and moments the harness timed itself.
    offline: list[tuple[float, float]] = field(default_factory=list)
    timed: list[float] = field(default_factory=list)


@dataclass(eq=False, slots=True, kw_only=True)
class CameraRun(ObservedCamera):
    """One camera of a replay: its observations and the node the replay drives."""

    node: CameraNode
    timer: Handle | None = None
    # The callback that wakes the node at its deadline: one per camera, not one per arming.
    wake: Callable[[], None] | None = None
    # Publications made while the bus was unreachable, sent in order on reconnect (as the
    # live runtime does); the oracle still credits them at the time the camera raised them.
    outbox: list[Publish] = field(default_factory=list)


@dataclass(slots=True)
class ReplayResult:
    scenario: Scenario
    cameras: Mapping[str, ObservedCamera]
    windows: dict[str, list[Window]]
    judgements: dict[str, Judgement]
    # Per camera: commands it acted on although it had to refuse them (SPEC §14).
    forgeries: dict[str, list[str]] = field(default_factory=dict)
    # A run on a real broker (SPEC §15): broker, devices, clock mapping, tolerance. The report
    # carries it as its ``live`` key; ``None`` for a simulated run.
    live: dict[str, Any] | None = None

    @property
    def verdict(self) -> str:
        ok = all(j.ok for j in self.judgements.values()) and not any(self.forgeries.values())
        return "pass" if ok else "fail"


class Replay:
    """One run of one scenario. ``run()`` may be called once."""

    def __init__(
        self,
        scenario: Scenario,
        factory: ControllerFactory = make_node,
        trace: TraceSink | None = None,
    ) -> None:
        self.scenario = scenario
        self.factory = factory
        self.trace = trace
        self.sched = Scheduler()
        self.broker = SimBroker(self.sched, scenario.bus, random.Random(scenario.seed))
        self.broker.add_observer(self, deliveries=False)  # deliveries are seen in _deliver
        self.runs: dict[str, CameraRun] = {}
        # (topic, payload) of each timeline message → its entry index, to recognise deliveries.
        self._entry_of: dict[tuple[str, bytes], int] = {}
        self._arrivals = 0
        self._seq = 0
        # Each camera's own topics the oracle reads → (camera, what is published there:
        # "state", "ack", "alert" or "recording", its decoder); no other topic is observed.
        self._readers: dict[str, tuple[str, str, Callable[[bytes], Any]]] = {}
        self._trust = trust_file(scenario)
        self._wire = wire_messages(scenario)
        # The bus's publish as a function, for partials that call it without a bound method.
        self._publish = type(self.broker).publish
        self._end = scenario.end
        # Only a fault cuts a camera off the bus: until the first, every camera is connected.
        self._faulted = False

    # ------------------------------------------------------------------ driving

    def run(self) -> ReplayResult:
        sc = self.scenario
        for spec in sc.cameras:
            self._add_camera(spec)
        for entry in sc.timeline:
            self._schedule_entry(entry)
        self.sched.run(until=sc.end)
        for run in self.runs.values():
            self._emit(run, run.node.finish(sc.end))
        if self.trace is not None:
            self.trace({"t": sc.end, "kind": "end"})
        return self._judge()

    def close(self) -> None:
        """Break the references a finished run leaves in a circle (the broker's client callbacks
        and observer, the scheduler's pending events, each pointing back at this replay), so the
        run is freed by reference counting when its result is dropped; the result keeps what it
        observed. Called by :func:`replay` once the run is judged."""
        self.sched.clear()
        self.broker.close()
        for run in self.runs.values():
            run.timer = None
            run.wake = None

    def _add_camera(self, spec: CameraSpec) -> None:
        sc = self.scenario
        setup = CameraSetup(
            camera_id=spec.id, policy=sc.policy, params=spec.params, teams=spec.teams,
            initial=spec.initial, prefix=sc.prefix, trust=self._trust,
        )
        node = self.factory(setup)
        run = CameraRun(spec=spec, node=node, topics=Topics(spec.id, sc.prefix))
        topics = run.topics
        for topic, kind in ((topics.state, "state"), (topics.ack, "ack"),
                            (topics.alert, "alert"), (topics.recording, "recording")):
            self._readers[topic] = (spec.id, kind, outbound_decoder(kind))
        run.wake = functools.partial(self._on_timer, run)
        self.runs[spec.id] = run
        will = Message(run.topics.availability, b"offline", qos=1, retain=True)
        # A partial of the function, not of a bound method: one call layer fewer per delivery.
        deliver = functools.partial(type(self)._deliver, self, run)
        self.broker.connect(spec.id, deliver, clean_session=False,
                            will=will, on_connect=functools.partial(self._reconnected, run))
        for topic_filter in node.subscriptions():
            self.broker.subscribe(spec.id, topic_filter, 1)
        self._emit(run, node.start(self.sched.now))
        self._rearm(run)

    def _schedule_entry(self, entry: TimelineEntry) -> None:
        if entry.fault is not None:
            self.sched.schedule(entry.at, lambda: self._fault(entry), MESSAGE)
            return
        topic, payload = self._wire[entry.index]
        self._entry_of.setdefault((topic, payload), entry.index)
        if self.trace is None:  # nothing to record on the way: the bus is called directly
            send = functools.partial(self._publish, self.broker, None, topic, payload, 1)
        else:
            send = functools.partial(self._publish_entry, entry, topic, payload)
        self.sched.schedule(entry.at + entry.delay_s, send, MESSAGE)  # send_at, uncalled

    def _publish_entry(self, entry: TimelineEntry, topic: str, payload: bytes) -> None:
        if self.trace is not None:
            self.trace({"t": self.sched.now, "kind": "send", "entry": entry.index, "topic": topic,
                        "payload": _text(payload)})
        self.broker.publish(None, topic, payload, qos=1)

    def _fault(self, entry: TimelineEntry) -> None:
        self._faulted = True
        if self.trace is not None:
            self.trace({"t": self.sched.now, "kind": "fault", "fault": entry.fault,
                        "camera": entry.camera, "for_s": entry.for_s})
        if entry.fault == "broker_outage":
            self.broker.outage(entry.for_s)
        elif entry.camera is not None:
            self.broker.disconnect_client(entry.camera, entry.for_s)

    def _deliver(self, run: CameraRun, msg: Message) -> None:
        now = self.sched.now
        idx = self._entry_of.get((msg.topic, msg.payload))
        first: FirstDelivery | None = None
        run.arrivals.append((now, idx))
        if idx is not None and idx not in run.delivered:
            last = run.last_state
            self._arrivals += 1
            first = FirstDelivery(
                self._arrivals, now, last.state if last else None, last.since if last else 0.0,
                last.storage_s if last else math.inf,
            )
            run.delivered[idx] = first
        if self.trace is not None:
            self.trace({"t": now, "kind": "deliver", "camera": run.spec.id, "topic": msg.topic,
                        "payload": _text(msg.payload), "entry": idx})
        acks = run.acks
        n_acks = len(acks)
        self._seq += 1
        seq, prior = self._seq, run.last_state  # as they stand before the camera answers
        self._emit(run, run.node.on_message(msg.topic, msg.payload, now))
        replies = acks[n_acks:]
        run.deliveries.append(Delivery(seq, now, msg.topic, msg.payload, idx, prior, replies))
        if replies:
            if first is not None:
                first.ok = replies[0].ok
            for ack in replies:
                if not ack.ok:
                    run.refusals.append(Refusal(now, msg.topic, msg.payload, ack))
        self._rearm(run)

    def _on_timer(self, run: CameraRun) -> None:
        run.timer = None
        self._emit(run, run.node.on_timer(self.sched.now))
        self._rearm(run)

    def _rearm(self, run: CameraRun) -> None:
        due = run.node.next_deadline()
        old = run.timer  # pending whenever set: _on_timer clears it before the node wakes
        if due is None or due > self._end:
            if old is not None:
                self.sched.cancel(old)
                run.timer = None
            return
        sched = self.sched
        now = sched.now
        if now > due:  # max(due, now), without the builtin's call
            due = now
        if old is not None:
            if old.at == due:
                return
            sched.cancel(old)
        assert run.wake is not None
        run.timer = sched.schedule(due, run.wake, TIMER)

    def _emit(self, run: CameraRun, pubs: list[Publish]) -> None:
        if not pubs:
            return
        now = self.sched.now
        cam = run.spec.id
        broker = self.broker
        # Neither observing nor publishing its own messages changes the camera's connection.
        connected = not self._faulted or broker.is_connected(cam)
        trace = self.trace
        for pub in pubs:
            # The raw publication first, then (from _observe) what it means, so a reader of
            # the trace sees the bytes before their decoded state/alert/recording record.
            if trace is not None:
                trace({"t": now, "kind": "out", "camera": cam, "topic": pub.topic,
                       "payload": _text(pub.payload), "retain": pub.retain})
            self._observe(run, pub, now)
            if connected:
                broker.publish(cam, pub.topic, pub.payload, pub.qos, pub.retain)
            else:
                run.outbox.append(pub)

    def _reconnected(self, run: CameraRun, session_present: bool) -> None:
        """Back online: announce availability again (the will said offline), flush the outbox."""
        if not session_present:
            return  # the first connect: the node's start() announces itself
        pending = [availability(run.topics), *run.outbox]
        run.outbox.clear()
        for pub in pending:
            self.broker.publish(run.spec.id, pub.topic, pub.payload, pub.qos, pub.retain)

    def _observe(self, run: CameraRun, pub: Publish, now: float) -> None:
        reader = self._readers.get(pub.topic)
        if reader is None or reader[0] != run.spec.id:
            return  # not a topic the oracle reads: availability, events, another camera's
        cam, kind, decode = reader
        try:
            msg = decode(pub.payload)
        except msgspec.MsgspecError:
            return  # a payload that breaks the schema
        if kind == "state":
            if self.trace is not None:
                prev = run.last_state.state if run.last_state is not None else None
                if msg.state != prev:
                    self.trace({"t": now, "kind": "state", "camera": cam, "state": msg.state,
                                "prev": prev, "active": list(msg.active),
                                "battery_s": msg.battery_s, "storage_s": msg.storage_s})
            run.last_state = msg
            run.states.append(StatePoint(now, msg.state, msg.storage_s))
            run.reports.append((now, msg))
        elif kind == "ack":
            if self.trace is not None:
                self.trace({"t": now, "kind": "ack", "camera": cam, "id": msg.id, "ok": msg.ok,
                            "error": msg.error})
            run.acks.append(msg)
        elif kind == "alert":
            if self.trace is not None:
                self.trace({"t": now, "kind": "alert", "camera": cam, "alert": msg.kind,
                            "at": msg.at, "cause": msg.cause, "activity_id": msg.activity_id,
                            "span": list(msg.span) if msg.span is not None else None})
            run.alerts.append(msg)
        else:
            if self.trace is not None:
                self.trace({"t": now, "kind": "recording", "camera": cam,
                            "recording": msg.recording, "incident": msg.incident,
                            "start": msg.start, "end": msg.end, "buffer_s": msg.buffer_s,
                            "reasons": list(msg.reasons), "segments": msg.segments,
                            "final": msg.final, "open": msg.open})
            run.recordings[msg.recording] = msg

    # ------------------------------------------------------------------ broker observer

    def on_deliver(self, client_id: str, msg: Message, at: float) -> None:
        pass  # deliveries are seen in _deliver, with the camera's state at hand

    def on_lost(self, client_id: str | None, msg: Message, at: float, reason: LossReason) -> None:
        idx = self._entry_of.get((msg.topic, msg.payload))
        if self.trace is not None:
            self.trace({"t": at, "kind": "lost", "client": client_id, "topic": msg.topic,
                        "reason": reason, "entry": idx})
        if idx is None:
            return
        targets = self.scenario.targets(self.scenario.timeline[idx])
        for cam in targets if client_id is None else (client_id,):
            run = self.runs.get(cam)
            if run is not None:
                run.lost.add(idx)

    # ------------------------------------------------------------------ judging

    def _judge(self) -> ReplayResult:
        return judge_run(self.scenario, self.runs)


def judge_run(
    scenario: Scenario,
    cameras: Mapping[str, ObservedCamera],
    *,
    tolerance_s: float = 0.0,
    live: dict[str, Any] | None = None,
) -> ReplayResult:
    """Judge every camera's observations against the scenario's ground truth (SPEC §8).

    ``tolerance_s`` and ``live`` are for runs on a real broker (see :mod:`sim.world.oracle`).
    """
    forgeries: dict[str, list[str]] = {}
    # Every fleet shift sends unsigned messages with no ``ts``: then no camera is obliged to
    # refuse anything (SPEC §14), and walking each camera's share of the send order (or even
    # putting the timeline in that order) would find nothing.
    refusing = any(map(may_refuse, scenario.timeline))
    order = send_order(scenario) if refusing else []
    seqs = sequence_numbers(scenario, order) if refusing else {}
    # Once per run, not per camera: each camera's share of the send order, and of the
    # activity entries in timeline order (what must_refuse, required_windows and facts_of scan).
    sent_to = entries_by_camera(scenario, order) if refusing else {}
    activities: list[TimelineEntry] = []
    # Only a delivered ``deactivate`` starts an allowed deactivation: in a run without one
    # (most fleet shifts) no camera has any, and their deliveries need not be walked for them.
    deactivating = False
    for e in scenario.timeline:
        if e.event == "activity_start" or e.event == "activity_end":
            activities.append(e)
        elif e.event == "deactivate":
            deactivating = True
    activities.sort(key=lambda e: (e.at, e.index))
    reading = oracle_policy(scenario)
    # Each entry's ids and tail are read once per run, not once per camera it addresses.
    rows = activity_rows(activities, reading)
    acts: dict[str, list[ActivityRow]] = {}
    for row in rows:
        for cam in scenario.targets(row[0]):
            acts.setdefault(cam, []).append(row)
    # facts_of looks at activities only for prohibited ones: it needs just the entries under
    # an id some prohibited activity starts with (in most shifts, none), as no other opens one.
    kind = scenario.policy.kind
    prohibited = {aid for e, aid, activity, _ in rows
                  if e.event == "activity_start" and kind(activity) == "prohibited"}
    privacy = entries_by_camera(scenario, [
        e for e, aid, _, _ in rows if aid in prohibited]) if prohibited else {}
    for cam, seen in cameras.items():
        if not refusing:
            seen.refusable = {}
            forgeries[cam] = []
            continue

        def arrival(idx: int, seen: ObservedCamera = seen) -> float | None:
            first = seen.delivered.get(idx)
            return first.at if first is not None else None

        seen.refusable = must_refuse(scenario, cam, arrival, order=sent_to.get(cam, []), seqs=seqs)
        forgeries[cam] = [
            f"timeline[{idx}] ({scenario.timeline[idx].event or 'replay'}, line "
            f"{scenario.timeline[idx].line}) was acted on although the camera had to refuse it: {why}"
            for idx, why in seen.refusable.items()
            if (first := seen.delivered.get(idx)) is not None and first.ok
        ]
    windows = {cam: required_windows(scenario, seen, reading, acts.get(cam, []))
               for cam, seen in cameras.items()}
    judgements = {}
    for cam, seen in cameras.items():
        obs = Observation(
            camera_id=cam,
            prebuffer_s=seen.spec.params.prebuffer_s,
            windows=windows[cam],
            footage=[seg for rec in seen.recordings.values() for seg in rec.segment_list],
            states=seen.states,
            deactivations=(allowed_deactivations(scenario, seen, windows[cam], reading)
                           if deactivating else []),
            alerts=seen.alerts,
            offline=seen.offline,
            timed=seen.timed,
            tolerance_s=tolerance_s,
            facts=facts_of(scenario, seen, windows[cam], privacy.get(cam, [])),
            # A device boots as its own hardware does (SPEC §15a): judged in simulation only.
            boot_s=seen.spec.params.boot_s if live is None else None,
        )
        seen.paused = list(obs.deactivations)
        judgement = judgements[cam] = judge(obs)
        said = judge_replies(scenario, seen, reading)
        judgement.replies = said.problems
        # Without recorded deliveries (a live run) the deactivations derived from the acks
        # stand in for the replies' own reading.
        pauses = said.pauses if seen.deliveries else [
            Pause(a, b, resumed=True) for a, b in obs.deactivations]
        judgement.evidence = judge_evidence(scenario, seen, windows[cam], judgement, pauses,
                                            tolerance_s, reading,
                                            said.manual if seen.deliveries else None)
        # A device's battery and storage follow its own hardware, not the scenario's numbers
        # (SPEC §15a): self-reports are judged in simulation only.
        judgement.resources = judge_resources(scenario, seen) if live is None else []
    return ReplayResult(scenario, cameras, windows, judgements, forgeries, live)


def oracle_policy(sc: Scenario) -> PolicyReading:
    """The oracle's own reading of ``sc``'s policy document (never the controller's loader)."""
    if sc.policy_doc is not None:
        return read_policy(sc.policy_doc)
    if sc.policy_ref in BUILTIN:
        return read_policy(builtin_document(sc.policy_ref))
    path = Path(sc.policy_ref)
    return read_policy(file_document(path if path.is_absolute() else Path(sc.file).parent / path))


def entries_by_camera(sc: Scenario, entries: Iterable[TimelineEntry]) -> dict[str, list[TimelineEntry]]:
    """Camera id → the ``entries`` that address it (:meth:`Scenario.targets`), order kept."""
    out: dict[str, list[TimelineEntry]] = {}
    for e in entries:
        for cam in sc.targets(e):
            out.setdefault(cam, []).append(e)
    return out


def activity_entries(sc: Scenario, camera: str) -> list[TimelineEntry]:
    """The activity starts and ends addressed to ``camera``, in timeline order."""
    return [e for e in sorted(sc.timeline, key=lambda e: (e.at, e.index))
            if e.event in ("activity_start", "activity_end") and camera in sc.targets(e)]


#: An activity start or end as :func:`required_windows` reads it: the entry, its activity id
#: and activity (as strings), and the activity's tail if the policy requires it (else None).
ActivityRow = tuple[TimelineEntry, str, str, float | None]


def activity_rows(entries: Iterable[TimelineEntry], policy: PolicyReading) -> list[ActivityRow]:
    """The :data:`ActivityRow` of each of ``entries`` (activity starts and ends), order kept."""
    out: list[ActivityRow] = []
    for e in entries:
        activity = str(e.fields.get("activity"))
        out.append((e, str(e.fields.get("activity_id")), activity,
                    policy.tail(activity) if policy.is_required(activity) else None))
    return out


def required_windows(
    sc: Scenario, run: ObservedCamera, policy: PolicyReading | None = None,
    activities: Sequence[ActivityRow] | None = None,
) -> list[Window]:
    """Ground truth: the camera's required windows, from the scenario alone (with what
    became of their triggers). Kinds and tails come from the oracle's own reading of the
    policy document (:func:`oracle_policy`). ``activities``: :func:`activity_rows` of the
    camera's :func:`activity_entries`, when the caller computed them for every camera at once."""
    policy = policy if policy is not None else oracle_policy(sc)
    cam = run.spec.id
    # activity_id → (activity, its tail, true start, indices of every entry that starts it
    # meanwhile)
    open_: dict[str, tuple[str, float, float, list[int]]] = {}
    out: list[Window] = []

    def close(aid: str, end: float, end_idx: int | None) -> None:
        activity, tail, start, idxs = open_.pop(aid)
        told = run.delivered.get(end_idx) if end_idx is not None else None
        # The same activity may be announced more than once (its own topic and the team's,
        # a resend): the camera knew of the window from the first of them to arrive.
        if len(idxs) == 1:  # announced once (nearly always): no list to pick from
            first = run.delivered.get(idxs[0])
        else:
            firsts = [f for f in (run.delivered.get(i) for i in idxs) if f is not None]
            first = min(firsts, key=lambda f: f.seq) if firsts else None
        out.append(Window(
            activity=activity, activity_id=aid, start=start, end=min(end, sc.end),
            delivered=first.at if first else None,
            lost=first is None and any(i in run.lost for i in idxs),
            prior_state=first.prior_state if first else None,
            prior_since=first.prior_since if first else 0.0,
            prior_storage_free=first.prior_storage_free if first else math.inf,
            told_end=(told.at + tail if told is not None and told.ok else None),
        ))

    if activities is None:
        activities = activity_rows(activity_entries(sc, cam), policy)
    refusable = run.refusable
    for e, aid, activity, tail in activities:
        if e.index in refusable:
            continue  # a forgery, a replay, a stale command: nothing happened
        if e.event == "activity_start":
            if aid in open_:
                if open_[aid][0] == activity:
                    open_[aid][3].append(e.index)
            elif tail is not None:  # a required activity
                open_[aid] = (activity, tail, e.at, [e.index])
        elif aid in open_:
            close(aid, e.at + open_[aid][1], e.index)
    for aid in list(open_):
        close(aid, sc.end, None)
    out.sort(key=lambda w: (w.start, w.activity_id))
    return [w for w in out if w.end > w.start]


def allowed_deactivations(
    sc: Scenario, run: ObservedCamera, windows: list[Window], policy: PolicyReading | None = None
) -> list[tuple[float, float]]:
    """Allowed deactivations, from what was delivered and acknowledged (see oracle docs)."""
    policy = policy if policy is not None else oracle_policy(sc)
    # The windows as the camera knew them: from the arrival of the start to the arrival of
    # the end plus post_s (or the end of the run when the end never arrived) — a
    # deactivation is judged by what the camera was told, not by the ground truth.
    known = [(w.delivered, w.told_end if w.told_end is not None else sc.end) for w in windows
             if w.delivered is not None]

    def open_until(t: float) -> float | None:
        ends = [b for a, b in known if a <= t < b]
        if not ends:
            return None
        # extend through windows that overlap, until none is open
        end = max(ends)
        while True:
            more = [b for a, b in known if a <= end < b]
            if not more or max(more) <= end:
                return end
            end = max(more)

    out: list[tuple[float, float]] = []
    start: float | None = None
    limit = sc.end
    running: set[str] = set()
    for idx, first in arrival_order(run.delivered):
        if first.ok is not True or idx in run.refusable:
            continue
        e = sc.timeline[idx]
        if start is not None and first.at >= limit:
            out.append((start, limit))
            start = None
        f = e.fields
        # Only a *new* required activity resumes; a repeated start of a running one is
        # a duplicate and changes nothing (R-NOSPLIT).
        new_required = False
        if e.event == "activity_start":
            aid = str(f.get("activity_id"))
            new_required = aid not in running and policy.is_required(str(f.get("activity")))
            running.add(aid)
        elif e.event == "activity_end":
            running.discard(str(f.get("activity_id")))
        if start is None:
            if e.event == "deactivate" and f.get("reason") in policy.deactivation_reasons:
                until = open_until(first.at)
                if until is not None:
                    start, limit = first.at, until
        elif (
            e.event == "reactivate"
            or new_required
            or (e.event == "signal" and f.get("source") in policy.signals)
            or (e.event == "button" and f.get("action") == "start")
        ):
            out.append((start, first.at))
            start = None
    if start is not None:
        out.append((start, min(limit, sc.end)))
    return out


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + payload.hex()


def replay(
    scenario: Scenario, factory: ControllerFactory = make_node, trace: TraceSink | None = None
) -> ReplayResult:
    """Replay ``scenario`` once and judge it."""
    run = Replay(scenario, factory, trace)
    try:
        return run.run()
    finally:
        run.close()
