"""P-AUDIT: the reference audit chain verifies after every run; altering any entry breaks it.

The audit log is internal to a controller (it is not on the bus), so this suite needs a node
that exposes the reference layout, ``node.camera.audit``; other controllers are skipped.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.audit import AuditLog
from controller.node import ControllerFactory
from sim.search.invariants import audit_problems
from sim.search.strategies import load_scenario_dict, scenarios
from sim.world.replay import CameraRun, replay

FIELDS = ("seq", "at", "kind", "data", "prev", "hash")


def _audit_of(node: object) -> AuditLog | None:
    log = getattr(getattr(node, "camera", None), "audit", None)
    return log if isinstance(log, AuditLog) else None


@pytest.mark.req("P-AUDIT")
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=scenarios(), index=st.integers(0, 10_000), field=st.sampled_from(FIELDS))
def test_audit_chain_verifies_and_any_alteration_breaks_it(
    controller_factory: ControllerFactory, data: dict[str, Any], index: int, field: str
) -> None:
    result = replay(load_scenario_dict(data), controller_factory)
    for cam, run in result.cameras.items():
        assert isinstance(run, CameraRun)  # a replay drives a node per camera
        log = _audit_of(run.node)
        if log is None:
            pytest.skip("the controller under test exposes no reference audit log")
        assert len(log) > 0
        assert audit_problems(cam, log.entries, index, field) == []
