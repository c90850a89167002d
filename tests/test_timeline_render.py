"""The HTML timeline (SPEC §10): structure of its SVG, and a real render in headless Chromium.

The structural tests parse the inline SVG as XML and check what a trainer relies on: one lane
per camera, a red-family mark for every miss, a marker with hover text for every alert, a
readable time axis, short events still visible on a 12-hour shift, and no URL anywhere (the
file must open without a network). The render test runs only where Chromium is installed; it
screenshots the page and decodes the PNG with the standard library to check the picture holds
the colours it should.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest
from output_scenarios import DOCK_MID_WARRANT, SHIFT_12H, run_text

from sim.views.files import write_outputs
from sim.views.model import miss_tone, run_view
from sim.views.timeline import (
    CAUSE_COLOURS,
    CHAR_PX,
    MIN_MARK_PX,
    STATE_COLOURS,
    SUMMARY_COLOURS,
    render_timeline,
    tick_step,
)

pytestmark = pytest.mark.req("OUT-TIMELINE")


def _page(text: str) -> str:
    result, report, records = run_text(text)
    return render_timeline(run_view(result, report, records))


def _svg(page: str) -> ET.Element:
    match = re.search(r'<svg class="timeline".*?</svg>', page, re.S)
    assert match, "the chart is inline SVG"
    return ET.fromstring(match.group(0))


def _by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [el for el in root.iter() if cls in (el.get("class") or "").split()]


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


# ---------------------------------------------------------------------------------- structure


def test_page_is_self_contained() -> None:
    page = _page(SHIFT_12H)
    assert page.startswith("<!DOCTYPE html>")
    assert "http" not in page.lower()
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "url(" not in page.replace("url(#buffer-hatch)", "").replace(
        "url(#buffer-hatch-key)", "")


def test_one_lane_per_camera_in_scenario_order() -> None:
    lanes = _by_class(_svg(_page(SHIFT_12H)), "lane")
    assert [g.get("data-camera") for g in lanes] == ["cam-1", "cam-2", "cam-3", "cam-4"]


def test_every_miss_is_a_red_family_mark_with_its_cause_and_times() -> None:
    result, report, records = run_text(SHIFT_12H)
    root = _svg(render_timeline(run_view(result, report, records)))
    for lane in _by_class(root, "lane"):
        cam = lane.get("data-camera")
        assert cam is not None
        misses = result.judgements[cam].misses
        marks = _by_class(lane, "miss")
        assert len(marks) == len(misses)
        for mark, miss in zip(marks, misses, strict=True):
            assert f"miss-{miss.cause}" in (mark.get("class") or "")
            fill = mark.get("fill") or ""
            r, g, b = _rgb(fill)
            assert fill == CAUSE_COLOURS[miss.cause] and r >= g and r >= b, fill
            title = mark.findtext("title") or ""
            assert miss.cause in title and "MISSED" in title
            assert float(mark.get("width") or 0) >= MIN_MARK_PX
    # the 3.1 s not_ready miss at the start of a 12-hour shift is still drawn wide enough
    assert any(m.cause == "not_ready" and m.seconds < 10 for m in result.judgements["cam-1"].misses)


def test_every_alert_is_a_marker_with_hover_text() -> None:
    result, report, records = run_text(SHIFT_12H)
    root = _svg(render_timeline(run_view(result, report, records)))
    for lane in _by_class(root, "lane"):
        cam = lane.get("data-camera")
        assert cam is not None
        markers = _by_class(lane, "alert")
        alerts = result.cameras[cam].alerts
        assert len(markers) == len(alerts) and alerts
        for marker, alert in zip(markers, alerts, strict=True):
            assert marker.tag == "polygon"
            assert alert.kind in (marker.findtext("title") or "")


def test_states_required_windows_and_footage_are_drawn() -> None:
    root = _svg(_page(DOCK_MID_WARRANT))
    states = [(el.findtext("title") or "").split(":")[0] for el in _by_class(root, "state")]
    assert states == ["pre_buffer", "recording", "docked"]
    fills = {el.get("fill") for el in _by_class(root, "state")}
    assert fills == {STATE_COLOURS[s] for s in states}
    (required,) = _by_class(root, "required")
    assert "arrest_warrant w-2 00:05:00-00:25:00" in (required.findtext("title") or "")
    (buffer,) = _by_class(root, "buffer")
    assert buffer.get("fill") == "url(#buffer-hatch)"
    assert "00:04:30-00:05:00" in (buffer.findtext("title") or "")
    (miss,) = _by_class(root, "miss")
    assert "00:15:00-00:25:00" in (miss.findtext("title") or "")
    labels = " ".join(t.text or "" for t in root.iter("text"))
    assert "missed 600 s (10 min) — docked" in labels
    assert "dock" in labels


def test_header_legend_axis_and_tables() -> None:
    page = _page(DOCK_MID_WARRANT)
    header = page[page.index("<header>"):page.index("</header>")]
    assert "Camera docked in the middle of a warrant service" in header
    assert "PASS" in header and "600 s (10 min)" in header and "docked" in header
    assert 'class="legend"' in page
    for word in (*STATE_COLOURS, *CAUSE_COLOURS):
        assert word in page[page.index('class="legend"'):page.index('class="chart"')]
    ticks = [t.text or "" for t in _svg(page).iter("text") if t.get("class") == "tick"]
    assert ticks[0] == "00:00:00" and ticks[-1] == "00:30:00"
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in ticks)
    assert "<h2>Missed required footage</h2>" in page and "the camera was in its dock" in page
    assert "<h2>Alerts</h2>" in page and "missed_required_recording" in page


def test_tick_spacing_is_round_and_legible() -> None:
    assert tick_step(1800, 1400) == 120
    assert tick_step(12 * 3600, 1400) == 3600
    assert tick_step(60, 1400) == 5
    for duration in (10, 600, 3600, 12 * 3600, 48 * 3600):
        step = tick_step(duration, 1400)
        assert step * 1400 / duration >= 90 and duration / step <= 16


#: Required windows of 2, 11, 1, 0.5, 1, 30 and 2 minutes in a 12-hour plot (~30 s a pixel):
#: too short for their names, some too short for their ids, with neighbours close by.
SHORT_WINDOWS = """\
version: 1
name: Short required windows in a long day
policy: dhs-2023
end: "12:00:00"
cameras:
  - {id: cam-1}
