"""Fleet simulation: thousands of cameras through a whole shift (``bwcsim fleet``, SPEC §13).

Theory of operation
===================

A fleet is a set of **teams** of two to six cameras. Nothing a team does reaches another team:
team events go to ``bwc/team/<team>/event``, camera events to one camera, and the oracle judges
each camera on its own. So a fleet run is a list of independent *team runs*, and each team run
is an ordinary scenario replay (:func:`sim.replay.replay`) of a generated shift, on its own
simulated broker and scheduler. That independence is what makes the fleet cheap to spread over
processes or machines (:mod:`sim.parallel`): the merge of per-team results is a concatenation
in team order, so any back-end gives byte-identical totals and per-camera results.

Determinism
-----------
* The partition of ``N`` cameras into teams comes from ``random.Random(f"{seed}:teams")``.
* Each team's shift comes from ``random.Random(f"{seed}:{team}")`` and nothing else, so a team's
  scenario (and its bus seed) does not depend on how many teams came before it, on the worker
  that runs it, or on the order in which workers finish.
* Nothing reads a wall clock; the progress bar (stderr) is cosmetic and the caller's.

The generated shift
-------------------
Per team (times scale with the shift length ``H`` hours; ``T = 3600 H``):

* **Start of shift.** Most cameras start ``docked`` and are undocked in the first minutes (boot
  ``boot_s``); some are already buffering. The first patrol starts a few minutes in, so a
  late undock shows as an announced ``not_ready`` miss now and then.
* **Patrols** (required) cover most of the shift in one to four blocks, with short gaps at the
  station and, for most teams, a **mid-shift break** during which the cameras are docked
  (charging and offloading) and undocked again.
* **Emergency calls** (required) arrive as a Poisson stream *inside* patrols, nested in the
  patrol window; most go to the whole team, some to one or two officers.
* **Warrant operations** (arrest or search warrant, required) are team events; during one an
  officer may ``deactivate`` with an allowed reason (and ``reactivate``), or try a reason the
  policy refuses.
* **Device signals** (policy sources, and now and then one it does not list) and **manual
  presses** (button start/stop) per camera; a stop during a required window is refused (R-STOP).
* **Prohibited** activity (First Amendment) now and then, which must start nothing.
* **Faults**: an occasional late trigger (``delay_s``), a camera's client cut off for a while,
  a short broker outage; the bus has latency with jitter and rare QoS 1 duplicates.
* **End of shift.** The last patrol ends shortly before ``T`` and the cameras are docked.

A 12-hour shift is long enough for batteries and storage to run out on teams that skip the
break; those misses are excused (``battery``, ``storage``) and must be announced. The verdict of
the fleet is ``pass`` when every camera's verdict is.

Activity names come from the chosen policy: the generator uses ``patrol``,
``emergency_response``, ``arrest_warrant``, ``search_warrant`` and
``first_amendment_activity`` when the policy has them, and otherwise its first required
(resp. prohibited) activity, or leaves that part out.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.params import CameraParams
from controller.policy import BUILTIN, Policy, load_policy

from .oracle import REPORT_KEYS, empty_missed
from .scenario import BusSpec, CameraSpec, Scenario, TimelineEntry

__all__ = [
    "DEFAULT_PROFILE",
    "DENSE_PROFILE",
    "CameraSummary",
    "FleetResult",
    "ShiftProfile",
    "TeamPlan",
    "TeamResult",
    "check_output_file",
    "fleet_command",
    "plan_fleet",
    "render_text",
    "run_fleet",
    "run_team",
    "run_teams",
    "scenario_yaml",
    "team_scenario",
    "write_worst_timelines",
]

WORST_SHOWN = 5


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


def plan_fleet(
    cameras: int,
    hours: float,
    seed: int = 0,
    policy: str = "dhs-2023",
    profile: ShiftProfile = DEFAULT_PROFILE,
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
        plans.append(TeamPlan(f"team-{i:0{team_width}d}", ids, hours, seed, policy, profile))
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
        self.items: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = 0
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
        at = min(max(0.0, round(at, 3)), self.end)
        self.items.append((at, self._seq, entry))
        self._seq += 1

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
        self.items.sort(key=lambda item: (item[0], item[1]))
        timeline = tuple(
            TimelineEntry(index=i, line=0, at=at, **entry)
            for i, (at, _seq, entry) in enumerate(self.items)
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


# ------------------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class CameraSummary:
    """What the fleet report keeps of one camera (small and picklable)."""

    camera: str
    team: str
    ok: bool
    final_state: str
    events: int  # inbound deliveries the controller handled (redeliveries included)
    refused: int
    recordings: int
    footage_s: float
    required_s: float
    missed_s: dict[str, float]
    alerts: int
    unannounced: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TeamResult:
    team: str
    timeline: int  # timeline entries of the team's shift
    cameras: tuple[CameraSummary, ...]


def run_team(plan: TeamPlan) -> TeamResult:
    """Generate and replay one team's shift; summarise each camera."""
    from .replay import replay
    from .report import refused_count

    scenario = team_scenario(plan)
    result = replay(scenario)
    out: list[CameraSummary] = []
    for spec in scenario.cameras:
        run = result.cameras[spec.id]
        j = result.judgements[spec.id]
        footage = sum(b - a for rec in run.recordings.values() for a, b in rec.segment_list)
        required = sum(w.end - w.start for w in result.windows[spec.id])
        out.append(CameraSummary(
            camera=spec.id,
            team=plan.team,
            ok=j.ok,
            final_state=run.last_state.state if run.last_state else spec.initial,
            events=len(run.acks),
            refused=refused_count(run),
            recordings=len(run.recordings),
            footage_s=round(footage, 6),
            required_s=round(required, 6),
            missed_s={k: round(j.missed_s[k], 6) for k in REPORT_KEYS},
            alerts=len(run.alerts),
            unannounced=tuple(j.unannounced),
        ))
    return TeamResult(plan.team, len(scenario.timeline), tuple(out))


