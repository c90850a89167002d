"""``python -m controller.serve``: the reference controller as a child process (node protocol v1).

The one module of ``controller/`` that does I/O, and all it does is this loop: read a request
line from stdin, hand it to :class:`controller.wire.NodeServer` (pure), write the answer line to
stdout and flush, until ``bye`` or end of input. Everything it knows about cameras is in the
protocol module; this is the thin shell a firmware team writes in its own language (the C
example in ``examples/c-controller/`` has the same loop in ``main``).

    bwcsim run scenario.yaml --controller "exec:python -m controller.serve"

``--factory module:factory`` serves another Python controller factory the same way (to check
a Python prototype over the process boundary before porting it), ``--max-cameras N`` announces
that one child serves at most ``N`` cameras at a time, and ``--no-audit`` declines the
protocol's ``audit`` feature (for a factory whose nodes keep no audit log the bench can read;
by default the log of :func:`controller.audit.trail_of` is served).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import BinaryIO

from .node import DEFAULT_FACTORY, ControllerFactory
from .wire import FEATURES, NodeServer


def serve(server: NodeServer, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Answer every request line of ``stdin`` on ``stdout``; 0 after ``bye`` or end of input."""
    readline, write, flush = stdin.readline, stdout.write, stdout.flush
    while not server.done:
        line = readline()
        if not line:
            break
        if line.strip():
            write(server.answer(line))
            flush()
    return 0


def _load(spec: str) -> ControllerFactory:
    module_name, _, attr = spec.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    if not callable(factory):
        raise SystemExit(f"controller.serve: {spec} is not callable")
    result: ControllerFactory = factory
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m controller.serve",
        description="Serve a controller over the bwcsim node protocol (v1) on stdin/stdout.",
    )
    parser.add_argument("--factory", default=DEFAULT_FACTORY, metavar="MODULE:FACTORY",
                        help=f"controller factory to serve (default: {DEFAULT_FACTORY})")
    parser.add_argument("--max-cameras", type=int, default=None, metavar="N",
                        help="serve at most N cameras at a time (default: no limit)")
    parser.add_argument("--no-audit", action="store_true",
                        help="decline the audit feature (the factory's nodes keep no audit log)")
    args = parser.parse_args(argv)
    name = "bwcsim reference" if args.factory == DEFAULT_FACTORY else args.factory
    features = tuple(f for f in FEATURES if not (args.no_audit and f == "audit"))
    server = NodeServer(_load(args.factory), name, args.max_cameras, features)
    return serve(server, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
