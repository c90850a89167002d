"""``bwcsim check``: replay many scenarios and check each one's ``expect:`` block.

With ``--live`` the scenarios are played on a real broker against devices instead
(:mod:`sim.live.hil`) and judged the same way. A scenario a real broker cannot play (a scripted
outage, a simulated bus) is *skipped* with the reason; one whose device was offline is
*incomplete* (so is one that never acknowledged a message, or whose clock is not the run's):
not a controller failure, but not a pass either.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

import msgspec
from rich.console import Console

from controller.errors import BwcError, ControllerFailure
from controller.node import ControllerFactory
from sim.search.invariants import judge_holds
from sim.views.report import build_report, exit_code
from sim.world.replay import replay
from sim.world.scenario import Expect, Scenario, load_scenario

if TYPE_CHECKING:
    from sim.live.session import LiveSession

#: How each status is shown.
MARKS = {"pass": "[green]PASS[/]", "fail": "[red]FAIL[/]", "error": "[yellow]ERROR[/]",
         "skip": "[dim]SKIP[/]", "incomplete": "[yellow]INCOMPLETE[/]"}


@dataclass(slots=True)
class CheckResult:
    file: Path
    name: str = ""
    # pass | fail | error | skip (cannot run live) | incomplete (live: a device offline, silent,
    # or not on the run's clock, so not everything could be judged)
    status: str = "pass"
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _judge(res: CheckResult, doc: dict[str, Any], scenario: Scenario) -> None:
    """Set ``res`` from a run's report: the exit code's verdict and every reason for it."""
    if exit_code(doc, scenario.expect) != 0:
        res.status = "fail"
        res.messages = failure_messages(doc, scenario.expect)


def failure_messages(doc: dict[str, Any], expect: Expect | None) -> list[str]:
    """Why a run failed, one line each: the unmet ``expect:`` lines, then what else made it fail.

    ``doc`` is the run's report (:func:`~sim.views.report.build_report`). A ``fail`` verdict is
    named here only when the scenario did not state a verdict (an unmet ``verdict:`` line already
    says it); every unannounced miss and every forged command the camera accepted is named with
    its camera. ``bwcsim check`` and the pytest plugin's scenario items both say it this way.
    """
    exp = doc["expect"]
    messages = list(exp["failures"]) if exp else []
    if doc["verdict"] != "pass" and (expect is None or expect.verdict is None):
        messages.append(f"verdict: fail (missed_s.controller = {doc['missed_s']['controller']:g})")
    for cam, c in doc["cameras"].items():
        messages.extend(f"{cam}: {u}" for u in c.get("unannounced", []))
        messages.extend(f"{cam}: {u}" for u in c.get("overdue_boot", []))
        messages.extend(f"{cam}: {u}" for u in c.get("accepted_forgeries", []))
    return messages


def check_one(path: Path, factory: ControllerFactory, reports: Path | None = None) -> CheckResult:
    res = CheckResult(path)
    t0 = time.perf_counter()
    try:
        scenario = load_scenario(path)
    except BwcError as exc:
        res.status, res.messages = "error", [str(exc)]
        return res
    res.name = scenario.name
    try:
        result = replay(scenario, factory)
        doc = judge_holds(build_report(result), result)
    except ControllerFailure as exc:  # the controller under test failed this scenario
        res.status, res.messages = "fail", [str(exc)]
        res.seconds = time.perf_counter() - t0
        return res
    _judge(res, doc, scenario)
    _keep_report(reports, path, doc)
    res.seconds = time.perf_counter() - t0
    return res


def report_name(path: Path) -> str:
    """The file ``--reports`` writes a scenario's report to: its path, flattened, ``.json``."""
    parts = path.with_suffix("").parts
    return "__".join(p for p in parts if p not in ("", "/", "..", ".")) + ".json"


def _keep_report(folder: Path | None, path: Path, doc: dict[str, Any]) -> None:
    if folder is not None:
        (folder / report_name(path)).write_bytes(msgspec.json.encode(doc) + b"\n")


