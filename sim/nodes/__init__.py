"""The controllers the bench can drive, and how a command line names one.

A controller is anything that satisfies :class:`controller.node.CameraNode`, built per camera by a
:data:`~controller.node.ControllerFactory`. :func:`load_factory` turns the ``--controller``
text of every command into that factory: ``module:factory`` imports a Python factory (the
reference is :data:`~controller.node.DEFAULT_FACTORY`); ``exec:COMMAND`` runs a controller in
any language as a child process speaking the node protocol (:mod:`sim.nodes.stdio`).
"""

from .factory import load_factory

__all__ = ["load_factory"]
