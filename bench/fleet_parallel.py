"""Fleet back-ends: one process vs ``--workers 2`` vs a local Dask cluster, same run, same totals.

Each back-end runs the same fleet (``run_fleet(cameras, hours, seed=0)``) in a fresh process,
interleaved (one process, workers, Dask, one process, ...) ``--repeat`` times; the figures are
median wall times, and the ratios are speed-ups over one process measured in the same run. The
Dask figure is ``run_fleet(..., cluster=client)`` on a ``distributed.LocalCluster`` of as many
single-threaded worker processes as ``--workers``, started and warmed (a two-camera fleet, so
the workers have imported bwcsim, as on a cluster that is already running) before the clock
starts; that start-up is reported apart. The load average before each run shows whether a core was free: the
back-ends can only be faster than one process by as much as the other cores are idle. Totals
must be identical on every back-end (exit status 1 otherwise).

    python bench/fleet_parallel.py [--cameras N] [--hours H] [--workers W] [--repeat N] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


def one(backend: str, cameras: int, hours: float, workers: int) -> None:
    """Run one fleet on ``backend`` in this process and print its figures as JSON."""
    from sim.fleet import run_fleet

    startup = 0.0
    client: Any = None
    cluster: Any = None
    if backend == "dask":
        import importlib

        distributed: Any = importlib.import_module("distributed")  # untyped: by name
        t0 = time.perf_counter()
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                           processes=True, dashboard_address=None)
        client = distributed.Client(cluster)
        # Warm the workers (their first task imports bwcsim), as a running cluster would be.
        run_fleet(2, 0.1, seed=0, cluster=client)
        startup = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        result = run_fleet(cameras, hours, seed=0, workers=workers if backend == "pool" else 1,
                           cluster=client)
        wall = time.perf_counter() - t0
    finally:
        if client is not None:
            client.close()
            cluster.close()
    print(json.dumps({"wall_s": wall, "startup_s": startup,
                      "totals": json.dumps(result.to_json(), sort_keys=True)}))


def spawn(backend: str, cameras: int, hours: float, workers: int) -> dict[str, Any]:
    load = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, str(HERE), "--one", backend, str(cameras), str(hours), str(workers)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{backend} run failed:\n{proc.stderr}")
    fig: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    fig["load"] = load
    return fig


def main() -> None:
    import measure

    p = measure.parser(__doc__.splitlines()[0])
    p.add_argument("--cameras", type=int, default=None, help="fleet size (2000)")
    p.add_argument("--hours", type=float, default=None, help="shift length (12)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    p.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        one(args.one[0], int(args.one[1]), float(args.one[2]), int(args.one[3]))
        return
    cameras = args.cameras or (40 if args.quick else 2000)
    hours = args.hours or (1.0 if args.quick else 12.0)
    repeat = args.repeat or (1 if args.quick else 3)
    import importlib.util

    backends = ["single", "pool"]
    if importlib.util.find_spec("distributed") is not None:
        backends.append("dask")
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
    for i in range(repeat):
        order = backends[i % len(backends):] + backends[:i % len(backends)]
        for backend in order:
            runs[backend].append(spawn(backend, cameras, hours, args.workers))
    first = runs["single"][0]["totals"]
    for backend, figs in runs.items():
        if any(f["totals"] != first for f in figs):
            sys.stderr.write(f"FAIL: {backend} totals differ from one process's\n")
            raise SystemExit(1)

    def wall(backend: str) -> float:
        return float(statistics.median(f["wall_s"] for f in runs[backend]))

    single = wall("single")
    names = {"pool": f"--workers {args.workers}", "dask": f"Dask LocalCluster, {args.workers} workers"}
    rows = []
    for backend in backends[1:]:
        rows.append(measure.Row(
            f"fleet {cameras} cameras x {hours:g} h, {names[backend]}, wall", wall(backend), "s",
            baseline=f"one process {single:.2f} s", ratio=single / wall(backend),
            ratio_of="speed-up over one process, medians"))
    rows.append(measure.Row(f"fleet {cameras} cameras x {hours:g} h, one process, wall", single, "s"))
    loads = [f["load"] for figs in runs.values() for f in figs]
    notes = [f"{repeat} runs per back-end, interleaved, each in a fresh process; same totals",
             f"{os.cpu_count()} CPUs; 1-minute load average before the runs "
             f"{min(loads):.1f}-{max(loads):.1f} (a free core needs it below {os.cpu_count()})"]
    if "dask" in runs:
        notes.append("Dask cluster start-up and warm-up (not in the wall figure) "
                     f"{statistics.median(f['startup_s'] for f in runs['dask']):.2f} s")
    measure.emit("fleet_parallel", rows, args.json, notes)


if __name__ == "__main__":
    main()
