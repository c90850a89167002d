"""The ``bwcsim`` command line (SPEC §9).

Exit codes: 0 pass, 1 verdict fail or unmet ``expect``, 2 invalid input (one line on stderr
naming file, line and field; never a traceback). ``run --report json`` prints exactly one JSON
object on stdout; everything else a command says goes to stderr.

Conventions every command follows (``tests/test_cli_consistency.py`` checks them, whatever the
commands are):

* ``bwcsim --help`` lists the commands in the order they are defined in this module, then the
  command groups (``app.add_typer``) in theirs, and the README's command table lists them in
  that same order: add a new command where it belongs for a reader, and its README row at the
  same place.
* A command that runs a controller takes ``--controller`` (:data:`ControllerOpt`), resolved
  by :func:`sim.nodes.load_factory`; a command that never runs one is listed in the test.
* An option with a fixed set of values is an enum, so ``--help`` shows the choices and click
  refuses anything else with exit 2. Flags are declared as bare ``--name`` booleans; the
  root group's class (below) keeps typer from printing a ``<bool>`` value placeholder after
  them, in every command and sub-command.
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
from typer.core import TyperCommand, TyperGroup

from controller.errors import BwcError, ControllerFailure, InvalidInput
from controller.node import DEFAULT_FACTORY, ControllerFactory
from controller.policy import BUILTIN
from sim.nodes import load_factory

if TYPE_CHECKING:
    from sim.live.session import LiveSession

def _without_flag_placeholder(params: list[Any]) -> list[Any]:
    """Flags take no value: give them an empty metavar so help shows no ``<bool>`` after them."""
    for param in params:
        if getattr(param, "is_flag", False) and getattr(param, "metavar", "") is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_placeholder(super().get_params(ctx))


class _Group(TyperGroup):
    """The root group. Every command and sub-group it hands out becomes one of these classes,
    so the rule holds for commands and ``add_typer`` groups whoever declares them, and at
    any depth (the classes add behaviour only, no state, so swapping ``__class__`` is safe)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_placeholder(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if type(command) is TyperCommand:
            command.__class__ = _Command
        elif type(command) is TyperGroup:
            command.__class__ = _Group
        return command


app = typer.Typer(
    name="bwcsim",
    help="Body-worn camera recording-control simulator: replay scenarios, judge missed footage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Group,
)

ControllerOpt = Annotated[
    str,
    typer.Option(
        "--controller", metavar="<spec>",
        help=(
            "Controller under test: module:factory (a Python factory) or exec:COMMAND (a program "
            "in any language speaking the node protocol on stdin/stdout; docs/node-protocol.md)."
        ),
    ),
]

PolicyOpt = Annotated[
    str, typer.Option(help=f"Built-in policy ({', '.join(BUILTIN)}) or a policy file.")
]


SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="What if: change one field before replaying, e.g. "
                 "'timeline[3].delay_s=15' (repeatable; a value of null removes the field)."),
]
ProjectorOpt = Annotated[
    bool, typer.Option("--projector", help="Draw the --timeline for a projector (1024x768, large type).")
]


def _load_edited(file: Path, assignments: list[str]) -> Any:
    """The scenario at ``file`` with each ``--set`` applied (see :mod:`sim.world.whatif`)."""
    from controller.errors import InvalidInput
    from sim.world.whatif import ScenarioText, parse_assignment

    try:
        text = ScenarioText.read(file)
        if not assignments:
            return text.scenario()
        try:
            text.apply(parse_assignment(a) for a in assignments)
        except InvalidInput as exc:
            _fail(f"--set {exc}")
        return text.scenario()
    except BwcError as exc:
        _fail(str(exc) + (" (after --set)" if assignments else ""))


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


class ChartFormat(StrEnum):
    mermaid = "mermaid"


class PageFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


class DocFormat(StrEnum):
    json = "json"
    yaml = "yaml"


