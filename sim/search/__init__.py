"""Searching for failures: hypothesis strategies, the invariants every run must keep, the seeded
property search (``bwcsim fuzz``), the exhaustive explorer (``bwcsim explore``) and the profiles.

:mod:`.strategies` generates scenario documents; :mod:`.invariants` states the properties once
as plain functions (called from the pytest suites, fuzz and explore alike); :mod:`.fuzz` and
:mod:`.explore` drive them and save a shrunk failure as a scenario file.
"""
