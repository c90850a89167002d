"""The ``bwcsim`` command line (SPEC §9).

Exit codes: 0 pass, 1 verdict fail or unmet ``expect``, 2 invalid input (one line on stderr
naming file, line and field; never a traceback). ``run --report json`` prints exactly one JSON
object on stdout; everything else a command says goes to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import msgspec
import typer

from controller.errors import BwcError, InvalidInput
from controller.node import DEFAULT_FACTORY, ControllerFactory
from sim.nodes import load_factory

if TYPE_CHECKING:
    from sim.live.session import LiveSession

app = typer.Typer(
    name="bwcsim",
    help="Body-worn camera recording-control simulator: replay scenarios, judge missed footage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ControllerOpt = Annotated[
    str,
    typer.Option("--controller", help="Controller factory as module:factory (your own firmware model)."),
]


# Hardware in the loop (SPEC §15): the options `run` and `check` share with `--live`. Broker
# credentials and TLS are exactly `bwcsim live`'s.
LiveOpt = Annotated[str | None, typer.Option(
    "--live", metavar="URL", rich_help_panel="Hardware in the loop",
    help="Play on a real broker (mqtt://HOST:PORT, mqtts:// for TLS) against the devices there.")]
CameraMapOpt = Annotated[list[str] | None, typer.Option(
    "--camera-map", metavar="CAM=DEVICE", rich_help_panel="Hardware in the loop",
    help="The device playing a scenario camera, when their ids differ (repeatable).")]
SpeedOpt = Annotated[float, typer.Option(
    rich_help_panel="Hardware in the loop",
    help="The devices' scaled clock: SPEED x Unix time (bwcsim live --speed).")]
ToleranceOpt = Annotated[float | None, typer.Option(
    metavar="SECONDS", rich_help_panel="Hardware in the loop",
    help="Timing tolerance in scenario seconds (default: 0.25 s or 20 ms of wall time x speed).")]
StartAtOpt = Annotated[float | None, typer.Option(
    metavar="UNIX", rich_help_panel="Hardware in the loop",
    help="Unix time of scenario second 0 (default: a moment after subscribing).")]
PromptOpt = Annotated[list[str] | None, typer.Option(
    metavar="EVENT", rich_help_panel="Hardware in the loop",
    help="Ask the operator to cause this event instead of publishing it: dock, undock, button, "
         "signal (repeatable).")]
SpawnOpt = Annotated[bool, typer.Option(
    "--spawn", rich_help_panel="Hardware in the loop",
    help="Start each camera as a bwcsim live process running --controller, for each scenario.")]
LivePrefixOpt = Annotated[str | None, typer.Option(
    "--prefix", rich_help_panel="Hardware in the loop",
    help="The devices' topic prefix (default: the scenario's).")]
UsernameOpt = Annotated[str | None, typer.Option(rich_help_panel="Hardware in the loop",
                                                 help="MQTT user name.")]
PasswordFileOpt = Annotated[Path | None, typer.Option(
    rich_help_panel="Hardware in the loop",
    help="File holding the MQTT password (else $BWCSIM_MQTT_PASSWORD).")]
TlsOpt = Annotated[bool, typer.Option("--tls", rich_help_panel="Hardware in the loop",
                                      help="Connect with TLS.")]
CafileOpt = Annotated[Path | None, typer.Option(rich_help_panel="Hardware in the loop",
                                                help="CA certificates (PEM) for TLS.")]
CertfileOpt = Annotated[Path | None, typer.Option(rich_help_panel="Hardware in the loop",
                                                  help="Client certificate (PEM) for TLS.")]
KeyfileOpt = Annotated[Path | None, typer.Option(rich_help_panel="Hardware in the loop",
                                                 help="Client key (PEM) for TLS.")]


@dataclass(frozen=True)
class _LiveArgs:
    """The hardware-in-the-loop options of one command, as typed."""

    url: str | None
    camera_map: list[str] | None
    speed: float
    tolerance: float | None
    start_at: float | None
    prompt: list[str] | None
    spawn: bool
    prefix: str | None
    username: str | None
    password_file: Path | None
    tls: bool
    cafile: Path | None
    certfile: Path | None
    keyfile: Path | None
    controller: str
    jobs: int = 1


def _session(args: _LiveArgs) -> LiveSession | None:
    """The live session the options describe (``None`` without --live); bad options exit 2."""
    if args.url is None:
        _no_live_options(args)
        return None
    return _live_session(args)


def _live_session(args: _LiveArgs) -> LiveSession:
    """The :class:`sim.live.session.LiveSession` the options describe; bad ones exit 2."""
    import os

    from sim.live.clock import MAX_SPEED
    from sim.live.command import PASSWORD_ENV, LiveOptions, build_endpoint
    from sim.live.devices import SpawnOptions
    from sim.live.hil import PHYSICAL_EVENTS, HilOptions
    from sim.live.session import LiveSession

    assert args.url is not None
    if not 0 < args.speed <= MAX_SPEED:
        _fail(f"--speed: {args.speed:g} is not a speed in (0, {MAX_SPEED:g}]")
    if args.tolerance is not None and not 0 <= args.tolerance < 3600:
        _fail(f"--tolerance: {args.tolerance:g} is not a number of seconds")
    if args.start_at is not None and not 0 < args.start_at < 1e11:
        _fail(f"--start-at: {args.start_at:g} is not a Unix time")
    prompt = frozenset(args.prompt or ())
    for event in sorted(prompt - set(PHYSICAL_EVENTS)):
        _fail(f"--prompt: {event!r} is not a physical event (one of: {', '.join(PHYSICAL_EVENTS)})")
    camera_map: dict[str, str] = {}
    for item in args.camera_map or ():
        cam, sep, device = item.partition("=")
        if not sep or not cam or not device or any(c in device for c in "/+#"):
            _fail(f"--camera-map: {item!r} is not CAM=DEVICE (a device id without / + #)")
        camera_map[cam] = device
    if args.spawn and camera_map:
        _fail("--camera-map: started devices (--spawn) take the scenario's camera ids")
    if args.spawn and prompt:
        _fail("--prompt: started devices (--spawn) take every event over MQTT")
    if args.jobs > 1 and not args.spawn:
        _fail("--jobs: devices on the broker play one scenario at a time; add --spawn")
    if not args.spawn and args.controller != DEFAULT_FACTORY:
        _fail("--controller: with --live the devices are the controllers; add --spawn to start "
              "them with this one")
    try:
        endpoint = build_endpoint(LiveOptions(
            broker=args.url, camera="-", username=args.username, password_file=args.password_file,
            tls=args.tls, cafile=args.cafile, certfile=args.certfile, keyfile=args.keyfile,
        ))
    except InvalidInput as exc:
        # The URL is --live here; the rest of the message is bwcsim live's, word for word.
        _fail(f"--live: {exc.message}" if exc.field == "--broker" else str(exc))
    if args.spawn:
        _factory(args.controller)  # a bad controller is one line now, not one per device later
    spawn = SpawnOptions(
        controller=args.controller, broker=args.url, username=args.username,
        password_file=args.password_file,
        password=None if args.password_file else os.environ.get(PASSWORD_ENV) or None,
        tls=args.tls, cafile=args.cafile, certfile=args.certfile, keyfile=args.keyfile,
    ) if args.spawn else None
    options = HilOptions(
        broker=args.url, endpoint=endpoint, prefix=args.prefix, camera_map=camera_map,
        speed=args.speed, tolerance_s=args.tolerance, start_at=args.start_at, prompt=prompt,
    )
    return LiveSession(options=options, spawn=spawn, jobs=args.jobs)


class ReportFormat(StrEnum):
    json = "json"
    text = "text"


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"bwcsim: {message}", err=True)
    raise typer.Exit(code)


def _factory(spec: str) -> ControllerFactory:
    try:
        return load_factory(spec)
    except BwcError as exc:
        _fail(str(exc))


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Scenario file (format version 1).")],
    report: Annotated[ReportFormat, typer.Option(help="Report on stdout.")] = ReportFormat.text,
    trace: Annotated[Path | None, typer.Option(help="Write a JSON Lines trace.")] = None,
    timeline: Annotated[Path | None, typer.Option(help="Write an HTML timeline.")] = None,
    vcd: Annotated[Path | None, typer.Option(help="Write a VCD waveform.")] = None,
    perfetto: Annotated[Path | None, typer.Option(help="Write a Perfetto/Chrome trace JSON.")] = None,
    controller: ControllerOpt = DEFAULT_FACTORY,
    live: LiveOpt = None,
    camera_map: CameraMapOpt = None,
    speed: SpeedOpt = 1.0,
    tolerance: ToleranceOpt = None,
    start_at: StartAtOpt = None,
    prompt: PromptOpt = None,
    spawn: SpawnOpt = False,
    prefix: LivePrefixOpt = None,
    username: UsernameOpt = None,
    password_file: PasswordFileOpt = None,
    tls: TlsOpt = False,
    cafile: CafileOpt = None,
    certfile: CertfileOpt = None,
    keyfile: KeyfileOpt = None,
) -> None:
    """Replay one scenario and report what footage was missed, and why.

    With --live, play it on a real broker against the devices there and judge what they did.
    """
    from sim.views.files import write_outputs
    from sim.views.report import build_report, exit_code
    from sim.world.replay import replay
    from sim.world.scenario import load_scenario

    args = _LiveArgs(live, camera_map, speed, tolerance, start_at, prompt, spawn, prefix, username,
                     password_file, tls, cafile, certfile, keyfile, controller)
    session = _session(args)
    factory = _factory(controller)
    try:
        scenario = load_scenario(file)
    except BwcError as exc:
        _fail(str(exc))
    records: list[dict[str, Any]] | None = [] if (trace or timeline or vcd or perfetto) else None
    if session is not None:
        try:
            run_live = session.run(scenario)
        except BwcError as exc:
            _fail(str(exc))
        result = run_live.result
        records = run_live.records
    else:
        result = replay(scenario, factory, records.append if records is not None else None)
    doc = build_report(result)
    try:
        write_outputs(result, doc, records or [], trace=trace, timeline=timeline, vcd=vcd,
                      perfetto=perfetto)
    except OSError as exc:
        _fail(f"cannot write output: {exc}")
    if report is ReportFormat.json:
        sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")
    else:
        from sim.views.text import render_text

        render_text(doc)
    code = exit_code(doc, scenario.expect)
    if session is not None and not doc["live"]["complete"]:
        code = max(code, 1)  # a device offline or silent: not everything could be judged
    raise typer.Exit(code)


def _scenario_files(paths: list[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*.y*ml") if q.suffix in (".yaml", ".yml")
                              and not _is_policy(q))
        else:
            yield p


def _is_policy(path: Path) -> bool:
    """Policy files may sit beside scenarios (e.g. ``scenarios/policies/``); skip them."""
    return "policies" in path.parts


def _no_live_options(args: _LiveArgs) -> None:
    """Without --live, a hardware-in-the-loop option is a mistake worth one line."""
    given = [name for name, value, default in (
        ("--camera-map", args.camera_map, None), ("--speed", args.speed, 1.0),
        ("--tolerance", args.tolerance, None), ("--start-at", args.start_at, None),
        ("--prompt", args.prompt, None), ("--spawn", args.spawn, False),
        ("--prefix", args.prefix, None), ("--username", args.username, None),
        ("--password-file", args.password_file, None), ("--tls", args.tls, False),
        ("--cafile", args.cafile, None), ("--certfile", args.certfile, None),
        ("--keyfile", args.keyfile, None), ("--jobs", args.jobs, 1),
    ) if value not in (default, [])]
    if given:
        _fail(f"{given[0]}: only with --live URL")


@app.command()
def check(
    paths: Annotated[list[Path] | None, typer.Argument(help="Scenario files or folders.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write a JUnit XML file.")] = None,
    reports: Annotated[Path | None, typer.Option(
        help="Write each scenario's JSON report into this folder.")] = None,
    controller: ControllerOpt = DEFAULT_FACTORY,
    live: LiveOpt = None,
    camera_map: CameraMapOpt = None,
    speed: SpeedOpt = 1.0,
    tolerance: ToleranceOpt = None,
    start_at: StartAtOpt = None,
    prompt: PromptOpt = None,
    spawn: SpawnOpt = False,
    jobs: Annotated[int, typer.Option(
        min=1, rich_help_panel="Hardware in the loop",
        help="Scenarios played at once (started devices only, --spawn).")] = 1,
    prefix: LivePrefixOpt = None,
    username: UsernameOpt = None,
    password_file: PasswordFileOpt = None,
    tls: TlsOpt = False,
    cafile: CafileOpt = None,
    certfile: CertfileOpt = None,
    keyfile: KeyfileOpt = None,
) -> None:
    """Replay every scenario (default: scenarios/) and check its expect: block.

    With --live, play each on a real broker against the devices there (or, with --spawn, against
    bwcsim live processes started for it); scenarios a real broker cannot play are skipped.
    """
    from .check import check_files

    args = _LiveArgs(live, camera_map, speed, tolerance, start_at, prompt, spawn, prefix, username,
                     password_file, tls, cafile, certfile, keyfile, controller, jobs)
    session = _session(args)
    if session is not None and start_at is not None and jobs > 1:
        _fail("--start-at: one start for several scenarios at once (--jobs) cannot be")
    factory = _factory(controller)
    files = list(_scenario_files(paths or [Path("scenarios")]))
    missing = [f for f in files if not f.exists()]
    if missing:
        _fail(f"{missing[0]}: no such file or folder")
    if not files:
        _fail("no scenario files found")
    raise typer.Exit(check_files(files, factory, junit, session, reports))


@app.command()
def chart(
    format: Annotated[str, typer.Option("--format", help="Chart format.")] = "mermaid",
) -> None:
    """Print the camera state chart, generated from the state table."""
    from controller.machine import mermaid

    if format != "mermaid":
        _fail(f"--format: unknown format {format!r} (one of: mermaid)")
    sys.stdout.write(mermaid())


@app.command("trace-reqs")
def trace_reqs(
    format: Annotated[str, typer.Option("--format", help="text, markdown or json.")] = "text",
    tests: Annotated[Path, typer.Option(help="Tests folder.")] = Path("tests"),
    scenarios: Annotated[list[Path] | None, typer.Option(help="Scenario folders.")] = None,
) -> None:
    """List every requirement with the tests and scenarios that cover it; exit 1 if one has none."""
    from sim.spec import traceability as tr

    renderers = {"text": tr.render_text, "markdown": tr.render_markdown, "json": tr.render_json}
    if format not in renderers:
        _fail(f"--format: unknown format {format!r} (one of: {', '.join(renderers)})")
    matrix = tr.build_matrix(tests, scenarios or [Path("scenarios")])
    sys.stdout.write(renderers[format](matrix).rstrip("\n") + "\n")
    gaps = tr.missing(matrix)
    if gaps:
        typer.echo(f"bwcsim: requirements without a test: {', '.join(gaps)}", err=True)
        raise typer.Exit(1)


@app.command()
def fleet(
    cameras: Annotated[int, typer.Option(help="Number of cameras (teams of 2-6).")],
    hours: Annotated[float, typer.Option(help="Shift length in hours.")],
    seed: Annotated[int, typer.Option(help="Seed of the generated shifts.")] = 0,
    policy: Annotated[str, typer.Option(help="Built-in policy name or policy file.")] = "dhs-2023",
    report: Annotated[ReportFormat, typer.Option(help="Summary on stdout.")] = ReportFormat.text,
    timeline: Annotated[Path | None, typer.Option(help="HTML timeline of the worst cameras.")] = None,
    workers: Annotated[int, typer.Option(help="Local worker processes.")] = 1,
    cluster: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://HOST:8786.")
    ] = None,
) -> None:
    """Simulate a fleet through a generated shift, with a progress bar and a summary."""
    from .fleet import fleet_command

    try:
        code = fleet_command(cameras, hours, seed, policy, report=report.value, timeline=timeline,
                             workers=workers, cluster=cluster)
    except BwcError as exc:
        _fail(str(exc))
    raise typer.Exit(code)


@app.command()
def live(
    broker: Annotated[str, typer.Option(help="Broker URL: mqtt://HOST:PORT (mqtts:// for TLS).")],
    camera: Annotated[str, typer.Option(help="Camera id (topics <prefix>/<camera>/...).")],
    team: Annotated[list[str] | None, typer.Option(help="Team the camera belongs to (repeatable).")] = None,
    prefix: Annotated[str, typer.Option(help="Topic prefix.")] = "bwc",
    policy: Annotated[str, typer.Option(help="Built-in policy name or policy file.")] = "dhs-2023",
    controller: ControllerOpt = DEFAULT_FACTORY,
    initial: Annotated[str, typer.Option(help="docked, standby or pre_buffer.")] = "pre_buffer",
    client_id: Annotated[str | None, typer.Option(help="MQTT client id (default bwcsim-<camera>).")] = None,
    username: Annotated[str | None, typer.Option(help="MQTT user name.")] = None,
    password_file: Annotated[
        Path | None, typer.Option(help="File holding the MQTT password (else $BWCSIM_MQTT_PASSWORD).")
    ] = None,
    tls: Annotated[bool, typer.Option("--tls", help="Connect with TLS.")] = False,
    cafile: Annotated[Path | None, typer.Option(help="CA certificates (PEM) for TLS.")] = None,
    certfile: Annotated[Path | None, typer.Option(help="Client certificate (PEM) for TLS.")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="Client key (PEM) for TLS.")] = None,
    log_format: Annotated[str, typer.Option(help="text or json (JSON lines on stderr).")] = "text",
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    backoff_initial: Annotated[float, typer.Option(help="First reconnect delay, seconds.")] = 0.5,
    backoff_max: Annotated[float, typer.Option(help="Longest reconnect delay, seconds.")] = 30.0,
    seed: Annotated[int, typer.Option(help="Seed of the reconnect jitter.")] = 0,
    clock: Annotated[str, typer.Option(
        help="unix: the camera's times (and triggers' ts) are Unix seconds; run: seconds since start."
    )] = "unix",
    param: Annotated[list[str] | None, typer.Option(
        help="Camera parameter NAME=VALUE (repeatable), e.g. prebuffer_s=60 (SPEC §2)."
    )] = None,
    speed: Annotated[float, typer.Option(
        help="Scaled clock: the camera's clock reads SPEED x Unix time, its timers run SPEED times faster."
    )] = 1.0,
    start_at: Annotated[str | None, typer.Option(
        metavar="UNIX|-",
        help="Power on (enter --initial) at this Unix time, connected but off until then; -: say "
             "ready on stdout, then read the time from stdin."
    )] = None,
) -> None:
    """Run one camera's controller on a real MQTT broker until Ctrl-C or SIGTERM."""
    from sim.live.command import LiveOptions, run_live

    if log_format not in ("text", "json"):
        _fail(f"--log-format: unknown format {log_format!r} (one of: text, json)")
    if initial not in ("docked", "standby", "pre_buffer"):
        _fail(f"--initial: unknown state {initial!r} (one of: docked, standby, pre_buffer)")
    if clock not in ("unix", "run"):
        _fail(f"--clock: unknown clock {clock!r} (one of: unix, run)")
    if not 0 < backoff_initial <= 3600 or not 0 < backoff_max <= 86400:
        _fail("--backoff-initial/--backoff-max: must be positive seconds")
    options = LiveOptions(
        broker=broker, camera=camera, teams=tuple(team or ()), prefix=prefix, policy=policy,
        controller=controller, initial=initial,  # type: ignore[arg-type]  # checked above
        client_id=client_id, username=username, password_file=password_file, tls=tls,
        cafile=cafile, certfile=certfile, keyfile=keyfile,
        log_format=log_format,  # type: ignore[arg-type]  # checked above
        log_level=log_level, backoff_initial_s=backoff_initial, backoff_max_s=backoff_max, seed=seed,
        clock=clock,  # type: ignore[arg-type]  # checked above
        params=tuple(param or ()), speed=speed, start_at=_unix_time(start_at),
        start_at_stdin=start_at == "-",
    )
    try:
        code = run_live(options)
    except BwcError as exc:
        _fail(str(exc))
    raise typer.Exit(code)


