"""docs/architecture.md names only what exists, and names every layer and sub-package.

The page is a map of the code, so it is checked against the code: every code span that looks
like a repository path (``sim/world/replay.py``, ``sim/views/``) must exist, and every dotted
name (``sim.world.replay.judge_run``, ``controller.camera.Camera.handle``) must import — the
longest importable module prefix, then attributes — so a renamed module, class or function fails
here instead of leaving the page wrong. Every package prefix of the layer table in
``tests/test_layout.py`` and every sub-package of ``sim/`` must be mentioned, so a new layer
cannot be added without its place on the map.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from test_layout import LAYERS

pytestmark = pytest.mark.req("ARCH")

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"

#: A code span that is a path inside the repository.
PATH_RE = re.compile(r"^(?:controller|sim|tests|docs|scenarios|bench|examples)(?:/[\w.-]+)*/?$")
#: A code span that is a dotted name inside the two packages.
DOTTED_RE = re.compile(r"^(?:controller|sim)(?:\.[A-Za-z_]\w*)+$")


def _spans(text: str) -> list[str]:
    """Inline code spans and the words of the Mermaid picture that look like paths."""
    spans = re.findall(r"`([^`\n]+)`", text)
    picture = re.search(r"```mermaid\n(.*?)```", text, re.S)
    assert picture is not None, "the page has its Mermaid picture"
    spans += re.findall(r"(?<![\w/])((?:controller|sim)/[\w/.-]*\w/?)", picture.group(1))
    return spans


def resolve(name: str) -> object:
    """The object a dotted name denotes: the longest importable module, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)  # AttributeError names what is missing
        return obj
    raise ModuleNotFoundError(name)


def test_every_path_the_page_names_exists() -> None:
    paths = [s for s in _spans(DOC.read_text("utf-8")) if PATH_RE.match(s)]
    assert len(paths) > 40, "the checker found the paths"
    missing = sorted({p for p in paths if not (ROOT / p).exists()})
    assert missing == []


def test_every_dotted_name_the_page_names_imports() -> None:
    names = sorted({s for s in _spans(DOC.read_text("utf-8")) if DOTTED_RE.match(s)})
    assert len(names) > 40, "the checker found the names"
    broken = []
    for name in names:
        try:
            resolve(name)
        except (ImportError, AttributeError) as exc:
            broken.append(f"{name}: {exc}")
    assert broken == []


def test_every_layer_and_every_sim_subpackage_is_on_the_page() -> None:
    text = DOC.read_text("utf-8")
    as_path = {prefix: prefix.replace(".", "/") for prefix in LAYERS}
    wanted = {p + ".py" if (ROOT / (p + ".py")).exists() else p + "/" for p in as_path.values()}
    wanted |= {f"sim/{d.name}/" for d in (ROOT / "sim").iterdir() if (d / "__init__.py").exists()}
    wanted.discard("sim/__main__.py")  # `python -m sim` is `bwcsim`: not a layer of its own
    absent = sorted(w for w in wanted if f"`{w}`" not in text)
    assert absent == []


def test_the_checkers_catch_a_wrong_name() -> None:
    assert resolve("sim.world.replay.judge_run") is importlib.import_module("sim.world.replay").judge_run
    with pytest.raises(AttributeError):
        resolve("sim.world.replay.no_such_function")
    with pytest.raises(AttributeError):
        resolve("sim.no_such_package.x")
    with pytest.raises(ModuleNotFoundError):
        resolve("no_such_top.x")
    assert PATH_RE.match("sim/views/") and PATH_RE.match("controller/policies/dhs-2023.yaml")
    assert not PATH_RE.match("../shared/SPEC.md")


def test_the_readme_links_the_page() -> None:
    assert "](docs/architecture.md)" in (ROOT / "README.md").read_text("utf-8")
