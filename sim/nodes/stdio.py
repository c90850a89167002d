"""``--controller exec:COMMAND``: a controller in any language, as a child process on stdio.

Theory of operation
===================

The protocol itself (messages, framing, versions) is :mod:`controller.wire`; this is the host
side. :class:`ExecFactory` is a :data:`~controller.node.ControllerFactory`: called with a
camera's setup, it returns a :class:`StdioNode`, a :class:`~controller.node.CameraNode` whose
every call is one request to a child process and one answer from it. Drivers (the replay, the
property suites, the live runtime) cannot tell it from an in-process node.

Children
--------
The first child is started (and the handshake done) when the factory is made, so a command
that does not exist, exits at once or speaks another protocol version is reported before any
work starts (``InvalidInput``: exit 2). That child then serves **every camera the factory
builds**, scenario after scenario, each as its own node number: a fuzz run of thousands of
scenarios costs one process start, not thousands. A child that announces ``max_cameras: N``
serves at most ``N`` cameras at a time; the factory starts another child when all are full and
reuses one as soon as its cameras have finished.

A factory pickles as its command: a worker process that receives it (``bwcsim fleet
--workers``) starts its own child. Children are never shared across a ``fork`` either: a
factory that finds itself in a new process forgets the children of its parent. Threads may
share a child (``bwcsim studio`` replays in a thread pool): each request and its answer hold
the child's lock, so they are never interleaved.

Failures
--------
A child that crashes (end of its stdout), hangs (no answer within the request timeout,
``$BWCSIM_NODE_TIMEOUT`` seconds, default 5; 30 for the handshake), writes a line that is not
the expected answer, or answers another request's ``seq``, is **killed** and the request
raises :class:`~controller.errors.ControllerFailure` naming the controller, the camera, the
request (with its time, topic and payload) and the tail of the child's stderr. The nodes it
served fail every later request with the same story; the next camera the factory builds gets a
fresh child, so one crash does not poison the scenarios after it (which is what lets the fuzzer
shrink a crash like any other failure). A child that answers ``{"error": ...}`` stays in
service: only that request failed.

Audit logs
----------
The host offers the ``audit`` feature in its handshake. With a child that accepts it, a node's
:meth:`StdioNode.audit_trail` reads the camera's hash-chained log over the wire (the property
suite P-AUDIT verifies it), before or after ``finish``: the child keeps a finished node's log
until the node is closed, which the host does when it drops the node (the ``close`` goes out
before the child's next request). With a child that does not, ``audit_trail`` raises
:class:`~controller.audit.NoAuditTrail` saying so, and nothing else changes.

The timeout is the one place the host reads a wall clock: it guards against a wedged process,
it never feeds the simulation.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import shlex
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable
from typing import NoReturn

import msgspec

from controller.audit import AuditTrail, NoAuditTrail
from controller.errors import ControllerFailure, InvalidInput
from controller.node import CameraSetup, Publish
from controller.wire import (
    FEATURES,
    PROTOCOL,
    Answer,
    Audit,
    AuditAnswer,
    Bye,
    Close,
    Deadline,
    DeadlineAnswer,
    Deliver,
    DoneAnswer,
    ErrorAnswer,
    Finish,
    Hello,
    HelloAnswer,
    Request,
    Setup,
    SetupAnswer,
    Start,
    StepAnswer,
    Timer,
    WireError,
    decode_answer,
    encode_into,
    setup_request,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "HANDSHAKE_TIMEOUT_S",
    "TIMEOUT_ENV",
    "ExecFactory",
    "StdioNode",
    "exec_factory",
]

TIMEOUT_ENV = "BWCSIM_NODE_TIMEOUT"
DEFAULT_TIMEOUT_S = 5.0
HANDSHAKE_TIMEOUT_S = 30.0
STDERR_KEEP = 8192  # bytes of the child's stderr kept for error messages
STDERR_LINES = 20  # ... of which at most this many last lines are quoted
MAX_LINE = 64 * 1024 * 1024  # an answer longer than this is garbage, not a slow answer
MAX_STALLS = 100  # timer answers in a row whose deadline does not move past the timer's time
_HOST = "bwcsim"

_OP_OF: dict[type, str] = {
    Hello: "hello", Setup: "setup", Start: "start", Deliver: "deliver", Timer: "timer",
    Deadline: "deadline", Finish: "finish", Audit: "audit", Close: "close", Bye: "bye",
}


class _ChildBroke(Exception):
    """Internal: the child can no longer be talked to (the reason, stderr not yet attached)."""


class Child:
    """One running child process: its pipes, its stderr tail, one request at a time."""

    def __init__(self, argv: list[str], label: str, timeout_s: float) -> None:
        self.label = label
        self.timeout_s = timeout_s
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            bufsize=0, close_fds=True,
            # Its own session: a Ctrl-C meant for bwcsim must not kill the controller before
            # bwcsim has finished with it (``bwcsim live`` closes recordings on the way out).
            start_new_session=True,
        )
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self.pid_owner = os.getpid()
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        self._err = self.proc.stderr.fileno()
        for fd in (self._in, self._out, self._err):
            os.set_blocking(fd, False)
        self._poll = select.poll()
        self._poll.register(self._out, select.POLLIN)
        self._poll.register(self._err, select.POLLIN)
        self._wpoll = select.poll()
        self._wpoll.register(self._in, select.POLLOUT)
        self._rbuf = bytearray()
        self._wbuf = bytearray()
        self._tail = bytearray()
        self.seq = 0
        self.failure: str | None = None  # why the child is out of service
        self.name = ""
        self.max_cameras: int | None = None
        self.features: frozenset[str] = frozenset()  # agreed in the handshake
        self.live = 0  # nodes set up and neither finished nor closed
        self._next_node = 1
        self.pending_close: list[int] = []
        # One request at a time even when several threads drive nodes of this child (the
        # studio replays in a thread pool): a request and its answer are never interleaved.
        self.lock = threading.RLock()
        _CHILDREN.add(self)

    # ---------------------------------------------------------------------- requests

    def handshake(self) -> None:
        """Hello: raises :class:`_ChildBroke` (or ``ValueError`` for a refusal) on failure.

        A child may take a while to start (an interpreter loading its modules on a busy
        machine), so the handshake gets the longer of the two time limits."""
        req = Hello(seq=self.seq, protocol=PROTOCOL, host=_HOST, features=list(FEATURES))
        answer = self.roundtrip(req, max(HANDSHAKE_TIMEOUT_S, self.timeout_s))
        if isinstance(answer, ErrorAnswer):
            raise ValueError(f"the child refused the handshake: {answer.error}")
        assert isinstance(answer, HelloAnswer)
        if answer.protocol != PROTOCOL:
            raise ValueError(f"the child speaks protocol {answer.protocol}; bwcsim speaks {PROTOCOL}")
        if answer.max_cameras is not None and answer.max_cameras < 1:
            raise ValueError(f"max_cameras must be at least 1 or null, got {answer.max_cameras}")
        self.name = answer.name
        self.max_cameras = answer.max_cameras
        if answer.features is not msgspec.UNSET:
            self.features = frozenset(answer.features) & frozenset(FEATURES)

    def exchange(self, req: Request, camera: str) -> Answer:
        """Send ``req`` for ``camera`` and return the answer (an :class:`ErrorAnswer` included);
        :class:`ControllerFailure` when the child is or goes out of service."""
        with self.lock:
            if self.failure is not None:
                raise ControllerFailure(
                    f"{self.label}, camera {camera}: {describe(req)}: not sent, the child that "
                    f"serves this camera failed earlier ({self.failure})"
                )
            if self.pending_close:
                self._send_closes(camera)
            if req.seq != self.seq:  # built before another thread's request went out
                req = msgspec.structs.replace(req, seq=self.seq)
            try:
                return self.roundtrip(req, self.timeout_s)
            except _ChildBroke as exc:
                raise ControllerFailure(self._story(camera, req, str(exc))) from None

    def roundtrip(self, req: Request, timeout_s: float) -> Answer:
        """One request, one answer; :class:`_ChildBroke` (after killing the child) otherwise."""
        buf = self._wbuf
        buf.clear()
        encode_into(req, buf)
        self.seq += 1
        deadline = time.monotonic() + timeout_s
        self._write(buf, deadline)
        line = self._read_line(deadline, timeout_s)
        op = _OP_OF[type(req)]
        try:
            answer = decode_answer(op, line)
        except WireError as exc:
            self._break(f"the child answered with a line that is not a {op} answer: {exc}; "
                        f"the line: {_clip(line)}")
        if answer.seq != req.seq:
            self._break(f"the child answered out of order: request seq {req.seq}, answer seq "
                        f"{answer.seq}; the line: {_clip(line)}")
        return answer

    def _send_closes(self, camera: str) -> None:
        pending, self.pending_close = self.pending_close, []
        for node in pending:
            req = Close(seq=self.seq, node=node)
            try:
                self.roundtrip(req, self.timeout_s)
            except _ChildBroke as exc:
                raise ControllerFailure(self._story(camera, req, str(exc))) from None

    def new_node(self) -> int:
        node = self._next_node
        self._next_node += 1
        return node

    # ---------------------------------------------------------------------- the pipes

    def _write(self, data: bytearray, deadline: float) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._in, view)
            except BlockingIOError:
                n = 0
            except (BrokenPipeError, ConnectionResetError):
                self._break(self._exit_story("stopped reading its stdin"))
            view = view[n:]
            if view:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._wpoll.poll(remaining * 1000):
                    self._break("the child did not read the request "
                                f"within {self.timeout_s:g} s (its stdin stayed full)")

    def _read_line(self, deadline: float, timeout_s: float) -> bytes:
        buf = self._rbuf
        while True:
            i = buf.find(b"\n")
            if i >= 0:
                line = bytes(buf[:i])
                del buf[: i + 1]
                return line
            if len(buf) > MAX_LINE:
                self._break(f"the child wrote {len(buf)} bytes without a newline: {_clip(bytes(buf))}")
            remaining = deadline - time.monotonic()
            events = self._poll.poll(max(0.0, remaining) * 1000) if remaining > 0 else []
            if not events:
                self._break(f"no answer within {timeout_s:g} s (the child hangs or is too slow; "
                            f"${TIMEOUT_ENV} sets the limit)")
            for fd, _ in events:
                if fd == self._err:
                    self._drain_stderr()
                    continue
                try:
                    data = os.read(self._out, 1 << 16)
                except BlockingIOError:
                    continue
                if not data:
                    partial = f"; it had written {_clip(bytes(buf))}" if buf else ""
                    self._break(self._exit_story("closed its stdout before answering") + partial)
                buf += data

    def _drain_stderr(self) -> None:
        while True:
            try:
                data = os.read(self._err, 1 << 16)
            except (BlockingIOError, OSError):
                return
            if not data:
                with contextlib.suppress(KeyError, ValueError):
                    self._poll.unregister(self._err)
                return
            self._tail += data
            if len(self._tail) > STDERR_KEEP:
                del self._tail[: len(self._tail) - STDERR_KEEP]

    def _exit_story(self, what: str) -> str:
        try:
            code = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return f"the child {what} but is still running"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"the child {what}: killed by {signal.Signals(-code).name}"
            return f"the child {what}: killed by signal {-code}"
        return f"the child {what}: exited with status {code}"

    def _break(self, reason: str) -> NoReturn:
        """Take the child out of service (kill it) and raise :class:`_ChildBroke`."""
        self.failure = reason
        self.kill()
        raise _ChildBroke(reason)

    def stderr_tail(self) -> str:
        self._drain_stderr()
        text = self._tail.decode("utf-8", "replace")
        lines = text.splitlines()[-STDERR_LINES:]
        return "\n".join(f"  | {line}" for line in lines)

    def _story(self, camera: str, req: Request, reason: str) -> str:
        tail = self.stderr_tail()
        stderr = f"\nchild stderr (last lines):\n{tail}" if tail else "\n(the child wrote nothing on stderr)"
        return f"{self.label}, camera {camera}: {describe(req)}: {reason}{stderr}"

    # ---------------------------------------------------------------------- ending

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5.0)
        self._drain_stderr()
        self._close_pipes()

    def shutdown(self, grace_s: float = 1.0) -> None:
        """``bye``, then wait a little for the child to exit; kill it if it does not."""
        if os.getpid() != self.pid_owner:
            return  # a forked copy: the parent owns this child
        with self.lock:
            if self.failure is None and self.proc.poll() is None:
                self.failure = "shut down"
                with contextlib.suppress(_ChildBroke, OSError, ValueError):
                    self.roundtrip(Bye(seq=self.seq), grace_s)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=grace_s)
            self.kill()

    def _close_pipes(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


_CHILDREN: weakref.WeakSet[Child] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    for child in list(_CHILDREN):
        child.shutdown(grace_s=0.5)


def describe(req: Request) -> str:
    """A request as a person reads it: op, seq, time, topic and (clipped) payload."""
    op = _OP_OF[type(req)]
    text = f"request {op} (seq {req.seq}"
    if isinstance(req, Setup):
        text += f", node {req.node}"
    now = getattr(req, "now", None)
    if now is not None:
        text += f", t={now:g}"
    text += ")"
    if isinstance(req, Deliver):
        text += f" of {req.topic} {_clip(req.payload)}"
    return text


def _clip(data: bytes, limit: int = 160) -> str:
    shown = data[:limit].decode("utf-8", "replace")
    return repr(shown) + (f"... ({len(data)} bytes)" if len(data) > limit else "")


# ---------------------------------------------------------------------------- the node


class _Life:
    """Where a node is in its life; shared with the finalizer that runs when it is dropped.

    ``released``: it no longer counts against the child's ``max_cameras`` (finished or
    closed). ``closed``: the child holds nothing for it any more (closed, or finished by a
    child that keeps no audit logs).
    """

    __slots__ = ("closed", "released")

    def __init__(self) -> None:
        self.released = False
        self.closed = False


def _dropped(child: Child, node: int, life: _Life) -> None:
    if not life.released:
        life.released = True
        child.live -= 1
    if not life.closed:
        life.closed = True
        if child.failure is None:
            child.pending_close.append(node)  # sent before the child's next request


class StdioNode:
    """One camera's controller in a child process (see the module docstring)."""

    __slots__ = ("__weakref__", "_child", "_deadline", "_life", "_node", "_stalls",
                 "_subscriptions", "camera_id")

    def __init__(self, child: Child, node: int, camera_id: str, subscriptions: list[str]) -> None:
        self.camera_id = camera_id
        self._child = child
        self._node = node
        self._subscriptions = subscriptions
        self._deadline: float | None = None
        self._stalls = 0
        self._life = _Life()
        weakref.finalize(self, _dropped, child, node, self._life)

    def subscriptions(self) -> list[str]:
        return list(self._subscriptions)

    def start(self, now: float) -> list[Publish]:
        return self._step(Start(seq=self._child.seq, node=self._node, now=now))

    def on_message(self, topic: str, payload: bytes, now: float) -> list[Publish]:
        if type(payload) is not bytes:  # bytearray, memoryview, a bytes subclass
            payload = bytes(payload)
        if type(topic) is not str:
            topic = str.__str__(topic)
        return self._step(Deliver(seq=self._child.seq, node=self._node, now=now, topic=topic,
                                  payload=payload))

    def next_deadline(self) -> float | None:
        return self._deadline  # every step answer carries it: no round trip

    def on_timer(self, now: float) -> list[Publish]:
        pubs = self._step(Timer(seq=self._child.seq, node=self._node, now=now))
        # After a timer at ``now`` everything due by ``now`` has run; a child that keeps
        # asking to be woken again at or before ``now`` would spin the driver at one instant.
        due = self._deadline
        if due is not None and due <= now:
            self._stalls += 1
            if self._stalls >= MAX_STALLS:
                raise ControllerFailure(
                    f"{self._child.label}, camera {self.camera_id}: request timer (t={now:g}): "
                    f"the child asked {self._stalls} times in a row to be woken at {due:g}, "
                    "at or before the time it was just woken for: its deadline never moves on"
                )
        else:
            self._stalls = 0
        return pubs

    def finish(self, now: float) -> list[Publish]:
        life = self._life
        if not life.released:  # the camera is gone; only its audit log may stay (until close)
            life.released = True
            self._child.live -= 1
        if "audit" not in self._child.features:
            life.closed = True  # the child frees the node on finish
        return self._step(Finish(seq=self._child.seq, node=self._node, now=now))

    def audit_trail(self) -> AuditTrail:
        """The camera's audit log, read from the child (feature ``audit``); before or after
        :meth:`finish`. :class:`~controller.audit.NoAuditTrail` when the child keeps none."""
        child = self._child
        if "audit" not in child.features:
            raise NoAuditTrail(
                f"{child.label} ({child.name or 'the child'}) did not accept the audit feature "
                "of the node protocol: its audit log cannot be read")
        if self._life.closed:
            raise NoAuditTrail(f"{self!r} was closed: its audit log is gone")
        answer = child.exchange(Audit(seq=child.seq, node=self._node), self.camera_id)
        if isinstance(answer, AuditAnswer):
            return AuditTrail(self.camera_id, tuple(answer.entries), answer.head)
        raise self._refused(answer, "audit")

    def ask_deadline(self) -> float | None:
        """The ``deadline`` request (a round trip; :meth:`next_deadline` needs none)."""
        answer = self._child.exchange(Deadline(seq=self._child.seq, node=self._node), self.camera_id)
        if isinstance(answer, DeadlineAnswer):
            self._deadline = answer.deadline
            return answer.deadline
        raise self._refused(answer, "deadline")

    def close(self) -> None:
        """Release the node in the child now (otherwise done when the node is dropped)."""
        life = self._life
        if not life.released:
            life.released = True
            self._child.live -= 1
        if not life.closed:
            life.closed = True
            answer = self._child.exchange(Close(seq=self._child.seq, node=self._node), self.camera_id)
            if not isinstance(answer, DoneAnswer):
                raise self._refused(answer, "close")

    def _step(self, req: Start | Deliver | Timer | Finish) -> list[Publish]:
        answer = self._child.exchange(req, self.camera_id)
        if type(answer) is StepAnswer:
            self._deadline = answer.deadline
            return answer.publish
        raise self._refused(answer, describe(req))

    def _refused(self, answer: Answer, what: str) -> ControllerFailure:
        error = answer.error if isinstance(answer, ErrorAnswer) else repr(answer)
        return ControllerFailure(
            f"{self._child.label}, camera {self.camera_id}: {what}: the child answered with an "
            f"error: {error}\n{self._child.stderr_tail()}".rstrip()
        )

    def __repr__(self) -> str:
        return f"StdioNode({self.camera_id!r}, node {self._node} of {self._child.label})"


