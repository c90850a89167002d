"""The camera's audit log on disk: append-only JSON Lines, hash-chained, rotated by size (R-AUDITFILE).

Theory of operation
-------------------
Everything the controller audits (:mod:`controller.audit`), and every fault the live edge reports,
is appended to ``DIR/audit.jsonl``, one entry a line::

    {"seq":17,"at":1714550000.12,"kind":"accepted","data":{"id":"s-1","type":"activity_start"},
     "prev":"9f2c…","hash":"41ab…"}

``hash`` is :func:`controller.audit.entry_hash` of ``(prev, seq, at, kind, data)`` and ``prev`` the
hash of the entry before, so the chain is the one the simulator keeps in memory, continued on
disk. It starts at the camera's genesis value and runs on across files: when ``audit.jsonl``
reaches ``max_bytes`` it is renamed ``audit-<segment>.jsonl`` (six digits, oldest lowest) beside it
and a new ``audit.jsonl`` begins. Every file opens with an ``audit_segment`` entry naming the camera
and the segment number, so a file whose first lines were cut no longer starts with one, and
segment 0 must chain from the genesis value.

What the chain alone cannot show is an end cut off, or a chain rewritten from an edit onwards
with every hash recomputed: both leave a file consistent with itself. The **head** (the last hash)
shows it: the runtime publishes it retained on ``<prefix>/<cam>/audit`` at least every minute and at
every rotation, and :func:`verify_files` with ``head=`` requires the chain to reach it.

**Crashes.** A line is written whole with one ``write``; a process killed in the middle of one
leaves a torn last line, which is cut off when the file is reopened and the repair itself is
audited (``audit_repaired``, with the bytes cut), so the chain stays whole and the event shows.
Lines reach the operating system at every batch (:meth:`AuditFile.flush`) and stable storage at
:meth:`AuditFile.sync`, which the runtime calls before publishing a head — so a head that was
published is always on disk, and a power cut never makes an honest file look truncated.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec

from controller.audit import entry_hash, genesis
from controller.errors import InvalidInput
from controller.messages import AuditHead
from sim.live.store import fsync_dir

__all__ = ["AuditFile", "AuditHead", "FileEntry", "Verdict", "audit_files", "verify_contents", "verify_files"]

CURRENT = "audit.jsonl"
SEGMENT_KIND = "audit_segment"
_ROTATED = re.compile(r"^audit-(\d{6})\.jsonl$")


class FileEntry(msgspec.Struct, frozen=True):
    """One line of the audit file."""

    seq: int
    at: float
    kind: str
    data: dict[str, Any]
    prev: str
    hash: str


_encode = msgspec.json.Encoder().encode
_decode_entry = msgspec.json.Decoder(FileEntry).decode


class AuditFile:
    """The writer (see the module docstring). Not thread-safe; one per camera directory."""

    def __init__(self, directory: Path, camera_id: str, max_bytes: int = 16 * 1024 * 1024) -> None:
        if max_bytes < 4096:
            raise InvalidInput("must be at least 4096 bytes", "--audit-max-bytes")
        self.directory = directory
        self.camera_id = camera_id
        self.max_bytes = max_bytes
        self.path = directory / CURRENT
        self.rotations = 0
        self.head = genesis(camera_id)
        self.seq = 0  # the seq of the next entry
        self.segment = 0
        self.at = 0.0
        self._file: IO[bytes] | None = None
        self._size = 0
        repaired = self._recover()
        self._file = self.path.open("ab")
        if self._size == 0:
            self._append(self.at, SEGMENT_KIND, {"camera": camera_id, "segment": self.segment})
        if repaired:
            self._append(self.at, "audit_repaired", {"torn_bytes": repaired})
        self.sync()

    # ---------------------------------------------------------------------------- writing

    def append(self, at: float, kind: str, data: dict[str, Any]) -> None:
        """Append one entry; rotates first when the current file is full."""
        if self._size >= self.max_bytes:
            self.rotate(at)
        self._append(at, kind, data)

    def _append(self, at: float, kind: str, data: dict[str, Any]) -> None:
        assert self._file is not None
        digest = entry_hash(self.head, self.seq, at, kind, data)
        line = _encode(FileEntry(self.seq, at, kind, data, self.head, digest)) + b"\n"
        self._file.write(line)
        self._size += len(line)
        self.head, self.seq, self.at = digest, self.seq + 1, at

    def flush(self) -> None:
        """Hand what was appended to the operating system (survives a crash of this process)."""
        if self._file is not None:
            self._file.flush()

    def sync(self) -> None:
        """Put what was appended on stable storage (survives a power cut)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def fileno(self) -> int:
        """The descriptor of the current file (to fsync it elsewhere; flush first)."""
        assert self._file is not None
        return self._file.fileno()

    def rotate(self, at: float) -> None:
        """Close the current file under its segment name and start the next segment."""
        assert self._file is not None
        self.sync()
        self._file.close()
        self.path.rename(self.directory / f"audit-{self.segment:06d}.jsonl")
        self.segment += 1
        self.rotations += 1
        self._file = self.path.open("ab")
        self._size = 0
        self._append(at, SEGMENT_KIND, {"camera": self.camera_id, "segment": self.segment})
        fsync_dir(self.directory)  # the rename and the new file; its lines go at the next sync

    def head_record(self) -> AuditHead:
        """The current head, to publish (call :meth:`sync` first)."""
        return AuditHead(head=self.head, seq=self.seq - 1, segment=self.segment, at=self.at)

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self.sync()
            self._file.close()
            self._file = None

    # --------------------------------------------------------------------------- recovery

    def _recover(self) -> int:
        """Continue the chain a previous run left; returns how many torn bytes were cut."""
        rotated = sorted(p for p in self.directory.glob("audit-*.jsonl") if _ROTATED.match(p.name))
        torn = 0
        last: FileEntry | None = None
        if self.path.exists():
            torn = _cut_torn_tail(self.path)
            self._size = self.path.stat().st_size
            last = _last_entry(self.path)
            if last is None and rotated:
                last = _last_entry(rotated[-1])
            self.segment = _segment_of(self.path, default=len(rotated))
        elif rotated:
            last = _last_entry(rotated[-1])
            self.segment = int(_ROTATED.match(rotated[-1].name).group(1)) + 1  # type: ignore[union-attr]
        if last is not None:
            self.head, self.seq, self.at = last.hash, last.seq + 1, last.at
        return torn


