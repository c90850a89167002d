"""A private Mosquitto run with the configuration ``bwcsim broker-config`` generates.

:class:`SecuredBroker` writes the configuration for a deployment (YAML text) into a work folder,
on a free loopback port, and runs Mosquitto with it; it can be killed, paused (``SIGSTOP``, a
broker that stops answering) and started again with its persistence. Skips the test when
Mosquitto (or, for the ``dynsec`` backend, its plugin) is not installed.
"""

from __future__ import annotations

import contextlib
import getpass
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from brokers import LOOPBACK, free_loopback_port, mosquitto_binary

from sim.live.brokerconfig import Listener, dynsec_plugin_path, load_deployment, write_config
from sim.live.bus import MqttEndpoint

DEPLOYMENT = """\
prefix: {prefix}
cameras:
  - {{id: cam-1, teams: [sr-1]}}
  - {{id: cam-2, teams: [sr-2]}}
principals:
  - {{name: cad-1, role: dispatch}}
  - {{name: sgt-ray, role: supervisor, teams: [sr-1]}}
  - {{name: off-17, role: officer, camera: cam-1}}
  - {{name: holster-17, role: device, camera: cam-1}}
  - {{name: evidence, role: observer}}
"""


class SecuredBroker:
    """Mosquitto with a generated configuration (see the module docstring)."""

    def __init__(self, workdir: Path, deployment: str, backend: str = "dynsec") -> None:
        binary = mosquitto_binary()
        if binary is None:
            pytest.skip("not installed: mosquitto")
        if backend == "dynsec" and dynsec_plugin_path() is None:
            pytest.skip("not installed: mosquitto_dynamic_security.so")
        self.binary = binary
        self.workdir = workdir
        self.port = free_loopback_port()
        source = workdir / "deployment.yaml"
        source.write_text(deployment)
        self.deployment = load_deployment(source)
        self.config = workdir / "broker"
        write_config(self.deployment, self.config, backend=backend,  # type: ignore[arg-type]
                     listener=Listener(self.port), plugin=dynsec_plugin_path(), run_as=getpass.getuser(),
                     source=str(source))
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"mqtt://{LOOPBACK}:{self.port}"

    def password(self, user: str) -> str:
        return (self.config / "credentials" / user).read_text().strip()

    def password_file(self, user: str) -> Path:
        return self.config / "credentials" / user

    def endpoint(self, user: str, *, password: str | None = None, **options: object) -> MqttEndpoint:
        """How ``user`` reaches this broker (MQTT 5)."""
        settings: dict[str, object] = {"timeout_s": 5.0, "protocol": "5", **options}
        return MqttEndpoint(LOOPBACK, self.port, username=user,
                            password=self.password(user) if password is None else password,
                            **settings)  # type: ignore[arg-type]

    def start(self) -> None:
        self.starts += 1
        log = (self.workdir / f"mosquitto-{self.starts}.log").open("wb")
        self.process = subprocess.Popen([self.binary, "-c", str(self.config / "mosquitto.conf")],
                                        stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.process.poll() is None:
            # An anonymous CONNECT is refused, but a CONNACK of any kind means it is up.
            if _answers(self.port):
                return
            time.sleep(0.05)
        raise AssertionError(f"mosquitto did not start: {self.log()}")

    def log(self) -> str:
        return (self.workdir / f"mosquitto-{self.starts}.log").read_text(errors="replace")

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _answers(port: int) -> bool:
    import socket

    from brokers import _connect_packet

    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
            sock.settimeout(0.5)
            sock.sendall(_connect_packet(b"bwcsim-probe"))
            return sock.recv(4)[:1] == b"\x20"
    except OSError:
        return False


@contextlib.contextmanager
def secured_broker(workdir: Path, prefix: str = "bwc", backend: str = "dynsec",
                   deployment: str | None = None) -> Iterator[SecuredBroker]:
    broker = SecuredBroker(workdir, deployment or DEPLOYMENT.format(prefix=prefix), backend)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


__all__ = ["DEPLOYMENT", "SecuredBroker", "secured_broker"]
