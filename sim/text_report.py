"""``run --report text``: the report for people."""

from __future__ import annotations

from typing import Any

from rich.console import Console


def render_text(report: dict[str, Any], console: Console | None = None) -> None:
    con = console or Console(highlight=False)
    verdict = report["verdict"]
    colour = "green" if verdict == "pass" else "red"
    con.print(f"[bold]{report['scenario']}[/]  policy {report['policy']}  seed {report['seed']}")
    con.print(f"verdict: [{colour} bold]{verdict.upper()}[/]")
    missed = {k: v for k, v in report["missed_s"].items() if v and k != "total"}
    con.print(f"missed: {report['missed_s']['total']:g} s " + (str(missed) if missed else ""))
    for cam, c in report["cameras"].items():
        con.print(f"[bold]{cam}[/] final {c['final_state']}, {len(c['recordings'])} recording(s), "
                  f"{c['refused']} refused")
    exp = report.get("expect")
    if exp is not None:
        con.print("expect: " + ("[green]met[/]" if exp["ok"] else "[red]unmet[/]"))
        for f in exp["failures"]:
            con.print(f"  {f}", markup=False)
