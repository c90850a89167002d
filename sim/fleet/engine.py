"""Running a fleet: team shifts replayed (in this process, a pool or Dask) and summarised.

See :mod:`sim.fleet` for the theory of operation.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.node import DEFAULT_FACTORY, ControllerFactory
from controller.policy import BUILTIN
from sim.world.oracle import REPORT_KEYS, empty_missed

from .shift import DEFAULT_PROFILE, ShiftProfile, TeamPlan, _policy, plan_fleet, team_scenario

WORST_SHOWN = 5  # cameras listed in the summary's worst table
#: The cyclic collector's youngest-generation threshold while teams run (Python's default is
#: 700). A team's run is freed by reference counting when it ends (``Replay.close``), so what
#: the collector would look for is hardly ever there; at 700 it ran some 400 times on a
#: 700-camera fleet, about 6 % of the time, to find next to nothing.
YOUNG_GC_THRESHOLD = 10_000

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


def controller_factory(spec: str) -> ControllerFactory:
    """The factory ``spec`` names, resolved in the process that runs the team.

    :func:`sim.nodes.load_factory` keeps one ``exec:`` factory per command and process (a
    forked worker starts children of its own), and a module import is cached by Python, so
    calling it for every team costs a dictionary lookup.
    """
    from sim.nodes import load_factory

    return load_factory(spec)


def run_team(plan: TeamPlan) -> TeamResult:
    """Generate and replay one team's shift with the plan's controller; summarise each camera."""
    from sim.views.report import refused_count
    from sim.world.replay import replay

    scenario = team_scenario(plan)
    result = replay(scenario, controller_factory(plan.controller))
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
    with _young_collections_spaced():
        return [run_team(p) for p in plans]


@contextlib.contextmanager
def _young_collections_spaced() -> Iterator[None]:
    """Run the cyclic collector's youngest generation less often (see
    :data:`YOUNG_GC_THRESHOLD`); the thresholds in force before are restored afterwards.
    Results do not depend on it: the collector only frees what nothing reaches."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], YOUNG_GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


@dataclass(slots=True)
class FleetResult:
    """Every team's result, in team order, with fleet-wide totals."""

    cameras_requested: int
    hours: float
    seed: int
    policy: str
    teams: list[TeamResult] = field(default_factory=list)
    profile: ShiftProfile = DEFAULT_PROFILE
    controller: str = DEFAULT_FACTORY

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
            "controller": self.controller,
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
    controller: str = DEFAULT_FACTORY,
) -> FleetResult:
    """Simulate ``cameras`` cameras for ``hours`` hours; same result for any ``workers``/``cluster``.

    ``workers > 1`` runs teams on a local process pool; ``cluster`` (a ``tcp://host:port``
    scheduler address or a ``distributed.Client``) runs them on a Dask cluster. ``controller`` is
    a ``--controller`` spec; every worker resolves it itself, so it must name something the
    workers can import or run too.
    """
    from .parallel import map_batches

    _policy(policy)  # fail early, in this process, on an unknown policy or controller
    controller_factory(controller)
    # Workers may start elsewhere (another cwd, another machine with the same layout): give them
    # an absolute path to a policy file.
    ref = policy if policy in BUILTIN else str((Path.cwd() / policy).resolve())
    plans = plan_fleet(cameras, hours, seed, ref, profile, controller)
    total = sum(len(p.cameras) for p in plans)
    done = 0

    def on_batch(batch: list[TeamResult]) -> None:
        nonlocal done
        done += sum(len(t.cameras) for t in batch)
        if progress is not None:
            progress(done, total)

    results = map_batches(run_teams, plans, workers=workers, cluster=cluster, on_batch=on_batch)
    return FleetResult(cameras, hours, seed, policy, results, profile, controller)


