"""Requirement traceability: which tests and scenarios cover which SPEC requirement.

Theory of operation
-------------------
The matrix is built *statically*, without importing or collecting a single test, so it works on
a tree whose tests cannot currently run (a missing dependency, a broken controller) — which is
exactly when one wants to know what is covered.

Tests name their requirements with ``@pytest.mark.req("ID", ...)``. The scanner reads every
``test_*.py`` / ``*_test.py`` under the tests directory with :mod:`ast` and takes marks from:

* decorators of ``test*`` functions (sync or async) and of ``Test*`` classes — a class mark
  covers each of its test methods, as it does at run time. Any ``....mark.req(...)`` call nested
  inside a decorator also counts (``pytest.param(..., marks=pytest.mark.req("X"))``);
* ``pytestmark = pytest.mark.req(...)`` or a list/tuple of marks, at module level (covering every
  test of the module) or in a class body (covering the class's tests);
* module-level ``TestX = <expression>`` assignments (hypothesis stateful ``Machine.TestCase``
  objects): marks inside the expression, plus ``TestX.pytestmark = ...`` assignments;
* module-level aliases, ``WARRANT = pytest.mark.req("R-TRIG")`` then ``@WARRANT``;
* test functions a module imports (``from pkg.suite import test_x`` or ``import *``), which
  pytest collects as that module's tests: their marks are read from the module that defines
  them, found on disk (the repository first, then where Python would import it from) without
  importing it. This is how a repository that runs bwcsim's packaged property suites
  (``sim/pytest_plugin/suites/``) through a test module of its own gets credit for them.

Only string literals count as IDs. Scenario files name what they exercise with a top-level
``requirements: [ID, ...]`` key; files that do not parse as YAML mappings are skipped (the
scenario checker, not this scanner, reports them).

A SPEC requirement is *missing* when no test names it; scenarios alone do not count, because a
scenario proves nothing until a test or ``bwcsim check`` runs it and the requirement's intent is
that each ID has a test. IDs found that are not in the SPEC (infrastructure IDs such as
``BUS-LIVE``) are listed after the SPEC ones.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

#: Every requirement ID of SPEC §4 (controller), §11 (property suites), §14 (the live camera on a
#: shared bus: trust, isolation, durability, bounds, audit file) and §15 (controllers in any
#: language), in SPEC order, with a short title for the rendered tables.
SPEC_REQUIREMENTS: dict[str, str] = {
    "R-TRIG": "required activity starts recording",
    "R-BUF": "pre-event buffer prepended",
    "R-LATE": "late trigger alerted",
    "R-NOSPLIT": "recordings never split",
    "R-STOP": "manual stop refused while required",
    "R-MISS": "missed recording alerted",
    "R-DOCK": "dock closes recording, undock boots",
    "R-POWER": "battery drain and alerts",
    "R-STORE": "storage full, upload oldest-first",
    "R-ROLL": "segment rollover without gap",
    "R-SIG": "device signals start recording",
    "R-IDEM": "duplicate ids have no effect",
    "R-BAD": "malformed input refused",
    "R-AUDIT": "hash-chained audit log",
    "R-META": "recording metadata",
    "P-NOMISS": "property: no controller misses",
    "P-NOSPLIT": "property: no gap while required",
    "P-NOPHANTOM": "property: no footage that cannot exist",
    "P-PRIVACY": "property: nothing recorded that policy prohibits",
    "P-TAIL": "property: no recording outlasts its holds",
    "P-BAD": "property: garbage never changes state",
    "P-IDEM": "property: replay changes nothing",
    "P-DET": "property: byte-identical traces",
    "P-AUDIT": "property: audit chain verifies",
    "P-AUTH": "property: forged, replayed, re-sequenced, skewed commands change nothing",
    "P-REPLY": "property: replies judged (ids, redeliveries, mandated refusals)",
    "P-EVIDENCE": "property: recording metadata and alerts true to the facts",
    "P-RESOURCE": "property: battery and storage self-reports follow the model",
    "R-AUTH": "commands only from entitled, signed principals",
    "R-FRESH": "replayed, re-sequenced and stale commands refused",
    "R-ISOLATE": "retained commands, foreign status, refusals reported",
    "R-NODROP": "evidence never dropped",
    "R-DURABLE": "state survives a restart",
    "R-BOUND": "bounded resources, O(log n) per event",
    "R-AUDITFILE": "audit file, head published, verify",
    "R-NODE": "node protocol: controllers in any language",
    "R-HIL": "live: devices judged like a replay",
    "R-CLOCK": "live: scaled clock and its mapping",
    "R-JITTER": "live: explicit timing tolerance",
}

SCENARIO_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Coverage:
    """One requirement and everything that names it."""

    requirement: str
    in_spec: bool
    tests: tuple[str, ...]
    scenarios: tuple[str, ...]

    @property
    def title(self) -> str:
        return SPEC_REQUIREMENTS.get(self.requirement, "")


@dataclass(frozen=True)
class Matrix:
    """The traceability matrix: SPEC requirements in SPEC order, then extra IDs sorted."""

    rows: tuple[Coverage, ...]

    def row(self, requirement: str) -> Coverage:
        """The row for ``requirement`` (``KeyError`` if no such row)."""
        for coverage in self.rows:
            if coverage.requirement == requirement:
                return coverage
        raise KeyError(requirement)


# --- scanning tests ----------------------------------------------------------------------------


def _is_req_call(node: ast.AST) -> bool:
    """``<anything>.mark.req(...)`` or ``mark.req(...)``."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    if node.func.attr != "req":
        return False
    owner = node.func.value
    return (isinstance(owner, ast.Attribute) and owner.attr == "mark") or (
        isinstance(owner, ast.Name) and owner.id == "mark"
    )


