"""P-NOMISS and P-NOSPLIT over generated scenarios, for the controller under test."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from controller.node import ControllerFactory
from sim.search.invariants import no_miss, no_split
from sim.search.strategies import load_scenario_dict, scenarios
from sim.world.replay import replay

# Generated scenarios are large by design; the data-size check would only slow the search.
_SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.req("P-NOMISS")
@_SETTINGS
@given(data=scenarios())
def test_no_required_second_is_missed(controller_factory: ControllerFactory,
                                      data: dict[str, Any]) -> None:
    result = replay(load_scenario_dict(data), controller_factory)
    assert no_miss(result) == []
    assert result.verdict == "pass"


@pytest.mark.req("P-NOSPLIT")
@_SETTINGS
@given(data=scenarios())
def test_no_recording_is_split_inside_a_required_window(
    controller_factory: ControllerFactory, data: dict[str, Any]
) -> None:
    result = replay(load_scenario_dict(data), controller_factory)
    assert no_split(result) == []
