"""The published copies of the interface schemas (docs/schema/) are what `bwcsim schema` prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "docs" / "schema"


@pytest.mark.req("SCHEMA")
@pytest.mark.parametrize(
    ("args", "name"),
    [(["schema"], "mqtt-payloads.schema.json"), (["schema", "--asyncapi"], "asyncapi.yaml"),
     (["schema", "--node-protocol"], "node-protocol.schema.json"),
     (["schema", "--report"], "report.schema.json")],
)
def test_published_schema_is_current(args: list[str], name: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0
    assert (SCHEMA_DIR / name).read_text("utf-8") == result.stdout, (
        f"docs/schema/{name} is stale: regenerate it with `bwcsim {' '.join(args)} > docs/schema/{name}`"
    )
