"""The reference camera controller: pure, synchronous, fed typed events and the time.

:class:`Camera` is the firmware logic of one body-worn camera. It never reads a clock and never
does I/O: :meth:`Camera.handle` takes a decoded event and the current time and returns the
outbound messages (acks, state, alerts, recording metadata) as data. Timed internal events —
boot completion, a ``post_s`` tail ending, segment rollover, storage filling up, low battery,
battery depletion — are *computed*, not polled: :meth:`Camera.next_deadline` says when the next
one is due and :meth:`Camera.on_timer` runs everything due. A 12-hour shift costs what its events
cost, not what its seconds cost.

Holds and reference counting
----------------------------
A recording stays open while any *reason* holds it (SPEC §4a):

* an open **required window** — a required activity from its start to its end plus ``post_s``.
  Windows are reference-counted by ``activity_id``: overlapping and nested activities keep one
  recording; duplicates and further activities never stop, restart or split it (R-NOSPLIT);
* a **manual hold**, taken by ``button start`` or an accepted device ``signal`` and released by
  ``button stop`` (refused while a required window is open, R-STOP).

An allowed ``deactivate`` during a required window *pauses* the required windows (and drops the
manual hold): the recording closes and the camera buffers again. ``reactivate``, a new required
activity, a signal or ``button start`` resume; the next recording keeps the incident id and has
the buffer prepended. The deactivation ends by itself when no required window remains.

Whenever the holds change, :meth:`Camera._reconcile` compares "should record" with the state
and fires ``activate`` or ``release`` on the state machine of :mod:`controller.machine`.

Pre-buffer arithmetic (R-BUF)
-----------------------------
The buffer runs from ``buffer_since`` (entry into ``pre_buffer``, which is also the instant a
recording ends). On activation at ``t_act`` the recording starts at
``t_act - min(prebuffer_s, t_act - buffer_since)`` — footage from before the buffer ran does not
exist. The buffered part is written at once and counts against storage; if storage cannot hold
all of it, the most recent seconds are kept; the older ones are lost to storage (the
``storage_full`` that follows announces them), so they are never called late.

Late triggers (R-LATE, R-MISS)
------------------------------
A trigger carries ``ts``, when its activity really began. The camera keeps its own history
(state changes with what kept it from recording, closed footage, ended deactivations), so when
a trigger arrives late it announces every excuse that held between ``ts`` and now: a
``missed_required_recording`` per cause (``docked``, ``battery``, ``not_ready``, ``storage``),
and a ``late_trigger`` whose span is the capture time that no footage — an earlier recording,
the current one with its buffer — and no deactivation covers. Footage that exists is never
reported as missed.

Battery and storage
-------------------
Both are piecewise linear in time with a slope fixed by the state, so they are advanced lazily
to the time of each event (:meth:`Camera._advance`), and their threshold crossings are deadlines.
While docked, closed recordings upload oldest-first at ``upload_speed`` and a recording's space is
freed only once its whole upload is confirmed.

Restarts (R-DURABLE)
--------------------
Everything the camera must remember across a crash is listed once, in :attr:`Camera.DURABLE`
(attribute → type), and :meth:`Camera.dump_state` / :meth:`Camera.load_state` turn it into bytes
and back (:mod:`controller.persist`). State added to the camera goes into that mapping, one line.
After a restore, :meth:`Camera.resume` plays the time the camera was down: the recording that
was open ends where the process died (its footage stops there), timers that fell due in the gap
run (a ``post_s`` tail may end, the battery drains) but nothing is captured, the buffer restarts
empty, and a required window still open starts a new recording under the same incident id. The
gap is excused for late-trigger arithmetic; the runtime announces it with a ``restarted`` alert.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, ClassVar

import msgspec

from .audit import AuditLog
from .bounds import Limits, Remembered, ReplyTable, bounded_add
from .machine import TRANSITIONS, CompiledMachine, State
from .messages import (
    EVENT_TYPES,
    Ack,
    ActivityEnd,
    ActivityStart,
    Alert,
    Button,
    Deactivate,
    Dock,
    Event,
    MsgId,
    Outbound,
    Reactivate,
    RecordingMeta,
    Signal,
    StateReport,
    Undock,
)
from .params import CameraParams
from .persist import StateCodec, Via
from .policy import Policy
from .spans import subtract, union

EPS = 1e-9
#: Camera._due when the next timer is not known (compared by identity, never read).
_UNKNOWN: tuple[float, str] = (float("nan"), "unknown")
_TIMERS = {kind: f"_timer_{kind}" for kind in
           ("boot", "low_battery", "deplete", "storage_full", "rollover", "tail")}


class S:
    """The states, as plain class attributes: on Python 3.11 every read of ``State.<name>`` goes
    through the enum metaclass's ``__getattr__`` hook, and the state is compared a dozen times
    per message."""

    docked = State.docked
    standby = State.standby
    pre_buffer = State.pre_buffer
    recording = State.recording
    off = State.off


_STATE_OF_VALUE = {state._value_: state for state in State}
# Keyed by the state's _value_ (a str, hashed in C; Enum.__hash__ is Python-level on 3.11).
_CAUSE_OF_STATE = {S.docked._value_: "docked", S.standby._value_: "not_ready",
                   S.off._value_: "battery"}


class Recording(msgspec.Struct):
    """The recording in progress (mutable while open; published as :class:`RecordingMeta`)."""

    id: str
    incident: str
    start: float
    buffer_s: float
    seg_start: float
    # An ordered set: adding a reason costs O(1) however many activities hold the recording.
    reasons: dict[str, None] = msgspec.field(default_factory=dict)
    segments: list[tuple[float, float]] = msgspec.field(default_factory=list)

    def add_reason(self, reason: str) -> None:
        self.reasons.setdefault(reason)


class Deactivation(msgspec.Struct, frozen=True):
    reason: str
    actor: str
    since: float


class Camera:
    """One camera's recording-control logic. See the module docstring for the rules."""

    # Attributes in slots: a camera has more than the 30 that Python 3.11 keeps in an instance's
    # shared-key dict, past which every read and write of one is a dict look-up. ``__dict__``
    # still takes anything else set on an instance.
    __slots__ = (
        "__dict__", "_down_until", "_dropped", "_due", "_footage", "_history", "_next_reasons",
        "_now", "_out", "_paused", "_prev", "_reported", "_tails", "_windows_rev", "activities",
        "alerts", "audit", "auth", "boot_end", "buffer_since", "camera_id", "charge", "charge_t",
        "deactivation", "ended", "incidents", "limits", "low_armed", "manual_hold", "params",
        "paused_incident", "policy", "rec", "recordings", "replies", "since", "state", "upload_t",
        "uploads", "used", "used_t", "windows",
    )

    #: The camera's state across a restart: attribute path → type (see :mod:`controller.persist`).
    #: Configuration (id, policy, parameters) is not here: it comes from the camera's setup.
    DURABLE: ClassVar[dict[str, Any]] = {
        "state": State,
        "_prev": State,
        "since": float,
        "_now": float,
        "buffer_since": float,
        "boot_end": float | None,
        "charge": float,
        "charge_t": float,
        "low_armed": bool,
        "used": float,
        "used_t": float,
        "upload_t": float,
        "uploads": deque[list[float]],
        "activities": dict[str, str],
        "windows": dict[str, float | None],
        "ended": OrderedDict[str, None],
        "_tails": list[tuple[float, str]],
        "_windows_rev": int,
        "manual_hold": bool,
        "deactivation": Deactivation | None,
        "paused_incident": str | None,
        "rec": Recording | None,
        "_next_reasons": list[str],
        "incidents": int,
        "recordings": int,
        "alerts": int,
        "replies": Via(list[Remembered], ReplyTable.entries, ReplyTable.restore),
        "_reported": tuple[State, float, int] | None,
        "_history": list[tuple[float, str | None]],
        "_footage": list[tuple[float, float]],
        "_paused": list[tuple[float, float]],
        "_dropped": tuple[float, float, float] | None,
        "audit._head": str,
        "audit._count": int,
    }

    # Bound from the table in controller.machine, compiled once per process (see _MACHINE).
    state: State
    dock: Callable[[], bool]
    undock: Callable[[], bool]
    boot_done: Callable[[], bool]
    activate: Callable[[], bool]
    release: Callable[[], bool]
    deplete: Callable[[], bool]

    def __init__(
        self,
        camera_id: str,
        policy: Policy,
        params: CameraParams | None = None,
        initial: str = "pre_buffer",
        now: float = 0.0,
        limits: Limits | None = None,
        auth: str = "none",
    ) -> None:
        self.camera_id = camera_id
        self.policy = policy
        self.params = p = params if params is not None else CameraParams()
        self.limits = limits if limits is not None else Limits()
        self.auth = auth  # reported in the retained state (SPEC §14)
        self.audit = AuditLog(camera_id)
        self._now = now
        self.since = now
        self.buffer_since = now
        self.boot_end: float | None = None
        # Battery: charge at time charge_t; storage: seconds used at time used_t.
        self.charge = p.battery_s
        self.charge_t = now
        self.low_armed = p.battery_s > p.low_battery_s
        self.used = 0.0
        self.used_t = now
        self.upload_t = now
        # Closed recordings not yet offloaded: [size, uploaded so far], oldest first.
        self.uploads: deque[list[float]] = deque()
        # Activities: every accepted running activity (any kind) → its name; open required
        # windows → tail end (None while the activity runs). Both capped (R-BOUND); ended ids
        # are remembered for the newest max_remembered only, oldest forgotten first.
        self.activities: dict[str, str] = {}
        self.windows: dict[str, float | None] = {}
        self.ended: OrderedDict[str, None] = OrderedDict()
        # Tail ends as a heap of (end, activity id), so the next one is found in O(log n);
        # an entry whose window no longer has that tail is stale and skipped.
        self._tails: list[tuple[float, str]] = []
        # Bumped whenever the set of open windows changes: the state report compares it
        # instead of the whole set.
        self._windows_rev = 0
        self.manual_hold = False
        self.deactivation: Deactivation | None = None
        self.paused_incident: str | None = None
        self.rec: Recording | None = None
        self._next_reasons: list[str] = []
        self.incidents = 0
        self.recordings = 0
        self.alerts = 0  # alert ids: <camera>-a<n>
        self.replies = ReplyTable(self.limits)
        self._out: list[Outbound] = []
        self._reported: tuple[State, float, int] | None = None
        # State(initial) goes through the enum metaclass; the table is the same look-up, and
        # anything not in it is left to State() to take or refuse.
        self.state = _STATE_OF_VALUE.get(initial) or State(initial)
        self._prev = self.state
        if self.state is S.standby:
            self.boot_end = now + p.boot_s
        # What the camera itself knows of its past, so a trigger that arrives late can be
        # answered with the right alerts: (since, cause that kept it from recording or None),
        # closed recordings (merged spans) and ended deactivations.
        self._history: list[tuple[float, str | None]] = [(now, self._cannot_record_cause())]
        self._footage: list[tuple[float, float]] = []
        self._paused: list[tuple[float, float]] = []
        # Buffered seconds the latest activation dropped because storage could not hold them
        # (when, from, to): for the trigger that activated, they are lost to storage (announced
        # by storage_full), not to lateness.
        self._dropped: tuple[float, float, float] | None = None
        # While a restart replays the time the camera was down, nothing may start recording.
        self._down_until: float | None = None
        # The next timer as next_deadline() last answered it, for the next event's catch-up
        # (_run_timers); _UNKNOWN once anything may have changed it.
        self._due: tuple[float, str] | None = _UNKNOWN

    # ------------------------------------------------------------------ public interface

    def start(self) -> list[Outbound]:
        """The first retained state report."""
        self.audit.append(self._now, "power_on", {"state": self.state._value_})
        self._report()
        return self._flush()

    def handle(self, event: Event, now: float, sender: str | None = None) -> list[Outbound]:
        """Handle one decoded inbound event at time ``now``; returns what to publish.

        ``sender`` is the principal whose signature the message carried (SPEC §14), ``None``
        when the camera runs ``auth: none``: ids are recognised per sender, and the audit log
        names who commanded.
        """
        self._run_timers(now)  # what _catch_up does, without the calls (once per message)
        if (self.state, self.since, self._windows_rev) != self._reported:
            self._report()
        key = (sender, event.id)
        reply = self.replies.get(key, now)
        if reply is not None:  # QoS 1 redelivery: same answer, no second effect (R-IDEM)
            self.audit.append(now, "duplicate", _origin({"id": event.id}, sender))
            self._out.append(reply)
            return self._flush()
        error = self._dispatch(event)
        ack = Ack(id=event.id, ok=error is None, error=error)
        self.replies.put(key, ack, now)
        if error is None:
            self.audit.append(now, "accepted", _origin(
                {"id": event.id, "type": _TAG.get(type(event)) or _type_of(event)}, sender))
        else:
            self.audit.append(now, "refused", _origin({"id": event.id, "error": error}, sender))
        self._out.append(ack)
        if (self.state, self.since, self._windows_rev) != self._reported:  # as _report compares
            self._report()
        out, self._out = self._out, []  # _flush, without the call
        return out

    def is_duplicate(self, event: Event, now: float, sender: str | None = None) -> bool:
        """Whether :meth:`handle` would answer ``event`` as a redelivery."""
        return self.replies.get((sender, event.id), now) is not None

    def refuse(
        self, msg_id: MsgId | None, error: str, now: float, by: str | None = None,
        remember: bool = True,
    ) -> list[Outbound]:
        """NACK an inbound payload that was not handled (R-BAD, R-AUTH); nothing else changes.

        ``by`` is the principal the payload named, for the audit log. ``remember`` keeps the
        NACK as the reply to a redelivery of the id; it is false for a payload whose origin did
        not verify, so that nobody can pre-empt a principal's message id.
        """
        self._catch_up(now)
        if msg_id is not None and remember:
            reply = self.replies.get((by, msg_id), now)
            if reply is not None:
                self.audit.append(now, "duplicate", _origin({"id": msg_id}, by))
                self._out.append(reply)
                return self._flush()
        ack = Ack(id=msg_id, ok=False, error=error)
        if msg_id is not None and remember:
            self.replies.put((by, msg_id), ack, now)
        self.audit.append(now, "refused", _origin({"id": msg_id, "error": error}, by))
        self._out.append(ack)
        return self._flush()

    def _catch_up(self, now: float) -> None:
        """Run the deadlines a driver did not wake us for, and report what they changed first,
        so the retained state never lags behind a message that arrives after them."""
        self._run_timers(now)
        self._report()

    def next_deadline(self) -> float | None:
        due = self._next_timer()
        # Nothing changes the camera between this call and the next event (only events do),
        # so the next event's catch-up starts from this answer instead of computing it again.
        self._due = due
        return due[0] if due is not None else None

    def on_timer(self, now: float) -> list[Outbound]:
        self._run_timers(now)
        self._report()
        return self._flush()

    def finish(self, now: float) -> list[Outbound]:
        """End of observation: an open recording is published as it stands, marked ``open``."""
        self._run_timers(now)
        if self.rec is not None:
            self._publish_recording(self.rec, now, final=True, is_open=True)
        return self._flush()

    @property
    def active(self) -> tuple[str, ...]:
        """Open required windows, in the order they opened."""
        return tuple(self.windows)

    @property
    def storage_free(self) -> float:
        free = self.params.storage_s - self.used
        return free if free > 0.0 else 0.0  # max(0.0, free), read several times per event

    def snapshot(self) -> dict[str, Any]:
        """Observable state, for tests and property checks."""
        return {
            "state": self.state.value,
            "since": self.since,
            "active": list(self.windows),
            "manual_hold": self.manual_hold,
            "deactivated": self.deactivation is not None,
            "recording": None if self.rec is None else (self.rec.id, self.rec.start),
            "charge": self.charge,
            "used": self.used,
        }

    # ------------------------------------------------------------------ restarts

    def dump_state(self) -> bytes:
        """Everything :attr:`DURABLE` lists, as bytes (call between events, never inside one)."""
        return _STATE.dump(self)

    def load_state(self, data: bytes) -> None:
        """Take over the state :meth:`dump_state` wrote (on a camera built from the same setup)."""
        _STATE.load(self, data)
        self._due = _UNKNOWN

    def resume(self, down_since: float, now: float) -> list[Outbound]:
        """Power on again at ``now`` after the process stopped at ``down_since`` (see the module
        docstring): close the interrupted recording, play the gap without capturing, resume."""
        down_since = min(max(down_since, self._now), now)
        self._run_timers(down_since)
        self._down_until = now
        if self.state is S.recording:
            assert self.rec is not None
            incident = self.rec.incident
            self.release()  # its footage ends where the process died
            self.paused_incident = incident  # kept only while a required window stays open
        self._run_timers(now)
        self._down_until = None
        if self.state is S.pre_buffer:
            self.buffer_since = now  # the buffer restarts empty
        self._paused.append((down_since, now))  # announced by the runtime's `restarted` alert
        self.audit.append(now, "restart", {"down_since": down_since, "windows": list(self.windows)})
        self._reconcile()
        self._report()
        return self._flush()

    # ------------------------------------------------------------------ events

    def _dispatch(self, event: Event) -> str | None:
        # By class (the event classes are final): an isinstance that fails, as most of these
        # would, is slow on a Struct class.
        if type(event) is ActivityStart:
            return self._activity_start(event)
        if type(event) is ActivityEnd:
            return self._activity_end(event)
        if type(event) is Signal:
            if event.source not in self.policy.signals:
                return None  # a source this policy does not list starts nothing (SPEC §4a)
            return self._manual_start(f"signal:{event.source}")
        if type(event) is Button:
            return self._manual_start("button") if event.action == "start" else self._stop()
        if type(event) is Dock:
            if self.state is not S.docked:
                self._dock()
            return None
        if type(event) is Undock:
            if self.state is S.docked:
                self._undock()
            return None
        if type(event) is Deactivate:
            return self._deactivate(event)
        if type(event) is Reactivate:
            if self.deactivation is not None:
                self._end_deactivation("reactivate")
                self._reconcile()
            return None
        return f"unknown_type: {_type_of(event)}"  # pragma: no cover - the codec rejects these

    def _activity_start(self, ev: ActivityStart) -> str | None:
        kind = self.policy.kind(ev.activity)
        if kind is None:
            return f"unknown_activity: {ev.activity}"
        aid = ev.activity_id
        if aid in self.activities:
            return None  # already running: never restarts or splits anything (R-NOSPLIT)
        cap = self.limits.max_open_activities
        if len(self.activities) >= cap or (aid not in self.windows and len(self.windows) >= cap):
            return f"too_many_activities: {cap} open"  # R-BOUND: refused, nothing changes
        self.activities[aid] = ev.activity
        self.ended.pop(aid, None)
        if kind != "required":
            return None  # prohibited never starts a recording; discretionary is the officer's call
        self.windows.pop(aid, None)  # a restart inside its own post_s tail reopens the window
        self.windows[aid] = None
        self._windows_rev += 1
        if self.deactivation is not None:
            self._end_deactivation(f"activity_start:{aid}")
        if self.rec is not None:
            self.rec.add_reason(aid)
        else:
            self._next_reasons.append(aid)
        self._reconcile()
        self._announce_start(aid, ev.ts)
        self._next_reasons.clear()
        return None

    def _activity_end(self, ev: ActivityEnd) -> str | None:
        aid = ev.activity_id
        if aid not in self.activities:
            return None if aid in self.ended else f"unknown_activity: {aid}"
        name = self.activities.pop(aid)
        bounded_add(self.ended, aid, self.limits.max_remembered)
        if aid in self.windows:
            post = self.policy.post_s.get(name, 0.0)
            if post > 0:
                tail = self._now + post
                self.windows[aid] = tail
                heapq.heappush(self._tails, (tail, aid))
            else:
                del self.windows[aid]
                self._windows_rev += 1
            self._reconcile()
        return None

    def _manual_start(self, reason: str) -> str | None:
        st = self.state
        if st is not S.pre_buffer and st is not S.recording:  # not in CAPTURING, without hashing
            return "not_ready"
        if st is S.pre_buffer and self.storage_free <= EPS:
            return "storage_full"
        if self.deactivation is not None:
            self._end_deactivation(reason)
        self.manual_hold = True
        if self.rec is not None:
            self.rec.add_reason(reason)
        else:
            self._next_reasons.append(reason)
        self._reconcile()
        self._next_reasons.clear()
        return None

    def _stop(self) -> str | None:
        if self.windows and self.deactivation is None:
            return "required_activity"  # R-STOP: the recording continues
        self.manual_hold = False
        self._reconcile()
        return None

    def _deactivate(self, ev: Deactivate) -> str | None:
        if not self.windows:
            return self._stop()  # outside a required window it is a plain stop
        if ev.reason not in self.policy.deactivation_reasons:
            return "reason_not_allowed"
        if self.deactivation is None:
            self.deactivation = Deactivation(ev.reason, ev.actor, self._now)
            self.audit.append(
                self._now, "deactivation",
                {"reason": ev.reason, "actor": ev.actor, "windows": list(self.windows)},
            )
            self.manual_hold = False
            if self.rec is not None:
                self.paused_incident = self.rec.incident
            self._reconcile()
        return None

    def _end_deactivation(self, by: str) -> None:
        assert self.deactivation is not None
        self.audit.append(
            self._now, "deactivation_end", {"by": by, "since": self.deactivation.since}
        )
        self._paused.append((self.deactivation.since, self._now))
        self.deactivation = None

    def _dock(self) -> None:
        self.manual_hold = False
        self.dock()
        self._alert_missed("docked", tuple(self.windows))

    def _undock(self) -> None:
        self.undock()
        self._alert_missed("not_ready", tuple(self.windows))

    # ------------------------------------------------------------------ holds

    def _reconcile(self) -> None:
        """Bring the state machine in line with the holds (the only caller of activate/release)."""
        if self.deactivation is not None and not self.windows:
            self._end_deactivation("windows_closed")
        if not self.windows:
            self.paused_incident = None
        # Held open by the manual hold or by an open required window not paused.
        holding = self.manual_hold or (bool(self.windows) and self.deactivation is None)
        st = self.state
        if st is S.recording:
            if not holding:
                self.release()
        # storage_free > EPS, read without the property (EPS > 0, so its clamp at 0 is moot)
        elif (st is S.pre_buffer and holding and self.params.storage_s - self.used > EPS
              and self._down_until is None):
            self.activate()

    def _cannot_record_cause(self) -> str | None:
        """What physically stops the camera recording now (None: nothing does)."""
        st = self.state
        if st is S.pre_buffer:
            return "storage" if self.storage_free <= EPS else None
        return _CAUSE_OF_STATE.get(st._value_)

    def _announce_start(self, aid: str, ts: float | None) -> None:
        """Alert whatever keeps a new required window from being covered (R-MISS, R-LATE).

        Now: the cause that stops the camera recording at this instant, if any. In the past
        (``ts`` before arrival): every cause that held between ``ts`` and now, from the camera's
        own state history, and a ``late_trigger`` naming the capture time that no footage (old
        recordings, the current one with its buffer) and no deactivation covers.
        """
        now = self._now
        rec = self.rec
        if rec is not None:
            # Recording now, so nothing stops it at this instant. If it has been recording since
            # no later than ts (its footage and its state both reach back that far), no cause
            # held and no capture time went uncovered: nothing to announce, and nothing need be
            # searched (the common case: a trigger a few hundredths late during a patrol).
            if ts is None or ts >= now - EPS:
                return
            since, cause = self._history[-1]
            if cause is None and since <= ts and rec.start <= ts:
                return
        causes: list[str] = []
        late: list[tuple[float, float]] = []
        if ts is not None and ts < now - EPS:
            covered = list(self._footage)
            if self.rec is not None:
                covered.append((self.rec.start, now))
            covered += self._paused
            if self._dropped is not None and self._dropped[0] == now:
                covered.append(self._dropped[1:])
            if self.deactivation is not None:
                covered.append((self.deactivation.since, now))
            covered = union(covered)
            for a, b, cause in self._history_between(ts, now):
                if cause is None:
                    late += subtract([(a, b)], covered)
                elif cause not in causes:
                    causes.append(cause)
        current = None if self.rec is not None else self._cannot_record_cause()
        if current is not None and current not in causes:
            causes.append(current)
        for cause in causes:
            self._alert_missed(cause, (aid,))
        if late:
            self._emit_alert(Alert(
                kind="late_trigger", at=now, activity_id=aid, span=(late[0][0], late[-1][1])
            ))

    def _history_between(self, t0: float, t1: float) -> list[tuple[float, float, str | None]]:
        """The camera's own history over ``[t0, t1)``: (from, to, what kept it from recording)."""
        out: list[tuple[float, float, str | None]] = []
        end = t1
        for since, cause in reversed(self._history):
            a = max(since, t0)
            if end > a + EPS:
                out.append((a, end, cause))
            if since <= t0:
                break
            end = since
        out.reverse()
        return out

    # ------------------------------------------------------------------ state callbacks

    def _state_changed(self) -> None:
        self._due = _UNKNOWN  # a trigger fired from outside an event must not reuse it
        self.since = self._now
        # _value_ is what Enum.value (a Python-level property) returns, read without the call.
        self.audit.append(self._now, "state", {"from": self._prev._value_, "to": self.state._value_})
        self._prev = self.state
        self._history.append((self._now, self._cannot_record_cause()))

    def on_enter_pre_buffer(self) -> None:
        self.buffer_since = self._now

    def on_enter_standby(self) -> None:
        self.boot_end = self._now + self.params.boot_s

    def on_exit_standby(self) -> None:
        self.boot_end = None

    def on_enter_docked(self) -> None:
        self.upload_t = self._now

    def on_exit_docked(self) -> None:
        if self.charge > self.params.low_battery_s:
            self.low_armed = True

    def on_enter_recording(self) -> None:
        now = self._now
        wanted = min(self.params.prebuffer_s, now - self.buffer_since)
        buffer_s = max(0.0, min(wanted, self.storage_free))
        self._dropped = (now, now - wanted, now - buffer_s) if wanted > buffer_s + EPS else None
        self.used += buffer_s
        if self.paused_incident is not None:
            incident = self.paused_incident
            self.paused_incident = None
        else:
            self.incidents += 1
            incident = f"{self.camera_id}-{self.incidents}"
        self.recordings += 1
        rec = Recording(f"{self.camera_id}-r{self.recordings}", incident, now - buffer_s, buffer_s,
                        seg_start=now - buffer_s)
        for reason in self._next_reasons:
            rec.add_reason(reason)
        for aid in self.windows:
            rec.add_reason(aid)
        self.rec = rec
        self.audit.append(
            now, "recording_open", {"recording": rec.id, "incident": incident, "buffer_s": buffer_s}
        )

    def on_exit_recording(self) -> None:
        rec = self.rec
        assert rec is not None
        self._publish_recording(rec, self._now, final=True, is_open=False)
        # The whole recording (all its segments) is one upload: its space is freed only when
        # every segment is confirmed (SPEC §4a), so evidence is never half-deleted.
        self.uploads.append([sum(b - a for a, b in rec.segments), 0.0])
        # Recordings close in time order, so the merged footage only ever grows at its end.
        if self._footage and rec.start <= self._footage[-1][1] + EPS:
            self._footage[-1] = (self._footage[-1][0], max(self._now, self._footage[-1][1]))
        else:
            self._footage.append((rec.start, self._now))
        self.rec = None

    def _publish_recording(self, rec: Recording, end: float, final: bool, is_open: bool) -> None:
        # A recording that closes at the very instant of a rollover (a tail ending, storage
        # filling, a dock, the end of the scenario) has nothing in its next segment: publish
        # the final metadata without inventing an empty file.
        if end > rec.seg_start + EPS or not rec.segments:
            rec.segments.append((rec.seg_start, end))
        self._out.append(
            RecordingMeta(
                camera=self.camera_id,
                recording=rec.id,
                incident=rec.incident,
                start=rec.start,
                end=end,
                buffer_s=rec.buffer_s,
                reasons=list(rec.reasons),
                segments=len(rec.segments),
                segment_list=list(rec.segments),
                final=final,
                open=is_open,
            )
        )
        # The entry's time is when the camera closed the segment, never the segment's end: a
        # rollover that falls due before the activation (a buffer longer than segment_max_s)
        # closes a segment ending in the past, and the log's times never go back (R-AUDIT). The
        # segment's span is in the metadata just published.
        self.audit.append(
            self._now, "segment_close",
            {"recording": rec.id, "segment": len(rec.segments), "final": final},
        )
        rec.seg_start = end

    # ------------------------------------------------------------------ time

    def _rate(self) -> float:
        st = self.state
        if st is S.recording:
            return -self.params.record_drain
        if st is S.docked:
            return self.params.charge_rate
        if st is S.off:
            return 0.0
        return -1.0

    def _advance(self, t: float) -> None:
        """Move battery, storage and uploads forward to time ``t`` (no events cross inside)."""
        dt = t - self.charge_t
        if dt > 0:
            # min(battery_s, max(0.0, charge)), written out: this runs on every event
            charge = self.charge + self._rate() * dt
            if not charge > 0.0:
                charge = 0.0
            full = self.params.battery_s
            self.charge = charge if charge < full else full
            self.charge_t = t
            if self.state is S.recording:
                used, cap = self.used + (t - self.used_t), self.params.storage_s
                self.used = used if used < cap else cap  # min(cap, used)
            elif self.state is S.docked:
                self._upload(t)
        self.used_t = t
        self._now = t

    def _upload(self, t: float) -> None:
        budget = (t - self.upload_t) * self.params.upload_speed
        self.upload_t = t
        while budget > 0 and self.uploads:
            item = self.uploads[0]
            take = min(budget, item[0] - item[1])
            item[1] += take
            budget -= take
            if item[1] >= item[0] - EPS:  # confirmed: only now is the space freed (R-STORE)
                self.uploads.popleft()
                self.used = max(0.0, self.used - item[0])

    def _next_timer(self) -> tuple[float, str] | None:
        # The earliest deadline, the first one considered winning a tie. Called at least twice
        # per event, so written out flat (no helper, no tuple per candidate).
        st = self.state
        p = self.params
        kind: str | None = None
        at = 0.0
        if st is S.standby and self.boot_end is not None:
            at, kind = self.boot_end, "boot"
        if st is S.standby or st is S.pre_buffer or st is S.recording:
            drain = p.record_drain if st is S.recording else 1.0
            charge, charge_t = self.charge, self.charge_t
            # low_battery_s = 0 means no warning: crossing zero is depletion, announced by
            # battery_empty; a low_battery at the same instant would only be noise.
            if self.low_armed and charge > p.low_battery_s > 0:
                t = charge_t + (charge - p.low_battery_s) / drain
                if kind is None or t < at:
                    at, kind = t, "low_battery"
            t = charge_t + charge / drain
            if kind is None or t < at:
                at, kind = t, "deplete"
            if st is S.recording:
                rec = self.rec
                assert rec is not None
                t = rec.seg_start + p.segment_max_s
                if t < at:
                    at, kind = t, "rollover"
                t = self.used_t + (p.storage_s - self.used)
                if t < at:
                    at, kind = t, "storage_full"
        if self._tails:
            tail = self._next_tail()
            if tail is not None and (kind is None or tail < at):
                at, kind = tail, "tail"
        return None if kind is None else (at, kind)

    def _next_tail(self) -> float | None:
        """The earliest ``post_s`` tail end still current (stale heap entries dropped)."""
        tails = self._tails
        windows = self.windows
        while tails:
            end, aid = tails[0]
            if windows.get(aid) == end:
                return end
            heapq.heappop(tails)
        return None

    def _run_timers(self, now: float) -> None:
        due = self._due
        self._due = _UNKNOWN
        if due is _UNKNOWN:
            due = self._next_timer()
        while due is not None and due[0] <= now:
            at, kind = due
            self._advance(self._now if self._now > at else at)  # max(at, self._now)
            getattr(self, _TIMERS[kind])()
            due = self._next_timer()
        self._advance(self._now if self._now > now else now)  # max(now, self._now)

    def _timer_boot(self) -> None:
        self.boot_done()
        self._reconcile()
        self._alert_missed(self._cannot_record_cause(), tuple(self.windows))

    def _timer_low_battery(self) -> None:
        self.charge = self.params.low_battery_s
        self.low_armed = False
        self._emit_alert(Alert(kind="low_battery", at=self._now))

    def _timer_deplete(self) -> None:
        self.charge = 0.0
        self.low_armed = False
        self._emit_alert(Alert(kind="battery_empty", at=self._now))
        self.manual_hold = False
        self.deplete()
        self._alert_missed("battery", tuple(self.windows))

    def _timer_storage_full(self) -> None:
        self.used = self.params.storage_s
        self._emit_alert(Alert(kind="storage_full", at=self._now))
        self.manual_hold = False
        self.release()
        self._alert_missed("storage", tuple(self.windows))

    def _timer_rollover(self) -> None:
        rec = self.rec
        assert rec is not None
        # Normally the timer fires at its deadline. A buffer longer than segment_max_s puts the
        # first deadline before the activation itself: the segment still ends at its deadline,
        # and the next one falls due at once (R-ROLL: every segment but the last is full).
        end = min(self._now, rec.seg_start + self.params.segment_max_s)
        self._publish_recording(rec, end, final=False, is_open=False)

    def _timer_tail(self) -> None:
        tails = self._tails
        while tails and tails[0][0] <= self._now:
            end, aid = heapq.heappop(tails)
            if self.windows.get(aid) == end:
                del self.windows[aid]
                self._windows_rev += 1
        self._reconcile()

    # ------------------------------------------------------------------ output

    def _alert_missed(self, cause: str | None, windows: tuple[str, ...]) -> None:
        if cause is None:
            return
        for aid in windows:
            self._emit_alert(
                Alert(kind="missed_required_recording", at=self._now, cause=cause, activity_id=aid)
            )

    def _emit_alert(self, alert: Alert) -> None:
        self.alerts += 1
        alert = msgspec.structs.replace(alert, alert_id=f"{self.camera_id}-a{self.alerts}")
        self.audit.append(
            self._now, "alert",
            {"kind": alert.kind, "cause": alert.cause, "activity_id": alert.activity_id},
        )
        self._out.append(alert)

    def _report(self) -> None:
        key = (self.state, self.since, self._windows_rev)
        if key != self._reported:
            self._reported = key
            self._out.append(
                StateReport(
                    state=self.state._value_,  # .value without the property call
                    since=self.since,
                    active=list(self.windows),
                    battery_s=self.charge,
                    storage_s=self.storage_free,
                    auth=self.auth,
                )
            )

    def _flush(self) -> list[Outbound]:
        out, self._out = self._out, []
        return out


_STATE = StateCodec("Camera", Camera.DURABLE)

#: The state table compiled for the camera, once per process: what a ``transitions.Machine``
#: built per camera with ``auto_transitions=False, send_event=False,
#: after_state_change="_state_changed"`` would do, without building one.
_MACHINE = CompiledMachine(State, TRANSITIONS, Camera, after_state_change="_state_changed")
_MACHINE.bind(Camera)


def _origin(data: dict[str, Any], sender: str | None) -> dict[str, Any]:
    """Audit data, with the principal that sent (or claimed to send) the message when known."""
    if sender is not None:
        data["by"] = sender
    return data


def _type_of(event: Event) -> str:
    return type(event).__struct_config__.tag  # type: ignore[return-value]


#: Each event class's ``type`` tag (what _type_of reads), looked up once per message.
_TAG: dict[type, Any] = {cls: cls.__struct_config__.tag for cls in EVENT_TYPES.values()}