class InitialState(StrEnum):
    docked = "docked"
    standby = "standby"
    pre_buffer = "pre_buffer"


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class Clock(StrEnum):
    unix = "unix"
    run = "run"


class BrokerBackend(StrEnum):
    dynsec = "dynsec"
    acl = "acl"


class MqttVersion(StrEnum):
    v5 = "5"
    v311 = "3.1.1"
    auto = "auto"


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"bwcsim: {message}", err=True)
    raise typer.Exit(code)


def _factory(spec: str) -> ControllerFactory:
    try:
        return load_factory(spec)
    except BwcError as exc:
        _fail(str(exc))


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"bwcsim {version('bwcsim')}")
        except PackageNotFoundError:  # running from a source tree that was never installed
            typer.echo("bwcsim (not installed)")
        raise typer.Exit()


@app.callback()
def _bwcsim(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Body-worn camera recording-control simulator: replay scenarios, judge missed footage."""


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Scenario file (format version 1).")],
    report: Annotated[ReportFormat, typer.Option(help="Report on stdout.")] = ReportFormat.text,
    trace: Annotated[Path | None, typer.Option(help="Write a JSON Lines trace.")] = None,
    timeline: Annotated[Path | None, typer.Option(help="Write an HTML timeline.")] = None,
    vcd: Annotated[Path | None, typer.Option(help="Write a VCD waveform.")] = None,
    perfetto: Annotated[Path | None, typer.Option(help="Write a Perfetto/Chrome trace JSON.")] = None,
    controller: ControllerOpt = DEFAULT_FACTORY,
    set_: SetOpt = None,
    projector: ProjectorOpt = False,
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

    args = _LiveArgs(live, camera_map, speed, tolerance, start_at, prompt, spawn, prefix, username,
                     password_file, tls, cafile, certfile, keyfile, controller)
    session = _session(args)
    factory = _factory(controller)
    scenario = _load_edited(file, set_ or [])
    records: list[dict[str, Any]] | None = [] if (trace or timeline or vcd or perfetto) else None
    if session is not None:
        try:
            run_live = session.run(scenario)
        except BwcError as exc:
            _fail(str(exc))
        result = run_live.result
        records = run_live.records
    else:
        try:
            result = replay(scenario, factory, records.append if records is not None else None)
        except ControllerFailure as exc:  # the controller under test failed: no report to give
            _fail(str(exc), 1)
    from sim.search.invariants import judge_holds

    doc = judge_holds(build_report(result), result)
    try:
        write_outputs(result, doc, records or [], trace=trace, timeline=timeline, vcd=vcd,
                      perfetto=perfetto, projector=projector)
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
def fleet(
    cameras: Annotated[int, typer.Option(help="Number of cameras (teams of 2-6).")],
    hours: Annotated[float, typer.Option(help="Shift length in hours.")],
    seed: Annotated[int, typer.Option(help="Seed of the generated shifts.")] = 0,
    policy: PolicyOpt = "dhs-2023",
    report: Annotated[ReportFormat, typer.Option(help="Summary on stdout.")] = ReportFormat.text,
    timeline: Annotated[Path | None, typer.Option(help="HTML timeline of the worst cameras.")] = None,
    workers: Annotated[int, typer.Option(help="Local worker processes.")] = 1,
    cluster: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://HOST:8786.")
    ] = None,
    controller: ControllerOpt = DEFAULT_FACTORY,
) -> None:
    """Simulate a fleet through a generated shift, with a progress bar and a summary."""
    from .fleet import fleet_command

    _factory(controller)  # a bad spec is one line and exit 2 here, before any worker starts
    try:
        code = fleet_command(cameras, hours, seed, policy, report=report.value, timeline=timeline,
                             workers=workers, cluster=cluster, controller=controller)
    except BwcError as exc:
        _fail(str(exc))
    raise typer.Exit(code)


@app.command()
def live(
    broker: Annotated[str, typer.Option(help="Broker URL: mqtt://HOST:PORT (mqtts:// for TLS).")],
    camera: Annotated[str, typer.Option(help="Camera id (topics <prefix>/<camera>/...).")],
    team: Annotated[list[str] | None, typer.Option(help="Team the camera belongs to (repeatable).")] = None,
    prefix: Annotated[str, typer.Option(help="Topic prefix.")] = "bwc",
    policy: PolicyOpt = "dhs-2023",
    controller: ControllerOpt = DEFAULT_FACTORY,
    initial: Annotated[InitialState, typer.Option(help="State the camera starts in.")] = (
        InitialState.pre_buffer
    ),
    client_id: Annotated[str | None, typer.Option(help="MQTT client id (default bwcsim-<camera>).")] = None,
    username: Annotated[str | None, typer.Option(help="MQTT user name.")] = None,
    password_file: Annotated[
        Path | None, typer.Option(help="File holding the MQTT password (else $BWCSIM_MQTT_PASSWORD).")
    ] = None,
    tls: Annotated[bool, typer.Option("--tls", help="Connect with TLS.")] = False,
    cafile: Annotated[Path | None, typer.Option(help="CA certificates (PEM) for TLS.")] = None,
    certfile: Annotated[Path | None, typer.Option(help="Client certificate (PEM) for TLS.")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="Client key (PEM) for TLS.")] = None,
    log_format: Annotated[LogFormat, typer.Option(help="Log lines on stderr (json: JSON lines).")] = (
        LogFormat.text
    ),
    log_level: Annotated[LogLevel, typer.Option(help="Least severe level logged.")] = LogLevel.info,
    backoff_initial: Annotated[float, typer.Option(help="First reconnect delay, seconds.")] = 0.5,
    backoff_max: Annotated[float, typer.Option(help="Longest reconnect delay, seconds.")] = 30.0,
    seed: Annotated[int, typer.Option(help="Seed of the reconnect jitter.")] = 0,
    clock: Annotated[Clock, typer.Option(
        help="unix: the camera's times (and triggers' ts) are Unix seconds; run: seconds since start."
    )] = Clock.unix,
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
    state_dir: Annotated[Path | None, typer.Option(
        help="Durable state (journal, evidence, audit file); default: a folder per camera in the user's "
             "state directory."
    )] = None,
    mqtt_version: Annotated[MqttVersion, typer.Option(
        help="MQTT version (auto: 5, falling back to 3.1.1 for a broker that refuses 5)."
    )] = MqttVersion.auto,
    rate_limit: Annotated[float, typer.Option(
        help="Messages per second per sender before rate_limited NACKs (0: no limit)."
    )] = 2000.0,
    audit_max_bytes: Annotated[int, typer.Option(help="Rotate audit.jsonl at this size.")] = 16 * 1024 * 1024,
    outbox_limit: Annotated[int, typer.Option(
        help="Publications (besides evidence) queued before the cheapest are shed."
    )] = 5000,
    trust: Annotated[Path | None, typer.Option(
        help="Trust file: obey only commands signed by its principals (else auth: none)."
    )] = None,
) -> None:
    """Run one camera's controller on a real MQTT broker until Ctrl-C or SIGTERM."""
    from sim.live.command import LiveOptions, run_live

    if rate_limit < 0 or outbox_limit < 1 or audit_max_bytes < 4096:
        _fail("--rate-limit >= 0, --outbox-limit >= 1 and --audit-max-bytes >= 4096, please")
    if not 0 < backoff_initial <= 3600 or not 0 < backoff_max <= 86400:
        _fail("--backoff-initial/--backoff-max: must be positive seconds")
    options = LiveOptions(
        broker=broker, camera=camera, teams=tuple(team or ()), prefix=prefix, policy=policy,
        controller=controller, initial=initial.value, client_id=client_id, username=username,
        password_file=password_file, tls=tls, cafile=cafile, certfile=certfile, keyfile=keyfile,
        log_format=log_format.value, log_level=log_level.value, backoff_initial_s=backoff_initial,
        backoff_max_s=backoff_max, seed=seed, clock=clock.value,
        params=tuple(param or ()), speed=speed, start_at=_unix_time(start_at),
        start_at_stdin=start_at == "-", state_dir=state_dir, mqtt_version=mqtt_version.value,
        rate_limit=rate_limit, audit_max_bytes=audit_max_bytes, outbox_limit=outbox_limit,
        trust=trust,
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


@app.command("broker-config")
def broker_config(
    deployment: Annotated[Path, typer.Argument(
        help="Deployment file: prefix, cameras (with teams), principals."
    )],
    out: Annotated[Path, typer.Option(help="Folder to write mosquitto.conf and its files into.")],
    backend: Annotated[BrokerBackend, typer.Option(
        help="dynsec (dynamic-security plugin: refuses forbidden subscriptions) or acl (password + ACL file)."
    )] = BrokerBackend.dynsec,
    port: Annotated[int, typer.Option(help="Plain MQTT listener port.")] = 1883,
    bind: Annotated[str, typer.Option(help="Address the listeners bind to.")] = "127.0.0.1",
    tls_port: Annotated[int | None, typer.Option(help="Also a TLS listener on this port.")] = None,
    cafile: Annotated[Path | None, typer.Option(help="TLS: CA certificate (PEM).")] = None,
    certfile: Annotated[Path | None, typer.Option(help="TLS: the broker's certificate (PEM).")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="TLS: the broker's key (PEM).")] = None,
    client_certs: Annotated[bool, typer.Option(
        "--client-certs", help="TLS: require client certificates; the common name is the user name."
    )] = False,
    plugin: Annotated[str | None, typer.Option(help="Path of mosquitto_dynamic_security.so.")] = None,
    run_as: Annotated[str | None, typer.Option(
        help="User the broker switches to (its `user` option)."
    )] = None,
    max_queued: Annotated[int, typer.Option(
        help="max_queued_messages: triggers a broker keeps per offline client."
    )] = 100_000,
) -> None:
    """Generate a Mosquitto configuration from a deployment file: who may publish and subscribe what."""
    from sim.live.brokerconfig import Listener, TlsListener, dynsec_plugin_path, load_deployment, write_config

    if max_queued < 0 or not 0 < port < 65536:
        _fail("--max-queued must be >= 0 and --port a TCP port")
    tls = None
    if tls_port is not None:
        if cafile is None or certfile is None or keyfile is None:
            _fail("--tls-port needs --cafile, --certfile and --keyfile")
        tls = TlsListener(tls_port, cafile, certfile, keyfile, client_certs)
    try:
        dep = load_deployment(deployment)
        chosen = plugin or (dynsec_plugin_path() if backend == "dynsec" else None)
        if backend == "dynsec" and chosen is None:
            typer.echo("bwcsim: warning: mosquitto_dynamic_security.so not found; "
                       "set its path with --plugin before starting the broker", err=True)
        files = write_config(dep, out, backend=backend.value,
                             listener=Listener(port, bind), tls=tls, plugin=chosen, run_as=run_as,
                             max_queued=max_queued, source=str(deployment))
    except BwcError as exc:
        _fail(str(exc))
    for path in files:
        typer.echo(f"wrote {path}", err=True)
    typer.echo(f"passwords: {out / 'credentials'}/<user> (give each its own: --password-file)", err=True)
    typer.echo(f"start it:  mosquitto -c {out / 'mosquitto.conf'}", err=True)


audit_app = typer.Typer(help="The live camera's audit file.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    files: Annotated[list[Path], typer.Argument(
        help="audit files oldest first (audit-NNNNNN.jsonl ..., audit.jsonl) or a state directory."
    )],
    head: Annotated[str | None, typer.Option(
        help="The published head (the hash, or the retained audit message's JSON): the chain must reach it."
    )] = None,
    camera: Annotated[str | None, typer.Option(help="The camera the log must belong to.")] = None,
) -> None:
    """Check an audit log's hash chain: edited, removed, reordered or (with --head) cut-off entries."""
    import json as _json

    from sim.live.auditfile import audit_files, verify_files

    paths: list[Path] = []
    for f in files:
        if f.is_dir():
            found = audit_files(f)
            if not found:
                _fail(f"{f}: no audit files in this directory")
            paths += found
        elif f.is_file():
            paths.append(f)
        else:
            _fail(f"{f}: no such file or directory")
    if head is not None and head.lstrip().startswith("{"):
        try:
            head = str(_json.loads(head)["head"])
        except (ValueError, KeyError, TypeError):
            _fail("--head: not a hash, nor the JSON of an audit head message")
    try:
        verdict = verify_files(paths, head=head, camera=camera)
    except BwcError as exc:
        _fail(str(exc))
    for note in verdict.notes:
        typer.echo(f"note: {note}", err=True)
    if not verdict.ok:
        typer.echo(f"TAMPERED: {verdict.problem}")
        raise typer.Exit(1)
    checked = " against the published head" if head else " (give --head to detect a cut-off end)"
    typer.echo(f"ok: {verdict.entries} entries, seq {verdict.first_seq}..{verdict.last_seq} of camera "
               f"{verdict.camera!r}; head {verdict.head}{checked}")


