"""The layout is the architecture: imports point down, the core is pure, old import paths work.

Layers, lowest first: ``controller`` → ``sim.world`` / ``sim.nodes`` / ``sim.spec`` → ``sim.views`` →
``sim.search`` / ``sim.fleet`` / ``sim.live`` / ``sim.studio`` → ``sim.check`` → ``sim.cli`` /
``sim.pytest_plugin``. A module may import its own layer or a lower one, never a higher one, and
no set of modules imports itself in a circle. Read statically with :mod:`ast` (lazy imports
inside functions included), so a test fails on the import that breaks the picture, not on a
symptom of it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Package prefix → layer number. The longest matching prefix wins.
LAYERS: dict[str, int] = {
    "controller": 0,
    "sim.world": 1,
    "sim.nodes": 1,
    "sim.spec": 1,
    "sim.views": 2,
    "sim.search": 3,
    "sim.fleet": 3,
    "sim.live": 3,
    "sim.studio": 3,
    "sim.check": 4,
    "sim.cli": 5,
    "sim.pytest_plugin": 5,
    "sim.__main__": 6,
}

#: Old public import paths that must keep working: alias → real module.
ALIASES = {"sim.strategies": "sim.search.strategies", "sim.invariants": "sim.search.invariants"}

#: The pure core may import none of these (no I/O, no clock, no event loop).
IMPURE = {"asyncio", "socket", "time", "datetime", "os", "sys", "subprocess", "threading",
          "random", "aiomqtt", "paho", "sim"}

#: Modules of ``controller/`` exempt from purity, each with the reason.
IO_SHELLS = {
    # ``python -m controller.serve``: the stdin/stdout loop of the node protocol around the
    # pure ``controller.wire.NodeServer`` -- the same thin shell a firmware team writes around
    # its own core (a child process must read and write its pipes somewhere).
    "controller.serve",
}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for top in ("controller", "sim"):
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


def _imports(name: str, path: Path) -> set[str]:
    """Every module name ``path`` imports, absolute, at any depth of the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _layer(module: str) -> int | None:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    return None if best is None else LAYERS[best]


@pytest.mark.req("ARCH")
def test_every_import_points_down() -> None:
    mods = _modules()
    upward = []
    for name, path in mods.items():
        if name in ALIASES:
            continue
        own = _layer(name)
        assert own is not None or name == "sim", f"{name} is in no layer: add it to LAYERS"
        for target in _imports(name, path) & set(mods):
            theirs = _layer(target)
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{name} (layer {own}) imports {target} (layer {theirs})")
    assert upward == []


@pytest.mark.req("ARCH")
def test_no_import_cycle() -> None:
    mods = _modules()
    edges = {
        name: {t for t in _imports(name, path) & set(mods)
               if t != name and not t.startswith(name + ".") and not name.startswith(t + ".")}
        for name, path in mods.items()
    }
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(mods):
        if name not in state:
            visit(name, [name])
    assert cycles == []


@pytest.mark.req("ARCH")
def test_controller_is_pure() -> None:
    offending = []
    for name, path in _modules().items():
        if not name.startswith("controller") or name in IO_SHELLS:
            continue
        for target in _imports(name, path):
            if target.split(".")[0] in IMPURE:
                offending.append(f"{name} imports {target}")
    assert offending == []


@pytest.mark.req("ARCH")
def test_io_shells_are_the_only_impure_controller_modules() -> None:
    """Each exemption is still needed (it does import something impure) and still exists."""
    mods = _modules()
    for name in IO_SHELLS:
        assert name in mods, f"{name} is exempt from purity but does not exist"
        impure = {t for t in _imports(name, mods[name]) if t.split(".")[0] in IMPURE}
        assert impure, f"{name} is exempt from purity but imports nothing impure: drop it"


@pytest.mark.req("ARCH")
@pytest.mark.parametrize(("alias", "real"), sorted(ALIASES.items()))
def test_moved_modules_keep_their_old_import_path(alias: str, real: str) -> None:
    assert importlib.import_module(alias) is importlib.import_module(real)
