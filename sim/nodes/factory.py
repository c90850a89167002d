"""``--controller``: turn the text of the option into a controller factory.

* ``module:factory`` imports a team's Python factory by name;
* ``exec:COMMAND`` runs a controller in any language as a child process speaking the node
  protocol on its stdin/stdout (:mod:`sim.nodes.stdio`, :mod:`controller.wire`).
"""

from __future__ import annotations

import importlib
import os
import sys

from controller.errors import InvalidInput
from controller.node import ControllerFactory

EXEC = "exec:"


def load_factory(spec: str) -> ControllerFactory:
    """The factory ``spec`` names (``InvalidInput`` if there is none).

    ``exec:`` factories are started (first child, handshake) before this returns, so a command
    that cannot run is reported here; the same command in the same process gives the same
    factory, whose children then serve every camera.
    """
    if spec.startswith(EXEC):
        from .stdio import exec_factory

        return exec_factory(spec[len(EXEC):].strip())
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidInput(f"expected module:factory or exec:COMMAND, got {spec!r}", "controller")
    # As `python -m` does: a team's adapter module in the folder it runs from is importable
    # without installing it (the console script's own folder is the venv's bin/).
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"cannot import {module_name!r}: {exc}", "controller") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InvalidInput(f"{module_name!r} has no callable {attr!r}", "controller")
    result: ControllerFactory = factory
    return result
