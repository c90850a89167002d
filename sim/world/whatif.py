"""What if: edits to a scenario's text, for ``run --set`` and the studio.

Theory of operation
-------------------
A trainer asks "what if the trigger had come 30 s later?" by changing one value of a scenario
and replaying it. The answer must be the one ``bwcsim run`` gives on the file the trainer then
saves, so there is exactly one path from an edit to a replay: the edit is applied to the YAML
*document* (a round-trip tree from ``ruamel.yaml`` that keeps comments, key order, flow style
and quoting), the document is written back to text, and that text goes through the ordinary
loader (:func:`~sim.world.scenario.parse_scenario`) with all its checks. What is replayed is
byte for byte what would be saved. A scenario with no edit is its original text unchanged.

An edit names a field the way error messages do — ``timeline[3].delay_s``, ``cameras[0].prebuffer_s``,
``policy`` — and is one of:

* ``set``: give the field a value (creating the key in its mapping if needed);
* ``unset``: remove a key, or a list item (later items move up: ``timeline[4]`` becomes
  ``timeline[3]``, and with it the default message id ``m-<index>``);
* ``add``: append an item to a list (a timeline entry, a camera);

On the command line, ``--set 'timeline[3].delay_s=15'`` is a ``set`` whose value is read as YAML
(``15``, ``true``, ``"00:10:00"``, ``{at: 10, camera: cam-1, event: dock}``); the value ``null``
unsets. A time is written back quoted, so every YAML reader takes it as the text it is.

An edit that does not fit the document (no ``timeline[9]`` in a four-entry timeline, a key
inside a number) raises :class:`~controller.errors.InvalidInput` naming the field; a value
that fits the document but not the format (a negative delay) is the loader's to reject, with
file, line and field as always.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from controller.errors import InvalidInput, ScenarioError
from controller.yamlsrc import Path as DocPath
from controller.yamlsrc import format_path

from .scenario import Scenario, parse_scenario

__all__ = ["Edit", "ScenarioText", "parse_assignment", "parse_field"]

EditOp = Literal["set", "unset", "add"]

_FIELD_RE = re.compile(r"^[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\])*$")
_SEG_RE = re.compile(r"([A-Za-z_][\w-]*)|\[(\d+)\]")
_CLOCK_RE = re.compile(r"^\d+:\d+(:\d+(\.\d*)?)?$")


@dataclass(frozen=True, slots=True)
class Edit:
    """One change to a scenario document, at ``path`` (see the module docs)."""

    op: EditOp
    path: DocPath
    value: Any = None

    @property
    def field(self) -> str:
        return format_path(self.path)


def parse_field(text: str) -> DocPath:
    """``"timeline[3].delay_s"`` → ``("timeline", 3, "delay_s")``."""
    text = text.strip()
    if not _FIELD_RE.match(text):
        raise InvalidInput(
            f"{text!r} is not a field (write it as in error messages: timeline[3].delay_s, "
            "cameras[0].prebuffer_s, policy)"
        )
    return tuple(m.group(1) if m.group(1) is not None else int(m.group(2))
                 for m in _SEG_RE.finditer(text))


def _yaml() -> YAML:
    y = YAML()  # round-trip
    y.preserve_quotes = True
    y.width = 4096  # never fold a long line the author wrote on one line
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def parse_assignment(text: str) -> Edit:
    """``"timeline[3].delay_s=15"`` → a ``set`` edit (``null`` as the value unsets)."""
    field, sep, raw = text.partition("=")
    if not sep:
        raise InvalidInput(f"{text!r}: expected FIELD=VALUE, e.g. 'timeline[3].delay_s=15'")
    path = parse_field(field)
    try:
        value = YAML(typ="safe", pure=True).load(raw) if raw.strip() else ""
    except YAMLError as exc:
        raise InvalidInput(f"the value {raw!r} is not YAML ({exc})", format_path(path)) from None
    return Edit("unset", path) if value is None else Edit("set", path, value)


def _to_doc(value: Any) -> Any:
    """A plain value as a round-trip node: new mappings in flow style like the library's
    entries, times quoted, whole-number floats as integers."""
    if isinstance(value, dict):
        node = CommentedMap()
        for k, v in value.items():
            node[k] = _to_doc(v)
        node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        seq = CommentedSeq(_to_doc(v) for v in value)
        seq.fa.set_flow_style()
        return seq
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    if isinstance(value, str) and _CLOCK_RE.match(value):
        return DoubleQuotedScalarString(value)
    return value


def _plain(node: Any) -> Any:
    """A round-trip node as plain JSON-ready data (str/int/float/bool/None, dict, list)."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


