"""Everything a camera publishes about itself is evidence, and judged (SPEC §8b).

Theory of operation
===================

The oracle (:mod:`sim.world.oracle`) asks whether required seconds were missed. This module asks
whether what the camera *said* is true, from the scenario, the deliveries and the camera's own
state reports — never from the controller's code:

* **Recording metadata** (R-META, R-BUF, R-ROLL): each recording's segment list is contiguous,
  runs from its ``start`` to its ``end``, and rolls over every ``segment_max_s``; its
  ``buffer_s`` is exactly what R-BUF and R-STORE allow at activation (``min(prebuffer_s,
  time since the camera entered pre_buffer, free storage)``); the camera reported ``recording``
  for the whole of it; its reasons are the required windows it knew during the recording and
  the signals and presses accepted then, and nothing else; its incident id is new, except
  that a recording resuming an allowed deactivation carries the incident of the recording the
  deactivation closed.
* **Alerts**: each ``missed_required_recording`` names a required window the camera knew of at
  that moment and the cause its reported state shows; each ``late_trigger`` belongs to a
  trigger that arrived late, with the span R-LATE defines, and each late trigger that leaves an
  unexplained uncovered second gets one; ``low_battery``, ``battery_empty`` and ``storage_full``
  are due exactly where the resource model below puts them (one-to-one, within the alert
  grace); any other kind is judged by the live edge, not here.
* **Self-reports** (P-RESOURCE, SPEC §2 and §4a): the battery starts full and moves at the rate
  of the state the camera reported (-1/s in ``standby`` and ``pre_buffer``, -``record_drain``
  in ``recording``, +``charge_rate`` docked up to ``battery_s``, 0 ``off``); every reported
  ``battery_s`` matches within :data:`RESOURCE_TOL_S`. The free storage is ``storage_s`` minus
  the footage the metadata says was written (the buffer at activation, then one second a
  second) plus the recordings whose whole upload was confirmed: closed recordings upload
  oldest-first (in the order they closed) at ``upload_speed`` while docked, progress kept
  across undocking. A camera that frees storage early, deletes what was not offloaded, or
  claims footage that does not exist reports a value off this model.

Each function returns *problems*: one sentence each, naming the camera, the time and what was
expected. An empty list means everything said was true.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from controller.messages import Alert, RecordingMeta, StateReport
from controller.spans import EPS, subtract, union

from .oracle import Judgement, Window
from .policy_reading import PolicyReading
from .replies import REDELIVERY_WINDOW_S, Observed, Pause, parse
from .scenario import Scenario

__all__ = ["ALERT_GRACE_S", "META_TOL_S", "RESOURCE_TOL_S", "judge_evidence", "judge_resources"]

#: How far a reported battery or free-storage value may lie from the §2 model, in seconds of
#: charge or footage: generous to firmware that integrates in ticks, small beside any slope
#: error over a minute.
RESOURCE_TOL_S = 0.5
#: How far a time the camera publishes (a span edge, a segment boundary, ``buffer_s``) may lie
#: from the one the spec gives.
META_TOL_S = 0.01
#: An alert is due within this long after the moment that requires it (as R-MISS).
ALERT_GRACE_S = 1.0


@dataclass(frozen=True, slots=True)
class Tol:
    """The tolerances in force: the simulated ones, widened on a live run by its timing
    tolerance (R-JITTER) times the fastest rate a value moves at."""

    meta: float
    resource: float
    grace: float
    jitter: float = 0.0  # a live run's timing tolerance: slivers this short need no alert

    @classmethod
    def of(cls, seen: Observed, tolerance_s: float) -> Tol:
        p = seen.spec.params
        fastest = max(1.0, p.record_drain, p.charge_rate, p.upload_speed)
        return cls(META_TOL_S + tolerance_s, RESOURCE_TOL_S + fastest * tolerance_s,
                   ALERT_GRACE_S + tolerance_s, tolerance_s)


_STATE_CAUSE = {"docked": "docked", "off": "battery", "standby": "not_ready"}
_EXPLAINED = frozenset({"docked", "battery", "not_ready", "storage", "deactivated"})
_DRAINING = frozenset({"standby", "pre_buffer", "recording"})
_RESOURCE_KINDS = ("low_battery", "battery_empty", "storage_full")
_JUDGED_ELSEWHERE = frozenset({"restarted", "bus_fault"})


def _final(seen: Observed) -> list[RecordingMeta]:
    return sorted(seen.recordings.values(), key=lambda r: (r.start + r.buffer_s, r.start))


def _activation(rec: RecordingMeta) -> float:
    return rec.start + rec.buffer_s


class _Reports:
    """The camera's state reports (in time order), with the state in effect at any time."""

    __slots__ = ("_times", "points")

    def __init__(self, points: Sequence[tuple[float, StateReport]]) -> None:
        self.points = points
        self._times = [t for t, _ in points]

    def times(self) -> list[float]:
        return self._times

    def at(self, t: float) -> StateReport | None:
        """The last report at or before ``t``."""
        i = bisect.bisect_right(self._times, t + EPS) - 1
        return self.points[i][1] if i >= 0 else None

    def after(self, t: float) -> int:
        """The index of the first report made after ``t``."""
        return bisect.bisect_right(self._times, t)

    def around(self, t: float) -> list[StateReport]:
        """The report in effect just before ``t`` and every report made at ``t``."""
        times = self._times
        lo = bisect.bisect_left(times, t - EPS)
        hi = bisect.bisect_right(times, t + EPS)
        before = [self.points[lo - 1][1]] if lo > 0 else []
        return before + [r for _, r in self.points[lo:hi]]


