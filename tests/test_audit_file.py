"""The audit file and ``bwcsim audit verify`` (R-AUDITFILE): every kind of tampering is caught.

Logs are written once by the real writer (rotating across several files); a hypothesis property
then applies one tampering of each kind at a random place, in memory, and requires the verifier
to fail — without the published head for the kinds a chain shows by itself (an edit, a removal,
an insertion, a reordering, a duplicate, a cut start, a torn line, a missing middle file), and with
it for the kinds only the head can show (a cut-off end, a chain rewritten with every hash
recomputed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.audit import entry_hash, genesis
from sim.live.auditfile import AuditFile, audit_files, verify_contents, verify_files

pytestmark = pytest.mark.req("R-AUDITFILE")

ROOT = Path(__file__).resolve().parents[1]
CAM = "cam-1"
Files = list[tuple[str, list[bytes]]]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Files, str]]:
    """Three honest logs of different lengths and contents, each with the head it published."""
    out = []
    for n, size in enumerate((45, 120, 300)):
        directory = tmp_path_factory.mktemp(f"audit{n}")
        log = AuditFile(directory, CAM, max_bytes=4096)
        for i in range(size):
            data: dict[str, object] = {"id": f"m{i}" if i % 3 else i, "note": "x" * (i % 50)}
            if i % 7 == 0:
                data["error"] = None
            log.append(1000.0 + i * 0.5, ("accepted", "refused", "state", "alert")[i % 4], data)
        head = log.head
        log.close()
        files = [(p.name, p.read_bytes().splitlines(keepends=True)) for p in audit_files(directory)]
        assert len(files) >= 2
        out.append((files, head))
    return out


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


def _line(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


SELF_EVIDENT = ["edit_data", "edit_at", "edit_kind", "edit_seq", "remove", "swap", "duplicate", "insert",
                "cut_start", "torn", "drop_middle_file"]
NEEDS_HEAD = ["truncate", "rewrite"]


def _tamper(files: Files, how: str, data: st.DataObject) -> Files:
    """One tampering of kind ``how``; returns the files a verifier would be handed."""
    files = [(name, list(lines)) for name, lines in files]
    if how == "drop_middle_file":
        return [files[0], *files[2:]] if len(files) > 2 else files[1:]
    index = data.draw(st.integers(0, len(files) - 1), label="file")
    name, lines = files[index]
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
        lines[pick] = _line(doc)
    elif how == "remove":
        if pick == len(lines) - 1 and index == len(files) - 1:
            pick -= 1  # removing the very last line is a truncation (its own kind, below)
        if pick == 0:
            pick = 1
        del lines[pick]
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
        forged: dict[str, object] = {"seq": doc["seq"], "at": doc["at"], "kind": "accepted",
                                     "data": {"id": "x"}, "prev": prev}
        forged["hash"] = entry_hash(prev, doc["seq"], doc["at"], "accepted", {"id": "x"})
        lines.insert(pick, _line(forged))
    elif how == "cut_start":
        lines = lines[pick:]
    elif how == "torn":
        lines[-1] = lines[-1][: max(1, len(lines[-1]) // 2)]
    elif how == "truncate":
        files, lines = files[: index + 1], lines[:pick]
    elif how == "rewrite":
        doc["data"] = {**doc["data"], "id": "forged"}
        lines[pick] = _line(doc)
        # Every later file must be dropped or rewritten too, or it would no longer chain.
        files, lines = files[: index + 1], _rehash_from(lines, pick)
    files[index] = (name, lines)
    return files


def _verify(files: Files, head: str | None = None) -> bool:
    return verify_contents([(name, b"".join(lines)) for name, lines in files], head=head).ok


@pytest.mark.parametrize("how", SELF_EVIDENT + NEEDS_HEAD)
@given(data=st.data())
def test_verify_catches_every_kind_of_tampering(logs: list[tuple[Files, str]], how: str,
                                                data: st.DataObject) -> None:
    files, head = data.draw(st.sampled_from(logs), label="log")
    assert _verify(files, head)
    handed = _tamper(files, how, data)
    assert not _verify(handed, head), how
    if how in SELF_EVIDENT:
        assert not _verify(handed), how


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
    current.write_bytes(b"".join(current.read_bytes().splitlines(keepends=True)[:-2]))
    cut = _cli(str(tmp_path), "--head", published)
    assert cut.returncode == 1 and cut.stdout.startswith("TAMPERED: ") and "published head" in cut.stdout
    without_head = _cli(*[str(p) for p in audit_files(tmp_path)])
    assert without_head.returncode == 0 and "give --head" in without_head.stdout
    missing = _cli(str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and missing.stdout == "" and "no such file" in missing.stderr
    wrong_camera = _cli(str(tmp_path), "--camera", "cam-9")
    assert wrong_camera.returncode == 1 and "cam-9" in wrong_camera.stdout
