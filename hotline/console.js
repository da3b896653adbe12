// anxin hotline console: the live queue. Rows come from /api/queue, then from the server-sent
// events on /events; nothing reloads. Severity 1 waiting for an operator flashes a banner and
// beeps (Web Audio) every few seconds until someone accepts it, unless muted on this desk.
"use strict";
const S = JSON.parse(document.getElementById("strings").textContent);
const LANG = document.documentElement.lang.startsWith("en") ? "en" : "zh";
const CSRF = document.querySelector('meta[name="csrf"]').content;
const LANES = ["emergency", "care", "technical", "test"];
const TECHNICAL = new Set(JSON.parse(document.getElementById("technical").textContent));
const ROOMS = JSON.parse(document.getElementById("rooms").textContent);
const alerts = new Map();
// Timers count on the server's clock (the one that stamped received_at), not this PC's.
const SKEW = Number(document.getElementById("server-now").textContent) - Date.now() / 1000;

function lane(a) {
  if (a.test) return "test";
  if (TECHNICAL.has(a.event) || a.severity >= 4) return "technical";
  return a.severity === 3 ? "care" : "emergency";
}

function dur(s) {
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${m}:${ss}`;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) {
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function who(a) {
  const r = (a.body && a.body.residents) || [];
  return r.map((p) => p.name).filter(Boolean).join("、");
}

function row(a) {
  const title = (a.title && a.title[LANG]) || a.event;
  const esc = a.escalation;
  const tr = el("tr", {id: "a-" + a.alert_id, "data-id": a.alert_id,
                       class: `sev${a.severity} st-${a.state}`});
  tr.append(
    el("td", {class: "sev"}, S["sev" + a.severity] || a.severity),
    el("td", {class: "title"}, a.test ? el("span", {class: "test"}, S.test_mark) : null,
       " ", title,
       el("small", {}, a.code + (esc ? ` · ${S.escalated} ${esc.tier_name || esc.tier}` +
                                 (esc.reminder ? ` · ${S.reminder} ${esc.reminder}` : "") : ""))),
    el("td", {}, who(a) || a.home_id, el("small", {}, a.home_id + (a.district ? " · " +
       a.district : ""))),
    el("td", {}, ROOMS[(a.room || "").toLowerCase()] || a.room || "—"),
    el("td", {}, el("span", {class: "timer", "data-since": a.received_at}, ""),
       a.first_escalated_at ? el("small", {class: "timer esc",
                                           "data-since": a.first_escalated_at}, "") : null),
    el("td", {class: "state"}, S[a.state] || a.state,
       el("small", {}, a.operator || "")),
  );
  const act = el("td", {class: "act"});
  if (a.state === "received") {
    const b = el("button", {class: a.severity <= 2 ? "primary" : "go", "data-act": "accept"},
                 S.accept);
    b.onclick = () => accept(a.alert_id, b);
    act.append(b, " ");
  }
  act.append(el("a", {class: "btn", href: `/alerts/${encodeURIComponent(a.alert_id)}`},
                S.open));
  tr.append(act);
  return tr;
}

function render() {
  const sorted = [...alerts.values()].sort((x, y) =>
    x.severity - y.severity || x.received_at - y.received_at ||
    (x.alert_id < y.alert_id ? -1 : 1));
  for (const name of LANES) {
    const body = document.querySelector(`#lane-${name} tbody`);
    const rows = sorted.filter((a) => lane(a) === name);
    const fresh = new Set([...body.querySelectorAll("tr.new")].map((r) => r.id));
    body.replaceChildren(...rows.map((a) => {
      const tr = row(a);
      if (a._new || fresh.has(tr.id)) tr.classList.add("new");
      return tr;
    }));
    document.querySelector(`#lane-${name} .n`).textContent = rows.length;
    document.querySelector(`#lane-${name} .none`).style.display = rows.length ? "none" : "";
    document.querySelector(`#lane-${name} table`).style.display = rows.length ? "" : "none";
  }
  tick();
  alarm();
}

function tick() {
  const now = Date.now() / 1000 + SKEW;
  for (const t of document.querySelectorAll(".timer[data-since]")) {
    const since = Number(t.dataset.since);
    t.textContent = (t.classList.contains("esc") ? S.since_escalation + " " : "") +
      dur(now - since);
  }
}

