"""P-NOMISS, P-NOSPLIT and P-IDEM as a rule-based state machine on one node, for the controller under test.

The suite ships with the package (``sim/pytest_plugin/suites/machine.py``) so that any repository
can run it; importing it here runs it as part of this repository's own tests.
"""

from sim.pytest_plugin.suites.machine import (
    test_recording_machine,
)

__all__ = ["test_recording_machine"]
