"""Processes for the live done-when tests: ``bwcsim live``, the stock ``mosquitto_sub`` and
``mosquitto_pub`` clients, and a private Mosquitto that can be killed and restarted.

Each long-running process gets a :class:`LineTail` that reads its output on a thread, so a test
can wait (with a timeout) for a line that satisfies a predicate without blocking on a pipe. These
are real processes on the wall clock: waits here are bounded polls for something to happen, never
sleeps that assume how long something takes.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import pytest
from brokers import LOOPBACK, free_loopback_port, mosquitto_binary, wait_until_answers

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 10.0


def need(*programs: str) -> None:
    """Skip the test unless every program is installed."""
    def installed(program: str) -> bool:
        if program == "mosquitto":
            return mosquitto_binary() is not None
        return shutil.which(program) is not None

    missing = [p for p in programs if not installed(p)]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


class LineTail:
    """Collects the lines a stream yields, on a background thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[str], bool], *, since: int = 0, timeout: float = WAIT_S) -> str:
        """The first line after index ``since`` that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        index = since
        with self._cond:
            while True:
                while index < len(self.lines):
                    line = self.lines[index]
                    index += 1
                    if predicate(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = "\n  ".join(self.lines[-20:])
                    raise AssertionError(f"no matching line within {timeout} s; last lines:\n  {tail}")
                self._cond.wait(left)

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)


class Subscriber:
    """``mosquitto_sub`` printing ``retain|topic|payload`` lines."""

    def __init__(self, port: int, topic_filter: str, *, client_id: str | None = None) -> None:
        args = ["mosquitto_sub", "-h", LOOPBACK, "-p", str(port), "-t", topic_filter, "-q", "1",
                "-F", "%r|%t|%p"]
        if client_id is not None:
            args += ["-c", "-i", client_id]  # a persistent session: it gets what it missed
        # Payloads are whatever a test sent, not necessarily UTF-8.
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        errors="replace")
        assert self.process.stdout is not None
        self.tail = LineTail(self.process.stdout)

    def wait_for(self, topic: str, predicate: Callable[[str], bool] = lambda p: True, *, since: int = 0,
                 timeout: float = WAIT_S) -> str:
        """The payload of the first message on ``topic`` after ``since`` that satisfies ``predicate``."""
        def matches(line: str) -> bool:
            parts = line.split("|", 2)
            return len(parts) == 3 and parts[1] == topic and predicate(parts[2])

        return self.tail.wait_for(matches, since=since, timeout=timeout).split("|", 2)[2]

    def payloads(self, topic: str, since: int = 0) -> list[str]:
        return [parts[2] for line in self.tail.lines[since:]
                if len(parts := line.split("|", 2)) == 3 and parts[1] == topic]

    def stop(self) -> None:
        stop_process(self.process)


def publish(port: int, topic: str, payload: bytes | str | None, *, retain: bool = False,
            client_id: str | None = None) -> None:
    """One ``mosquitto_pub`` (QoS 1); ``payload=None`` sends an empty message."""
    args = ["mosquitto_pub", "-h", LOOPBACK, "-p", str(port), "-t", topic, "-q", "1"]
    if client_id is not None:
        args += ["-i", client_id]
    if retain:
        args.append("-r")
    data = payload.encode() if isinstance(payload, str) else payload
    if data is None:
        args.append("-n")
    else:
        args.append("-s")  # the payload from stdin, bytes as they are
    subprocess.run(args, input=data, check=True, timeout=WAIT_S, capture_output=True)


def forget_session(port: int, client_id: str) -> None:
    """Connect once with a clean session as ``client_id``, so the broker drops its session."""
    with suppress(subprocess.SubprocessError):
        publish(port, f"bwcsim-cleanup/{client_id}", None, client_id=client_id)


class LiveCamera:
    """A ``bwcsim live`` subprocess (JSON logs on stderr). Its state lives in ``state_dir`` (a new
    temporary folder unless given: pass the same one to a second camera to restart it)."""

    def __init__(self, broker_url: str, camera: str, prefix: str, *extra: str,
                 env: dict[str, str] | None = None, state_dir: Path | None = None) -> None:
        self.client_id = f"{prefix}-{camera}"
        self._own_state = state_dir is None
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="bwcsim-state-"))
        args = [sys.executable, "-m", "sim", "live", "--broker", broker_url, "--camera", camera,
                "--prefix", prefix, "--client-id", self.client_id, "--log-format", "json",
                "--state-dir", str(self.state_dir), *extra]
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.process = subprocess.Popen(args, cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        assert self.process.stderr is not None
        self.log = LineTail(self.process.stderr)

    def wait_event(self, event: str, *, since: int = 0, timeout: float = WAIT_S) -> dict[str, Any]:
        line = self.log.wait_for(lambda text: _event_of(text) == event, since=since, timeout=timeout)
        doc: dict[str, Any] = json.loads(line)
        return doc

    def events(self, since: int = 0) -> list[str]:
        return [e for line in self.log.lines[since:] if (e := _event_of(line)) is not None]

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> None:
        stop_process(self.process)
        if self._own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)


def _event_of(line: str) -> str | None:
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc.get("event") if isinstance(doc, dict) else None


def stop_process(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=WAIT_S)


class RestartableMosquitto:
    """A private Mosquitto on a free loopback port whose state survives a SIGKILL.

    Persistence is on and saved after every change, so sessions, queued QoS 1 messages and
    retained messages come back after :meth:`kill` and :meth:`start`.
    """

    def __init__(self, workdir: Path) -> None:
        binary = mosquitto_binary()
        assert binary is not None
        self.binary = binary
        self.port = free_loopback_port()
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        # Started as root, Mosquitto would switch to the 'mosquitto' user, which cannot write here.
        self.config.write_text(
            f"listener {self.port} {LOOPBACK}\nallow_anonymous true\n"
            f"persistence true\npersistence_location {workdir}/\n"
            "autosave_interval 1\nautosave_on_changes true\n"
            f"user {getpass.getuser()}\nlog_dest stderr\n"
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"mqtt://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = (self.workdir / f"mosquitto-{self.starts}.log").open("wb")
        self.process = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log,
                                        stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        if not wait_until_answers(LOOPBACK, self.port, timeout_s=WAIT_S):
            raise AssertionError(f"mosquitto did not start on port {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT_S)

    def saved_after(self, moment: float) -> bool:
        db = self.workdir / "mosquitto.db"
        return db.exists() and db.stat().st_mtime >= moment

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@contextmanager
def restartable_mosquitto(workdir: Path) -> Iterator[RestartableMosquitto]:
    broker = RestartableMosquitto(workdir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