class ScenarioText:
    """A scenario file's text with edits applied through its YAML document (see module docs)."""

    def __init__(self, text: str, file: str, base_dir: Path | None = None) -> None:
        self.original = text
        self.file = file
        self.base_dir = base_dir if base_dir is not None else Path(file).parent
        self.edits: list[Edit] = []
        self._doc: Any = None
        self._text: str | None = None  # the dumped document, until the next edit

    @classmethod
    def read(cls, path: Path) -> ScenarioText:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ScenarioError(f"cannot read the scenario ({exc.strerror})", str(path)) from None
        except UnicodeDecodeError as exc:
            raise ScenarioError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
        return cls(text, str(path), path.parent)

    # -------------------------------------------------------------- the document

    @property
    def doc(self) -> Any:
        if self._doc is None:
            # The ordinary loader first: a file it rejects is reported in its words (file,
            # line, field), before ruamel's own view of the same mistake.
            parse_scenario(self.original, self.file, self.base_dir)
            try:
                self._doc = _yaml().load(self.original)
            except YAMLError as exc:  # pragma: no cover - the loader above rejects it first
                raise ScenarioError(f"YAML syntax: {exc}", self.file) from None
        return self._doc

    def data(self) -> Any:
        """The current document as plain data (for the studio's editor)."""
        return _plain(self.doc)

    def apply(self, edits: Iterable[Edit]) -> None:
        """Apply each edit in order; raises :class:`InvalidInput` naming the field."""
        for edit in edits:
            self._text = None
            self._apply(edit)
            self.edits.append(edit)

    def _apply(self, edit: Edit) -> None:
        if not edit.path:
            raise InvalidInput("an edit needs a field", "")
        parent: Any = self.doc
        walked: list[str | int] = []
        for seg in edit.path[:-1]:
            parent = self._step(parent, seg, walked)
            walked.append(seg)
        last = edit.path[-1]
        where = format_path(edit.path)
        if edit.op == "add":
            target = self._step(parent, last, walked)
            if not isinstance(target, list):
                raise InvalidInput("is not a list: nothing can be added to it", where)
            target.append(_to_doc(edit.value))
            return
        if isinstance(parent, dict):
            if not isinstance(last, str):
                raise InvalidInput(f"{format_path(tuple(walked)) or 'the scenario'} is a mapping: "
                                   "name a key, not an index", where)
            if edit.op == "set":
                parent[last] = _to_doc(edit.value)
            elif last in parent:
                del parent[last]
            return
        if isinstance(parent, list):
            if not isinstance(last, int):
                raise InvalidInput(f"{format_path(tuple(walked))} is a list: name an item as "
                                   f"{format_path(tuple(walked))}[0]", where)
            if not 0 <= last < len(parent):
                raise InvalidInput(self._range(tuple(walked), len(parent)), where)
            if edit.op == "set":
                parent[last] = _to_doc(edit.value)
            else:
                del parent[last]
            return
        raise InvalidInput(f"{format_path(tuple(walked))} holds a single value, not fields", where)

    @staticmethod
    def _range(path: DocPath, n: int) -> str:
        name = format_path(path)
        if n == 0:
            return f"{name} is empty"
        return f"{name} has {n} item(s): {name}[0] to {name}[{n - 1}]"

    def _step(self, node: Any, seg: str | int, walked: list[str | int]) -> Any:
        here = format_path((*walked, seg))
        if isinstance(node, dict):
            if not isinstance(seg, str):
                raise InvalidInput("is a mapping: name a key, not an index",
                                   format_path(tuple(walked)) or here)
            if seg not in node or node[seg] is None:
                # A missing block (no timeline: yet) is created when something goes in it.
                node[seg] = CommentedSeq() if seg in ("timeline", "cameras", "requirements") \
                    else CommentedMap()
            return node[seg]
        if isinstance(node, list):
            if not isinstance(seg, int):
                raise InvalidInput(f"is a list: name an item as {format_path(tuple(walked))}[0]",
                                   here)
            if not 0 <= seg < len(node):
                raise InvalidInput(self._range(tuple(walked), len(node)), here)
            return node[seg]
        raise InvalidInput("holds a single value, not fields", format_path(tuple(walked)))

    # -------------------------------------------------------------- text and scenario

    def text(self) -> str:
        """The edited file: the original text when nothing was edited."""
        if not self.edits:
            return self.original
        if self._text is None:  # dumping is the slow half of an edit: do it once
            out = io.StringIO()
            _yaml().dump(self.doc, out)
            self._text = out.getvalue()
        return self._text

    def scenario(self) -> Scenario:
        """The edited text through the ordinary loader (errors name file, line and field)."""
        return parse_scenario(self.text(), self.file, self.base_dir)
