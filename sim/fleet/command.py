"""``bwcsim fleet``: progress on stderr, the summary for people or as JSON, the worst timelines."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from controller.node import DEFAULT_FACTORY
from controller.policy import BUILTIN
from sim.world.oracle import REPORT_KEYS

from .engine import FleetResult, controller_factory, run_fleet
from .shift import plan_fleet, team_scenario

# ------------------------------------------------------------------------------- output


def render_text(doc: dict[str, Any], console: Any = None) -> None:
    """The fleet summary for people (``--report text``)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    con: Console = console or Console(highlight=False)
    colour = "green" if doc["verdict"] == "pass" else "red"
    con.print(f"[bold]fleet[/]  {doc['cameras']} cameras in {doc['teams']} teams, "
              f"{doc['hours']:g} h, policy {doc['policy']}, seed {doc['seed']}, "
              f"controller {escape(doc['controller'])}")
    con.print(f"verdict: [{colour} bold]{doc['verdict'].upper()}[/]"
              f"  ({doc['failing_cameras']} failing camera(s))")
    con.print(f"events: {doc['events']} handled ({doc['refused']} refused), "
              f"{doc['recordings']} recordings, {doc['footage_h']:.1f} h footage of "
              f"{doc['required_h']:.1f} h required, {doc['alerts']} alerts")
    missed = doc["missed_s"]
    table = Table(title="missed seconds by cause", title_justify="left")
    table.add_column("cause")
    table.add_column("seconds", justify="right")
    for k in REPORT_KEYS:
        if k != "total":
            table.add_row(k, f"{missed[k]:.1f}")
    table.add_row("[bold]total[/]", f"[bold]{missed['total']:.1f}[/]")
    con.print(table)
    if doc["worst"]:
        worst = Table(title="worst cameras", title_justify="left")
        for col in ("camera", "team", "verdict", "missed s", "causes"):
            worst.add_column(col)
        for c in doc["worst"]:
            # One decimal everywhere, like the table above (``{:g}`` gave 8579.64 next to 695.293).
            causes = ", ".join(f"{k} {v:.1f}" for k, v in c["missed_s"].items() if k != "total")
            worst.add_row(c["camera"], c["team"], c["verdict"], f"{c['missed_s']['total']:.1f}",
                          causes)
        con.print(worst)


# ---------------------------------------------------------------------------- the command


def fleet_command(
    cameras: int,
    hours: float,
    seed: int = 0,
    policy: str = "dhs-2023",
    *,
    report: str = "text",
    timeline: Path | None = None,
    workers: int = 1,
    cluster: str | None = None,
    controller: str = DEFAULT_FACTORY,
) -> int:
    """``bwcsim fleet``: run, show a progress bar on stderr, print the summary; the exit code.

    Raises :class:`~controller.errors.BwcError` on invalid input (the CLI turns it into exit 2).
    """
    import sys

    import msgspec
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from controller.errors import InvalidInput

    if cameras < 1:
        raise InvalidInput("must be at least 1", "cameras")
    if not (hours > 0 and math.isfinite(hours)):
        raise InvalidInput("must be a positive number of hours", "hours")
    if workers < 1:
        raise InvalidInput("must be at least 1", "workers")
    if timeline is not None:
        check_output_file(timeline)  # before the run: a bad path should not cost minutes
    err = Console(stderr=True, highlight=False)
    with Progress(
        TextColumn("[bold]fleet[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("cameras"),
        TimeElapsedColumn(), console=err, transient=True,
        disable=not err.is_terminal,  # no bar (and no stray blank line) in logs and pipes
    ) as bar:
        task = bar.add_task("fleet", total=cameras)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = run_fleet(cameras, hours, seed, policy, workers=workers, cluster=cluster,
                           progress=progress, controller=controller)
    doc = result.to_json()
    if timeline is not None:
        write_worst_timelines(result, timeline, err)
    if report == "json":
        sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")
    else:
        render_text(doc)
    return 0 if doc["verdict"] == "pass" else 1


def check_output_file(path: Path) -> None:
    """Fail early, with ``cannot write <path>: <reason>``, when ``path`` cannot be written.

    The folder must exist (it is not created, as for ``bwcsim run --timeline``) and accept a new
    file; ``path`` itself must not be a folder. Raises :class:`~controller.errors.InvalidInput`.
    """
    import tempfile

    from controller.errors import InvalidInput

    folder = path.parent
    if path.is_dir():
        raise InvalidInput(f"cannot write {path}: it is a folder")
    if not folder.is_dir():
        reason = "not a folder" if folder.exists() else "no such folder"
        raise InvalidInput(f"cannot write {path}: {folder}: {reason}")
    try:
        # Permission bits do not tell the whole story (read-only mounts, /proc, root): only
        # creating a file does.
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None


def write_worst_timelines(result: FleetResult, path: Path, err: Any, teams: int = 3) -> list[Path]:
    """Replay the teams of the worst cameras again and write their HTML timelines.

    The first (worst) team goes to ``path``, the next ones beside it as ``<stem>-<team><suffix>``.
    Needs the timeline writer (``sim/views/timeline.py``); without it this notes so on ``err`` and
    writes nothing. Returns the files written. Raises :class:`~controller.errors.InvalidInput`
    (``cannot write <file>: <reason>``) when a file cannot be written.
    """
    import importlib.util

    from controller.errors import InvalidInput

    if importlib.util.find_spec("sim.views.timeline") is None:
        err.print("timeline skipped: the timeline writer (sim/views/timeline.py) is not available")
        return []
    from sim.views.files import write_outputs
    from sim.views.report import build_report
    from sim.world.replay import replay

    chosen: list[str] = []
    for cam in result.worst():
        if cam.team not in chosen:
            chosen.append(cam.team)
    if not chosen:
        err.print("timeline skipped: no camera missed any required footage")
        return []
    ref = result.policy if result.policy in BUILTIN else str((Path.cwd() / result.policy).resolve())
    plans = {p.team: p for p in plan_fleet(result.cameras_requested, result.hours, result.seed,
                                            ref, result.profile, result.controller)}
    written: list[Path] = []
    for i, team in enumerate(chosen[:teams]):
        target = path if i == 0 else path.with_name(f"{path.stem}-{team}{path.suffix}")
        records: list[dict[str, Any]] = []
        run = replay(team_scenario(plans[team]), controller_factory(result.controller),
                     trace=records.append)
        try:
            write_outputs(run, build_report(run), records, timeline=target)
        except NotImplementedError as exc:
            err.print(f"timeline skipped: {exc}")
            return written
        except OSError as exc:
            raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}") from None
        err.print(f"timeline of {team} written to {target}")
        written.append(target)
    return written