def run_teams(plans: Sequence[TeamPlan]) -> list[TeamResult]:
    """Run a batch of teams in order (the unit a worker process or Dask task receives)."""
    return [run_team(p) for p in plans]


@dataclass(slots=True)
class FleetResult:
    """Every team's result, in team order, with fleet-wide totals."""

    cameras_requested: int
    hours: float
    seed: int
    policy: str
    teams: list[TeamResult] = field(default_factory=list)
    profile: ShiftProfile = DEFAULT_PROFILE

    def camera_summaries(self) -> list[CameraSummary]:
        return [c for t in self.teams for c in t.cameras]

    @property
    def verdict(self) -> str:
        return "pass" if all(c.ok for c in self.camera_summaries()) else "fail"

    def worst(self, n: int = WORST_SHOWN) -> list[CameraSummary]:
        """Failing cameras first, then by ``controller`` seconds, then by total missed seconds."""
        ranked = sorted(
            self.camera_summaries(),
            key=lambda c: (c.ok, -c.missed_s["controller"], -c.missed_s["total"], c.camera),
        )
        return [c for c in ranked[:n] if not c.ok or c.missed_s["total"] > 0]

    def to_json(self) -> dict[str, Any]:
        """The fleet report as one JSON-ready dict (``bwcsim fleet --report json``)."""
        cams = self.camera_summaries()
        missed = empty_missed()
        for c in cams:
            for k in REPORT_KEYS:
                missed[k] += c.missed_s[k]
        return {
            "cameras": len(cams),
            "teams": len(self.teams),
            "hours": self.hours,
            "seed": self.seed,
            "policy": self.policy,
            "verdict": self.verdict,
            "failing_cameras": sum(not c.ok for c in cams),
            "timeline_entries": sum(t.timeline for t in self.teams),
            "events": sum(c.events for c in cams),
            "refused": sum(c.refused for c in cams),
            "recordings": sum(c.recordings for c in cams),
            "alerts": sum(c.alerts for c in cams),
            "footage_h": round(sum(c.footage_s for c in cams) / 3600.0, 3),
            "required_h": round(sum(c.required_s for c in cams) / 3600.0, 3),
            "missed_s": {k: round(v, 3) for k, v in missed.items()},
            "final_states": _count(c.final_state for c in cams),
            "worst": [_camera_json(c) for c in self.worst()],
        }