# ------------------------------------------------------------------------------ recordings


def _meta_problems(sc: Scenario, seen: Observed, windows: Sequence[Window],
                   pauses: Sequence[Pause], tol: Tol, signals: frozenset[str],
                   manual: Sequence[tuple[float, str]] | None) -> list[str]:
    cam = seen.spec.id
    p = seen.spec.params
    reports = _Reports(seen.reports)
    recs = _final(seen)
    problems: list[str] = []
    # Read (unless P-REPLY read it already) only when a recording names a reason no required
    # window accounts for.
    accepted = manual
    required_ids = {w.activity_id for w in windows}
    # The windows the camera knew of: (arrival of the start, known end, id), for every recording.
    known = [(w.delivered, w.told_end if w.told_end is not None else sc.end, w.activity_id)
             for w in windows if w.delivered is not None]
    published_order = {name: i for i, name in enumerate(seen.recordings)}  # first publication order
    near = max(EPS, tol.jitter)
    # In ascending order, as ``recs`` is: the recordings activated near one are found by bisection
    # (in a band twice as wide, then tested exactly) rather than by a look at all of them.
    activations = [_activation(rec) for rec in recs]
    for k, rec in enumerate(recs):
        name = f"{cam}: recording {rec.recording}"
        a = activations[k]
        segs = rec.segment_list
        # Segments: contiguous, start to end, rolling over every segment_max_s (R-ROLL).
        if rec.segments != len(segs) or not segs:
            problems.append(f"{name} says {rec.segments} segment(s) but lists {len(segs)}")
        elif (abs(segs[0][0] - rec.start) > tol.meta or abs(segs[-1][1] - rec.end) > tol.meta
              or any(abs(b0 - a1) > tol.meta for (_, b0), (a1, _) in itertools.pairwise(segs))):
            problems.append(f"{name}: its segments {segs} do not run contiguously from "
                            f"{rec.start:g} to {rec.end:g}")
        elif any(abs((b - a0) - p.segment_max_s) > tol.meta for a0, b in segs[:-1]) or (
                segs[-1][1] - segs[-1][0] > p.segment_max_s + tol.meta):
            problems.append(f"{name}: its segments {segs} do not roll over every "
                            f"segment_max_s = {p.segment_max_s:g} s (R-ROLL)")
        # The buffer prepended (R-BUF, R-STORE).
        mine = published_order[rec.recording]
        nth = sum(1 for j in range(bisect.bisect_left(activations, a - 2 * near),
                                   bisect.bisect_right(activations, a + 2 * near))
                  if j != k and abs(activations[j] - a) <= near
                  and published_order[recs[j].recording] < mine)
        expected = _expected_buffer(reports, a, p.prebuffer_s, nth, near)
        if expected is not None and abs(rec.buffer_s - expected) > tol.meta:
            problems.append(f"{name} activated at {a:g} with buffer_s {rec.buffer_s:g}; R-BUF "
                            f"gives {expected:g}")
        # The camera said it was recording throughout (the reports are in time order).
        for i in range(reports.after(a + tol.meta), len(seen.reports)):
            t, r = seen.reports[i]
            if t >= rec.end - tol.meta:
                break
            if r.state != "recording":
                problems.append(f"{name} runs {a:g}-{rec.end:g} but the camera reported "
                                f"{r.state} at {t:g}")
                break
        # Reasons: what it knew during the recording, and nothing else.
        end = rec.end
        for told, known_end, aid in known:
            # min(end, known_end) - max(a, told), written out: once per recording and window
            overlap = (known_end if known_end < end else end) - (told if told > a else a)
            if overlap > EPS and aid not in rec.reasons:
                problems.append(f"{name} ({a:g}-{rec.end:g}) does not list {aid}, a "
                                f"required window open meanwhile, among its reasons {rec.reasons}")
        for reason in rec.reasons:
            if reason in required_ids:
                continue
            if accepted is None:
                accepted = _accepted_manual(sc, seen, signals)
            for t, what in accepted:  # (a loop, not any() over a generator: one frame per item)
                if what == reason and a - tol.meta <= t <= rec.end + tol.meta:
                    break
            else:
                problems.append(f"{name} ({a:g}-{rec.end:g}) lists reason {reason!r}, which "
                                f"nothing accepted during it supports")
    problems.extend(_incident_problems(cam, recs, pauses, tol))
    return problems