timeline:
  - {at: "01:00:00", camera: cam-1, event: activity_start, activity: arrest_warrant, activity_id: w-1}
  - {at: "01:02:00", camera: cam-1, event: activity_end, activity_id: w-1}
  - {at: "01:10:00", camera: cam-1, event: activity_start, activity: search_warrant, activity_id: s-22}
  - {at: "01:20:00", camera: cam-1, event: activity_start, activity: emergency_response,
     activity_id: e-3}
  - {at: "01:21:00", camera: cam-1, event: activity_end, activity_id: e-3}
  - {at: "01:21:00", camera: cam-1, event: activity_end, activity_id: s-22}
  - {at: "01:21:30", camera: cam-1, event: activity_start, activity: patrol, activity_id: p-9}
  - {at: "01:22:00", camera: cam-1, event: activity_end, activity_id: p-9}
  - {at: "03:00:00", camera: cam-1, event: activity_start, activity: patrol,
     activity_id: patrol-2024-0117}
  - {at: "03:01:00", camera: cam-1, event: activity_end, activity_id: patrol-2024-0117}
  - {at: "05:00:00", camera: cam-1, event: activity_start, activity: emergency_response,
     activity_id: e-4}
  - {at: "05:30:00", camera: cam-1, event: activity_end, activity_id: e-4}
  - {at: "08:00:00", camera: cam-1, event: dock}
  - {at: "08:30:00", camera: cam-1, event: activity_start, activity: patrol, activity_id: p-10}
  - {at: "08:32:00", camera: cam-1, event: activity_end, activity_id: p-10}
