"""The property search behind ``bwcsim fuzz``, and the shrink-to-scenario writer.

Theory of operation
-------------------
:func:`search` judges scenarios drawn from :func:`sim.search.strategies.scenarios` against
*every* property registered in :data:`sim.search.invariants.REPLAY_PROPERTIES` (or the one
named with ``prop``), replaying each scenario once with the given controller factory. A property
registered there is searched for by ``bwcsim fuzz`` with no change here. Hypothesis does the
searching and the shrinking; this module only pins down what makes a search *reproducible* and *useful*:

* **Seeded.** ``database=None`` (no example replayed from a previous run), ``@seed(seed)`` and
  no ``explain`` phase: the same seed, controller and example budget give the same examples in
  the same order, hence the same counterexample, on any machine.
* **Corners first.** The corner scenarios of :mod:`sim.search.corners` run as explicit examples
  before any generated one, whatever the seed, so a rule broken in its plain case is caught by
  the smallest budget (they are counted apart, in :attr:`FuzzOutcome.corners`).
* **Counted.** Every replay is counted; calls before the first failure are the *examples* (the
  progress bar counts them up to the budget), calls after it are shrinking.
* **Written out.** Hypothesis re-runs the minimal failing example last, so the last failing
  scenario seen *is* the shrunk one (a corner is not shrunk by hypothesis; :func:`minimise`
  shrinks both). :func:`write_counterexample` saves it as a format-v1 file whose description
  names the properties it falsifies, the seed and the problems, with ``expect: {verdict: pass}``
  and every property but P-NOMISS under ``expect: holds`` — so ``bwcsim run`` on it exits 1 for
  the broken controller and 0 once it is fixed. A generated policy travels inline in the file.

A controller that raises out of its handler, or a child process (``exec:``) that crashes, hangs
or answers garbage, is a failure like any other (its message becomes the problem, and the
scenario that provokes it is shrunk and saved), never a crash of the search.
"""

from __future__ import annotations

import shlex
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from controller.errors import BwcError, ControllerFailure, InvalidInput
from controller.node import DEFAULT_FACTORY, ControllerFactory
from sim.world.replay import ReplayResult, replay

from .corners import corner_scenarios
from .invariants import REPLAY_PROPERTIES, judge_all
from .strategies import load_scenario_dict, scenario_yaml, scenarios

__all__ = [
    "PROPERTIES",
    "FuzzOutcome",
    "ProgressFn",
    "check_all",
    "check_scenario",
    "counterexample_document",
    "minimise",
    "prepare_save_dir",
    "replay_hint",
    "run_cli",
    "saved_line",
    "search",
    "write_counterexample",
]

#: The replay-judged properties a search can look for, by SPEC ID: the very registry of
#: :mod:`sim.search.invariants`, so every property registered there is searched for.
PROPERTIES: dict[str, Callable[[ReplayResult], list[str]]] = REPLAY_PROPERTIES
#: ``prop`` value meaning "every registered property".
ALL = "all"
#: Properties the verdict itself judges (``bwcsim run`` fails on them without ``expect: holds``).
VERDICT_PROPERTIES = frozenset({"P-NOMISS", "P-NOPHANTOM", "P-PRIVACY", "P-REPLY", "P-EVIDENCE",
                                "P-RESOURCE"})

#: ``progress(examples_done, budget, phase)`` with phase ``"search"`` or ``"shrink"``.
ProgressFn = Callable[[int, int, str], None]


@dataclass(slots=True)
class FuzzOutcome:
    """What one search did and found."""

    prop: str  # a property ID, or "all"
    seed: int
    budget: int
    examples: int = 0  # generated examples run before a failure (all of them if none was)
    corners: int = 0  # corner scenarios tried before the generated ones
    shrink_calls: int = 0
    seconds: float = 0.0
    search_seconds: float = 0.0  # until the first failure (all of ``seconds`` if none)
    counterexample: dict[str, Any] | None = None  # the shrunk scenario, as a dict
    problems: list[str] = field(default_factory=list)
    saved: Path | None = None
    failed: list[str] = field(default_factory=list)  # the IDs the counterexample falsifies

    @property
    def failures(self) -> int:
        return 0 if self.counterexample is None else 1

    @property
    def passed(self) -> bool:
        return self.counterexample is None

    @property
    def examples_per_s(self) -> float:
        """Examples generated and judged per second, shrinking excluded."""
        return self.examples / self.search_seconds if self.search_seconds > 0 else 0.0


