"""P-AUDIT: the audit chain verifies after every run; altering any entry breaks it.

The audit log is internal to a controller (it is not on the bus), so this suite reads it
through :func:`controller.audit.trail_of`: the reference node's own log, or the log of a
controller in a child process that accepted the node protocol's ``audit`` feature
(``exec:python -m controller.serve``, ``exec:examples/c-controller/bwc-fixed``). A controller
that keeps none the bench can read is skipped, with the reason.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.audit import NoAuditTrail, trail_of
from controller.node import ControllerFactory
from sim.search.invariants import audit_problems
from sim.search.strategies import load_scenario_dict, scenarios
from sim.world.replay import CameraRun, replay

from ..counterexamples import Counterexamples
from .common import suite_settings

__all__ = ["test_audit_chain_verifies_and_any_alteration_breaks_it"]

FIELDS = ("seq", "at", "kind", "data", "prev", "hash")


@pytest.mark.req("P-AUDIT")
@suite_settings()
@given(data=scenarios(), index=st.integers(0, 10_000), field=st.sampled_from(FIELDS))
def test_audit_chain_verifies_and_any_alteration_breaks_it(
    bwcsim_controller: ControllerFactory, bwcsim_counterexample: Counterexamples,
    data: dict[str, Any], index: int, field: str,
) -> None:
    result = replay(load_scenario_dict(data), bwcsim_controller)
    problems: list[str] = []
    for cam, run in result.cameras.items():
        assert isinstance(run, CameraRun)  # a replay drives a node per camera
        try:
            trail = trail_of(run.node)
        except NoAuditTrail as why:
            pytest.skip(str(why))
        if len(trail) == 0:
            problems.append(f"{cam}: the audit log is empty")
        problems.extend(audit_problems(cam, trail.entries, index, field, head=trail.head))
    bwcsim_counterexample.check("P-AUDIT", data, problems)
