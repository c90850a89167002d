"""P-NOMISS search rate: examples/s of ``bwcsim fuzz`` and the time for 2,000 examples.

The search (:func:`sim.search.fuzz.search`, reference controller, seed 0) generates scenarios of up
to 50 steps, validates and replays each and judges it with the oracle. The baseline, measured
in the same run, is a bare replay of *the same scenarios* (already generated and validated):
the ratio search rate / bare replay rate says what generation and validation cost on top of
the simulation. SPEC §13 target: the ``ci`` profile (2,000 examples) in at most 60 s on one core.

    python bench/fuzz_rate.py [--quick] [--repeat N] [--json]
"""

from __future__ import annotations

from typing import Any

import measure

from controller.reference import make_node
from sim.search.fuzz import search
from sim.search.strategies import load_scenario_dict, scenarios
from sim.world.replay import replay

TARGET_S = 60.0
CI_EXAMPLES = 2000


def main() -> None:
    args = measure.parser(__doc__.splitlines()[0]).parse_args()
    examples = 100 if args.quick else CI_EXAMPLES
    repeat = args.repeat or 1

    drawn: list[dict[str, Any]] = []

    def remember(data: dict[str, Any]) -> dict[str, Any]:
        drawn.append(data)
        return data

    recording = scenarios().map(remember)
    outcomes = []
    for _ in range(repeat):
        drawn.clear()
        outcomes.append(search(make_node, examples=examples, seed=0, strategy=recording))
    # Rates count the search up to a failure, if the reference controller shows one (shrinking
    # replays are not search); the notes say so.
    outcome = min(outcomes, key=lambda o: o.search_seconds / max(1, o.examples))
    searched = drawn[: outcome.examples]
    loaded = [load_scenario_dict(data) for data in searched]
    replay_s = measure.best_of(lambda: [replay(sc) for sc in loaded], repeat)
    steps = sum(len(data.get("timeline", [])) for data in searched) / max(1, len(searched))

    search_rate = outcome.examples_per_s
    replay_rate = len(loaded) / replay_s
    for_ci = CI_EXAMPLES / search_rate
    rows = [
        measure.Row("P-NOMISS search rate", search_rate, "examples/s",
                    baseline=f"bare replay of the same scenarios {replay_rate:,.0f} /s",
                    ratio=search_rate / replay_rate, ratio_of="search rate / bare replay rate"),
        measure.Row(f"time for {CI_EXAMPLES:,} examples (ci profile)", for_ci, "s",
                    target=f"<= {TARGET_S:g} s", met=for_ci <= TARGET_S),
        measure.Row("mean timeline entries per example", steps, "entries"),
    ]
    notes = [f"{outcome.examples} examples measured (seed 0, up to 50 steps each)"]
    if examples < CI_EXAMPLES or not outcome.passed:
        notes.append(f"{CI_EXAMPLES:,}-example time extrapolated from the measured rate")
    if not outcome.passed:
        notes.append("the reference controller FAILED P-NOMISS: " + "; ".join(outcome.problems))
    measure.emit("fuzz_rate", rows, args.json, notes)


if __name__ == "__main__":
    main()
