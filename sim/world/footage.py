"""The oracle's judgement of the footage itself: could it exist, and was it allowed? (SPEC §8a)

:mod:`sim.world.oracle` asks whether a required second was *missed*; a camera that shows more
footage than it could have, or records what the policy forbids, misses nothing. This module
judges the other direction, for one camera at a time, from the same observations:

P-NOPHANTOM — footage that cannot exist
---------------------------------------
Every recorded second must be physically possible from what the camera itself reported (its
retained ``state`` publications, timed by when they were published):

* ``buffer`` — the buffered part of a recording (``buffer_s`` before its activation
  ``start + buffer_s``) is no longer than ``prebuffer_s`` nor than the time since the camera
  last *reported* entering ``pre_buffer`` before that activation. Seconds older than that reach
  are phantom. A camera that never reported ``pre_buffer`` before an activation buffered nothing.
* ``docked`` / ``off`` / ``standby`` — no footage lies inside a stretch the camera reported in
  one of those states (it captures nothing there).
* ``overlap`` — one camera's footage never covers the same second twice (segments of one
  recording, or two recordings).
* ``gap`` — a recording's segments are contiguous: the first starts at the recording's
  ``start``, each next one where the previous ended, the last ends at its ``end``. A gap is
  listed (and fails the verdict) but counts no seconds: it is footage missing, not invented.

``phantom_s`` is the length of the union of the phantom stretches (gaps excluded).

P-PRIVACY — recording the policy forbids
----------------------------------------
A *prohibited* activity is open, for a camera, from its true start (``at`` of its
``activity_start``) to its true end (``at`` of its ``activity_end``, else the end of the run);
``post_s`` does not extend it. A recorded second in it is *justified* when:

* a required window covers it — the ground-truth window, or the window as the camera knew it
  (the first arrival of its ``activity_start`` to the arrival of its acknowledged
  ``activity_end`` plus ``post_s``, or the end of the run);
* or a manual hold covers it — an accepted ``button start`` or ``signal`` from a listed source
  holds the recording it started or joined, from its acceptance to that recording's end;
* or it is in the buffered part of a recording whose activation was justified (R-BUF prepends
  the buffer whatever it shows).

``prohibited_s`` counts the other seconds. Required beats prohibited: a required activity and a
prohibited one open together are recorded, as the policy's required list says.

Signals and duplicates never stop or split a recording (R-SIG, R-NOSPLIT): a recording that
closes at the instant a ``signal``, a redelivery, or a repeated ``activity_start`` of a running
activity arrived — with nothing else arriving then, no required window ending then, and no
state reported then in which the camera cannot record — was stopped by it. Each is a problem
of P-PRIVACY.

A live run's tolerance (see the oracle) widens every comparison above by ``tolerance_s``.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from controller.messages import RecordingMeta
from controller.policy import Policy
from controller.spans import EPS, Span, subtract, union

# What this module reads of the oracle's and the harness's types, as protocols: the oracle
# calls this module, so importing those modules here would be a cycle.


class StatePoint(Protocol):
    """A reported state (:class:`sim.world.oracle.StatePoint`)."""

    @property
    def at(self) -> float: ...
    @property
    def state(self) -> str: ...
    @property
    def storage_free(self) -> float: ...


class _Window(Protocol):
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def delivered(self) -> float | None: ...
    @property
    def told_end(self) -> float | None: ...


class _Entry(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def at(self) -> float: ...
    @property
    def event(self) -> str | None: ...
    @property
    def fields(self) -> dict[str, object]: ...


_E = TypeVar("_E", bound=_Entry)
_E_contra = TypeVar("_E_contra", bound=_Entry, contravariant=True)


class _Targets(Protocol[_E_contra]):
    def targets(self, entry: _E_contra, /) -> tuple[str, ...]: ...


class _Scenario(_Targets[_E], Protocol[_E]):
    @property
    def timeline(self) -> Sequence[_E]: ...
    @property
    def end(self) -> float: ...
    @property
    def policy(self) -> Policy: ...


class _Delivery(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> float: ...
    @property
    def ok(self) -> bool | None: ...


_D = TypeVar("_D", bound=_Delivery)


class _Spec(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def initial(self) -> str: ...


class _Seen(Protocol):
    @property
    def spec(self) -> _Spec: ...
    @property
    def refusable(self) -> Mapping[int, str]: ...
    @property
    def delivered(self) -> Mapping[int, _Delivery]: ...
    @property
    def arrivals(self) -> Sequence[tuple[float, int | None]]: ...
    @property
    def recordings(self) -> Mapping[str, RecordingMeta]: ...

#: Kinds of phantom footage, in report order.
PHANTOM_KINDS = ("buffer", "docked", "off", "standby", "overlap", "gap")
_NO_CAPTURE = frozenset({"docked", "off", "standby"})


@dataclass(frozen=True, slots=True)
class ProhibitedActivity:
    """A prohibited activity's ground truth for one camera."""

    activity_id: str
    activity: str
    start: float
    end: float


