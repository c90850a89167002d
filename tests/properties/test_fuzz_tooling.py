"""``bwcsim fuzz`` and ``bwcsim explore``: reproducible searches, failures as replayable files."""

from __future__ import annotations

from pathlib import Path

import broken_controllers
import pytest
from typer.testing import CliRunner

from controller.reference import make_node
from sim.cli import app
from sim.explore import explore, sequence_scenario, sequences
from sim.fuzzing import search
from sim.replay import replay
from sim.strategies import load_scenario_dict

runner = CliRunner()


@pytest.mark.req("FUZZ-CLI", "P-NOMISS")
def test_fuzz_saves_a_counterexample_that_bwcsim_run_replays_failing(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fuzz", "--examples", "200", "--seed", "3", "--save",
                                 str(tmp_path), "--controller", "broken_controllers:no_refcount"])
    assert result.exit_code == 1, result.output
    [saved] = list(tmp_path.glob("*.yaml"))
    assert str(saved) in result.output.replace("\n", "")
    assert "failures 1" in result.output

    broken = runner.invoke(app, ["run", str(saved), "--report", "json", "--controller",
                                 "broken_controllers:no_refcount"])
    assert broken.exit_code == 1
    assert '"verdict":"fail"' in broken.stdout.replace(" ", "")
    fixed = runner.invoke(app, ["run", str(saved), "--report", "json"])
    assert fixed.exit_code == 0, fixed.stdout


@pytest.mark.req("FUZZ-CLI", "P-NOMISS")
def test_fuzz_passes_the_reference_controller_and_says_how_fast(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fuzz", "--examples", "30", "--seed", "1",
                                 "--save", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "examples 30" in result.output and "examples/s" in result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.req("FUZZ-CLI", "P-DET")
def test_same_seed_same_counterexample() -> None:
    first = search(broken_controllers.stop_honoured, examples=100, seed=11)
    second = search(broken_controllers.stop_honoured, examples=100, seed=11)
    assert first.counterexample is not None
    assert first.counterexample == second.counterexample
    assert (first.examples, first.shrink_calls) == (second.examples, second.shrink_calls)


@pytest.mark.req("EXPLORE", "P-NOMISS", "P-NOSPLIT")
def test_every_sequence_of_depth_4_passes_on_the_reference() -> None:
    result = explore(4, make_node, late_starts=True)
    assert result.checked == sum(1 for _ in sequences(4, late_starts=True)) > 1000
    assert result.failures == []


@pytest.mark.req("EXPLORE")
def test_exploration_prunes_invalid_ground_truth_and_dedupes() -> None:
    seqs = list(sequences(4))
    assert len(seqs) == len(set(seqs))
    for seq in seqs:
        opened = 0
        docked = False
        for step in seq:
            opened += step in ("start", "late_start")
            if step == "end":
                assert opened > 0, seq  # never an end before its start
                opened -= 1
            if step in ("dock", "undock"):
                assert docked == (step == "undock"), seq
                docked = step == "dock"


@pytest.mark.req("EXPLORE", "R-NOSPLIT")
def test_exploration_finds_a_broken_controller_and_its_sequence_replays(tmp_path: Path) -> None:
    result = explore(4, broken_controllers.no_refcount, max_failures=1)
    assert result.failures
    seq, _ = result.failures[0]
    data = sequence_scenario(seq)
    assert replay(load_scenario_dict(data), broken_controllers.no_refcount).verdict == "fail"
    assert replay(load_scenario_dict(data), make_node).verdict == "pass"
    cli = runner.invoke(app, ["explore", "--depth", "3", "--save", str(tmp_path),
                              "--controller", "broken_controllers:no_refcount"])
    assert cli.exit_code == 1 and "sequences checked" in cli.output
    assert list(tmp_path.glob("explore-depth3.yaml"))