def _camera_json(c: CameraSummary) -> dict[str, Any]:
    return {
        "camera": c.camera, "team": c.team, "verdict": "pass" if c.ok else "fail",
        "final_state": c.final_state, "events": c.events, "recordings": c.recordings,
        "footage_s": round(c.footage_s, 3),
        "missed_s": {k: round(v, 3) for k, v in c.missed_s.items() if v or k == "total"},
        "unannounced": list(c.unannounced),
    }


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


ProgressFn = Callable[[int, int], None]  # (cameras done, cameras total)


def run_fleet(
    cameras: int,
    hours: float,
    seed: int = 0,
    policy: str = "dhs-2023",
    *,
    workers: int = 1,
    cluster: Any = None,
    progress: ProgressFn | None = None,
    profile: ShiftProfile = DEFAULT_PROFILE,
) -> FleetResult:
    """Simulate ``cameras`` cameras for ``hours`` hours; same result for any ``workers``/``cluster``.

    ``workers > 1`` runs teams on a local process pool; ``cluster`` (a ``tcp://host:port``
    scheduler address or a ``distributed.Client``) runs them on a Dask cluster.
    """
    from .parallel import map_batches

    _policy(policy)  # fail early, in this process, on an unknown policy
    # Workers may start elsewhere (another cwd, another machine with the same layout): give them
    # an absolute path to a policy file.
    ref = policy if policy in BUILTIN else str((Path.cwd() / policy).resolve())
    plans = plan_fleet(cameras, hours, seed, ref, profile)
    total = sum(len(p.cameras) for p in plans)
    done = 0

    def on_batch(batch: list[TeamResult]) -> None:
        nonlocal done
        done += sum(len(t.cameras) for t in batch)
        if progress is not None:
            progress(done, total)

    results = map_batches(run_teams, plans, workers=workers, cluster=cluster, on_batch=on_batch)
    return FleetResult(cameras, hours, seed, policy, results, profile)


# ------------------------------------------------------------------------------- output


def render_text(doc: dict[str, Any], console: Any = None) -> None:
    """The fleet summary for people (``--report text``)."""
    from rich.console import Console
    from rich.table import Table

    con: Console = console or Console(highlight=False)
    colour = "green" if doc["verdict"] == "pass" else "red"
    con.print(f"[bold]fleet[/]  {doc['cameras']} cameras in {doc['teams']} teams, "
              f"{doc['hours']:g} h, policy {doc['policy']}, seed {doc['seed']}")
    con.print(f"verdict: [{colour} bold]{doc['verdict'].upper()}[/]"
              f"  ({doc['failing_cameras']} failing camera(s))")
    con.print(f"events: {doc['events']} handled ({doc['refused']} refused), "
              f"{doc['recordings']} recordings, {doc['footage_h']:.1f} h footage of "
              f"{doc['required_h']:.1f} h required, {doc['alerts']} alerts")
    missed = doc["missed_s"]
    table = Table(title="missed seconds by cause", title_justify="left")
    table.add_column("cause")
    table.add_column("seconds", justify="right")
    for k in REPORT_KEYS:
        if k != "total":
            table.add_row(k, f"{missed[k]:.1f}")
    table.add_row("[bold]total[/]", f"[bold]{missed['total']:.1f}[/]")
    con.print(table)
    if doc["worst"]:
        worst = Table(title="worst cameras", title_justify="left")
        for col in ("camera", "team", "verdict", "missed s", "causes"):
            worst.add_column(col)
        for c in doc["worst"]:
            # One decimal everywhere, like the table above (``{:g}`` gave 8579.64 next to 695.293).
            causes = ", ".join(f"{k} {v:.1f}" for k, v in c["missed_s"].items() if k != "total")
            worst.add_row(c["camera"], c["team"], c["verdict"], f"{c['missed_s']['total']:.1f}",
                          causes)
        con.print(worst)


# ---------------------------------------------------------------------------- the command


