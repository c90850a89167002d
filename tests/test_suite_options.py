"""The suite's own rules: requirement marks are enforced, --controller and profiles are honoured."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from hypothesis import settings

from controller.node import CameraNode, CameraSetup, ControllerFactory
from controller.policy import load_policy
from sim.search.profiles import PROFILE_EXAMPLES, load_profile

pytestmark = pytest.mark.req("TEST-INFRA")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def inner_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A scratch project that uses this suite's conftest, for running pytest on it."""
    tests_dir = pytester.mkdir("tests")
    for helper in ("conftest.py", "brokers.py"):
        shutil.copy(REPO / "tests" / helper, tests_dir / helper)
    pytester.makeini("[pytest]\nmarkers =\n    req(id): requirement\n    live: broker\n"
                     "bwcsim_properties = none\n")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    return pytester


def _add_test(suite: pytest.Pytester, name: str, source: str) -> None:
    (suite.path / "tests" / name).write_text(textwrap.dedent(source))


def test_unmarked_tests_fail_collection(inner_suite: pytest.Pytester) -> None:
    _add_test(
        inner_suite,
        "test_mixed.py",
        """
        import pytest

        @pytest.mark.req("R-TRIG")
        def test_marked():
            pass

        def test_forgotten():
            pass

        @pytest.mark.req()
        def test_empty_mark():
            pass
        """,
    )
    result = inner_suite.runpytest_subprocess("tests")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*2 test(s) carry no requirement mark*",
            "*tests/test_mixed.py::test_forgotten",
            "*tests/test_mixed.py::test_empty_mark",
        ]
    )
    assert "test_marked" not in result.stderr.str()


def test_module_mark_satisfies_the_rule(inner_suite: pytest.Pytester) -> None:
    _add_test(
        inner_suite,
        "test_module.py",
        """
        import pytest
        pytestmark = pytest.mark.req("R-BAD")

        def test_one():
            pass
        """,
    )
    result = inner_suite.runpytest_subprocess("tests")
    result.assert_outcomes(passed=1)


def test_bad_controller_spec_is_reported_plainly(inner_suite: pytest.Pytester) -> None:
    _add_test(
        inner_suite,
        "test_uses_controller.py",
        """
        import pytest

        @pytest.mark.req("R-TRIG")
        def test_needs_controller(controller_factory):
            pass
        """,
    )
    result = inner_suite.runpytest_subprocess("tests", "--controller=no_such_module:make")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot import 'no_such_module'*"])
    assert "Traceback" not in result.stdout.str()


def test_controller_factory_fixture_names_the_option(inner_suite: pytest.Pytester) -> None:
    _add_test(
        inner_suite,
        "test_uses_controller.py",
        """
        import pytest

        @pytest.mark.req("R-TRIG")
        def test_needs_controller(controller_factory):
            pass
        """,
    )
    result = inner_suite.runpytest_subprocess("tests", "--controller=controller.reference")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*controller 'controller.reference': expected module:factory*"])


def test_default_controller_builds_a_node(controller_factory: ControllerFactory) -> None:
    node = controller_factory(CameraSetup(camera_id="cam-1", policy=load_policy("dhs-2023")))
    assert isinstance(node, CameraNode)
    assert node.camera_id == "cam-1"


def test_profiles_load_by_name_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    active = settings.default
    try:
        for name, examples in PROFILE_EXAMPLES.items():
            assert load_profile(name) == name
            current = settings.get_profile(name)
            assert settings.default is not None
            assert settings.default.max_examples == current.max_examples == examples
            assert current.deadline is None
        assert settings.get_profile("ci").print_blob
        monkeypatch.setenv("HYPOTHESIS_PROFILE", "nightly")
        assert load_profile() == "nightly"
        monkeypatch.delenv("HYPOTHESIS_PROFILE")
        assert load_profile() == "dev"
        with pytest.raises(ValueError, match="unknown hypothesis profile 'deep'"):
            load_profile("deep")
    finally:
        settings.register_profile("restored", active)
        settings.load_profile("restored")
