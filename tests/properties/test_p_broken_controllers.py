"""The search catches each deliberately broken controller and shrinks it to a short scenario.

Each test runs one property's search (:func:`sim.search.fuzz.search`; P-NOMISS unless the test
names another) against one factory of
``tests/broken_controllers.py`` with a bounded budget, so it stays quick whatever the
hypothesis profile, and checks the saved counterexample: a format-v1 file of at most 8
timeline entries that ``bwcsim run`` replays to ``fail`` with the broken controller and to
``pass`` with the reference one.
"""

from __future__ import annotations

from pathlib import Path

import broken_controllers
import pytest

from controller.node import ControllerFactory
from controller.reference import make_node
from sim.search.fuzz import search
from sim.world.replay import replay
from sim.world.scenario import load_scenario

BUDGET = 200
SEED = 20231


def _caught_and_shrunk(
    factory: ControllerFactory, name: str, tmp_path: Path, prop: str = "P-NOMISS"
) -> None:
    outcome = search(factory, examples=BUDGET, seed=SEED, save_dir=tmp_path, prop=prop,
                     controller=f"broken_controllers:{name}")
    assert not outcome.passed, f"{name} survived {BUDGET} examples"
    assert outcome.saved is not None and outcome.saved.exists()
    scenario = load_scenario(outcome.saved)
    assert len(scenario.timeline) <= 8, scenario.timeline
    assert prop in scenario.description and f"seed {SEED}" in scenario.description
    assert replay(scenario, factory).verdict == "fail"
    assert replay(scenario, make_node).verdict == "pass"


@pytest.mark.req("P-NOMISS", "R-BUF")
def test_catches_a_camera_that_prepends_no_buffer(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.zero_buffer, "zero_buffer", tmp_path)


@pytest.mark.req("P-NOMISS", "R-BUF")
def test_catches_a_camera_that_prepends_half_the_buffer(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.half_buffer, "half_buffer", tmp_path)


@pytest.mark.req("P-NOMISS", "R-NOSPLIT")
def test_catches_a_camera_that_ends_at_the_first_nested_activity_end(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.no_refcount, "no_refcount", tmp_path)


@pytest.mark.req("P-NOMISS", "R-STOP")
def test_catches_a_camera_that_obeys_a_manual_stop_during_a_warrant(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.stop_honoured, "stop_honoured", tmp_path)


@pytest.mark.req("P-NOMISS", "R-DOCK")
def test_catches_a_camera_that_loses_the_recording_at_a_dock(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.dock_drops, "dock_drops", tmp_path)


@pytest.mark.req("P-NOMISS", "R-MISS")
def test_catches_a_camera_that_never_sends_the_missed_alert(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.silent_miss, "silent_miss", tmp_path)


@pytest.mark.req("P-NOMISS", "R-SIG")
def test_catches_a_camera_that_stops_on_a_device_signal(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.signal_stops, "signal_stops", tmp_path)


@pytest.mark.req("P-NOPHANTOM", "R-BUF")
def test_catches_a_camera_that_claims_more_buffer_than_it_held(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.full_buffer, "full_buffer", tmp_path, "P-NOPHANTOM")


@pytest.mark.req("P-NOPHANTOM", "R-DOCK")
def test_catches_a_camera_that_buffers_while_docked(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.docked_buffer, "docked_buffer", tmp_path, "P-NOPHANTOM")


@pytest.mark.req("P-PRIVACY", "R-SIG")
def test_catches_a_camera_that_records_a_prohibited_activity(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.prohibited_records, "prohibited_records", tmp_path,
                       "P-PRIVACY")


@pytest.mark.req("P-PRIVACY", "R-SIG")
def test_catches_a_camera_that_splits_a_recording_on_a_signal(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.signal_splits, "signal_splits", tmp_path, "P-PRIVACY")


@pytest.mark.req("P-PRIVACY", "R-SIG")
def test_catches_a_camera_that_stops_a_held_recording_on_a_signal(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.signal_stops, "signal_stops", tmp_path, "P-PRIVACY")


@pytest.mark.req("P-PRIVACY", "R-IDEM", "R-NOSPLIT")
def test_catches_a_camera_that_splits_a_recording_on_a_redelivery(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.duplicate_splits, "duplicate_splits", tmp_path,
                       "P-PRIVACY")
