"""Deliberately broken controllers: each breaks one rule of SPEC §4, for the property suites
to catch (``tests/properties/test_broken_controllers.py``).

Each factory takes a :class:`~controller.node.CameraSetup` like the reference
``controller.reference:make_node`` and can be named on the command line, e.g.
``bwcsim fuzz --controller broken_controllers:zero_buffer`` with ``tests/`` on ``PYTHONPATH``.
They subclass the reference :class:`~controller.camera.Camera` and change as little as possible,
so a failure points at exactly the rule that was broken.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import msgspec

from controller.camera import Camera, Deactivation
from controller.machine import State
from controller.messages import ActivityEnd, ActivityStart, Alert, Event, MsgId, Outbound
from controller.node import CameraNode, CameraSetup
from controller.reference import ReferenceNode


class _ZeroBufferCamera(Camera):
    """R-BUF broken: the buffered footage is never prepended."""

    def on_enter_recording(self) -> None:
        self.buffer_since = self._now
        super().on_enter_recording()


class _HalfBufferCamera(Camera):
    """R-BUF broken: only half of the available buffer is prepended."""

    def on_enter_recording(self) -> None:
        available = min(self.params.prebuffer_s, self._now - self.buffer_since)
        self.buffer_since = self._now - available / 2
        super().on_enter_recording()


class _NoRefCountCamera(Camera):
    """R-NOSPLIT broken: any ``activity_end`` closes every required window (no reference count)."""

    def _activity_end(self, ev: ActivityEnd) -> str | None:
        had_window = ev.activity_id in self.windows
        error = super()._activity_end(ev)
        if error is None and had_window and self.windows:
            self.windows.clear()
            self._reconcile()
        return error


class _StopHonouredCamera(Camera):
    """R-STOP broken: a manual stop during a required activity is obeyed."""

    def _stop(self) -> str | None:
        if self.windows and self.deactivation is None:
            # Behaves like an unrecorded pause: the recording closes and the press is acked.
            self.deactivation = Deactivation("button_stop", "officer", self._now)
            self.manual_hold = False
            self._reconcile()
            return None
        return super()._stop()


class _DockDropsCamera(Camera):
    """R-DOCK broken: docking discards the open recording instead of closing it."""

    _docking = False

    def _dock(self) -> None:
        self._docking = True
        try:
            super()._dock()
        finally:
            self._docking = False

    def on_exit_recording(self) -> None:
        if self._docking:
            self.rec = None  # never published: the footage is lost
            return
        super().on_exit_recording()


class _SilentMissCamera(Camera):
    """R-MISS broken: the ``missed_required_recording`` alert is never sent."""

    def _alert_missed(self, cause: str | None, windows: tuple[str, ...]) -> None:
        return


class _SignalStopsCamera(Camera):
    """R-SIG broken: a device signal while recording stops the recording instead of holding it."""

    def _manual_start(self, reason: str) -> str | None:
        if reason.startswith("signal:") and self.rec is not None:
            self.manual_hold = False
            if self.windows and self.deactivation is None:
                self.deactivation = Deactivation(reason, "device", self._now)
            self._reconcile()
            return None
        return super()._manual_start(reason)


class _FullBufferCamera(Camera):
    """R-BUF broken (P-NOPHANTOM): always claims the whole ``prebuffer_s``, however recently the
    buffer started."""

    def on_enter_recording(self) -> None:
        self.buffer_since = self._now - self.params.prebuffer_s
        super().on_enter_recording()


class _DockedBufferCamera(Camera):
    """§2 broken (P-NOPHANTOM): the buffer keeps running through the dock and the boot, so the
    first activation after an undock prepends seconds captured in the dock."""

    def on_enter_docked(self) -> None:
        self.buffer_since = self._now
        super().on_enter_docked()

    def on_enter_pre_buffer(self) -> None:
        if self._prev is not State.standby:
            super().on_enter_pre_buffer()


class _ProhibitedRecordsCamera(Camera):
    """R-SIG broken (P-PRIVACY): a prohibited activity starts a recording, held until it ends."""

    def _activity_start(self, ev: ActivityStart) -> str | None:
        fresh = ev.activity_id not in self.activities
        error = super()._activity_start(ev)
        if error is None and fresh and self.policy.kind(ev.activity) == "prohibited":
            return self._manual_start(f"activity:{ev.activity_id}")
        return error

    def _activity_end(self, ev: ActivityEnd) -> str | None:
        was = self.activities.get(ev.activity_id)
        error = super()._activity_end(ev)
        if error is None and was is not None and self.policy.kind(was) == "prohibited":
            self.manual_hold = False
            self._reconcile()
        return error


class _SignalSplitsCamera(Camera):
    """R-SIG broken (P-PRIVACY): a signal while recording closes the recording and opens a new
    one at once (a split, with no second of footage lost)."""

    def _manual_start(self, reason: str) -> str | None:
        if reason.startswith("signal:") and self.state is State.recording:
            self.release()
        return super()._manual_start(reason)


class _DuplicateSplitsCamera(Camera):
    """R-IDEM/R-NOSPLIT broken (P-PRIVACY): a redelivered message (QoS 1 duplicate) closes the
    running recording and opens a new one at once, although its reply is the first one."""

    def handle(self, event: Event, now: float, sender: str | None = None) -> list[Outbound]:
        if self.is_duplicate(event, now, sender) and self.state is State.recording:
            self._catch_up(now)
            self.release()
            self._reconcile()
            self._report()
        return super().handle(event, now, sender)


class _StopAckedCamera(Camera):
    """R-STOP broken in what it says: a manual stop during a required activity is refused in
    effect (the recording continues) but acked, so the officer believes it stopped."""

    def _stop(self) -> str | None:
        if self.windows and self.deactivation is None:
            return None
        return super()._stop()


class _SilentNullNackCamera(Camera):
    """R-BAD broken: a payload with no readable id gets no NACK at all."""

    def refuse(
        self, msg_id: MsgId | None, error: str, now: float, by: str | None = None,
        remember: bool = True,
    ) -> list[Outbound]:
        if msg_id is None:
            self._catch_up(now)
            return self._flush()
        return super().refuse(msg_id, error, now, by, remember)


class _UnknownEndAckedCamera(Camera):
    """R-IDEM broken: an ``activity_end`` for an activity that never started is acked."""

    def _activity_end(self, ev: ActivityEnd) -> str | None:
        error = super()._activity_end(ev)
        return None if error is not None and error.startswith("unknown_activity") else error


class _FlatDrainCamera(Camera):
    """R-POWER broken: recording drains the battery at the buffering rate, not record_drain."""

    def _rate(self) -> float:
        rate = super()._rate()
        return -1.0 if rate == -self.params.record_drain else rate


class _LowBatteryOnceCamera(Camera):
    """R-POWER broken: ``low_battery`` is never re-armed by charging, so a camera charged and
    drained again gives no second warning."""

    def on_exit_docked(self) -> None:
        return


class _FreedAtDockCamera(Camera):
    """R-STORE broken: docking frees every pending recording at once, before its upload is
    confirmed."""

    def on_enter_docked(self) -> None:
        super().on_enter_docked()
        self.used = max(0.0, self.used - sum(size for size, _ in self.uploads))
        self.uploads.clear()


class _NewIncidentOnResumeCamera(Camera):
    """R-META broken: the recording that resumes a deactivation gets a new incident id."""

    def on_enter_recording(self) -> None:
        self.paused_incident = None
        super().on_enter_recording()


class _LateSpanToArrivalCamera(Camera):
    """R-LATE broken: the ``late_trigger`` span runs to the trigger's arrival, as if the buffer
    covered nothing."""

    def _emit_alert(self, alert: Alert) -> None:
        if alert.kind == "late_trigger" and alert.span is not None:
            alert = Alert(kind=alert.kind, at=alert.at, activity_id=alert.activity_id,
                          span=(alert.span[0], self._now))
        super()._emit_alert(alert)


class _NeverBootsCamera(Camera):
    """R-MISS broken (SPEC §2, ``boot_s``): the camera never finishes booting; after power-on
    or an undock it reports ``standby`` for good, so every required second looks ``not_ready``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.boot_end = None

    def on_enter_standby(self) -> None:
        self.boot_end = None


