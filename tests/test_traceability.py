"""The traceability matrix reads requirement marks and scenario ``requirements:`` statically."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from sim.spec.traceability import (
    SPEC_REQUIREMENTS,
    Matrix,
    build_matrix,
    missing,
    render_json,
    render_markdown,
    render_text,
    scan_test_module,
)

pytestmark = pytest.mark.req("TRACE")

PARAMETRIZE_SUFFIX = re.compile(r"\[.*\]$")

SPEC_IDS = [
    "R-TRIG", "R-BUF", "R-LATE", "R-NOSPLIT", "R-STOP", "R-MISS", "R-DOCK", "R-POWER", "R-STORE",
    "R-ROLL", "R-SIG", "R-IDEM", "R-BAD", "R-AUDIT", "R-META",
    "P-NOMISS", "P-NOSPLIT", "P-NOPHANTOM", "P-PRIVACY", "P-TAIL", "P-BAD", "P-IDEM", "P-DET",
    "P-AUDIT", "P-AUTH", "P-REPLY", "P-EVIDENCE", "P-RESOURCE",
    "R-AUTH", "R-FRESH", "R-ISOLATE", "R-NODROP", "R-DURABLE", "R-BOUND", "R-AUDITFILE",
    "R-NODE",
    "R-HIL", "R-CLOCK", "R-JITTER",
]  # fmt: skip


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small repository tree using every supported way of naming a requirement."""
    _write(
        tmp_path / "tests" / "test_decorators.py",
        """
        import pytest
        from pytest import mark

        @pytest.mark.req("R-TRIG")
        def test_plain():
            pass

        @pytest.mark.req("R-BUF", "R-LATE")
        @pytest.mark.parametrize("x", [pytest.param(1, marks=pytest.mark.req("R-ROLL"))])
        async def test_async_two_ids(x):
            pass

        @mark.req("R-SIG")
        def test_bare_mark_import():
            pass

        def test_unmarked():
            pass

        def helper_not_a_test():
            pytest.mark.req("R-META")
        """,
    )
    _write(
        tmp_path / "tests" / "test_module_marks.py",
        """
        import pytest

        pytestmark = [pytest.mark.req("R-BAD"), pytest.mark.live]
        DOCKING = pytest.mark.req("R-DOCK")

        def test_inherits_module_mark():
            pass

        @DOCKING
        def test_alias():
            pass

        @pytest.mark.req("R-STOP")
        class TestRefusals:
            pytestmark = pytest.mark.req("R-IDEM")

            def test_method(self):
                pass

            @pytest.mark.req("R-AUDIT")
            def test_extra(self):
                pass

            def helper(self):
                pass

            class TestNested:
                def test_deep(self):
                    pass
        """,
    )
    _write(
        tmp_path / "tests" / "properties" / "test_stateful.py",
        """
        import pytest
        from hypothesis.stateful import RuleBasedStateMachine

        class NoMissMachine(RuleBasedStateMachine):
            pass

        TestNoMiss = pytest.mark.req("P-NOMISS")(NoMissMachine.TestCase)
        TestDeterminism = NoMissMachine.TestCase
        TestDeterminism.pytestmark = [pytest.mark.req("P-DET")]
        """,
    )
    _write(tmp_path / "tests" / "test_broken.py", "def test_(:\n")
    _write(tmp_path / "tests" / "helpers.py", "import pytest\npytestmark = pytest.mark.req('R-MISS')\n")
    _write(
        tmp_path / "scenarios" / "warrant.yaml",
        """
        version: 1
        name: warrant
        requirements: [R-TRIG, R-BUF, SCN-EXTRA]
        """,
    )
    _write(tmp_path / "scenarios" / "nested" / "one.yml", "requirements: R-POWER\n")
    _write(tmp_path / "scenarios" / "broken.yaml", "requirements: [R-MISS\n")
    _write(tmp_path / "scenarios" / "list.yaml", "- requirements: [R-MISS]\n")
    _write(tmp_path / "scenarios" / "notes.txt", "requirements: [R-MISS]\n")
    _write(tmp_path / "shared" / "conformance" / "late.yaml", "requirements: [R-LATE]\n")
    return tmp_path


