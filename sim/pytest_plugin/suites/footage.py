"""P-NOPHANTOM and P-PRIVACY over the corner scenarios, then generated ones, for the controller
under test.

The footage itself is judged (:mod:`sim.world.footage`): nothing recorded that the camera could
not have captured from what it reported, nothing recorded that the policy forbids, and no
recording stopped by a signal or a duplicate. Both properties fail ``bwcsim run``'s verdict, so
a counterexample is saved as a scenario file with its ``bwcsim run`` command, as for P-NOMISS.
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

__all__ = ["test_no_footage_the_camera_could_not_capture", "test_nothing_recorded_that_policy_forbids"]


@pytest.mark.req("P-NOPHANTOM")
@suite_settings()
@with_corners
@given(data=scenarios())
def test_no_footage_the_camera_could_not_capture(
    bwcsim_controller: ControllerFactory, bwcsim_counterexample: Counterexamples, data: dict[str, Any]
) -> None:
    bwcsim_counterexample.check(
        "P-NOPHANTOM", data, check_scenario(data, bwcsim_controller, "P-NOPHANTOM")
    )


@pytest.mark.req("P-PRIVACY")
@suite_settings()
@with_corners
@given(data=scenarios())
def test_nothing_recorded_that_policy_forbids(
    bwcsim_controller: ControllerFactory, bwcsim_counterexample: Counterexamples, data: dict[str, Any]
) -> None:
    bwcsim_counterexample.check(
        "P-PRIVACY", data, check_scenario(data, bwcsim_controller, "P-PRIVACY")
    )