def _assigned_value(statement: ast.stmt, name: str) -> ast.expr | None:
    """The value of ``name = ...`` / ``name: T = ...`` if ``statement`` is that assignment."""
    if isinstance(statement, ast.Assign) and any(
        isinstance(target, ast.Name) and target.id == name for target in statement.targets
    ):
        return statement.value
    if (
        isinstance(statement, ast.AnnAssign)
        and isinstance(statement.target, ast.Name)
        and statement.target.id == name
    ):
        return statement.value
    return None


class _ModuleScan:
    """Requirement IDs of one module's tests; knows the module's mark aliases.

    An alias is a module-level ``NAME = <expression with req marks>`` (``WARRANT =
    pytest.mark.req("R-TRIG")``); a bare ``NAME`` used in a decorator or ``pytestmark`` then
    stands for those IDs.
    """

    def __init__(
        self, tree: ast.Module, test_path: str, search: Sequence[Path] = (), follow: bool = True
    ) -> None:
        self.test_path = test_path
        self.search = search
        self.follow = follow
        self.aliases: dict[str, list[str]] = {}
        for statement in tree.body:
            if isinstance(statement, ast.Assign):
                ids = self.req_ids(statement.value)
                for target in statement.targets:
                    if isinstance(target, ast.Name) and ids:
                        self.aliases[target.id] = ids
        self.module_marks = self.body_pytestmark(tree.body)
        self.found: dict[str, list[str]] = {}
        for statement in tree.body:
            self._scan_module_statement(statement)

    def req_ids(self, node: ast.AST | None) -> list[str]:
        """Every string-literal ID of every ``req`` mark (or alias of one) inside ``node``."""
        if node is None:
            return []
        ids: list[str] = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and _is_req_call(sub):
                ids.extend(
                    arg.value
                    for arg in sub.args
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value
                )
            elif isinstance(sub, ast.Name) and sub.id in self.aliases:
                ids.extend(self.aliases[sub.id])
        return ids

    def body_pytestmark(self, body: Iterable[ast.stmt]) -> list[str]:
        values = [_assigned_value(statement, "pytestmark") for statement in body]
        return [req for value in values for req in self.req_ids(value)]

    def decorator_ids(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    ) -> list[str]:
        return [req for decorator in node.decorator_list for req in self.req_ids(decorator)]

    def _scan_class(self, node: ast.ClassDef, prefix: str, inherited: list[str]) -> None:
        marks = inherited + self.decorator_ids(node) + self.body_pytestmark(node.body)
        name = f"{prefix}::{node.name}"
        for child in node.body:
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                if child.name.startswith("test"):
                    self.found[f"{name}::{child.name}"] = marks + self.decorator_ids(child)
            elif isinstance(child, ast.ClassDef) and child.name.startswith("Test"):
                self._scan_class(child, name, marks)

    def _scan_import(self, statement: ast.ImportFrom) -> None:
        """Tests imported from another module are this module's tests, with their own marks."""
        wanted = {alias.name: alias.asname or alias.name for alias in statement.names
                  if alias.name == "*" or alias.name.startswith("test")}
        if not wanted or statement.level or not statement.module or not self.follow:
            return
        source_file = module_file(statement.module, self.search)
        if source_file is None:
            return
        try:
            tree = ast.parse(source_file.read_text(encoding="utf-8"), filename=str(source_file))
        except (SyntaxError, UnicodeDecodeError, OSError):
            return
        # One level only: a suite module that re-exports another is not followed again.
        theirs = _ModuleScan(tree, "", follow=False).found
        for their_id, ids in theirs.items():
            name = their_id.removeprefix("::").split("::")[0]
            if "*" in wanted or name in wanted:
                local = wanted.get(name, name)
                rest = their_id.removeprefix("::").removeprefix(name)
                self.found[f"{self.test_path}::{local}{rest}"] = self.module_marks + ids

    def _scan_module_statement(self, statement: ast.stmt) -> None:
        if isinstance(statement, ast.ImportFrom):
            self._scan_import(statement)
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            if statement.name.startswith("test"):
                test_id = f"{self.test_path}::{statement.name}"
                self.found[test_id] = self.module_marks + self.decorator_ids(statement)
        elif isinstance(statement, ast.ClassDef):
            if statement.name.startswith("Test"):
                self._scan_class(statement, self.test_path, self.module_marks)
        elif isinstance(statement, ast.Assign):
            for target in statement.targets:
                if isinstance(target, ast.Name) and target.id.startswith("Test"):
                    # TestX = SomeMachine.TestCase, possibly wrapped in a req mark.
                    test_id = f"{self.test_path}::{target.id}"
                    self.found[test_id] = self.module_marks + self.req_ids(statement.value)
                elif (
                    isinstance(target, ast.Attribute)
                    and target.attr == "pytestmark"
                    and isinstance(target.value, ast.Name)
                ):
                    # TestX.pytestmark = [...] after the assignment above.
                    test_id = f"{self.test_path}::{target.value.id}"
                    self.found.setdefault(test_id, list(self.module_marks)).extend(
                        self.req_ids(statement.value)
                    )