keys_app = typer.Typer(
    name="keys",
    help="Signing identities of principals, and the trust files cameras are provisioned with.",
    no_args_is_help=True,
)
app.add_typer(keys_app)


@keys_app.command("new")
def keys_new(
    name: Annotated[str, typer.Argument(help="Principal name (e.g. dispatch, sgt-lee, officer-cam-1).")],
    role: Annotated[str, typer.Option(help="Role the policy gives rights to: dispatch, supervisor, "
                                           "officer, device, ...")],
    camera: Annotated[str | None, typer.Option(help="The camera an officer or device is bound to.")] = None,
    out: Annotated[Path | None, typer.Option(help="Identity file to write (default NAME.key.yaml).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing identity file.")] = False,
) -> None:
    """Generate an Ed25519 key for a principal; write its identity file (private, mode 0600)."""
    from sim.live.keys import new_identity, trust_yaml

    target = out or Path(f"{name}.key.yaml")
    try:
        ident = new_identity(name, role, camera, target, force)
    except BwcError as exc:
        _fail(str(exc))
    from controller.principals import Principal, TrustFile

    typer.echo(f"bwcsim: wrote {target} (private key: keep it secret); its trust entry:", err=True)
    sys.stdout.write(trust_yaml(TrustFile(version=1, principals=[
        Principal(name=ident.name, role=ident.role, camera=ident.camera, keys=[ident.public])])))