def _unix_time(text: str | None) -> float | None:
    """``--start-at``: a Unix time, or ``-`` (read later from stdin, so ``None`` for now)."""
    if text is None or text == "-":
        return None
    try:
        return float(text)
    except ValueError:
        _fail(f"--start-at: {text!r} is not a Unix time (or -)")


@app.command()
def schema(
    asyncapi: Annotated[bool, typer.Option("--asyncapi", help="Print the AsyncAPI 3.0 document.")] = False,
    format: Annotated[
        str | None, typer.Option("--format", help="json or yaml (default: json; yaml with --asyncapi).")
    ] = None,
    prefix: Annotated[str, typer.Option(help="Topic prefix used in the AsyncAPI addresses.")] = "bwc",
) -> None:
    """Print the JSON Schema (draft 2020-12) of every payload, or the AsyncAPI document."""
    from sim.spec.schema import asyncapi_document, json_schema, render

    chosen = format or ("yaml" if asyncapi else "json")
    if chosen not in ("json", "yaml"):
        _fail(f"--format: unknown format {chosen!r} (one of: json, yaml)")
    doc = asyncapi_document(prefix) if asyncapi else json_schema()
    sys.stdout.write(render(doc, chosen))


@app.command()
def fuzz(
    examples: Annotated[int, typer.Option(min=1, help="Examples to generate.")] = 200,
    seed: Annotated[int, typer.Option(help="Search seed (same seed, same examples).")] = 0,
    save: Annotated[Path | None, typer.Option(help="Folder for the shrunk counterexample.")] = None,
    controller: ControllerOpt = DEFAULT_FACTORY,
) -> None:
    """Search generated scenarios for a missed recording (P-NOMISS); save the shrunk failure."""
    from sim.search.fuzz import run_cli

    _factory(controller)
    try:
        code = run_cli(examples, seed, save, controller)
    except BwcError as exc:
        _fail(str(exc))
    raise typer.Exit(code)


@app.command()
def explore(
    depth: Annotated[int, typer.Option(min=1, help="Steps per sequence.")] = 6,
    late: Annotated[bool, typer.Option("--late", help="Also explore late triggers.")] = False,
    save: Annotated[Path | None, typer.Option(help="Folder for the first failing sequence.")] = None,
    max_failures: Annotated[
        int, typer.Option(min=0, help="Stop after this many failing sequences (0: no limit).")
    ] = 10,
    controller: ControllerOpt = DEFAULT_FACTORY,
) -> None:
    """Replay every sequence of key events up to --depth and judge each with the oracle."""
    from sim.search.explore import run_cli

    _factory(controller)
    try:
        code = run_cli(depth, controller, late_starts=late, save=save, max_failures=max_failures)
    except BwcError as exc:
        _fail(str(exc))
    raise typer.Exit(code)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except BwcError as exc:  # last line of defence: input errors never show a traceback
        typer.echo(f"bwcsim: {exc}", err=True)
        sys.exit(2)
