"""Moved to :mod:`sim.search.strategies`; this name stays importable for existing property suites.

``import sim.strategies`` gives the very same module object as ``import sim.search.strategies``.
"""

import sys

from sim.search import strategies as _moved

sys.modules[__name__] = _moved
