"""The camera controller: a pure core (no I/O, no clock, no event loop) and its node contract.

The theory of operation is at the top of :mod:`controller.machine` (the state table) and
:mod:`controller.camera` (why each trigger fires); :mod:`controller.node` is what drives it.
"""