def _node(camera_type: type[Camera], setup: CameraSetup) -> CameraNode:
    node = ReferenceNode(setup)
    node.camera = camera_type(setup.camera_id, setup.policy, setup.params, setup.initial)
    return node


def zero_buffer(setup: CameraSetup) -> CameraNode:
    """Prepends no buffer at all (R-BUF)."""
    return _node(_ZeroBufferCamera, setup)


def half_buffer(setup: CameraSetup) -> CameraNode:
    """Prepends half the buffer (R-BUF)."""
    return _node(_HalfBufferCamera, setup)


def no_refcount(setup: CameraSetup) -> CameraNode:
    """Ends the recording at the first ``activity_end`` of nested activities (R-NOSPLIT)."""
    return _node(_NoRefCountCamera, setup)


def stop_honoured(setup: CameraSetup) -> CameraNode:
    """Obeys a manual stop during a required activity (R-STOP)."""
    return _node(_StopHonouredCamera, setup)


def dock_drops(setup: CameraSetup) -> CameraNode:
    """Loses the open recording at a dock (R-DOCK)."""
    return _node(_DockDropsCamera, setup)


def silent_miss(setup: CameraSetup) -> CameraNode:
    """Never publishes ``missed_required_recording`` (R-MISS)."""
    return _node(_SilentMissCamera, setup)