async function accept(id, button) {
  button.disabled = true;
  const r = await fetch(`/api/alerts/${encodeURIComponent(id)}/accept`, {
    method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": CSRF},
    body: "{}"});
  if (!r.ok) {
    const e = await r.json().catch(() => ({error: r.statusText}));
    button.disabled = false;
    alert(e.error || r.statusText);
    return;
  }
  upsert(await r.json());
}

let pending = null;
const fresh = new Set();

function upsert(a) {
  if (a.state === "resolved") alerts.delete(a.alert_id);
  else {
    if (!alerts.has(a.alert_id)) fresh.add(a.alert_id);
    alerts.set(a.alert_id, a);
  }
  // A burst of alerts is drawn once per 50 ms, not once per alert (a timer, not
  // requestAnimationFrame: that one stops while the tab is in the background).
  if (pending === null) pending = setTimeout(flush, 50);
}

function flush() {
  pending = null;
  for (const id of fresh) { const a = alerts.get(id); if (a) a._new = true; }
  render();
  for (const id of fresh) { const a = alerts.get(id); if (a) a._new = false; }
  fresh.clear();
}

// --- the audible cue ------------------------------------------------------------------------
let audio = null;
let muted = localStorage.getItem("anxin-muted") === "1";
const muteButton = document.getElementById("mute");

function showMute() {
  muteButton.textContent = muted ? S.unmute : S.mute;
  muteButton.setAttribute("aria-pressed", String(muted));
}

muteButton.onclick = () => {
  muted = !muted;
  localStorage.setItem("anxin-muted", muted ? "1" : "0");
  showMute();
  if (!muted) beep();
};

document.addEventListener("click", () => {
  // browsers start audio only after a gesture on the page
  if (!audio) audio = new AudioContext();
  if (audio.state === "suspended") audio.resume();
});

function beep() {
  if (muted) return;
  if (!audio) audio = new AudioContext();
  const t = audio.currentTime;
  for (const [i, f] of [[0, 988], [0.25, 784], [0.5, 988]]) {
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = f;
    g.gain.setValueAtTime(0.0001, t + i);
    g.gain.exponentialRampToValueAtTime(0.4, t + i + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, t + i + 0.2);
    o.connect(g).connect(audio.destination);
    o.start(t + i);
    o.stop(t + i + 0.22);
  }
  document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
}

function waitingLife() {
  return [...alerts.values()].filter((a) => a.severity === 1 && a.state === "received" &&
                                            !a.test);
}

function alarm() {
  const n = waitingLife().length;
  // A queue that stopped updating must not look like a quiet one.
  const lost = lostSince !== null && Date.now() - lostSince > 10000;
  const banner = document.getElementById("banner");
  banner.classList.toggle("on", n > 0 || lost);
  banner.textContent = [n ? `${S.sev1}: ${n} ${S.received}` : "", lost ? S.offline : ""]
    .filter(Boolean).join(" · ");
}

setInterval(() => { tick(); if (lostSince !== null) alarm(); }, 1000);
setInterval(() => {
  if (waitingLife().length || (lostSince !== null && Date.now() - lostSince > 10000)) beep();
}, 3000);

// --- live updates ---------------------------------------------------------------------------
async function resync() {
  let r;
  try { r = await fetch("/api/queue"); } catch { return; }  // down: the stream retries
  if (!r.ok) { if (r.status === 401) location.href = "/login"; return; }
  alerts.clear();
  for (const a of await r.json()) alerts.set(a.alert_id, a);
  render();
}

let lostSince = null;

function connect() {
  const status = document.getElementById("status");
  const es = new EventSource("/events");
  es.onopen = () => {
    status.textContent = "● " + S.live; status.className = ""; lostSince = null; resync();
  };
  es.onerror = () => {
    status.textContent = S.offline; status.className = "off";
    if (lostSince === null) lostSince = Date.now();
    // A browser retries a dropped stream by itself, but gives up for good on an HTTP
    // error (a proxy's 502, an expired session): then start again, and log in if needed.
    if (es.readyState === EventSource.CLOSED) {
      setTimeout(() => { resync(); connect(); }, 3000);
    }
    alarm();
  };
  es.addEventListener("alert", (m) => upsert(JSON.parse(m.data)));
}

showMute();
for (const a of JSON.parse(document.getElementById("initial").textContent)) {
  alerts.set(a.alert_id, a);
}
render();
connect();
