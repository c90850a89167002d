"""The oracle: from ground truth, was any required second of footage missed, and why? (SPEC §8)

Theory of operation
===================

Inputs, per camera:

* **Required windows** — ground truth from the scenario: a required activity's true start
  (``at``) to its true end plus ``post_s``, clipped to the scenario end. With each window comes
  what the bus did with its ``activity_start``: when it first reached this camera (``delivered``),
  whether the bus lost it, and what state the camera had *reported* just before it arrived.
* **Footage** — every recording the camera published, uploaded or not, buffer part included.
* **Reported state** — the camera's retained ``state`` publications over time. Docked, off,
  booting and storage-full are physical conditions; the oracle takes the camera's word for
  *when* they held, and holds the camera to everything else.
* **Deactivations** — derived independently from the deliveries: an acknowledged ``deactivate``
  with a reason the policy allows, while a delivered required window is open, pauses until an
  acknowledged ``reactivate``, a new required activity, an accepted signal or ``button start``,
  or the end of the last open window.
* **Alerts** — what the camera published, and when.

The misses are the union of the windows minus the footage. Each uncovered stretch is cut at every
point where some input changes, and each piece gets exactly one cause, the first that applies in
the spec's order: ``docked``, ``battery``, ``not_ready``, ``storage`` (reported state),
``deactivated``, then — only if no covering window was *knowable* — ``bus`` or ``late_trigger``,
and otherwise ``controller``.

A window is *knowable* at second ``t`` when its trigger had arrived by ``t``, or arrived later
while the camera was buffering and the buffer reached back to ``t``
(``t >= d - min(prebuffer_s, d - buffer_since)``, R-BUF). A camera whose buffer arithmetic is
wrong therefore shows ``controller`` seconds, while a trigger that truly came too late shows
``late_trigger`` seconds. When an activity is announced more than once (on the camera's topic
and the team's), ``d`` is the first arrival of any of them. The buffer is written to storage on
activation: buffered seconds within reach that did not fit in the free storage the camera
reported (``t < d - storage_free``) are ``storage`` seconds, not the controller's.

The footage is judged in the other direction too (:mod:`sim.world.footage`): no phantom
footage (P-NOPHANTOM), no prohibited seconds and no recording stopped by a signal or a duplicate
(P-PRIVACY). Any of them fails the verdict on its own.

The verdict is ``pass`` when there are no ``controller`` seconds and every other miss was
announced by the alert SPEC §4a requires: ``late_trigger`` for late seconds, and a
``missed_required_recording`` with the exact ``cause`` within 1 s of the moment the camera could
know (the later of the miss starting and the arrival of the window's trigger) for ``docked``,
``not_ready``, ``battery`` and ``storage``. ``bus`` and ``deactivated`` need none, nor do seconds
whose trigger never arrived. A stretch of one cause that runs through several windows is checked
piece by piece, so a window the camera never heard of does not excuse the seconds of another
window it did hear of.

Live runs (SPEC §15)
--------------------
In simulation every time above is exact and the two inputs below are empty. A run on a real
broker against a real device (:mod:`sim.live.hil`) adds them:

* **Offline spans** — when the device was not online (its Last Will said ``offline``, or it
  never came online). Uncovered seconds in them are ``bus``: the link, not the controller,
  kept the harness from seeing footage, and a ``bus`` second needs no alert.
* **A timing tolerance** ``tolerance_s``. Some times come from the harness's clock (a window's
  edges, when a trigger arrived, a deactivation's bounds — derived from acks the harness
  received) and some from the device's (its footage, its states, its alerts); between the two
  lies the jitter of a real network and two schedulers. So, and only so: a ``controller``
  stretch no longer than the tolerance with an end within the tolerance of a harness-timed
  moment is *excused* as jitter (listed in ``Judgement.excused``, counted under no cause); a
  stretch of another cause that small and that close needs no alert; and an alert counts if
  it falls within the tolerance of its 1 s window. A gap between two of the device's own
  recordings is never near a harness-timed moment by accident of jitter, so it is judged
  exactly, whatever its length.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from controller.messages import Alert
from controller.spans import EPS, subtract, union

from .footage import FootageFacts, FootageJudgement, judge_footage

CAUSES = (
    "docked", "battery", "not_ready", "storage", "deactivated", "bus", "late_trigger", "controller",
)
#: The order of ``missed_s`` keys in reports: total first, then every cause.
REPORT_KEYS = ("total", "controller", "late_trigger", "not_ready", "docked", "battery", "storage",
               "bus", "deactivated")
ALERTED_BY_CAUSE = frozenset({"docked", "not_ready", "battery", "storage"})
_STATE_CAUSE = {"docked": "docked", "off": "battery", "standby": "not_ready"}
ALERT_GRACE_S = 1.0


class Window(msgspec.Struct, frozen=True, gc=False):
    """One required window of one camera, with what the bus did with its trigger.

    Window, StatePoint and Miss are msgspec structs only as records: built by the thousand
    per fleet team, they cost a fraction of a frozen dataclass (which sets each field through
    ``object.__setattr__``), and holding only numbers and strings they need no tracking by
    the cyclic collector (``gc=False``). They compare, hash and read as the dataclasses did.
    """

    activity: str
    activity_id: str
    start: float
    end: float
    delivered: float | None = None  # first delivery of the activity_start to this camera
    lost: bool = False  # the bus dropped it (never delivered)
    prior_state: str | None = None  # camera's reported state just before delivery
    prior_since: float = 0.0  # ... and since when it was in that state
    prior_storage_free: float = math.inf  # ... and the free storage it reported then
    told_end: float | None = None  # when the camera learned the window closed (end + post_s)


class StatePoint(msgspec.Struct, frozen=True, gc=False):
    at: float
    state: str
    storage_free: float


@dataclass(slots=True)
class Observation:
    """Everything the oracle needs about one camera."""

    camera_id: str
    prebuffer_s: float
    windows: list[Window]
    footage: list[tuple[float, float]]
    states: list[StatePoint]
    deactivations: list[tuple[float, float]]
    alerts: list[Alert]
    # Live runs only (see "Live runs" above); empty or zero in simulation.
    offline: list[tuple[float, float]] = field(default_factory=list)
    timed: Sequence[float] = ()  # harness-timed moments besides the windows' own
    tolerance_s: float = 0.0
    # What the footage judgements (P-NOPHANTOM, P-PRIVACY; :mod:`sim.world.footage`) need.
    facts: FootageFacts = field(default_factory=FootageFacts)
    # How long a boot takes (the camera's ``boot_s``): ``standby`` reported for longer after
    # power-on or an undock excuses nothing. ``None``: not judged (a live device boots as its
    # own hardware does, SPEC §15a).
    boot_s: float | None = None


class Miss(msgspec.Struct, frozen=True, gc=False):
    start: float
    end: float
    cause: str
    # For storage seconds lost because an activation's buffer did not fit: the arrival of that
    # trigger, the earliest moment the camera could know (and so announce) the loss.
    knew_at: float | None = None

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(slots=True)
class Judgement:
    camera_id: str
    misses: list[Miss]  # over the union of windows, sorted, adjacent same-cause merged
    per_window: list[list[Miss]]  # aligned with Observation.windows
    missed_s: dict[str, float]
    unannounced: list[str] = field(default_factory=list)  # misses lacking their alert
    excused: list[Miss] = field(default_factory=list)  # controller stretches within the tolerance
    footage: FootageJudgement = field(default_factory=FootageJudgement)  # phantom, prohibited
    # What the camera said, judged (SPEC §8b; filled by sim.world.replies and sim.world.evidence):
    replies: list[str] = field(default_factory=list)  # P-REPLY: acks against the spec
    evidence: list[str] = field(default_factory=list)  # R-META and alerts against the facts
    resources: list[str] = field(default_factory=list)  # P-RESOURCE: battery and storage reports
    # Standby reported past the boot time while a required window was open (why those seconds
    # are not excused as ``not_ready``), one sentence each.
    overdue_boot: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.missed_s["controller"] <= EPS and not self.unannounced and self.footage.ok
                and not self.replies and not self.evidence and not self.resources)


def empty_missed() -> dict[str, float]:
    return dict.fromkeys(REPORT_KEYS, 0.0)


class _StateAt:
    """The reported state in effect at a time (the last report at or before it)."""

    def __init__(self, points: Sequence[StatePoint]) -> None:
        self.points = list(points)
        self.times = [p.at for p in self.points]

    def at(self, t: float) -> StatePoint | None:
        i = bisect.bisect_right(self.times, t) - 1
        return self.points[i] if i >= 0 else None


def _reach(
    w: Window, prebuffer_s: float, overdue: Sequence[tuple[float, float, float]] = ()
) -> float | None:
    """Earliest second the trigger of ``w`` could still have captured, or None if not at all.

    A trigger that arrives while the camera reports ``standby`` past its boot (``overdue``:
    (boot due, end, start) stretches) is held to a booted camera's reach: buffering since the
    boot was due.
    """
    if w.delivered is None:
        return None
    if w.prior_state == "pre_buffer":
        return w.delivered - min(prebuffer_s, max(0.0, w.delivered - w.prior_since))
    if w.prior_state == "standby":
        for due, end, _ in overdue:
            if due < w.delivered <= end + EPS:
                return w.delivered - min(prebuffer_s, w.delivered - due)
    return w.delivered


def _kept(w: Window, reach: float | None) -> float | None:
    """Earliest buffered second that fits in the free storage at activation (R-STORE).

    The buffer is written when the recording starts; when it does not fit, only its most
    recent seconds are kept, and the older ones within reach are lost to ``storage``.
    """
    if reach is None or w.delivered is None or w.prior_state != "pre_buffer":
        return reach
    return max(reach, w.delivered - max(0.0, w.prior_storage_free))


def _standby_stretches(points: Sequence[StatePoint]) -> list[tuple[float, float]]:
    """When the camera reported ``standby``: from the first report of each run of standby
    reports (power-on or an undock: the boot starts there) to the next report of another state."""
    out: list[tuple[float, float]] = []
    current: float | None = None
    for p in sorted(points, key=lambda p: p.at):
        if p.state == "standby":
            if current is None:
                current = p.at
        elif current is not None:
            out.append((current, p.at))
            current = None
    if current is not None:
        out.append((current, math.inf))
    return out


def _overdue(points: Sequence[StatePoint], boot_s: float | None) -> list[tuple[float, float, float]]:
    """Standby reported past the boot: (boot due, last standby second, boot started)."""
    if boot_s is None:
        return []
    return [(a + boot_s, b, a) for a, b in _standby_stretches(points) if b > a + boot_s + EPS]


def judge(obs: Observation) -> Judgement:
    """Attribute every uncovered required second of one camera to exactly one cause."""
    windows = obs.windows
    required = union([(w.start, w.end) for w in windows])
    uncovered = subtract(required, union(obs.footage))
    footage = judge_footage(obs.prebuffer_s, obs.states, obs.facts, obs.tolerance_s)
    if not uncovered:
        # Every required second was recorded (most cameras of a fleet): no miss to attribute,
        # announce, excuse as jitter or hold against an overdue boot, so none of what follows
        # is worked out; the judgement is the one it would reach with no pieces.
        return Judgement(obs.camera_id, misses=[], per_window=[[] for _ in windows],
                         missed_s=empty_missed(), footage=footage)
    states = _StateAt(obs.states)
    deacts = union(obs.deactivations)
    offline = union(obs.offline)
    # A camera still reporting standby once its boot is over (power-on or undock + boot_s) is
    # not excused as not_ready: it is held to what a booted camera does, buffering from then.
    overdue = _overdue(obs.states, obs.boot_s)
    reaches = [_reach(w, obs.prebuffer_s, overdue) for w in windows]
    kepts = [_kept(w, r) for w, r in zip(windows, reaches, strict=True)]

    cuts: set[float] = set()
    for w, r, k in zip(windows, reaches, kepts, strict=True):
        cuts.update((w.start, w.end))
        if w.delivered is not None:
            cuts.add(w.delivered)
        if r is not None:
            cuts.add(r)
        if k is not None:
            cuts.add(k)
    cuts.update(p.at for p in obs.states)
    for a, b in (*deacts, *offline):
        cuts.update((a, b))
    cuts.update(due for due, _, _ in overdue)
    sorted_cuts = sorted(cuts)

    def cause_at(t: float) -> tuple[str, float | None]:
        sp = states.at(t)
        if sp is not None:
            c = _STATE_CAUSE.get(sp.state)
            if c == "not_ready" and any(due <= t < end for due, end, _ in overdue):
                c = None  # the boot is over: standby no longer excuses anything
            if c is not None:
                return c, None
            if sp.state == "pre_buffer" and sp.storage_free <= EPS:
                return "storage", None
        # Within a buffer's reach, but the buffer did not fit in the free storage.
        unfit = [w.delivered for w, r, k in zip(windows, reaches, kepts, strict=True)
                 if w.start <= t < w.end and r is not None and k is not None
                 and r - EPS <= t < k - EPS and w.delivered is not None]
        if unfit:
            return "storage", min(unfit)
        if any(a <= t < b for a, b in deacts):
            return "deactivated", None
        if any(a <= t < b for a, b in offline):
            return "bus", None  # the device was offline: not the controller's seconds
        lost = False
        for w, r in zip(windows, reaches, strict=True):
            if not w.start <= t < w.end:
                continue
            if r is not None and t >= r - EPS:
                return "controller", None
            lost = lost or w.lost
        return ("bus" if lost else "late_trigger"), None

    pieces: list[Miss] = []
    for a, b in uncovered:
        i = bisect.bisect_right(sorted_cuts, a)
        points = [a, *(c for c in sorted_cuts[i:] if c < b), b]
        for lo, hi in itertools.pairwise(points):
            if hi - lo > EPS:
                c, knew = cause_at((lo + hi) / 2)
                last = pieces[-1] if pieces else None
                if (last is not None and last.cause == c and last.knew_at == knew
                        and abs(last.end - lo) <= EPS):
                    pieces[-1] = Miss(last.start, hi, c, knew)
                else:
                    pieces.append(Miss(lo, hi, c, knew))

    jitter = _Jitter(obs, reaches, kepts)
    excused = [m for m in pieces if m.cause == "controller" and jitter.covers(m)]
    pieces = [m for m in pieces if m not in excused]
    missed = empty_missed()
    for m in pieces:
        missed[m.cause] += m.seconds
        missed["total"] += m.seconds
    per_window = [
        _merge_adjacent([Miss(max(m.start, w.start), min(m.end, w.end), m.cause)
                         for m in pieces if m.end > w.start + EPS and m.start < w.end - EPS])
        for w in windows
    ]
    judgement = Judgement(obs.camera_id, pieces, per_window, missed,
                          _unannounced(obs, pieces, jitter), excused, footage)
    for due, end, began in overdue:
        hit = sum(max(0.0, min(m.end, end) - max(m.start, due)) for m in pieces)
        if hit > EPS:
            judgement.overdue_boot.append(
                f"reported standby from {began:.3f} until "
                f"{'the end' if math.isinf(end) else f'{end:.3f}'}, past its boot ({obs.boot_s:g} s, "
                f"due {due:.3f}): {hit:.3f} required second(s) after it are not excused as not_ready"
            )
    return judgement


class _Jitter:
    """Which misses are small enough, and close enough to a harness-timed moment, to be jitter.

    Harness-timed moments: every window's edges, the arrival of its trigger and of its end,
    what is derived from an arrival (how far the buffer reached back from it, how much of it
    fitted in storage; the bounds of deactivations), and ``obs.timed``. With a zero tolerance
    (every simulated run) nothing is jitter.
    """

    def __init__(self, obs: Observation, *derived: Iterable[float | None]) -> None:
        self.tol = obs.tolerance_s
        self.moments: list[float] = []
        if self.tol <= 0:
            return  # nothing is jitter (covers() looks no further): no moments to list
        moments: set[float] = set(obs.timed)
        for xs in derived:
            moments.update(x for x in xs if x is not None)
        for w in obs.windows:
            moments.update(x for x in (w.start, w.end, w.delivered, w.told_end) if x is not None)
        for a, b in obs.deactivations:
            moments.update((a, b))
        self.moments = sorted(moments)

    def _near(self, t: float) -> bool:
        i = bisect.bisect_left(self.moments, t - self.tol - EPS)
        return i < len(self.moments) and self.moments[i] <= t + self.tol + EPS

    def covers(self, m: Miss) -> bool:
        if self.tol <= 0 or m.seconds > self.tol + EPS:
            return False
        return self._near(m.start) or self._near(m.end)


def _merge_adjacent(misses: list[Miss]) -> list[Miss]:
    """Join touching misses of the same cause (as a report shows them)."""
    out: list[Miss] = []
    for m in misses:
        if out and out[-1].cause == m.cause and abs(out[-1].end - m.start) <= EPS:
            out[-1] = Miss(out[-1].start, m.end, m.cause)
        else:
            out.append(m)
    return out


def _unannounced(obs: Observation, pieces: list[Miss], jitter: _Jitter) -> list[str]:
    """Misses that needed an alert (SPEC §4a) and did not get one.

    A miss stretch may run through several windows, each announced by its own trigger, so
    the stretch is checked piece by piece between window boundaries: every piece needs the
    alert due at the moment the camera could first know of it (the later of the stretch
    starting and the first arrival of a trigger of a window covering that piece). A window
    the camera never heard of excuses only the seconds no known window covers.
    """
    problems: list[str] = []
    windows = obs.windows
    tol = obs.tolerance_s
    for m in pieces:
        if m.cause not in ALERTED_BY_CAUSE and m.cause != "late_trigger":
            continue
        if jitter.covers(m):
            continue  # a live run's sliver at a timed edge: within the tolerance, no alert due
        points = sorted({m.start, m.end, *(
            x for w in windows for x in (w.start, w.end) if m.start < x < m.end
        )})
        due: dict[float, tuple[float, float, list[str]]] = {}  # knew_at → (start, end, ids)
        late_ids: list[tuple[float, float, set[str]]] = []
        for lo, hi in itertools.pairwise(points):
            if hi - lo <= EPS:
                continue
            mid = (lo + hi) / 2
            known = [w for w in windows if w.start <= mid < w.end and w.delivered is not None]
            if not known:
                continue  # the camera never learned of these seconds: nothing to announce
            if m.cause == "late_trigger":
                late_ids.append((lo, hi, {w.activity_id for w in known}))
                continue
            first = min(w.delivered for w in known if w.delivered is not None)
            knew_at = max(m.start, first if m.knew_at is None else m.knew_at)
            a, b, ids = due.get(knew_at, (lo, hi, []))
            due[knew_at] = (min(a, lo), max(b, hi), ids + [w.activity_id for w in known])
        for lo, hi, id_set in late_ids:
            if not any(
                a.kind == "late_trigger" and (a.activity_id is None or a.activity_id in id_set)
                for a in obs.alerts
            ):
                problems.append(
                    f"{lo:.3f}-{hi:.3f} late_trigger: no late_trigger alert for "
                    f"{', '.join(sorted(id_set))}"
                )
        for knew_at, (lo, hi, _ids) in sorted(due.items()):
            if not any(
                a.kind == "missed_required_recording" and a.cause == m.cause
                and knew_at - tol - EPS <= a.at <= knew_at + ALERT_GRACE_S + tol + EPS
                for a in obs.alerts
            ):
                problems.append(
                    f"{lo:.3f}-{hi:.3f} {m.cause}: no missed_required_recording alert with "
                    f"cause {m.cause} within {ALERT_GRACE_S + tol:g} s of {knew_at:.3f}"
                )
    return problems
