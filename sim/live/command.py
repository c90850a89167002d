"""``bwcsim live``: one camera's controller on a real MQTT broker, until Ctrl-C or SIGTERM.

The command is a thin shell around :class:`sim.live.runtime.CameraRuntime` on a
:class:`sim.live.bus.MqttBus`: it turns options into a broker endpoint (credentials from a file or the
environment, never from the command line, where every user of the machine could read them in the
process list), builds the camera node from a controller factory and a policy, sets up logging,
and turns SIGINT/SIGTERM into a clean stop — the runtime then publishes the open recording and
``availability: offline`` and disconnects cleanly, so the broker does not fire the Last Will. A
second signal abandons the clean stop.

Logs go to stderr: readable text by default, one JSON object per line with ``--log-format json``
(``ts``, ``level``, ``event`` and the event's fields), for log shippers.

For hardware-in-the-loop runs (:mod:`sim.live.hil`) the camera can stand in for a device on a
test bench: ``--param`` sets its parameters, ``--speed`` runs it on the scaled clock and
``--start-at`` powers it on at the instant a scenario starts (see :mod:`sim.live.clock`).

The camera keeps its durable state — journal, snapshots, evidence not yet acknowledged by the
broker, and the audit file — in its state directory (``--state-dir``; by default a folder per
prefix and camera under the user's state directory), so that a camera killed mid-warrant comes
back with the warrant open (:mod:`sim.live.store`, :mod:`sim.live.auditfile`). Deliveries are
acknowledged to the broker only once what they caused is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import gc
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

import msgspec

from controller.errors import InvalidInput
from controller.node import DEFAULT_FACTORY, CameraNode, CameraSetup, Initial
from controller.params import PARAM_NAMES, CameraParams
from controller.policy import load_policy
from controller.principals import load_trust
from sim.nodes import load_factory
from sim.world.scenario import parse_time

from .auditfile import AuditFile
from .bus import MqttBus, MqttEndpoint, MqttVersion, TlsFiles, parse_broker_url
from .clock import MAX_SPEED, PowerOnAt
from .limits import RateLimit
from .runtime import Backoff, CameraRuntime
from .store import StateStore, default_state_dir

__all__ = [
    "PASSWORD_ENV",
    "LiveOptions",
    "build_endpoint",
    "build_node",
    "configure_logging",
    "parse_params",
    "run_live",
    "serve",
]

PASSWORD_ENV = "BWCSIM_MQTT_PASSWORD"
LogFormat = Literal["text", "json"]

log = logging.getLogger("bwcsim.live")


@dataclass(frozen=True)
class LiveOptions:
    """Everything ``bwcsim live`` takes (see ``bwcsim live --help``)."""

    broker: str
    camera: str
    teams: tuple[str, ...] = ()
    prefix: str = "bwc"
    policy: str = "dhs-2023"
    controller: str = DEFAULT_FACTORY
    initial: Initial = "pre_buffer"
    client_id: str | None = None
    username: str | None = None
    password_file: Path | None = None
    tls: bool = False
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    log_format: LogFormat = "text"
    log_level: str = "info"
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    seed: int = 0
    clock: Literal["unix", "run"] = "unix"
    state_dir: Path | None = None
    mqtt_version: MqttVersion = "auto"
    rate_limit: float = 2000.0
    audit_max_bytes: int = 16 * 1024 * 1024
    outbox_limit: int = 5000
    trust: Path | None = None
    params: tuple[str, ...] = ()  # NAME=VALUE camera parameters (SPEC §2)
    speed: float = 1.0  # the scaled clock (sim.live.clock)
    start_at: float | None = None  # Unix time to power on at; None: at once
    start_at_stdin: bool = False  # say "ready" on stdout, then read start_at from stdin


# ------------------------------------------------------------------------------ building


def _read_password(options: LiveOptions, environ: dict[str, str]) -> str | None:
    if options.password_file is not None:
        try:
            text = options.password_file.read_text("utf-8")
        except OSError as exc:
            problem = f"cannot read {options.password_file}: {exc.strerror}"
            raise InvalidInput(problem, "--password-file") from None
        return text.rstrip("\r\n")
    return environ.get(PASSWORD_ENV) or None


def _check_file(path: Path | None, option: str) -> str | None:
    if path is None:
        return None
    if not path.is_file() or not os.access(path, os.R_OK):
        raise InvalidInput(f"{path}: not a readable file", option)
    return str(path)


def build_endpoint(options: LiveOptions, environ: dict[str, str] | None = None) -> MqttEndpoint:
    """The broker endpoint: URL, credentials (file, else ``$BWCSIM_MQTT_PASSWORD``) and TLS."""
    from controller.errors import BusError

    env = dict(os.environ) if environ is None else environ
    try:
        host, port, url_tls = parse_broker_url(options.broker)
    except BusError as exc:
        raise InvalidInput(str(exc), "--broker") from None
    password = _read_password(options, env)
    if password is not None and not options.username:
        raise InvalidInput("a password needs --username (MQTT sends none without one)", "--username")
    files = (options.cafile, options.certfile, options.keyfile)
    tls = None
    if options.tls or url_tls or any(f is not None for f in files):
        if (options.certfile is None) != (options.keyfile is None):
            raise InvalidInput("--certfile and --keyfile go together", "--certfile")
        tls = TlsFiles(
            cafile=_check_file(options.cafile, "--cafile"),
            certfile=_check_file(options.certfile, "--certfile"),
            keyfile=_check_file(options.keyfile, "--keyfile"),
        )
    # Deliveries are acknowledged by the runtime once what they caused is on disk.
    return MqttEndpoint(host, port, username=options.username, password=password, tls=tls,
                        protocol=options.mqtt_version, manual_ack=True)


def state_dir(options: LiveOptions) -> Path:
    """Where the camera keeps its state: ``--state-dir``, else the per-camera default."""
    return options.state_dir or default_state_dir(options.camera, options.prefix)


def build_node(options: LiveOptions) -> CameraNode:
    """The camera's controller node from the factory, the policy and the options."""
    if not options.camera or "/" in options.camera or "+" in options.camera or "#" in options.camera:
        raise InvalidInput(f"camera id {options.camera!r} must be non-empty without / + #", "--camera")
    for team in options.teams:
        if not team or any(c in team for c in "/+#"):
            raise InvalidInput(f"team {team!r} must be non-empty without / + #", "--team")
    if not options.prefix or any(c in options.prefix for c in "+#"):
        raise InvalidInput(f"prefix {options.prefix!r} must be non-empty without + #", "--prefix")
    if not 0 < options.speed <= MAX_SPEED:
        raise InvalidInput(f"{options.speed:g} is not a speed in (0, {MAX_SPEED:g}]", "--speed")
    if options.start_at is not None and not (0 < options.start_at < 1e11):
        raise InvalidInput(f"{options.start_at:g} is not a Unix time", "--start-at")
    factory = load_factory(options.controller)
    policy = load_policy(options.policy, Path.cwd())
    setup = CameraSetup(
        camera_id=options.camera,
        policy=policy,
        params=parse_params(options.params, policy.apply(CameraParams())),
        teams=options.teams,
        initial=options.initial,
        prefix=options.prefix,
        trust=load_trust(options.trust) if options.trust is not None else None,
    )
    return factory(setup)