def _replay(data: dict[str, Any], factory: ControllerFactory) -> ReplayResult | list[str]:
    scenario = load_scenario_dict(data)
    try:
        return replay(scenario, factory)
    except ControllerFailure as exc:  # a child that crashed, hung or spoke garbage: a finding
        return [f"controller failed: {exc}"]
    except Exception as exc:  # a controller that raises is a finding, not a crash of the search
        return [f"replay raised {type(exc).__name__}: {exc}"]


def check_scenario(
    data: dict[str, Any], factory: ControllerFactory, prop: str = "P-NOMISS"
) -> list[str]:
    """Replay one scenario dict with ``factory``; the problems ``prop`` finds (``[]``: holds).

    ``prop`` ``"all"`` judges every registered property (see :func:`check_all`).
    """
    if prop == ALL:
        return [p for problems in check_all(data, factory).values() for p in problems]
    result = _replay(data, factory)
    if isinstance(result, list):
        return result
    return PROPERTIES[prop](result)


def check_all(
    data: dict[str, Any], factory: ControllerFactory, props: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """Replay one scenario dict once and judge every registered property (or ``props``).

    Returns the problems of each property that does not hold, by ID, each problem prefixed with
    its ID. A controller that raises or a child that fails falsifies every property judged.
    """
    judged = list(PROPERTIES) if props is None else list(props)
    result = _replay(data, factory)
    if isinstance(result, list):
        return {prop: [f"{prop}: {p}" for p in result] for prop in judged}
    return {prop: [f"{prop}: {p}" for p in problems]
            for prop, problems in judge_all(result, judged).items()}


class _PropertyFailed(AssertionError):
    pass


def search(
    factory: ControllerFactory,
    *,
    examples: int = 200,
    seed: int = 0,
    prop: str = ALL,
    save_dir: Path | None = None,
    controller: str = DEFAULT_FACTORY,
    progress: ProgressFn | None = None,
    strategy: st.SearchStrategy[dict[str, Any]] | None = None,
    corners: bool = True,
) -> FuzzOutcome:
    """Search ``examples`` generated scenarios for a violation of ``prop``; shrink and save it.

    With ``corners`` (the default) the corner scenarios of :mod:`sim.search.corners` are tried
    first, whatever the seed (counted in :attr:`FuzzOutcome.corners`, not in ``examples``); a
    failing corner is minimised and saved like a generated example.

    ``prop`` is a registered property ID, or ``"all"`` (the default): every registered property
    is judged on each example, and the counterexample is shrunk keeping the properties its
    shrunk form falsifies (:attr:`FuzzOutcome.failed`). ``controller`` is only recorded in a
    saved file's description. With ``save_dir`` the shrunk counterexample is written there
    (see :func:`write_counterexample`).
    """
    if prop != ALL and prop not in PROPERTIES:
        raise ValueError(
            f"unknown property {prop!r} (one of {', '.join([ALL, *PROPERTIES])})")
    judged = list(PROPERTIES) if prop == ALL else [prop]
    outcome = FuzzOutcome(prop=prop, seed=seed, budget=examples)
    started = time.perf_counter()  # wall clock only for the summary's rate, never the simulation
    last_failure: list[tuple[dict[str, Any], dict[str, list[str]]]] = []

    tried_first = corner_scenarios() if corners else []

    def run_one(data: dict[str, Any]) -> None:
        if last_failure:
            outcome.shrink_calls += 1
        elif any(data is c for c in tried_first):
            outcome.corners += 1
        else:
            outcome.examples += 1
        if progress is not None:
            progress(outcome.examples, examples, "shrink" if last_failure else "search")
        found = check_all(data, factory, judged)
        if found:
            if not last_failure:
                outcome.search_seconds = time.perf_counter() - started
            last_failure.append((data, found))
            del last_failure[:-1]
            raise _PropertyFailed("; ".join(p for ps in found.values() for p in ps))

    test = given(strategy if strategy is not None else scenarios())(run_one)
    for corner in reversed(tried_first):  # explicit examples run first, in CORNERS order
        test = example(corner)(test)
    test = hypothesis_seed(seed)(test)
    test = settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        report_multiple_bugs=False,
    )(test)

    try:
        test()
    except _PropertyFailed:
        pass
    finally:
        outcome.seconds = time.perf_counter() - started
        if not last_failure:
            outcome.search_seconds = outcome.seconds
    if last_failure:
        data, found = last_failure[-1]
        failed = list(found)

        def problems_of(candidate: dict[str, Any]) -> list[str]:
            return [p for ps in check_all(candidate, factory, failed).values() for p in ps]

        problems = [p for ps in found.values() for p in ps]
        data, problems = minimise(data, problems_of, problems)
        failed = [p for p in failed if any(q.startswith(f"{p}: ") for q in problems)]
        label = "+".join(failed)
        outcome.failed = failed
        outcome.counterexample = counterexample_document(data, label, seed, problems, controller)
        outcome.problems = problems
        if save_dir is not None:
            outcome.saved = write_counterexample(outcome.counterexample, save_dir, label, seed)
    return outcome


