"""Two runs side by side: ``bwcsim diff A B`` and the studio's "what if" panel.

Theory of operation
-------------------
A what-if question is answered by a comparison, not by a second report to read: did the
verdict change, which causes gained or lost seconds, on which camera. :func:`compare` takes two
SPEC §9 reports (the original and the changed run) and lines them up: the verdicts, the
``missed_s`` totals by cause with the change, and the same per camera (a camera only one run
has is shown against nothing). Only causes with seconds in either run are listed, in the
report's order, so the answer to "what changed?" is what is on the screen. Both the text
renderer and the studio's JSON use the one structure, so they cannot disagree.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sim.world.oracle import REPORT_KEYS

from .model import fmt_duration

__all__ = ["compare", "render_compare_text"]

_EPS = 1e-6


def _rows(a: dict[str, float] | None, b: dict[str, float] | None) -> list[dict[str, Any]]:
    a = a or {}
    b = b or {}
    rows = []
    for key in REPORT_KEYS:
        va, vb = float(a.get(key, 0.0)), float(b.get(key, 0.0))
        if key != "total" and va <= _EPS and vb <= _EPS:
            continue
        rows.append({"cause": key, "a": va, "b": vb, "change": round(vb - va, 6)})
    return rows


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The two reports lined up (see module docs); JSON-ready."""
    cams = list(dict.fromkeys([*a["cameras"], *b["cameras"]]))
    cameras = {}
    for cam in cams:
        ca, cb = a["cameras"].get(cam), b["cameras"].get(cam)
        cameras[cam] = {
            "in": [name for name, c in (("a", ca), ("b", cb)) if c is not None],
            "missed_s": _rows(ca["missed_s"] if ca else None, cb["missed_s"] if cb else None),
            "final_state": [ca["final_state"] if ca else None, cb["final_state"] if cb else None],
            "recordings": [len(ca["recordings"]) if ca else None,
                           len(cb["recordings"]) if cb else None],
            "refused": [ca["refused"] if ca else None, cb["refused"] if cb else None],
        }
    return {
        "a": {"scenario": a["scenario"], "verdict": a["verdict"]},
        "b": {"scenario": b["scenario"], "verdict": b["verdict"]},
        "verdict_changed": a["verdict"] != b["verdict"],
        "missed_s": _rows(a["missed_s"], b["missed_s"]),
        "cameras": cameras,
    }


def _secs(s: float) -> str:
    return fmt_duration(s) if s > _EPS else "0 s"


def _change(d: float) -> Text:
    if abs(d) <= _EPS:
        return Text("same", style="dim")
    return Text(("+" if d > 0 else "-") + fmt_duration(abs(d)), style="red" if d > 0 else "green")


def render_compare_text(diff: dict[str, Any], names: tuple[str, str],
                        console: Console | None = None) -> None:
    """Print the comparison for a terminal: verdicts, then missed seconds by cause, per camera."""
    con = console or Console(highlight=False)
    va, vb = diff["a"]["verdict"], diff["b"]["verdict"]
    style = "bold red" if diff["verdict_changed"] else "bold"
    con.print(Text.assemble("verdict: ", (va.upper(), "green" if va == "pass" else "red"), " → ",
                            (vb.upper(), "green" if vb == "pass" else "red"),
                            ("  (changed)" if diff["verdict_changed"] else "  (same)", style)))
    con.print(Text(f"A: {names[0]}  ({diff['a']['scenario']})", style="dim"))
    con.print(Text(f"B: {names[1]}  ({diff['b']['scenario']})", style="dim"))

    def table(title: str, rows: list[dict[str, Any]]) -> Table:
        t = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False, show_edge=False, padding=(0, 1, 0, 0))
        for name, opts in (("missed", {"no_wrap": True}), ("A", {"justify": "right"}),
                           ("B", {"justify": "right"}), ("change", {"justify": "right"})):
            t.add_column(name, **opts)
        for r in rows:
            t.add_row(r["cause"], _secs(r["a"]), _secs(r["b"]), _change(r["change"]))
        return t

    con.print(table("All cameras", diff["missed_s"]))
    for cam, c in diff["cameras"].items():
        con.print()
        if c["in"] != ["a", "b"]:
            con.print(Text(f"{cam}: only in {'A' if c['in'] == ['a'] else 'B'}", style="yellow"))
        fa, fb = c["final_state"]
        ra, rb = c["recordings"]
        na, nb = c["refused"]
        con.print(Text(f"{cam}: final {fa} → {fb} · recordings {ra} → {rb} · refused {na} → {nb}",
                       style="bold"))
        con.print(table("", c["missed_s"]))
