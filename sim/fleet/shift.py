"""A fleet's plan and each team's generated shift (see :mod:`sim.fleet` for the theory)."""


from __future__ import annotations

import functools
import math
import operator
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.node import DEFAULT_FACTORY
from controller.params import CameraParams
from controller.policy import BUILTIN, Policy, load_policy
from sim.world.scenario import BusSpec, CameraSpec, Scenario, TimelineEntry

# ------------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class ShiftProfile:
    """How busy a generated shift is. Rates are per hour on duty; probabilities per shift."""

    emergency_per_hour: float = 0.8  # per team
    emergency_individual_p: float = 0.35  # an emergency call goes to one or two officers only
    signals_per_hour: float = 0.35  # per camera
    presses_per_hour: float = 0.2  # per camera (button start, later a stop)
    stray_stop_per_hour: float = 0.1  # per camera: a button stop, often refused (R-STOP)
    warrants_max: int = 2  # per team: 0..warrants_max, weighted to the low end
    deactivate_p: float = 0.3  # per warrant: one officer deactivates with an allowed reason
    bad_reason_p: float = 0.1  # per warrant: one officer tries a reason the policy refuses
    prohibited_p: float = 0.15  # per team: a First Amendment activity is attended
    break_p: float = 0.75  # per team: mid-shift break with the cameras docked
    late_p: float = 0.04  # per activity start: the trigger is sent late (delay_s)
    disconnect_p: float = 0.03  # per camera: its client is cut off once
    outage_p: float = 0.01  # per team: the broker goes down once
    latency_s: float = 0.02
    jitter_s: float = 0.08
    duplicate: float = 0.002


#: The fleet's default shift: realistic numbers for a patrol unit.
DEFAULT_PROFILE = ShiftProfile()

#: A very busy shift (about 1,000 deliveries for one camera over 12 hours), for benchmarks.
DENSE_PROFILE = ShiftProfile(
    emergency_per_hour=20.0, emergency_individual_p=0.5, signals_per_hour=12.0,
    presses_per_hour=6.0, stray_stop_per_hour=6.0, warrants_max=4, deactivate_p=0.6,
    bad_reason_p=0.3, prohibited_p=1.0, late_p=0.05, disconnect_p=0.5, outage_p=0.2,
)


@dataclass(frozen=True, slots=True)
class TeamPlan:
    """One unit of work: a team's cameras and everything needed to generate its shift."""

    team: str
    cameras: tuple[str, ...]
    hours: float
    seed: int
    policy: str = "dhs-2023"
    profile: ShiftProfile = DEFAULT_PROFILE
    #: The controller spec (``--controller``), resolved by name in whichever process runs the
    #: team: a factory object need not pickle, and an ``exec:`` child must be the worker's own.
    controller: str = DEFAULT_FACTORY


def plan_fleet(
    cameras: int,
    hours: float,
    seed: int = 0,
    policy: str = "dhs-2023",
    profile: ShiftProfile = DEFAULT_PROFILE,
    controller: str = DEFAULT_FACTORY,
) -> list[TeamPlan]:
    """Split ``cameras`` cameras into teams of 2 to 6 (one camera alone only if ``cameras == 1``).

    Camera ids are ``cam-00001``, ``cam-00002``... in team order; team ids ``team-0001``...
    """
    if cameras < 1:
        raise ValueError("cameras must be at least 1")
    if not (hours > 0 and math.isfinite(hours)):
        raise ValueError("hours must be a positive number")
    rng = random.Random(f"{seed}:teams")
    sizes: list[int] = []
    left = cameras
    while left > 0:
        size = min(rng.randint(2, 6), left)
        if left - size == 1:  # never leave a lone camera at the end
            size += 1 if size < 6 else -1
        sizes.append(size)
        left -= size
    width = max(5, len(str(cameras)))
    team_width = max(4, len(str(len(sizes))))
    plans: list[TeamPlan] = []
    n = 0
    for i, size in enumerate(sizes, 1):
        ids = tuple(f"cam-{n + k + 1:0{width}d}" for k in range(size))
        n += size
        plans.append(TeamPlan(f"team-{i:0{team_width}d}", ids, hours, seed, policy, profile,
                              controller))
    return plans


@functools.lru_cache(maxsize=8)
def _policy(ref: str) -> Policy:
    return load_policy(ref, Path.cwd())


