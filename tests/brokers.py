"""Real MQTT brokers for the live and contract tests, found or started on loopback.

Theory of operation
-------------------
The live tests need a real broker, and must pass both on the project's machines (Mosquitto
already listens on 127.0.0.1:1883) and on a fresh machine without it. :func:`any_broker` tries,
in order:

1. ``mosquitto-system`` — whatever answers an MQTT CONNECT with a CONNACK "accepted" on
   127.0.0.1:1883. A bare TCP connect is not enough: a half-started or foreign service could
   accept the socket and then never speak MQTT.
2. ``mosquitto-spawned`` — the ``mosquitto`` binary, if on PATH, started on a free loopback port
   from a throw-away config (no persistence, anonymous access) and killed afterwards.
3. ``amqtt`` — the pure-Python broker from the test extras, run in-process on its own event loop
   in a background thread, bound to 127.0.0.1 on an OS-chosen port.

Every listener here is bound to 127.0.0.1 only. Each starter is a context manager, so the
fallbacks can also be exercised directly (``tests/test_broker_fixture.py`` does) even where the
system broker is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

LOOPBACK = "127.0.0.1"
SYSTEM_PORT = 1883

BrokerKind = Literal["mosquitto-system", "mosquitto-spawned", "amqtt"]


@dataclass(frozen=True)
class BrokerAddress:
    """Where a test can reach a running broker, and which kind of broker it is."""

    host: str
    port: int
    kind: BrokerKind

    @property
    def url(self) -> str:
        """The broker as an ``mqtt://host:port`` URL (the form ``bwcsim live`` takes)."""
        return f"mqtt://{self.host}:{self.port}"


class BrokerUnavailable(RuntimeError):
    """A broker could not be started or did not answer in time."""


# --- probing ----------------------------------------------------------------------------------


def _connect_packet(client_id: bytes) -> bytes:
    """An MQTT 3.1.1 CONNECT with a clean session and a 10 s keep-alive."""
    variable_header = b"\x00\x04MQTT" + b"\x04" + b"\x02" + b"\x00\x0a"
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = variable_header + payload
    # The body is far below 128 bytes, so the remaining length fits in one byte.
    return b"\x10" + bytes([len(body)]) + body


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def mqtt_answers(host: str = LOOPBACK, port: int = SYSTEM_PORT, timeout_s: float = 1.0) -> bool:
    """Whether an MQTT broker at ``host:port`` accepts an anonymous CONNECT within ``timeout_s``.

    Sends a real CONNECT and requires a CONNACK with return code 0, then disconnects cleanly.
    """
    client_id = f"bwcsim-probe-{os.getpid()}".encode()
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(_connect_packet(client_id))
            connack = _recv_exactly(sock, 4)
            accepted = len(connack) == 4 and connack[0] == 0x20 and connack[3] == 0x00
            if accepted:
                sock.sendall(b"\xe0\x00")  # DISCONNECT, so the broker logs no unclean drop
            return accepted
    except OSError:
        return False


