"""P-REPLY, P-EVIDENCE and P-RESOURCE over generated scenarios, for the controller under test.

The suite ships with the package (``sim/pytest_plugin/suites/said.py``) so that any repository
can run it; importing it here runs it as part of this repository's own tests.
"""

from sim.pytest_plugin.suites.said import (
    test_every_delivery_gets_the_reply_the_spec_requires,
    test_published_evidence_is_true_to_the_facts,
    test_reported_battery_and_storage_follow_the_model,
)

__all__ = [
    "test_every_delivery_gets_the_reply_the_spec_requires",
    "test_published_evidence_is_true_to_the_facts",
    "test_reported_battery_and_storage_follow_the_model",
]
