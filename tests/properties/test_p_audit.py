"""P-AUDIT: the audit chain verifies; altering any entry breaks it, for the controller under test.

The suite ships with the package (``sim/pytest_plugin/suites/audit.py``) so that any repository
can run it; importing it here runs it as part of this repository's own tests.
"""

from sim.pytest_plugin.suites.audit import (
    test_audit_chain_verifies_and_any_alteration_breaks_it,
)

__all__ = ["test_audit_chain_verifies_and_any_alteration_breaks_it"]
