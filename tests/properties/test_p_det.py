"""P-DET: the same scenario and seed give a byte-identical trace (and report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings

from controller.node import ControllerFactory
from sim.search.strategies import parse_scenario_text, scenario_yaml, scenarios
from sim.views.files import write_trace
from sim.views.report import build_report
from sim.world.replay import replay


@pytest.mark.req("P-DET")
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=scenarios())
def test_same_scenario_and_seed_give_the_same_trace_bytes(
    controller_factory: ControllerFactory, data: dict[str, Any], tmp_path: Path
) -> None:
    text = scenario_yaml(data)
    outputs = []
    for run in ("first", "second"):
        # Parsed afresh each time: nothing may leak from one load or run into the next.
        scenario = parse_scenario_text(text, f"{run}.yaml")
        records: list[dict[str, Any]] = []
        result = replay(scenario, controller_factory, records.append)
        path = tmp_path / f"{run}.jsonl"
        write_trace(records, path)
        report = build_report(result)
        outputs.append((path.read_bytes(), msgspec.json.encode(report)))
    assert outputs[0][0] == outputs[1][0]
    assert outputs[0][1] == outputs[1][1]
    assert outputs[0][0].count(b"\n") > 0