def wait_until_answers(host: str, port: int, timeout_s: float = 10.0) -> bool:
    """Poll :func:`mqtt_answers` until it succeeds or ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if mqtt_answers(host, port, timeout_s=0.5):
            return True
        time.sleep(0.05)
    return False


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


# --- mosquitto in a subprocess --------------------------------------------------------------


def mosquitto_binary() -> str | None:
    """Path of the ``mosquitto`` binary, also looking in the sbin directories root has on PATH."""
    found = shutil.which("mosquitto")
    if found is None:
        found = shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    return found


def _mosquitto_config(port: int, extra: str = "") -> str:
    return (f"listener {port} {LOOPBACK}\nallow_anonymous true\npersistence false\nlog_dest stderr\n"
            + extra)


@contextlib.contextmanager
def spawned_mosquitto(
    binary: str | None = None, attempts: int = 3, extra_config: str = ""
) -> Iterator[BrokerAddress]:
    """Run a private Mosquitto on a free loopback port for the duration of the ``with`` block.

    The port is chosen by the OS and then handed to Mosquitto, so another process can take it in
    between; a start that fails is retried on a new port up to ``attempts`` times.
    ``extra_config`` is appended to the configuration (e.g. ``set_tcp_nodelay true``).
    """
    executable = binary or mosquitto_binary()
    if executable is None:
        raise BrokerUnavailable("the mosquitto binary is not on PATH")
    with tempfile.TemporaryDirectory(prefix="bwcsim-mosquitto-") as workdir:
        failures: list[str] = []
        for attempt in range(attempts):
            port = free_loopback_port()
            config_path = Path(workdir) / f"mosquitto-{attempt}.conf"
            log_path = Path(workdir) / f"mosquitto-{attempt}.log"
            config_path.write_text(_mosquitto_config(port, extra_config))
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [executable, "-c", str(config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                )
            try:
                if _wait_for_process_broker(process, port):
                    yield BrokerAddress(LOOPBACK, port, "mosquitto-spawned")
                    return
                failures.append(f"port {port}: {log_path.read_text(errors='replace').strip()}")
            finally:
                _stop_process(process)
        raise BrokerUnavailable("mosquitto did not start: " + " | ".join(failures))


def _wait_for_process_broker(process: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if mqtt_answers(LOOPBACK, port, timeout_s=0.5):
            return True
        time.sleep(0.05)
    return False


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# --- amqtt in a background thread -------------------------------------------------------------


def _amqtt_config() -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{LOOPBACK}:0"}},
        # Only anonymous auth: the default plugin set also publishes $SYS topics every 20 s
        # and logs every packet, neither of which a test wants.
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


@contextlib.contextmanager
def inprocess_amqtt(start_timeout_s: float = 10.0) -> Iterator[BrokerAddress]:
    """Run an amqtt broker on 127.0.0.1 (OS-chosen port) in a thread with its own event loop.

    The broker lives on a private loop so that it keeps serving while a test's own loop (the
    one pytest-asyncio gives each test) is busy or being torn down.
    """
    from amqtt.broker import Broker  # imported here: only this fallback needs the package

    loop = asyncio.new_event_loop()
    started = threading.Event()
    outcome: dict[str, Any] = {}

    async def start() -> None:
        broker = Broker(_amqtt_config(), loop=loop)
        await broker.start()
        server = broker._servers["default"].instance  # amqtt keeps the asyncio.Server here
        outcome["broker"] = broker
        outcome["port"] = server.sockets[0].getsockname()[1]

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as error:  # reported to the caller's thread below
            outcome["error"] = error
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
    thread.start()
    if not started.wait(start_timeout_s) or "error" in outcome:
        _stop_loop(loop, thread)
        raise BrokerUnavailable(f"amqtt did not start: {outcome.get('error', 'timeout')!r}")
    try:
        port = int(outcome["port"])
        if not wait_until_answers(LOOPBACK, port, timeout_s=start_timeout_s):
            raise BrokerUnavailable(f"amqtt started but does not answer on port {port}")
        yield BrokerAddress(LOOPBACK, port, "amqtt")
    finally:
        shutdown = asyncio.run_coroutine_threadsafe(outcome["broker"].shutdown(), loop)
        with contextlib.suppress(Exception):
            shutdown.result(timeout=10)
        _stop_loop(loop, thread)


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    if loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    if not thread.is_alive() and not loop.is_closed():
        loop.close()


# --- the fallback chain ----------------------------------------------------------------------


@contextlib.contextmanager
def any_broker() -> Iterator[BrokerAddress]:
    """The best broker available: the system Mosquitto, a spawned one, or in-process amqtt."""
    if mqtt_answers(LOOPBACK, SYSTEM_PORT):
        yield BrokerAddress(LOOPBACK, SYSTEM_PORT, "mosquitto-system")
        return
    with contextlib.ExitStack() as stack:
        address: BrokerAddress | None = None
        if mosquitto_binary() is not None:
            # A broken install (say, a config it rejects) is no reason to skip the live tests.
            with contextlib.suppress(BrokerUnavailable):
                address = stack.enter_context(spawned_mosquitto())
        if address is None:
            address = stack.enter_context(inprocess_amqtt())
        yield address
