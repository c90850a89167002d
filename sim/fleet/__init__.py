"""Fleet simulation: thousands of cameras through a whole shift (``bwcsim fleet``, SPEC §13).

Theory of operation
===================

A fleet is a set of **teams** of two to six cameras. Nothing a team does reaches another team:
team events go to ``bwc/team/<team>/event``, camera events to one camera, and the oracle judges
each camera on its own. So a fleet run is a list of independent *team runs*, and each team run
is an ordinary scenario replay (:func:`sim.world.replay.replay`) of a generated shift, on its own
simulated broker and scheduler. That independence is what makes the fleet cheap to spread over
processes or machines (:mod:`sim.fleet.parallel`): the merge of per-team results is a concatenation
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

from .command import fleet_command, render_text, write_worst_timelines
from .engine import (
    WORST_SHOWN,
    CameraSummary,
    FleetResult,
    TeamResult,
    run_fleet,
    run_team,
    run_teams,
)
from .shift import (
    DEFAULT_PROFILE,
    DENSE_PROFILE,
    ShiftProfile,
    TeamPlan,
    plan_fleet,
    scenario_yaml,
    team_scenario,
)

__all__ = [
    "DEFAULT_PROFILE",
    "DENSE_PROFILE",
    "WORST_SHOWN",
    "CameraSummary",
    "FleetResult",
    "ShiftProfile",
    "TeamPlan",
    "TeamResult",
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