def parse_params(assignments: tuple[str, ...], base: CameraParams) -> CameraParams:
    """``base`` with each ``NAME=VALUE`` applied; seconds (``*_s``) also as ``HH:MM:SS``."""
    own: dict[str, object] = {}
    for text in assignments:
        name, sep, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not value:
            raise InvalidInput(f"{text!r} is not NAME=VALUE", "--param")
        if name not in PARAM_NAMES:
            raise InvalidInput(
                f"unknown camera parameter {name!r} (one of: {', '.join(sorted(PARAM_NAMES))})",
                "--param",
            )
        try:
            if name == "buffer_audio":
                if value.lower() not in ("true", "false"):
                    raise InvalidInput(f"expected true or false, got {value!r}")
                own[name] = value.lower() == "true"
            elif name.endswith("_s"):
                own[name] = parse_time(value if ":" in value else float(value))
            else:
                own[name] = float(value)
        except ValueError:
            raise InvalidInput(f"{name}: {value!r} is not a number", "--param") from None
        except InvalidInput as exc:
            raise InvalidInput(f"{name}: {exc.message}", "--param") from None
    try:
        return msgspec.structs.replace(base, **own) if own else base
    except ValueError as exc:
        raise InvalidInput(str(exc), "--param") from None


# ------------------------------------------------------------------------------- logging


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``event`` and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _utc_now(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "bwc_fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2025-01-01T10:00:00.000Z INFO  connected camera=cam-1 session_present=true``."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_utc_now(), f"{record.levelname:<7}", record.getMessage()]
        fields = getattr(record, "bwc_fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                shown = json.dumps(value) if isinstance(value, str | bool) or value is None else value
                parts.append(f"{key}={shown}")
        text = " ".join(str(p) for p in parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(fmt: LogFormat = "text", level: str = "info", stream: TextIO | None = None) -> None:
    """Send the ``bwcsim`` loggers to ``stream`` (stderr) in the chosen format."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise InvalidInput(f"unknown log level {level!r} (debug, info, warning, error)", "--log-level")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("bwcsim")
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    root.propagate = False
    # The client library's own chatter is useful only when debugging.
    logging.getLogger("mqtt").setLevel(logging.WARNING if numeric > logging.DEBUG else logging.DEBUG)
    logging.getLogger("transitions").setLevel(logging.WARNING)


# ------------------------------------------------------------------------------- running


async def serve(options: LiveOptions, *, install_signals: bool = True) -> CameraRuntime:
    """Run the camera until a signal (or ``runtime.stop()``); returns the stopped runtime."""
    from .runtime import log_event

    endpoint = build_endpoint(options)
    node = build_node(options)
    # The edge reads the wall clock once, as the run starts; the node only ever sees the time
    # passed in. On the scaled clock (sim.live.clock) it reads speed x Unix time.
    speed = options.speed
    unix = options.clock == "unix"
    if options.start_at is not None:
        at = speed * (options.start_at if unix else options.start_at - time.time())
        node = PowerOnAt(node, at)
    backoff = Backoff(
        initial_s=options.backoff_initial_s, max_s=max(options.backoff_max_s, options.backoff_initial_s)
    )
    directory = state_dir(options)
    store = StateStore(directory, options.camera)
    try:
        audit = AuditFile(directory, options.camera, options.audit_max_bytes)
    except BaseException:
        store.close()
        raise
    runtime = CameraRuntime(
        node,
        MqttBus(endpoint),
        prefix=options.prefix,
        client_id=options.client_id or f"bwcsim-{options.camera}",
        backoff=backoff,
        seed=options.seed,
        time_origin=(lambda: speed * time.time()) if unix else 0.0,
        speed=speed,
        store=store,
        audit=audit,
        rate_limit=RateLimit(options.rate_limit) if options.rate_limit > 0 else None,
        outbox_limit=options.outbox_limit,
    )
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    signals_seen: list[int] = []

    def on_signal(signum: int) -> None:
        signals_seen.append(signum)
        if len(signals_seen) == 1:
            log_event(log, logging.INFO, "stopping", signal=signal.Signals(signum).name)
            runtime.stop()
        elif main_task is not None:  # a second signal: give up on the clean stop
            main_task.cancel()

    installed: list[int] = []
    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal, int(sig))
                installed.append(int(sig))
    log_event(log, logging.INFO, "starting", camera=options.camera, broker=f"{endpoint.host}:{endpoint.port}",
              tls=endpoint.tls is not None, username=endpoint.username, teams=list(options.teams),
              prefix=options.prefix, policy=options.policy, controller=options.controller,
              client_id=runtime.client_id, auth="none" if options.trust is None else "signed",
              state_dir=str(directory), mqtt=options.mqtt_version,
              speed=options.speed, start_at=options.start_at)
    try:
        await runtime.run()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        audit.close()
        store.close()
    return runtime


def run_live(options: LiveOptions, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """The ``bwcsim live`` command: 0 after a clean stop, 1 if the stop was forced."""
    configure_logging(options.log_format, options.log_level)
    # Validate everything before touching the network, so bad input exits 2 at once.
    build_endpoint(options)
    build_node(options)
    if options.start_at_stdin:
        # A test bench starting many devices says when to power on once all of them can.
        out, inp = stdout or sys.stdout, stdin or sys.stdin
        out.write("ready\n")
        out.flush()
        line = inp.readline().strip()
        try:
            start_at = float(line)
        except ValueError:
            raise InvalidInput(f"expected a Unix time on standard input, got {line!r}",
                               "--start-at") from None
        options = dataclasses.replace(options, start_at=start_at, start_at_stdin=False)
        build_node(options)
    try:
        with _startup_frozen():
            asyncio.run(serve(options))
    except (asyncio.CancelledError, KeyboardInterrupt):
        return 1
    return 0


@contextlib.contextmanager
def _startup_frozen() -> Iterator[None]:
    """Keep what exists before serving out of the cyclic collector's passes while it serves.

    The libraries, the policy and the node's tables (some 35,000 tracked objects) live as long as
    the camera does, yet every full collection walked all of them: a 50 ms pause in the middle of
    a 1,000 msg/s run, against about 10 ms once they are frozen (SPEC §13). They are thawed when
    the run ends, so a process that goes on (a test calling this in-process) collects as before.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
