"""The timeline for a projector: read at 1024x768 from the back of a room.

Theory of operation
-------------------
The ordinary timeline (:mod:`sim.views.timeline`) is drawn 1560 px wide for a desk; shrunk to a
1024 px projector its 11 px text becomes 7 px and six red hues blur into one. This page is a
second drawing of the same :class:`~sim.views.model.RunView`, not a scaled copy:

* **Size.** The chart is :data:`WIDTH` (1000) px wide, drawn 1:1 on a 1024 px screen, and no
  text on the page is smaller than :data:`MIN_FONT_PX` (16 px). Fewer, taller rows: state,
  required, footage, missed, and one *events* row for what people did and what the camera said.
* **Causes by pattern as well as colour.** Every cause has its own fill pattern (stripes one
  way or the other, dots, grid, waves, ...) over its colour, so two neighbouring causes differ
  on a washed-out projector and for a colour-blind viewer; a controller defect stays solid red.
* **Only what occurs.** The legend lists the states, causes and marks this run shows, nothing
  else, so it stays one or two lines and every entry answers a question about the picture.
* **Every miss is named.** A miss wide enough holds its label; a short one (a 5 s boot, a 60 s
  late trigger in a 12-hour day) gets its label in the line under the bars, left to right,
  joined to the bar by a tick, and nudged right past the previous label so none overlap.
* **People's actions on the chart.** An allowed deactivation is a bracket over the paused
  span, labelled with its reason and actor; a refused message is a red ✗ labelled with what
  was refused and why (and, for a word the policy does not know, the word it probably meant);
  alerts are triangles.

Like the desk timeline it is one self-contained file: inline CSS and SVG, no script, no URL.
"""

from __future__ import annotations

from html import escape

from sim.world.oracle import CAUSES

from .model import CameraView, Inbound, RunView, fmt_duration, fmt_hms, miss_tone
from .timeline import (
    CAUSE_COLOURS,
    CAUSE_MEANING,
    FOOTAGE_COLOUR,
    PHANTOM_COLOUR,
    PROHIBITED_COLOUR,
    REQUIRED_COLOUR,
    STATE_COLOURS,
    SUMMARY_COLOURS,
    tick_step,
)

__all__ = ["CAUSE_PATTERNS", "MIN_FONT_PX", "WIDTH", "chart_svg", "render_projector"]

WIDTH = 1000
MIN_FONT_PX = 16
LEFT = 104
RIGHT = 16
PLOT_W = WIDTH - LEFT - RIGHT
AXIS_H = 36
HEAD_H = 30
ROW_H = 34
LABEL_LINE_H = 24  # under the missed bars: names of misses too short to hold them
EVENTS_H = 78  # marks, then up to three lines of labels
MAX_SHIFT_PX = 120  # how far left of its mark a label may start before a shorter one is tried
LANE_GAP = 18
CHAR_PX = 9.9  # average glyph width of 16 px semi-bold sans-serif (generous: never overlap)
BIG_CHAR_PX = 10.4  # 18 px, used in bars

#: A pattern per cause (SVG drawn over the cause's colour inside a 10 by 10 tile), so causes are
#: told apart without colour. Lines are white at 55% so the colour still reads.
CAUSE_PATTERNS: dict[str, str] = {
    "controller": "",  # solid: a defect must look like nothing else
    "late_trigger": '<path d="M0,10 L10,0 M-2,2 L2,-2 M8,12 L12,8" stroke-width="2.2"/>',
    "not_ready": '<circle cx="5" cy="5" r="2" fill="#fff" fill-opacity="0.6" stroke="none"/>',
    "docked": '<path d="M0,0 L10,10 M-2,8 L2,12 M8,-2 L12,2" stroke-width="2.2"/>',
    "battery": '<path d="M0,3 L10,3 M0,8 L10,8" stroke-width="2"/>',
    "storage": '<path d="M0,5 L10,5 M5,0 L5,10" stroke-width="1.6"/>',
    "bus": '<path d="M0,5 Q2.5,1 5,5 T10,5" fill="none" stroke-width="1.8"/>',
    "deactivated": '<path d="M3,0 L3,10 M8,0 L8,10" stroke-width="2"/>',
}
PAUSE_COLOUR = "#6d4c41"
REFUSED_COLOUR = "#c62828"
ALERT_COLOUR = "#d50000"


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _fits(text: str, width: float, char_px: float = CHAR_PX, pad: float = 10.0) -> bool:
    return len(text) * char_px + pad <= width


