"""Scenario replay of one camera's busy 12-hour shift (about 1,000 events), in ms per replay.

The shift is generated (see ``workload.py``), written as a scenario file into a temporary
folder and loaded back with the ordinary loader, so the replay is exactly what ``bwcsim run``
does after parsing: scheduler, simulated broker with latency, the reference controller, the
observer and the oracle. The baselines, measured in the same run, are the bare controller step
for the same events (no bus, no oracle; the ratio is the harness's overhead factor) and a bare
``transitions.Machine`` trigger rate (the replay's events per second against it).
SPEC §13 target: at most 50 ms per replay.

    python bench/replay_shift.py [--quick] [--repeat N] [--json]
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import measure
import workload
from controller_step import bare_trigger_seconds

from controller.reference import make_node
from sim.fleet import scenario_yaml
from sim.world.replay import replay
from sim.world.scenario import load_scenario

TARGET_MS = 50.0


def main() -> None:
    args = measure.parser(__doc__.splitlines()[0]).parse_args()
    repeat = args.repeat or (3 if args.quick else 15)
    hours = 1.0 if args.quick else 12.0
    generated = workload.dense_shift(hours)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "busy_shift.yaml"
        path.write_text(scenario_yaml(generated), encoding="utf-8")
        load_s = measure.best_of(lambda: load_scenario(path), max(1, repeat // 3))
        scenario = load_scenario(path)
    setup, msgs = workload.camera_messages(scenario)

    def bare_step() -> None:
        node = make_node(setup)
        node.start(0.0)
        for topic, payload, at in msgs:
            node.on_message(topic, payload, at)

    replays, steps = [], []
    for _ in range(repeat):  # interleaved, so both see the same neighbours
        replays.append(measure.timed(lambda: replay(scenario)))
        steps.append(measure.timed(bare_step))
    best, med, step = min(replays), statistics.median(replays), min(steps)
    result = replay(scenario)
    events = sum(len(run.acks) for run in result.cameras.values())
    triggers = 20_000
    machine_rate = triggers / min(bare_trigger_seconds(triggers) for _ in range(3))
    rows = [
        measure.Row(f"replay, one camera, {hours:g} h busy shift", best * 1e3, "ms",
                    baseline=f"bare controller step for the same events {step * 1e3:.1f} ms",
                    ratio=best / step, ratio_of="replay / bare step",
                    target="<= 50 ms", met=best * 1e3 <= TARGET_MS),
        measure.Row("replay, median", med * 1e3, "ms"),
        measure.Row("replay throughput, events through bus, controller and oracle", events / best,
                    "events/s", baseline=f"bare transitions.Machine {machine_rate:,.0f} triggers/s",
                    ratio=events / best / machine_rate, ratio_of="replay events/s / Machine rate"),
        measure.Row("scenario file load", load_s * 1e3, "ms",
                    baseline=f"replay {best * 1e3:.1f} ms", ratio=load_s / best,
                    ratio_of="load / replay"),
    ]
    measure.emit("replay_shift", rows, args.json, [
        f"{events} events delivered, {len(scenario.timeline)} timeline entries, verdict "
        f"{result.verdict}; best and median of {repeat}",
    ])


if __name__ == "__main__":
    main()