def _expected_buffer(reports: _Reports, a: float, prebuffer_s: float, nth: int,
                     near: float = EPS) -> float | None:
    """R-BUF's buffer at activation ``a`` from the reports before it; None when not judged.

    ``nth`` counts the recordings activated at the same instant before this one (a recording
    can close and another open within one instant): each opening is the next entry into
    ``recording`` among the reports made then.
    """
    # The reports are in time order: those before ``a - near``, then those within ``near`` of
    # it (looked for a second either side, so that rounding cannot hide one).
    points, times = reports.points, reports.times()
    prior = list(points[:bisect.bisect_left(times, a - near)])
    for t, r in points[bisect.bisect_left(times, a - near - 1.0):
                       bisect.bisect_right(times, a + near + 1.0)]:
        if abs(t - a) <= near:
            if r.state == "recording" and prior and prior[-1][1].state != "recording":
                if nth == 0:
                    break  # the report of this activation: what came before it at ``a`` counts
                nth -= 1
            prior.append((t, r))
    if not prior:
        return None
    last = prior[-1][1]
    if last.state == "standby":
        return 0.0  # booted straight into a recording: no buffer ran
    if last.state != "pre_buffer":
        return None
    # When the camera entered pre_buffer: the first report of this run of pre_buffer reports.
    i = len(prior) - 1
    while i > 0 and prior[i - 1][1].state == "pre_buffer":
        i -= 1
    entered = prior[i][0]
    return max(0.0, min(prebuffer_s, a - entered, last.storage_s))


def _accepted_manual(sc: Scenario, seen: Observed, signals: frozenset[str],
                     ) -> list[tuple[float, str]]:
    """(time, reason) of every accepted ``button start`` and listed ``signal``, from the timeline
    entries acked: for a run without recorded deliveries (a live run). With deliveries, P-REPLY
    collects them as it reads each payload (``Reading.manual``)."""
    out: list[tuple[float, str]] = []
    for idx, first in seen.delivered.items():
        entry = sc.timeline[idx]
        if not first.ok:
            continue
        if entry.event == "button" and entry.fields.get("action") == "start":
            out.append((first.at, "button"))
        elif entry.event == "signal" and entry.fields.get("source") in signals:
            out.append((first.at, f"signal:{entry.fields.get('source')}"))
    return out