@dataclass(slots=True)
class FootageFacts:
    """What the footage judgements need besides the oracle's own observation.

    Times are when the camera received a message (the first arrival, unless said otherwise).
    """

    recordings: Sequence[RecordingMeta] = ()
    prohibited: Sequence[ProhibitedActivity] = ()
    # Required windows as the camera knew them and as they truly were (both justify; listed
    # by facts_of only when there is a prohibited activity, the only place they justify).
    required: Sequence[tuple[float, float]] = ()
    # Acceptances of a manual hold (``button start``, a listed ``signal``).
    holds: Sequence[float] = ()
    # Arrivals that must not stop a recording (signal, redelivery, duplicate start): (at, what).
    nudges: Sequence[tuple[float, str]] = ()
    # Other accepted arrivals, and moments a known required window ended: a close there is
    # explained by something other than a nudge.
    explained: Sequence[float] = ()
    # The state the camera starts the run in (the scenario's ``initial``).
    initial: str | None = None


@dataclass(frozen=True, slots=True)
class Phantom:
    """A stretch of footage that cannot exist."""

    start: float
    end: float
    kind: str
    recording: str
    detail: str

    @property
    def seconds(self) -> float:
        return 0.0 if self.kind == "gap" else max(0.0, self.end - self.start)


@dataclass(frozen=True, slots=True)
class ProhibitedSpan:
    """Seconds recorded while a prohibited activity was open, with nothing to justify them."""

    start: float
    end: float
    recording: str
    activity_ids: tuple[str, ...]

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(slots=True)
class FootageJudgement:
    phantom: list[Phantom] = field(default_factory=list)
    phantom_s: float = 0.0
    prohibited: list[ProhibitedSpan] = field(default_factory=list)
    prohibited_s: float = 0.0
    stopped: list[str] = field(default_factory=list)  # recordings a signal/duplicate stopped
    activities: list[ProhibitedActivity] = field(default_factory=list)  # what was prohibited

    @property
    def ok(self) -> bool:
        return not self.phantom and self.prohibited_s <= EPS and not self.stopped

    def phantom_problems(self) -> list[str]:
        return [
            f"phantom footage {p.start:g}-{p.end:g} ({p.kind}) in {p.recording}: {p.detail}"
            for p in self.phantom
        ]

    def privacy_problems(self) -> list[str]:
        out = [
            f"{s.seconds:g} prohibited second(s) {s.start:g}-{s.end:g} in {s.recording} "
            f"while {', '.join(s.activity_ids)} was open and nothing justified recording"
            for s in self.prohibited
        ]
        return out + list(self.stopped)


