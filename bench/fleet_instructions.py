"""Fleet engine vs an earlier commit, counted in instructions: the figure neighbours cannot blur.

CPU time on a shared two-core machine moves by 10 to 20 % from run to run; the number of machine
instructions a run executes does not (``valgrind --tool=callgrind`` counts the same total for the
same program and input whatever else the machine is doing). Each side runs
``run_fleet(N, hours, seed=0)`` under callgrind, and ``run_fleet(--small, ...)`` likewise, and the
figure is the difference: start-up, imports and the policy cancel out, what is left is the
engine's work on ``N - small`` cameras. The baseline is a git ref (default ``25d799a``, the turn-1
engine) checked out in a temporary ``git worktree``, as in ``bench/fleet_vs_ref.py``, which
measures the same comparison in seconds and checks the totals byte for byte.

The ratio printed is the baseline's instructions over the current ones: the speed-up the
engine's events/s would show with nothing else on the machine (SPEC §13 asks 1.5).

A second row counts this checkout doing the baseline's work only. ``25d799a`` judged each
camera's footage against the oracle and nothing else; the judgements of what a camera says
(P-REPLY, P-EVIDENCE, P-RESOURCE: its replies, its recording metadata and alerts, its battery and
storage reports) came later, and every fleet run now pays for them. With ``--no-same-work`` the
row is left out. The switch is this script's alone: it replaces the three judgements by ones
that find nothing, in the measured process only.

    python bench/fleet_instructions.py [REF] [--cameras 40] [--small 4] [--hours 12] [--json]

Needs ``valgrind`` (Debian package ``valgrind``); a 40-camera pair takes about a minute a side.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from fleet_vs_ref import (
    DEFAULT_REF,
    LATER_JUDGEMENTS_OFF,
    ROOT,
    TARGET_RATIO,
    add_worktree,
    remove_worktree,
)

COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(tree: Path, cameras: int, hours: float, prelude: str = "") -> int:
    """Instructions callgrind counts for ``run_fleet(cameras, hours)`` with ``sim`` from ``tree``
    (``prelude`` run before it)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    code = prelude + f"from sim.fleet import run_fleet; run_fleet({cameras}, {hours}, seed=0)"
    with tempfile.TemporaryDirectory(prefix="bwcsim-cg-") as tmp:
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out",
             sys.executable, "-c", code],
            cwd=tree, env=env, capture_output=True, text=True, check=False,
        )
    found = COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run in {tree} failed:\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    import measure  # only here: it puts this checkout on sys.path, which the children must not see

    p = measure.parser(__doc__.splitlines()[0])
    p.add_argument("ref", nargs="?", default=DEFAULT_REF, help=f"baseline git ref ({DEFAULT_REF})")
    p.add_argument("--cameras", type=int, default=None, help="fleet size counted (40)")
    p.add_argument("--small", type=int, default=None, help="fleet size subtracted (4)")
    p.add_argument("--hours", type=float, default=None, help="shift length (12)")
    p.add_argument("--no-same-work", dest="same_work", action="store_false",
                   help="leave out the row of this checkout doing the baseline's work only")
    args = p.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("fleet_instructions: valgrind is not installed (apt-get install valgrind)")
    cameras = args.cameras or (8 if args.quick else 40)
    small = args.small or (2 if args.quick else 4)
    hours = args.hours or (1.0 if args.quick else 12.0)
    if small >= cameras:
        raise SystemExit("fleet_instructions: --small must be below --cameras")
    counted: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bwcsim-ref-") as tmp:
        ref_tree = Path(tmp) / "ref"
        commit = add_worktree(args.ref, ref_tree)
        try:
            sides = [("ref", ref_tree, ""), ("current", ROOT, "")]
            if args.same_work:
                sides.append(("same work", ROOT, LATER_JUDGEMENTS_OFF))
            for side, tree, prelude in sides:
                counted[side] = (instructions(tree, cameras, hours, prelude)
                                 - instructions(tree, small, hours, prelude))
        finally:
            remove_worktree(ref_tree)
    ratio = counted["ref"] / counted["current"]
    label = f"fleet run_fleet({cameras}) - run_fleet({small}) x {hours:g} h"
    rows = [
        measure.Row(f"{label}: instructions, this checkout", counted["current"] / 1e6, "M",
                    baseline=f"{args.ref} ({commit[:10]}) {counted['ref'] / 1e6:,.1f} M", ratio=ratio,
                    ratio_of="baseline instructions / current (speed-up on an idle machine)",
                    target=f">= {TARGET_RATIO:g}x", met=ratio >= TARGET_RATIO),
        measure.Row(f"{label}: instructions a {TARGET_RATIO:g}x engine would take",
                    counted["ref"] / TARGET_RATIO / 1e6, "M"),
    ]
    if "same work" in counted:
        same = counted["ref"] / counted["same work"]
        rows.append(measure.Row(
            f"{label}: instructions, this checkout judging only what {args.ref} judged "
            "(P-REPLY, P-EVIDENCE, P-RESOURCE off)", counted["same work"] / 1e6, "M",
            baseline=f"{args.ref} {counted['ref'] / 1e6:,.1f} M", ratio=same,
            ratio_of="baseline instructions / current on the same work"))
    measure.emit("fleet_instructions", rows, args.json)


if __name__ == "__main__":
    main()
