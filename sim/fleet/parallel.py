"""Run independent work items in batches: in this process, on a process pool, or on Dask.

Theory of operation
-------------------
The fleet (:mod:`sim.fleet`) is a list of teams whose runs do not interact, so they can run
anywhere. What must not depend on *where* is the result: :func:`map_batches` cuts the items into
contiguous batches, runs ``fn(batch)`` for each, and puts the results back **in item order**
however the batches complete. Progress is reported per finished batch (in completion order,
which is fine for a counter). Batches amortise the cost of shipping work to another process
(pickling the function reference, the plans and the results) over several items.

Back-ends:

* ``workers <= 1`` and no cluster: a plain loop (no pickling at all);
* ``workers > 1``: :class:`concurrent.futures.ProcessPoolExecutor` with that many processes;
* ``cluster``: a Dask ``distributed`` scheduler address (``tcp://host:8786``) or an existing
  ``distributed.Client``. The workers must be able to import this package (install bwcsim on
  every machine, same version). Requires the optional extra ``bwcsim[dask]``.

``fn`` must be a module-level function so it pickles by reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from controller.errors import InvalidInput

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["batches", "map_batches"]

#: Aim for this many batches per worker: enough to balance load, few enough to keep overhead low.
BATCHES_PER_WORKER = 8
MAX_BATCH = 64
#: How long to keep trying to reach a Dask scheduler before giving up.
CONNECT_TIMEOUT = "10s"


def batches(items: Sequence[T], parallelism: int) -> list[list[T]]:
    """Contiguous batches of ``items``, sized for ``parallelism`` workers."""
    if not items:
        return []
    size = max(1, min(MAX_BATCH, math.ceil(len(items) / (max(1, parallelism) * BATCHES_PER_WORKER))))
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def map_batches(
    fn: Callable[[list[T]], list[R]],
    items: Sequence[T],
    *,
    workers: int = 1,
    cluster: Any = None,
    on_batch: Callable[[list[R]], None] | None = None,
) -> list[R]:
    """``fn`` over contiguous batches of ``items``; the concatenated results, in item order."""
    if cluster is not None:
        return _dask(fn, items, cluster, on_batch)
    if workers > 1:
        return _pool(fn, items, workers, on_batch)
    out: list[R] = []
    for batch in batches(items, 1):
        result = fn(batch)
        out.extend(result)
        if on_batch is not None:
            on_batch(result)
    return out


def _pool(
    fn: Callable[[list[T]], list[R]],
    items: Sequence[T],
    workers: int,
    on_batch: Callable[[list[R]], None] | None,
) -> list[R]:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    parts = batches(items, workers)
    results: list[list[R] | None] = [None] * len(parts)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending = {pool.submit(fn, part): i for i, part in enumerate(parts)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                results[i] = fut.result()
                if on_batch is not None:
                    on_batch(results[i])  # type: ignore[arg-type]
    return [r for part in results if part is not None for r in part]


def _dask(
    fn: Callable[[list[T]], list[R]],
    items: Sequence[T],
    cluster: Any,
    on_batch: Callable[[list[R]], None] | None,
) -> list[R]:
    import importlib

    try:
        # Imported by name so that type checking does not depend on the optional extra.
        distributed: Any = importlib.import_module("distributed")
    except ImportError:
        raise InvalidInput(
            "--cluster needs Dask: pip install 'bwcsim[dask]'", "cluster"
        ) from None
    own = not isinstance(cluster, distributed.Client)
    try:
        client = distributed.Client(cluster, timeout=CONNECT_TIMEOUT) if own else cluster
    except OSError as exc:
        raise InvalidInput(f"cannot reach the Dask scheduler {cluster!r}: {exc}", "cluster") from None
    try:
        parallelism = max(1, sum(client.nthreads().values()))
        parts = batches(items, parallelism)
        # pure=False: identical batches (same plans) must still run, not be deduplicated.
        futures = client.map(fn, parts, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[list[R] | None] = [None] * len(parts)
        for fut in distributed.as_completed(futures):
            i = index[fut.key]
            results[i] = fut.result()
            if on_batch is not None:
                on_batch(results[i])  # type: ignore[arg-type]
            fut.release()
        return [r for part in results if part is not None for r in part]
    finally:
        if own:
            client.close()
