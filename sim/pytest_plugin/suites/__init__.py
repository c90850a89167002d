"""The property suites of SPEC §11, shipped with the package so any repository can run them.

Each module here is an ordinary pytest module. Its tests take the controller under test from
the plugin's ``bwcsim_controller`` fixture and never set an example count: the active
hypothesis profile does (``bwcsim-dev``, ``bwcsim-ci``, ``bwcsim-nightly``; see
:mod:`sim.search.profiles`).

Two ways to run them (``docs/ci.md``):

* **Nothing to write.** ``pytest --bwcsim-controller my_fw.adapter:make_node`` makes the plugin
  collect every module listed in :data:`SUITES` (``--bwcsim-properties`` narrows the choice).
* **A test module of your own**, when the suites should live in your tree like any other
  test (this repository's ``tests/properties/`` does this)::

      from sim.pytest_plugin.suites.nomiss import *  # noqa: F403

  Then set ``bwcsim_properties = none`` in the ini file so the plugin does not collect them a
  second time.

The modules are named without a ``test_`` prefix so that pytest never collects them from the
installed package by accident. This package itself imports nothing heavy: the plugin reads
:data:`SUITES` at every pytest start-up.
"""

from __future__ import annotations

#: Suite module (under this package) → the property IDs its tests check, in SPEC order.
SUITES: dict[str, tuple[str, ...]] = {
    "nomiss": ("P-NOMISS", "P-NOSPLIT", "P-TAIL"),
    "footage": ("P-NOPHANTOM", "P-PRIVACY"),
    "machine": ("P-NOMISS", "P-NOSPLIT", "P-NOPHANTOM", "P-PRIVACY", "P-IDEM"),
    "bad_idem": ("P-BAD", "P-IDEM"),
    "det": ("P-DET",),
    "audit": ("P-AUDIT",),
    "said": ("P-REPLY", "P-EVIDENCE", "P-RESOURCE"),
}

#: Every property ID a suite checks, in SPEC order.
PROPERTY_IDS: tuple[str, ...] = (
    "P-NOMISS", "P-NOSPLIT", "P-NOPHANTOM", "P-PRIVACY", "P-TAIL", "P-BAD", "P-IDEM", "P-DET",
    "P-AUDIT", "P-REPLY", "P-EVIDENCE", "P-RESOURCE",
)

__all__ = ["PROPERTY_IDS", "SUITES"]
