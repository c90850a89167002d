"""Projector mode of the timeline: legible at 1024x768, causes told by pattern as well as
colour, a legend of only what occurs, every miss named, pauses and refusals on the chart."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from output_scenarios import SHIFT_12H, run_text

from sim.views.model import run_view
from sim.views.projector import CAUSE_PATTERNS, CSS, MIN_FONT_PX, SVG_CSS, WIDTH, render_projector
from sim.views.timeline import CAUSE_COLOURS

pytestmark = pytest.mark.req("OUT-TIMELINE")

ROOT = Path(__file__).resolve().parents[1]


def _page(text: str) -> str:
    result, report, records = run_text(text)
    return render_projector(run_view(result, report, records))


def _svg(page: str) -> ET.Element:
    match = re.search(r'<svg class="timeline projector".*?</svg>', page, re.S)
    assert match
    return ET.fromstring(match.group(0))


def _cls(root: ET.Element, cls: str) -> list[ET.Element]:
    return [el for el in root.iter() if cls in (el.get("class") or "").split()]


PAUSE_AND_GUESS = (ROOT / "scenarios" / "full_shift_12h.yaml").read_text("utf-8").replace(
    '  - {at: "11:45:00", camera: cam-1, event: dock}',
    '  - {at: "11:45:00", camera: cam-1, event: dock}\n'
    '  - {at: "10:45:00", camera: cam-1, event: deactivate, reason: victim_privacy, actor: off-9}')


def test_fits_1024_and_no_text_is_smaller_than_the_minimum() -> None:
    page = _page(SHIFT_12H)
    assert f'width="{WIDTH}"' in page and WIDTH <= 1000
    sizes = [float(m) for m in re.findall(r"font(?:-size)?:\s*(?:bold\s+)?([\d.]+)px", CSS + SVG_CSS)]
    assert sizes and min(sizes) >= MIN_FONT_PX
    assert 'font-size="' not in page  # no size set on an element bypassing the stylesheet
    assert "<script" not in page and "https://" not in page


def test_every_cause_has_its_own_pattern_and_a_defect_stays_solid() -> None:
    patterns = [p for p in CAUSE_PATTERNS.values() if p]
    assert len(set(patterns)) == len(patterns) == len(CAUSE_COLOURS) - 1
    assert CAUSE_PATTERNS["controller"] == ""
    result, report, records = run_text(SHIFT_12H)
    root = _svg(render_projector(run_view(result, report, records)))
    for mark in _cls(root, "miss"):
        cause = next(c.removeprefix("miss-") for c in (mark.get("class") or "").split()
                     if c.startswith("miss-"))
        assert mark.get("fill") == (f"url(#pj-{cause})" if CAUSE_PATTERNS[cause] else
                                    CAUSE_COLOURS[cause])


def test_the_legend_shows_only_what_occurs_and_every_miss_is_named() -> None:
    result, report, records = run_text(SHIFT_12H)
    page = render_projector(run_view(result, report, records))
    legend = page[page.index('class="legend"'):page.index('class="chart"')]
    occurring = {m.cause for j in result.judgements.values() for m in j.misses}
    short = {"late_trigger": "late", "not_ready": "booting", "deactivated": "paused"}
    for cause in CAUSE_COLOURS:
        shown = f"missed: {short.get(cause, cause)}<"
        assert (shown in legend) == (cause in occurring), cause
    states = {p.state for r in result.cameras.values() for p in r.states}
    for state in ("docked", "standby", "pre_buffer", "recording", "off"):
        assert (f"{state.replace('_', '-')}<" in legend) == (state in states), state
    root = _svg(page)
    labels = [t.text or "" for t in _cls(root, "miss-label")]
    assert len(labels) == sum(len(j.misses) for j in result.judgements.values())
    assert any(label.startswith("booting ") for label in labels)  # a 3 s miss in 12 h, named


def test_pauses_and_refusals_are_marked_with_reason_actor_and_allowed_words() -> None:
    result, report, records = run_text(PAUSE_AND_GUESS)
    page = render_projector(run_view(result, report, records))
    root = _svg(page)
    (pause,) = _cls(root, "pause")
    assert "medical_facility_privacy by officer-2208" in (pause.findtext("title") or "")
    texts = [t.text or "" for t in root.iter("text")]
    assert "paused: medical_facility_privacy (officer-2208)" in texts
    # the refusal is labelled at its mark (in full, or its word where the row is crowded)
    assert any(t.startswith("✗") and t.endswith("victim_privacy") for t in texts), texts
    refused = [el for el in _cls(root, "refused") if "victim_privacy" in (el.findtext("title") or "")]
    assert refused and "allowed: informant_or_undercover_safety" in (refused[0].findtext("title") or "")
    table = page[page.index('class="refusals"'):]
    assert "victim_privacy by off-9" in table and "did you mean <b>victim_or_witness_request</b>" in table
