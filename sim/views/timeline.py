"""The HTML timeline of one run: what each camera did, what footage exists, what was missed.

Theory of operation
-------------------
The page is for a trainer who has never read the spec. It is one self-contained HTML file —
inline CSS and inline SVG, no script, no font, no URL of any kind — so it opens from a mail
attachment or a CI artifact without a network.

Layout: a header (scenario, verdict with a one-line reason, missed seconds by cause, the
``expect:`` outcome), a legend, then one *lane* per camera on a shared time axis. Each lane
has six rows, top to bottom:

* ``state``     — what the camera reported: docked / standby / pre_buffer / recording / off;
* ``required``  — ground truth: when policy required recording (activity + ``post_s``), and,
  in pale purple with a dashed edge, when a prohibited activity was open;
* ``footage``   — every recording the camera made; the part that came from the pre-event
  buffer is hatched, segment rollovers are thin white cuts; seconds recorded while a
  prohibited activity was open with nothing to justify them are solid purple, and footage
  that cannot exist (P-NOPHANTOM) is outlined in dashed violet, labelled with its kind;
* ``missed``    — required seconds no footage covers, one red hue per cause, labelled;
* ``messages``  — inbound messages as they reached the camera (hollow = refused);
* ``alerts``    — what the camera announced, as downward triangles.

Each miss also tints the whole lane behind the rows, so the eye finds it from across the room
and reads down through state and footage to see why. Every mark carries a ``<title>`` (shown
on hover) with exact times.

Scale: the plot is a fixed width, so a 12-hour shift is ~30 s per pixel. Marks are never drawn
narrower than :data:`MIN_MARK_PX` (a 1 s late-trigger gap must stay visible), text is drawn
inside a bar only where it fits, and point labels are placed greedily left to right, skipped
when they would overlap the previous one (the hover text and the tables below still have
every detail). A required window is never nameless: too short for its name, it shows its id,
inside or just right of the bar, or at least an ellipsis (see :func:`_window_label`). Tick
spacing is the smallest "round" step that leaves room for an ``HH:MM:SS`` label.

Colour means fault only where there is one: each camera's summary line is red when the
controller lost seconds or a miss went unannounced, amber when every missed second is
explained, green when nothing was missed (:func:`sim.views.model.miss_tone`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from html import escape

from controller.spans import union
from sim.world.oracle import CAUSES

from .model import CameraView, Inbound, RunView, fmt_duration, fmt_hms, live_summary, miss_tone

__all__ = [
    "CAUSE_COLOURS",
    "CAUSE_MEANING",
    "MIN_MARK_PX",
    "STATE_COLOURS",
    "SUMMARY_COLOURS",
    "render_timeline",
    "tick_step",
]

STATE_COLOURS: dict[str, str] = {
    "docked": "#78909c",
    "standby": "#ffb300",
    "pre_buffer": "#81d4fa",
    "recording": "#2e7d32",
    "off": "#212121",
}
#: Red-family hues, darkest for physical causes, brightest for a controller defect.
CAUSE_COLOURS: dict[str, str] = {
    "controller": "#ff1744",
    "late_trigger": "#ff6d00",
    "not_ready": "#ff8a80",
    "docked": "#b71c1c",
    "battery": "#6d0019",
    "storage": "#c2185b",
    "bus": "#e57373",
    "deactivated": "#a1887f",
}
CAUSE_MEANING: dict[str, str] = {
    "controller": "the controller could have recorded and did not (a defect)",
    "late_trigger": "the trigger arrived after the pre-event buffer could reach back",
    "not_ready": "the camera was still booting after being undocked",
    "docked": "the camera was in its dock",
    "battery": "the battery was empty (camera off)",
    "storage": "device storage was full",
    "bus": "the trigger message was never delivered",
    "deactivated": "recording was paused by an allowed deactivation",
}
ALERT_COLOURS: dict[str, str] = {
    "missed_required_recording": "#d50000",
    "late_trigger": "#ff6d00",
    "low_battery": "#ffab00",
    "battery_empty": "#212121",
    "storage_full": "#c2185b",
}
#: The camera summary line: red only for what fails the verdict (see :func:`miss_tone`).
SUMMARY_COLOURS: dict[str, str] = {"fault": "#c62828", "excused": "#8a5300", "none": "#2e7d32"}
REQUIRED_COLOUR = "#3949ab"
NESTED_COLOUR = "#9fa8da"  # a window inside another, drawn thinner and lighter
FOOTAGE_COLOUR = "#43a047"
BUFFER_COLOUR = "#a5d6a7"
#: Footage that should not be there (P-PRIVACY, P-NOPHANTOM), and the prohibited activities.
PROHIBITED_COLOUR = "#6a1b9a"
PROHIBITED_WINDOW_COLOUR = "#e1bee7"
PHANTOM_COLOUR = "#aa00ff"

MIN_MARK_PX = 3.0
WIDTH = 1560
LEFT = 110  # room for row labels
RIGHT = 24
PLOT_W = WIDTH - LEFT - RIGHT
AXIS_H = 34
LANE_HEAD_H = 26
ROW_H = 22
ROWS = ("state", "required", "footage", "missed", "messages", "alerts")
LANE_GAP = 14
CHAR_PX = 6.3  # average glyph width of the 11 px sans-serif used in bars
_NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
               43200, 86400)


def tick_step(duration_s: float, plot_px: float, min_gap_px: float = 90.0) -> int:
    """The smallest round step (seconds) whose ticks stand at least ``min_gap_px`` apart."""
    if duration_s <= 0:
        return 1
    px_per_s = plot_px / duration_s
    for step in _NICE_STEPS:
        if step * px_per_s >= min_gap_px:
            return step
    return _NICE_STEPS[-1]


class _Scale:
    def __init__(self, end: float) -> None:
        self.end = end if end > 0 else 1.0
        self.px = PLOT_W / self.end

    def x(self, t: float) -> float:
        return LEFT + max(0.0, min(t, self.end)) * self.px

    def span(self, a: float, b: float, min_px: float = MIN_MARK_PX) -> tuple[float, float]:
        """Left edge and width of ``[a, b]``, widened about its centre to ``min_px``."""
        x0, x1 = self.x(a), self.x(b)
        w = x1 - x0
        if w < min_px:
            mid = (x0 + x1) / 2
            x0 = max(LEFT, min(mid - min_px / 2, LEFT + PLOT_W - min_px))
            w = min_px
        return x0, w


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _text_fits(text: str, width: float, pad: float = 8.0) -> bool:
    return len(text) * CHAR_PX + pad <= width


def _rect(x: float, y: float, w: float, h: float, fill: str, title: str, cls: str = "",
          extra: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return (f'<rect{c} x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" fill="{fill}"'
            f'{extra}><title>{escape(title)}</title></rect>')


def _label(x: float, y: float, text: str, fill: str = "#fff", anchor: str = "start",
           cls: str = "lbl") -> str:
    return (f'<text class="{cls}" x="{_f(x)}" y="{_f(y)}" fill="{fill}" '
            f'text-anchor="{anchor}">{escape(text)}</text>')


def _ink_on(fill: str) -> str:
    """Black or white text, whichever reads on ``fill``."""
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "#111" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#fff"


class _PointLabels:
    """Greedy left-to-right label placement in one row of point marks.

    A label goes right of its mark and must end before the next mark further right and after
    the previous label; otherwise the first shorter alternative that fits is used, or none.
    """

    def __init__(self, xs: list[float]) -> None:
        self.xs = sorted(xs)
        self.right = -1e9

    def place(self, x: float, *texts: str) -> str | None:
        i = bisect.bisect_right(self.xs, x + 3)
        limit = self.xs[i] - 5 if i < len(self.xs) else LEFT + PLOT_W + RIGHT
        if x + 6 < self.right + 4:
            return None
        for text in texts:
            width = len(text) * CHAR_PX
            if x + 6 + width <= limit:
                self.right = x + 6 + width
                return text
        return None


def _window_label(activity: str, activity_id: str, title: str, x: float, w: float, y: float,
                  outer_starts: list[float]) -> list[str]:
    """The label of a required window whose bar spans ``x``..``x + w`` in the row at ``y``.

    A short window in a long plot must not go nameless: the first that fits of the full
    ``activity id`` inside the bar, the id alone inside it, the id (or the full text) just
    right of the bar — up to where the next window starts — and an ellipsis inside it. The
    bar's ``<title>`` always holds the full text; a label outside the bar carries it too,
    since it is the thing under the pointer there.
    """
    full = f"{activity} {activity_id}"
    for text in (full, activity_id):
        if _text_fits(text, w):
            return [_label(x + 4, y + 12, text, cls="lbl inbar")]
    after = x + w + 3
    i = bisect.bisect_right(outer_starts, x + w)
    limit = outer_starts[i] - 4 if i < len(outer_starts) else LEFT + PLOT_W + RIGHT
    for text in (activity_id, full):
        if after + len(text) * CHAR_PX <= limit:
            return [f'<text class="side" x="{_f(after)}" y="{_f(y + 12)}" '
                    f'fill="{REQUIRED_COLOUR}">{escape(text)}<title>{escape(title)}</title>'
                    "</text>"]
    if _text_fits("…", w, pad=4):
        return [_label(x + max(1.0, (w - CHAR_PX) / 2), y + 12, "…", cls="lbl inbar")]
    return []


def _axis(scale: _Scale, top: float, bottom: float) -> list[str]:
    step = tick_step(scale.end, PLOT_W)
    out = [f'<line class="axis" x1="{LEFT}" y1="{_f(top)}" x2="{LEFT + PLOT_W}" '
           f'y2="{_f(top)}"/>']
    t = 0
    while t <= scale.end + 1e-9:
        x = scale.x(t)
        out.append(f'<line class="grid" x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" '
                   f'y2="{_f(bottom)}"/>')
        out.append(f'<line class="axis" x1="{_f(x)}" y1="{_f(top - 5)}" x2="{_f(x)}" '
                   f'y2="{_f(top)}"/>')
        anchor = "end" if x > LEFT + PLOT_W - 30 else "start" if t == 0 else "middle"
        out.append(_label(x, top - 9, fmt_hms(t), "#333", anchor, "tick"))
        t += step
    return out


def _lane(cam: CameraView, scale: _Scale, top: float, index: int) -> list[str]:
    """One camera's lane; returns SVG elements. ``top`` is the lane's upper edge."""
    rows = {name: top + LANE_HEAD_H + i * ROW_H for i, name in enumerate(ROWS)}
    height = LANE_HEAD_H + len(ROWS) * ROW_H
    bar_h = ROW_H - 6
    out = [f'<g class="lane" data-camera="{escape(cam.camera_id)}">']
    out.append(f'<rect class="lane-bg" x="0" y="{_f(top)}" width="{WIDTH}" '
               f'height="{height}" fill="{"#fafafa" if index % 2 == 0 else "#f3f4f6"}"/>')
    # Miss tints behind everything, so the eye finds them first.
    for m in cam.misses:
        x, w = scale.span(m.start, m.end)
        out.append(f'<rect class="miss-tint" x="{_f(x)}" y="{_f(top + LANE_HEAD_H)}" '
                   f'width="{_f(w)}" height="{len(ROWS) * ROW_H}" '
                   f'fill="{CAUSE_COLOURS.get(m.cause, "#f00")}" fill-opacity="0.13"/>')
    for a, b in union((f.start, f.end) for f in cam.findings):
        x, w = scale.span(a, b)
        out.append(f'<rect class="finding-tint" x="{_f(x)}" y="{_f(top + LANE_HEAD_H)}" '
                   f'width="{_f(w)}" height="{len(ROWS) * ROW_H}" fill="{PHANTOM_COLOUR}" '
                   'fill-opacity="0.10"/>')
    missed_total = cam.missed_s.get("total", 0.0)
    by_cause = ", ".join(f"{c} {fmt_duration(cam.missed_s[c])}" for c in CAUSES
                         if cam.missed_s.get(c, 0.0) > 0)
    summary = (f"final state {cam.final_state} · {len(cam.footage)} recording(s) · "
               f"{len(cam.alerts)} alert(s) · {cam.refused} refused · missed "
               + (fmt_duration(missed_total) + f" ({by_cause})" if missed_total > 0 else "nothing"))
    out.append(f'<text class="cam" x="8" y="{_f(top + 17)}">{escape(cam.camera_id)}</text>')
    tone = miss_tone(cam.missed_s, [*cam.unannounced, *(p for _, p in cam.said)])
    if tone == "excused":
        summary += " · every second explained"
    elif cam.unannounced:
        summary += f" · {len(cam.unannounced)} not announced"
    if cam.prohibited_s > 0:
        summary += f" · recorded {fmt_duration(cam.prohibited_s)} while prohibited"
    phantoms = [f for f in cam.findings if f.what == "phantom"]
    if phantoms:
        summary += f" · {len(phantoms)} phantom finding(s) ({fmt_duration(cam.phantom_s)})"
    if cam.stopped:
        summary += f" · {len(cam.stopped)} recording(s) stopped by a signal or duplicate"
    if cam.said:
        summary += f" · {len(cam.said)} untrue or wrong statement(s)"
    if cam.footage_fault:
        tone = "fault"
    out.append(_label(LEFT, top + 17, summary, SUMMARY_COLOURS[tone], "start",
                      f"camsum camsum-{tone}"))
    for name, y in rows.items():
        out.append(_label(LEFT - 8, y + ROW_H / 2 + 4, name, "#555", "end", "row"))
        out.append(f'<line class="rowline" x1="{LEFT}" y1="{_f(y + ROW_H)}" '
                   f'x2="{LEFT + PLOT_W}" y2="{_f(y + ROW_H)}"/>')

    # state bands: contiguous, so only the state name needs room
    y = rows["state"] + 2
    for s in cam.states:
        if s.end <= s.start:
            continue
        x, w = scale.span(s.start, s.end, 1.0)
        fill = STATE_COLOURS.get(s.state, "#999")
        name = s.state + (" (storage full)" if s.storage_full else "")
        title = f"{name}: {fmt_hms(s.start)}-{fmt_hms(s.end)} ({fmt_duration(s.end - s.start)})"
        extra = ' stroke="#c2185b" stroke-width="2"' if s.storage_full else ""
        out.append(_rect(x, y, w, ROW_H - 4, fill, title, f"state state-{s.state}", extra))
        if _text_fits(name, w):
            out.append(_label(x + 4, y + 13, name, _ink_on(fill)))

    # prohibited activities first, under the required windows (required beats prohibited)
    y = rows["required"] + 3
    for aid, activity, a, b in cam.prohibited_windows:
        x, w = scale.span(a, b)
        title = (f"prohibited: {activity} {aid} {fmt_hms(a)}-{fmt_hms(b)} "
                 f"({fmt_duration(b - a)}); recording it needs another reason")
        out.append(_rect(x, y, w, bar_h, PROHIBITED_WINDOW_COLOUR, title, "prohibited-window",
                         f' stroke="{PROHIBITED_COLOUR}" stroke-width="1" stroke-dasharray="4 2"'))
        text = f"prohibited: {activity}"
        if _text_fits(text, w):
            out.append(_label(x + 4, y + 12, text, PROHIBITED_COLOUR))

    # required windows; overlapping windows share the row, drawn thinner when nested
    nested_flags = [any(o.start <= win.start and win.end <= o.end for o in cam.windows[:i])
                    for i, win in enumerate(cam.windows)]
    outer_starts = sorted(scale.x(win.start) for win, nested in
                          zip(cam.windows, nested_flags, strict=True) if not nested)
    window_labels: list[str] = []  # drawn after every bar, so a nested bar cannot hide one
    for win, nested in zip(cam.windows, nested_flags, strict=True):
        x, w = scale.span(win.start, win.end)
        yy, hh = (y + 4, bar_h - 8) if nested else (y, bar_h)
        delivered = ("trigger never delivered" if win.delivered is None
                     else f"trigger arrived {fmt_hms(win.delivered)}")
        title = (f"required: {win.activity} {win.activity_id} {fmt_hms(win.start)}-"
                 f"{fmt_hms(win.end)} ({fmt_duration(win.end - win.start)}); {delivered}")
        out.append(_rect(x, yy, w, hh, NESTED_COLOUR if nested else REQUIRED_COLOUR, title,
                         "required",
                         ' stroke="#fff" stroke-width="0.5"'))
        if not nested:
            window_labels.extend(_window_label(win.activity, win.activity_id, title, x, w, y,
                                               outer_starts))
    out.extend(window_labels)

    # footage: buffer part hatched, the rest solid, segment cuts in white
    y = rows["footage"] + 3
    for f in cam.footage:
        x, w = scale.span(f.start, f.end)
        reasons = ", ".join(f.reasons) or "-"
        title = (f"recording {f.recording} (incident {f.incident}) {fmt_hms(f.start)}-"
                 f"{fmt_hms(f.end)}{' (open at end)' if f.open else ''}; buffer "
                 f"{fmt_duration(f.buffer_end - f.start)}; reasons {reasons}; "
                 f"{len(f.segments)} segment(s)")
        out.append(_rect(x, y, w, bar_h, FOOTAGE_COLOUR, title, "footage"))
        if f.buffer_end > f.start:
            bx, bw = scale.span(f.start, f.buffer_end, 2.0)
            out.append(_rect(bx, y, bw, bar_h, "url(#buffer-hatch)",
                             f"pre-event buffer {fmt_hms(f.start)}-{fmt_hms(f.buffer_end)} "
                             f"({fmt_duration(f.buffer_end - f.start)}) of {f.recording}",
                             "buffer"))
        for a, _b in f.segments[1:]:
            sx = scale.x(a)
            out.append(f'<line class="segcut" x1="{_f(sx)}" y1="{_f(y)}" x2="{_f(sx)}" '
                       f'y2="{_f(y + bar_h)}"/>')
        text = f"rec {f.incident}"
        bw_px = scale.x(f.buffer_end) - x
        if _text_fits(text, w - bw_px):
            out.append(_label(x + bw_px + 4, y + 12, text))
    # what should not be there, over the footage it is part of
    labelled_to = 0.0
    for fnd in cam.findings:
        x, w = scale.span(fnd.start, fnd.end)
        title = (f"{fnd.label.upper()} {fmt_hms(fnd.start)}-{fmt_hms(fnd.end)} "
                 f"({fmt_duration(fnd.end - fnd.start)}) in {fnd.recording}: {fnd.detail}")
        if fnd.what == "prohibited":
            out.append(_rect(x, y, w, bar_h, PROHIBITED_COLOUR, title, "prohibited",
                             ' stroke="#fff" stroke-width="0.8"'))
        else:
            out.append(_rect(x, y - 1, w, bar_h + 2, "#fff", title, f"phantom phantom-{fnd.kind}",
                             f' fill-opacity="0.55" stroke="{PHANTOM_COLOUR}" stroke-width="2" '
                             'stroke-dasharray="3 2"'))
        # one label per place: findings that overlap keep theirs in the hover text and table
        if _text_fits(fnd.label, w) and x >= labelled_to:
            ink = "#fff" if fnd.what == "prohibited" else PHANTOM_COLOUR
            out.append(_label(x + 4, y + 12, fnd.label, ink))
            labelled_to = x + w

    # misses, labelled with cause and length where they fit
    y = rows["missed"] + 3
    for m in cam.misses:
        x, w = scale.span(m.start, m.end)
        colour = CAUSE_COLOURS.get(m.cause, "#f00")
        acts = ", ".join(m.activity_ids)
        title = (f"MISSED {fmt_duration(m.end - m.start)} {fmt_hms(m.start)}-{fmt_hms(m.end)}"
                 f" of {acts}: cause {m.cause} — {CAUSE_MEANING.get(m.cause, '')}")
        out.append(_rect(x, y, w, bar_h, colour, title, f"miss miss-{m.cause}",
                         ' stroke="#7f0000" stroke-width="0.8"'))
        for text in (f"missed {fmt_duration(m.end - m.start)} — {m.cause}", m.cause):
            if _text_fits(text, w):
                out.append(_label(x + 4, y + 12, text, _ink_on(colour)))
                break

    # inbound messages
    y = rows["messages"] + ROW_H / 2
    labels = _PointLabels([scale.x(msg.t) for msg in cam.inbound])
    for msg in cam.inbound:
        x = scale.x(msg.t)
        refused = msg.ok is False
        answer = ("refused: " + (msg.error or "?") + _why(msg)) if refused else (
            "accepted" if msg.ok else "no answer")
        late = f", happened {fmt_hms(msg.ts)}" if msg.ts is not None and msg.ts < msg.t - 0.5 \
            else ""
        title = (f"{fmt_hms(msg.t)} message {msg.label}{' (repeat)' if msg.repeat else ''}"
                 f"{late}: {answer}")
        if msg.ts is not None and msg.ts < msg.t - 0.5 and not msg.repeat:
            # A late message: a dashed line from when it happened to when it arrived.
            x0 = scale.x(msg.ts)
            out.append(f'<line class="lag" x1="{_f(x0)}" y1="{_f(y)}" x2="{_f(x)}" y2="{_f(y)}"/>'
                       f'<line class="lag-start" x1="{_f(x0)}" y1="{_f(y - 5)}" x2="{_f(x0)}" '
                       f'y2="{_f(y + 5)}"><title>{escape(msg.label)} happened at '
                       f'{fmt_hms(msg.ts)}, arrived {fmt_hms(msg.t)}</title></line>')
        fill = "#fff" if refused else "#263238"
        stroke = "#d50000" if refused else "#263238"
        out.append(f'<circle class="msg{" refused" if refused else ""}" cx="{_f(x)}" '
                   f'cy="{_f(y)}" r="4" fill="{fill}" stroke="{stroke}" stroke-width="1.5">'
                   f'<title>{escape(title)}</title></circle>')
        mark = " ✗" if refused else ""
        placed = None if msg.repeat else labels.place(x, msg.label + mark,
                                                      (msg.detail or msg.event) + mark)
        if placed is not None:
            out.append(_label(x + 6, y + 4, placed, "#263238", "start", "pt"))

    # alerts
    y = rows["alerts"] + 3
    labels = _PointLabels([scale.x(al.t) for al in cam.alerts])
    for al in cam.alerts:
        x = scale.x(al.t)
        colour = ALERT_COLOURS.get(al.kind, "#d50000")
        pts = f"{_f(x - 6)},{_f(y)} {_f(x + 6)},{_f(y)} {_f(x)},{_f(y + bar_h)}"
        out.append(f'<polygon class="alert" points="{pts}" fill="{colour}" stroke="#fff" '
                   f'stroke-width="0.8"><title>{escape(al.description)}</title></polygon>')
        placed = labels.place(x + 2, al.label, al.cause or al.kind.split("_")[0])
        if placed is not None:
            out.append(_label(x + 8, y + 12, placed, colour, "start", "pt"))
    out.append("</g>")
    return out


def _defs(pattern_id: str = "buffer-hatch") -> str:
    return (
        "<defs>"
        f'<pattern id="{pattern_id}" patternUnits="userSpaceOnUse" width="6" height="6" '
        'patternTransform="rotate(45)">'
        f'<rect width="6" height="6" fill="{BUFFER_COLOUR}"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{FOOTAGE_COLOUR}" stroke-width="2.5"/>'
        "</pattern></defs>"
    )


def _svg(view: RunView) -> str:
    scale = _Scale(view.end)
    lane_h = LANE_HEAD_H + len(ROWS) * ROW_H
    height = AXIS_H + len(view.cameras) * (lane_h + LANE_GAP) + 8
    body: list[str] = []
    top = AXIS_H
    for i, cam in enumerate(view.cameras):
        body.extend(_lane(cam, scale, top, i))
        top += lane_h + LANE_GAP
    axis = _axis(scale, AXIS_H - 2, height - 8)
    return (
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" role="img" aria-label="timeline of {escape(view.name)}">'
        + _defs()
        + "".join(body)
        + "".join(axis)
        + "</svg>"
    )


def _swatch(fill: str, extra: str = "") -> str:
    return (f'<svg class="sw" width="22" height="12"><rect width="22" height="12" '
            f'fill="{fill}"{extra}/></svg>')


_DASHED = f' stroke="{PROHIBITED_COLOUR}" stroke-width="1" stroke-dasharray="4 2"'
_PHANTOM_EDGE = f' stroke="{PHANTOM_COLOUR}" stroke-width="2" stroke-dasharray="3 2"'


def _legend() -> str:
    items = [f"<span>{_swatch(c)}{escape(s)}</span>" for s, c in STATE_COLOURS.items()]
    items.append(f"<span>{_swatch(REQUIRED_COLOUR)}required window</span>")
    items.append(f"<span>{_swatch(FOOTAGE_COLOUR)}footage recorded</span>")
    items.append('<span><svg class="sw" width="22" height="12">' + _defs("buffer-hatch-key")
                 + '<rect width="22" height="12" fill="url(#buffer-hatch-key)"/></svg>'
                 "footage from pre-event buffer</span>")
    items.append(f"<span>{_swatch(PROHIBITED_WINDOW_COLOUR, _DASHED)}prohibited activity</span>")
    items.append(f"<span>{_swatch(PROHIBITED_COLOUR)}recorded while prohibited</span>")
    items.append(f'<span>{_swatch("#fff", _PHANTOM_EDGE)}footage that cannot exist</span>')
    causes = [f'<span title="{escape(CAUSE_MEANING[c])}">{_swatch(CAUSE_COLOURS[c])}'
              f"missed: {escape(c)}</span>" for c in CAUSES]
    marks = [
        '<span><svg class="sw" width="14" height="12"><circle cx="7" cy="6" r="4" '
        'fill="#263238"/></svg>message received</span>',
        '<span><svg class="sw" width="14" height="12"><circle cx="7" cy="6" r="4" fill="#fff" '
        'stroke="#d50000" stroke-width="1.5"/></svg>message refused</span>',
        '<span><svg class="sw" width="26" height="12"><line x1="2" y1="6" x2="20" y2="6" '
        'class="lag"/><line x1="2" y1="1" x2="2" y2="11" class="lag-start"/><circle cx="21" '
        'cy="6" r="4" fill="#263238"/></svg>message delayed (happened, arrived)</span>',
        '<span><svg class="sw" width="14" height="12"><polygon points="1,1 13,1 7,11" '
        'fill="#d50000"/></svg>alert from the camera</span>',
    ]
    return (
        '<div class="legend"><div><b>Camera state</b> ' + " ".join(items[:5]) + "</div>"
        "<div><b>Footage</b> " + " ".join(items[5:]) + " " + " ".join(marks) + "</div>"
        "<div><b>Missed</b> " + " ".join(causes) + "</div></div>"
    )


def _header(view: RunView) -> str:
    ok = view.verdict == "pass"
    total = view.missed_s.get("total", 0.0)
    controller = view.missed_s.get("controller", 0.0)
    if ok:
        why = ("no required second was lost through the controller's fault, and every other "
               "miss was announced by the camera.")
    elif controller > 0:
        why = f"the controller failed to record {fmt_duration(controller)} it could have recorded."
    elif any(f.what == "phantom" for c in view.cameras for f in c.findings):
        why = "a camera shows footage it could not have captured."
    elif view.prohibited_s > 0:
        why = f"a camera recorded {fmt_duration(view.prohibited_s)} that the policy prohibits."
    elif any(c.stopped for c in view.cameras):
        why = "a device signal or a repeated message stopped a recording."
    else:
        why = "a miss was not announced by the alert the policy requires."
    causes = [f'<span class="chip" style="background:{CAUSE_COLOURS[c]};color:'
              f'{_ink_on(CAUSE_COLOURS[c])}">{escape(c)} {escape(fmt_duration(view.missed_s[c]))}'
              "</span>" for c in CAUSES if view.missed_s.get(c, 0.0) > 0]
    missed = (f"<b>{escape(fmt_duration(total))}</b> of required footage missed: " + " ".join(causes)
              if total > 0 else "<b>No required footage missed.</b>")
    exp = view.expect
    expect = "" if exp is None else (
        ' · expectations <b class="ok">met</b>' if exp.get("ok") else
        ' · expectations <b class="bad">not met</b>: '
        + escape("; ".join(str(f) for f in exp.get("failures", []))))
    desc = f'<p class="desc">{escape(view.description.strip())}</p>' if view.description.strip() \
        else ""
    if view.live is not None:
        # Styled in place, so a simulated run's page stays byte for byte what it was.
        desc += ('<div class="live" style="margin:6px 0;padding:4px 10px;border-left:4px solid '
                 '#3949ab;background:#f3f4fb;color:#333">') + "".join(
            f"<p>{escape(line)}</p>" for line in live_summary(view.live)) + "</div>"
    return (
        f'<header><h1>{escape(view.name)}</h1>'
        f'<div class="verdict {"pass" if ok else "fail"}">{"PASS" if ok else "FAIL"}</div>'
        f'<p class="why">{"Pass" if ok else "Fail"}: {escape(why)}</p>'
        f'<p class="missed">{missed}</p>'
        f'<p class="footage-judged">{_footage_line(view)}</p>'
        f'<p class="meta">policy {escape(view.policy)} · seed {view.seed} · '
        f'duration {fmt_hms(view.end)} · {len(view.cameras)} camera(s){expect}</p>'
        f"{desc}</header>"
    )


def _footage_line(view: RunView) -> str:
    """What the footage itself shows (P-PRIVACY, P-NOPHANTOM), always said."""
    phantoms = sum(1 for c in view.cameras for f in c.findings if f.what == "phantom")
    prohibited = (f'<b class="bad">{escape(fmt_duration(view.prohibited_s))}</b> recorded while '
                  "the policy prohibits it" if view.prohibited_s > 0
                  else "Nothing recorded that the policy prohibits")
    phantom = (f'<b class="bad">{phantoms}</b> stretch(es) of footage that cannot exist '
               f"({escape(fmt_duration(view.phantom_s))})" if phantoms
               else "no footage that could not exist")
    return f"{prohibited}; {phantom}."


def _table(caption: str, head: Iterable[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<h2>{escape(caption)}</h2><p class=\"none\">{escape(empty)}</p>"
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<h2>{escape(caption)}</h2><table><tr>{th}</tr>{trs}</table>"


def _tables(view: RunView) -> str:
    misses, alerts, recs, msgs = [], [], [], []
    for cam in view.cameras:
        cid = escape(cam.camera_id)
        for m in cam.misses:
            colour = CAUSE_COLOURS.get(m.cause, "#f00")
            misses.append([cid, fmt_hms(m.start), fmt_hms(m.end), escape(fmt_duration(m.end - m.start)),
                           f'<span class="chip" style="background:{colour};color:{_ink_on(colour)}">'
                           f"{escape(m.cause)}</span>",
                           escape(", ".join(m.activity_ids)), escape(CAUSE_MEANING.get(m.cause, ""))])
        for a in cam.alerts:
            span = f"{fmt_hms(a.span[0])}-{fmt_hms(a.span[1])}" if a.span else ""
            alerts.append([cid, fmt_hms(a.t), escape(a.kind), escape(a.cause or ""),
                           escape(a.activity_id or ""), span])
        for f in cam.footage:
            recs.append([cid, escape(f.incident), fmt_hms(f.start), fmt_hms(f.end),
                         escape(fmt_duration(f.buffer_end - f.start)), str(len(f.segments)),
                         escape(", ".join(f.reasons)), "yes" if f.open else ""])
        for msg in cam.inbound:
            answer = "refused: " + escape((msg.error or "?") + _why(msg)) if msg.ok is False else (
                "accepted" if msg.ok else "")
            msgs.append([cid, fmt_hms(msg.t), escape(msg.label), escape(msg.msg_id or ""),
                         "repeat" if msg.repeat else "", answer])
    unannounced = [f"<li>{escape(c.camera_id)}: {escape(u)}</li>"
                   for c in view.cameras for u in c.unannounced]
    findings = [[escape(c.camera_id), fmt_hms(f.start), fmt_hms(f.end),
                 escape(fmt_duration(f.end - f.start)), escape(f.label), escape(f.recording),
                 escape(f.detail)] for c in view.cameras for f in c.findings]
    stopped = [f"<li>{escape(c.camera_id)}: {escape(u)}</li>"
               for c in view.cameras for u in c.stopped]
    out = [_table("Missed required footage",
                  ("camera", "from", "to", "length", "cause", "activity", "what it means"),
                  misses, "Nothing required was missed.")]
    if unannounced:
        out.append("<h2>Misses the camera did not announce</h2><ul>" + "".join(unannounced)
                   + "</ul>")
    said = [f"<li>{escape(c.camera_id)}: {escape(label)}: {escape(p)}</li>"
            for c in view.cameras for label, p in c.said]
    if said:
        out.append("<h2>What the camera said that the spec contradicts</h2><ul>" + "".join(said)
                   + "</ul>")
    if findings:
        out.append(_table("Footage that should not be there",
                          ("camera", "from", "to", "length", "what", "recording", "why"),
                          findings, ""))
    if stopped:
        out.append("<h2>Recordings stopped by a signal or a repeated message</h2><ul>"
                   + "".join(stopped) + "</ul>")
    out.append(_table("Alerts", ("camera", "at", "kind", "cause", "activity", "span"), alerts,
                      "The cameras raised no alert."))
    out.append(_table("Recordings", ("camera", "incident", "start", "end", "from buffer",
                                     "segments", "reasons", "open at end"), recs,
                      "No recording was made."))
    out.append(f"<details><summary>Messages received ({len(msgs)})</summary>"
               + _table("Messages", ("camera", "at", "message", "id", "", "answer"), msgs,
                        "No message was delivered.") + "</details>")
    return "".join(out)


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:16px 20px;
color:#1b1b1b;background:#fff}
header{position:relative;margin-bottom:8px}
h1{font-size:22px;margin:0 120px 4px 0}
h2{font-size:16px;margin:22px 0 6px}
.verdict{position:absolute;right:0;top:0;font:bold 22px system-ui,Arial,sans-serif;
padding:4px 16px;border-radius:6px;color:#fff}
.verdict.pass{background:#2e7d32}.verdict.fail{background:#c62828}
p{margin:2px 0}.why{font-weight:600}.meta,.desc{color:#555}.desc{max-width:1100px}
.ok{color:#2e7d32}.bad{color:#c62828}
.chip{display:inline-block;padding:0 6px;border-radius:4px;margin:0 2px;font-size:13px}
.legend{font-size:12.5px;color:#333;margin:10px 0 6px;display:grid;gap:3px}
.legend span{margin-right:12px;white-space:nowrap}
.sw{vertical-align:middle;margin-right:4px}
.chart{overflow-x:auto}
svg.timeline{display:block;max-width:100%;height:auto;font-family:system-ui,Arial,sans-serif}
svg .lbl{font-size:11px;pointer-events:none}
svg .pt{font-size:10.5px;pointer-events:none}
svg .tick{font-size:11px}
svg .row{font-size:11px}
svg .cam{font-size:14px;font-weight:bold;fill:#111}
svg .camsum{font-size:12px}
svg .side{font-size:10.5px}
svg .inbar{paint-order:stroke;stroke:#3949ab;stroke-width:3px;stroke-linejoin:round}
svg .grid{stroke:#000;stroke-opacity:.09}
svg .axis{stroke:#555}
svg .rowline{stroke:#000;stroke-opacity:.06}
svg .segcut{stroke:#fff;stroke-width:1.5}
.lag{stroke:#263238;stroke-width:1.2;stroke-dasharray:3 2}.lag-start{stroke:#263238;stroke-width:1.5}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f5}
.none{color:#555}
"""


def _why(msg: Inbound) -> str:
    """A refusal's meaning and the allowed words, after its code."""
    text = f" — {msg.meaning}" if msg.meaning else ""
    if msg.allowed:
        text += f"; allowed: {', '.join(msg.allowed)}"
    return text


def render_timeline(view: RunView) -> str:
    """The whole page, as one self-contained HTML document."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(view.name)} — timeline</title>"
        f"<style>{_CSS}</style></head><body>"
        + _header(view)
        + _legend()
        + f'<div class="chart">{_svg(view)}</div>'
        + _tables(view)
        + "</body></html>\n"
    )
