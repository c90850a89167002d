"""The SPEC §11 properties as plain functions, shared by every test style.

Each check returns a list of *problems* (sentences naming what went wrong, where and when); an
empty list means the property holds. Generated-scenario tests, the rule-based state machines,
the exhaustive explorer and ``bwcsim fuzz`` all call these same functions, so a property means
the same thing everywhere.

Every property judged on a replay is registered in :data:`REPLAY_PROPERTIES` under its SPEC ID
(with :func:`replay_property`); ``bwcsim fuzz`` and ``bwcsim explore`` judge every registered
property, so a new one is searched for as soon as it is registered (:func:`judge_all`).

* :func:`no_miss` (P-NOMISS) — the oracle's verdict: no ``controller`` second, every excused
  miss announced.
* :func:`no_split` (P-NOSPLIT) — while a delivered required window is open and the camera can
  record, no recording closes; a recording may end inside such a window only at a dock, a
  battery or storage stop, or an accepted, policy-allowed ``deactivate``. Gaps in the footage
  there are the oracle's ``controller`` seconds, reported too.
* :func:`no_phantom` (P-NOPHANTOM) — no footage the camera could not have captured, from what
  it reported (:mod:`sim.world.footage`).
* :func:`privacy` (P-PRIVACY) — no recorded second while a prohibited activity is open that
  nothing justifies, and no recording stopped by a signal or a duplicate.
* :func:`replies_judged` (P-REPLY), :func:`evidence_judged` (P-EVIDENCE) and
  :func:`resources_judged` (P-RESOURCE) — what the camera answered, the recording metadata and
  alerts it published, and the battery and storage it reported, as the oracle judged them
  (:mod:`sim.world.replies`, :mod:`sim.world.evidence`, SPEC §8b).
* :func:`tail_ends` (P-TAIL) — a recording that only required windows held ends by the end of
  the last of them: its end as the camera was told plus the ``post_s`` the policy document
  gives (the oracle's own reading, :mod:`sim.world.policy_reading`).
* :class:`NodeDriver` drives one node directly (no bus), calling its timers at their deadlines as
  the replay harness does; :func:`same_outputs` compares two drivers' publications, which is how
  P-BAD and P-IDEM are stated: garbage, or a message delivered twice, adds exactly one ack and
  nothing else.
* :func:`audit_problems` (P-AUDIT) — a camera's audit chain verifies (up to the head it reports),
  and breaks when any one entry is altered. The log comes from :func:`controller.audit.trail_of`
  (the reference's own, or one read over the node protocol).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from controller.audit import AuditEntry, verify
from controller.codec import split_topic
from controller.node import CameraNode, CameraSetup, ControllerFactory, Publish
from controller.spans import EPS
from sim.world.replay import ReplayResult, oracle_policy
from sim.world.scenario import Scenario

__all__ = [
    "REPLAY_PROPERTIES",
    "Delivery",
    "NodeDriver",
    "audit_problems",
    "camera_setup",
    "deliveries_by_camera",
    "evidence_judged",
    "judge_all",
    "judge_holds",
    "no_miss",
    "no_phantom",
    "no_split",
    "normalise",
    "only_acks",
    "privacy",
    "replay_property",
    "replies_judged",
    "resources_judged",
    "same_outputs",
    "tail_ends",
    "tamper",
]

_CANNOT_RECORD = frozenset({"docked", "off", "standby"})

ReplayCheck = Callable[[ReplayResult], list[str]]

#: Every property judged on a finished replay, by SPEC ID, in registration order. ``bwcsim
#: fuzz`` and ``bwcsim explore`` judge all of them; register a new one with
#: :func:`replay_property` (or by assigning here) and both search for it from then on.
REPLAY_PROPERTIES: dict[str, ReplayCheck] = {}


def replay_property(prop_id: str) -> Callable[[ReplayCheck], ReplayCheck]:
    """Register the decorated function as the replay check of ``prop_id`` (a SPEC ID)."""

    def register(check: ReplayCheck) -> ReplayCheck:
        if prop_id in REPLAY_PROPERTIES and REPLAY_PROPERTIES[prop_id] is not check:
            raise ValueError(f"{prop_id} is already registered")
        REPLAY_PROPERTIES[prop_id] = check
        return check

    return register


def judge_all(result: ReplayResult, props: Iterable[str] | None = None) -> dict[str, list[str]]:
    """The problems of every registered property (or of ``props``) on ``result``, by ID.

    Only properties that found problems appear; an empty dict means all of them hold.
    """
    found: dict[str, list[str]] = {}
    for prop in (REPLAY_PROPERTIES if props is None else props):
        problems = REPLAY_PROPERTIES[prop](result)
        if problems:
            found[prop] = problems
    return found


def judge_holds(report: dict[str, Any], result: ReplayResult) -> dict[str, Any]:
    """Add to ``report`` (a :func:`~sim.views.report.build_report` document) the unmet
    ``expect: holds`` of its scenario: each listed property is judged on ``result`` and every
    problem becomes an ``expect`` failure (``holds.P-TAIL: ...``). Returns ``report``.

    This is how a saved counterexample of any property replays to a failure with ``bwcsim run``
    and ``bwcsim check``: its ``expect`` lists the properties it falsified.
    """
    expect = result.scenario.expect
    if expect is None or not expect.holds:
        return report
    failures: list[str] = []
    for prop in expect.holds:
        check = REPLAY_PROPERTIES.get(prop)
        if check is None:
            failures.append(f"holds.{prop}: not a replay-judged property (known: "
                            f"{', '.join(REPLAY_PROPERTIES)})")
            continue
        failures.extend(f"holds.{prop}: {problem}" for problem in check(result))
    if failures:
        block = report.get("expect") or {"ok": True, "failures": []}
        report["expect"] = {"ok": False, "failures": [*block["failures"], *failures]}
    return report


# ------------------------------------------------------------------------------ P-NOMISS


@replay_property("P-NOMISS")
def no_miss(result: ReplayResult) -> list[str]:
    """P-NOMISS: zero ``controller`` seconds and nothing unannounced, per camera."""
    problems: list[str] = []
    for cam, judgement in result.judgements.items():
        ctrl = judgement.missed_s["controller"]
        if ctrl > EPS:
            spans = ", ".join(
                f"{m.start:g}-{m.end:g}" for m in judgement.misses if m.cause == "controller"
            )
            problems.append(f"{cam}: {ctrl:g} controller second(s) missed ({spans})")
        problems.extend(f"{cam}: unannounced miss {u}" for u in judgement.unannounced)
    return problems


# ------------------------------------------------------------------------------ P-NOPHANTOM


@replay_property("P-NOPHANTOM")
def no_phantom(result: ReplayResult) -> list[str]:
    """P-NOPHANTOM: every recorded second was physically possible, per camera."""
    return [f"{cam}: {p}" for cam, j in result.judgements.items()
            for p in j.footage.phantom_problems()]


# ------------------------------------------------------------------------------ P-PRIVACY


@replay_property("P-PRIVACY")
def privacy(result: ReplayResult) -> list[str]:
    """P-PRIVACY: no prohibited second, no recording stopped by a signal or duplicate."""
    return [f"{cam}: {p}" for cam, j in result.judgements.items()
            for p in j.footage.privacy_problems()]


# ------------------------------------------------------- P-REPLY, P-EVIDENCE, P-RESOURCE


@replay_property("P-REPLY")
def replies_judged(result: ReplayResult) -> list[str]:
    """P-REPLY: one reply per delivery with its id, the first reply again for a redelivery,
    and the refusals and acceptances the spec mandates (SPEC §8b)."""
    return [p for j in result.judgements.values() for p in j.replies]


@replay_property("P-EVIDENCE")
def evidence_judged(result: ReplayResult) -> list[str]:
    """P-EVIDENCE: recording metadata (R-META) and alerts true to the facts (SPEC §8b)."""
    return [p for j in result.judgements.values() for p in j.evidence]


@replay_property("P-RESOURCE")
def resources_judged(result: ReplayResult) -> list[str]:
    """P-RESOURCE: reported battery and storage, and their alerts, follow the §2 model."""
    return [p for j in result.judgements.values() for p in j.resources]


# ------------------------------------------------------------------------------ P-NOSPLIT


@replay_property("P-NOSPLIT")
def no_split(result: ReplayResult) -> list[str]:
    """P-NOSPLIT: no recording closes, and no footage gap opens, inside an open required window.

    The window counts from the first delivery of its trigger (before it the camera could not
    know) to its end. A recording closing at ``t`` is excused when the camera reported at ``t``
    a state in which it cannot record (docked, off, booting, or buffering with no free
    storage), or when an allowed ``deactivate`` was acknowledged at ``t``.
    """
    sc = result.scenario
    reading = oracle_policy(sc)
    problems: list[str] = []
    for cam, run in result.cameras.items():
        # Each window on its own, not their union: a recording may end at the instant one
        # window closes and another opens (the end is handled first) without a gap.
        knowable = [
            (max(w.start, w.delivered), w.end)
            for w in result.windows[cam]
            if w.delivered is not None and w.delivered < w.end
        ]
        if not knowable:
            continue
        deactivated_at = {
            first.at
            for idx, first in run.delivered.items()
            if first.ok and sc.timeline[idx].event == "deactivate"
            and sc.timeline[idx].fields.get("reason") in reading.deactivation_reasons
        }
        for rec in run.recordings.values():
            if rec.open:
                continue
            t = rec.end
            if not any(a < t < b - EPS for a, b in knowable):
                continue
            if any(abs(t - d) <= EPS for d in deactivated_at):
                continue
            reported = [p for p in run.states if p.at <= t + EPS]
            last = reported[-1] if reported else None
            if last is not None and abs(last.at - t) <= EPS and (
                last.state in _CANNOT_RECORD
                or (last.state == "pre_buffer" and last.storage_free <= EPS)
            ):
                continue
            state = last.state if last is not None else "?"
            problems.append(
                f"{cam}: recording {rec.recording} closed at {t:g} inside an open required "
                f"window while the camera could record (state {state})"
            )
        judgement = result.judgements[cam]
        for m in judgement.misses:
            if m.cause == "controller" and any(a < m.end and m.start < b for a, b in knowable):
                problems.append(f"{cam}: footage gap {m.start:g}-{m.end:g} in a required window")
    return problems


# ------------------------------------------------------------------------------ P-TAIL


@replay_property("P-TAIL")
def tail_ends(result: ReplayResult) -> list[str]:
    """P-TAIL: a recording held only by required windows ends when the last of them ends.

    SPEC §4a: the recording ends the moment no reason holds it. A closed recording may not end
    later than the latest end of the required windows the camera had heard of by then — the
    arrival of the ``activity_end`` plus the activity's ``post_s`` as the oracle reads the
    policy document — or than the release of a manual hold that was held during it. A manual
    hold is given by an accepted ``button start`` or ``signal`` from a source the policy lists,
    and released by an accepted ``button stop``, ``deactivate`` or ``dock``, or by the camera
    reporting ``docked``, ``standby`` or ``off``; a recording ending while a hold may still be
    given is not judged. A window whose end never arrived (or was refused) holds until the
    run's end, so its recordings are not judged; nor are recordings cut by the end of the run.
    """
    sc = result.scenario
    reading = oracle_policy(sc)
    problems: list[str] = []
    for cam, run in result.cameras.items():
        # (time, order, gives): accepted messages in arrival order, then state reports.
        marks: list[tuple[float, int, bool]] = []
        for idx, first in run.delivered.items():
            if not first.ok:
                continue
            entry = sc.timeline[idx]
            effect = _hold_effect(entry.event, entry.fields, reading.signals)
            if effect is not None:
                marks.append((first.at, first.seq, effect))
        marks.extend((p.at, 1 << 62, False) for p in run.states if p.state in _CANNOT_RECORD)
        marks.sort()
        windows = [w for w in result.windows[cam] if w.delivered is not None]
        for rec in run.recordings.values():
            if rec.open:
                continue
            held, released = False, -math.inf
            for t, _, gives in marks:
                if t > rec.end + EPS:
                    break
                if gives:
                    held = True
                elif held:
                    held, released = False, t
            if held:
                continue
            known = [w for w in windows if w.delivered is not None and w.delivered <= rec.end + EPS]
            if not known or any(w.told_end is None for w in known):
                continue  # nothing required held it (P-PRIVACY's business), or still holds
            latest = max(w.told_end for w in known if w.told_end is not None)
            allowed = max(latest, released)
            if rec.end > allowed + EPS:
                problems.append(
                    f"{cam}: recording {rec.recording} ran until {rec.end:g}, "
                    f"{rec.end - allowed:g} s after its last required window ended at "
                    f"{latest:g} (end + post_s per the policy document), with no other hold"
                )
    return problems


def _hold_effect(event: str | None, fields: dict[str, object], signals: frozenset[str]) -> bool | None:
    """True if an accepted message of this kind gives a manual hold, False if it releases one."""
    if event == "button":
        return fields.get("action") == "start"
    if event == "signal":
        return True if fields.get("source") in signals else None
    if event in ("deactivate", "dock"):
        return False
    return None


# ------------------------------------------------------------------------------ node driving


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as a camera received it."""

    at: float
    topic: str
    payload: bytes


