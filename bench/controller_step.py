"""Controller step rate: decode + handle + encode for one camera, vs a bare transitions Machine.

The step is :meth:`controller.reference.ReferenceNode.on_message` fed a busy shift's inbound
messages (see ``workload.py``) in order, timers included (the camera runs them lazily inside
each step). The baseline, measured in the same run, is a bare ``transitions.Machine`` built
from the same state table (``controller.machine.TRANSITIONS``), toggling ``activate`` /
``release``: the cost of the state machine library alone. SPEC §13 target: the step rate is at
least 50 % of the bare trigger rate.

    python bench/controller_step.py [--quick] [--repeat N] [--json]
"""

from __future__ import annotations

import measure
import workload
from transitions import Machine

from controller.machine import TRANSITIONS, State
from controller.reference import make_node

TARGET_RATIO = 0.5


class _Model:
    """A plain model for the bare Machine (no callbacks: the library's own cost only)."""


def bare_trigger_seconds(triggers: int) -> float:
    model = _Model()
    Machine(model=model, states=State, transitions=TRANSITIONS, initial=State.pre_buffer,
            auto_transitions=False)
    activate, release = model.activate, model.release  # type: ignore[attr-defined]
    pairs = triggers // 2

    def toggle() -> None:
        for _ in range(pairs):
            activate()
            release()

    return measure.timed(toggle)


def main() -> None:
    args = measure.parser(__doc__.splitlines()[0]).parse_args()
    repeat = args.repeat or (3 if args.quick else 15)
    setup, msgs = workload.camera_messages(workload.dense_shift(1.0 if args.quick else 12.0))

    def step_seconds() -> float:
        node = make_node(setup)
        node.start(0.0)
        on_message = node.on_message

        def feed() -> None:
            for topic, payload, at in msgs:
                on_message(topic, payload, at)

        return measure.timed(feed)

    triggers = 20_000 if not args.quick else 2_000
    step_rates, bare_rates = [], []
    for _ in range(repeat):  # interleaved, so both see the same neighbours
        step_rates.append(len(msgs) / step_seconds())
        bare_rates.append(triggers / bare_trigger_seconds(triggers))
    step, bare = max(step_rates), max(bare_rates)
    ratio = step / bare
    build = measure.best_of(lambda: make_node(setup), repeat * 20)

    def bare_machine() -> None:
        Machine(model=_Model(), states=State, transitions=TRANSITIONS, initial=State.pre_buffer,
                auto_transitions=False)

    bare_build = measure.best_of(bare_machine, repeat * 20)
    rows = [
        measure.Row("controller step, one camera", step, "events/s",
                    baseline=f"bare transitions.Machine {measure.fmt(bare)} triggers/s",
                    ratio=ratio, ratio_of="step rate / Machine trigger rate",
                    target=">= 50 % of the Machine rate", met=ratio >= TARGET_RATIO),
        measure.Row("camera node construction", build * 1e6, "us",
                    baseline=f"bare Machine construction {measure.fmt(bare_build * 1e6)} us",
                    ratio=build / bare_build, ratio_of="node / bare Machine"),
    ]
    measure.emit("controller_step", rows, args.json,
                 [f"{len(msgs)} events per shift, best of {repeat}"])


if __name__ == "__main__":
    main()
