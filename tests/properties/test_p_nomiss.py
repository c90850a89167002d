"""P-NOMISS, P-NOSPLIT and P-TAIL over generated scenarios, for the controller under test.

The suite ships with the package (``sim/pytest_plugin/suites/nomiss.py``) so that any repository
can run it; importing it here runs it as part of this repository's own tests.
"""

from sim.pytest_plugin.suites.nomiss import (
    test_no_recording_is_split_inside_a_required_window,
    test_no_recording_outlasts_its_required_windows,
    test_no_required_second_is_missed,
)

__all__ = [
    "test_no_recording_is_split_inside_a_required_window",
    "test_no_recording_outlasts_its_required_windows",
    "test_no_required_second_is_missed",
]
