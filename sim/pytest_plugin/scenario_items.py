"""Scenario files as pytest test items (pytest's documented pattern for YAML test files).

Theory of operation
-------------------
:func:`is_scenario_file` decides which files pytest hands to the plugin become a
:class:`ScenarioFile`: those matching the ``bwcsim_scenarios`` globs when that ini option is set,
otherwise any ``*.yaml``/``*.yml`` whose text has a top-level ``version: 1`` and a top-level
``timeline:`` (a policy file has a version but no timeline). Only files pytest walks are
considered, so ``testpaths`` and ``norecursedirs`` decide where it looks, as for Python tests.

Each file holds one scenario, hence one :class:`ScenarioItem`, named by the scenario's
``name:`` and marked ``bwcsim_scenario`` and ``req(<the file's requirements: list>)``. Running it
is ``bwcsim run FILE``: replay with the controller under test, build the report, and fail
exactly when ``bwcsim run`` would exit non-zero (:func:`sim.views.report.exit_code`). An invalid
file fails with the loader's one-line message (file, line, field).

A failure is written for the person reading the CI log, with the same sentences as
``bwcsim check`` (:func:`sim.check.failure_messages`): the verdict, the missed seconds by
cause, each unmet ``expect:`` line, and the ``bwcsim run`` command that reproduces it. The
scenario is replayed once more with a trace to write its JSON report (the bytes of
``bwcsim run --report json``) and its HTML timeline under the artefacts folder; their paths
are in the failure text (shown by every CI), in the JUnit ``<properties>`` (``bwcsim_report``,
``bwcsim_timeline``, ``bwcsim_replay``), and as ``[[ATTACHMENT|path]]`` lines on the test's
captured stdout, which pytest writes to the JUnit ``<system-out>`` when ``junit_logging`` is
``system-out`` or ``all``. GitLab's test report links the first such file of a failed test
(a path relative to the project, among the job's artefacts: the timeline comes first);
Jenkins' JUnit Attachments plugin links them all (absolute paths: ``bwcsim_attachments =
absolute``). The text report of the run goes to the captured stdout too.
"""

from __future__ import annotations

import fnmatch
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .explained import Explained
from .options import SETTINGS, ControllerUnavailable, Settings

SCENARIO_SUFFIXES = (".yaml", ".yml")
_VERSION_1 = re.compile(r"^version:[ \t]*['\"]?1['\"]?[ \t]*(#.*)?$", re.MULTILINE)
_TIMELINE = re.compile(r"^timeline:", re.MULTILINE)


def is_scenario_file(path: Path, settings: Settings) -> bool:
    """Whether pytest should collect ``path`` as a scenario file (see the module docstring)."""
    if path.suffix not in SCENARIO_SUFFIXES:
        return False
    if settings.scenario_globs is not None:
        try:
            rel = path.resolve().relative_to(settings.rootdir.resolve()).as_posix()
        except ValueError:
            rel = path.as_posix()
        return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(path.name, g)
                   for g in settings.scenario_globs)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(_VERSION_1.search(text) and _TIMELINE.search(text))