@pytest.fixture
def matrix(repo: Path) -> Matrix:
    return build_matrix(
        repo / "tests",
        [repo / "scenarios", repo / "shared" / "conformance", repo / "does-not-exist"],
    )


def test_spec_requirement_list_matches_spec() -> None:
    assert list(SPEC_REQUIREMENTS) == SPEC_IDS


def test_decorator_marks(matrix: Matrix) -> None:
    assert matrix.row("R-TRIG").tests == ("tests/test_decorators.py::test_plain",)
    assert matrix.row("R-BUF").tests == ("tests/test_decorators.py::test_async_two_ids",)
    assert matrix.row("R-LATE").tests == ("tests/test_decorators.py::test_async_two_ids",)
    # A mark inside pytest.param counts for the function it parametrizes.
    assert matrix.row("R-ROLL").tests == ("tests/test_decorators.py::test_async_two_ids",)
    assert matrix.row("R-SIG").tests == ("tests/test_decorators.py::test_bare_mark_import",)
    # Marks written in non-test functions or non-test modules cover nothing.
    assert matrix.row("R-META").tests == ()
    assert matrix.row("R-MISS").tests == ()


def test_module_and_class_marks(matrix: Matrix) -> None:
    module = "tests/test_module_marks.py"
    in_module = {
        f"{module}::test_inherits_module_mark",
        f"{module}::test_alias",
        f"{module}::TestRefusals::test_method",
        f"{module}::TestRefusals::test_extra",
        f"{module}::TestRefusals::TestNested::test_deep",
    }
    assert set(matrix.row("R-BAD").tests) == in_module
    assert matrix.row("R-DOCK").tests == (f"{module}::test_alias",)
    in_class = in_module - {f"{module}::test_inherits_module_mark", f"{module}::test_alias"}
    assert set(matrix.row("R-STOP").tests) == in_class
    assert set(matrix.row("R-IDEM").tests) == in_class
    assert matrix.row("R-AUDIT").tests == (f"{module}::TestRefusals::test_extra",)


def test_stateful_test_cases(matrix: Matrix) -> None:
    assert matrix.row("P-NOMISS").tests == ("tests/properties/test_stateful.py::TestNoMiss",)
    assert matrix.row("P-DET").tests == ("tests/properties/test_stateful.py::TestDeterminism",)


def test_scenarios(matrix: Matrix) -> None:
    assert matrix.row("R-TRIG").scenarios == ("scenarios/warrant.yaml",)
    assert matrix.row("R-POWER").scenarios == ("scenarios/nested/one.yml",)
    assert matrix.row("R-LATE").scenarios == ("shared/conformance/late.yaml",)
    # Unparsable YAML, a non-mapping document and a non-YAML file are all ignored.
    assert matrix.row("R-MISS").scenarios == ()


def test_extra_ids_follow_spec_ids(matrix: Matrix) -> None:
    ids = [row.requirement for row in matrix.rows]
    assert ids[: len(SPEC_IDS)] == SPEC_IDS
    assert ids[len(SPEC_IDS) :] == ["SCN-EXTRA"]
    extra = matrix.row("SCN-EXTRA")
    assert not extra.in_spec
    assert extra.scenarios == ("scenarios/warrant.yaml",)


def test_missing_means_no_test(matrix: Matrix) -> None:
    covered = {
        "R-TRIG", "R-BUF", "R-LATE", "R-ROLL", "R-SIG", "R-BAD", "R-DOCK", "R-STOP", "R-IDEM",
        "R-AUDIT", "P-NOMISS", "P-DET",
    }  # fmt: skip
    # R-POWER has a scenario but no test: still missing.
    assert missing(matrix) == [req for req in SPEC_IDS if req not in covered]
    assert "R-POWER" in missing(matrix)