def signal_stops(setup: CameraSetup) -> CameraNode:
    """Stops a running recording on a device signal (R-SIG)."""
    return _node(_SignalStopsCamera, setup)


def _misread_tails(
    setup: CameraSetup, tail_of: Callable[[float | None, float], float | None]
) -> CameraSetup:
    """``setup`` with its policy as a loader with a mistake in its ``post_s`` reading builds it."""
    misread = copy.copy(setup.policy)
    spec = setup.policy.source
    misread.post_s = {
        name: float(tail_of(rule.post_s, spec.post_s) or 0.0)
        for name, rule in spec.activities.items()
    }
    return msgspec.structs.replace(setup, policy=misread)


def explicit_zero_tail(setup: CameraSetup) -> CameraNode:
    """Its policy loader reads ``post_s`` with ``or``: an explicit ``post_s: 0`` on an activity
    becomes the policy's default, so the camera keeps recording after the activity (R-TRIG)."""
    return ReferenceNode(_misread_tails(setup, lambda own, default: own or default))


def default_tail_only(setup: CameraSetup) -> CameraNode:
    """Its policy loader ignores an activity's own ``post_s`` and uses the policy's default
    for every activity, so a longer tail of one activity is cut short (R-TRIG)."""
    return ReferenceNode(_misread_tails(setup, lambda own, default: default))


def full_buffer(setup: CameraSetup) -> CameraNode:
    """Claims the whole pre-event buffer even when it ran for less (P-NOPHANTOM)."""
    return _node(_FullBufferCamera, setup)


def docked_buffer(setup: CameraSetup) -> CameraNode:
    """Buffers while docked and booting (P-NOPHANTOM)."""
    return _node(_DockedBufferCamera, setup)


def prohibited_records(setup: CameraSetup) -> CameraNode:
    """Records a prohibited (First Amendment) activity (P-PRIVACY)."""
    return _node(_ProhibitedRecordsCamera, setup)