def check_files(files: list[Path], factory: ControllerFactory, junit: Path | None,
                live: LiveSession | None = None, reports: Path | None = None) -> int:
    """Check every file, print one line each (stdout), return the exit code.

    With ``live`` the files are played on its broker against its devices. With ``reports`` each
    scenario's JSON report (SPEC §9) is written into that folder (:func:`report_name`).
    """
    if reports is not None:
        try:
            reports.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"bwcsim: cannot write {reports}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    console = Console(highlight=False, soft_wrap=True)
    started = time.perf_counter()

    def show(res: CheckResult) -> None:
        console.print(f"{MARKS[res.status]} {res.file}" + (f"  ({res.name})" if res.name else ""))
        for msg in res.messages:
            console.print(f"     {msg}", markup=False)

    if live is None:
        results = []
        for path in files:
            results.append(check_one(path, factory, reports))
            show(results[-1])
    else:
        results = asyncio.run(_check_live(files, live, show, console, reports))
    n_fail = sum(r.status == "fail" for r in results)
    n_err = sum(r.status == "error" for r in results)
    n_skip = sum(r.status == "skip" for r in results)
    n_off = sum(r.status == "incomplete" for r in results)
    passed = len(results) - n_fail - n_err - n_skip - n_off
    summary = f"{passed} passed, {n_fail} failed"
    if n_off:
        summary += f", {n_off} incomplete"
    if n_skip:
        summary += f", {n_skip} skipped (cannot run live)"
    if n_err:
        summary += f", {n_err} invalid" if live is None else f", {n_err} could not run"
    if live is not None:
        summary += f" · live, {_duration(time.perf_counter() - started)} wall"
    console.print(summary)
    if junit is not None:
        try:
            write_junit(results, junit)
        except OSError as exc:
            print(f"bwcsim: cannot write {junit}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    if n_err:
        return 2
    return 1 if n_fail or n_off else 0


async def _check_live(files: list[Path], live: LiveSession, show: Callable[[CheckResult], None],
                      console: Console, reports: Path | None) -> list[CheckResult]:
    from sim.live.hil import live_obstacles

    speed = live.options.speed

    async def one(path: Path) -> CheckResult:
        res = CheckResult(path)
        t0 = time.perf_counter()
        try:
            scenario = load_scenario(path)
        except BwcError as exc:
            res.status, res.messages = "error", [str(exc)]
            show(res)
            return res
        res.name = scenario.name
        reasons = live_obstacles(scenario)
        if reasons:
            res.status, res.messages = "skip", reasons
            show(res)
            return res
        console.print(f"[dim]  play {path}: {_duration(scenario.end / speed)} at speed {speed:g}[/]")
        try:
            run = await live.play(scenario, say=lambda text: console.print(text, markup=False))
        except BwcError as exc:
            res.status, res.messages = "error", [str(exc)]
        else:
            doc = judge_holds(build_report(run.result), run.result)
            _judge(res, doc, scenario)
            _keep_report(reports, path, doc)
            info = doc["live"]
            if not info["complete"] and doc["verdict"] == "pass":
                # Nothing failed where the devices could be judged; what an offline device
                # could not show (its recordings, its refusals) is no verdict on it.
                res.status = "incomplete"
            for cam, dev in info["devices"].items():
                if "offline" in dev:
                    spans = ", ".join(f"{a:g}-{b:g}" for a, b in dev["offline"])
                    res.messages.append(f"{cam}: device {dev['device']} offline {spans} s (bus)")
                if "unacknowledged" in dev:
                    res.messages.append(f"{cam}: never acknowledged {', '.join(dev['unacknowledged'])}")
            res.messages.extend(info["notes"])
        res.seconds = time.perf_counter() - t0
        show(res)
        return res

    results: list[CheckResult] = await live.each(files, one)
    return results


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{seconds:.1f} s"


def write_junit(results: list[CheckResult], path: Path) -> None:
    suite = ET.Element(
        "testsuite", name="bwcsim check", tests=str(len(results)),
        failures=str(sum(r.status in ("fail", "incomplete") for r in results)),
        errors=str(sum(r.status == "error" for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    skipped = sum(r.status == "skip" for r in results)
    if skipped:
        suite.set("skipped", str(skipped))
    for r in results:
        case = ET.SubElement(suite, "testcase", classname="scenarios", name=str(r.file),
                             time=f"{r.seconds:.3f}")
        if r.status != "pass":
            tag = {"fail": "failure", "incomplete": "failure", "skip": "skipped"}.get(r.status, "error")
            el = ET.SubElement(case, tag, message=r.messages[0] if r.messages else r.status)
            el.text = "\n".join(r.messages)
    ET.indent(suite)
    path.write_text(ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n", "utf-8")