def test_paths_outside_root_are_relative(repo: Path) -> None:
    matrix = build_matrix(repo / "tests", [repo / "shared" / "conformance"], root=repo / "tests")
    assert matrix.row("R-LATE").scenarios == ("../shared/conformance/late.yaml",)
    assert matrix.row("R-TRIG").tests == ("test_decorators.py::test_plain",)


def test_empty_tree_misses_everything(tmp_path: Path) -> None:
    matrix = build_matrix(tmp_path / "tests", [])
    assert missing(matrix) == SPEC_IDS
    assert [row.requirement for row in matrix.rows] == SPEC_IDS


def test_render_text(matrix: Matrix) -> None:
    text = render_text(matrix)
    lines = text.splitlines()
    assert lines[0].split() == ["requirement", "tests", "scen.", "covered", "by"]
    trig = next(line for line in lines if line.startswith("R-TRIG "))
    assert trig.split() == ["R-TRIG", "1", "1", "tests/test_decorators.py::test_plain"]
    assert "scenarios/warrant.yaml (scenario)" in text
    power = next(line for line in lines if line.startswith("R-POWER "))
    assert "MISSING" in power
    assert any(line.startswith("SCN-EXTRA* ") for line in lines)
    assert lines[-1] == (
        "39 SPEC requirements: 12 covered by tests, 27 missing (R-NOSPLIT, R-MISS, R-POWER, "
        "R-STORE, R-META, P-NOSPLIT, P-NOPHANTOM, P-PRIVACY, P-TAIL, P-BAD, P-IDEM, P-AUDIT, P-AUTH, "
        "P-REPLY, P-EVIDENCE, P-RESOURCE, R-AUTH, R-FRESH, R-ISOLATE, R-NODROP, R-DURABLE, "
        "R-BOUND, R-AUDITFILE, R-NODE, R-HIL, R-CLOCK, R-JITTER)"
    )


def test_render_markdown(matrix: Matrix) -> None:
    lines = render_markdown(matrix).splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(matrix.rows)
    assert all(line.count("|") == 5 for line in table)
    power = next(line for line in table if "R-POWER" in line)
    assert "**MISSING**" in power
    assert "`scenarios/nested/one.yml`" in power


def test_render_json(matrix: Matrix) -> None:
    document = json.loads(render_json(matrix))
    assert document["missing"] == missing(matrix)
    rows = {row["id"]: row for row in document["requirements"]}
    assert list(rows) == [row.requirement for row in matrix.rows]
    assert rows["R-TRIG"] == {
        "id": "R-TRIG",
        "in_spec": True,
        "title": SPEC_REQUIREMENTS["R-TRIG"],
        "tests": ["tests/test_decorators.py::test_plain"],
        "scenarios": ["scenarios/warrant.yaml"],
    }
    assert rows["SCN-EXTRA"]["in_spec"] is False


def test_scan_rejects_broken_source() -> None:
    with pytest.raises(SyntaxError):
        scan_test_module("def test_(:\n", "tests/test_broken.py")


def test_static_scan_sees_every_mark_pytest_sees(request: pytest.FixtureRequest) -> None:
    """On this repository's own collected tests, the scanner never under-reports a mark."""
    root = Path(str(request.config.rootpath))
    by_file: dict[str, dict[str, set[str]]] = {}
    for item in request.session.items:
        path, _, name = item.nodeid.partition("::")
        if path not in by_file:
            source = (root / path).read_text(encoding="utf-8")
            by_file[path] = {tid: set(ids) for tid, ids in scan_test_module(source, path)}
        runtime = {arg for mark in item.iter_markers("req") for arg in mark.args}
        static_id = f"{path}::{PARAMETRIZE_SUFFIX.sub('', name)}"
        static = by_file[path].get(static_id)
        if static is None:
            # Collected under a name the scanner lists by its class (unittest-style TestCase).
            owner = static_id.rsplit("::", 1)[0]
            static = by_file[path].get(owner, set())
        assert runtime <= static, (
            f"{item.nodeid}: pytest sees {sorted(runtime)}, the static scan only "
            f"{sorted(static)}; write marks as @pytest.mark.req('ID') literals"
        )
