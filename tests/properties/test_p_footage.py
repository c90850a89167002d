"""P-NOPHANTOM and P-PRIVACY over generated scenarios, for the controller under test.

The suite ships with the package (``sim/pytest_plugin/suites/footage.py``) so that any
repository can run it; importing it here runs it as part of this repository's own tests.
"""

from sim.pytest_plugin.suites.footage import (
    test_no_footage_the_camera_could_not_capture,
    test_nothing_recorded_that_policy_forbids,
)

__all__ = ["test_no_footage_the_camera_could_not_capture", "test_nothing_recorded_that_policy_forbids"]
