"""Suite-wide test configuration: requirement marks, controller choice, hypothesis, brokers.

* Every collected test must carry ``@pytest.mark.req("ID", ...)`` (directly, on its class, or
  through a module ``pytestmark``); collection fails with the list of unmarked tests otherwise.
  ``bwcsim trace-reqs`` reads the same marks to build the traceability matrix.
* ``--controller=module:factory`` selects the controller the suites run against (default: the
  reference controller). It is this repository's name for the bwcsim pytest plugin's
  ``--bwcsim-controller`` (both set the same value); tests take the factory from the plugin's
  ``bwcsim_controller`` fixture or from ``controller_factory``, its older name here.
* The hypothesis profile comes from ``$HYPOTHESIS_PROFILE`` (``dev``, ``ci``, ``nightly``), ``dev``
  when unset: loaded here, at import, so that every suite module sees it.
* ``mqtt_broker`` yields a real broker on loopback (see ``tests/brokers.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.node import DEFAULT_FACTORY, ControllerFactory
from sim.search.profiles import load_profile

# The tests directory is not a package; put it on sys.path so the broker helpers import the
# same way from here, from test modules and from .ci/run.
sys.path.insert(0, str(Path(__file__).parent))

from brokers import BrokerAddress, any_broker

# pytester runs scratch pytest sessions, which is how the rules above are themselves tested.
pytest_plugins = ["pytester"]

HYPOTHESIS_PROFILE = load_profile()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--controller",
        dest="bwcsim_controller",  # the plugin's --bwcsim-controller: one value, two names
        default=None,
        metavar="MODULE:FACTORY",
        help=(
            "controller factory the suites run against: a callable taking a CameraSetup and "
            f"returning a CameraNode (default: {DEFAULT_FACTORY}); same as --bwcsim-controller"
        ),
    )


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Refuse to run a suite in which some test names no requirement."""
    unmarked: list[str] = []
    for item in items:
        ids = [arg for mark in item.iter_markers("req") for arg in mark.args]
        if not ids or not all(isinstance(req_id, str) and req_id for req_id in ids):
            unmarked.append(item.nodeid)
    if unmarked:
        listing = "\n  ".join(unmarked)
        raise pytest.UsageError(
            f"{len(unmarked)} test(s) carry no requirement mark; add "
            '@pytest.mark.req("R-...") (a SPEC ID, or a descriptive one for infrastructure) '
            f"to each:\n  {listing}"
        )


@pytest.fixture(scope="session")
def controller_factory(bwcsim_controller: ControllerFactory) -> ControllerFactory:
    """The controller factory named by ``--controller`` (the plugin's ``bwcsim_controller``)."""
    return bwcsim_controller


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[BrokerAddress]:
    """A real MQTT broker on 127.0.0.1 for the whole session (system, spawned, or amqtt)."""
    with any_broker() as address:
        yield address