def minimise(
    data: dict[str, Any],
    problems_of: Callable[[dict[str, Any]], list[str]],
    problems: list[str],
    max_calls: int = 400,
) -> tuple[dict[str, Any], list[str]]:
    """Greedily drop whatever the failure does not need, after hypothesis' shrinking.

    Hypothesis shrinks the abstract steps; this pass works on the resolved scenario itself and
    removes timeline entries, camera parameters, ``delay_s`` keys, the bus block and what an
    inline policy holds (activities, signals, reasons, overrides) one at a time while the
    property still fails (a candidate that no longer validates counts as
    passing). It is deterministic, bounded by ``max_calls`` replays, and guarantees the saved
    scenario is 1-minimal in timeline entries when the budget suffices.
    """
    calls = 0

    def still_fails(candidate: dict[str, Any]) -> list[str]:
        nonlocal calls
        calls += 1
        try:
            return problems_of(candidate)
        except BwcError:
            return []

    def candidates(current: dict[str, Any]) -> Iterator[dict[str, Any]]:
        timeline = current.get("timeline", [])
        for i in reversed(range(len(timeline))):
            yield {**current, "timeline": timeline[:i] + timeline[i + 1:]}
        if "bus" in current:
            yield {k: v for k, v in current.items() if k != "bus"}
        for i, entry in enumerate(timeline):
            if "delay_s" in entry:
                shorter = {k: v for k, v in entry.items() if k != "delay_s"}
                yield {**current, "timeline": [*timeline[:i], shorter, *timeline[i + 1:]]}
        cameras = current.get("cameras", [])
        for i in reversed(range(len(cameras))):
            if len(cameras) > 1:
                yield {**current, "cameras": cameras[:i] + cameras[i + 1:]}
            for key in cameras[i]:
                if key != "id":
                    smaller = {k: v for k, v in cameras[i].items() if k != key}
                    yield {**current, "cameras": [*cameras[:i], smaller, *cameras[i + 1:]]}
        policy = current.get("policy")
        if isinstance(policy, dict):
            yield from ({**current, "policy": smaller} for smaller in _smaller_policies(policy))

    progress = True
    while progress and calls < max_calls:
        progress = False
        for candidate in candidates(data):
            if calls >= max_calls:
                break
            found = still_fails(candidate)
            if found:
                data, problems, progress = candidate, found, True
                break
    return data, problems