# ---------------------------------------------------------------------------- generation


class _Shift:
    """Collects the timeline of one team's shift, then freezes it into a :class:`Scenario`."""

    def __init__(self, plan: TeamPlan, policy: Policy) -> None:
        self.plan = plan
        self.policy = policy
        self.end = plan.hours * 3600.0
        self.rng = random.Random(f"{plan.seed}:{plan.team}")
        self.items: list[tuple[float, dict[str, Any]]] = []  # (time, entry fields), as added
        self._ids = 0
        required = [a for a, k in policy.activities.items() if k == "required"]
        prohibited = [a for a, k in policy.activities.items() if k == "prohibited"]

        def pick(preferred: str, pool: list[str]) -> str | None:
            return preferred if policy.kind(preferred) is not None else (pool[0] if pool else None)

        self.patrol = pick("patrol", required)
        self.emergency = pick("emergency_response", required)
        self.warrants = [a for a in ("arrest_warrant", "search_warrant") if policy.is_required(a)]
        if not self.warrants and required:
            self.warrants = required[:1]
        self.prohibited = pick("first_amendment_activity", prohibited)
        self.signals = sorted(policy.signals)
        self.reasons = sorted(policy.deactivation_reasons)

    # -- helpers

    def add(self, at: float, **entry: Any) -> None:
        at = round(at, 3)  # then min(max(0.0, at), end), written out: once per entry
        if not at > 0.0:
            at = 0.0
        if self.end < at:
            at = self.end
        self.items.append((at, entry))

    def activity_id(self, kind: str) -> str:
        self._ids += 1
        return f"{self.plan.team}-{kind}{self._ids}"

    def delay(self) -> float:
        p = self.plan.profile
        return round(self.rng.uniform(5.0, 90.0), 3) if self.rng.random() < p.late_p else 0.0

    def poisson(self, rate_per_hour: float, start: float, end: float) -> list[float]:
        """Event times of a Poisson stream on [start, end)."""
        out: list[float] = []
        if rate_per_hour <= 0:
            return out
        t = start
        while True:
            t += self.rng.expovariate(rate_per_hour / 3600.0)
            if t >= end:
                return out
            out.append(t)

    def activity(
        self, activity: str, start: float, end: float, *, team: bool, cams: Sequence[str] = (),
        kind: str = "a",
    ) -> None:
        """An activity on [start, end) for the whole team or for some cameras."""
        aid = self.activity_id(kind)
        delay = self.delay()
        targets: list[dict[str, Any]] = [{"team": self.plan.team}] if team else [
            {"camera": c} for c in cams
        ]
        for target in targets:
            self.add(start, event="activity_start", delay_s=delay,
                     fields={"activity": activity, "activity_id": aid}, **target)
            self.add(end, event="activity_end", fields={"activity_id": aid}, **target)

    # -- the shift

    def build(self) -> Scenario:
        plan, rng, end = self.plan, self.rng, self.end
        prof = plan.profile
        params = self.policy.apply(CameraParams(prebuffer_s=rng.choice((30.0, 30.0, 60.0, 120.0))))
        # Start of shift: undock in the first minutes (a few are already buffering).
        start_window = min(600.0, 0.05 * end)
        on_duty: dict[str, float] = {}
        cameras: list[CameraSpec] = []
        for cam in plan.cameras:
            if rng.random() < 0.15:
                cameras.append(CameraSpec(id=cam, teams=(plan.team,), initial="pre_buffer",
                                          params=params))
                on_duty[cam] = 0.0
            else:
                cameras.append(CameraSpec(id=cam, teams=(plan.team,), initial="docked",
                                          params=params))
                on_duty[cam] = rng.uniform(0.0, start_window)
                self.add(on_duty[cam], camera=cam, event="undock")
        first = start_window * rng.uniform(0.5, 1.5)
        last = end - min(1200.0, 0.05 * end) * rng.uniform(0.25, 1.0)
        # Patrol blocks, with a docked break in the middle for most teams.
        blocks: list[tuple[float, float]] = []
        halves = [(first, last)]
        if rng.random() < prof.break_p:
            b0 = rng.uniform(0.4, 0.55) * end
            b1 = b0 + min(rng.uniform(1200.0, 2700.0), 0.1 * end)
            halves = [(first, b0), (b1, last)]
            for cam in plan.cameras:
                self.add(b0 + rng.uniform(5.0, 120.0), camera=cam, event="dock")
                self.add(b1 - rng.uniform(5.0, 120.0), camera=cam, event="undock")
        for a, b in halves:
            if rng.random() < 0.5 and b - a > 0.2 * end:
                gap_at = rng.uniform(a + 0.3 * (b - a), a + 0.7 * (b - a))
                gap = min(rng.uniform(300.0, 1800.0), 0.05 * end)
                blocks += [(a, gap_at), (gap_at + gap, b)]
            else:
                blocks.append((a, b))
        for a, b in blocks:
            if self.patrol is not None:
                self.activity(self.patrol, a, b, team=True, kind="p")
            self.emergencies(a, b)
        self.warrant_ops(first, last)
        if self.prohibited is not None and rng.random() < prof.prohibited_p:
            t = rng.uniform(first, last)
            self.activity(self.prohibited, t, min(t + rng.uniform(600.0, 3600.0), end), team=True,
                          kind="f")
        for cam in plan.cameras:
            self.officer(cam, on_duty[cam], last)
        # End of shift: dock.
        for cam in plan.cameras:
            self.add(last + rng.uniform(30.0, 600.0), camera=cam, event="dock")
        if rng.random() < prof.outage_p:
            self.add(rng.uniform(first, last), fault="broker_outage",
                     for_s=round(rng.uniform(2.0, 30.0), 3))
        return self.freeze(cameras, rng.randrange(2**31))

    def emergencies(self, a: float, b: float) -> None:
        rng, prof = self.rng, self.plan.profile
        if self.emergency is None:
            return
        for t in self.poisson(prof.emergency_per_hour, a, b - 120.0):
            stop = min(t + rng.uniform(300.0, 3600.0), b - 60.0)
            if stop <= t:
                continue
            if rng.random() < prof.emergency_individual_p:
                cams = rng.sample(self.plan.cameras, min(len(self.plan.cameras), rng.randint(1, 2)))
                self.activity(self.emergency, t, stop, team=False, cams=sorted(cams), kind="e")
            else:
                self.activity(self.emergency, t, stop, team=True, kind="e")

    def warrant_ops(self, first: float, last: float) -> None:
        rng, prof = self.rng, self.plan.profile
        if not self.warrants or last - first < 1800.0:
            return
        count = min(prof.warrants_max, int(rng.triangular(0, prof.warrants_max + 1, 0)))
        for _ in range(count):
            t = rng.uniform(first, last - 1800.0)
            stop = min(t + rng.uniform(1200.0, 5400.0), last)
            self.activity(rng.choice(self.warrants), t, stop, team=True, kind="w")
            if self.reasons and rng.random() < prof.deactivate_p:
                cam = rng.choice(self.plan.cameras)
                d0 = rng.uniform(t + 60.0, stop)
                self.add(d0, camera=cam, event="deactivate",
                         fields={"reason": rng.choice(self.reasons), "actor": f"{cam}-officer"})
                if rng.random() < 0.7:
                    self.add(rng.uniform(d0, stop), camera=cam, event="reactivate")
            if rng.random() < prof.bad_reason_p:
                cam = rng.choice(self.plan.cameras)
                self.add(rng.uniform(t, stop), camera=cam, event="deactivate",
                         fields={"reason": "battery_saving", "actor": f"{cam}-officer"})

    def officer(self, cam: str, start: float, last: float) -> None:
        rng, prof = self.rng, self.plan.profile
        for t in self.poisson(prof.signals_per_hour, start, last):
            source = rng.choice(self.signals) if self.signals and rng.random() < 0.9 else "button"
            self.add(t, camera=cam, event="signal", fields={"source": source})
            self.add(t + rng.uniform(120.0, 1800.0), camera=cam, event="button",
                     fields={"action": "stop"})
        for t in self.poisson(prof.presses_per_hour, start, last):
            self.add(t, camera=cam, event="button", fields={"action": "start"})
            self.add(t + rng.uniform(60.0, 900.0), camera=cam, event="button",
                     fields={"action": "stop"})
        for t in self.poisson(prof.stray_stop_per_hour, start, last):
            self.add(t, camera=cam, event="button", fields={"action": "stop"})
        if rng.random() < prof.disconnect_p:
            self.add(rng.uniform(start, last), camera=cam, fault="disconnect",
                     for_s=round(rng.uniform(5.0, 300.0), 3))

    def freeze(self, cameras: list[CameraSpec], bus_seed: int) -> Scenario:
        prof, plan = self.plan.profile, self.plan
        # By time, then in the order added: items are appended in that order and the sort is
        # stable, so the time alone is the key (compared as floats, not as tuples).
        self.items.sort(key=operator.itemgetter(0))
        timeline = tuple(
            TimelineEntry(index=i, line=0, at=at, **entry)
            for i, (at, entry) in enumerate(self.items)
        )
        return Scenario(
            version=1,
            name=f"fleet shift {plan.team} (fleet seed {plan.seed})",
            description=_shift_description(plan, bus_seed),
            policy=self.policy,
            policy_ref=self.plan.policy,
            end=self.end,
            cameras=tuple(cameras),
            file=f"<fleet {self.plan.team}>",
            seed=bus_seed,
            bus=BusSpec(latency_s=prof.latency_s, jitter_s=prof.jitter_s, latency="uniform",
                        duplicate=prof.duplicate),
            timeline=timeline,
        )


