"""``--controller module:factory``: import a team's controller factory by name."""

from __future__ import annotations

import importlib
import os
import sys

from controller.errors import InvalidInput
from controller.node import ControllerFactory


def load_factory(spec: str) -> ControllerFactory:
    """Import a controller factory named ``module:attribute`` (``InvalidInput`` if it cannot)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidInput(f"expected module:factory, got {spec!r}", "controller")
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
