"""Hypothesis strategies that generate whole scenarios (SPEC §11).

Theory of operation
-------------------
Every strategy here produces a **format-v1 scenario as a plain dict** — exactly what a scenario
file holds — so any example can be written out with :func:`scenario_yaml` and replayed by
``bwcsim run``. :func:`load_scenario_dict` validates such a dict with the same loader as
:func:`sim.world.scenario.parse_scenario`, minus the YAML text step (which dominates the cost of a
small scenario and would halve the search rate).

A scenario is drawn as a list of abstract *steps* (``hypothesis`` shrinks lists by deleting
elements, which is what turns a 50-entry counterexample into a 3-entry one), then *resolved*
in order into timeline entries. Resolution keeps a little ground truth so that the result is a
meaningful script rather than noise:

* every ``activity_start`` gets a fresh ``activity_id`` (``a-1``, ``a-2``, ...). Reusing an id
  for a second, later activity is not something the field does and makes "which activity did
  that late ``activity_end`` close" unanswerable for any controller;
* an ``activity_end`` ends one of the activities still open for the same target (a step's
  ``pick`` chooses which, so shrinking can move between nested and overlapping shapes), and only
  one whose start was sent before now; with nothing open it names an unknown id, which the
  controller must refuse (R-IDEM);
* ``delay_s`` (a late message) is drawn for every event, ``activity_end`` included: a late end
  lets the camera believe an activity still runs after it truly ended, and the oracle judges
  what the camera did by what it was told (deactivations included);
* a ``duplicate`` step re-sends an earlier event byte for byte (same ``id``, same ``ts``), later:
  a QoS 1 redelivery as the camera sees it. Both copies get an explicit ``id`` so the pair
  survives shrinking;
* ``raw`` steps send malformed payloads (never a valid event) on the camera's event topic, and
  anything on topics no camera subscribes to; their ids (``r-N``) never collide with real ones.

**Policies.** Half the examples run the built-in ``dhs-2023``; the other half carry a policy drawn
by :func:`policies` *inline* (the scenario's ``policy:`` is the document itself, so the saved
counterexample replays it with nothing else to ship): required, prohibited and discretionary
activities, each with no ``post_s``, an explicit ``post_s: 0`` or a non-zero one, over a zero or
non-zero top-level default; any subset of the device sources as signals (none included); one
to three deactivation reasons; sometimes camera overrides.

**Pressure.** Cameras sometimes get a small battery with a heavy recording drain and a slow
charge, a small card with a slow upload, or short segments (rollovers within minutes); a few
gaps are half an hour or an hour long, so a shift runs up to twelve hours with its rollovers.

Times are whole seconds on a coarse grid, so a 50-step example replays in a few milliseconds.
Step kinds are weighted towards the events that matter for recording control (activities, dock,
presses, deactivations), so that a broken controller is found within a couple of hundred examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import strategies as st

from controller.policy import DEVICE_SOURCES, Policy, load_policy, parse_policy
from controller.yamlsrc import SourceDoc
from sim.world.scenario import Scenario, parse_scenario, scenario_from_data

__all__ = [
    "MALFORMED_PAYLOADS",
    "STEP_KINDS",
    "Step",
    "bus_settings",
    "camera_entries",
    "load_scenario_dict",
    "policies",
    "resolve_steps",
    "scenario_yaml",
    "scenarios",
    "steps",
]

POLICY = "dhs-2023"
TEAM = "team-a"
MAX_END_S = 12 * 3600
#: A ``duplicate`` step redelivers only messages first sent less than this long ago (well
#: inside the controller's hour-long duplicate window, R-BOUND).
REDELIVERY_WITHIN_S = 3000
UNKNOWN_REASON = "coffee_break"  # not in any shipped policy: must be refused
ACTORS = ("officer-1", "sergeant-2")

#: Payloads that are never a valid event: each must be NACKed without effect (R-BAD).
MALFORMED_PAYLOADS: tuple[str, ...] = (
    "not json at all",
    "",
    "[]",
    "null",
    '"just a string"',
    "{",
    '{"type": "activity_start"}',
    '{"id": "r-{n}"}',
    '{"id": "r-{n}", "type": "activity_start"}',
    '{"id": "r-{n}", "type": "activity_start", "activity": "karaoke", "activity_id": "k-{n}"}',
    '{"id": "r-{n}", "type": "warp_drive"}',
    '{"id": "r-{n}", "type": "button", "action": "sideways"}',
    '{"id": true, "type": "dock"}',
    '{"id": "r-{n}", "type": "activity_start", "activity": 7, "activity_id": "k-{n}"}',
    '{"id": "r-{n}", "type": "signal"}',
    '{"id": "r-{n}", "type": "deactivate", "reason": "medical_facility_privacy"}',
)

#: Step kinds and their relative weights (how often the generator picks each).
STEP_KINDS: dict[str, int] = {
    "start_required": 12,
    "end": 9,
    "start_other": 2,  # prohibited (or discretionary, when the policy has one)
    "dock": 2,
    "undock": 2,
    "press_start": 2,
    "press_stop": 4,
    "signal": 3,
    "deactivate": 3,
    "reactivate": 2,
    "duplicate": 2,
    "raw": 1,
    "tick": 2,
    "disconnect": 1,
    "outage": 1,
}
_WEIGHTED_KINDS: tuple[str, ...] = tuple(k for k, w in STEP_KINDS.items() for _ in range(w))
_GAPS = (0, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 300, 600,
         0, 1, 5, 10, 20, 30, 60, 120, 300, 1800, 3600)


@dataclass(frozen=True, slots=True)
class Step:
    """One abstract step; :func:`resolve_steps` turns a list of them into timeline entries.

    ``gap`` is seconds after the previous step; ``who`` picks the target (a camera, or the team
    when it is ``>=`` the number of cameras); ``pick`` selects among the options of the kind
    (which activity, source, reason, earlier message, payload...); ``delay`` is the message's
    ``delay_s`` (a late trigger) and ``flag`` flips the kind's variant (allowed/refused reason,
    listed/unlisted signal, extra ids).
    """

    kind: str
    gap: int
    who: int
    pick: int
    delay: int
    flag: bool


def steps(max_steps: int = 50) -> st.SearchStrategy[list[Step]]:
    """Lists of up to ``max_steps`` abstract steps."""
    step = st.builds(
        Step,
        kind=st.sampled_from(_WEIGHTED_KINDS),
        gap=st.sampled_from(_GAPS),
        who=st.integers(0, 3),
        pick=st.integers(0, 7),
        delay=st.one_of(st.just(0), st.just(0), st.sampled_from((1, 5, 20, 45, 90, 200))),
        flag=st.booleans(),
    )
    # Hypothesis draws lists of about five elements on average; a list of short bursts gives
    # scenarios of about twenty-five steps while shrinking can still drop single steps.
    bursts = st.lists(st.lists(step, max_size=10), max_size=max(1, max_steps // 5))
    return bursts.map(lambda groups: [s for group in groups for s in group][:max_steps])


@st.composite
def camera_entries(draw: st.DrawFn, max_cameras: int = 3) -> list[dict[str, Any]]:
    """Camera entries: ids ``cam-1``..., some in team ``team-a``, varied parameters.

    Small batteries and storage appear sometimes so that depletion and a full card happen
    within the scenario; ``prebuffer_s`` covers its whole allowed range 0 to 120.
    """
    # One camera half the time: most rules are about one camera's holds, and a second camera
    # dilutes the events each one sees.
    count = draw(st.one_of(st.just(1), st.integers(1, max_cameras)))
    cameras: list[dict[str, Any]] = []
    for i in range(count):
        cam: dict[str, Any] = {"id": f"cam-{i + 1}"}
        if (count > 1 or draw(st.booleans())) and (i == 0 or draw(st.booleans())):
            cam["team"] = TEAM
        initial = draw(st.sampled_from(("pre_buffer", "pre_buffer", "pre_buffer", "docked",
                                        "standby")))
        if initial != "pre_buffer":
            cam["initial"] = initial
        prebuffer = draw(st.one_of(
            st.none(), st.sampled_from((0, 5, 30, 60, 120)), st.integers(0, 120)
        ))
        if prebuffer is not None:
            cam["prebuffer_s"] = prebuffer
        if draw(st.integers(0, 4)) == 4:
            # Sometimes small enough to run low, charge and run low again within a scenario
            # (low_battery re-armed by charging, R-POWER).
            cam["battery_s"] = draw(st.one_of(st.integers(300, 4000), st.integers(120, 900)))
            cam["low_battery_s"] = draw(st.integers(0, 250))
            if draw(st.booleans()):  # battery under pressure: heavy drain, slow charge
                cam["record_drain"] = draw(st.sampled_from((2.0, 4.0, 8.0)))
                cam["charge_rate"] = draw(st.sampled_from((0.5, 2.0, 10.0)))
        if draw(st.integers(0, 4)) == 4:
            cam["storage_s"] = draw(st.integers(60, 3000))
            if draw(st.booleans()):  # storage under pressure: uploads slower than recording
                cam["upload_speed"] = draw(st.sampled_from((0.5, 2.0, 20.0)))
        if draw(st.integers(0, 4)) == 4:
            cam["boot_s"] = draw(st.integers(0, 60))
        if draw(st.integers(0, 5)) == 5:
            cam["segment_max_s"] = draw(st.integers(60, 1800))
        cameras.append(cam)
    return cameras


#: Activity names a generated policy draws from, by kind.
GENERATED_ACTIVITIES: dict[str, tuple[str, ...]] = {
    "required": ("patrol", "arrest_warrant", "traffic_stop", "k9_search"),
    "prohibited": ("first_amendment_activity", "protest_observation"),
    "discretionary": ("community_meeting", "school_visit"),
}
GENERATED_REASONS = (
    "medical_facility_privacy", "victim_or_witness_request", "supervisor_order", "tactical_briefing",
)
_TAILS = (None, None, 0, 0, 0, 5, 30, 120)  # None: no post_s key (the default applies)
_DEFAULT_TAILS = (None, 0, 10, 60, 60)


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    """Policy documents (the shape of a policy file, SPEC §3) that reach the policy's corners.

    One to four required activities, up to two prohibited and up to two discretionary ones; each
    activity's ``post_s`` is absent, an explicit 0 or non-zero, over a top-level default that is
    absent, 0 or non-zero (so "explicit 0 over a non-zero default" comes up often); signals are
    any subset of the device sources; one to three deactivation reasons; camera overrides now
    and then. Roles are left to their defaults.
    """
    doc: dict[str, Any] = {"name": "generated"}
    activities: dict[str, dict[str, Any]] = {}
    for kind, low, high in (("required", 1, 4), ("prohibited", 0, 2), ("discretionary", 0, 2)):
        names = GENERATED_ACTIVITIES[kind]
        for name in names[:draw(st.integers(low, min(high, len(names))))]:
            rule: dict[str, Any] = {"kind": kind}
            tail = draw(st.sampled_from(_TAILS))
            if tail is not None:
                rule["post_s"] = tail
            activities[name] = rule
    doc["activities"] = activities
    default = draw(st.sampled_from(_DEFAULT_TAILS))
    if default is not None:
        doc["post_s"] = default
    doc["signals"] = [s for s in DEVICE_SOURCES if draw(st.booleans())]
    reasons = draw(st.lists(st.sampled_from(GENERATED_REASONS), min_size=1, max_size=3,
                            unique=True))
    doc["deactivation_reasons"] = sorted(reasons)
    if draw(st.integers(0, 3)) == 3:
        doc["camera"] = draw(st.fixed_dictionaries({}, optional={
            "prebuffer_s": st.sampled_from((0, 10, 60, 120)),
            "segment_max_s": st.sampled_from((120, 600)),
            "record_drain": st.sampled_from((2.0, 4.0)),
        }))
    return doc


def bus_settings() -> st.SearchStrategy[dict[str, Any] | None]:
    """``None`` (a perfect bus) or a bus block with latency, jitter, drops and duplicates."""
    block = st.fixed_dictionaries(
        {"latency_s": st.sampled_from((0, 0.05, 0.5, 2))},
        optional={
            "jitter_s": st.sampled_from((0.1, 1, 3)),
            "latency": st.sampled_from(("uniform", "exponential")),
            "duplicate": st.sampled_from((0.1, 0.3, 1.0)),
            "drop": st.sampled_from((0.1, 0.5)),
        },
    )
    return st.one_of(st.none(), block)


@st.composite
def scenarios(
    draw: st.DrawFn,
    *,
    max_steps: int = 50,
    max_cameras: int = 3,
    faults: bool = True,
    raw: bool = True,
    bus: bool = True,
    policy: str | None = None,
) -> dict[str, Any]:
    """Whole format-v1 scenarios as dicts (see the module docstring).

    ``faults`` allows client disconnects and broker outages, ``raw`` malformed messages, ``bus``
    latency/jitter/duplicate settings. ``policy`` is a built-in policy name, or ``None`` (the
    default) for ``dhs-2023`` or a generated inline policy, half the time each.
    """
    chosen: str | dict[str, Any] = (
        policy if policy is not None else draw(st.one_of(st.just(POLICY), policies()))
    )
    cameras = draw(camera_entries(max_cameras))
    bus_block = draw(bus_settings()) if bus else None
    drawn = draw(steps(max_steps))
    allowed = [s for s in drawn if (faults or s.kind not in ("disconnect", "outage"))
               and (raw or s.kind != "raw")]
    seed = draw(st.integers(0, 2**16))
    return resolve_steps(allowed, cameras, bus=bus_block, seed=seed, policy=chosen)


# ------------------------------------------------------------------------------ resolution


_policies: dict[str, Policy] = {}


def _policy(ref: str | dict[str, Any]) -> Policy:
    if isinstance(ref, dict):  # a generated document: what the scenario loader will accept
        return parse_policy(SourceDoc(ref, {}, "<generated policy>"))
    if ref not in _policies:
        _policies[ref] = load_policy(ref)
    return _policies[ref]


class _Resolver:
    """Turns steps into timeline entries, keeping the little ground truth they need."""

    def __init__(self, cameras: Sequence[dict[str, Any]], policy: Policy) -> None:
        self.cameras = [c["id"] for c in cameras]
        self.has_team = any("team" in c for c in cameras)
        self.policy = policy
        self.required = sorted(a for a, k in policy.activities.items() if k == "required")
        self.other = sorted(a for a, k in policy.activities.items() if k != "required")
        self.listed = sorted(policy.signals)
        self.unlisted = [s for s in DEVICE_SOURCES if s not in policy.signals]
        self.reasons = sorted(policy.deactivation_reasons)
        self.timeline: list[dict[str, Any]] = []
        # Open activities: (activity id, target, when its start was sent).
        self.open: list[tuple[str, tuple[str, str], int]] = []
        self.events: list[int] = []  # indexes of event entries (for duplicates)
        self.activities = 0
        self.raws = 0
        self.ids = 0
        self.now = 0

    def target(self, who: int) -> tuple[str, str]:
        if self.has_team and who >= len(self.cameras):
            return ("team", TEAM)
        return ("camera", self.cameras[who % len(self.cameras)])

    def add_event(self, step: Step, event: str, **fields: Any) -> None:
        kind, name = self.target(step.who)
        self.add_event_to((kind, name), step, event, **fields)

    def add_event_to(
        self, target: tuple[str, str], step: Step, event: str, delayed: bool = True, **fields: Any
    ) -> None:
        entry: dict[str, Any] = {"at": self.now, target[0]: target[1], "event": event, **fields}
        if step.delay and delayed:
            entry["delay_s"] = step.delay
        self.events.append(len(self.timeline))
        self.timeline.append(entry)

    def step(self, step: Step) -> None:
        kind = step.kind
        if kind == "tick":
            return
        if kind in ("start_required", "start_other"):
            names = self.required if kind == "start_required" else self.other
            if not names:
                return
            self.activities += 1
            aid = f"a-{self.activities}"
            target = self.target(step.who)
            self.open.append((aid, target, self.now + step.delay))
            activity = names[step.pick % len(names)]
            self.add_event_to(target, step, "activity_start", activity=activity, activity_id=aid)
        elif kind == "end":
            # Only an activity whose start was sent before now can end now: a zero-length
            # activity, or an end overtaking its own late start, is a race no camera can judge
            # (it would hear of the activity after it ended, or never at all).
            ready = [i for i, (_, _, sent) in enumerate(self.open) if sent < self.now]
            if ready:
                aid, target, _ = self.open.pop(ready[step.pick % len(ready)])
                self.add_event_to(target, step, "activity_end", activity_id=aid)
            elif not self.open:
                self.add_event(step, "activity_end", activity_id=f"x-{step.pick}")
        elif kind in ("dock", "undock", "reactivate"):
            self.add_event(step, kind)
        elif kind in ("press_start", "press_stop"):
            self.add_event(step, "button", action=kind.removeprefix("press_"))
        elif kind == "signal":
            sources = self.unlisted if (step.flag or not self.listed) and self.unlisted else self.listed
            self.add_event(step, "signal", source=sources[step.pick % len(sources)])
        elif kind == "deactivate":
            reason = UNKNOWN_REASON if step.flag else self.reasons[step.pick % len(self.reasons)]
            self.add_event(step, "deactivate", reason=reason, actor=ACTORS[step.pick % 2])
        elif kind == "duplicate":
            self.duplicate(step)
        elif kind == "raw":
            self.raw(step)
        elif kind == "disconnect":
            camera = self.cameras[step.who % len(self.cameras)]
            self.timeline.append(
                {"at": self.now, "camera": camera, "fault": "disconnect", "for_s": 1 + step.delay}
            )
        elif kind == "outage":
            self.timeline.append({"at": self.now, "fault": "broker_outage", "for_s": 1 + step.delay})
        else:  # pragma: no cover - STEP_KINDS and this method list the same kinds
            raise ValueError(f"unknown step kind {kind!r}")

    def duplicate(self, step: Step) -> None:
        # A redelivery comes within the camera's duplicate window (R-BOUND, an hour); one
        # arriving later is a new message to the camera, which the oracle does not model.
        recent = [i for i in self.events if self.now + step.delay - self.timeline[i]["at"]
                  - self.timeline[i].get("delay_s", 0) < REDELIVERY_WITHIN_S]
        if not recent:
            return
        index = recent[step.pick % len(recent)]
        original = self.timeline[index]
        if "id" not in original:
            self.ids += 1
            original["id"] = f"d-{self.ids}"
        copy = dict(original)
        # Same bytes (same at → same ts), published now: a redelivery, not a new event.
        copy["delay_s"] = max(original.get("delay_s", 0), self.now - original["at"]) + step.delay
        self.timeline.append(copy)

    def raw(self, step: Step) -> None:
        self.raws += 1
        camera = self.cameras[step.who % len(self.cameras)]
        payload = MALFORMED_PAYLOADS[(step.pick * 2 + step.flag) % len(MALFORMED_PAYLOADS)]
        payload = payload.replace("{n}", str(self.raws))
        if step.who == 3:
            # A topic no camera subscribes to: it must reach nobody and change nothing.
            topic = f"bwc/{camera}/state" if step.flag else f"bwc/team/nobody-{self.raws}/event"
            entry: dict[str, Any] = {"at": self.now, "camera": camera,
                                     "raw": {"topic": topic, "payload": payload}}
        elif step.flag and step.pick % 4 == 0:
            junk = bytes([0xFF, 0xFE, step.pick, 0x00, 0x7B])  # not UTF-8
            entry = {"at": self.now, "camera": camera,
                     "raw": {"topic": f"bwc/{camera}/event", "payload_hex": junk.hex()}}
        else:
            entry = {"at": self.now, "camera": camera,
                     "raw": {"topic": f"bwc/{camera}/event", "payload": payload}}
        self.timeline.append(entry)


def resolve_steps(
    drawn: Sequence[Step],
    cameras: Sequence[dict[str, Any]],
    *,
    bus: dict[str, Any] | None = None,
    seed: int = 0,
    policy: str | dict[str, Any] = POLICY,
    name: str = "generated scenario",
) -> dict[str, Any]:
    """The scenario dict for ``drawn`` steps on ``cameras`` (see the module docstring).

    ``policy`` is a built-in name or a policy document, which the scenario then carries inline.
    """
    resolver = _Resolver(cameras, _policy(policy))
    for step in drawn:
        resolver.now = min(resolver.now + step.gap, MAX_END_S - 600)
        resolver.step(step)
    last = max((e["at"] + e.get("delay_s", 0) for e in resolver.timeline), default=0)
    data: dict[str, Any] = {
        "version": 1,
        "name": name,
        "policy": policy,
        "seed": seed,
        "end": min(MAX_END_S, last + 300),
        "cameras": [dict(c) for c in cameras],
    }
    if bus:
        data["bus"] = dict(bus)
    data["timeline"] = resolver.timeline
    return data


# ------------------------------------------------------------------------------ loading, writing


def load_scenario_dict(data: dict[str, Any], file: str = "<generated>") -> Scenario:
    """Validate a scenario dict exactly as :func:`~sim.world.scenario.parse_scenario` validates a file.

    The dict skips the YAML text step only; every rule of the loader applies. Errors name the
    field but no line (there is no text yet). Policy paths resolve against the current folder.
    """
    return scenario_from_data(data, file)


class _Dumper(yaml.SafeDumper):
    """Block style at the top, one flow-style line per camera and timeline entry."""


def _represent_dict(dumper: yaml.SafeDumper, value: dict[str, Any]) -> yaml.Node:
    flow = not any(isinstance(v, list) for v in value.values()) and "version" not in value
    return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=flow)


_Dumper.add_representer(dict, _represent_dict)


def scenario_yaml(data: dict[str, Any]) -> str:
    """The scenario dict as YAML text, readable and loadable by ``bwcsim run``."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=False)


def parse_scenario_text(text: str, file: str = "<generated>.yaml") -> Scenario:
    """:func:`~sim.world.scenario.parse_scenario` with a default file name (for round-trip checks)."""
    return parse_scenario(text, file)
