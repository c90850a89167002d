"""What the studio does, without HTTP: open, replay, edit, compare, step, save, create.

Theory of operation
-------------------
The studio is a thin page over this module; every answer it shows is computed here, in
Python, from the same objects ``bwcsim run`` uses, and returned as JSON-ready data.

*Sources and edits.* A scenario is a **source** — a library file (a path relative to the
working folder) or the text of a scenario made with the form — plus an ordered list of
**edits** (:class:`~sim.world.whatif.Edit`). The page holds both; every request sends them and
the server rebuilds the edited text through :class:`~sim.world.whatif.ScenarioText`, so the
server keeps no per-user state but a cache of finished runs, and what is replayed is exactly
the text that Save writes.

*Runs.* A run is keyed by the hash of its text and its base folder: replaying the same text
twice is a cache hit (an LRU of :data:`CACHE_SIZE` runs). Each run keeps its report, view
model, :class:`~sim.views.playback.Playback` for the cursor and projector chart. The what-if
answer pairs the edited run with the source's own run through
:func:`~sim.views.compare.compare`.

*Bad input is an answer, not a crash.* Every :class:`~controller.errors.BwcError` becomes
:class:`StudioError` with the field it names (an edit's field, or the loader's
``timeline[3].at``) and its line, so the page can show it next to that field. Nothing a page
sends can raise anything else.

*Writes stay home.* Save and the form write only inside :attr:`Studio.root`, the folder the
studio was started in: the target is a relative path ending in ``.yaml``/``.yml``, resolved
(symbolic links included) and checked to lie inside the root, in an existing folder; an
existing file is replaced only when the page says so. Library files are read only from inside
the library folders or the root.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.errors import BwcError, InvalidInput, ScenarioError
from controller.node import ControllerFactory
from controller.policy import BUILTIN, load_policy, parse_policy
from controller.reference import make_node
from controller.yamlsrc import SourceDoc, load_yaml
from sim.views.compare import compare
from sim.views.model import RunView, run_view
from sim.views.playback import Playback
from sim.views.projector import chart_svg, legend
from sim.views.report import build_report
from sim.views.vocabulary import policy_files, vocabulary
from sim.world.replay import replay
from sim.world.scenario import EVENT_FIELDS, Scenario
from sim.world.whatif import Edit, ScenarioText, parse_field

__all__ = ["CACHE_SIZE", "Run", "Studio", "StudioError"]

CACHE_SIZE = 32
_SUFFIXES = (".yaml", ".yml")


class StudioError(Exception):
    """Bad input from the page: shown beside ``field`` (or at the top when there is none)."""

    def __init__(self, message: str, field: str | None = None, line: int | None = None,
                 status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.line = line
        self.status = status

    @classmethod
    def from_bwc(cls, exc: BwcError) -> StudioError:
        if isinstance(exc, ScenarioError):
            return cls(exc.message, exc.field, exc.line)
        if isinstance(exc, InvalidInput):
            return cls(exc.message, exc.field)
        return cls(str(exc))

    def to_json(self) -> dict[str, Any]:
        return {"ok": False, "error": {"message": self.message, "field": self.field,
                                       "line": self.line}}


@dataclass(eq=False, slots=True)
class Run:
    """One replayed text, with everything the page asks of it."""

    id: str
    scenario: Scenario
    report: dict[str, Any]
    view: RunView
    playback: Playback

    def summary(self) -> dict[str, Any]:
        exp = self.report.get("expect")
        return {
            "run": self.id,
            "name": self.scenario.name,
            "verdict": self.report["verdict"],
            "expect": exp,
            "missed_s": self.report["missed_s"],
            "end": self.scenario.end,
            "cameras": {cam: {"missed_s": c["missed_s"], "refused": c["refused"],
                              "refusals": c["refusals"], "final_state": c["final_state"]}
                        for cam, c in self.report["cameras"].items()},
            "events": self.playback.events,
            "chart": chart_svg(self.view, prefix=f"r{self.id[:6]}"),
            "legend": legend(self.view, prefix=f"l{self.id[:6]}"),
        }


def _num(value: object) -> object:
    """A form's text as the number it holds, else as it is (times stay text)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            return text
    return value


