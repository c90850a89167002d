"""Moved to :mod:`sim.search.invariants`; this name stays importable for existing property suites.

``import sim.invariants`` gives the very same module object as ``import sim.search.invariants``.
"""

import sys

from sim.search import invariants as _moved

sys.modules[__name__] = _moved