@keys_app.command("export")
def keys_export(
    files: Annotated[list[Path], typer.Argument(help="Identity files and/or trust files to merge.")],
    out: Annotated[Path | None, typer.Option(help="Write the trust file here (default: stdout).")] = None,
) -> None:
    """Print the trust file (public keys only) of the given principals; several keys of one
    principal are kept together (key rotation)."""
    from sim.live.keys import export_trust, trust_yaml

    try:
        text = trust_yaml(export_trust(files))
    except BwcError as exc:
        _fail(str(exc))
    if out is None:
        sys.stdout.write(text)
    else:
        try:
            out.write_text(text, "utf-8")
        except OSError as exc:
            _fail(f"cannot write {out}: {exc.strerror}")


@keys_app.command("sign")
def keys_sign(
    identity: Annotated[Path, typer.Argument(help="Identity file of the signing principal.")],
    event: Annotated[str, typer.Argument(help='The event as JSON, e.g. \'{"id": "m-1", "type": "dock"}\'.')],
    to: Annotated[str, typer.Option(help="Camera id, or team/<team>, the command is for.")],
    seq: Annotated[int | None, typer.Option(min=0, help="Sequence number (default: microseconds "
                                                       "since the epoch).")] = None,
) -> None:
    """Print EVENT in a signed envelope (SPEC §14), ready to publish on the event topic."""
    from sim.live.keys import load_identity, sign_command

    try:
        payload = sign_command(load_identity(identity), event.encode("utf-8"), to, seq)
    except BwcError as exc:
        _fail(str(exc))
    sys.stdout.write(payload.decode("utf-8") + "\n")


