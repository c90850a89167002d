"""What every suite test shares: its hypothesis settings, layered on the active profile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, example, settings

F = TypeVar("F", bound=Callable[..., None])

# Generated scenarios are large by design, and the suites use function-scoped fixtures on
# purpose (the counterexample recorder must outlive one example): these checks would only slow
# the search down or refuse it.
_QUIET = (HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture)


def suite_settings(*suppress: HealthCheck, **overrides: Any) -> settings:
    """The settings every suite test is decorated with, on top of the active profile.

    No deadline (the simulation runs in virtual time: the wall clock says nothing about the
    controller, and a controller in another process is slower, not wrong), and one failure per
    test, so that the last example hypothesis runs is the shrunk counterexample that is
    reported and saved. No explain phase either: it replays the shrunk scenario many times over
    to annotate a Python dict nobody reads here, while the saved file is minimised entry by
    entry (:func:`sim.search.fuzz.minimise`). Call it when the suite module is imported, after
    the profile is loaded: the other settings are the profile's.
    """
    active = settings.default
    assert active is not None  # hypothesis always has a current profile once imported
    return settings(
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=[*_QUIET, *suppress],
        phases=[p for p in active.phases if p is not Phase.explain],
        **overrides,
    )


def with_corners(test: F) -> F:
    """``test`` (taking ``data``) with every corner scenario of :mod:`sim.search.corners` as an
    explicit example, in corner order: a rule broken in its plain case fails in any profile,
    whatever the seed."""
    from sim.search.corners import corner_scenarios

    for data in reversed(corner_scenarios()):
        test = example(data=data)(test)
    return test


__all__ = ["suite_settings", "with_corners"]