def scan_test_module(
    source: str, test_path: str, search: Sequence[Path] = ()
) -> list[tuple[str, list[str]]]:
    """``(test id, requirement IDs)`` for every test in one module's source.

    ``test_path`` is the prefix of the ids (``tests/test_x.py``). A test with no mark appears with
    an empty list. ``search`` lists folders to look in first for modules the source imports
    tests from (see :func:`module_file`). Raises :class:`SyntaxError` for unparsable source.
    """
    scan = _ModuleScan(ast.parse(source, filename=test_path), test_path, search)
    return [(test_id, _unique(ids)) for test_id, ids in scan.found.items()]


def module_file(name: str, search: Sequence[Path] = ()) -> Path | None:
    """The source file of module ``name`` (``a.b.c``), found without importing it.

    Looked for under each folder of ``search`` first, then where Python would find the
    top-level package (:func:`importlib.util.find_spec` on a top-level name runs no code).
    """
    top, _, rest = name.partition(".")
    parts = rest.split(".") if rest else []
    bases = [folder / top for folder in search]
    if not any((b.with_suffix(".py") if not parts else b).exists() for b in bases):
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            bases += [Path(loc) for loc in spec.submodule_search_locations]
        elif spec is not None and spec.origin and not parts:
            return Path(spec.origin)
    for base in bases:
        if not parts and base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        target = base.joinpath(*parts)
        for candidate in (target.with_suffix(".py"), target / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _test_files(tests_dir: Path) -> list[Path]:
    if not tests_dir.is_dir():
        return []
    files = {
        path
        for pattern in ("test_*.py", "*_test.py")
        for path in tests_dir.rglob(pattern)
        if path.is_file()
    }
    return sorted(files)


def _display_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with forward slashes (``../shared/...`` when outside)."""
    try:
        relative = os.path.relpath(path.resolve(), root.resolve())
    except ValueError:  # another drive on Windows
        relative = str(path)
    return Path(relative).as_posix()


# --- scanning scenarios ----------------------------------------------------------------------


def scenario_requirements(text: str) -> list[str]:
    """The IDs in a scenario's top-level ``requirements`` key (a list, or one string).

    Returns ``[]`` when the text is not a YAML mapping or has no such key.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    if not isinstance(data, dict):
        return []
    declared = data.get("requirements")
    if isinstance(declared, str):
        declared = [declared]
    if not isinstance(declared, list):
        return []
    return _unique(item for item in declared if isinstance(item, str) and item)


def _scenario_files(scenarios_dir: Path) -> list[Path]:
    if scenarios_dir.is_file():
        return [scenarios_dir]
    if not scenarios_dir.is_dir():
        return []
    return sorted(
        path
        for path in scenarios_dir.rglob("*")
        if path.is_file() and path.suffix in SCENARIO_SUFFIXES
    )


# --- the matrix ----------------------------------------------------------------------------


def build_matrix(
    tests_dir: Path, scenarios_dirs: list[Path], *, root: Path | None = None
) -> Matrix:
    """Scan tests and scenario files and map each requirement ID to what covers it.

    Paths in the matrix are relative to ``root`` (default: the parent of ``tests_dir``, i.e.
    the repository). Test modules that do not parse are skipped, as are unreadable files;
    missing scenario directories are treated as empty.
    """
    base = root if root is not None else tests_dir.resolve().parent
    tests_by_req: dict[str, list[str]] = {}
    for test_file in _test_files(tests_dir):
        display = _display_path(test_file, base)
        try:
            entries = scan_test_module(test_file.read_text(encoding="utf-8"), display,
                                       search=(base, tests_dir))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue  # pytest reports a broken module far better than a table could
        for test_id, ids in entries:
            for req in ids:
                tests_by_req.setdefault(req, []).append(test_id)

    scenarios_by_req: dict[str, list[str]] = {}
    for scenarios_dir in scenarios_dirs:
        for scenario_file in _scenario_files(scenarios_dir):
            try:
                text = scenario_file.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for req in scenario_requirements(text):
                scenarios_by_req.setdefault(req, []).append(_display_path(scenario_file, base))

    extra = sorted((set(tests_by_req) | set(scenarios_by_req)) - set(SPEC_REQUIREMENTS))
    rows = tuple(
        Coverage(
            requirement=req,
            in_spec=req in SPEC_REQUIREMENTS,
            tests=tuple(_unique(tests_by_req.get(req, []))),
            scenarios=tuple(_unique(scenarios_by_req.get(req, []))),
        )
        for req in [*SPEC_REQUIREMENTS, *extra]
    )
    return Matrix(rows)


def missing(matrix: Matrix) -> list[str]:
    """SPEC requirement IDs that no test names (scenario coverage alone does not count)."""
    return [row.requirement for row in matrix.rows if row.in_spec and not row.tests]


# --- rendering -------------------------------------------------------------------------------


def _summary(matrix: Matrix) -> str:
    spec_rows = [row for row in matrix.rows if row.in_spec]
    absent = missing(matrix)
    line = (
        f"{len(spec_rows)} SPEC requirements: {len(spec_rows) - len(absent)} covered by tests, "
        f"{len(absent)} missing"
    )
    return line + (f" ({', '.join(absent)})" if absent else "")


def render_text(matrix: Matrix) -> str:
    """A plain-text table: one block per requirement, covering tests and scenarios listed."""
    # +1 leaves room for the "*" that flags an ID outside the SPEC.
    id_width = max([len("requirement"), *(len(row.requirement) + 1 for row in matrix.rows)])
    header = f"{'requirement':<{id_width}}  tests  scen.  covered by"
    lines = [header, "-" * len(header)]
    indent = " " * (id_width + 16)  # under "covered by"
    for row in matrix.rows:
        label = row.requirement + ("" if row.in_spec else "*")
        entries = [*row.tests, *(f"{scenario} (scenario)" for scenario in row.scenarios)]
        if row.in_spec and not row.tests:
            entries.insert(0, "MISSING: no test names it")
        first = entries[0] if entries else ""
        lines.append(
            f"{label:<{id_width}}  {len(row.tests):>5}  {len(row.scenarios):>5}  {first}".rstrip()
        )
        lines.extend(f"{indent}{entry}" for entry in entries[1:])
    lines.append("")
    if any(not row.in_spec for row in matrix.rows):
        lines.append("* not a SPEC requirement (infrastructure ID)")
    lines.append(_summary(matrix))
    return "\n".join(lines) + "\n"


def _md_cell(entries: Iterable[str]) -> str:
    cell = "<br>".join(f"`{entry}`" for entry in entries)
    return cell.replace("|", "\\|") or "—"


def render_markdown(matrix: Matrix) -> str:
    """A Markdown table (for a README or a CI job summary)."""
    lines = [
        "| Requirement | What | Tests | Scenarios |",
        "|---|---|---|---|",
    ]
    for row in matrix.rows:
        label = f"**{row.requirement}**" if row.in_spec else row.requirement
        what = row.title or "(not in SPEC)"
        tests = _md_cell(row.tests) if row.tests or not row.in_spec else "**MISSING**"
        lines.append(f"| {label} | {what} | {tests} | {_md_cell(row.scenarios)} |")
    lines.extend(["", _summary(matrix)])
    return "\n".join(lines) + "\n"


def render_json(matrix: Matrix) -> str:
    """One JSON object: every row, and the list of missing SPEC requirements."""
    document = {
        "requirements": [
            {
                "id": row.requirement,
                "in_spec": row.in_spec,
                "title": row.title,
                "tests": list(row.tests),
                "scenarios": list(row.scenarios),
            }
            for row in matrix.rows
        ],
        "missing": missing(matrix),
    }
    return json.dumps(document, indent=2) + "\n"


# --- the specification's own list -----------------------------------------------------------

#: A requirement's definition in ``docs/spec.md``: a list item that opens with the ID in bold,
#: ``- **R-STOP** ...`` or ``- **R-NODE Node protocol.** ...``; several IDs may open one item
#: (``- **P-A**, **P-B** ...``).
_DEFINITION = re.compile(r"^\s*[-*] ((?:\*\*[RP]-[A-Z]+\b[^*\n]*\*\*(?:,\s*)?)+)", re.MULTILINE)
_BOLD_ID = re.compile(r"\*\*([RP]-[A-Z]+)\b")
#: Any requirement ID mentioned in running text.
_MENTION = re.compile(r"(?<![\w-])([RP]-[A-Z]+)(?![\w-])")


def spec_requirement_ids(text: str) -> list[str]:
    """The requirement IDs the specification's Markdown *defines*, in the order it defines them.

    :data:`SPEC_REQUIREMENTS` is kept in the package rather than read from ``docs/spec.md`` at
    run time: an installed bwcsim (a firmware team's repository) has no ``docs/``, and
    ``bwcsim trace-reqs`` must give the same matrix wherever it runs. ``tests/test_spec_ids.py``
    holds the two equal with this function.
    """
    return _unique(i for opener in _DEFINITION.findall(text) for i in _BOLD_ID.findall(opener))


def spec_mentioned_ids(text: str) -> list[str]:
    """Every requirement ID the text mentions anywhere, defined or not, in order of first use."""
    return _unique(_MENTION.findall(text))
