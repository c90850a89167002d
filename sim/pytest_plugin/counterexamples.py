"""A falsified property under pytest: the shrunk scenario, as a file, with its replay command.

Theory of operation
-------------------
A suite test hands every judgement to :meth:`Counterexamples.check` (the ``bwcsim_counterexample``
fixture): the property ID, the scenario it judged (a format-v1 dict) and the problems found.
When there are problems it remembers them and raises :class:`Falsified`. Hypothesis runs the
shrunk failing example last, so the remembered scenario *is* the shrunk one — the same fact
``bwcsim fuzz`` relies on (:mod:`sim.search.fuzz`). A recording made by an earlier example
cannot leak into the report: the plugin only uses it when the exception the test failed with
is the very :class:`Falsified` that was raised with it.

:func:`settle` then does what ``bwcsim fuzz --save`` does, with the same functions: for a
replay-judged property (:data:`SAVED_PROPERTIES`) it replays the scenario through the harness
to confirm the failure shows there (a state-machine run drives the node directly, so this is
not a given), minimises it (:func:`sim.search.fuzz.minimise`), writes it with
:func:`sim.search.fuzz.write_counterexample` and announces it with
:func:`sim.search.fuzz.saved_line`. Other properties (P-BAD, P-IDEM, P-DET, P-AUDIT, P-AUTH)
are not judged on a replay, so their scenario is shown in the report but not saved.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.errors import BwcError
from controller.node import ControllerFactory

#: Properties whose counterexample ``bwcsim run`` replays to the same failure (a ``fail``
#: verdict for P-NOMISS, P-NOPHANTOM and P-PRIVACY, an unmet ``expect: holds`` for the others),
#: hence saved as a scenario file: the replay-judged properties of
#: :data:`sim.search.invariants.REPLAY_PROPERTIES`.
SAVED_PROPERTIES = frozenset({
    "P-NOMISS", "P-NOSPLIT", "P-NOPHANTOM", "P-PRIVACY", "P-TAIL", "P-REPLY", "P-EVIDENCE",
    "P-RESOURCE",
})


class Falsified(AssertionError):
    """A property does not hold on a scenario; the message lists the problems."""

    def __init__(self, prop: str, problems: list[str]) -> None:
        super().__init__(f"{prop} does not hold: " + "; ".join(problems))
        self.prop = prop
        self.problems = problems


@dataclass(slots=True)
class Counterexamples:
    """Remembers the last scenario a property failed on, for the plugin to save and report."""

    prop: str = ""
    scenario: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    raised: Falsified | None = None

    def check(self, prop: str, scenario: dict[str, Any], problems: list[str]) -> None:
        """Raise :class:`Falsified` (and remember why) when ``problems`` is not empty."""
        if not problems:
            return
        self.prop, self.scenario, self.problems = prop, copy.deepcopy(scenario), list(problems)
        self.raised = Falsified(prop, self.problems)
        raise self.raised


@dataclass(frozen=True, slots=True)
class Settled:
    """What became of one falsified property: the report text and what to attach."""

    text: str
    summary: str
    saved: Path | None = None
    replay: str | None = None
    saved_line: str = ""  # the ``saved: ... (replay: ...)`` line, as ``bwcsim fuzz`` prints it


def _stem(prop: str, test_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{prop.lower()}-{test_name}").strip("_")


def settle(
    record: Counterexamples,
    *,
    test_name: str,
    nodeid: str,
    controller: str,
    factory: Callable[[], ControllerFactory],
    save_dir: Path,
    shown: Callable[[Path], Path],
) -> Settled:
    """Minimise and save ``record`` (P-NOMISS), and write the failure report.

    ``factory`` resolves the controller under test (only called when a replay is needed);
    ``shown`` turns the saved path into the one printed (relative to where pytest runs).
    """
    # Imported here: the plugin imports this module at every pytest start-up.
    from sim.search.fuzz import (
        check_scenario,
        counterexample_document,
        minimise,
        replay_hint,
        saved_line,
        write_counterexample,
    )
    from sim.search.strategies import scenario_yaml

    prop, data, problems = record.prop, record.scenario, record.problems
    head = [f"{prop} does not hold for controller {controller}"]
    head += [f"  {p}" for p in problems]
    saved: Path | None = None
    replay_command: str | None = None
    announced = ""
    if prop in SAVED_PROPERTIES:
        judge = factory()

        def problems_of(candidate: dict[str, Any]) -> list[str]:
            return check_scenario(candidate, judge, prop)

        replayed = problems_of(data)
        if not replayed:
            head.append("  (replaying these steps as a scenario does not reproduce it, so no "
                        "scenario file was saved; the steps are below)")
        else:
            data, problems = minimise(data, problems_of, replayed)
            # The problems shown are the saved scenario's: minimising may change them (a corner
            # tried as an explicit example is not shrunk by hypothesis first).
            head = [head[0], *(f"  {p}" for p in problems)]
            doc = counterexample_document(data, prop, 0, problems, controller,
                                          found_by=f"pytest {nodeid}")
            try:
                saved = write_counterexample(doc, save_dir, prop, 0, stem=_stem(prop, test_name))
            except BwcError as exc:
                head.append(f"  (not saved: {exc})")
            else:
                data = doc
                replay_command = replay_hint(shown(saved), controller)
                announced = saved_line(shown(saved), controller)
                head.append(f"  shrunk to {len(doc.get('timeline', []))} timeline entries")
                head.append(f"  {announced}")
    body = scenario_yaml(data).rstrip("\n")
    label = "the scenario, as saved" if saved is not None else "the falsifying scenario (format v1)"
    text = "\n".join([*head, "", f"{label}:", body])
    summary = f"{prop} does not hold: {problems[0]}" + (
        f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    return Settled(text, summary, saved, replay_command, announced)


__all__ = ["SAVED_PROPERTIES", "Counterexamples", "Falsified", "Settled", "settle"]
