"""A throwaway repository of the kind a firmware team keeps, for running the pytest plugin on.

Three scenario files (one with expectations that cannot hold), a component policy file and a
stray YAML file that are not scenarios, a controller adapter (here: the reference controller),
the deliberately broken controllers, and a conftest-free ``pytest.ini``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT / "scenarios" / "conformance"

ADAPTER = '''\
"""The team's controller adapter: here, the reference controller."""
from controller.reference import make_node

__all__ = ["make_node"]
'''


def wrong_on_purpose() -> str:
    """The dock-mid-warrant scenario with two expectations that cannot hold."""
    text = (CONFORMANCE / "dock_mid_warrant.yaml").read_text(encoding="utf-8")
    text = text.replace("name: Camera docked in the middle of a warrant service",
                        "name: Docked mid-warrant, expectations wrong on purpose")
    text = text.replace("missed_s: {controller: 0, docked: 600}", "missed_s: {controller: 0, docked: 0}")
    text = text.replace("recordings: {cam-1: 1}", "recordings: {cam-1: 2}")
    assert "docked: 0}" in text and "cam-1: 2}" in text
    return text


def make_project(path: Path, ini: str = "") -> None:
    """Three scenario files (one failing on purpose), a policy file, an adapter, an ini file."""
    (path / "scenarios" / "policies").mkdir(parents=True)
    for name in ("warrant_basic.yaml", "late_trigger.yaml"):
        shutil.copy(CONFORMANCE / name, path / "scenarios" / name)
    (path / "scenarios" / "wrong_on_purpose.yaml").write_text(wrong_on_purpose(), encoding="utf-8")
    shutil.copy(ROOT / "scenarios" / "policies" / "cbp-like.yaml", path / "scenarios" / "policies")
    (path / "notes.yaml").write_text("version: 1\ntitle: not a scenario\n", encoding="utf-8")
    (path / "adapter.py").write_text(ADAPTER, encoding="utf-8")
    shutil.copy(ROOT / "tests" / "broken_controllers.py", path / "broken_controllers.py")
    (path / "pytest.ini").write_text(
        "[pytest]\nbwcsim_controller = adapter:make_node\njunit_logging = system-out\n" + ini,
        encoding="utf-8",
    )
