"""P-REPLY, P-EVIDENCE and P-RESOURCE over generated scenarios: what the camera *says*, judged.

The scenarios are the corner scenarios (:mod:`sim.search.corners`), then those of the P-NOMISS
suite (:func:`sim.search.strategies.scenarios`); each is replayed with the controller under
test, and the oracle's judgement of its replies, of the recording metadata and alerts it
published and of the battery and storage it reported (:mod:`sim.world.replies`,
:mod:`sim.world.evidence`, SPEC §8b) must find nothing. A camera that
records every required second can still fail here: an acked stop it did not obey, a NACK it
never sent, a battery that drains at the wrong rate, storage freed before its upload was
confirmed, a wrong incident id or alert span.
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
    "test_every_delivery_gets_the_reply_the_spec_requires",
    "test_published_evidence_is_true_to_the_facts",
    "test_reported_battery_and_storage_follow_the_model",
]


@pytest.mark.req("P-REPLY")
@suite_settings()
@with_corners
@given(data=scenarios())
def test_every_delivery_gets_the_reply_the_spec_requires(
    bwcsim_controller: ControllerFactory, bwcsim_counterexample: Counterexamples, data: dict[str, Any]
) -> None:
    bwcsim_counterexample.check("P-REPLY", data, check_scenario(data, bwcsim_controller, "P-REPLY"))


@pytest.mark.req("P-EVIDENCE")
@suite_settings()
@with_corners
@given(data=scenarios())
def test_published_evidence_is_true_to_the_facts(
    bwcsim_controller: ControllerFactory, bwcsim_counterexample: Counterexamples, data: dict[str, Any]
) -> None:
    bwcsim_counterexample.check(
        "P-EVIDENCE", data, check_scenario(data, bwcsim_controller, "P-EVIDENCE")
    )


@pytest.mark.req("P-RESOURCE")
@suite_settings()
@with_corners
@given(data=scenarios())
def test_reported_battery_and_storage_follow_the_model(
    bwcsim_controller: ControllerFactory, bwcsim_counterexample: Counterexamples, data: dict[str, Any]
) -> None:
    bwcsim_counterexample.check(
        "P-RESOURCE", data, check_scenario(data, bwcsim_controller, "P-RESOURCE")
    )