class Studio:
    """The studio's state: where it may read and write, the controller, and the run cache."""

    def __init__(self, root: Path, library: list[Path] | None = None,
                 factory: ControllerFactory = make_node) -> None:
        self.root = root.resolve()
        default = [self.root / "scenarios"] if (self.root / "scenarios").is_dir() else [self.root]
        self.library = [p.resolve() for p in (library or default)]
        self.factory = factory
        self._runs: OrderedDict[str, Run] = OrderedDict()

    # ------------------------------------------------------------------ reading

    def _readable(self, rel: str) -> Path:
        path = (self.root / rel).resolve()
        homes = [self.root, *self.library]
        if not any(path == h or path.is_relative_to(h) for h in homes):
            raise StudioError(f"{rel}: outside the library and the studio's folder", "file")
        if path.suffix not in _SUFFIXES or not path.is_file():
            raise StudioError(f"{rel}: no such scenario file", "file")
        return path

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def library_files(self) -> list[dict[str, Any]]:
        """Every scenario file of the library, with its name (or why it does not load)."""
        out = []
        for folder in self.library:
            files = [folder] if folder.is_file() else sorted(
                p for p in folder.rglob("*") if p.suffix in _SUFFIXES and "policies" not in
                p.relative_to(folder).parts)
            for path in files:
                item: dict[str, Any] = {"file": self._rel(path)}
                try:
                    doc = load_yaml(path.read_text("utf-8"), str(path)).data
                    item["name"] = str(doc.get("name", path.stem)) if isinstance(doc, dict) \
                        else path.stem
                except (BwcError, OSError, UnicodeDecodeError) as exc:
                    item["name"] = path.stem
                    item["error"] = str(exc)
                out.append(item)
        return out

    def policies(self, base_dir: Path | None = None) -> list[str]:
        """Built-in policy names and the library's policy files, as a scenario in ``base_dir``
        (default: the root) names them: a policy path is relative to the scenario file."""
        files = policy_files([p for p in self.library if p.is_dir()])
        base = (base_dir or self.root).resolve()
        return [*BUILTIN, *(Path(os.path.relpath(p, base)).as_posix() for p in files)]

    def inline_vocabulary(self, document: dict[str, Any]) -> dict[str, Any]:
        """The vocabulary of a policy the scenario carries inline (a generated counterexample)."""
        try:
            return vocabulary(parse_policy(SourceDoc(document, {}, "<inline policy>")), None)
        except BwcError as exc:
            raise StudioError.from_bwc(exc) from None

    def vocabulary(self, ref: str) -> dict[str, Any]:
        try:
            return vocabulary(load_policy(ref, self.root), ref)
        except BwcError as exc:
            raise StudioError.from_bwc(exc) from None

    # ------------------------------------------------------------------ sources and edits

    def text_of(self, source: dict[str, Any], edits: list[dict[str, Any]]) -> ScenarioText:
        """The source's text with ``edits`` applied (the page's JSON edits, validated here)."""
        try:
            if isinstance(source.get("file"), str):
                path = self._readable(source["file"])
                text = ScenarioText.read(path)
                text.file = self._rel(path)
            elif isinstance(source.get("text"), str):
                text = ScenarioText(source["text"], str(source.get("name") or "new scenario.yaml"),
                                    self.root)
            else:
                raise StudioError("no scenario: open a library file or make one with the form")
            if edits:  # the round-trip document is loaded only when there is something to edit
                text.apply(self._edit(e) for e in edits)
            return text
        except BwcError as exc:
            raise StudioError.from_bwc(exc) from None

    @staticmethod
    def _edit(raw: dict[str, Any]) -> Edit:
        op = raw.get("op")
        if op not in ("set", "unset", "add"):
            raise StudioError(f"unknown edit {op!r} (set, unset or add)")
        path = parse_field(str(raw.get("field", "")))
        value = raw.get("value")
        if op == "add" and isinstance(value, dict):
            value = {k: _num(v) for k, v in value.items() if v not in (None, "")}
        elif op == "set":
            value = _num(value)
        return Edit(op, path, value)

    # ------------------------------------------------------------------ runs

    def run_text(self, text: ScenarioText) -> Run:
        try:
            edited = text.text()
        except BwcError as exc:
            raise StudioError.from_bwc(exc) from None
        key = hashlib.sha256(f"{text.base_dir}\0{text.file}\0{edited}".encode()).hexdigest()[:16]
        cached = self._runs.get(key)
        if cached is not None:
            self._runs.move_to_end(key)
            return cached
        try:
            scenario = text.scenario()
        except BwcError as exc:
            raise StudioError.from_bwc(exc) from None
        records: list[dict[str, Any]] = []
        result = replay(scenario, self.factory, records.append)
        report = build_report(result)
        view = run_view(result, report, records)
        run = Run(key, scenario, report, view, Playback(result, view, records))
        self._runs[key] = run
        while len(self._runs) > CACHE_SIZE:
            self._runs.popitem(last=False)
        return run

    def get_run(self, run_id: str) -> Run:
        run = self._runs.get(run_id)
        if run is None:
            raise StudioError("this run is no longer held: replay it", "run", status=404)
        return run

    def open(self, source: dict[str, Any], edits: list[dict[str, Any]]) -> dict[str, Any]:
        """The edited scenario as data for the editor, its run, and the comparison with the
        source as it stands (the original)."""
        text = self.text_of(source, edits)
        original = self.run_text(self.text_of(source, [])) if edits else None
        run = self.run_text(text)
        policy = text.data().get("policy", "dhs-2023")
        return {
            "ok": True,
            "source": source,
            "file": text.file,
            "data": text.data(),
            "text": text.text(),
            "vocabulary": self.inline_vocabulary(policy) if isinstance(policy, dict)
            else self.vocabulary(str(policy) if str(policy) in BUILTIN
                                 else str(Path(text.base_dir, str(policy)))),
            "policies": self.policies(text.base_dir),
            "events": {name: list(fields) for name, fields in EVENT_FIELDS.items()},
            "run": run.summary(),
            "original": None if original is None else original.summary(),
            "compare": compare((original or run).report, run.report),
        }

    def cursor(self, run_id: str, t: float) -> dict[str, Any]:
        run = self.get_run(run_id)
        out = run.playback.at(t)
        out["previous"] = run.playback.previous_event(out["t"])
        out["next"] = run.playback.next_event(out["t"])
        return out

    # ------------------------------------------------------------------ writing

    def writable(self, target: str) -> Path:
        """``target`` as a path inside the root, or a :class:`StudioError` saying why not."""
        if not target or Path(target).is_absolute() or target.startswith("~"):
            raise StudioError("give a file name inside the studio's folder, e.g. "
                              "scenarios/my_what_if.yaml", "target")
        path = (self.root / target).resolve()
        if not path.is_relative_to(self.root):
            raise StudioError(f"{target}: outside the folder the studio was started in "
                              f"({self.root})", "target")
        if path.suffix not in _SUFFIXES:
            raise StudioError(f"{target}: a scenario file name ends in .yaml", "target")
        if not path.parent.is_dir():
            raise StudioError(f"{target}: no folder {self._rel(path.parent)}", "target")
        return path

    def save(self, source: dict[str, Any], edits: list[dict[str, Any]], target: str,
             overwrite: bool = False, pin_expect: bool = False) -> dict[str, Any]:
        """Write the edited scenario to ``target`` (see module docs); returns where and its verdict."""
        path = self.writable(target)
        if path.exists() and not overwrite:
            raise StudioError(f"{target} exists: tick 'replace' to overwrite it", "target")
        text = self.text_of(source, edits)
        run = self.run_text(text)
        if pin_expect:
            text.apply([Edit("set", ("expect",), _expect_of(run.report))])
            run = self.run_text(text)
        body = text.text()
        # The saved file must replay as shown: load it as `bwcsim run` will, from its new place.
        try:
            from sim.world.scenario import parse_scenario

            parse_scenario(body, str(path), path.parent)
        except BwcError as exc:
            raise StudioError(f"{exc.message if isinstance(exc, ScenarioError) else exc} "
                              "(from the folder it would be saved in: a policy path is relative "
                              "to the scenario file)", "target") from None
        try:
            path.write_text(body, encoding="utf-8")
        except OSError as exc:
            raise StudioError(f"{target}: cannot write ({exc.strerror})", "target") from None
        return {"ok": True, "saved": self._rel(path), "verdict": run.report["verdict"],
                "missed_s": run.report["missed_s"]}

    # ------------------------------------------------------------------ the form

    def create(self, form: dict[str, Any]) -> dict[str, Any]:
        """A new scenario from the form's fields; the text is YAML in the library's style."""
        text = form_to_yaml(form)
        return self.open({"text": text, "name": "new scenario.yaml"}, [])


