"""bwcsim's pytest plugin: scenario files as tests, the property suites on any controller.

Installed with the package and loaded by pytest through the ``pytest11`` entry point, so a
repository that installs bwcsim needs no conftest: options go on the command line or in its
ini file (:mod:`sim.pytest_plugin.options`).

Theory of operation
-------------------
* **Scenario files** (:mod:`sim.pytest_plugin.scenario_items`) are collected wherever pytest
  walks, one item per file; a failure reads like ``bwcsim check`` and carries the
  ``bwcsim run`` command, the JSON report and the HTML timeline (JUnit-visible).
* **Property suites** (:mod:`sim.pytest_plugin.suites`) are ordinary pytest modules inside the
  package. When some are selected, :func:`pytest_collection_modifyitems` collects those
  modules (as ``bwcsim-properties/<suite>.py``), keeps the tests whose ``req`` marks name a
  selected property, marks them ``bwcsim_property`` and appends them to the session's items —
  first among the hooks, so ``-k``, ``-m`` and ``--deselect`` still apply to them.
* **Counterexamples** (:mod:`sim.pytest_plugin.counterexamples`): when a suite test fails with
  the :class:`~sim.pytest_plugin.counterexamples.Falsified` its recorder raised, the report
  is rewritten before anyone sees it: the problems, the saved file and its ``bwcsim run``
  command (exactly as ``bwcsim fuzz --save`` prints them), and the scenario as YAML instead of
  hypothesis' Python dict (``-v`` keeps hypothesis' own text in a section).
* **Profiles**: ``dev``, ``ci`` and ``nightly`` (:mod:`sim.search.profiles`) are registered
  before hypothesis reads ``--hypothesis-profile``, as ``bwcsim-dev``, ``bwcsim-ci`` and
  ``bwcsim-nightly``, and under the bare name only where that name is free. ``ci`` never is:
  hypothesis has its own, which it loads by itself on a CI machine, and replacing a registered
  profile that is active would change every hypothesis test of the session. Registering new
  names changes nothing active, so a repository's other hypothesis tests run as before.
  ``$HYPOTHESIS_PROFILE`` selects a profile when ``--hypothesis-profile`` is not given. A
  session that runs no suite, names no profile and has not imported hypothesis by then (a
  scenario-only run) does not import it at all.
* The controller is resolved once per session by :func:`sim.nodes.load_factory`, the same
  function every ``bwcsim --controller`` goes through, so every kind of controller it knows
  works here too.

This module is imported at every pytest start-up in an environment where bwcsim is installed,
so it imports nothing heavy at module level.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any, cast

import pytest

from controller.node import ControllerFactory

from .counterexamples import Counterexamples
from .explained import Explained
from .options import SETTINGS, ControllerUnavailable, add_options, read_settings
from .scenario_items import ScenarioFile, is_scenario_file
from .suites import SUITES

PROPERTIES_NODE = "bwcsim-properties"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _register_profiles() -> None:
    """Register the profiles (see the module docstring); load ``$HYPOTHESIS_PROFILE`` if set."""
    from hypothesis import settings
    from hypothesis.errors import InvalidArgument

    from sim.search.profiles import PROFILE_ENV, profile_settings

    ours = profile_settings()
    for name, profile in ours.items():
        settings.register_profile(f"bwcsim-{name}", profile)
        try:
            settings.get_profile(name)
        except InvalidArgument:  # free: take the bare name too
            settings.register_profile(name, profile)
    chosen = os.environ.get(PROFILE_ENV, "")
    if chosen:
        try:
            settings.load_profile(chosen)
        except InvalidArgument:
            known = ", ".join(f"bwcsim-{n}" for n in ours)
            raise pytest.UsageError(
                f"${PROFILE_ENV}={chosen!r} is not a registered hypothesis profile (bwcsim's: "
                f"{known})"
            ) from None


def _needs_hypothesis(config: pytest.Config, selected: tuple[str, ...]) -> bool:
    """Whether this session may use a profile; a scenario-only run skips importing hypothesis."""
    from sim.search.profiles import PROFILE_ENV

    return bool("hypothesis" in sys.modules or selected or os.environ.get(PROFILE_ENV)
                or config.getoption("--hypothesis-profile", None))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.stash[SETTINGS] = state = read_settings(config)
    # tryfirst: hypothesis loads --hypothesis-profile in its own pytest_configure.
    if _needs_hypothesis(config, state.properties):
        _register_profiles()
    config.addinivalue_line("markers", "req(id, ...): the requirement ID(s) a test covers")
    config.addinivalue_line("markers", "bwcsim_scenario: a scenario file run as a test")
    config.addinivalue_line("markers", "bwcsim_property: a bwcsim property suite test")


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[SETTINGS]
    line = f"bwcsim: controller={state.controller} properties={','.join(state.properties) or 'none'}"
    if "hypothesis" in sys.modules:
        from hypothesis import settings

        line += f" hypothesis-profile={settings.get_current_profile_name()}"
    return [line]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if is_scenario_file(file_path, parent.config.stash[SETTINGS]):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class SuiteModule(pytest.Module):
    """A suite module of the installed package, imported by its name wherever it lives."""

    module_name = ""

    def _getobj(self) -> Any:
        return importlib.import_module(self.module_name)


def _suite_items(session: pytest.Session, selected: tuple[str, ...]) -> list[pytest.Item]:
    items: list[pytest.Item] = []
    for suite, covers in SUITES.items():
        if not set(covers) & set(selected):
            continue
        name = f"{__name__}.suites.{suite}"
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        module = SuiteModule.from_parent(session, path=Path(spec.origin),
                                         nodeid=f"{PROPERTIES_NODE}/{suite}.py")
        module.module_name = name
        for item in session.genitems(module):
            ids = {arg for mark in item.iter_markers("req") for arg in mark.args}
            if ids & set(selected):
                item.add_marker("bwcsim_property")
                items.append(item)
    return items


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    selected = config.stash[SETTINGS].properties
    if selected:
        items.extend(_suite_items(session, selected))


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def bwcsim_controller_spec(pytestconfig: pytest.Config) -> str:
    """The controller spec under test (``--bwcsim-controller``, else the ini, else the reference)."""
    return pytestconfig.stash[SETTINGS].controller


@pytest.fixture(scope="session")
def bwcsim_controller(pytestconfig: pytest.Config) -> ControllerFactory:
    """The controller factory under test, resolved once per session."""
    try:
        return pytestconfig.stash[SETTINGS].factory()
    except ControllerUnavailable as exc:
        problem = str(exc)
    # Failing outside the handler keeps the report to the one line that says what to fix.
    pytest.fail(problem, pytrace=False)


@pytest.fixture
def bwcsim_counterexample() -> Counterexamples:
    """Where a suite test reports what it judged; see :mod:`sim.pytest_plugin.counterexamples`."""
    return Counterexamples()


# ------------------------------------------------------------------------------ reporting


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    from .counterexamples import settle

    settled = None
    record = getattr(item, "funcargs", {}).get("bwcsim_counterexample")
    if (call.when == "call" and call.excinfo is not None and isinstance(record, Counterexamples)
            and record.raised is not None and call.excinfo.value is record.raised):
        state = item.config.stash[SETTINGS]
        settled = settle(record, test_name=item.name, nodeid=item.nodeid,
                         controller=state.controller, factory=state.factory,
                         save_dir=state.save_dir, shown=state.shown)
        if settled.saved is not None and settled.replay is not None:
            item.user_properties += [("bwcsim_counterexample", str(state.shown(settled.saved))),
                                     ("bwcsim_replay", settled.replay)]
            # As captured output, so JUnit's <system-out> carries it (see scenario_items).
            item.add_report_section("call", "stdout", state.attachment(settled.saved) + "\n")
            state.saved.append((item.nodeid, settled.saved_line))
    report = yield
    if settled is not None:
        if item.config.get_verbosity() > 0:
            report.sections.append(("hypothesis", str(report.longrepr)))
        report.longrepr = cast(Any, Explained(settled.text, report.location[0], settled.summary))
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(SETTINGS, None)
    if state is None:
        return
    if state.saved:
        terminalreporter.write_sep("-", "bwcsim counterexamples")
        for nodeid, line in state.saved:
            terminalreporter.write_line(f"{nodeid}")
            terminalreporter.write_line(f"  {line}")
    if state.failed_scenarios:
        terminalreporter.write_sep("-", "bwcsim scenarios")
        terminalreporter.write_line(
            f"{state.failed_scenarios} scenario file(s) failed; their reports and timelines are "
            f"in {state.shown(state.artifacts_dir)}/"
        )


__all__ = [
    "bwcsim_controller",
    "bwcsim_controller_spec",
    "bwcsim_counterexample",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_report_header",
    "pytest_runtest_makereport",
    "pytest_terminal_summary",
]