def _cut_torn_tail(path: Path) -> int:
    """Truncate ``path`` after its last newline; returns the number of bytes removed."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("r+b") as f:
        chunk = 1 << 16
        end = size
        while end > 0:
            start = max(0, end - chunk)
            f.seek(start)
            block = f.read(end - start)
            index = block.rfind(b"\n")
            if index >= 0:
                keep = start + index + 1
                break
            end = start
        else:
            keep = 0
        if keep < size:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return size - keep


def _last_entry(path: Path) -> FileEntry | None:
    last: bytes | None = None
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                last = line
    if last is None:
        return None
    try:
        return _decode_entry(last)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise InvalidInput(f"{path}: the last entry is unreadable; verify the file", "--state-dir") from None


def _segment_of(path: Path, default: int) -> int:
    with path.open("rb") as f:
        first = f.readline()
    try:
        entry = _decode_entry(first)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return default
    segment = entry.data.get("segment") if entry.kind == SEGMENT_KIND else None
    return segment if isinstance(segment, int) else default



# ------------------------------------------------------------------------------ verification


def audit_files(directory: Path) -> list[Path]:
    """The audit files of a state directory, oldest first (rotated segments, then the current)."""
    files = sorted(p for p in directory.glob("audit-*.jsonl") if _ROTATED.match(p.name))
    if (directory / CURRENT).exists():
        files.append(directory / CURRENT)
    return files


@dataclass
class Verdict:
    """The outcome of :func:`verify_files`."""

    ok: bool
    entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str | None = None
    camera: str | None = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)


class _Broken(Exception):
    pass


def _file_lines(paths: Iterable[Path]) -> Iterator[tuple[str, int, bytes]]:
    for path in paths:
        with path.open("rb") as f:
            for number, line in enumerate(f, start=1):
                yield str(path), number, line


def verify_files(paths: list[Path], head: str | None = None, camera: str | None = None) -> Verdict:
    """Check the chain through ``paths`` (consecutive segments, oldest first).

    Every line must be an entry whose ``seq`` follows the one before, whose ``prev`` is the hash
    before and whose ``hash`` is right; every file must start with its segment header; the first
    file, if it is segment 0, must chain from the camera's genesis value. With ``head``, the chain
    must reach that hash (the log may have grown beyond it). ``camera`` pins the camera id.
    Raises :class:`~controller.errors.InvalidInput` for a file that cannot be read.
    """
    return _verify(_file_lines(paths), head, camera)


def verify_contents(files: list[tuple[str, bytes]], head: str | None = None,
                    camera: str | None = None) -> Verdict:
    """:func:`verify_files` on contents already read: ``(name, bytes)`` per file, oldest first."""
    lines = ((name, number, line) for name, data in files
             for number, line in enumerate(data.splitlines(keepends=True), start=1))
    return _verify(lines, head, camera)


def _verify(lines: Iterator[tuple[str, int, bytes]], head: str | None, camera: str | None) -> Verdict:
    verdict = Verdict(ok=False, camera=camera)
    prev: str | None = None
    seq: int | None = None
    head_seen = head is None
    current: str | None = None
    try:
        for path, number, raw in lines:
            where = f"{path}:{number}"
            if not raw.endswith(b"\n"):
                raise _Broken(f"{where}: the last line is incomplete (torn or cut)")
            try:
                entry = _decode_entry(raw)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise _Broken(f"{where}: not an audit entry ({exc})") from None
            if path != current:
                current = path
                if entry.kind != SEGMENT_KIND:
                    raise _Broken(f"{where}: the file does not begin with its segment header "
                                  "(lines were removed from its start)")
                cam = entry.data.get("camera")
                if not isinstance(cam, str):
                    raise _Broken(f"{where}: the segment header names no camera")
                if verdict.camera is None:
                    verdict.camera = cam
                elif cam != verdict.camera:
                    raise _Broken(f"{where}: a segment of camera {cam!r}, not {verdict.camera!r}")
                if prev is None:
                    if entry.data.get("segment") == 0 or entry.seq == 0:
                        prev = genesis(cam)
                    else:
                        prev = entry.prev
                        verdict.notes.append(f"the chain starts at seq {entry.seq} (segment "
                                             f"{entry.data.get('segment')}); earlier segments were not given")
                    seq = entry.seq
            assert prev is not None and seq is not None
            if entry.seq != seq:
                raise _Broken(f"{where}: seq {entry.seq} where {seq} was due (entries removed, "
                              "inserted or reordered)")
            if entry.prev != prev:
                raise _Broken(f"{where}: prev does not match the entry before (entries removed, "
                              "inserted or reordered)")
            if entry_hash(prev, entry.seq, entry.at, entry.kind, entry.data) != entry.hash:
                raise _Broken(f"{where}: the hash does not match the entry (it was edited)")
            if verdict.first_seq is None:
                verdict.first_seq = entry.seq
            prev, seq = entry.hash, entry.seq + 1
            verdict.entries += 1
            verdict.last_seq = entry.seq
            if entry.hash == head:
                head_seen = True
    except _Broken as broken:
        verdict.problem = str(broken)
        return verdict
    except OSError as exc:
        raise InvalidInput(f"cannot read the audit file: {exc.strerror or exc}", "FILE") from None
    if verdict.entries == 0:
        verdict.problem = "no audit entries"
        return verdict
    verdict.head = prev
    if not head_seen:
        verdict.problem = (f"the chain never reaches the published head {head}: entries were cut off "
                           "the end, or the chain was rewritten")
        return verdict
    verdict.ok = True
    return verdict