def _incident_problems(cam: str, recs: Sequence[RecordingMeta], pauses: Sequence[Pause],
                       tol: Tol) -> list[str]:
    problems: list[str] = []
    resumes: dict[str, str] = {}  # recording that resumes → recording the deactivation closed
    may_resume: dict[str, str] = {}  # recording that may carry on → the paused incident
    for pause in pauses:
        if not pause.resumed or pause.end is None:
            continue
        closed = [i for i, r in enumerate(recs) if pause.recording and not r.open
                  and abs(r.end - pause.start) <= tol.meta]
        opened = [i for i, r in enumerate(recs) if abs(_activation(r) - pause.end) <= tol.meta]
        # A pause can end in the instant it began, and the recording that resumes it can close
        # in that instant too (a dock): the resuming one is the first opened after the one the
        # deactivation closed (``recs`` is in activation order, ties in publication order).
        for i in opened:
            earlier = [j for j in closed if j < i]
            if earlier or not closed:
                resumes[recs[i].recording] = recs[earlier[-1]].recording if earlier else ""
                break
        else:
            # None opened then (the camera was docked or booting): the first it opens later
            # may carry the paused incident on, or start a new one.
            later = [i for i, r in enumerate(recs) if _activation(r) > pause.end + tol.meta
                     and (not closed or i > closed[-1])]
            if closed and later:
                may_resume[recs[later[0]].recording] = recs[closed[-1]].incident
    by_id = {r.recording: r for r in recs}
    seen_incidents: set[str] = set()
    for rec in recs:
        if rec.recording in resumes:
            before = by_id.get(resumes[rec.recording])
            if before is not None and rec.incident != before.incident:
                problems.append(
                    f"{cam}: recording {rec.recording} resumes the deactivation that closed "
                    f"{before.recording} but carries incident {rec.incident!r}, not "
                    f"{before.incident!r} (R-META)")
        elif (rec.incident in seen_incidents and tol.jitter <= 0
              and may_resume.get(rec.recording) != rec.incident):
            # (A live run cannot tell a resumption from a coincidence within its tolerance.)
            problems.append(f"{cam}: recording {rec.recording} reuses incident {rec.incident!r} "
                            f"although it resumes no deactivation (R-META)")
        seen_incidents.add(rec.incident)
    return problems


# ------------------------------------------------------------------------------ alerts


def _alert_problems(sc: Scenario, seen: Observed, windows: Sequence[Window],
                    judgement: Judgement, tol: Tol) -> list[str]:
    cam = seen.spec.id
    reports = _Reports(seen.reports)
    problems: list[str] = []
    by_id = {w.activity_id: w for w in windows}
    late_expected: list[tuple[Window, float, float, bool]] = []
    footage = union([seg for rec in seen.recordings.values() for seg in rec.segment_list])
    # Seconds with another cause, and (a live run) those the device was offline for.
    # R-LATE looks at the whole of [ts, arrival), whether or not the activity had truly ended
    # by then (the camera cannot know): states that explain a second count wherever they held.
    unable = _unable_by_cause(seen.reports, sc.end)  # once per camera, not once per alert
    explained = union([*[(m.start, m.end) for m in judgement.misses if m.cause in _EXPLAINED],
                       *seen.offline, *seen.paused, *[(a, b) for a, b, _ in unable]])
    for w in windows:
        if w.delivered is None or w.delivered <= w.start + EPS:
            continue
        before = subtract([(w.start, w.delivered)], footage)
        if not before:
            continue  # recorded from its start (the buffer reached back): nothing to explain
        left = subtract(before, explained)
        if left:
            # A live run's sliver within the tolerance may be alerted or not (R-JITTER).
            needed = left[-1][1] - left[0][0] > tol.jitter
            late_expected.append((w, left[0][0], left[-1][1], needed))
    matched_late: set[int] = set()
    # Read only for a late_trigger alert that no late trigger of this run explains.
    rehandled: list[tuple[float, str]] | None = None
    for alert in seen.alerts:
        where = f"{cam}: alert {alert.kind} at {alert.at:g}"
        if alert.kind == "missed_required_recording":
            named = by_id.get(alert.activity_id or "")
            if (named is None or named.delivered is None
                    or alert.at < named.delivered - tol.meta):
                problems.append(f"{where} names {alert.activity_id!r}, no required window the "
                                f"camera knew of then")
                continue
            causes = set()
            for r in reports.around(alert.at):
                cause = _STATE_CAUSE.get(r.state)
                if cause is None and r.state == "pre_buffer" and r.storage_s <= EPS:
                    cause = "storage"
                if cause is not None:
                    causes.add(cause)
            # A late trigger announces what its window already lost, whatever the cause then:
            # the oracle's misses of the window, and every state that kept the camera from
            # recording since the activity's ``ts`` (it cannot know when the activity truly ended).
            causes.update([m.cause for m in judgement.misses
                           if m.cause in _EXPLAINED and m.start <= alert.at + tol.grace
                           and m.end > named.start + EPS and m.start < named.end - EPS])
            causes.update([cause for a, b, cause in unable
                           if b > named.start + EPS and a <= alert.at + EPS])
            if alert.cause not in causes:
                problems.append(f"{where} says cause {alert.cause!r}; the camera's state then "
                                f"supports {sorted(causes) or 'none'}")
        elif alert.kind == "late_trigger":
            found = None
            for i, (w, _lo, _hi, _needed) in enumerate(late_expected):
                if i in matched_late or alert.activity_id not in (None, w.activity_id):
                    continue
                if w.delivered is not None and (
                        w.delivered - tol.meta <= alert.at <= w.delivered + tol.grace):
                    found = i
                    break
            if found is None:
                if rehandled is None:
                    rehandled = _rehandled_starts(sc, seen)
                if any(alert.activity_id in (None, aid) and at - tol.meta <= alert.at <= at + tol.grace
                       for at, aid in rehandled):
                    continue  # a start redelivered past the window, handled again (§14a)
                problems.append(f"{where} for {alert.activity_id!r}: no trigger then left an "
                                f"unexplained uncovered second before it arrived (R-LATE)")
                continue
            matched_late.add(found)
            w, lo, hi, _needed = late_expected[found]
            span = alert.span
            if span is None or abs(span[0] - lo) > tol.meta or abs(span[1] - hi) > tol.meta:
                problems.append(f"{where} for {w.activity_id}: span {list(span) if span else None}"
                                f", R-LATE gives [{lo:g}, {hi:g}]")
        elif alert.kind in _RESOURCE_KINDS or alert.kind in _JUDGED_ELSEWHERE:
            continue
        else:
            problems.append(f"{where}: no such alert kind")
    for i, (w, lo, hi, needed) in enumerate(late_expected):
        if i not in matched_late and needed:
            arrived = w.delivered if w.delivered is not None else w.start
            problems.append(f"{cam}: {w.activity_id} arrived at {arrived:g}, "
                            f"{arrived - w.start:g} s after it began, leaving {lo:g}-{hi:g} "
                            f"uncovered and unexplained, with no late_trigger alert (R-LATE)")
    return problems