@app.command()
def fuzz(
    examples: Annotated[int, typer.Option(min=1, help="Examples to generate.")] = 200,
    seed: Annotated[int, typer.Option(help="Search seed (same seed, same examples).")] = 0,
    save: Annotated[Path | None, typer.Option(help="Folder for the shrunk counterexample.")] = None,
    prop: Annotated[str, typer.Option(
        "--property", help="One property ID to search for (default: every registered property).",
    )] = "all",
    controller: ControllerOpt = DEFAULT_FACTORY,
) -> None:
    """Search generated scenarios for a violation of any property; save the shrunk failure."""
    from sim.search.fuzz import run_cli

    _factory(controller)
    try:
        code = run_cli(examples, seed, save, controller, prop)
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


@app.command()
def diff(
    a: Annotated[Path, typer.Argument(help="The original scenario.")],
    b: Annotated[Path, typer.Argument(help="The changed scenario.")],
    report: Annotated[ReportFormat, typer.Option(help="Comparison on stdout.")] = ReportFormat.text,
    set_: SetOpt = None,
    controller: ControllerOpt = DEFAULT_FACTORY,
) -> None:
    """Replay two scenarios and compare them: verdicts, missed seconds by cause, per camera.

    With --set, B is A with those changes (B may then be omitted by giving A twice)."""
    from sim.views.compare import compare, render_compare_text
    from sim.views.report import build_report
    from sim.world.replay import replay

    factory = _factory(controller)
    reports = [build_report(replay(_load_edited(path, edits), factory))
               for path, edits in ((a, []), (b, set_ or []))]
    result = compare(reports[0], reports[1])
    if report is ReportFormat.json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    else:
        render_compare_text(result, (str(a), str(b) + (" with --set" if set_ else "")))


