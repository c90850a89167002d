"""The audit file and ``bwcsim audit verify`` (R-AUDITFILE): every kind of tampering is caught.

A hypothesis property writes a log (rotating across several files), applies one tampering of a
randomly chosen kind at a random place, and requires ``verify`` to fail — without the published
head for the kinds a chain shows by itself (an edit, a removal, an insertion, a reordering, a
duplicate, a cut start, a torn line, a missing middle file), and with it for the kinds only the
head can show (a cut-off end, a chain rewritten with every hash recomputed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.audit import entry_hash, genesis
from sim.live.auditfile import AuditFile, audit_files, verify_files

pytestmark = pytest.mark.req("R-AUDITFILE")

ROOT = Path(__file__).resolve().parents[1]
CAM = "cam-1"

entries = st.lists(
    st.tuples(
        st.integers(0, 10**6),
        st.sampled_from(["accepted", "refused", "state", "alert", "connected"]),
        st.one_of(st.integers(-5, 10**6), st.text(max_size=8), st.none()),
    ),
    min_size=40, max_size=80,
).map(lambda raw: [(dt / 1000, kind, {"id": value, "note": "padding so that the files rotate " * 4})
                   for dt, kind, value in raw])


def _write(directory: Path, items: list[tuple[float, str, dict[str, Any]]]) -> str:
    # Durability is not what this property is about: skip the fsyncs, which cost 6 ms apiece here.
    with mock.patch("sim.live.auditfile.os.fsync"):
        log = AuditFile(directory, CAM, max_bytes=4096)
        at = 0.0
        for dt, kind, data in items:
            at += dt
            log.append(at, kind, data)
        head = log.head
        log.close()
    return head


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _rehash_from(lines: list[bytes], start: int) -> list[bytes]:
    """A forger's rewrite: every entry from ``start`` on gets a recomputed prev and hash."""
    out = lines[:start]
    prev = json.loads(out[-1])["hash"] if out else genesis(CAM)
    for raw in lines[start:]:
        doc = json.loads(raw)
        doc["prev"] = prev
        doc["hash"] = prev = entry_hash(prev, doc["seq"], doc["at"], doc["kind"], doc["data"])
        out.append(json.dumps(doc, separators=(",", ":")).encode() + b"\n")
    return out


SELF_EVIDENT = ["edit_data", "edit_at", "edit_kind", "edit_seq", "remove", "swap", "duplicate", "insert",
                "cut_start", "torn", "drop_middle_file"]
NEEDS_HEAD = ["truncate", "rewrite"]