def _head(path: Path) -> tuple[str | None, list[str]]:
    """The scenario's ``name:`` and ``requirements:``, read leniently (running it reports errors)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None, []
    if not isinstance(data, dict):
        return None, []
    name = data.get("name")
    reqs = data.get("requirements")
    ids = [r for r in reqs if isinstance(r, str) and r] if isinstance(reqs, list) else []
    if not isinstance(name, str):
        return None, ids
    # One line, and no "::": pytest separates the parts of a test id with it.
    return " ".join(name.replace("::", ":").split()) or None, ids


class ScenarioFile(pytest.File):
    """One scenario file: one item."""

    def collect(self) -> Iterator[ScenarioItem]:
        name, requirements = _head(self.path)
        item = ScenarioItem.from_parent(self, name=name or self.path.stem)
        item.add_marker("bwcsim_scenario")
        if requirements:
            item.add_marker(pytest.mark.req(*requirements))
        yield item


class ScenarioFailed(Exception):
    """The replay did not meet the scenario's expectations; ``text`` says how, for people, and
    ``summary`` in one line (the first reason, and how many more)."""

    def __init__(self, text: str, reasons: list[str] | None = None) -> None:
        reasons = reasons or [text.splitlines()[0] if text else "scenario failed"]
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        self.summary = reasons[0] + more
        super().__init__(self.summary)
        self.text = text


def _missed_by_cause(missed: dict[str, float]) -> str:
    parts = [f"{cause} {seconds:g} s" for cause, seconds in missed.items()
             if cause != "total" and seconds]
    return ", ".join(parts) + f" (total {missed['total']:g} s)" if parts else "none"


class ScenarioItem(pytest.Item):
    """``bwcsim run FILE`` as a test (see the module docstring)."""

    @property
    def settings(self) -> Settings:
        return self.config.stash[SETTINGS]

    def runtest(self) -> None:
        from controller.errors import BwcError
        from sim.check import failure_messages
        from sim.search.invariants import judge_holds
        from sim.views.report import build_report, exit_code
        from sim.world.replay import replay
        from sim.world.scenario import load_scenario

        settings = self.settings
        try:
            factory = settings.factory()
        except ControllerUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        try:
            scenario = load_scenario(self.path)
        except BwcError as exc:
            raise ScenarioFailed(f"invalid scenario file: {exc}") from None
        result = replay(scenario, factory)
        doc = judge_holds(build_report(result), result)
        if exit_code(doc, scenario.expect) == 0:
            return
        settings.failed_scenarios += 1
        shown = settings.shown(self.path)
        lines = [
            f"scenario {scenario.name!r} ({shown}) with controller {settings.controller}",
            f"  verdict: {doc['verdict']}",
            f"  missed seconds by cause: {_missed_by_cause(doc['missed_s'])}",
        ]
        unmet = list(doc["expect"]["failures"]) if doc["expect"] else []
        if unmet:
            lines.append("  unmet expect:")
            lines += [f"    {line}" for line in unmet]
        others = [m for m in failure_messages(doc, scenario.expect) if m not in unmet]
        lines += [f"  {m}" for m in others]
        from sim.search.fuzz import replay_hint

        command = replay_hint(shown, settings.controller)
        lines.append(f"  reproduce: {command}")
        self.user_properties.append(("bwcsim_replay", command))
        lines += self._write_artefacts(scenario, factory, doc)
        raise ScenarioFailed("\n".join(lines), unmet + others)

    def _write_artefacts(self, scenario: Any, factory: Any, doc: dict[str, Any]) -> list[str]:
        """Replay again with a trace; write the report and timeline; print the text report."""
        import msgspec
        from rich.console import Console

        from sim.views.files import write_outputs
        from sim.views.text import render_text
        from sim.world.replay import replay

        settings = self.settings
        try:
            rel = self.path.resolve().relative_to(settings.rootdir.resolve())
        except ValueError:
            rel = Path(self.path.name)
        base = settings.artifacts_dir / rel.parent / rel.stem
        report_path = base.with_name(base.name + ".report.json")
        timeline_path = base.with_name(base.name + ".timeline.html")
        records: list[dict[str, Any]] = []
        result = replay(scenario, factory, records.append)  # deterministic: the same run again
        try:
            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.write_bytes(msgspec.json.encode(doc) + b"\n")
            write_outputs(result, doc, records, timeline=timeline_path)
        except OSError as exc:
            return [f"  (report and timeline not written: {exc.strerror or exc})"]
        buffer = io.StringIO()
        render_text(doc, Console(file=buffer, width=100, highlight=False, color_system=None))
        print(buffer.getvalue(), end="")
        for path in (timeline_path, report_path):  # GitLab shows the first attachment only
            print(settings.attachment(path))
        self.user_properties += [("bwcsim_report", str(settings.shown(report_path))),
                                 ("bwcsim_timeline", str(settings.shown(timeline_path)))]
        return [f"  report: {settings.shown(report_path)}",
                f"  timeline: {settings.shown(timeline_path)}"]

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> Any:
        if isinstance(excinfo.value, ScenarioFailed):
            return Explained(excinfo.value.text, str(self.settings.shown(self.path)),
                             excinfo.value.summary)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario: {self.name}"


__all__ = ["ScenarioFailed", "ScenarioFile", "ScenarioItem", "is_scenario_file"]
