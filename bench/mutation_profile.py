"""Pytest plugin for mutation runs: the ``dev`` profile's depth, but the same examples every run.

``bench/mutation.py`` loads it with ``-p mutation_profile`` (``bench/`` on ``PYTHONPATH``). A
mutant must be judged by the same examples as the clean run and as every other mutant: the
``dev`` profile draws fresh examples and replays an example database that killed mutants keep
filling, so a survivor could turn into a kill by luck. This profile keeps ``dev``'s example count
and derandomizes it, with no database. It also runs the fastest tests first (see below).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import settings

from sim.search.profiles import PROFILE_EXAMPLES, profile_settings

PROFILE = "bwcsim-mutation"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register and load the profile after every other plugin chose one (this one wins)."""
    settings.register_profile(
        PROFILE,
        settings(profile_settings()["dev"], max_examples=PROFILE_EXAMPLES["dev"],
                 derandomize=True, database=None, print_blob=False),
    )
    settings.load_profile(PROFILE)


def _durations() -> dict[str, float]:
    """Each test's duration in mutmut's clean run (``mutmut-stats.json``), when there is one."""
    stats = Path("mutmut-stats.json")
    if not stats.is_file():
        return {}
    try:
        data = json.loads(stats.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    durations = data.get("duration_by_test", {})
    return {str(k): float(v) for k, v in durations.items()} if isinstance(durations, dict) else {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fastest tests first: a mutant is usually killed by a quick scenario, and ``-x`` stops there.

    Only the order changes, never the set of tests, so a survivor has still run every test.
    """
    durations = _durations()
    if durations:
        items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
