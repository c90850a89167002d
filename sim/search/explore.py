"""Exhaustive bounded exploration: every sequence of key events up to a depth, judged by the oracle.

Theory of operation
-------------------
Random search finds most bugs quickly; this finds *every* bug that a short sequence of the key
events can show. One camera (pre-buffer running, ``prebuffer_s`` 30 s, boot 5 s) receives one
event every ``step_s`` seconds (20 s: long enough for a boot to finish, shorter than the
buffer, so a buffer is sometimes partial and sometimes full). The alphabet is:

``start`` (a required activity with a fresh id), ``end`` (of the oldest open activity),
``dock``, ``undock``, ``stop`` (button stop), ``deactivate`` (a policy-allowed reason),
``reactivate``, ``signal`` (a listed device source), ``tick`` (nothing happens this step);
with ``late_starts`` also ``late_start`` (a start whose trigger is sent a step and a quarter
late, which is what exercises the buffer arithmetic of R-BUF and the alerts of R-LATE).

Every sequence of exactly ``depth`` steps is replayed through the real harness
(:func:`sim.world.replay.replay`, so the bus, the node contract and the oracle are the ones
``bwcsim run`` uses) and judged with every property registered in
:data:`sim.search.invariants.REPLAY_PROPERTIES` (P-NOMISS, P-NOSPLIT and any registered since,
through :func:`sim.search.invariants.judge_all`). Shorter sequences need no run of their own:
the scenario ends at the same time whatever the sequence, so a short sequence is a long one padded with ticks.

**Pruning** removes sequences that are invalid as ground truth — ``end`` with no activity
open, ``dock`` when docked, ``undock`` when not — and keeps at most two activities open and
three started. **Deduplication** drops steps the spec defines as equivalent to a step already
in the alphabet, so each behaviour is explored once: ``deactivate`` outside a required window
is a ``stop`` (SPEC §4a), ``reactivate`` with nothing deactivated, ``stop`` with nothing held
and a ``signal`` while docked are acked with no effect (a ``tick`` plus an ack).

Scenarios are built as :class:`~sim.world.scenario.Scenario` values directly (the policy is loaded
once); parsing text would cost ten times the replay. Depth 6 is 15,873 sequences (44,368
with late starts); each replay costs about half a millisecond.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.errors import ControllerFailure, InvalidInput
from controller.node import ControllerFactory
from controller.params import CameraParams
from controller.policy import Policy, load_policy
from controller.reference import make_node
from sim.world.replay import replay
from sim.world.scenario import CameraSpec, Scenario, TimelineEntry

from .invariants import REPLAY_PROPERTIES, judge_all

__all__ = ["EVENTS", "ExploreResult", "explore", "sequence_scenario", "sequences"]

EVENTS: tuple[str, ...] = (
    "start", "late_start", "end", "dock", "undock", "stop", "deactivate", "reactivate", "signal", "tick",
)
CAMERA = "cam-1"
MAX_OPEN = 2
MAX_STARTED = 2


@dataclass(frozen=True, slots=True)
class _Truth:
    """What the officer has done so far: enough to prune and dedupe the next step.

    ``open`` holds ``(activity number, steps until its trigger has been sent)``: a late start's
    activity cannot end before its own trigger went out (the race the generator also avoids).
    """

    open: tuple[tuple[int, int], ...] = ()
    started: int = 0
    docked: bool = False
    deactivated: bool = False
    held: bool = False

    def _next(self, **changes: Any) -> _Truth:
        values = {
            "open": self.open, "started": self.started, "docked": self.docked,
            "deactivated": self.deactivated, "held": self.held, **changes,
        }
        values["open"] = tuple((n, max(0, wait - 1)) for n, wait in values["open"])
        return _Truth(**values)

    def options(self, late_starts: bool) -> Iterator[tuple[str, _Truth]]:
        if len(self.open) < MAX_OPEN and self.started < MAX_STARTED:
            n = self.started + 1
            yield "start", self._next(open=(*self.open, (n, 0)), started=n, deactivated=False)
            if late_starts:
                yield "late_start", self._next(
                    open=(*self.open, (n, 2)), started=n, deactivated=False
                )
        if self.open and self.open[0][1] == 0:
            rest = self.open[1:]
            yield "end", self._next(open=rest, deactivated=self.deactivated and bool(rest))
        if self.docked:
            yield "undock", self._next(docked=False, held=False)
        else:
            yield "dock", self._next(docked=True, held=False)
        if (self.open and not self.deactivated) or self.held:
            released = not self.open or self.deactivated
            yield "stop", self._next(held=self.held and not released)
        if self.open and not self.deactivated:
            yield "deactivate", self._next(deactivated=True, held=False)
        if self.deactivated:
            yield "reactivate", self._next(deactivated=False)
        if not self.docked:
            yield "signal", self._next(deactivated=False, held=True)
        yield "tick", self._next()


def sequences(depth: int, late_starts: bool = False) -> Iterator[tuple[str, ...]]:
    """Every pruned, deduplicated sequence of exactly ``depth`` steps, in DFS order."""

    def walk(prefix: tuple[str, ...], truth: _Truth) -> Iterator[tuple[str, ...]]:
        if len(prefix) == depth:
            yield prefix
            return
        for event, after in truth.options(late_starts):
            yield from walk((*prefix, event), after)

    yield from walk((), _Truth())


def _entries(seq: tuple[str, ...], step_s: float) -> list[dict[str, Any]]:
    """The timeline of ``seq`` as scenario entries (``tick`` steps publish nothing)."""
    entries: list[dict[str, Any]] = []
    open_: list[int] = []
    started = 0
    for i, event in enumerate(seq):
        at = step_s * (i + 1)
        base: dict[str, Any] = {"at": at, "camera": CAMERA}
        if event in ("start", "late_start"):
            started += 1
            open_.append(started)
            entries.append({**base, "event": "activity_start", "activity": "arrest_warrant",
                            "activity_id": f"a-{started}"})
            if event == "late_start":
                entries[-1]["delay_s"] = step_s * 1.25
        elif event == "end":
            entries.append({**base, "event": "activity_end", "activity_id": f"a-{open_.pop(0)}"})
        elif event in ("dock", "undock", "reactivate"):
            entries.append({**base, "event": event})
        elif event == "stop":
            entries.append({**base, "event": "button", "action": "stop"})
        elif event == "deactivate":
            entries.append({**base, "event": "deactivate", "reason": "supervisor_order",
                            "actor": "sergeant-2"})
        elif event == "signal":
            entries.append({**base, "event": "signal", "source": "holster"})
    return entries


def sequence_scenario(seq: tuple[str, ...], step_s: float = 20.0) -> dict[str, Any]:
    """``seq`` as a format-v1 scenario dict, e.g. to save a counterexample for ``bwcsim run``."""
    return {
        "version": 1,
        "name": "explored: " + " ".join(seq),
        "policy": "dhs-2023",
        "end": step_s * (len(seq) + 1),
        "cameras": [{"id": CAMERA, "prebuffer_s": 30}],
        "timeline": _entries(seq, step_s),
        "expect": {"verdict": "pass"},
        "requirements": list(REPLAY_PROPERTIES),
    }


def _scenario(seq: tuple[str, ...], step_s: float, policy: Policy, camera: CameraSpec) -> Scenario:
    timeline = tuple(
        TimelineEntry(
            index=i, line=0, at=float(e["at"]), camera=CAMERA, event=e["event"],
            delay_s=float(e.get("delay_s", 0.0)),
            fields={k: v for k, v in e.items() if k not in ("at", "camera", "event", "delay_s")},
        )
        for i, e in enumerate(_entries(seq, step_s))
    )
    return Scenario(
        version=1, name="explore", policy=policy, end=step_s * (len(seq) + 1),
        cameras=(camera,), file="<explore>", timeline=timeline,
    )


@dataclass(slots=True)
class ExploreResult:
    """How many sequences were checked, and every one that failed with its problems."""

    depth: int
    checked: int = 0
    failures: list[tuple[tuple[str, ...], list[str]]] = field(default_factory=list)
    seconds: float = 0.0
    #: True when the search stopped at ``max_failures`` before checking every sequence.
    stopped_early: bool = False

    @property
    def passed(self) -> bool:
        return not self.failures


def explore(
    depth: int = 6,
    factory: ControllerFactory = make_node,
    *,
    step_s: float = 20.0,
    late_starts: bool = False,
    max_failures: int = 10,
    progress: Callable[[int], None] | None = None,
) -> ExploreResult:
    """Replay and judge every sequence of ``depth`` key events.

    Stops after ``max_failures`` failing sequences (``0``: no limit) and then sets
    ``stopped_early`` when sequences were left unchecked.
    """
    policy = load_policy("dhs-2023")
    camera = CameraSpec(id=CAMERA, params=policy.apply(CameraParams(prebuffer_s=30.0)))
    result = ExploreResult(depth)
    started = time.perf_counter()  # wall clock for the summary only
    remaining = sequences(depth, late_starts)
    for seq in remaining:
        try:
            run = replay(_scenario(seq, step_s, policy, camera), factory)
            problems = [f"{prop}: {p}" for prop, found in judge_all(run).items() for p in found]
        except ControllerFailure as exc:  # a child that crashed, hung or spoke garbage
            problems = [f"controller failed: {exc}"]
        except Exception as exc:  # a controller that raises is a finding
            problems = [f"replay raised {type(exc).__name__}: {exc}"]
        result.checked += 1
        if progress is not None and result.checked % 1000 == 0:
            progress(result.checked)
        if problems:
            result.failures.append((seq, problems))
            if max_failures and len(result.failures) >= max_failures:
                result.stopped_early = next(remaining, None) is not None
                break
    result.seconds = time.perf_counter() - started
    return result


def run_cli(
    depth: int,
    controller: str,
    late_starts: bool = False,
    save: Path | None = None,
    max_failures: int = 10,
) -> int:
    """``bwcsim explore``: explore, print a summary; 0 when every sequence passes, else 1.

    Raises :class:`~controller.errors.InvalidInput` (``cannot write ...``) when ``save`` cannot
    be written; that is checked before the exploration starts.
    """
    from rich.console import Console

    from sim.nodes import load_factory

    from .fuzz import prepare_save_dir, replay_hint
    from .strategies import scenario_yaml

    factory = load_factory(controller)
    if save is not None:
        prepare_save_dir(save)  # before the search: a bad folder should not cost minutes
    console = Console(stderr=True, highlight=False)
    total = sum(1 for _ in sequences(depth, late_starts))
    with console.status(f"exploring {total} sequences of depth {depth}") as status:

        def on_progress(done: int) -> None:
            status.update(f"exploring: {done}/{total} sequences of depth {depth}")

        result = explore(depth, factory, late_starts=late_starts, max_failures=max_failures,
                         progress=on_progress)
    colour = "green" if result.passed else "red"
    rate = result.checked / result.seconds if result.seconds > 0 else 0.0
    checked = (f"{result.checked} of {total} sequences checked" if result.stopped_early
               else f"{result.checked} sequences checked")
    console.print(
        f"[{colour} bold]{'PASS' if result.passed else 'FAIL'}[/] depth {depth}: "
        f"{checked}, {len(result.failures)} failing, "
        f"{result.seconds:.1f} s ({rate:.0f} sequences/s)"
    )
    for seq, problems in result.failures:
        console.print(f"  {' '.join(seq)}: {'; '.join(problems)}", markup=False)
    if result.failures and save is not None:
        path = save / f"explore-depth{depth}.yaml"
        try:
            path.write_text(scenario_yaml(sequence_scenario(result.failures[0][0])),
                            encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None
        console.print(f"  saved: {path}  (replay: {replay_hint(path, controller)})", markup=False,
                      soft_wrap=True)
    if result.stopped_early:
        console.print(
            f"[yellow bold]stopped early[/] at the failure limit ({max_failures} failing "
            f"sequences); {total - result.checked} sequences were not checked "
            "(--max-failures 0 checks them all)"
        )
    return 0 if result.passed else 1