def _rehandled_starts(sc: Scenario, seen: Observed) -> list[tuple[float, str]]:
    """(arrival, activity id) of ``activity_start`` redeliveries past the redelivery window:
    without a trust file the camera may handle them again (SPEC §14a), a late start anew."""
    first: dict[tuple[str, object], float] = {}
    out: list[tuple[float, str]] = []
    for d in seen.deliveries:
        p = parse(d.payload, sc.auth == "signed")
        if p.event is None or p.event["type"] != "activity_start" or p.id is None:
            continue
        key = (type(p.id).__name__, p.id)
        if key not in first:
            first[key] = d.at
        elif d.at - first[key] > REDELIVERY_WINDOW_S:
            out.append((d.at, p.event["activity_id"]))
    return out


def _unable_by_cause(reports: Sequence[tuple[float, StateReport]], end: float,
                     ) -> list[tuple[float, float, str]]:
    """When the reported state kept the camera from recording (docked, off, booting, full),
    with the cause each such stretch announces."""
    out: list[tuple[float, float, str]] = []
    bounds = [t for t, _ in reports[1:]]  # until when each report holds
    bounds.append(end)
    for (t, r), nxt in zip(reports, bounds, strict=True):
        cause = _STATE_CAUSE.get(r.state)
        if cause is None and r.state == "pre_buffer" and r.storage_s <= EPS:
            cause = "storage"
        if cause is not None:
            out.append((t, nxt, cause))
    return out


def judge_evidence(sc: Scenario, seen: Observed, windows: Sequence[Window],
                   judgement: Judgement, pauses: Sequence[Pause], tolerance_s: float,
                   policy: PolicyReading,
                   manual: Sequence[tuple[float, str]] | None = None) -> list[str]:
    """Recording metadata and alerts of one camera against the facts (``[]``: all true).
    ``policy`` is the oracle's reading of ``sc``'s policy (``sim.world.replay.oracle_policy``);
    ``manual``: the accepted presses and signals P-REPLY read (``Reading.manual``); ``None``
    for a run without recorded deliveries, whose acked timeline entries stand in."""
    if not seen.reports:
        return []  # a live run: its device's reports are not kept here (SPEC §8b)
    tol = Tol.of(seen, tolerance_s)
    return (_meta_problems(sc, seen, windows, pauses, tol, policy.signals, manual)
            + _alert_problems(sc, seen, windows, judgement, tol))