def _tamper(files: list[Path], how: str, data: st.DataObject) -> list[Path]:
    """Apply one tampering; returns the files a verifier would be handed."""
    if how == "drop_middle_file":
        return [files[0], *files[2:]]
    target = data.draw(st.sampled_from(files), label="file")
    lines = _lines(target)
    pick = data.draw(st.integers(1, len(lines) - 1), label="line")  # line 0 is the segment header
    doc = json.loads(lines[pick])
    if how.startswith("edit_"):
        field = how.removeprefix("edit_")
        if field == "data":
            doc["data"] = {**doc["data"], "id": "forged"}
        elif field == "at":
            doc["at"] = doc["at"] + 1.5
        elif field == "kind":
            doc["kind"] = "accepted" if doc["kind"] != "accepted" else "refused"
        else:
            doc["seq"] += 1
        lines[pick] = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    elif how == "remove":
        del lines[pick]
        if pick == len(lines):  # removing the very last line is a truncation: also remove one before
            del lines[pick - 1]
            lines.append(b"garbage\n")
    elif how == "swap":
        other = pick + 1 if pick + 1 < len(lines) else pick - 1
        if other == 0:
            lines.insert(1, lines[pick])
        else:
            lines[pick], lines[other] = lines[other], lines[pick]
    elif how == "duplicate":
        lines.insert(pick, lines[pick])
    elif how == "insert":
        prev = json.loads(lines[pick - 1])["hash"]
        forged = {"seq": doc["seq"], "at": doc["at"], "kind": "accepted", "data": {"id": "x"}, "prev": prev}
        forged["hash"] = entry_hash(prev, forged["seq"], forged["at"], "accepted", forged["data"])
        lines.insert(pick, json.dumps(forged, separators=(",", ":")).encode() + b"\n")
    elif how == "cut_start":
        lines = lines[pick:]
    elif how == "torn":
        lines[-1] = lines[-1][: max(1, len(lines[-1]) // 2)]
    elif how == "truncate":
        files = files[: files.index(target) + 1]
        lines = lines[:pick]
    elif how == "rewrite":
        doc["data"] = {**doc["data"], "id": "forged"}
        lines[pick] = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        lines = _rehash_from(lines, pick)
        # every later file must be rewritten too, or its first entry would no longer chain
        files = files[: files.index(target) + 1]
    target.write_bytes(b"".join(lines))
    return files


@pytest.mark.parametrize("how", SELF_EVIDENT + NEEDS_HEAD)
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=entries, data=st.data())
def test_verify_catches_every_kind_of_tampering(tmp_path_factory: pytest.TempPathFactory, how: str,
                                                items: list[tuple[float, str, dict[str, Any]]],
                                                data: st.DataObject) -> None:
    directory = tmp_path_factory.mktemp("audit")
    head = _write(directory, items)
    files = audit_files(directory)
    assert len(files) >= 3, "the log spans several rotated files"
    assert verify_files(files, head=head).ok
    handed = _tamper(files, how, data)
    assert not verify_files(handed, head=head).ok, how
    if how in SELF_EVIDENT:
        assert not verify_files(handed).ok, how


def test_an_honest_log_verifies_from_any_segment_on_and_reaches_an_older_head(tmp_path: Path) -> None:
    log = AuditFile(tmp_path, CAM, max_bytes=4096)
    for index in range(200):
        log.append(float(index), "accepted", {"id": index})
        if index == 50:
            older_head = log.head
    log.close()
    files = audit_files(tmp_path)
    assert verify_files(files, head=older_head).ok  # the log grew after that head was published
    later = verify_files(files[2:])
    assert later.ok and later.notes and "earlier segments were not given" in later.notes[0]


def test_a_torn_last_line_is_cut_on_reopening_and_the_repair_is_audited(tmp_path: Path) -> None:
    log = AuditFile(tmp_path, CAM)
    log.append(1.0, "accepted", {"id": 1})
    log.close()
    with (tmp_path / "audit.jsonl").open("ab") as f:
        f.write(b'{"seq":2,"at":2.0,"kind":"acc')  # the process died in the middle of a write
    assert not verify_files(audit_files(tmp_path)).ok
    log = AuditFile(tmp_path, CAM)
    log.append(3.0, "accepted", {"id": 3})
    head = log.head
    log.close()
    verdict = verify_files(audit_files(tmp_path), head=head)
    assert verdict.ok, verdict.problem
    kinds = [json.loads(line)["kind"] for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert kinds == ["audit_segment", "accepted", "audit_repaired", "accepted"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", "audit", "verify", *args], cwd=ROOT,
                          capture_output=True, text=True)


def test_the_command_says_ok_or_tampered_and_exits_0_1_or_2(tmp_path: Path) -> None:
    log = AuditFile(tmp_path, CAM, max_bytes=4096)
    for index in range(100):
        log.append(float(index), "accepted", {"id": index})
    published = json.dumps({"head": log.head, "seq": log.seq - 1, "segment": log.segment, "at": 99.0})
    log.close()
    ok = _cli(str(tmp_path), "--head", published)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: ") and "'cam-1'" in ok.stdout
    current = tmp_path / "audit.jsonl"
    current.write_bytes(b"".join(_lines(current)[:-2]))
    cut = _cli(str(tmp_path), "--head", published)
    assert cut.returncode == 1 and cut.stdout.startswith("TAMPERED: ") and "published head" in cut.stdout
    without_head = _cli(*[str(p) for p in audit_files(tmp_path)])
    assert without_head.returncode == 0 and "give --head" in without_head.stdout
    missing = _cli(str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and missing.stdout == "" and "no such file" in missing.stderr
    wrong_camera = _cli(str(tmp_path), "--camera", "cam-9")
    assert wrong_camera.returncode == 1 and "cam-9" in wrong_camera.stdout
