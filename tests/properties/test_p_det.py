"""P-DET: the same scenario and seed give byte-identical traces, for the controller under test.

The suite ships with the package (``sim/pytest_plugin/suites/det.py``) so that any repository
can run it; importing it here runs it as part of this repository's own tests.
"""

from sim.pytest_plugin.suites.det import (
    test_same_scenario_and_seed_give_the_same_trace_bytes,
)

__all__ = ["test_same_scenario_and_seed_give_the_same_trace_bytes"]