def deliveries_by_camera(records: Iterable[dict[str, Any]]) -> dict[str, list[Delivery]]:
    """Every delivery of a replay trace, per camera, in order (redeliveries included)."""
    out: dict[str, list[Delivery]] = {}
    for rec in records:
        if rec.get("kind") != "deliver":
            continue
        text = str(rec["payload"])
        payload = bytes.fromhex(text[4:]) if text.startswith("hex:") else text.encode("utf-8")
        out.setdefault(str(rec["camera"]), []).append(
            Delivery(float(rec["t"]), str(rec["topic"]), payload)
        )
    return out


def camera_setup(scenario: Scenario, camera_id: str) -> CameraSetup:
    """The :class:`CameraSetup` the replay harness gives ``camera_id`` of ``scenario``."""
    from sim.world.senders import trust_file

    spec = scenario.camera(camera_id)
    return CameraSetup(
        camera_id=spec.id, policy=scenario.policy, params=spec.params, teams=spec.teams,
        initial=spec.initial, prefix=scenario.prefix, trust=trust_file(scenario),
    )


@dataclass(eq=False)
class NodeDriver:
    """One node driven directly in virtual time: timers at their deadlines, then messages.

    ``outputs`` holds every publication with the time it was made and the call that made it
    (``start``, ``timer``, ``message``, ``finish``).
    """

    node: CameraNode
    now: float = 0.0
    outputs: list[tuple[float, str, Publish]] = field(default_factory=list)

    @classmethod
    def build(cls, factory: ControllerFactory, setup: CameraSetup, now: float = 0.0) -> NodeDriver:
        driver = cls(factory(setup), now)
        driver._record("start", driver.node.start(now))
        return driver

    def _record(self, call: str, pubs: list[Publish]) -> list[Publish]:
        self.outputs.extend((self.now, call, p) for p in pubs)
        return pubs

    def advance(self, t: float) -> None:
        """Run every timer due up to ``t`` (at its own deadline), then stand at ``t``."""
        while True:
            due = self.node.next_deadline()
            if due is None or due > t:
                break
            self.now = max(due, self.now)
            self._record("timer", self.node.on_timer(self.now))
        self.now = max(self.now, t)

    def deliver(self, topic: str, payload: bytes, at: float | None = None) -> list[Publish]:
        """Deliver one message at ``at`` (default: now); returns what the node published."""
        if at is not None:
            self.advance(at)
        return self._record("message", self.node.on_message(topic, payload, self.now))

    def finish(self, t: float) -> None:
        self.advance(t)
        self._record("finish", self.node.finish(self.now))

    def last_state(self) -> dict[str, Any] | None:
        """The last retained state report, decoded (``None`` before the first one)."""
        for _, _, pub in reversed(self.outputs):
            if pub.topic.endswith("/state"):
                decoded: dict[str, Any] = msgspec.json.decode(pub.payload)
                return decoded
        return None


