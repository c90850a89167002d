"""Fleet engine vs an earlier commit: events/s of both, interleaved in one run, same totals.

The baseline is the fleet engine of a git ref (default ``25d799a``, the engine before the
compiled state table, the lazy audit chain and the cycle-free replay), checked out in a
temporary ``git worktree`` that is removed at the end. Each side runs the same fleet
(``run_fleet(cameras, hours, seed=0)``, one process) in a fresh child process whose
``PYTHONPATH`` is its own tree, alternately (ref, current, current, ref, ...), ``--repeat`` times;
the figures are medians. Events/s is measured on the child's CPU time (``time.process_time``),
which neighbours on a shared machine disturb less than wall time; wall figures are shown too.
Every run's totals (the ``bwcsim fleet --report json`` document without the key the newer
engine added, and every camera's summary) must be byte for byte the same on both sides: the
script fails, exit status 1, if they are not. The share of time spent in the cyclic garbage
collector (``gc.callbacks``) is reported for both.

A third side, interleaved with the other two, runs this checkout judging only what ``25d799a``
judged: the footage oracle. The judgements of what a camera says (P-REPLY, P-EVIDENCE,
P-RESOURCE: its replies, recording metadata and alerts, battery and storage reports) came later,
from other work, and every fleet run now pays for them; this row compares the engines on equal
work. The switch (:data:`LATER_JUDGEMENTS_OFF`) replaces those three judgements by ones that
find nothing, in the measured child only; its totals must match too. ``--no-same-work`` leaves
the side out.

    python bench/fleet_vs_ref.py [REF] [--cameras N] [--hours H] [--repeat N] [--no-same-work]
                                 [--quick] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_REF = "25d799a"
TARGET_RATIO = 1.5
HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
# Keys a newer engine added to the fleet report; compared only where both sides have them.
NEWER_KEYS = ("controller",)

#: Run first in a measured process for the same-work side: the judgements added since the
#: baseline find nothing, at no cost.
LATER_JUDGEMENTS_OFF = (
    "import sim.world.replay as replay\n"
    "from sim.world.replies import Reading\n"
    "replay.judge_replies = lambda scenario, seen, policy: Reading([], [])\n"
    "replay.judge_evidence = lambda *args, **kwargs: []\n"
    "replay.judge_resources = lambda *args, **kwargs: []\n"
)


def one(cameras: int, hours: float, tree: str, same_work: bool = False) -> None:
    """Run one fleet in this process (with ``sim`` from ``tree``) and print its figures as JSON;
    ``same_work``: with :data:`LATER_JUDGEMENTS_OFF` run first."""
    if same_work:
        exec(LATER_JUDGEMENTS_OFF, {})
    import sim
    from sim.fleet import run_fleet

    where = Path(sim.__file__).resolve()
    if not where.is_relative_to(Path(tree).resolve()):
        raise SystemExit(f"sim was imported from {where}, not from {tree}")
    gc_s = 0.0
    started = 0.0

    def on_gc(phase: str, _info: dict[str, int]) -> None:
        nonlocal gc_s, started
        if phase == "start":
            started = time.perf_counter()
        else:
            gc_s += time.perf_counter() - started

    gc.callbacks.append(on_gc)
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_fleet(cameras, hours, seed=0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    gc.callbacks.remove(on_gc)
    doc = result.to_json()
    for key in NEWER_KEYS:
        doc.pop(key, None)
    totals = json.dumps(doc, sort_keys=True)
    per_camera = json.dumps([dataclasses.astuple(c) for c in result.camera_summaries()])
    print(json.dumps({
        "wall_s": wall, "cpu_s": cpu, "gc_s": gc_s, "events": doc["events"],
        "cameras": doc["cameras"], "verdict": doc["verdict"], "totals": totals,
        "per_camera_sha256": hashlib.sha256(per_camera.encode()).hexdigest(),
    }))


def spawn(tree: Path, cameras: int, hours: float, same_work: bool = False) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, str(HERE), "--one", str(cameras), str(hours), str(tree),
         *(["--same-work"] if same_work else [])],
        cwd=tree, env=env, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"fleet run in {tree} failed:\n{proc.stderr}")
    fig: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return fig


def add_worktree(ref: str, where: Path) -> str:
    """Check ``ref`` out at ``where`` (detached); return the commit it names."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                            capture_output=True, text=True, check=False)
    if commit.returncode != 0:
        raise SystemExit(f"not a commit in {ROOT}: {ref!r}")
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(where),
                    commit.stdout.strip()], check=True)
    return commit.stdout.strip()


def remove_worktree(where: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)],
                   check=False, capture_output=True)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False, capture_output=True)


