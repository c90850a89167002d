"""``run --report text``: the SPEC §9 report for people, sized for an 80-column terminal.

Layout: a verdict banner (scenario, PASS/FAIL, why), the missed totals by cause and what each
of those causes means, then per camera a table of required windows (coverage and misses by
cause), its recordings, its alerts and the messages it refused (with the reason in plain words
and, for a word the policy does not know, the allowed ones), and finally the ``expect:``
outcome — or a warning that there is none, with the block that would pin this run down. Times
are ``HH:MM:SS``. The report speaks to a trainer, so no code word (``not_ready``,
``reason_not_allowed``) appears without its meaning beside it.

Column rules: what a reader matches by eye or greps for never wraps — times, numbers, and the
closed vocabulary of activity names, alert kinds and causes (the longest,
``missed_required_recording``, is 25 characters, and a word cut in two is neither readable
nor findable). Scenario-chosen ids fold, since they can be any length. Free text (the misses
by cause, a recording's reasons, an alert's span) wraps at its spaces, so it gives way first
when a table is too wide; a span is written ``start - end`` with spaces for that reason, so it
breaks between its two times, never inside one.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sim.world.oracle import CAUSES

from .model import SAID_CATEGORIES, fmt_duration, fmt_hms, live_summary, miss_tone
from .timeline import CAUSE_MEANING
from .words import refusal_sentence

__all__ = ["render_text", "window_coverage"]


def window_coverage(window: dict[str, Any]) -> float:
    """Percent of a required window that footage covers (100 for an empty window)."""
    length = window["end"] - window["start"]
    if length <= 0:
        return 100.0
    missed = sum(m["end"] - m["start"] for m in window["missed"])
    return float(max(0.0, 100.0 * (length - missed) / length))


def _secs(s: float) -> str:
    """Compact seconds for table cells: ``899.85 s``."""
    return f"{s:.2f}".rstrip("0").rstrip(".") + " s"


def _by_cause(misses: list[dict[str, Any]]) -> str:
    totals: dict[str, float] = {}
    for m in misses:
        totals[m["cause"]] = totals.get(m["cause"], 0.0) + m["end"] - m["start"]
    return ", ".join(f"{c} {_secs(totals[c])}" for c in CAUSES if c in totals) or "-"


def _table(title: str, *columns: tuple[str, dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False, show_edge=False, expand=False, padding=(0, 1, 0, 0))
    for name, opts in columns:
        table.add_column(name, **opts)
    return table


_TIME = {"no_wrap": True}
_NAME = {"no_wrap": True}  # activity names, alert kinds, causes: a fixed vocabulary
_ID = {"overflow": "fold"}
_NUM = {"no_wrap": True, "justify": "right"}
_FREE = {"overflow": "fold"}  # wraps at spaces first; folds only a word wider than the column
_TONE_STYLE = {"fault": "red", "excused": "yellow", "none": "green"}


def _banner(report: dict[str, Any]) -> Panel:
    ok = report["verdict"] == "pass"
    colour = "green" if ok else "red"
    missed = report["missed_s"]
    total = missed["total"]
    auth = report.get("auth", "none")
    lines = [
        Text(report["scenario"], style="bold"),
        Text(f"policy {report['policy']} · seed {report['seed']} · "
             f"duration {fmt_hms(report['end'])} · {len(report['cameras'])} camera(s)"),
        Text("auth signed: commands verified against the trust file") if auth == "signed" else
        Text("auth none: commands are not signed, anyone on the bus can command the cameras",
             style="yellow"),
    ]
    forged = sum(len(c.get("accepted_forgeries", [])) for c in report["cameras"].values())
    if ok:
        why = "no second lost through the controller's fault; every other miss announced"
    elif forged:
        why = f"a camera acted on {forged} command(s) it had to refuse"
    elif missed["controller"] > 0:
        why = f"the controller failed to record {fmt_duration(missed['controller'])}"
    elif report.get("phantom_s", 0) > 0 or _count(report, "phantom"):
        why = "a camera shows footage it could not have captured"
    elif report.get("prohibited_s", 0) > 0:
        why = f"a camera recorded {fmt_duration(report['prohibited_s'])} the policy prohibits"
    elif _count(report, "stopped"):
        why = "a device signal or a repeated message stopped a recording"
    else:
        why = "a miss was not announced by the alert the policy requires"
    lines.append(Text(why, style=colour))
    if total > 0:
        causes = ", ".join(f"{c} {fmt_duration(missed[c])}" for c in CAUSES if missed[c] > 0)
        lines.append(Text(f"missed {fmt_duration(total)}: {causes}"))
        for c in CAUSES:
            if missed[c] > 0:
                lines.append(Text(f"  {c}: {CAUSE_MEANING.get(c, '')}", style="dim"))
    else:
        lines.append(Text("no required footage missed"))
    lines.append(_footage_line(report))
    refused = sum(len(cam.get("refusals", [])) for cam in report["cameras"].values())
    if refused:
        lines.append(Text(f"{refused} message(s) refused by the camera: they changed nothing "
                          "(listed under each camera)", style="yellow"))
    return Panel(Group(*lines), title=f"[bold]{'PASS' if ok else 'FAIL'}[/]",
                 border_style=colour, expand=False)


def _count(report: dict[str, Any], key: str) -> int:
    return sum(len(cam.get(key, [])) for cam in report["cameras"].values())


def _footage_line(report: dict[str, Any]) -> Text:
    """What the footage itself shows (P-PRIVACY, P-NOPHANTOM), one line, always present."""
    prohibited = report.get("prohibited_s", 0.0)
    phantom = report.get("phantom_s", 0.0)
    flaws = _count(report, "phantom")
    parts = [
        f"recorded while the policy prohibits it: {fmt_duration(prohibited)}" if prohibited > 0
        else "nothing recorded that the policy prohibits",
        f"footage that cannot exist: {fmt_duration(phantom)} ({flaws} finding(s))" if flaws
        else "no footage that could not exist",
    ]
    return Text("; ".join(parts), style="red" if prohibited > 0 or flaws else "")


def _footage_tables(cam: dict[str, Any]) -> list[Any]:
    parts: list[Any] = []
    if cam.get("prohibited"):
        table = _table("Recorded while the policy prohibits it (nothing justified it)",
                       ("start", _TIME), ("end", _TIME), ("seconds", _NUM),
                       ("activity", _ID), ("recording", _ID))
        for item in cam["prohibited"]:
            table.add_row(fmt_hms(item["start"]), fmt_hms(item["end"]),
                          _secs(item["end"] - item["start"]), ", ".join(item["activity_ids"]),
                          item["recording"])
        parts.append(table)
    if cam.get("phantom"):
        table = _table("Footage that cannot exist", ("start", _TIME), ("end", _TIME),
                       ("kind", _NAME), ("why", _FREE))
        for item in cam["phantom"]:
            table.add_row(fmt_hms(item["start"]), fmt_hms(item["end"]), item["kind"],
                          f"{item['recording']}: {item['detail']}")
        parts.append(table)
    for problem in cam.get("stopped", []):
        parts.append(Text(f"  stopped by a signal or duplicate: {problem}", style="red"))
    return parts


def _camera(cam_id: str, cam: dict[str, Any]) -> list[Any]:
    total = cam["missed_s"]["total"]
    # Red only for what fails the verdict; an explained miss on a passing camera is amber.
    tone = miss_tone(cam["missed_s"], [*cam.get("unannounced", []),
                                       *(p for key, _ in SAID_CATEGORIES for p in cam.get(key, []))])
    summary = Text.assemble(
        f"final {cam['final_state']} · {len(cam['recordings'])} recording(s) · "
        f"{len(cam['alerts'])} alert(s) · {cam['refused']} refused · missed ",
        (_secs(total) if total > 0 else "nothing", _TONE_STYLE[tone]),
        " · prohibited ",
        (_secs(cam.get("prohibited_s", 0.0)), "red" if cam.get("prohibited_s", 0.0) > 0 else ""),
    )
    parts: list[Any] = [Text(""), Text(cam_id, style="bold underline"), summary]

    req = _table("Required windows", ("activity", _NAME), ("id", _ID), ("start", _TIME),
                 ("end", _TIME), ("covered", _NUM), ("missed", _FREE))
    for w in cam["required"]:
        pct = window_coverage(w)
        req.add_row(w["activity"], w["activity_id"], fmt_hms(w["start"]), fmt_hms(w["end"]),
                    Text(f"{pct:.1f}%", style="green" if not w["missed"] else "red"),
                    _by_cause(w["missed"]))
    parts.append(req if cam["required"] else Text("  no required window", style="dim"))

    recs = _table("Recordings", ("incident", _ID), ("start", _TIME), ("end", _TIME),
                  ("buffer", _NUM), ("seg", _NUM), ("reasons", _FREE))
    for r in cam["recordings"]:
        recs.add_row(r["incident"], fmt_hms(r["start"]),
                     fmt_hms(r["end"]) + (" (open)" if r["open"] else ""),
                     f"{r['buffer_s']:g} s", str(r["segments"]), ", ".join(r["reasons"]))
    parts.append(recs if cam["recordings"] else Text("  no recording", style="dim"))

    alerts = _table("Alerts", ("at", _TIME), ("kind", _NAME), ("cause", _NAME),
                    ("activity", _ID), ("span", _FREE))
    for a in cam["alerts"]:
        span = a.get("span")
        alerts.add_row(fmt_hms(a["at"]), a["kind"], a.get("cause") or "",
                       a.get("activity_id") or "",
                       f"{fmt_hms(span[0])} - {fmt_hms(span[1])}" if span else "")
    parts.append(alerts if cam["alerts"] else Text("  no alert", style="dim"))
    if cam.get("refusals"):
        refused = _table("Refused messages (they changed nothing)", ("at", _TIME),
                         ("message and why", _FREE))
        for item in cam["refusals"]:
            refused.add_row(fmt_hms(item["at"]), refusal_sentence(item))
        parts.append(refused)
    parts += _footage_tables(cam)
    for problem in cam.get("unannounced", []):
        parts.append(Text(f"  unannounced: {problem}", style="red"))
    for problem in cam.get("overdue_boot", []):
        parts.append(Text(f"  boot overdue: {problem}", style="red"))
    for key, label in SAID_CATEGORIES:
        for problem in cam.get(key, []):
            parts.append(Text(f"  {label}: {problem}", style="red"))
    for problem in cam.get("accepted_forgeries", []):
        parts.append(Text(f"  accepted forgery: {problem}", style="red"))
    return parts


def _expect_suggestion(report: dict[str, Any]) -> str:
    """The ``expect:`` block this run meets, as YAML to paste under the scenario."""
    missed = report["missed_s"]
    causes = ", ".join(f"{k}: {missed[k]:g}" for k in missed if k == "total" or missed[k] > 0)
    lines = ["expect:", f"  verdict: {report['verdict']}", f"  missed_s: {{{causes}}}"]
    recs = ", ".join(f"{cam}: {len(c['recordings'])}" for cam, c in report["cameras"].items())
    lines.append(f"  recordings: {{{recs}}}")
    refused = {cam: c["refused"] for cam, c in report["cameras"].items() if c["refused"]}
    if refused:
        lines.append("  refused: {" + ", ".join(f"{k}: {v}" for k, v in refused.items()) + "}")
    return "\n".join(lines)


def render_text(report: dict[str, Any], console: Console | None = None) -> None:
    """Print ``report`` (the SPEC §9 dict) for a person reading a terminal."""
    con = console or Console(highlight=False)
    con.print(_banner(report))
    if report.get("live") is not None:
        con.print(Panel(Group(*(Text(line) for line in live_summary(report["live"]))),
                        title="[bold]live[/]", border_style="blue", expand=False))
    for cam_id, cam in report["cameras"].items():
        for part in _camera(cam_id, cam):
            con.print(part)
    exp = report.get("expect")
    con.print()
    if exp is None:
        con.print(Text("warning: this scenario has no expect: block, so nothing checks that it "
                       "still shows what it was written to show. To pin this run down, add:",
                       style="yellow"))
        con.print(Text(_expect_suggestion(report), style="yellow"))
    elif exp["ok"]:
        con.print("expect: [green bold]met[/]")
    else:
        con.print("expect: [red bold]not met[/]")
        for failure in exp["failures"]:
            con.print(Text(f"  - {failure}", style="red"))