def _expect_of(report: dict[str, Any]) -> dict[str, Any]:
    missed = report["missed_s"]
    return {
        "verdict": report["verdict"],
        "missed_s": {k: v for k, v in missed.items() if k == "total" or v > 0},
        "recordings": {cam: len(c["recordings"]) for cam, c in report["cameras"].items()},
    }


def _yaml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    text = str(value)
    import json

    return json.dumps(text) if (not text or any(c in text for c in ":#{}[],&*!|>'\"%@`")
                                or text.strip() != text or text.lower() in (
                                    "true", "false", "null", "yes", "no", "on", "off")) else text


def _flow(entry: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {_yaml_scalar(_num(v))}" for k, v in entry.items()
                           if v not in (None, "")) + "}"


def form_to_yaml(form: dict[str, Any]) -> str:
    """The form's scenario as YAML text (validated afterwards by the ordinary loader)."""
    name = str(form.get("name") or "").strip()
    if not name:
        raise StudioError("give the scenario a name", "name")
    cameras = form.get("cameras") or []
    if not isinstance(cameras, list) or not cameras:
        raise StudioError("add at least one camera", "cameras")
    lines = ["version: 1", f"name: {_yaml_scalar(name)}"]
    desc = str(form.get("description") or "").strip()
    if desc:
        lines += ["description: >", *(f"  {line}" for line in desc.splitlines())]
    lines.append(f"policy: {_yaml_scalar(form.get('policy') or 'dhs-2023')}")
    lines.append(f"end: {_yaml_scalar(_num(form.get('end') or '01:00:00'))}")
    lines.append("cameras:")
    for i, cam in enumerate(cameras):
        if not isinstance(cam, dict):
            raise StudioError("a camera is a set of fields", f"cameras[{i}]")
        lines.append(f"  - {_flow(cam)}")
    timeline = form.get("timeline") or []
    if timeline:
        lines.append("timeline:")
        for entry in timeline:
            lines.append(f"  - {_flow(entry) if isinstance(entry, dict) else '{}'}")
    return "\n".join(lines) + "\n"