def _shift_description(plan: TeamPlan, bus_seed: int) -> str:
    """What a team's shift is, for the timeline page and the scenario file.

    Two seeds meet here and used to confuse readers: the *fleet* seed (``bwcsim fleet --seed``)
    and the team's own *bus* seed derived from it, which the timeline shows as "seed".
    """
    policy = plan.policy if plan.policy in BUILTIN else Path(plan.policy).name
    return (
        f"One team's shift from a simulated fleet (bwcsim fleet --seed {plan.seed}, "
        f"{plan.hours:g} h, policy {policy}). A fleet is split into independent teams of two to "
        "six cameras; each team's shift is generated from the fleet seed and the team id alone "
        "and replayed on its own simulated bus: cameras undocked at the start, patrols, "
        "emergency calls, warrant operations with deactivations, a docked mid-shift break for "
        "most teams, device signals and button presses, and faults such as late triggers, "
        f"dropped connections and broker outages. This is {plan.team} "
        f"({', '.join(plan.cameras)}). The run's seed, {bus_seed}, is this team's own bus seed "
        f"(latency jitter, duplicates), derived from fleet seed {plan.seed}."
    )


def team_scenario(plan: TeamPlan) -> Scenario:
    """The generated shift of one team, as a scenario the replay harness runs unchanged."""
    return _Shift(plan, _policy(plan.policy)).build()


