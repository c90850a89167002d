"""The studio end to end, in a real browser: step, read a camera, ask what if, save, replay.

Playwright drives Debian's Chromium (``/usr/bin/chromium``); nothing is downloaded. The test
skips, saying why, where Chromium or Playwright is missing. The studio runs under uvicorn on a
free loopback port, started in the folder of a copy of one library scenario, exactly as
``bwcsim studio`` serves it.

With ``BWCSIM_SCREENSHOTS=DIR`` the test also writes the documentation's pictures of the studio
and of the projector timeline at 1024x768 into DIR (``docs/img`` in the repository).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.studio.app import create_app
from sim.studio.session import Studio

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.req("STUDIO")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is not installed (Debian package chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def studio_url(tmp_path: Path) -> Iterator[str]:
    import uvicorn

    (tmp_path / "scenarios").mkdir()
    shutil.copy(ROOT / "scenarios" / "arrest_warrant_team.yaml", tmp_path / "scenarios")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Studio(tmp_path)), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the studio did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_api.sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1024, "height": 768})
        errors: list[str] = []
        pg = ctx.new_page()
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.set_default_timeout(20_000)
        yield pg
        ctx.close()
        assert errors == [], f"the page raised: {errors}"


def _shots() -> Path | None:
    out = os.environ.get("BWCSIM_SCREENSHOTS")
    return Path(out) if out else None


def test_step_read_delay_past_the_buffer_save_and_replay(
    studio_url: str, page: Page, tmp_path: Path
) -> None:
    page.goto(studio_url + "#scenarios/arrest_warrant_team.yaml")
    page.wait_for_selector(".camcard")
    assert page.inner_text("#asis .verdict") == "PASS"
    assert "nothing missed" in page.inner_text("#asis")

    # Step event by event to the warrant's start and read cam-1 at the cursor.
    for _ in range(10):
        if "activity_start arrest_warrant w-17" in page.inner_text("#happening"):
            break
        before = page.input_value("#time")
        page.click("#step-next")
        # the cursor has moved and the server's answer for the new time is on the page
        page.wait_for_function(
            "prev => { const t = document.querySelector('#time').value; return t !== prev && "
            "document.querySelector('#happening').textContent.startsWith(t); }", arg=before)
    assert page.input_value("#time") == "00:10:00"
    page.wait_for_function(
        "document.querySelector('.camcard[data-camera=\"cam-1\"] .state').textContent === 'recording'")
    card = page.inner_text('.camcard[data-camera="cam-1"]')
    assert "arrest_warrant w-17" in card and "required activity w-17" in card
    assert "incident cam-1-1 since 00:09:30" in card  # 30 s of buffer in front

    # A time people cannot mean is refused beside the field, not by the server.
    page.fill('input[data-field="timeline[1].at"]', "00:10")
    page.press('input[data-field="timeline[1].at"]', "Tab")
    note = page.wait_for_selector('input[data-field="timeline[1].at"] + .field-error')
    assert note is not None and "has two parts" in note.inner_text()
    page.click("#undo")
    page.wait_for_selector(".field-error", state="detached")

    # What if the team's trigger had come 90 s late, past cam-1's 30 s buffer?
    page.fill('input[data-field="timeline[1].delay_s"]', "90")
    page.press('input[data-field="timeline[1].delay_s"]', "Tab")
    page.wait_for_selector('#whatif:not([hidden]) tr[data-cause="late_trigger"]')
    whatif = page.inner_text("#whatif")
    assert "missed: late-trigger" in whatif
    late_shown = page.inner_text('#whatif tr[data-cause="late_trigger"] .secs')
    assert late_shown.startswith("150 s")  # cam-1 60 + cam-2 30 + cam-3 60
    verdict_shown = page.inner_text("#whatif .verdict").lower()
    assert page.inner_text("#asis .verdict") == "PASS"  # the original, side by side

    if (shots := _shots()) is not None:
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(shots / "studio.png"))
        page.evaluate("document.querySelector('#transport').scrollIntoView()")
        page.screenshot(path=str(shots / "studio_cursor.png"))

    page.fill("#save-target", "scenarios/late_warrant.yaml")
    page.click("#save")
    page.wait_for_selector("#save-result .ok")
    saved = tmp_path / "scenarios" / "late_warrant.yaml"
    text = saved.read_text("utf-8")
    assert "delay_s: 90" in text and "# boots 5 s: buffering from 00:09:05" in text

    result = CliRunner().invoke(app, ["run", str(saved), "--report", "json"])
    report = json.loads(result.stdout)
    assert report["verdict"] == verdict_shown
    assert report["missed_s"]["late_trigger"] == 150.0
    assert result.exit_code == 1  # the original's expect: (nothing missed) no longer holds


def test_a_scenario_made_with_the_form_replays_and_saves(
    studio_url: str, page: Page, tmp_path: Path
) -> None:
    page.goto(studio_url)
    page.wait_for_selector(".camcard")
    page.click("#new-open")
    page.fill('#new-form [data-field="timeline[0].who"]', "cam-1")
    page.click("#new-create")
    # no name: refused beside the name field, the dialog stays open
    note = page.wait_for_selector('#new-form [data-field="name"] + .field-error')
    assert note is not None and "name" in note.inner_text()
    page.fill('#new-form [data-field="name"]', "Form-made patrol")
    page.click("#new-create")
    page.wait_for_selector("#file:text('new scenario')")
    assert page.inner_text("#asis .verdict") == "PASS"
    assert "patrol a-1" in page.inner_text("#chart")  # the form's first activity, its id
    page.fill("#save-target", "scenarios/form_made.yaml")
    page.click("#save")
    page.wait_for_selector("#save-result .ok")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "scenarios" / "form_made.yaml"),
                                      "--report", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["scenario"] == "Form-made patrol" and report["verdict"] == "pass"
    assert report["cameras"]["cam-1"]["required"][0]["activity_id"] == "a-1"


def test_projector_timeline_screenshot(tmp_path: Path, page: Page) -> None:
    html = tmp_path / "projector.html"
    result = CliRunner().invoke(app, ["run", str(ROOT / "scenarios" / "deactivation_reason_guessed.yaml"),
                                      "--timeline", str(html), "--projector"])
    assert result.exit_code == 0, result.output
    page.goto(html.as_uri())
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1024, "the projector page scrolls sideways at 1024 px"
    sizes = page.evaluate(
        "Array.from(document.querySelectorAll('body *')).filter(e => e.childNodes.length && "
        "Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim()))"
        ".map(e => parseFloat(getComputedStyle(e).fontSize))")
    assert sizes and min(sizes) >= 16, f"text smaller than 16 px: {min(sizes)}"
    if (shots := _shots()) is not None:
        page.screenshot(path=str(shots / "projector.png"))
