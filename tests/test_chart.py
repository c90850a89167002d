"""The state chart is generated from the one state table, and the README copy stays current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.machine import TRANSITIONS, State, mermaid
from sim.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.req("OUT-CHART")
def test_chart_has_every_transition_of_the_table() -> None:
    chart = mermaid()
    assert chart.startswith("stateDiagram-v2\n")
    for row in TRANSITIONS:
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        for src in sources:
            assert f"{src.value} --> {row['dest'].value}: {row['trigger']}" in chart
    for state in State:
        assert state.value in chart


@pytest.mark.req("OUT-CHART")
def test_cli_prints_the_chart() -> None:
    result = CliRunner().invoke(app, ["chart", "--format", "mermaid"])
    assert result.exit_code == 0
    assert result.stdout == mermaid()


@pytest.mark.req("OUT-CHART")
def test_readme_embeds_the_current_chart() -> None:
    text = README.read_text("utf-8")
    m = re.search(r"<!-- chart:begin -->\n```mermaid\n(.*?)```\n<!-- chart:end -->", text, re.S)
    assert m, "README lacks the chart:begin/chart:end block"
    assert m.group(1) == mermaid(), "README chart is stale: paste the output of `bwcsim chart`"
