"""P-BAD and P-IDEM at the node boundary, for the controller under test.

The suite ships with the package (``sim/pytest_plugin/suites/bad_idem.py``) so that any repository
can run it; importing it here runs it as part of this repository's own tests.
"""

from sim.pytest_plugin.suites.bad_idem import (
    test_a_message_delivered_twice_changes_nothing_but_the_repeated_ack,
    test_garbage_on_any_topic_changes_nothing_and_never_raises,
)

__all__ = [
    "test_a_message_delivered_twice_changes_nothing_but_the_repeated_ack",
    "test_garbage_on_any_topic_changes_nothing_and_never_raises",
]
