"""YAML documents that remember where each value came from.

Scenario and policy files are validated by msgspec, whose errors name a path such as
``$.timeline[3].at``. To turn that into ``file:line: timeline[3].at: ...`` we compose the YAML
ourselves, keep the line of every mapping key and sequence item, and look the path up.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
import yaml

from .errors import ScenarioError

T = TypeVar("T")
Path = tuple[str | int, ...]

_PATH_RE = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_SEG_RE = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[\"?([^\]\"]*)\"?\]")


class SourceDoc:
    """A parsed YAML document plus the line (1-based) of every path in it."""

    def __init__(self, data: Any, lines: dict[Path, int], file: str) -> None:
        self.data = data
        self.lines = lines
        self.file = file

    def line_of(self, path: Path) -> int | None:
        """Line of ``path`` or of its nearest ancestor that has one."""
        for n in range(len(path), -1, -1):
            line = self.lines.get(path[:n])
            if line is not None:
                return line
        return None

    def error(self, message: str, path: Path = ()) -> ScenarioError:
        return ScenarioError(message, self.file, self.line_of(path), format_path(path) or None)


def format_path(path: Path) -> str:
    out = ""
    for seg in path:
        out += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if out else seg)
    return out


def parse_path(text: str) -> Path:
    """``.timeline[3].at`` → ``("timeline", 3, "at")``."""
    out: list[str | int] = []
    for m in _SEG_RE.finditer(text):
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:
            out.append(int(m.group(2)))
        else:
            out.append(m.group(3))
    return tuple(out)


def _build(node: yaml.Node, path: Path, lines: dict[Path, int], loader: yaml.SafeLoader) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise ScenarioError(
                    "mapping keys must be scalars", "", key_node.start_mark.line + 1
                )
            if key in result:
                raise ScenarioError(
                    f"duplicate key {key!r}", "", key_node.start_mark.line + 1,
                    format_path((*path, str(key))),
                )
            sub = (*path, key if isinstance(key, (str, int)) else str(key))
            lines[sub] = key_node.start_mark.line + 1
            result[key] = _build(value_node, sub, lines, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            sub = (*path, i)
            lines[sub] = item.start_mark.line + 1
            items.append(_build(item, sub, lines, loader))
        return items
    return loader.construct_object(node, deep=True)


# libyaml's composer keeps the same line marks and is ten times faster than the pure-Python one
# (loading dominated replay time for long scenario files); fall back when it is not built.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str, file: str) -> SourceDoc:
    """Parse one YAML document, raising :class:`ScenarioError` with the line on syntax errors."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError("the file is empty", file, 1)
        lines: dict[Path, int] = {}
        try:
            data = _build(node, (), lines, loader)
        except ScenarioError as exc:
            raise ScenarioError(exc.message, file, exc.line, exc.field) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ScenarioError(f"YAML syntax: {exc.problem or exc}", file, line) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"YAML syntax: {exc}", file, None) from None
    finally:
        loader.dispose()
    return SourceDoc(data, lines, file)


def convert(doc: SourceDoc, data: Any, typ: type[T], base: Path = ()) -> T:
    """``msgspec.convert`` whose errors name the file, line and field."""
    try:
        return msgspec.convert(data, typ, strict=False)
    except msgspec.ValidationError as exc:
        m = _PATH_RE.match(str(exc))
        msg = m.group("msg") if m else str(exc)
        path = (*base, *parse_path(m.group("path") or "")) if m and m.group("path") else base
        unknown = _UNKNOWN_RE.match(msg)
        if unknown:  # name the key itself, on its own line, in the project's words
            key = unknown.group(1)
            allowed = _fields_at(typ, path[len(base):])
            hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
            raise doc.error(f"unknown key {key!r}{hint}", (*path, key)) from None
        raise doc.error(msg, path) from None


_UNKNOWN_RE = re.compile(r"^Object contains unknown field `([^`]*)`$")


def _fields_at(typ: Any, path: Path) -> tuple[str, ...]:
    """The field names of the struct type found at ``path`` inside ``typ`` (best effort)."""
    import typing

    current: Any = typ
    for seg in path:
        hints = typing.get_type_hints(current) if isinstance(current, type) else {}
        if isinstance(seg, str) and seg in hints:
            current = hints[seg]
        else:  # a dict value or a list item: step into the value type
            args = typing.get_args(current)
            current = args[-1] if args else None
        if current is None:
            return ()
    fields = getattr(current, "__struct_fields__", None)
    return tuple(fields) if fields else ()