# ------------------------------------------------------------------------------ resources


def _written(recs: Sequence[RecordingMeta], t: float) -> float:
    """Footage written by ``t``: ``recs`` in activation order (:func:`_final`)."""
    total = 0.0
    limit = t + EPS
    for r in recs:
        a = r.start + r.buffer_s  # _activation(r), inline: this runs per report per recording
        if a > limit:
            break  # so are all later ones
        # r.buffer_s + max(0.0, min(t, r.end) - a), written out
        end = r.end
        ran = (end if end < t else t) - a
        total += r.buffer_s + ran if ran > 0.0 else r.buffer_s + 0.0
    return total


def _upload_done(recs: Sequence[RecordingMeta], docked: Sequence[tuple[float, float]],
                 speed: float) -> list[tuple[float, float]]:
    """(time, size) of each recording's confirmed upload: oldest-closed first, while docked."""
    queue = sorted([r for r in recs if not r.open], key=lambda r: (r.end, r.start))
    done: list[tuple[float, float]] = []
    i = 0
    progress = 0.0
    for lo, hi in docked:
        t = lo
        while i < len(queue) and t < hi - EPS:
            rec = queue[i]
            if rec.end > t + EPS:
                break  # not closed yet (cannot happen while docked; kept for safety)
            size = rec.end - rec.start
            need = (size - progress) / speed
            if t + need <= hi + EPS:
                t += need
                done.append((t, size))
                progress = 0.0
                i += 1
            else:
                progress += (hi - t) * speed
                t = hi
    return done


def judge_resources(sc: Scenario, seen: Observed, tolerance_s: float = 0.0) -> list[str]:
    """P-RESOURCE for one camera: reported battery and storage, and their alerts, against §2."""
    if not seen.reports:
        return []
    cam = seen.spec.id
    p = seen.spec.params
    tol = Tol.of(seen, tolerance_s)
    points = seen.reports
    n = len(points)
    problems: list[str] = []
    # Battery, from full, at the rate of the state reported.
    full, low, charge_rate, res = p.battery_s, p.low_battery_s, p.charge_rate, tol.resource
    charge = full
    armed = full > low
    due: dict[str, list[float]] = {k: [] for k in _RESOURCE_KINDS}
    t0, state = points[0][0], points[0][1].state
    # Until when each report holds: the next one, or the end of the run.
    bounds = [t for t, _ in points[1:]]
    bounds.append(sc.end)
    off_bad = False
    prev = "docked"  # so that a camera starting with no charge is due to go off at once
    # (max() and min() of two numbers are written out below: this runs once per report.)
    for i, t1 in enumerate(bounds):
        dt = t1 - t0
        if not dt > 0.0:
            dt = 0.0
        if state == "docked":
            charged = charge + charge_rate * dt
            charge = charged if charged < full else full
            if charge > low:
                armed = True
        elif state != "off":
            drain = p.record_drain if state == "recording" else 1.0
            left = charge - drain * dt
            if armed and low > 0 and charge > low >= left:
                due["low_battery"].append(t0 + (charge - low) / drain)
                armed = False
            # Empty: either the charge runs out now, or the camera entered a draining state
            # (an undock) with none left and must go off again at once.
            entered_empty = charge <= EPS and prev not in _DRAINING
            if left <= EPS and (charge > EPS or entered_empty):
                t_zero = t0 + charge / drain
                due["battery_empty"].append(t_zero)
                if t_zero < t1 - res and not off_bad:
                    problems.append(f"{cam}: its battery ran out at {t_zero:g} (model) but it "
                                    f"stayed {state} until {t1:g} (R-POWER)")
                    off_bad = True
            charge = left if left > 0.0 else 0.0
        prev = state
        if i + 1 < n:
            t1, report = points[i + 1]
            if abs(report.battery_s - charge) > res:
                problems.append(f"{cam}: reported battery_s {report.battery_s:g} at {t1:g}; the "
                                f"§2 model gives {charge:g} ({state} since {t0:g})")
                charge = report.battery_s  # one problem per deviation, not a cascade
            t0, state = t1, report.state
    problems.extend(_match(cam, "low_battery", due["low_battery"], seen.alerts, tol))
    problems.extend(_match(cam, "battery_empty", due["battery_empty"], seen.alerts, tol))
    problems.extend(_storage(seen, bounds, due, tol))
    problems.extend(_match(cam, "storage_full", due["storage_full"], seen.alerts, tol))
    return problems


