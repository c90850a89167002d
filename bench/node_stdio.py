"""Node protocol over stdio: the reference controller as a child process vs in-process.

The step is what a driver does per delivery: ``on_message`` then ``next_deadline``, over a busy
shift's ~1,000 inbound messages (``workload.py``). In-process it is the reference node itself
(the baseline, measured in the same run, interleaved); over stdio it is the same node served by
``python -m controller.serve`` through ``--controller exec:`` -- every step one request line,
one answer line, two context switches. SPEC §13 target: the stdio step rate is at least 25 % of
the in-process one. For the record, also: the whole busy-shift replay both ways, and the C
example (``examples/c-controller/bwc-fixed``) over stdio when it has been built.

    python bench/node_stdio.py [--quick] [--repeat N] [--json]
"""

from __future__ import annotations

import sys
from pathlib import Path

import measure
import workload

from controller.node import CameraSetup, ControllerFactory
from controller.reference import make_node
from sim.nodes.stdio import ExecFactory
from sim.world.replay import replay

TARGET_RATIO = 0.25
C_FIXED = measure.ROOT / "examples" / "c-controller" / "bwc-fixed"


def step_seconds(factory: ControllerFactory, setup: CameraSetup, msgs: list[workload.Message]) -> float:
    node = factory(setup)
    node.start(0.0)
    on_message, next_deadline = node.on_message, node.next_deadline

    def feed() -> None:
        for topic, payload, at in msgs:
            on_message(topic, payload, at)
            next_deadline()

    seconds = measure.timed(feed)
    node.finish(msgs[-1][2] if msgs else 0.0)
    return seconds


def main() -> None:
    args = measure.parser(__doc__.splitlines()[0]).parse_args()
    repeat = args.repeat or (3 if args.quick else 15)
    scenario = workload.dense_shift(1.0 if args.quick else 12.0)
    setup, msgs = workload.camera_messages(scenario)
    served = ExecFactory(f"{sys.executable} -m controller.serve")
    served.start()
    c_fixed = ExecFactory(str(C_FIXED)) if C_FIXED.exists() else None
    if c_fixed is not None:
        c_fixed.start()

    local_rates, stdio_rates, c_rates = [], [], []
    for _ in range(repeat):  # interleaved, so both see the same neighbours
        local_rates.append(len(msgs) / step_seconds(make_node, setup, msgs))
        stdio_rates.append(len(msgs) / step_seconds(served, setup, msgs))
        if c_fixed is not None:
            c_rates.append(len(msgs) / step_seconds(c_fixed, setup, msgs))
    local, stdio = max(local_rates), max(stdio_rates)
    ratio = stdio / local
    replay_local = measure.best_of(lambda: replay(scenario), max(3, repeat // 3))
    replay_stdio = measure.best_of(lambda: replay(scenario, served), max(3, repeat // 3))

    rows = [
        measure.Row("stdio step, reference child (python -m controller.serve)", stdio, "events/s",
                    baseline=f"in-process step {measure.fmt(local)} events/s",
                    ratio=ratio, ratio_of="stdio / in-process step rate",
                    target=">= 25 % of the in-process rate", met=ratio >= TARGET_RATIO),
        measure.Row("stdio round trip, per event", 1e6 / stdio, "us",
                    baseline=f"in-process step {measure.fmt(1e6 / local)} us"),
        measure.Row("replay of the busy shift over stdio", replay_stdio * 1e3, "ms",
                    baseline=f"in-process {measure.fmt(replay_local * 1e3)} ms",
                    ratio=replay_stdio / replay_local, ratio_of="stdio / in-process"),
    ]
    notes = [f"{len(msgs)} events per shift, best of {repeat}"]
    if c_rates:
        rows.append(measure.Row("stdio step, C child (examples/c-controller/bwc-fixed)",
                                max(c_rates), "events/s",
                                baseline=f"in-process Python step {measure.fmt(local)} events/s",
                                ratio=max(c_rates) / local, ratio_of="C over stdio / in-process"))
    else:
        notes.append(f"C example not measured: build it with make -C {Path('examples/c-controller')}")
    served.close()
    if c_fixed is not None:
        c_fixed.close()
    measure.emit("node_stdio", rows, args.json, notes)


if __name__ == "__main__":
    main()