def _short(cause: str) -> str:
    return {"late_trigger": "late", "not_ready": "booting", "deactivated": "paused"}.get(cause, cause)


class _Scale:
    def __init__(self, end: float) -> None:
        self.end = end if end > 0 else 1.0
        self.px = PLOT_W / self.end

    def x(self, t: float) -> float:
        return LEFT + max(0.0, min(t, self.end)) * self.px

    def span(self, a: float, b: float, min_px: float = 4.0) -> tuple[float, float]:
        x0, x1 = self.x(a), self.x(b)
        if x1 - x0 < min_px:
            mid = (x0 + x1) / 2
            x0 = max(LEFT, min(mid - min_px / 2, LEFT + PLOT_W - min_px))
            return x0, min_px
        return x0, x1 - x0


class _Line:
    """Greedy left-to-right placement of labels on one text line: each label starts at its
    mark if it can, else just after the previous label; one that would run off the plot is
    moved left to end at the edge, but never further than :data:`MAX_SHIFT_PX` from its mark
    (a label far from its mark names the wrong thing), and never over the previous label."""

    def __init__(self) -> None:
        self.right = -1e9

    def place(self, x: float, text: str, shift: float = MAX_SHIFT_PX) -> float | None:
        width = len(text) * CHAR_PX
        start = max(x, self.right + 12)
        if start + width > WIDTH - 4:
            start = WIDTH - 4 - width
            if start < self.right + 12 or start < 4 or x - start > shift:
                return None
        self.right = start + width
        return start


def _text(x: float, y: float, text: str, cls: str, fill: str = "#111", anchor: str = "start",
          title: str = "") -> str:
    t = f"<title>{escape(title)}</title>" if title else ""
    return (f'<text class="{cls}" x="{_f(x)}" y="{_f(y)}" fill="{fill}" '
            f'text-anchor="{anchor}">{escape(text)}{t}</text>')


def _rect(x: float, y: float, w: float, h: float, fill: str, cls: str, title: str,
          extra: str = "") -> str:
    return (f'<rect class="{cls}" x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" '
            f'fill="{fill}"{extra}><title>{escape(title)}</title></rect>')


def _ink_on(fill: str) -> str:
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "#111" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#fff"


def _defs(prefix: str) -> str:
    out = ["<defs>"]
    for cause, colour in CAUSE_COLOURS.items():
        art = CAUSE_PATTERNS.get(cause, "")
        out.append(f'<pattern id="{prefix}-{cause}" patternUnits="userSpaceOnUse" width="10" '
                   f'height="10"><rect width="10" height="10" fill="{colour}"/>'
                   f'<g stroke="#fff" stroke-opacity="0.55">{art}</g></pattern>')
    out.append(f'<pattern id="{prefix}-buffer" patternUnits="userSpaceOnUse" width="8" height="8" '
               'patternTransform="rotate(45)"><rect width="8" height="8" fill="#a5d6a7"/>'
               f'<line x1="0" y1="0" x2="0" y2="8" stroke="{FOOTAGE_COLOUR}" stroke-width="3"/>'
               "</pattern>")
    out.append("</defs>")
    return "".join(out)


def _fill(prefix: str, cause: str) -> str:
    return f"url(#{prefix}-{cause})" if CAUSE_PATTERNS.get(cause) else CAUSE_COLOURS.get(cause, "#f00")


