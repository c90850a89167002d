"""P-DET: the same scenario and seed give a byte-identical trace (and report).

A failure shows the generated scenario as a format-v1 file (``bwcsim_counterexample``), which
``bwcsim run FILE --trace a.jsonl`` twice, then ``cmp``, shows differing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given

from controller.node import ControllerFactory
from sim.search.strategies import parse_scenario_text, scenario_yaml, scenarios
from sim.views.files import write_trace
from sim.views.report import build_report
from sim.world.replay import replay

from ..counterexamples import Counterexamples
from .common import suite_settings

__all__ = ["test_same_scenario_and_seed_give_the_same_trace_bytes"]


@pytest.mark.req("P-DET")
@suite_settings()
@given(data=scenarios())
def test_same_scenario_and_seed_give_the_same_trace_bytes(
    bwcsim_controller: ControllerFactory, bwcsim_counterexample: Counterexamples,
    data: dict[str, Any], tmp_path: Path,
) -> None:
    text = scenario_yaml(data)
    outputs = []
    for run in ("first", "second"):
        # Parsed afresh each time: nothing may leak from one load or run into the next.
        scenario = parse_scenario_text(text, f"{run}.yaml")
        records: list[dict[str, Any]] = []
        result = replay(scenario, bwcsim_controller, records.append)
        path = tmp_path / f"{run}.jsonl"
        write_trace(records, path)
        report = build_report(result)
        outputs.append((path.read_bytes(), msgspec.json.encode(report)))
    problems = []
    if outputs[0][0] != outputs[1][0]:
        problems.append("the two replays wrote different traces")
    if outputs[0][1] != outputs[1][1]:
        problems.append("the two replays gave different reports")
    if outputs[0][0].count(b"\n") == 0:
        problems.append("the trace is empty")
    bwcsim_counterexample.check("P-DET", data, problems)
