"""YAML documents that remember where each value came from.

Scenario and policy files are validated by msgspec, whose errors name a path such as
``$.timeline[3].at``. To turn that into ``file:line: timeline[3].at: ...`` we compose the YAML
ourselves, keep the line of every mapping key and sequence item, and look the path up.

Two rules make hand-written files fail loudly instead of meaning something else:

* A plain scalar written like a clock (``00:20``, ``10:00:00``) stays the text it is. YAML 1.1
  would read it as a base-60 integer, so an unquoted ``00:20`` became 20 seconds without a
  word; as text, the scenario loader reads the three-part form and refuses the ambiguous one.
* A syntax error — almost always indentation in a hand-written file — names the field it
  happened in (the nearest key and list item above the line, read from the indentation) and
  says how to fix it.
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
    if (isinstance(node, yaml.ScalarNode) and not node.style and ":" in node.value
            and node.tag in _BASE60_TAGS):
        return node.value
    return loader.construct_object(node, deep=True)


_BASE60_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})


def _field_at_line(text: str, line: int) -> str | None:
    """Best-effort field path of block-style YAML at 1-based ``line``: ``timeline[1]``.

    Used only to name where a syntax error happened, when the document has no tree to look
    the line up in: the last top-level key at or above the line, and which of its list items
    the line starts or falls in.
    """
    lines = text.splitlines()[:line]
    if not lines:
        return None

    def meaningful(s: str) -> bool:
        return bool(s.strip()) and not s.lstrip().startswith("#")

    top_i = next((i for i in range(len(lines) - 1, -1, -1)
                  if meaningful(lines[i]) and not lines[i][0].isspace()
                  and not lines[i].startswith("-") and ":" in lines[i]), None)
    if top_i is None:
        return None
    key = lines[top_i].split(":", 1)[0].strip().strip("'\"")
    if top_i == len(lines) - 1:
        return key
    body = [s for s in lines[top_i + 1:] if meaningful(s)]
    items = [s for s in body[:-1] if s.lstrip().startswith("- ") or s.strip() == "-"]
    starts_item = body[-1].lstrip().startswith("-")
    if not items:
        return f"{key}[0]" if starts_item else key
    item_indent = len(items[0]) - len(items[0].lstrip())
    count = sum(1 for s in items if len(s) - len(s.lstrip()) == item_indent)
    index = count if starts_item else count - 1
    return f"{key}[{max(index, 0)}]"


def _syntax_fix(problem: str, source_line: str) -> str:
    """How to fix a YAML syntax error, in the words of someone who writes scenarios."""
    if "\t" in source_line[: len(source_line) - len(source_line.lstrip())] or (
            "cannot start any token" in problem and "\t" in source_line):
        return "indent with spaces, not tabs"
    if "expected ',' or" in problem or "end of stream" in problem:
        return "close every { and [ you opened, and quote text that holds ':' or '#'"
    if any(p in problem for p in ("mapping values are not allowed", "did not find expected",
                                  "expected <block end>", "could not find expected ':'")):
        return ("check the indentation: the keys of one entry line up under each other, and "
                "every list item starts with '- ' in the same column as the others")
    return "check the indentation and quoting of this line and the one above it"


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
        problem = str(exc.problem or exc)
        # An unclosed { or [ is found only where the file ends: point at where it opened.
        flow = exc.context is not None and "flow" in exc.context
        mark = (exc.context_mark if flow else None) or exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        source = text.splitlines()[line - 1] if line and line <= len(text.splitlines()) else ""
        field = _field_at_line(text, line) if line else None
        raise ScenarioError(
            f"YAML syntax: {problem}: {_syntax_fix(problem, source)}", file, line, field
        ) from None
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