def signal_splits(setup: CameraSetup) -> CameraNode:
    """Splits a running recording on a device signal (P-PRIVACY)."""
    return _node(_SignalSplitsCamera, setup)


def duplicate_splits(setup: CameraSetup) -> CameraNode:
    """Splits a running recording on a redelivered message (P-PRIVACY)."""
    return _node(_DuplicateSplitsCamera, setup)


def stop_acked(setup: CameraSetup) -> CameraNode:
    """Acks a manual stop during a required activity it does not obey (R-STOP, P-REPLY)."""
    return _node(_StopAckedCamera, setup)


def silent_null_nack(setup: CameraSetup) -> CameraNode:
    """Sends no NACK for a payload without a readable id (R-BAD, P-REPLY)."""
    return _node(_SilentNullNackCamera, setup)


def unknown_end_acked(setup: CameraSetup) -> CameraNode:
    """Acks an ``activity_end`` for an activity that never started (R-IDEM, P-REPLY)."""
    return _node(_UnknownEndAckedCamera, setup)


def flat_drain(setup: CameraSetup) -> CameraNode:
    """Drains the battery at 1/s while recording (R-POWER, P-RESOURCE)."""
    return _node(_FlatDrainCamera, setup)


def low_battery_once(setup: CameraSetup) -> CameraNode:
    """Never re-arms ``low_battery`` after charging (R-POWER, P-RESOURCE)."""
    return _node(_LowBatteryOnceCamera, setup)


def freed_at_dock(setup: CameraSetup) -> CameraNode:
    """Frees storage at the dock, before any upload is confirmed (R-STORE, P-RESOURCE)."""
    return _node(_FreedAtDockCamera, setup)


def new_incident_on_resume(setup: CameraSetup) -> CameraNode:
    """Gives a resumed recording a new incident id (R-META, P-EVIDENCE)."""
    return _node(_NewIncidentOnResumeCamera, setup)


def late_span_to_arrival(setup: CameraSetup) -> CameraNode:
    """Publishes a ``late_trigger`` span that ignores the buffer (R-LATE, P-EVIDENCE)."""
    return _node(_LateSpanToArrivalCamera, setup)


def never_boots(setup: CameraSetup) -> CameraNode:
    """Never finishes booting: standby (not_ready) for good after power-on or an undock (R-MISS)."""
    return _node(_NeverBootsCamera, setup)


#: Every broken factory, by name, with the requirement it breaks.
BROKEN: dict[str, tuple[str, object]] = {
    "zero_buffer": ("R-BUF", zero_buffer),
    "half_buffer": ("R-BUF", half_buffer),
    "no_refcount": ("R-NOSPLIT", no_refcount),
    "stop_honoured": ("R-STOP", stop_honoured),
    "dock_drops": ("R-DOCK", dock_drops),
    "silent_miss": ("R-MISS", silent_miss),
    "signal_stops": ("R-SIG", signal_stops),
    "explicit_zero_tail": ("R-TRIG", explicit_zero_tail),
    "default_tail_only": ("R-TRIG", default_tail_only),
    "full_buffer": ("R-BUF", full_buffer),
    "docked_buffer": ("R-DOCK", docked_buffer),
    "prohibited_records": ("R-SIG", prohibited_records),
    "signal_splits": ("R-SIG", signal_splits),
    "duplicate_splits": ("R-NOSPLIT", duplicate_splits),
    "stop_acked": ("R-STOP", stop_acked),
    "silent_null_nack": ("R-BAD", silent_null_nack),
    "unknown_end_acked": ("R-IDEM", unknown_end_acked),
    "flat_drain": ("R-POWER", flat_drain),
    "low_battery_once": ("R-POWER", low_battery_once),
    "freed_at_dock": ("R-STORE", freed_at_dock),
    "new_incident_on_resume": ("R-META", new_incident_on_resume),
    "late_span_to_arrival": ("R-LATE", late_span_to_arrival),
    "never_boots": ("R-MISS", never_boots),
}
