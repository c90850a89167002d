"""Searching for failures: hypothesis strategies, the invariants every run must keep, the seeded
property search (``bwcsim fuzz``), the exhaustive explorer (``bwcsim explore``) and the profiles.

:mod:`.strategies` generates scenario documents; :mod:`.invariants` states the properties once
as plain functions (called from the pytest suites, fuzz and explore alike); :mod:`.fuzz` and
:mod:`.explore` drive them and save a shrunk failure as a scenario file; :mod:`.profiles` holds
the ``dev``, ``ci`` and ``nightly`` budgets shared with the pytest suites. Every example is an
ordinary scenario replayed by :mod:`sim.world.replay` and judged by the oracle, so a failure
found here is a file ``bwcsim run`` replays the same way.
"""