@app.command()
def studio(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Scenario files or folders (default scenarios/).")
    ] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1.")] = 8765,
    host: Annotated[str, typer.Option(help="Loopback address to bind.")] = "127.0.0.1",
    controller: ControllerOpt = DEFAULT_FACTORY,
) -> None:
    """Open the scenario library in a local web page: step through a replay, ask what if,
    save the answer (written only inside the folder the studio was started in)."""
    from sim.studio.command import serve

    factory = _factory(controller)
    try:
        serve(paths or [], host, port, factory)
    except BwcError as exc:
        _fail(str(exc))


policy_app = typer.Typer(
    help="The words a scenario may use under a policy: activities, reasons, signals, parameters.",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy")


@policy_app.command("list")
def policy_list(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Folders holding component policies (default scenarios/).")
    ] = None,
) -> None:
    """List the built-in policies and the component policy files found under PATHS."""
    from controller.policy import BUILTIN, load_policy
    from sim.views.vocabulary import policy_files

    for name in BUILTIN:
        typer.echo(f"{name}  (built in)")
    for path in policy_files([p for p in (paths or [Path("scenarios")]) if p.exists()]):
        try:
            name = load_policy(str(path)).name
        except BwcError as exc:
            typer.echo(f"{path}  (invalid: {exc})")
            continue
        typer.echo(f"{path}  (policy {name})")