"""


ROW_BAR_H = 16  # height of a top-level required bar; nested ones are thinner


def _window_labels(root: ET.Element) -> dict[str, ET.Element]:
    """Required-window labels (inside a bar or beside it) by their text."""
    return {t.text or "": t for t in root.iter("text")
            if {"inbar", "side"} & set((t.get("class") or "").split())}


def test_a_short_required_window_keeps_its_id_or_an_ellipsis_and_its_full_hover_text() -> None:
    result, report, records = run_text(SHORT_WINDOWS)
    root = _svg(render_timeline(run_view(result, report, records)))
    bars = _by_class(root, "required")
    windows = result.windows["cam-1"]
    assert len(bars) == len(windows)
    for bar, win in zip(bars, windows, strict=True):
        assert f"required: {win.activity} {win.activity_id} " in (bar.findtext("title") or "")
    labels = _window_labels(root)
    # 30 min (~58 px): the id fits inside where "emergency_response e-4" does not
    assert "e-4" in labels and "inbar" in (labels["e-4"].get("class") or "")
    # 1 min with the row free after it: the id, and then the name, beside the bar, carrying
    # the full text for hover since the label is what the pointer is on
    for wid, text in (("p-9", "p-9"), ("p-10", "p-10"), ("patrol-2024-0117", "patrol-2024-0117")):
        side = labels[text]
        assert "side" in (side.get("class") or "")
        assert f"patrol {wid} " in (side.findtext("title") or "")
    # 11 min with p-9 right after it: no room for "s-22" inside or beside, so an ellipsis
    assert "…" in labels
    assert not any(t.startswith(("search_warrant", "s-22")) for t in labels)
    # every top-level bar wide enough for an ellipsis has a label on it or right beside it
    xs = [float(t.get("x") or 0) for t in labels.values()]
    for bar in bars:
        x, w = float(bar.get("x") or 0), float(bar.get("width") or 0)
        if float(bar.get("height") or 0) >= ROW_BAR_H and w >= CHAR_PX + 4:
            assert any(x <= lx <= x + w + 4 for lx in xs), bar.findtext("title")


def _verdict(text: str) -> str:
    _result, report, _records = run_text(text)
    return str(report["verdict"])


def test_camera_summary_is_red_only_for_a_fault() -> None:
    def summary(text: str, fault: dict[str, float] | None = None,
                unannounced: list[str] | None = None) -> ET.Element:
        result, report, records = run_text(text)
        view = run_view(result, report, records)
        cam = view.cameras[0]
        cam.missed_s.update(fault or {})
        cam.unannounced.extend(unannounced or [])
        (line,) = _by_class(_svg(render_timeline(view)), "camsum")
        return line

    # a passing camera whose only miss is explained (docked, announced) is not red
    excused = summary(DOCK_MID_WARRANT)
    assert _verdict(DOCK_MID_WARRANT) == "pass"
    assert excused.get("fill") == SUMMARY_COLOURS["excused"]
    assert "every second explained" in (excused.text or "")
    r, g, b = _rgb(SUMMARY_COLOURS["excused"])
    assert r > b and g > b, "amber, not red"
    # nothing missed: green
    clean = summary(DOCK_MID_WARRANT.replace(
        "  - {at: 900, camera: cam-1, event: dock}\n", ""))
    assert clean.get("fill") == SUMMARY_COLOURS["none"]
    # controller seconds, or a miss without its alert: red
    assert summary(DOCK_MID_WARRANT, fault={"controller": 4.0}).get("fill") == \
        SUMMARY_COLOURS["fault"]
    unannounced = summary(DOCK_MID_WARRANT, unannounced=["docked 900-1500 without alert"])
    assert unannounced.get("fill") == SUMMARY_COLOURS["fault"]
    assert "1 not announced" in (unannounced.text or "")
    assert len(set(SUMMARY_COLOURS.values())) == 3


def test_miss_tone_follows_the_verdict_rule() -> None:
    assert miss_tone({"total": 0.0, "controller": 0.0}, []) == "none"
    assert miss_tone({"total": 600.0, "docked": 600.0, "controller": 0.0}, []) == "excused"
    assert miss_tone({"total": 2.0, "controller": 2.0}, []) == "fault"
    assert miss_tone({"total": 60.0, "late_trigger": 60.0}, ["no late_trigger alert"]) == "fault"


# ---------------------------------------------------------------------------------- rendering


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered RGB(A) rows of an 8-bit PNG, with the stdlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour_type in (2, 6)
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r[i:i + 3]) for r in rows[::2] for i in range(0, stride, bpp * 2)]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
        "google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed")
def test_dock_mid_warrant_renders_to_a_picture_with_its_colours(tmp_path: Path) -> None:
    result, report, records = run_text(DOCK_MID_WARRANT)
    html = tmp_path / "dock.html"
    write_outputs(result, report, records, timeline=html)
    png = tmp_path / "dock.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [str(_chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
             f"--screenshot={png}", "--window-size=1600,900", html.as_uri()],
            check=False, capture_output=True, timeout=120,
        )
    assert png.exists(), "Chromium wrote no screenshot"
    assert png.stat().st_size > 20_000
    width, height, pixels = _png_pixels(png.read_bytes())
    assert (width, height) == (1600, 900)
    colours = set(pixels)
    assert len(colours) > 50
    for wanted in (CAUSE_COLOURS["docked"], STATE_COLOURS["recording"], STATE_COLOURS["docked"],
                   STATE_COLOURS["pre_buffer"]):
        target = _rgb(wanted)
        near = sum(1 for px in pixels if all(abs(px[i] - target[i]) <= 8 for i in range(3)))
        assert near > 200, f"{wanted} hardly appears in the picture ({near} samples)"