def normalise(pub: Publish, digits: int = 6) -> tuple[str, Any, bool]:
    """A publication as comparable data: JSON decoded, floats rounded to ``digits`` places.

    Rounding absorbs float noise from lazily advanced battery arithmetic (advancing 0→a→b and
    0→b may differ in the last bit); nothing the properties look at is that fine.
    """
    try:
        value: Any = msgspec.json.decode(pub.payload)
    except msgspec.DecodeError:
        return pub.topic, pub.payload, pub.retain

    def fix(v: Any) -> Any:
        if isinstance(v, float):
            return round(v, digits)
        if isinstance(v, list):
            return [fix(x) for x in v]
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        return v

    return pub.topic, fix(value), pub.retain


def same_outputs(
    expected: Sequence[tuple[float, str, Publish]], got: Sequence[tuple[float, str, Publish]]
) -> list[str]:
    """Differences between two publication streams (time, topic, payload, retain)."""
    problems: list[str] = []
    for i, (a, b) in enumerate(zip(expected, got, strict=False)):
        na, nb = normalise(a[2]), normalise(b[2])
        if na != nb or abs(a[0] - b[0]) > EPS:
            problems.append(f"publication {i}: expected {na} at {a[0]:g}, got {nb} at {b[0]:g}")
            break
    if len(expected) != len(got):
        problems.append(f"expected {len(expected)} publications, got {len(got)}")
    return problems