def _smaller_policies(policy: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """An inline policy with one thing less: an activity, a signal, a reason, an override.

    A candidate that no longer validates (an activity the timeline still names) counts as
    passing, so only what the failure does not need goes.
    """
    activities = policy.get("activities")
    if isinstance(activities, dict) and len(activities) > 1:
        for name in reversed(list(activities)):
            yield {**policy, "activities": {k: v for k, v in activities.items() if k != name}}
    for key in ("signals", "deactivation_reasons"):
        items = policy.get(key)
        if isinstance(items, list):
            for i in reversed(range(len(items))):
                yield {**policy, key: items[:i] + items[i + 1:]}
    if "camera" in policy:
        yield {k: v for k, v in policy.items() if k != "camera"}


def counterexample_document(
    data: dict[str, Any], prop: str, seed: int, problems: list[str], controller: str,
    found_by: str | None = None,
) -> dict[str, Any]:
    """The shrunk scenario as a self-describing format-v1 document, expecting a pass.

    ``prop`` is a property ID, or several joined with ``+``; every one the verdict does not
    itself judge (:data:`VERDICT_PROPERTIES`) is listed under ``expect: holds``, so ``bwcsim run`` on the file
    exits 1 with the controller that failed it and 0 once it is fixed.

    ``found_by`` names the search in the name and description (default: ``bwcsim fuzz`` with
    ``seed``; the pytest plugin names the test).
    """
    doc: dict[str, Any] = {
        "version": 1,
        "name": f"{prop} counterexample ({found_by or f'fuzz seed {seed}'})",
        "description": (
            f"Shrunk counterexample for {prop} found by `{found_by or f'bwcsim fuzz --seed {seed}'}` "
            f"with controller {controller}. Problems: " + "; ".join(problems)
        ),
    }
    doc.update({k: v for k, v in data.items() if k not in ("version", "name", "description")})
    doc["expect"] = {"verdict": "pass"}
    holds = [p for p in prop.split("+") if p in PROPERTIES and p not in VERDICT_PROPERTIES]
    if holds:  # judged by `bwcsim run` and `check` too, so the file replays to the failure
        doc["expect"]["holds"] = holds
    doc["requirements"] = prop.split("+")
    return doc


def prepare_save_dir(directory: Path) -> None:
    """Create ``directory`` (and its parents) and prove a file can be written in it.

    Called before a search starts, so that a bad ``--save`` folder is reported at once rather
    than after minutes of searching. Raises :class:`~controller.errors.InvalidInput` with the
    message ``cannot write <directory>: <reason>`` (the CLI prints it and exits 2).
    """
    if directory.exists() and not directory.is_dir():
        raise InvalidInput(f"cannot write {directory}: not a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # Permission bits do not tell the whole story (read-only mounts, /proc, root): only
        # writing a file does.
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise InvalidInput(f"cannot write {directory}: {exc.strerror or exc}") from None


def write_counterexample(
    doc: dict[str, Any], directory: Path, prop: str, seed: int, stem: str | None = None
) -> Path:
    """Write ``doc`` as ``<prop>-seed<seed>.yaml`` (or ``<stem>.yaml``) under ``directory``.

    Returns the path. Raises :class:`~controller.errors.InvalidInput` (``cannot write ...``)
    when it cannot.
    """
    prepare_save_dir(directory)
    path = directory / f"{stem or f'{prop.lower()}-seed{seed}'}.yaml"
    try:
        path.write_text(scenario_yaml(doc), encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def replay_hint(path: Path, controller: str) -> str:
    """The ``bwcsim run`` command that replays a saved file with the controller that failed it.

    Without ``--controller`` the replay would use the reference controller and pass.
    """
    command = f"bwcsim run {shlex.quote(str(path))}"
    if controller != DEFAULT_FACTORY:
        command += f" --controller {shlex.quote(controller)}"
    return command


def saved_line(path: Path, controller: str) -> str:
    """The line that announces a saved counterexample and how to replay it.

    Printed by ``bwcsim fuzz --save`` and by the pytest plugin, so both read the same.
    """
    return f"saved: {path}  (replay: {replay_hint(path, controller)})"


# ------------------------------------------------------------------------------ command line


def run_cli(
    examples: int, seed: int, save: Path | None, controller: str, prop: str = ALL
) -> int:
    """``bwcsim fuzz``: search with a progress bar, print a summary; 0 pass, 1 failure.

    ``prop`` is a registered property ID or ``"all"`` (every registered property). Raises
    :class:`~controller.errors.InvalidInput` when ``save`` cannot be written or ``prop`` is not
    a registered property.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sim.nodes import load_factory

    if prop != ALL and prop not in PROPERTIES:
        raise InvalidInput(
            f"unknown property {prop!r} (one of {', '.join([ALL, *PROPERTIES])})")
    factory = load_factory(controller)
    if save is not None:
        prepare_save_dir(save)  # before the search: a bad folder should not cost minutes
    console = Console(stderr=True, highlight=False)
    judged = ", ".join(PROPERTIES) if prop == ALL else prop
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[phase]}"), TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(judged, total=examples, phase="search")

        def on_progress(done: int, total: int, phase: str) -> None:
            bar.update(task, completed=done, phase=phase)

        outcome = search(factory, examples=examples, seed=seed, save_dir=save,
                         controller=controller, progress=on_progress, prop=prop)
    colour = "green" if outcome.passed else "red"
    shown = judged if outcome.passed else ", ".join(outcome.failed)
    console.print(
        f"[{colour} bold]{'PASS' if outcome.passed else 'FAIL'}[/] {shown}  "
        f"corners {outcome.corners}  examples {outcome.examples}  failures {outcome.failures}  "
        f"seconds {outcome.seconds:.2f}  examples/s {outcome.examples_per_s:.0f}  seed {seed}",
        soft_wrap=True,
    )
    if not outcome.passed:
        for problem in outcome.problems:
            console.print(f"  {problem}", markup=False)
        assert outcome.counterexample is not None
        console.print(
            f"  shrunk to {len(outcome.counterexample.get('timeline', []))} timeline entries "
            f"after {outcome.shrink_calls} shrink replays"
        )
        if outcome.saved is not None:
            console.print(f"  {saved_line(outcome.saved, controller)}", markup=False, soft_wrap=True)
        else:
            console.print("  (use --save DIR to write it as a scenario file)")
    return 0 if outcome.passed else 1
