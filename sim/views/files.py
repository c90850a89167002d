"""Writing a run's files: the trace, and each picture drawn from the view model (SPEC §10).

The renderers (:mod:`sim.views.timeline`, :mod:`sim.views.waveform`, :mod:`sim.views.perfetto`)
read one :class:`~sim.views.model.RunView`; this module builds it once and hands it to each
renderer asked for. It sits above them, so no renderer ever imports it back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from sim.world.replay import ReplayResult

from .model import run_view

__all__ = ["write_outputs", "write_trace"]


def write_trace(records: list[dict[str, Any]], path: Path) -> None:
    """JSON Lines, one record per observed event, in the order they happened."""
    enc = msgspec.json.Encoder()
    with path.open("wb") as fh:
        for rec in records:
            fh.write(enc.encode(rec))
            fh.write(b"\n")


def write_outputs(
    result: ReplayResult,
    report: dict[str, Any],
    records: list[dict[str, Any]],
    *,
    trace: Path | None = None,
    timeline: Path | None = None,
    vcd: Path | None = None,
    perfetto: Path | None = None,
    projector: bool = False,
) -> None:
    """Write each requested file; ``records`` are the trace records of the same run."""
    if trace is not None:
        write_trace(records, trace)
    if timeline is None and vcd is None and perfetto is None:
        return
    view = run_view(result, report, records)
    # Imported here so that writing only a trace never imports the renderers.
    if timeline is not None:
        if projector:  # drawn for a room (sim.views.projector), else for a desk
            from .projector import render_projector as render
        else:
            from .timeline import render_timeline as render
        timeline.write_text(render(view), encoding="utf-8")
    if vcd is not None:
        from .waveform import write_vcd

        with vcd.open("w", encoding="utf-8", newline="\n") as fh:
            write_vcd(view, fh)
    if perfetto is not None:
        from .perfetto import render_perfetto

        perfetto.write_bytes(render_perfetto(view))