@policy_app.command("show")
def policy_show(
    name: Annotated[str, typer.Argument(help="A built-in policy name or a policy file.")],
    format: Annotated[PageFormat, typer.Option("--format", help="Output format.")] = PageFormat.text,
) -> None:
    """Print a policy's vocabulary: activities and their kind, deactivation reasons, signal
    sources, camera parameters and the event words."""
    from controller.policy import BUILTIN, load_policy
    from sim.views.vocabulary import render_markdown, render_text, vocabulary
    from sim.world.scenario import nearest

    if name not in BUILTIN and not Path(name).is_file():
        guess = nearest(name, BUILTIN)
        hint = f"; did you mean `{guess}`?" if guess else ""
        _fail(f"{name}: no such policy{hint} (built in: {', '.join(BUILTIN)}; or a policy file)")
    try:
        vocab = vocabulary(load_policy(name), name)
    except BwcError as exc:
        _fail(str(exc))
    if format == "json":
        sys.stdout.write(msgspec.json.encode(vocab).decode() + "\n")
    else:
        sys.stdout.write((render_text if format == "text" else render_markdown)(vocab))


@app.command()
def chart(
    format: Annotated[ChartFormat, typer.Option("--format", help="Chart format.")] = ChartFormat.mermaid,
) -> None:
    """Print the camera state chart, generated from the state table."""
    from controller.machine import mermaid

    sys.stdout.write(mermaid())


@app.command()
def schema(
    asyncapi: Annotated[bool, typer.Option("--asyncapi", help="Print the AsyncAPI 3.0 document.")] = False,
    format: Annotated[
        DocFormat | None,
        typer.Option("--format", help="Output format (default: json; yaml with --asyncapi)."),
    ] = None,
    prefix: Annotated[str, typer.Option(help="Topic prefix used in the AsyncAPI addresses.")] = "bwc",
    node_protocol: Annotated[bool, typer.Option(
        "--node-protocol", help="Print the JSON Schema of the node protocol (exec: controllers)."
    )] = False,
    report: Annotated[bool, typer.Option(
        "--report", help="Print the JSON Schema of the run report (run --report json)."
    )] = False,
) -> None:
    """Print the JSON Schema (draft 2020-12) of every payload, or the AsyncAPI document."""
    from sim.spec.schema import asyncapi_document, json_schema, render

    chosen = format.value if format is not None else ("yaml" if asyncapi else "json")
    if asyncapi + node_protocol + report > 1:
        _fail("--asyncapi, --node-protocol and --report: choose one")
    if report:
        from sim.spec.report_schema import report_schema

        doc = report_schema()
    elif node_protocol:
        from sim.spec.node_protocol import node_protocol_schema

        doc = node_protocol_schema()
    else:
        doc = asyncapi_document(prefix) if asyncapi else json_schema()
    sys.stdout.write(render(doc, chosen))


@app.command("trace-reqs")
def trace_reqs(
    format: Annotated[PageFormat, typer.Option("--format", help="Output format.")] = PageFormat.text,
    tests: Annotated[Path, typer.Option(help="Tests folder.")] = Path("tests"),
    scenarios: Annotated[list[Path] | None, typer.Option(help="Scenario folders.")] = None,
) -> None:
    """List every requirement with the tests and scenarios that cover it; exit 1 if one has none."""
    from sim.spec import traceability as tr

    renderers = {PageFormat.text: tr.render_text, PageFormat.markdown: tr.render_markdown,
                 PageFormat.json: tr.render_json}
    matrix = tr.build_matrix(tests, scenarios or [Path("scenarios")])
    sys.stdout.write(renderers[format](matrix).rstrip("\n") + "\n")
    gaps = tr.missing(matrix)
    if gaps:
        typer.echo(f"bwcsim: requirements without a test: {', '.join(gaps)}", err=True)
        raise typer.Exit(1)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except ControllerFailure as exc:  # the controller under test broke the node contract
        typer.echo(f"bwcsim: {exc}", err=True)
        sys.exit(1)
    except BwcError as exc:  # last line of defence: input errors never show a traceback
        typer.echo(f"bwcsim: {exc}", err=True)
        sys.exit(2)
