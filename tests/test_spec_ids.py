"""The requirement IDs of docs/spec.md and of the traceability matrix are one list.

``docs/spec.md`` defines each ID as a list item opening with it in bold; the matrix
(:data:`sim.spec.traceability.SPEC_REQUIREMENTS`) carries the same IDs in the package (an
installed bwcsim has no ``docs/``). A requirement added to one and not the other, or an ID the
spec mentions but never defines, fails here. The order is the matrix's own business.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.spec.traceability import SPEC_REQUIREMENTS, spec_mentioned_ids, spec_requirement_ids

pytestmark = pytest.mark.req("TRACE")

SPEC = Path(__file__).resolve().parents[1] / "docs" / "spec.md"


def test_the_matrix_lists_exactly_the_requirements_the_spec_defines() -> None:
    defined = spec_requirement_ids(SPEC.read_text("utf-8"))
    assert len(defined) >= 30
    assert [i for i in defined if i not in SPEC_REQUIREMENTS] == [], "defined in docs/spec.md only"
    assert [i for i in SPEC_REQUIREMENTS if i not in defined] == [], "in SPEC_REQUIREMENTS only"


def test_every_id_the_spec_mentions_is_one_it_defines() -> None:
    text = SPEC.read_text("utf-8")
    defined = set(spec_requirement_ids(text))
    assert [i for i in spec_mentioned_ids(text) if i not in defined] == []


def test_the_reader_finds_both_forms_of_definition_and_nothing_else() -> None:
    text = (
        "- **R-ONE** The first.\n"
        "  More about R-ONE and R-TWO.\n"
        "- **R-TWO Two things.** The second.\n"
        "- **P-THREE** A property; see P-THREE.\n"
        "- **P-THREE**, **P-SEVEN**, **P-EIGHT** Properties of a section that lists them again.\n"
        "Plain text naming **R-FOUR** in bold is a mention, not a definition; so is `R-FIVE`.\n"
        "- R-SIX without bold is a mention.\n"
    )
    assert spec_requirement_ids(text) == ["R-ONE", "R-TWO", "P-THREE", "P-SEVEN", "P-EIGHT"]
    assert spec_mentioned_ids(text) == ["R-ONE", "R-TWO", "P-THREE", "P-SEVEN", "P-EIGHT",
                                        "R-FOUR", "R-FIVE", "R-SIX"]
    assert spec_mentioned_ids("X-R-ONE, R-ONEs and BR-X are no IDs") == []
