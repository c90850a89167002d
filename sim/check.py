"""``bwcsim check``: replay many scenarios and check each one's ``expect:`` block."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

from rich.console import Console

from controller.errors import BwcError, ControllerFailure
from controller.node import ControllerFactory
from sim.views.report import build_report, exit_code
from sim.world.replay import replay
from sim.world.scenario import load_scenario


@dataclass(slots=True)
class CheckResult:
    file: Path
    name: str = ""
    status: str = "pass"  # pass | fail | error
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0


def check_one(path: Path, factory: ControllerFactory) -> CheckResult:
    res = CheckResult(path)
    t0 = time.perf_counter()
    try:
        scenario = load_scenario(path)
    except BwcError as exc:
        res.status, res.messages = "error", [str(exc)]
        return res
    res.name = scenario.name
    try:
        doc = build_report(replay(scenario, factory))
    except ControllerFailure as exc:  # the controller under test failed this scenario
        res.status, res.messages = "fail", [str(exc)]
        res.seconds = time.perf_counter() - t0
        return res
    if exit_code(doc, scenario.expect) != 0:
        res.status = "fail"
        exp = doc["expect"]
        res.messages = list(exp["failures"]) if exp else []
        if doc["verdict"] != "pass" and (scenario.expect is None or scenario.expect.verdict is None):
            res.messages.append(f"verdict: fail (missed_s.controller = {doc['missed_s']['controller']:g})")
        for cam, c in doc["cameras"].items():
            res.messages.extend(f"{cam}: {u}" for u in c.get("unannounced", []))
            res.messages.extend(f"{cam}: {u}" for u in c.get("accepted_forgeries", []))
    res.seconds = time.perf_counter() - t0
    return res


def check_files(files: list[Path], factory: ControllerFactory, junit: Path | None) -> int:
    """Check every file, print one line each (stdout), return the exit code."""
    console = Console(highlight=False, soft_wrap=True)
    results = []
    for path in files:
        res = check_one(path, factory)
        results.append(res)
        mark = {"pass": "[green]PASS[/]", "fail": "[red]FAIL[/]", "error": "[yellow]ERROR[/]"}
        console.print(f"{mark[res.status]} {path}" + (f"  ({res.name})" if res.name else ""))
        for msg in res.messages:
            console.print(f"     {msg}", markup=False)
    n_fail = sum(r.status == "fail" for r in results)
    n_err = sum(r.status == "error" for r in results)
    summary = f"{len(results) - n_fail - n_err} passed, {n_fail} failed"
    console.print(summary + (f", {n_err} invalid" if n_err else ""))
    if junit is not None:
        try:
            write_junit(results, junit)
        except OSError as exc:
            print(f"bwcsim: cannot write {junit}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    if n_err:
        return 2
    return 1 if n_fail else 0


def write_junit(results: list[CheckResult], path: Path) -> None:
    suite = ET.Element(
        "testsuite", name="bwcsim check", tests=str(len(results)),
        failures=str(sum(r.status == "fail" for r in results)),
        errors=str(sum(r.status == "error" for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for r in results:
        case = ET.SubElement(suite, "testcase", classname="scenarios", name=str(r.file),
                             time=f"{r.seconds:.3f}")
        if r.status != "pass":
            tag = "failure" if r.status == "fail" else "error"
            el = ET.SubElement(case, tag, message=r.messages[0] if r.messages else r.status)
            el.text = "\n".join(r.messages)
    ET.indent(suite)
    path.write_text(ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n", "utf-8")
