"""P-AUDIT: the reference audit chain verifies after every run; altering any entry breaks it.

The audit log is internal to a controller (it is not on the bus), so this suite needs a node
that exposes the reference layout, ``node.camera.audit``; other controllers are skipped.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.audit import AuditLog
from controller.node import ControllerFactory
from sim.search.invariants import audit_problems
from sim.search.strategies import load_scenario_dict, scenarios
from sim.world.replay import replay

from ..counterexamples import Counterexamples
from .common import suite_settings

__all__ = ["test_audit_chain_verifies_and_any_alteration_breaks_it"]

FIELDS = ("seq", "at", "kind", "data", "prev", "hash")


def _audit_of(node: object) -> AuditLog | None:
    log = getattr(getattr(node, "camera", None), "audit", None)
    return log if isinstance(log, AuditLog) else None


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
        log = _audit_of(run.node)
        if log is None:
            pytest.skip("the controller under test exposes no reference audit log")
        if len(log) == 0:
            problems.append(f"{cam}: the audit log is empty")
        problems.extend(audit_problems(cam, log.entries, index, field))
    bwcsim_counterexample.check("P-AUDIT", data, problems)
