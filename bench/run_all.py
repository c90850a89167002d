"""Run every benchmark and print a Markdown table of the figures (for the README).

Runs ``controller_step.py``, ``replay_shift.py`` and ``fleet.py`` from this folder, plus
``fuzz_rate.py``, ``live_latency.py``, ``node_stdio.py`` and ``live_load.py`` when they exist,
each in its own process with ``--json`` (and ``--quick`` when given). A script that does not
speak ``--json`` is run plainly and its last output line goes into the table as a note. Every
ratio compares with a baseline measured in the same run, which is what to read on a shared
machine. With ``--quick`` the
sizes are tiny, so the targets (set for the full workloads) are shown as ``n/a (quick)``.

    python bench/run_all.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import measure

HERE = Path(__file__).resolve().parent
SCRIPTS = ("controller_step", "replay_shift", "fleet", "fuzz_rate", "live_latency", "bound_activities",
           "node_stdio", "live_load")


def run(script: Path, quick: bool) -> dict[str, Any]:
    extra = ["--quick"] if quick else []
    proc = subprocess.run([sys.executable, str(script), "--json", *extra],
                          capture_output=True, text=True)
    if proc.returncode == 0:
        try:
            doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
            if isinstance(doc.get("rows"), list):
                return doc
        except (json.JSONDecodeError, IndexError):
            pass
    # Not our output format: run it plainly and keep what it says.
    proc = subprocess.run([sys.executable, str(script), *extra], capture_output=True, text=True)
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    status = "" if proc.returncode == 0 else f" (exit {proc.returncode})"
    return {"bench": script.stem, "rows": [],
            "notes": [(lines[-1] if lines else "no output") + status]}


QUICK_NOTE = ("Quick mode (--quick): tiny sizes that only prove the scripts run; the targets are "
              "for full-size runs, so they are not judged here (n/a).")


def markdown(docs: list[dict[str, Any]], quick: bool = False) -> str:
    """The results as a Markdown table; in ``quick`` mode targets show as ``n/a (quick)``."""
    m = measure.machine()
    out = [
        f"Machine: {m['nproc']} CPU, {m['cpu']}, Python {m['python']} ({m['platform']}).",
        "",
        "| benchmark | figure | value | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for doc in docs:
        for r in doc["rows"]:
            ratio = "" if r.get("ratio") is None else f"{r['ratio']:.2f} ({r.get('ratio_of', '')})"
            target = r.get("target", "")
            met = {True: "yes", False: "**no**", None: ""}[r.get("met")]
            if quick and target:
                # Tiny sizes cannot meet (or fail) a target set for the full workload.
                target, met = "n/a (quick)", ""
            out.append(f"| {doc['bench']} | {r['figure']} | {measure.fmt(r['value'])} {r['unit']} "
                       f"| {r.get('baseline', '')} | {ratio} | {target} | {met} |")
        if not doc["rows"]:
            out.append(f"| {doc['bench']} | | | | | | {'; '.join(doc.get('notes', []))} |")
    if quick:
        out += ["", QUICK_NOTE]
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: proves the scripts work")
    p.add_argument("--json", action="store_true", help="all results as one JSON list")
    args = p.parse_args()
    docs = []
    for name in SCRIPTS:
        script = HERE / f"{name}.py"
        if script.exists():
            print(f"running {script.name} ...", file=sys.stderr, flush=True)
            docs.append(run(script, args.quick))
    if args.quick:
        print(QUICK_NOTE, file=sys.stderr)
        for doc in docs:
            doc["quick"] = True
            for r in doc["rows"]:
                if r.get("target"):
                    r["met"] = None  # not judged at quick sizes; the target is kept for the record
    if args.json:
        sys.stdout.write(json.dumps(docs) + "\n")
    else:
        sys.stdout.write(markdown(docs, quick=args.quick))


if __name__ == "__main__":
    main()