def intersect(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """The seconds in both ``a`` and ``b`` (each a union of spans)."""
    a = union(a)
    return subtract(a, subtract(a, union(b)))


def _intervals(
    states: Sequence[StatePoint], initial: str | None = None
) -> list[tuple[str, float, float]]:
    """Reported states as (state, from, to): consecutive reports of one state merged.

    The camera starts the run in the scenario's ``initial`` state: when its first report comes
    after time 0 (a live device whose report predates the run), that state holds until then.
    """
    out: list[tuple[str, float, float]] = []
    ordered = sorted(states, key=_AT)
    if initial is not None and (not ordered or ordered[0].at > 0.0):
        out.append((initial, 0.0, _INF))
    for p in ordered:
        if out and out[-1][0] == p.state:
            continue
        if out:
            out[-1] = (out[-1][0], out[-1][1], p.at)
        out.append((p.state, p.at, _INF))
    return out


_AT = operator.attrgetter("at")
_INF = float("inf")  # a constant, not a float("inf") call (a string parsed) per state change
_CLEAR = 1000 * EPS  # far beyond the slack of union/subtract, far below a reported second


def judge_footage(
    prebuffer_s: float, states: Sequence[StatePoint], facts: FootageFacts, tolerance_s: float = 0.0
) -> FootageJudgement:
    """Judge one camera's footage (see the module docs)."""
    tol = tolerance_s + EPS
    intervals = _intervals(states, facts.initial)
    phantom: list[Phantom] = []
    recordings = sorted(facts.recordings, key=lambda r: (r.start, r.recording))
    # Each recording's footage, worked out once for the states and the overlaps below.
    footage = [union(rec.segment_list) for rec in recordings]
    no_capture = [iv for iv in intervals if iv[0] in _NO_CAPTURE]
    for rec, captured in zip(recordings, footage, strict=True):
        phantom += _segments(rec, tol)
        phantom += _buffer(rec, prebuffer_s, intervals, tol)
        if not no_capture or not captured:
            continue
        first, last = captured[0][0], captured[-1][1]
        for state, a, b in no_capture:
            # An interval that ends by the recording's start or begins at its end, clear of it
            # or only touching it (a dock as the recording closes), yields nothing: subtract()
            # takes nothing from spans that end by the interval's start or begin at its end.
            # So it is not intersected at all.
            if b <= first or a >= last:
                continue
            for lo, hi in intersect(captured, [(a, b)]):
                if hi - lo > tol:
                    phantom.append(Phantom(lo, hi, state, rec.recording,
                                           f"captured while the camera reported {state}"))
    phantom += _overlaps(recordings, footage, tol)
    phantom.sort(key=lambda p: (p.start, p.end, p.kind, p.recording))
    counted = union((p.start, p.end) for p in phantom if p.kind != "gap" and p.end > p.start)
    prohibited = _prohibited(recordings, facts, tol)
    return FootageJudgement(
        phantom=phantom,
        phantom_s=sum(b - a for a, b in counted),
        prohibited=prohibited,
        prohibited_s=sum(s.seconds for s in prohibited),
        stopped=_stopped(recordings, states, facts, tol),
        activities=list(facts.prohibited),
    )


def _segments(rec: RecordingMeta, tol: float) -> list[Phantom]:
    segs = list(rec.segment_list)
    if not segs:
        return [Phantom(rec.start, rec.end, "gap", rec.recording, "a recording with no segment")]
    out: list[Phantom] = []
    if abs(segs[0][0] - rec.start) > tol:
        lo, hi = sorted((rec.start, segs[0][0]))
        kind = "gap" if segs[0][0] > rec.start else "overlap"
        out.append(Phantom(lo, hi, kind, rec.recording,
                           f"first segment starts at {segs[0][0]:g}, the recording at {rec.start:g}"))
    for (a0, b0), (a1, b1) in itertools.pairwise(segs):
        if b0 - a0 < -tol or b1 - a1 < -tol:
            continue
        if a1 > b0 + tol:
            out.append(Phantom(b0, a1, "gap", rec.recording,
                               f"segments not contiguous: one ends at {b0:g}, the next starts at {a1:g}"))
        elif a1 < b0 - tol:
            out.append(Phantom(a1, min(b0, b1), "overlap", rec.recording,
                               f"segments overlap: one ends at {b0:g}, the next starts at {a1:g}"))
    if abs(segs[-1][1] - rec.end) > tol:
        lo, hi = sorted((rec.end, segs[-1][1]))
        kind = "overlap" if segs[-1][1] > rec.end else "gap"
        out.append(Phantom(lo, hi, kind, rec.recording,
                           f"last segment ends at {segs[-1][1]:g}, the recording at {rec.end:g}"))
    return out


def _buffer(
    rec: RecordingMeta, prebuffer_s: float, intervals: list[tuple[str, float, float]], tol: float
) -> list[Phantom]:
    if rec.buffer_s <= tol:
        return []
    t_act = rec.start + rec.buffer_s
    entries = [a for state, a, b in intervals
               if state == "pre_buffer" and a <= t_act + tol and b >= t_act - tol]
    if not entries:
        return [Phantom(rec.start, t_act, "buffer", rec.recording,
                        f"{rec.buffer_s:g} s buffered, but the camera had not reported pre_buffer "
                        f"before its activation at {t_act:g}")]
    # When a recording opens and closes at one instant, the camera re-enters pre_buffer at
    # that instant too: the stretch that led up to the activation is the earlier one.
    since = min(entries)
    allowed = max(0.0, min(prebuffer_s, t_act - since))
    if rec.buffer_s <= allowed + tol:
        return []
    return [Phantom(rec.start, t_act - allowed, "buffer", rec.recording,
                    f"{rec.buffer_s:g} s buffered at {t_act:g}; at most {allowed:g} s possible "
                    f"(prebuffer_s {prebuffer_s:g}, pre_buffer reported since {since:g})")]


def _overlaps(
    recordings: Sequence[RecordingMeta], footage: Sequence[list[Span]], tol: float
) -> list[Phantom]:
    """Footage recorded twice (``footage``: each recording's segments as a union)."""
    out: list[Phantom] = []
    spans = sorted(zip(footage, [r.recording for r in recordings], strict=True))
    for i, (mine, rid) in enumerate(spans):
        if not mine:
            continue  # no footage: nothing in common with any
        last = mine[-1][1]
        for other, oid in spans[i + 1:]:
            # ``spans`` is sorted by first start (empty ones first): once another recording
            # starts clear of this one's end, so do all after it.
            if other[0][0] > last + _CLEAR:
                break
            for lo, hi in intersect(mine, other):
                if hi - lo > tol:
                    out.append(Phantom(lo, hi, "overlap", oid,
                                       f"recorded twice: also in {rid}"))
    return out


def _justified(rec: RecordingMeta, facts: FootageFacts, tol: float) -> list[tuple[float, float]]:
    """The stretches of ``rec`` that some reason justifies (``tol``: a live run's jitter
    between the harness's clock, which times the reasons, and the camera's)."""
    t_act = rec.start + rec.buffer_s
    why = list(facts.required)
    # A hold accepted a jitter before the activation it caused holds from the activation.
    why += [(max(h, t_act), rec.end) for h in facts.holds if t_act - tol <= h <= rec.end + tol]
    why_u = union(why)
    if any(a - tol <= t_act < b + tol for a, b in why_u) or any(abs(h - t_act) <= tol
                                                                 for h in facts.holds):
        why_u = union([*why_u, (rec.start, t_act)])
    return why_u


def _prohibited(
    recordings: Sequence[RecordingMeta], facts: FootageFacts, tol: float
) -> list[ProhibitedSpan]:
    if not facts.prohibited:
        return []
    out: list[ProhibitedSpan] = []
    forbidden = union((p.start, p.end) for p in facts.prohibited if p.end > p.start)
    for rec in recordings:
        exposed = intersect(subtract(union(rec.segment_list), _justified(rec, facts, tol)), forbidden)
        for lo, hi in exposed:
            if hi - lo <= tol:  # a live run's jitter at a harness-timed edge
                continue
            ids = tuple(sorted({p.activity_id for p in facts.prohibited
                                if p.start < hi and lo < p.end}))
            out.append(ProhibitedSpan(lo, hi, rec.recording, ids))
    out.sort(key=lambda s: (s.start, s.recording))
    return out


def _stopped(
    recordings: Sequence[RecordingMeta], states: Sequence[StatePoint],
    facts: FootageFacts, tol: float,
) -> list[str]:
    out: list[str] = []
    for rec in recordings:
        if rec.open:
            continue
        t = rec.end
        nudges = [what for at, what in facts.nudges if abs(at - t) <= tol]
        if not nudges:
            continue
        if any(abs(x - t) <= tol for x in facts.explained):
            continue
        if any(abs(p.at - t) <= tol and (p.state in _NO_CAPTURE or (
                p.state == "pre_buffer" and p.storage_free <= EPS)) for p in states):
            continue
        out.append(f"recording {rec.recording} stopped at {t:g} by {', '.join(sorted(set(nudges)))}")
    return out


def arrival_order(delivered: Mapping[int, _D]) -> Iterable[tuple[int, _D]]:
    """The first deliveries of entries, by ``seq`` (their order of arrival at the camera)."""
    # A replay records them as they arrive, so they are nearly always in that order already:
    # then no key is computed per entry (sorted() by a key keeps an ordered input as it is).
    seqs = [first.seq for first in delivered.values()]
    if seqs == sorted(seqs):
        return delivered.items()
    return sorted(delivered.items(), key=lambda kv: kv[1].seq)


def facts_of(
    sc: _Scenario[_E], seen: _Seen, windows: Sequence[_Window], activities: Sequence[_E] | None = None
) -> FootageFacts:
    """The :class:`FootageFacts` of one camera of a run, from the scenario and what was seen.

    ``activities``: the activity starts and ends addressed to the camera in timeline order
    (``(at, index)``), when the caller computed them for every camera at once. Only those under
    an id some prohibited activity starts with are read for anything (no other opens one), so
    the caller may leave the rest out.
    """
    cam = seen.spec.id
    policy = sc.policy
    prohibited: list[ProhibitedActivity] = []
    open_: dict[str, tuple[str, float]] = {}
    if activities is None:
        activities = [e for e in sorted(sc.timeline, key=lambda e: (e.at, e.index))
                      if e.event in ("activity_start", "activity_end") and cam in sc.targets(e)]
    for e in activities:
        if e.index in seen.refusable:
            continue
        aid = str(e.fields.get("activity_id"))
        if e.event == "activity_start":
            activity = str(e.fields.get("activity"))
            if aid not in open_ and policy.kind(activity) == "prohibited":
                open_[aid] = (activity, e.at)
        elif aid in open_:
            activity, start = open_.pop(aid)
            prohibited.append(ProhibitedActivity(aid, activity, start, min(e.at, sc.end)))
    prohibited += [ProhibitedActivity(aid, act, start, sc.end) for aid, (act, start) in open_.items()]

    required: list[tuple[float, float]] = []
    explained: list[float] = []
    for w in windows:
        explained.append(w.end)
        if w.delivered is not None and w.told_end is not None:
            explained.append(w.told_end)
        if not prohibited:
            continue  # the windows justify seconds only in a prohibited activity (_prohibited)
        required.append((w.start, w.end))
        if w.delivered is not None:
            end = w.told_end if w.told_end is not None else sc.end
            required.append((w.delivered, max(end, w.delivered)))

    holds: list[float] = []
    nudges: list[tuple[float, str]] = []
    running: set[str] = set()
    timeline, refusable = sc.timeline, seen.refusable
    for idx, first in arrival_order(seen.delivered):
        e = timeline[idx]
        event, f = e.event, e.fields
        accepted = first.ok is True and idx not in refusable
        if event == "signal":
            nudges.append((first.at, f"signal:{f.get('source')}"))
            if accepted and f.get("source") in policy.signals:
                holds.append(first.at)
            continue
        if event == "activity_start":
            aid = str(f.get("activity_id"))
            if aid in running:
                nudges.append((first.at, f"duplicate activity_start {aid}"))
                continue
            if accepted:
                running.add(aid)
        elif event == "activity_end" and accepted:
            running.discard(str(f.get("activity_id")))
        elif event == "button" and f.get("action") == "start" and accepted:
            holds.append(first.at)
        if accepted:
            explained.append(first.at)
    # Every first delivery of an entry is among the arrivals, so there are more arrivals
    # than first deliveries exactly when some are not: an entry again, or not a timeline
    # message. Only then are they looked through for redeliveries.
    if len(seen.arrivals) > len(seen.delivered):
        seen_idx: set[int] = set()
        for at, entry in seen.arrivals:
            if entry is None:
                continue
            if entry in seen_idx:
                nudges.append((at, f"redelivery of timeline[{entry}]"))
            seen_idx.add(entry)
    return FootageFacts(
        recordings=list(seen.recordings.values()),
        prohibited=sorted(prohibited, key=lambda p: (p.start, p.activity_id)),
        required=union(required),
        holds=sorted(holds),
        nudges=sorted(nudges),
        explained=sorted(explained),
        initial=seen.spec.initial,
    )
