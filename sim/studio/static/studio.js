// The studio page. Every figure it shows comes from the server (/api/...), computed in Python;
// this script only keeps the page's state (the scenario source, the ordered list of edits, the
// cursor time), sends it, and draws the answers. Errors are shown beside the field they name.
"use strict";

const S = {source: null, edits: [], data: null, run: null, original: null, vocab: null,
           policies: [], events: {}, t: 0, playing: null, busy: false, pending: null};
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"}[c]));
}
function hms(t) {
  const cs = Math.round(t * 100), s = Math.floor(cs / 100), f = cs % 100;
  const p = n => String(n).padStart(2, "0");
  const out = `${p(Math.floor(s / 3600))}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}`;
  return f ? `${out}.${p(f)}` : out;
}
// A duration as people say it: 45 s, 150 s (2.5 min), 3 h 20 min.
function secs(s) {
  if (s < 120) return `${+s.toFixed(2)} s`;
  if (s < 3600) return `${+s.toFixed(1)} s (${+(s / 60).toFixed(1)} min)`;
  const m = Math.round(s / 60);
  return m % 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m / 60} h`;
}
function parseTime(text) {
  text = String(text).trim();
  if (/^\d+(\.\d*)?$/.test(text)) return parseFloat(text);
  const m = /^(\d+):(\d\d):(\d\d(?:\.\d*)?)$/.exec(text);
  return m ? (+m[1]) * 3600 + (+m[2]) * 60 + parseFloat(m[3]) : null;
}

// ---------------------------------------------------------------------------- talking

async function api(path, body) {
  const init = body === undefined ? {} : {method: "POST", body: JSON.stringify(body),
    headers: {"Content-Type": "application/json"}};
  const res = await fetch(path, init);
  let data;
  try { data = await res.json(); } catch (e) { data = {ok: false, error: {message: `${res.status} ${res.statusText}`}}; }
  return data;
}

function clearErrors(root = document) {
  $$(".field-error", root).forEach(e => e.remove());
  $$(".bad", root).forEach(e => e.classList.remove("bad"));
  const box = root === document ? $("#error") : null;
  if (box) { box.hidden = true; box.textContent = ""; }
}

// Show an error beside the input whose data-field is the error's field (or the nearest
// enclosing field: timeline[1] for timeline[1].fields), else in the box at the top.
function showError(err, root = document, box = $("#error")) {
  const where = err.line ? ` (line ${err.line})` : "";
  const text = (err.field ? `${err.field}: ` : "") + err.message + where;
  let field = err.field || "";
  while (field) {
    const input = $(`[data-field="${CSS.escape(field)}"]`, root);
    if (input && input.offsetParent !== null) {
      input.classList.add("bad");
      const note = document.createElement("span");
      note.className = "field-error";
      note.textContent = text;
      input.insertAdjacentElement("afterend", note);
      return;
    }
    const cut = Math.max(field.lastIndexOf("."), field.lastIndexOf("["));
    field = cut > 0 ? field.slice(0, cut) : "";
  }
  box.hidden = false;
  box.textContent = text;
}

// ---------------------------------------------------------------------------- opening

async function loadLibrary() {
  const lib = await api("/api/library");
  const sel = $("#library");
  sel.innerHTML = lib.files.map(f => `<option value="${esc(f.file)}">${esc(f.file)} — ${esc(f.name)}`
    + `${f.error ? " (does not load)" : ""}</option>`).join("");
  S.policies = lib.policies;
  const want = decodeURIComponent(location.hash.slice(1));
  if (want && lib.files.some(f => f.file === want)) sel.value = want;
  if (lib.files.length) await openSource({file: sel.value}, []);
}

async function openSource(source, edits) {
  clearErrors();
  const res = await api("/api/open", {source, edits});
  if (!res.ok) {
    if (edits.length && S.source === source) S.edits = edits;  // keep the bad edit: it is shown
    showError(res.error);
    return false;
  }
  const sameScenario = S.source === source;
  S.source = source; S.edits = edits; S.data = res.data; S.run = res.run;
  S.original = res.original; S.vocab = res.vocabulary; S.policies = res.policies;
  S.events = res.events;
  $("#file").textContent = source.file ? source.file : "new scenario (not saved yet)";
  if (source.file) history.replaceState(null, "", "#" + encodeURIComponent(source.file));
  if (!$("#save-target").value || !sameScenario) {
    $("#save-target").value = (source.file || "scenarios/new_scenario.yaml").replace(/\.ya?ml$/, "")
      + "_what_if.yaml";
  }
  drawAnswer(res);
  drawChart();
  drawEditor();
  if (!sameScenario) S.t = 0;
  S.t = Math.min(S.t, S.run.end);
  await moveCursor(S.t);
  return true;
}

// ---------------------------------------------------------------------------- the answer

function missedTable(missed, other) {
  const rows = Object.entries(missed).filter(([k, v]) => k === "total" || v > 0
    || (other && other[k] > 0));
  return "<table>" + rows.map(([k, v]) => {
    const d = other ? v - (other[k] || 0) : 0;
    const cls = d > 1e-6 ? "more" : d < -1e-6 ? "less" : "";
    const change = other && Math.abs(d) > 1e-6 ? ` <span class="${cls}">(${d > 0 ? "+" : "−"}${secs(Math.abs(d))})</span>` : "";
    return `<tr data-cause="${esc(k)}"><td>${k === "total" ? "<b>missed</b>" : esc(k)}</td>`
      + `<td class="secs">${secs(v)}</td><td>${change}</td></tr>`;
  }).join("") + "</table>";
}

function resultHtml(title, run, other) {
  const exp = run.expect;
  const expect = exp == null ? '<span class="dim">no expect: block</span>'
    : exp.ok ? "expectations met" : `<span class="more">expectations not met</span>: ${esc(exp.failures.join("; "))}`;
  const refused = Object.entries(run.cameras).flatMap(([cam, c]) => c.refusals.map(r =>
    `<li>${esc(cam)} ${hms(r.at)}: ${esc(r.event)} ${esc(r.word || "")} refused — ${esc(r.meaning)}`
    + (r.allowed ? `; allowed: ${esc(r.allowed.join(", "))}` : "")
    + (r.nearest ? ` (did you mean <b>${esc(r.nearest)}</b>?)` : "") + "</li>"));
  return `<h2>${esc(title)}</h2><span class="verdict ${run.verdict}">${run.verdict.toUpperCase()}</span>`
    + `<span class="causes">${esc(causeWords(run.missed_s))}</span>`
    + missedTable(run.missed_s, other && other.missed_s) + `<div>${expect}</div>`
    + (refused.length ? `<ul class="refusals">${refused.join("")}</ul>` : "");
}

function causeWords(missed) {
  const causes = Object.entries(missed).filter(([k, v]) => k !== "total" && v > 0);
  return causes.length ? "missed: " + causes.map(([k]) => k.replace("_", "-")).join(", ")
    : "nothing missed";
}

function drawAnswer(res) {
  const edited = S.edits.length > 0 && res.original;
  $("#asis").innerHTML = resultHtml("As written", edited ? res.original : res.run);
  $("#whatif").hidden = !edited;
  if (edited) $("#whatif").innerHTML = resultHtml("What if", res.run, res.original);
}

// ---------------------------------------------------------------------------- chart and cursor

function drawChart() {
  $("#legend").innerHTML = S.run.legend;
  $("#chart").innerHTML = S.run.chart;
  const svg = $("#chart svg");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
  line.id = "cursor-line";
  line.setAttribute("class", "cursor");
  line.setAttribute("y1", "30");
  line.setAttribute("y2", svg.getAttribute("height"));
  line.setAttribute("stroke", "#000"); line.setAttribute("stroke-width", "2.5");
  line.setAttribute("stroke-dasharray", "6 4");
  svg.appendChild(line);
  $("#slider").max = S.run.end;
}

function xOf(t) {
  const svg = $("#chart svg");
  return +svg.dataset.left + (t / +svg.dataset.end) * +svg.dataset.plotWidth;
}

async function moveCursor(t) {
  if (!S.run) return;
  t = Math.max(0, Math.min(+t, S.run.end));
  S.t = t;
  $("#time").value = hms(t);
  $("#slider").value = t;
  const line = $("#cursor-line");
  if (line) { line.setAttribute("x1", xOf(t)); line.setAttribute("x2", xOf(t)); }
  if (S.busy) { S.pending = t; return; }  // the newest time wins; no queue of stale requests
  S.busy = true;
  try {
    const res = await api(`/api/cursor?run=${S.run.run}&t=${t}`);
    if (res.ok) drawCursor(res); else showError(res.error);
  } finally {
    S.busy = false;
    if (S.pending !== null) { const p = S.pending; S.pending = null; moveCursor(p); }
  }
}

function drawCursor(at) {
  S.prev = at.previous; S.next = at.next;
  $("#happening").textContent = at.happening.length ? `${at.label}: ${at.happening.join(" · ")}` : at.label;
  $("#cursor").innerHTML = at.cameras.map(c => {
    const row = (k, v) => `<dt>${k}</dt><dd>${v}</dd>`;
    const msgs = c.messages.slice().reverse().map(m => `<li class="${m.answer === "refused" ? "refused" : ""}">`
      + `${hms(m.t)} ${esc(m.message)} — ${m.answer}${m.repeat ? " (repeat)" : ""}`
      + (m.answer === "refused" ? `: ${esc(m.meaning || m.error)}` : "")
      + (m.allowed.length ? `<br><small>allowed: ${esc(m.allowed.join(", "))}</small>` : "")
      + (m.nearest ? `<br><small>did you mean <b>${esc(m.nearest)}</b>?</small>` : "") + "</li>").join("");
    const req = c.required_now.map(w => `${esc(w.activity)} ${esc(w.activity_id)}`).join(", ") || "none";
    const battery = c.battery_s == null ? "?" : `${secs(c.battery_s)} of ${secs(c.battery_full_s)}`;
    const storage = c.storage_free_s == null ? "?" : `${secs(c.storage_free_s)} free of ${secs(c.storage_s)}`;
    const deact = c.deactivation ? `<b>paused</b>: ${esc(c.deactivation.reason)} by ${esc(c.deactivation.actor)}`
      + ` since ${hms(c.deactivation.since)}` : "none";
    const rec = c.recording ? `incident ${esc(c.recording.incident)} since ${hms(c.recording.start)}`
      + ` (${secs(c.recording.buffer_s)} from the buffer)` : "not recording";
    const missed = Object.entries(c.missed_so_far).map(([k, v]) => `${esc(k)} ${secs(v)}`).join(", ") || "nothing";
    return `<div class="camcard" data-camera="${esc(c.camera)}"><h3>${esc(c.camera)} `
      + `<span class="state state-${esc(c.state)}">${esc(c.state)}</span> <small>since ${hms(c.since)}</small></h3>`
      + (c.missing_now ? `<div class="missing">missing required footage now: ${esc(c.missing_now)}</div>` : "")
      + "<dl>"
      + row("buffer held", `<span class="buffer">${secs(c.buffer_s)}</span> of ${secs(c.prebuffer_s)}`)
      + row("recording", rec)
      + row("required now", req)
      + row("holds", esc(c.holds.join(", ") || "none"))
      + row("deactivation", deact)
      + row("battery", battery)
      + row("storage", storage)
      + row("missed so far", missed)
      + "</dl>"
      + (msgs ? `<div>last messages:</div><ul class="messages">${msgs}</ul>` : "")
      + (c.alerts.length ? `<div>alerts: ${c.alerts.map(a => `${hms(a.t)} ${esc(a.alert)}`).join(", ")}</div>` : "")
      + "</div>";
  }).join("");
}

function togglePlay() {
  if (S.playing) {
    clearInterval(S.playing); S.playing = null; $("#play").textContent = "▶ play"; return;
  }
  if (S.t >= S.run.end) S.t = 0;
  $("#play").textContent = "⏸ pause";
  const step = S.run.end / 300;  // the whole run in a minute, five steps a second
  S.playing = setInterval(() => {
    if (S.t >= S.run.end) { togglePlay(); return; }
    moveCursor(Math.min(S.run.end, S.t + step));
  }, 200);
}

// ---------------------------------------------------------------------------- editing

// Add an edit. A new value for a field already changed since the last structural edit
// (add/remove) replaces that change, so the list reads as what was changed, once each.
function edit(op, field, value) {
  const edits = S.edits.slice();
  if (op === "set") {
    for (let i = edits.length - 1; i >= 0; i--) {
      if (edits[i].op !== "set") break;
      if (edits[i].field === field) { edits.splice(i, 1); break; }
    }
  }
  edits.push(value === undefined ? {op, field} : {op, field, value});
  return openSource(S.source, edits);
}

function input(field, value, size = 8) {
  return `<input data-field="${esc(field)}" value="${esc(value ?? "")}" size="${size}">`;
}
function select(field, options, value) {
  const opts = options.includes(value) || value == null ? options : [value, ...options];
  return `<select data-field="${esc(field)}">${opts.map(o => `<option${o === value ? " selected" : ""}>${esc(o)}</option>`).join("")}</select>`;
}

const CAMERA_KEYS = ["prebuffer_s", "boot_s", "battery_s", "storage_s"];

function drawEditor() {
  const d = S.data, v = S.vocab;
  $("#policy").innerHTML = S.policies.map(p => `<option${p === (d.policy || "dhs-2023") ? " selected" : ""}>${esc(p)}</option>`).join("");
  if (!S.policies.includes(d.policy || "dhs-2023")) $("#policy").insertAdjacentHTML("afterbegin", `<option selected>${esc(d.policy)}</option>`);
  $("#end").value = d.end ?? "";
  const cams = d.cameras || [];
  $("#cameras").innerHTML = "<tr><th>id</th><th>teams</th><th>initial</th>"
    + CAMERA_KEYS.map(k => `<th>${k}</th>`).join("") + "</tr>"
    + cams.map((c, i) => `<tr data-index="${i}"><td>${esc(c.id)}</td><td>${esc(c.team || (c.teams || []).join(", "))}</td>`
      + `<td>${select(`cameras[${i}].initial`, ["pre_buffer", "standby", "docked"], c.initial || "pre_buffer")}</td>`
      + CAMERA_KEYS.map(k => `<td>${input(`cameras[${i}].${k}`, c[k] ?? defaultParam(k), 6)}</td>`).join("") + "</tr>").join("");
  const entries = d.timeline || [];
  $("#timeline").innerHTML = "<tr><th>#</th><th>at</th><th>delay_s</th><th>to</th><th>what</th><th></th></tr>"
    + entries.map((e, i) => {
      const who = e.camera || (e.team ? `team ${e.team}` : "all");
      const what = e.event ? `${e.event} ${Object.entries(e).filter(([k]) => !["at", "camera", "team", "delay_s", "id", "event"].includes(k)).map(([, x]) => x).join(" ")}`
        : e.fault ? `fault ${e.fault} ${e.for_s} s` : "raw message";
      const delay = e.event || e.raw ? input(`timeline[${i}].delay_s`, e.delay_s ?? 0, 5) : "";
      return `<tr data-index="${i}"><td>${i}</td><td>${input(`timeline[${i}].at`, e.at, 9)}</td><td>${delay}</td>`
        + `<td>${esc(who)}</td><td data-field="timeline[${i}]">${esc(what)}</td>`
        + `<td><button type="button" class="remove" data-field-remove="timeline[${i}]">remove</button></td></tr>`;
    }).join("");
  const teams = [...new Set(cams.flatMap(c => c.team ? [c.team] : (c.teams || [])))];
  $("#add-who").innerHTML = [...cams.map(c => `<option value="camera:${esc(c.id)}">${esc(c.id)}</option>`),
    ...teams.map(t => `<option value="team:${esc(t)}">team ${esc(t)}</option>`)].join("");
  if (!$("#add-event").options.length) {
    $("#add-event").innerHTML = Object.keys(S.events).map(e => `<option>${e}</option>`).join("");
  }
  drawAddFields();
  $("#edits").textContent = S.edits.length ? `${S.edits.length} change(s): ` + S.edits.map(e =>
    e.op === "set" ? `${e.field} = ${e.value}` : e.op === "unset" ? `remove ${e.field}` : `add to ${e.field}`).join("; ")
    : "no changes: this is the scenario as written";
}

function defaultParam(k) {
  const p = (S.vocab.parameters || []).find(x => x.name === k);
  return p ? p.value : "";
}

function wordsFor(field) {
  const v = S.vocab;
  return {activity: v.activities.map(a => a.name), reason: v.deactivation_reasons,
          source: v.signals.map(s => s.source), action: ["start", "stop"]}[field];
}

function drawAddFields() {
  const fields = S.events[$("#add-event").value] || [];
  $("#add-fields").innerHTML = fields.map(f => {
    const words = wordsFor(f);
    return `<label>${f} ` + (words ? select(`add.${f}`, words, words[0]) : input(`add.${f}`, f === "activity_id" ? "w-1" : f === "actor" ? "officer-1" : "", 9)) + "</label>";
  }).join(" ");
}

function addEntry() {
  const [kind, name] = $("#add-who").value.split(":");
  const entry = {at: $("#add-at").value.trim(), [kind]: name, event: $("#add-event").value};
  for (const el of $$("#add-fields [data-field]")) entry[el.dataset.field.slice(4)] = el.value;
  const delay = $("#add-delay").value.trim();
  if (delay && delay !== "0") entry.delay_s = delay;
  return edit("add", "timeline", entry);
}

async function save() {
  clearErrors();
  const res = await api("/api/save", {source: S.source, edits: S.edits, target: $("#save-target").value.trim(),
    overwrite: $("#save-replace").checked, pin_expect: $("#save-pin").checked});
  if (!res.ok) { showError(res.error); $("#save-result").textContent = ""; return; }
  $("#save-result").innerHTML = `<span class="ok">saved ${esc(res.saved)}</span> — `
    + `<code>bwcsim run ${esc(res.saved)}</code> replays it: ${res.verdict.toUpperCase()}, ${esc(causeWords(res.missed_s))}`;
}

// ---------------------------------------------------------------------------- the form

function newCameraRow(i, cam = {id: `cam-${i + 1}`, team: "team-1", initial: "pre_buffer", prebuffer_s: ""}) {
  return `<tr><td>${input(`cameras[${i}].id`, cam.id, 8)}</td><td>team ${input(`cameras[${i}].team`, cam.team, 8)}</td>`
    + `<td>${select(`cameras[${i}].initial`, ["pre_buffer", "standby", "docked"], cam.initial)}</td>`
    + `<td>prebuffer_s ${input(`cameras[${i}].prebuffer_s`, cam.prebuffer_s, 4)}</td></tr>`;
}

async function newEventRow(i) {
  const vocab = S.vocab;
  const events = Object.keys(S.events);
  const tr = document.createElement("tr");
  tr.innerHTML = `<td>at ${input(`timeline[${i}].at`, "00:10:00", 8)}</td>`
    + `<td>to ${input(`timeline[${i}].who`, "team-1", 8)}</td>`
    + `<td>${select(`timeline[${i}].event`, events, "activity_start")}</td><td class="fields"></td>`;
  const fill = () => {
    const ev = $("select", tr).value;
    $(".fields", tr).innerHTML = (S.events[ev] || []).map(f => {
      const words = wordsFor(f);
      return `${f} ` + (words ? select(`timeline[${i}].${f}`, words, words[0]) : input(`timeline[${i}].${f}`, f === "activity_id" ? `a-${i + 1}` : "officer-1", 8));
    }).join(" ");
  };
  $("select", tr).addEventListener("change", fill);
  fill();
  void vocab;
  return tr;
}

async function createScenario() {
  const form = $("#new-form");
  clearErrors(form);
  $("#new-error").hidden = true;
  const cams = $$("#new-cameras tr").map((tr, i) => {
    const cam = {};
    for (const el of $$("[data-field]", tr)) cam[el.dataset.field.replace(`cameras[${i}].`, "")] = el.value;
    return cam;
  });
  const camIds = new Set(cams.map(c => c.id));
  const timeline = $$("#new-events tr").map((tr, i) => {
    const e = {};
    for (const el of $$("[data-field]", tr)) e[el.dataset.field.replace(`timeline[${i}].`, "")] = el.value;
    const who = e.who; delete e.who;
    return {at: e.at, [camIds.has(who) ? "camera" : "team"]: who, ...Object.fromEntries(Object.entries(e).filter(([k]) => k !== "at"))};
  });
  const body = {name: form.name.value, description: form.description.value, end: form.end.value,
    policy: form.policy.value, cameras: cams, timeline};
  const res = await api("/api/create", body);
  if (!res.ok) { showError(res.error, form, $("#new-error")); return; }
  $("#new-dialog").close();
  await openSource(res.source, []);
}

async function openForm() {
  const form = $("#new-form");
  form.policy.innerHTML = S.policies.map(p => `<option>${esc(p)}</option>`).join("");
  $("#new-cameras").innerHTML = newCameraRow(0);
  $("#new-events").innerHTML = "";
  $("#new-events").appendChild(await newEventRow(0));
  $("#new-dialog").showModal();
}

// ---------------------------------------------------------------------------- wiring

document.addEventListener("DOMContentLoaded", () => {
  $("#library").addEventListener("change", e => openSource({file: e.target.value}, []));
  $("#step-next").addEventListener("click", () => moveCursor(S.next ?? S.t));
  $("#step-prev").addEventListener("click", () => moveCursor(S.prev ?? 0));
  $("#play").addEventListener("click", togglePlay);
  const go = () => {
    clearErrors();
    const t = parseTime($("#time").value);
    if (t === null) showError({field: "t", message: 'write the time as "HH:MM:SS" or seconds'});
    else moveCursor(t);
  };
  $("#go").addEventListener("click", go);
  $("#time").addEventListener("keydown", e => { if (e.key === "Enter") go(); });
  $("#slider").addEventListener("input", e => moveCursor(+e.target.value));
  $("#chart").addEventListener("click", e => {
    const svg = $("#chart svg");
    if (!svg) return;
    const box = svg.getBoundingClientRect();
    const x = (e.clientX - box.left) * (+svg.getAttribute("width") / box.width);
    moveCursor(((x - +svg.dataset.left) / +svg.dataset.plotWidth) * +svg.dataset.end);
  });
  // Any change to an editor field is an edit of that field.
  $("#edit").addEventListener("change", e => {
    const el = e.target;
    const field = el.dataset.field;
    if (!field || field.startsWith("add.") || field === "target") return;
    if (field === "add-event") return;
    edit("set", field, el.value);
  });
  $("#add-event").addEventListener("change", drawAddFields);
  $("#edit").addEventListener("click", e => {
    const gone = e.target.dataset.fieldRemove;
    if (gone) edit("unset", gone);
  });
  $("#add").addEventListener("click", addEntry);
  $("#undo").addEventListener("click", () => openSource(S.source, []));
  $("#save").addEventListener("click", save);
  $("#new-open").addEventListener("click", openForm);
  $("#new-cancel").addEventListener("click", () => $("#new-dialog").close());
  $("#new-create").addEventListener("click", createScenario);
  $("#new-add-camera").addEventListener("click", () => {
    $("#new-cameras").insertAdjacentHTML("beforeend", newCameraRow($$("#new-cameras tr").length));
  });
  $("#new-add-event").addEventListener("click", async () => {
    $("#new-events").appendChild(await newEventRow($$("#new-events tr").length));
  });
  loadLibrary();
});
