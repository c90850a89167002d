"""P-NOMISS, P-NOSPLIT and P-TAIL over generated scenarios, for the controller under test.

Every test first runs the corner scenarios of :mod:`sim.search.corners` as explicit examples
(so a rule broken in its plain case fails in any profile, whatever the seed), then generated
ones. Each generated example is a whole format-v1 scenario drawn by
:func:`sim.search.strategies.scenarios`,
replayed with the controller under test and judged by the same property functions as
``bwcsim fuzz`` (:func:`sim.search.fuzz.check_scenario`). A failure goes through the
``bwcsim_counterexample`` recorder, so the report shows the problems and the shrunk scenario,
and a P-NOMISS counterexample is saved as a scenario file with its ``bwcsim run`` command.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from controller.node import ControllerFactory
from sim.search.fuzz import check_scenario
from sim.search.strategies import scenarios

from ..counterexamples import Counterexamples
from .common import suite_settings, with_corners

__all__ = [
    "test_no_recording_is_split_inside_a_required_window",
    "test_no_recording_outlasts_its_required_windows",
    "test_no_required_second_is_missed",
]



@pytest.mark.req("P-NOMISS")
@suite_settings()
@with_corners
@given(data=scenarios())
def test_no_required_second_is_missed(
    bwcsim_controller: ControllerFactory, bwcsim_counterexample: Counterexamples, data: dict[str, Any]
) -> None:
    bwcsim_counterexample.check("P-NOMISS", data, check_scenario(data, bwcsim_controller, "P-NOMISS"))


@pytest.mark.req("P-NOSPLIT")
@suite_settings()
@with_corners
@given(data=scenarios())
def test_no_recording_is_split_inside_a_required_window(
    bwcsim_controller: ControllerFactory, bwcsim_counterexample: Counterexamples, data: dict[str, Any]
) -> None:
    bwcsim_counterexample.check("P-NOSPLIT", data, check_scenario(data, bwcsim_controller, "P-NOSPLIT"))


@pytest.mark.req("P-TAIL")
@suite_settings()
@with_corners
@given(data=scenarios())
def test_no_recording_outlasts_its_required_windows(
    bwcsim_controller: ControllerFactory, bwcsim_counterexample: Counterexamples, data: dict[str, Any]
) -> None:
    bwcsim_counterexample.check("P-TAIL", data, check_scenario(data, bwcsim_controller, "P-TAIL"))