def _storage(seen: Observed, bounds: Sequence[float], due: dict[str, list[float]], tol: Tol,
             ) -> list[str]:
    """R-STORE for one camera (``bounds``: until when each of its reports holds)."""
    cam = seen.spec.id
    p = seen.spec.params
    recs = _final(seen)
    points = seen.reports
    docked: list[tuple[float, float]] = []
    for (t, r), nxt in zip(points, bounds, strict=True):
        if r.state == "docked" and nxt > t:
            docked.append((t, nxt))
    done = _upload_done(recs, union(docked), p.upload_speed)
    # ``done`` is in time order: what is freed by ``t`` is a prefix of it, and the running
    # sums below add the sizes in the same order a sum over that prefix would.
    done_at = [at for at, _ in done]
    freed_by = [0.0, *itertools.accumulate(size for _, size in done)]

    def freed(t: float) -> float:
        return freed_by[bisect.bisect_right(done_at, t + EPS)]

    problems: list[str] = []
    storage_s, res, n = p.storage_s, tol.resource, len(points)
    for i, (t, r) in enumerate(points):
        if i + 1 < n and points[i + 1][0] <= t + EPS:
            continue  # judge the last report of an instant
        held = _written(recs, t)
        # freed(t - res) and freed(t + res), written out: this runs once per report.
        lo = storage_s - held + freed_by[bisect.bisect_right(done_at, t - res + EPS)] - res
        hi = storage_s - held + freed_by[bisect.bisect_right(done_at, t + res + EPS)] + res
        if r.storage_s > hi:
            problems.append(f"{cam}: reported {r.storage_s:g} s free at {t:g}; with {held:g} s "
                            f"written and {freed(t):g} s confirmed uploaded at most {hi:g} can be "
                            f"free (storage freed before its upload was confirmed) (R-STORE)")
            break
        if r.storage_s < lo:
            problems.append(f"{cam}: reported {r.storage_s:g} s free at {t:g}; the footage held "
                            f"({held:g} s written, {freed(t):g} s uploaded) leaves {lo:g} (R-STORE)")
            break
    for rec in recs:
        if rec.open:
            continue
        used = _written(recs, rec.end) - freed(rec.end)
        if used > p.storage_s + tol.resource:
            problems.append(f"{cam}: recording {rec.recording} ran to {rec.end:g}, holding "
                            f"{used:g} s of footage on {p.storage_s:g} s of storage (R-STORE)")
        elif used >= p.storage_s - tol.meta:
            after = _Reports(points).at(rec.end)
            if after is not None and after.state == "pre_buffer":
                due["storage_full"].append(rec.end)
            elif any(a.kind == "storage_full" and abs(a.at - rec.end) <= tol.resource
                     for a in seen.alerts):
                # Storage filled in the very instant something else (a dock, say) ended the
                # recording: timers come before messages at one instant (SPEC §4a), so the
                # alert may come first; it is supported, though not required.
                due["storage_full"].append(rec.end)
    return problems


def _match(cam: str, kind: str, due: Sequence[float], alerts: Sequence[Alert], tol: Tol,
           ) -> list[str]:
    """Alerts of ``kind`` one-to-one with the moments that require them."""
    published = sorted([a.at for a in alerts if a.kind == kind])
    problems: list[str] = []
    used: set[int] = set()
    for t in sorted(due):
        hit = next((j for j, at in enumerate(published)
                    if j not in used and t - tol.meta <= at <= t + tol.grace), None)
        if hit is None:
            problems.append(f"{cam}: no {kind} alert within {tol.grace:g} s of {t:g}, where "
                            f"the §2 model requires one")
        else:
            used.add(hit)
    for j, at in enumerate(published):
        if j not in used:
            problems.append(f"{cam}: {kind} alert at {at:g}, which the §2 model does not support")
    return problems