def main() -> None:
    import measure  # only here: it puts this checkout on sys.path, which the children must not see

    p = measure.parser(__doc__.splitlines()[0])
    p.add_argument("ref", nargs="?", default=DEFAULT_REF, help=f"baseline git ref ({DEFAULT_REF})")
    p.add_argument("--cameras", type=int, default=None, help="fleet size (7000)")
    p.add_argument("--hours", type=float, default=None, help="shift length (12)")
    p.add_argument("--no-same-work", dest="same_work", action="store_false",
                   help="leave out the side of this checkout judging only what the baseline judged")
    p.add_argument("--one", nargs=3, metavar=("CAMERAS", "HOURS", "TREE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    cameras = args.cameras or (40 if args.quick else 7000)
    hours = args.hours or (1.0 if args.quick else 12.0)
    repeat = args.repeat or (1 if args.quick else 3)
    sides = ("ref", "current", "same work") if args.same_work else ("ref", "current")
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="bwcsim-ref-") as tmp:
        ref_tree = Path(tmp) / "ref"
        commit = add_worktree(args.ref, ref_tree)
        try:
            trees = {"ref": ref_tree, "current": ROOT, "same work": ROOT}
            for i in range(repeat):  # interleaved, each side going first in turn
                for side in sides[i % len(sides):] + sides[:i % len(sides)]:
                    runs[side].append(spawn(trees[side], cameras, hours, side == "same work"))
        finally:
            remove_worktree(ref_tree)
    first = runs["ref"][0]
    for side, figs in runs.items():
        for fig in figs:
            for key in ("totals", "per_camera_sha256"):
                if fig[key] != first[key]:
                    sys.stderr.write(
                        f"FAIL: the {side} engine's {key} differ from {args.ref}'s:\n"
                        f"  {args.ref}: {first[key]}\n  {side}: {fig[key]}\n")
                    raise SystemExit(1)

    def med(side: str, key: str) -> float:
        return float(statistics.median(f[key] for f in runs[side]))

    def rate(side: str, key: str) -> float:
        return float(statistics.median(f["events"] / f[key] for f in runs[side]))

    events = first["events"]
    cur_cpu, ref_cpu = rate("current", "cpu_s"), rate("ref", "cpu_s")
    cur_wall, ref_wall = rate("current", "wall_s"), rate("ref", "wall_s")
    size = f"{cameras} cameras x {hours:g} h"
    rows = [
        measure.Row(f"fleet engine {size}, events/s (CPU time)", cur_cpu, "events/s",
                    baseline=f"{args.ref} {measure.fmt(ref_cpu)} events/s",
                    ratio=cur_cpu / ref_cpu, ratio_of=f"current / {args.ref}, medians",
                    target=f">= {TARGET_RATIO}x the baseline", met=cur_cpu / ref_cpu >= TARGET_RATIO),
        measure.Row(f"fleet engine {size}, events/s (wall)", cur_wall, "events/s",
                    baseline=f"{args.ref} {measure.fmt(ref_wall)} events/s",
                    ratio=cur_wall / ref_wall, ratio_of=f"current / {args.ref}, medians"),
        measure.Row(f"fleet engine {size}, CPU", med("current", "cpu_s"), "s",
                    baseline=f"{args.ref} {med('ref', 'cpu_s'):.2f} s",
                    ratio=med("current", "cpu_s") / med("ref", "cpu_s"),
                    ratio_of=f"current / {args.ref}"),
        measure.Row(f"fleet engine {size}, cyclic GC share", 100 * med("current", "gc_s")
                    / med("current", "wall_s"), "% of wall",
                    baseline=f"{args.ref} {100 * med('ref', 'gc_s') / med('ref', 'wall_s'):.1f} %",
                    ratio=(med("current", "gc_s") / med("current", "wall_s"))
                    / max(med("ref", "gc_s") / med("ref", "wall_s"), 1e-9),
                    ratio_of=f"current / {args.ref}"),
    ]
    if args.same_work:
        same = rate("same work", "cpu_s")
        rows.insert(1, measure.Row(
            f"fleet engine {size}, events/s (CPU time), judging only what {args.ref} judged "
            "(P-REPLY, P-EVIDENCE, P-RESOURCE off)", same, "events/s",
            baseline=f"{args.ref} {measure.fmt(ref_cpu)} events/s", ratio=same / ref_cpu,
            ratio_of=f"current on the same work / {args.ref}, medians"))
    notes = [f"baseline {args.ref} = {commit[:12]}, in a temporary git worktree (removed)",
             f"{repeat} runs per side, interleaved, each in a fresh process; medians",
             f"same totals on {'all three' if args.same_work else 'both'} sides, byte for byte: "
             f"{events} events, verdict "
             f"{first['verdict']}, per-camera summaries sha256 {first['per_camera_sha256'][:16]}"]
    measure.emit("fleet_vs_ref", rows, args.json, notes)


if __name__ == "__main__":
    if len(sys.argv) in (5, 6) and sys.argv[1] == "--one":
        one(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5:] == ["--same-work"])
    else:
        main()