# ---------------------------------------------------------------------------- the factory


class ExecFactory:
    """A controller factory whose nodes live in child processes running ``command``."""

    def __init__(self, command: str, timeout_s: float | None = None) -> None:
        self.command = command
        self.label = f"controller exec:{command}"
        try:
            self.argv = shlex.split(command)
        except ValueError as exc:
            raise InvalidInput(f"exec:{command}: {exc}", "controller") from None
        if not self.argv:
            raise InvalidInput("exec: needs a command, e.g. exec:./bwc-fixed", "controller")
        self.timeout_s = timeout_s if timeout_s is not None else _timeout_from_env()
        self._children: list[Child] = []
        self._pid = os.getpid()
        self._lock = threading.Lock()  # choosing or starting a child, one thread at a time

    def __reduce__(self) -> tuple[Callable[..., ExecFactory], tuple[str, float]]:
        return ExecFactory, (self.command, self.timeout_s)  # a worker starts its own children

    def start(self) -> None:
        """Start the first child and check the handshake; ``InvalidInput`` (exit 2) if it fails."""
        with self._lock:
            if not self._live_children():
                self._spawn(first=True)

    def __call__(self, setup: CameraSetup) -> StdioNode:
        with self._lock:
            child = self._child_with_room()
            node = child.new_node()
            child.live += 1  # reserved now, so a parallel call counts it
        try:
            answer = child.exchange(setup_request(child.seq, node, setup), setup.camera_id)
        except BaseException:
            child.live -= 1
            raise
        if not isinstance(answer, SetupAnswer):
            child.live -= 1
            error = answer.error if isinstance(answer, ErrorAnswer) else repr(answer)
            raise ControllerFailure(
                f"{self.label}, camera {setup.camera_id}: request setup: the child answered "
                f"with an error: {error}\n{child.stderr_tail()}".rstrip()
            )
        return StdioNode(child, node, setup.camera_id, answer.subscriptions)

    @property
    def children(self) -> list[Child]:
        """The children in service (for tests and the bench)."""
        return self._live_children()

    def close(self) -> None:
        """Shut every child down (``bye``); the factory starts new ones if used again."""
        for child in self._children:
            child.shutdown()
        self._children.clear()

    def _live_children(self) -> list[Child]:
        if os.getpid() != self._pid:  # forked: those children belong to the parent
            self._children, self._pid = [], os.getpid()
        self._children = [c for c in self._children if c.failure is None]
        return self._children

    def _child_with_room(self) -> Child:
        for child in self._live_children():
            if child.max_cameras is None or child.live < child.max_cameras:
                return child
        return self._spawn(first=False)

    def _spawn(self, first: bool) -> Child:
        try:
            child = Child(self.argv, self.label, self.timeout_s)
        except OSError as exc:
            raise InvalidInput(f"exec:{self.command}: cannot start {self.argv[0]!r}: "
                               f"{exc.strerror or exc}", "controller") from None
        try:
            child.handshake()
        except (_ChildBroke, ValueError) as exc:
            child.kill()
            tail = child.stderr_tail()
            message = f"exec:{self.command}: handshake failed: {exc}" + (
                f"\nchild stderr (last lines):\n{tail}" if tail else "")
            if first:
                raise InvalidInput(message, "controller") from None
            raise ControllerFailure(f"{self.label}: {message}") from None
        self._children.append(child)
        return child

    def __repr__(self) -> str:
        return f"ExecFactory({self.command!r})"


def _timeout_from_env() -> float:
    text = os.environ.get(TIMEOUT_ENV)
    if text is None or not text.strip():
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value or value == float("inf"):
        raise InvalidInput(f"${TIMEOUT_ENV} must be a positive number of seconds, got {text!r}",
                           "controller")
    return value


_FACTORIES: dict[tuple[str, int], ExecFactory] = {}


def exec_factory(command: str) -> ExecFactory:
    """The factory for ``exec:command``, started and checked; one per command per process, so
    every command of a run (and every batch of a fleet worker) shares its children."""
    key = (command, os.getpid())
    factory = _FACTORIES.get(key)
    if factory is None:
        factory = ExecFactory(command)
        factory.start()
        _FACTORIES[key] = factory
    return factory