def only_acks(pubs: Sequence[Publish], prefix: str = "bwc") -> list[str]:
    """Problems if ``pubs`` holds anything but acknowledgements."""
    problems = []
    for pub in pubs:
        where = split_topic(pub.topic, prefix)
        if where is None or where[1] != "ack":
            problems.append(f"published {pub.topic} {pub.payload[:120]!r}; only an ack is allowed")
    return problems


# ------------------------------------------------------------------------------ P-AUDIT


def tamper(entry: AuditEntry, field_name: str) -> AuditEntry:
    """``entry`` with one field altered (``seq``, ``at``, ``kind``, ``data``, ``prev``, ``hash``)."""
    changes: dict[str, Callable[[Any], Any]] = {
        "seq": lambda v: v + 1,
        "at": lambda v: v + 0.5,
        "kind": lambda v: v + "!",
        "data": lambda v: {**v, "tampered": True},
        "prev": lambda v: ("0" if v[:1] != "0" else "1") + v[1:],
        "hash": lambda v: ("0" if v[:1] != "0" else "1") + v[1:],
    }
    return msgspec.structs.replace(
        entry, **{field_name: changes[field_name](getattr(entry, field_name))}
    )


def audit_problems(
    camera_id: str, entries: Sequence[AuditEntry], index: int | None = None,
    field_name: str = "data", head: str | None = None,
) -> list[str]:
    """P-AUDIT: the chain verifies (and ends at ``head``, when given); with entry ``index``
    altered in ``field_name``, it breaks."""
    problems: list[str] = []
    broken = verify(camera_id, entries, head=head)
    if broken is not None:
        problems.append(f"{camera_id}: audit chain broken at entry {broken} without tampering")
    if index is not None and entries:
        i = index % len(entries)
        altered = list(entries)
        altered[i] = tamper(altered[i], field_name)
        found = verify(camera_id, altered)
        if found is None:
            problems.append(f"{camera_id}: altering entry {i} ({field_name}) went unnoticed")
        elif found > i:
            problems.append(f"{camera_id}: entry {i} altered but the chain broke only at {found}")
    return problems
