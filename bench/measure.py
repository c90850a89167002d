"""Shared by the benchmark scripts: timing, the machine description, and result output.

Benchmarks run on shared, noisy machines, so every script measures a *baseline in the same run*
and prints a ratio to it next to the absolute figures; absolute times are for the record only.
Each figure is the best (or the median, where noted) of several repetitions.

A script prints its figures for people, or with ``--json`` one JSON object on stdout for
``bench/run_all.py``::

    {"bench": "...", "machine": {...}, "rows": [{"figure", "value", "unit", "baseline",
     "ratio", "target", "met"}, ...]}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))


@dataclass(slots=True)
class Row:
    """One measured figure, with the baseline it is compared to and the ratio."""

    figure: str
    value: float
    unit: str
    baseline: str = ""  # e.g. "bare transitions.Machine: 120,000 triggers/s"
    ratio: float | None = None
    ratio_of: str = ""  # what the ratio means, e.g. "step rate / Machine rate"
    target: str = ""
    met: bool | None = None


def machine() -> dict[str, Any]:
    """nproc, CPU model, Python version and platform of this machine."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call (``perf_counter``)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` calls, in seconds: the run least disturbed by the neighbours."""
    return min(timed(fn) for _ in range(max(1, repeat)))


def median_of(fn: Callable[[], object], repeat: int) -> float:
    return statistics.median(timed(fn) for _ in range(max(1, repeat)))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes: proves the script works")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--repeat", type=int, default=None, help="repetitions per figure")
    return p


def emit(bench: str, rows: list[Row], as_json: bool, notes: list[str] | None = None) -> None:
    """Print the rows for people, or as one JSON object."""
    if as_json:
        doc = {"bench": bench, "machine": machine(), "rows": [asdict(r) for r in rows],
               "notes": notes or []}
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    m = machine()
    print(f"# {bench}  ({m['nproc']} cpu, {m['cpu']}, Python {m['python']})")
    for r in rows:
        line = f"{r.figure}: {fmt(r.value)} {r.unit}"
        if r.baseline:
            line += f"  | baseline {r.baseline}"
        if r.ratio is not None:
            line += f"  | ratio {r.ratio:.2f} ({r.ratio_of})"
        if r.target:
            verdict = "" if r.met is None else (" met" if r.met else " NOT met")
            line += f"  | target {r.target}{verdict}"
        print(line)
    for note in notes or []:
        print(f"note: {note}")


def fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"
