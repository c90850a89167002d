"""Files a run can write next to its report: trace, timeline, waveform, Perfetto."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from .replay import ReplayResult


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
) -> None:
    if trace is not None:
        write_trace(records, trace)
    if timeline is not None or vcd is not None or perfetto is not None:
        raise NotImplementedError("timeline, VCD and Perfetto outputs are not available yet")