def scenario_yaml(scenario: Scenario) -> str:
    """A generated scenario as a format-version-1 file (so ``bwcsim run`` can replay it).

    Only what the generator produces is written: camera and team events, faults, bus settings.
    """
    import yaml

    def num(x: float) -> float | int:
        return int(x) if float(x).is_integer() else x

    defaults = CameraParams()
    cams = []
    for c in scenario.cameras:
        item: dict[str, Any] = {"id": c.id, "team": c.teams[0]} if len(c.teams) == 1 else {
            "id": c.id, "teams": list(c.teams)}
        item["initial"] = c.initial
        for name in CameraParams.__struct_fields__:
            value = getattr(c.params, name)
            if value != getattr(defaults, name):
                item[name] = value
        cams.append(item)
    timeline = []
    for e in scenario.timeline:
        item = {"at": num(e.at)}
        if e.camera is not None:
            item["camera"] = e.camera
        if e.team is not None:
            item["team"] = e.team
        if e.fault is not None:
            item["fault"] = e.fault
            item["for_s"] = num(e.for_s)
        else:
            item["event"] = e.event
            item.update(e.fields)
            if e.delay_s:
                item["delay_s"] = num(e.delay_s)
        timeline.append(item)
    bus = scenario.bus
    doc = {
        "version": 1,
        "name": scenario.name,
        "description": scenario.description,
        "policy": scenario.policy_ref,
        "seed": scenario.seed,
        "end": num(scenario.end),
        "cameras": cams,
        "bus": {"latency_s": bus.latency_s, "jitter_s": bus.jitter_s, "latency": bus.latency,
                "drop": bus.drop, "duplicate": bus.duplicate},
        "timeline": timeline,
    }
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=120)