def fleet_command(
    cameras: int,
    hours: float,
    seed: int = 0,
    policy: str = "dhs-2023",
    *,
    report: str = "text",
    timeline: Path | None = None,
    workers: int = 1,
    cluster: str | None = None,
) -> int:
    """``bwcsim fleet``: run, show a progress bar on stderr, print the summary; the exit code.

    Raises :class:`~controller.errors.BwcError` on invalid input (the CLI turns it into exit 2).
    """
    import sys

    import msgspec
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from controller.errors import InvalidInput

    if cameras < 1:
        raise InvalidInput("must be at least 1", "cameras")
    if not (hours > 0 and math.isfinite(hours)):
        raise InvalidInput("must be a positive number of hours", "hours")
    if workers < 1:
        raise InvalidInput("must be at least 1", "workers")
    if timeline is not None:
        check_output_file(timeline)  # before the run: a bad path should not cost minutes
    err = Console(stderr=True, highlight=False)
    with Progress(
        TextColumn("[bold]fleet[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("cameras"),
        TimeElapsedColumn(), console=err, transient=True,
        disable=not err.is_terminal,  # no bar (and no stray blank line) in logs and pipes
    ) as bar:
        task = bar.add_task("fleet", total=cameras)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = run_fleet(cameras, hours, seed, policy, workers=workers, cluster=cluster,
                           progress=progress)
    doc = result.to_json()
    if timeline is not None:
        write_worst_timelines(result, timeline, err)
    if report == "json":
        sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")
    else:
        render_text(doc)
    return 0 if doc["verdict"] == "pass" else 1


def check_output_file(path: Path) -> None:
    """Fail early, with ``cannot write <path>: <reason>``, when ``path`` cannot be written.

    The folder must exist (it is not created, as for ``bwcsim run --timeline``) and accept a new
    file; ``path`` itself must not be a folder. Raises :class:`~controller.errors.InvalidInput`.
    """
    import tempfile

    from controller.errors import InvalidInput

    folder = path.parent
    if path.is_dir():
        raise InvalidInput(f"cannot write {path}: it is a folder")
    if not folder.is_dir():
        reason = "not a folder" if folder.exists() else "no such folder"
        raise InvalidInput(f"cannot write {path}: {folder}: {reason}")
    try:
        # Permission bits do not tell the whole story (read-only mounts, /proc, root): only
        # creating a file does.
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None


def write_worst_timelines(result: FleetResult, path: Path, err: Any, teams: int = 3) -> list[Path]:
    """Replay the teams of the worst cameras again and write their HTML timelines.

    The first (worst) team goes to ``path``, the next ones beside it as ``<stem>-<team><suffix>``.
    Needs the timeline writer (``sim/timeline.py``); without it this notes so on ``err`` and
    writes nothing. Returns the files written. Raises :class:`~controller.errors.InvalidInput`
    (``cannot write <file>: <reason>``) when a file cannot be written.
    """
    import importlib.util

    from controller.errors import InvalidInput

    if importlib.util.find_spec("sim.timeline") is None:
        err.print("timeline skipped: the timeline writer (sim/timeline.py) is not available")
        return []
    from .outputs import write_outputs
    from .replay import replay
    from .report import build_report

    chosen: list[str] = []
    for cam in result.worst():
        if cam.team not in chosen:
            chosen.append(cam.team)
    if not chosen:
        err.print("timeline skipped: no camera missed any required footage")
        return []
    ref = result.policy if result.policy in BUILTIN else str((Path.cwd() / result.policy).resolve())
    plans = {p.team: p for p in plan_fleet(result.cameras_requested, result.hours, result.seed,
                                            ref, result.profile)}
    written: list[Path] = []
    for i, team in enumerate(chosen[:teams]):
        target = path if i == 0 else path.with_name(f"{path.stem}-{team}{path.suffix}")
        records: list[dict[str, Any]] = []
        run = replay(team_scenario(plans[team]), trace=records.append)
        try:
            write_outputs(run, build_report(run), records, timeline=target)
        except NotImplementedError as exc:
            err.print(f"timeline skipped: {exc}")
            return written
        except OSError as exc:
            raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}") from None
        err.print(f"timeline of {team} written to {target}")
        written.append(target)
    return written
