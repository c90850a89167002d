"""Catch rate of the broken-controller catalogue: per bug, over seeds, with and without corners.

For every factory of ``tests/broken_controllers.py`` and every seed, the generated examples of
:func:`sim.search.strategies.scenarios` (every registered property judged, no corner scenarios)
are searched until the first failure, up to ``--budget`` examples (default 200): the bug is
*caught within N* for a seed when that first failure comes at or before example N. The table
gives, per bug, in how many seeds it is caught within the ``dev`` profile's budget (50) and
within the whole budget, and the median number of examples to the first failure. The baseline,
measured in the same run, is the corner scenarios of :mod:`sim.search.corners` — what every
search and every property suite tries first, whatever the seed — and which of them catch it.

    python bench/catalogue_catch.py [--quick] [--seeds N] [--budget N] [--json]
"""

from __future__ import annotations

import contextlib
import statistics
import sys
from pathlib import Path
from typing import Any, cast

import measure
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from controller.node import ControllerFactory
from sim.search.corners import CORNERS
from sim.search.fuzz import check_all
from sim.search.profiles import PROFILE_EXAMPLES
from sim.search.strategies import scenarios

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import broken_controllers  # tests/ is not a package

DEV = PROFILE_EXAMPLES["dev"]


class _Found(Exception):
    pass


def first_failure(factory: ControllerFactory, seed: int, budget: int) -> int | None:
    """The 1-based index of the first generated example any property fails on, or None."""
    count = 0
    found: list[int] = []

    @settings(max_examples=budget, database=None, deadline=None, phases=(Phase.generate,),
              suppress_health_check=list(HealthCheck), print_blob=False)
    @hypothesis_seed(seed)
    @given(scenarios())
    def run(data: dict[str, Any]) -> None:
        nonlocal count
        count += 1  # hypothesis replays the failing example once more: only the first counts
        if check_all(data, factory):
            found.append(count)
            raise _Found

    with contextlib.suppress(_Found):
        run()
    return found[0] if found else None


def main() -> None:
    p = measure.parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=None, help="seeds per bug (default 5)")
    p.add_argument("--budget", type=int, default=None, help="examples per seed (default 200)")
    args = p.parse_args()
    seeds = args.seeds or (2 if args.quick else 5)
    budget = args.budget or (10 if args.quick else 200)
    dev = min(DEV, budget)
    names = sorted(broken_controllers.BROKEN)
    if args.quick:
        names = names[:2]
    rows: list[measure.Row] = []
    table = [f"| bug | breaks | caught within {dev} (dev) | caught within {budget} | "
             "median examples to catch | corners that catch it |",
             "|---|---|---|---|---|---|"]
    for name in names:
        requirement, obj = broken_controllers.BROKEN[name]
        factory = cast(ControllerFactory, obj)
        firsts = [first_failure(factory, seed, budget) for seed in range(1, seeds + 1)]
        caught = [f for f in firsts if f is not None]
        in_dev = sum(1 for f in caught if f <= dev)
        corners = [c for c, data in CORNERS.items() if check_all(data, factory)]
        median = statistics.median(caught) if caught else float("nan")
        table.append(f"| {name} | {requirement} | {in_dev}/{seeds} | {len(caught)}/{seeds} | "
                     f"{median:g} | {', '.join(corners) or 'none'} |")
        rate = 100.0 * in_dev / seeds
        corner_rate = 100.0 if corners else 0.0
        rows.append(measure.Row(
            f"{name}: generated examples catch it within {dev}", rate, "% of seeds",
            baseline=f"corner scenarios catch it in {corner_rate:.0f}% of seeds "
                     f"({', '.join(corners) or 'none'})",
            ratio=rate / corner_rate if corner_rate else None,
            ratio_of="generated-only catch rate / with-corners catch rate"))
    notes = [f"seeds 1..{seeds}, up to {budget} generated examples each, every registered "
             "property judged; corners are tried first by every search and suite"]
    if args.json:
        measure.emit("catalogue_catch", rows, True, notes)
        return
    measure.emit("catalogue_catch", rows, False, notes)
    print()
    print("\n".join(table))


if __name__ == "__main__":
    main()
