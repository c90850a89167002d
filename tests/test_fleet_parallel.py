"""The fleet on several processes and on Dask gives exactly the single-process result."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.fleet import run_fleet
from sim.fleet.parallel import batches, map_batches

pytestmark = pytest.mark.req("FLEET-PARALLEL")

CAMERAS, HOURS, SEED = 40, 6, 11


@pytest.fixture(scope="module")
def serial() -> Any:
    return run_fleet(CAMERAS, HOURS, SEED)


def _double(batch: list[int]) -> list[int]:
    return [2 * x for x in batch]


def test_batches_are_contiguous_and_cover_every_item() -> None:
    items = list(range(101))
    for parallelism in (1, 2, 7, 500):
        parts = batches(items, parallelism)
        assert [x for p in parts for x in p] == items
        assert all(parts)
    assert batches([], 4) == []


def test_map_batches_keeps_item_order_and_reports_each_batch() -> None:
    seen: list[int] = []
    out = map_batches(_double, list(range(50)), workers=2, on_batch=lambda r: seen.extend(r))
    assert out == [2 * x for x in range(50)]
    assert sorted(seen) == out


def test_process_pool_gives_the_serial_result(serial: Any) -> None:
    done: list[int] = []
    pooled = run_fleet(CAMERAS, HOURS, SEED, workers=2, progress=lambda d, t: done.append(d))
    assert pooled.camera_summaries() == serial.camera_summaries()
    assert pooled.to_json() == serial.to_json()
    assert done[-1] == CAMERAS and done == sorted(done)


def test_cli_workers_gives_the_serial_report(serial: Any) -> None:
    import json

    res = CliRunner().invoke(app, ["fleet", "--cameras", str(CAMERAS), "--hours", str(HOURS),
                                   "--seed", str(SEED), "--workers", "2", "--report", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == serial.to_json()


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    if importlib.util.find_spec("distributed") is None:
        pytest.skip("dask[distributed] is not installed (optional extra bwcsim[dask])")
    distributed: Any = importlib.import_module("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, host="127.0.0.1", protocol="tcp://",
        dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:
        yield client


def test_dask_cluster_gives_the_serial_result(serial: Any, dask_client: Any) -> None:
    done: list[int] = []
    on_dask = run_fleet(CAMERAS, HOURS, SEED, cluster=dask_client,
                        progress=lambda d, t: done.append(d))
    assert on_dask.camera_summaries() == serial.camera_summaries()
    assert on_dask.to_json() == serial.to_json()
    assert done[-1] == CAMERAS


def test_dask_by_scheduler_address(serial: Any, dask_client: Any) -> None:
    address = dask_client.scheduler.address
    on_dask = run_fleet(CAMERAS, HOURS, SEED, cluster=address)
    assert on_dask.to_json() == serial.to_json()


def test_unreachable_cluster_is_invalid_input(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("distributed") is None:
        pytest.skip("dask[distributed] is not installed")
    monkeypatch.setattr("sim.fleet.parallel.CONNECT_TIMEOUT", "1s")
    res = CliRunner().invoke(app, ["fleet", "--cameras", "4", "--hours", "1",
                                   "--cluster", "tcp://127.0.0.1:1"])
    assert res.exit_code == 2
    assert "Dask scheduler" in res.stderr


POLICY_WITH_TAIL = """\
name: test-tail
activities:
  patrol: {kind: required}
  emergency_response: {kind: required, post_s: 60}
  search_warrant: {kind: required}
  first_amendment_activity: {kind: prohibited}
signals: [holster, taser]
deactivation_reasons: [supervisor_order]
camera: {prebuffer_s: 120}
"""


def test_a_policy_file_relative_to_cwd_reaches_the_worker_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path
    (folder / "tail.yaml").write_text(POLICY_WITH_TAIL, encoding="utf-8")
    monkeypatch.chdir(folder)
    alone = run_fleet(12, 4, seed=2, policy="tail.yaml")
    pooled = run_fleet(12, 4, seed=2, policy="tail.yaml", workers=2)
    assert pooled.to_json() == alone.to_json()
    assert alone.to_json()["policy"] == "tail.yaml"
    assert alone.verdict == "pass"