def _ink(colour: str) -> str:
    """``colour`` darkened until text in it reads on a light lane (labels of light causes)."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    while 0.299 * r + 0.587 * g + 0.114 * b > 110:
        r, g, b = int(r * 0.8), int(g * 0.8), int(b * 0.8)
    return f"#{r:02x}{g:02x}{b:02x}"


def _refusal_label(msg: Inbound) -> str:
    code = (msg.error or "").split(":")[0]
    if msg.event == "deactivate" and code == "reason_not_allowed":
        return f"✗ pause refused: {msg.detail}"
    if msg.event == "button" and code == "required_activity":
        return "✗ stop refused: required"
    return f"✗ {msg.label or 'message'} refused"


def _lane(cam: CameraView, scale: _Scale, top: float, prefix: str, index: int) -> tuple[list[str], float]:
    rows = {"state": top + HEAD_H, "required": top + HEAD_H + ROW_H,
            "footage": top + HEAD_H + 2 * ROW_H, "missed": top + HEAD_H + 3 * ROW_H}
    events_y = rows["missed"] + ROW_H + LABEL_LINE_H
    height = events_y + EVENTS_H - top
    bar_h = ROW_H - 8
    out = [f'<g class="lane" data-camera="{escape(cam.camera_id)}">',
           f'<rect x="0" y="{_f(top)}" width="{WIDTH}" height="{_f(height)}" '
           f'fill="{"#fafafa" if index % 2 == 0 else "#f1f3f5"}"/>']
    tone = miss_tone(cam.missed_s, [*cam.unannounced, *(p for _, p in cam.said)])
    total = cam.missed_s.get("total", 0.0)
    summary = (f"missed {fmt_duration(total)}" if total > 0 else "nothing missed") + (
        f" · {cam.refused} refused" if cam.refused else "") + (
        " · every second explained" if tone == "excused" else
        f" · {len(cam.unannounced)} not announced" if cam.unannounced else "") + (
        f" · prohibited {fmt_duration(cam.prohibited_s)}" if cam.prohibited_s > 0 else "") + (
        " · phantom footage" if any(f.what == "phantom" for f in cam.findings) else "") + (
        f" · {len(cam.said)} untrue or wrong statement(s)" if cam.said else "")
    if cam.footage_fault:
        tone = "fault"
    out.append(_text(8, top + 22, cam.camera_id, "cam"))
    out.append(_text(LEFT, top + 22, summary, "camsum", SUMMARY_COLOURS[tone]))
    for name, y in (*rows.items(), ("events", events_y)):
        out.append(_text(LEFT - 8, y + (ROW_H / 2 + 6 if name != "events" else 20), name, "row",
                         "#444", "end"))

    # state bands
    y = rows["state"] + 3
    for s in cam.states:
        if s.end <= s.start:
            continue
        x, w = scale.span(s.start, s.end, 1.0)
        fill = STATE_COLOURS.get(s.state, "#999")
        name = s.state.replace("_", "-") + (" (full)" if s.storage_full else "")
        out.append(_rect(x, y, w, bar_h, fill, f"state state-{s.state}",
                         f"{s.state}: {fmt_hms(s.start)}-{fmt_hms(s.end)}"))
        if _fits(name, w):
            out.append(_text(x + 5, y + 19, name, "inbar", _ink_on(fill)))

    # required windows; one inside another is drawn thinner, and labels go on top of all bars,
    # each in the room before the next outer window begins
    y = rows["required"] + 3
    nested = [any(o.start <= w.start and w.end <= o.end for o in cam.windows[:i])
              for i, w in enumerate(cam.windows)]
    starts = sorted(scale.x(w.start) for w, n in zip(cam.windows, nested, strict=True) if not n)
    labels = []
    for win, inner in zip(cam.windows, nested, strict=True):
        x, w = scale.span(win.start, win.end)
        title = f"required: {win.activity} {win.activity_id} {fmt_hms(win.start)}-{fmt_hms(win.end)}"
        yy, hh = (y + 7, bar_h - 14) if inner else (y, bar_h)
        out.append(_rect(x, yy, w, hh, "#9fa8da" if inner else REQUIRED_COLOUR, "required", title,
                         ' stroke="#fff" stroke-width="1"'))
        if inner:
            continue
        room = min([w, *(s - x - 2 for s in starts if s > x + 1)])
        for text in (f"{win.activity} {win.activity_id}", win.activity_id):
            if _fits(text, room, BIG_CHAR_PX):
                labels.append(f'<text class="inbar" x="{_f(x + 5)}" y="{_f(y + 19)}" fill="#fff" '
                              f'stroke="{REQUIRED_COLOUR}" stroke-width="4" paint-order="stroke">'
                              f"{escape(text)}</text>")
                break
    out.extend(labels)

    # footage, buffer hatched
    y = rows["footage"] + 3
    for f in cam.footage:
        x, w = scale.span(f.start, f.end)
        out.append(_rect(x, y, w, bar_h, FOOTAGE_COLOUR, "footage",
                         f"recording {f.incident} {fmt_hms(f.start)}-{fmt_hms(f.end)}"))
        if f.buffer_end > f.start:
            bx, bw = scale.span(f.start, f.buffer_end, 3.0)
            out.append(_rect(bx, y, bw, bar_h, f"url(#{prefix}-buffer)", "buffer",
                             f"pre-event buffer {fmt_duration(f.buffer_end - f.start)}"))
    # what should not be there: prohibited seconds solid purple, phantom footage outlined
    for fnd in cam.findings:
        x, w = scale.span(fnd.start, fnd.end)
        title = f"{fnd.label} {fmt_hms(fnd.start)}-{fmt_hms(fnd.end)}: {fnd.detail}"
        if fnd.what == "prohibited":
            out.append(_rect(x, y, w, bar_h, PROHIBITED_COLOUR, "prohibited", title))
        else:
            out.append(_rect(x, y - 2, w, bar_h + 4, "none", f"phantom phantom-{fnd.kind}", title,
                             f' stroke="{PHANTOM_COLOUR}" stroke-width="3" stroke-dasharray="5 3"'))
        if _fits(fnd.label, w, BIG_CHAR_PX):
            out.append(_text(x + 5, y + 19, fnd.label, "inbar",
                             "#fff" if fnd.what == "prohibited" else PHANTOM_COLOUR))

    # misses: patterned bars, labelled inside when they fit, else on the line below
    y = rows["missed"] + 3
    below = _Line()
    label_y = rows["missed"] + ROW_H + 17
    for m in cam.misses:
        x, w = scale.span(m.start, m.end)
        title = (f"MISSED {fmt_duration(m.end - m.start)} {fmt_hms(m.start)}-{fmt_hms(m.end)}: "
                 f"{m.cause} — {CAUSE_MEANING.get(m.cause, '')}")
        out.append(_rect(x, y, w, bar_h, _fill(prefix, m.cause), f"miss miss-{m.cause}", title,
                         ' stroke="#4a0000" stroke-width="1.2"'))
        label = f"{_short(m.cause)} {fmt_duration(m.end - m.start).split(' (')[0]}"
        if _fits(label, w, BIG_CHAR_PX):
            colour = CAUSE_COLOURS.get(m.cause, "#f00")
            out.append(f'<text class="inbar miss-label" x="{_f(x + 5)}" y="{_f(y + 19)}" '
                       f'fill="#fff" stroke="{colour}" stroke-width="4" paint-order="stroke">'
                       f"{escape(label)}</text>")
            continue
        at = below.place(x, label)
        if at is None:
            continue
        out.append(f'<line class="leader" x1="{_f(x + w / 2)}" y1="{_f(y + bar_h)}" '
                   f'x2="{_f(max(at, x + w / 2))}" y2="{_f(label_y - 13)}"/>')
        out.append(_text(at, label_y, label, "miss-label", _ink(CAUSE_COLOURS.get(m.cause, "#c00")),
                         title=title))

    # events: deactivation brackets, refusals, alerts; labels on three lines under the marks,
    # the full label where it fits near its mark, else a shorter one
    y = events_y + 4
    lines = (_Line(), _Line(), _Line())
    # x, labels (longest first), colour, svg of the mark, how far left a label may start
    marks: list[tuple[float, tuple[str, ...], str, str, float]] = []
    for d in cam.deactivations:
        x, w = scale.span(d.start, d.end)
        what = f"paused {fmt_hms(d.start)}-{fmt_hms(d.end)}: {d.reason} by {d.actor}"
        svg = (f'<path class="pause" d="M{_f(x)},{_f(y + 12)} L{_f(x)},{_f(y)} L{_f(x + w)},'
               f'{_f(y)} L{_f(x + w)},{_f(y + 12)}" fill="none" stroke="{PAUSE_COLOUR}" '
               f'stroke-width="3"><title>{escape(what)}</title></path>')
        # who paused the recording matters as much as why: this label may sit further left
        marks.append((x, (f"paused: {d.reason} ({d.actor})", f"paused: {d.reason}"),
                      PAUSE_COLOUR, svg, 3 * MAX_SHIFT_PX))
    for msg in cam.inbound:
        if msg.ok is not False or msg.repeat:
            continue
        x = scale.x(msg.t)
        why = f"{msg.label} refused: {msg.meaning or msg.error}"
        if msg.allowed:
            why += f"; allowed: {', '.join(msg.allowed)}"
        svg = (f'<text class="refused" x="{_f(x)}" y="{_f(y + 14)}" fill="{REFUSED_COLOUR}" '
               f'text-anchor="middle">✗<title>{escape(fmt_hms(msg.t) + " " + why)}</title></text>')
        marks.append((x, (_refusal_label(msg), f"✗ {msg.detail or msg.event}"), REFUSED_COLOUR,
                      svg, MAX_SHIFT_PX))
    for al in cam.alerts:
        x = scale.x(al.t)
        svg = (f'<polygon class="alert" points="{_f(x - 7)},{_f(y)} {_f(x + 7)},{_f(y)} '
               f'{_f(x)},{_f(y + 13)}" fill="{ALERT_COLOUR}"><title>{escape(al.description)}'
               "</title></polygon>")
        short = {"missed_required_recording": f"alert: {_short(al.cause or 'missed')}",
                 "late_trigger": "alert: late"}.get(al.kind, f"alert: {al.kind.replace('_', ' ')}")
        marks.append((x, (short,), ALERT_COLOUR, svg, MAX_SHIFT_PX))
    for x, texts, colour, svg, shift in sorted(marks, key=lambda m: m[0]):
        out.append(svg)
        placed = next(((i, text, at) for text in texts for i, line in enumerate(lines)
                       if (at := line.place(x - 4, text, shift)) is not None), None)
        if placed is not None:
            i, text, at = placed
            out.append(_text(at, y + 33 + 20 * i, text, "ev-label", colour))
    out.append("</g>")
    return out, height


def _axis(scale: _Scale, top: float, bottom: float) -> list[str]:
    step = tick_step(scale.end, PLOT_W, min_gap_px=120)
    out = [f'<line class="axis" x1="{LEFT}" y1="{_f(top)}" x2="{LEFT + PLOT_W}" y2="{_f(top)}"/>']
    t = 0
    while t <= scale.end + 1e-9:
        x = scale.x(t)
        out.append(f'<line class="grid" x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(bottom)}"/>')
        anchor = "end" if x > LEFT + PLOT_W - 40 else "start" if t == 0 else "middle"
        out.append(_text(x, top - 10, fmt_hms(t), "tick", "#333", anchor))
        t += step
    return out


def chart_svg(view: RunView, prefix: str = "pj", cursor: float | None = None) -> str:
    """The projector chart alone (the studio draws it in its page; ``cursor`` marks a time)."""
    scale = _Scale(view.end)
    body: list[str] = []
    top: float = AXIS_H
    for i, cam in enumerate(view.cameras):
        lane, h = _lane(cam, scale, top, prefix, i)
        body.extend(lane)
        top += h + LANE_GAP
    height = top
    extra = []
    if cursor is not None:
        cx = scale.x(cursor)
        extra.append(f'<line class="cursor" x1="{_f(cx)}" y1="{AXIS_H - 4}" x2="{_f(cx)}" '
                     f'y2="{_f(height)}"/>')
    return (f'<svg class="timeline projector" viewBox="0 0 {WIDTH} {_f(height)}" width="{WIDTH}" '
            f'height="{_f(height)}" role="img" aria-label="timeline of {escape(view.name)}" '
            f'data-end="{view.end}" data-left="{LEFT}" data-plot-width="{PLOT_W}">'
            + f"<style>{SVG_CSS}</style>" + _defs(prefix) + "".join(body)
            + "".join(_axis(scale, AXIS_H - 2, height)) + "".join(extra) + "</svg>")


def _swatch(fill: str, defs: str = "") -> str:
    return (f'<svg class="sw" width="34" height="18">{defs}<rect width="34" height="18" '
            f'fill="{fill}" stroke="#333" stroke-width="0.5"/></svg>')


def legend(view: RunView, prefix: str = "lg") -> str:
    """Only what this run shows: its states, its causes (with their patterns), its marks."""
    states = [s for s in STATE_COLOURS if any(sp.state == s for c in view.cameras for sp in c.states)]
    causes = [c for c in CAUSES if any(m.cause == c for cam in view.cameras for m in cam.misses)]
    items = [f"<span>{_swatch(STATE_COLOURS[s])}{escape(s.replace('_', '-'))}</span>" for s in states]
    if any(c.windows for c in view.cameras):
        items.append(f"<span>{_swatch(REQUIRED_COLOUR)}required</span>")
    if any(c.footage for c in view.cameras):
        items.append(f"<span>{_swatch(FOOTAGE_COLOUR)}footage</span>")
    if any(f.buffer_end > f.start for c in view.cameras for f in c.footage):
        items.append(f"<span>{_swatch(f'url(#{prefix}-buffer)', _defs(prefix))}from buffer</span>")
    defs = "" if any(f.buffer_end > f.start for c in view.cameras for f in c.footage) else _defs(prefix)
    for c in causes:
        items.append(f'<span class="cause" title="{escape(CAUSE_MEANING.get(c, ""))}">'
                     f"{_swatch(_fill(prefix, c), defs)}missed: {escape(_short(c))}</span>")
        defs = ""
    if any(f.what == "prohibited" for c in view.cameras for f in c.findings):
        items.append(f"<span>{_swatch(PROHIBITED_COLOUR)}recorded while prohibited</span>")
    if any(f.what == "phantom" for c in view.cameras for f in c.findings):
        items.append(f'<span><svg class="sw" width="34" height="18"><rect x="1.5" y="1.5" '
                     f'width="31" height="15" fill="none" stroke="{PHANTOM_COLOUR}" '
                     'stroke-width="3" stroke-dasharray="5 3"/></svg>footage that cannot '
                     "exist</span>")
    if any(c.deactivations for c in view.cameras):
        items.append(f'<span><b style="color:{PAUSE_COLOUR}">⊓</b> paused (reason, who)</span>')
    if any(m.ok is False for c in view.cameras for m in c.inbound):
        items.append(f'<span><b style="color:{REFUSED_COLOUR}">✗</b> refused message</span>')
    if any(c.alerts for c in view.cameras):
        items.append(f'<span><b style="color:{ALERT_COLOUR}">▼</b> alert</span>')
    return '<div class="legend">' + " ".join(items) + "</div>"


def _header(view: RunView) -> str:
    ok = view.verdict == "pass"
    total = view.missed_s.get("total", 0.0)
    causes = " ".join(
        f'<span class="chip">{escape(_short(c))} {escape(fmt_duration(view.missed_s[c]))}</span>'
        for c in CAUSES if view.missed_s.get(c, 0.0) > 0)
    missed = f"missed {escape(fmt_duration(total))}: {causes}" if total > 0 else "nothing missed"
    if view.prohibited_s > 0:
        missed += f" · recorded {escape(fmt_duration(view.prohibited_s))} while prohibited"
    if any(f.what == "phantom" for c in view.cameras for f in c.findings):
        missed += f" · phantom footage {escape(fmt_duration(view.phantom_s))}"
    return (f'<header><div class="verdict {"pass" if ok else "fail"}">{"PASS" if ok else "FAIL"}'
            f'</div><h1>{escape(view.name)}</h1><p class="missed">{missed}</p></header>')


def _causes_table(view: RunView) -> str:
    causes = [c for c in CAUSES if view.missed_s.get(c, 0.0) > 0]
    if not causes:
        return ""
    rows = "".join(f"<tr><td>{_swatch(_fill('tb', c), _defs('tb') if i == 0 else '')}"
                   f"{escape(_short(c))}</td><td>{escape(fmt_duration(view.missed_s[c]))}</td>"
                   f"<td>{escape(CAUSE_MEANING.get(c, ''))}</td></tr>" for i, c in enumerate(causes))
    return f'<table class="causes">{rows}</table>'


def _refusals_table(view: RunView) -> str:
    """Every refused message with its reason in words and the words that were allowed."""
    rows = []
    for cam in view.cameras:
        for m in cam.inbound:
            if m.ok is not False or m.repeat:
                continue
            who = f" by {m.actor}" if m.actor else ""
            why = escape(m.meaning or m.error or "refused")
            if m.allowed:
                why += "<br><small>allowed: " + escape(", ".join(m.allowed)) + "</small>"
            if m.nearest:
                why += f"<br><small>did you mean <b>{escape(m.nearest)}</b>?</small>"
            rows.append(f"<tr><td>{fmt_hms(m.t)}</td><td>{escape(cam.camera_id)}</td>"
                        f"<td>✗ {escape(m.label)}{escape(who)}</td><td>{why}</td></tr>")
    if not rows:
        return ""
    return ('<table class="refusals"><caption>Refused messages: they changed nothing</caption>'
            + "".join(rows) + "</table>")


#: The chart's own type and lines, carried inside the SVG so it reads the same in any page.
SVG_CSS = """
svg.projector{display:block;font-family:system-ui,Arial,sans-serif}
svg.projector text{font-size:16px}
svg.projector .cam{font-size:20px;font-weight:bold}
svg.projector .camsum{font-size:17px}
svg.projector .inbar{font-size:18px;font-weight:600;pointer-events:none}
svg.projector .miss-label,svg.projector .ev-label{font-size:16px;font-weight:600}
svg.projector .refused{font-size:22px;font-weight:bold}
svg.projector .grid{stroke:#000;stroke-opacity:.12}
svg.projector .axis{stroke:#555}
svg.projector .leader{stroke:#555;stroke-width:1.2}
svg.projector .cursor{stroke:#000;stroke-width:2.5;stroke-dasharray:6 4}
"""

CSS = """
body{font:18px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:8px 12px;
color:#111;background:#fff;max-width:1000px}
header{position:relative;margin:0 0 6px}
h1{font-size:26px;margin:0 110px 2px 0;line-height:1.2}
.verdict{position:absolute;right:0;top:0;font:bold 26px system-ui,Arial,sans-serif;padding:2px 14px;
border-radius:6px;color:#fff}
.verdict.pass{background:#2e7d32}.verdict.fail{background:#c62828}
p{margin:2px 0}.missed{font-size:20px}
.chip{display:inline-block;padding:0 8px;border-radius:4px;background:#eee;margin-right:4px}
.legend{font-size:17px;margin:6px 0;line-height:1.7}
.legend span{margin-right:14px;white-space:nowrap}
.sw{vertical-align:middle;margin-right:5px}
table.causes,table.refusals{border-collapse:collapse;font-size:17px;margin-top:8px}
table.causes td,table.refusals td{padding:3px 10px 3px 0;vertical-align:top}
table.refusals td:nth-child(-n+2){white-space:nowrap}
table.refusals caption{text-align:left;font-weight:bold;color:#c62828}
small{font-size:16px;color:#333}
"""


def render_projector(view: RunView) -> str:
    """The projector page: header, legend of what occurs, the chart, what the causes mean."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=1024">'
        f"<title>{escape(view.name)} — timeline</title><style>{CSS}</style></head>"
        '<body class="projector">'
        + _header(view) + legend(view) + f'<div class="chart">{chart_svg(view)}</div>'
        + _causes_table(view) + _refusals_table(view) + "</body></html>\n"
    )
