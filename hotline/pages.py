"""The console's HTML, rendered on the server from plain data (every value escaped); the
queue's script (console.js) and style (console.css) are inlined so the page needs no other
request than its data and its live stream."""

from __future__ import annotations

import contextlib
import html
import json
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

from alerts.wire import RESOLUTION_OUTCOMES
from hotline.i18n import (
    LANES,
    ROOMS,
    TECHNICAL_EVENTS,
    duration,
    evidence_lines,
    iso_local,
    kind,
    lane,
    local_time,
    outcome,
    reading,
    room,
    strings,
    t,
)
from hotline.store import DISPATCH_TARGETS

e = html.escape
CSS = resources.files("hotline").joinpath("console.css").read_text(encoding="utf-8")
JS = resources.files("hotline").joinpath("console.js").read_text(encoding="utf-8")
ROLE_PAGES = (("/", "queue", "operator"), ("/history", "history", "operator"),
              ("/stats", "stats", "supervisor"), ("/operators", "operators", "operator"))


def _json_script(element_id: str, data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def layout(lang: str, title: str, body: str, *, user: Any = None, here: str = "",
           csrf: str = "", extra: str = "") -> str:
    """The frame every page shares: header, navigation, language toggle, log out."""
    nav = ""
    if user is not None:
        from hotline.auth import can  # noqa: PLC0415  (auth imports the store, not pages)
        nav = "<nav>" + "".join(
            f'<a href="{href}" class="{"here" if key == here else ""}">{e(t(lang, key))}</a>'
            for href, key, role in ROLE_PAGES if can(user.role, role)) + "</nav>"
        nav += (f'<span class="who">{e(user.username)} · {e(t(lang, "role_" + user.role))}'
                f'</span><form method="post" action="/logout">'
                f'<input type="hidden" name="csrf" value="{e(csrf)}">'
                f'<button class="link">{e(t(lang, "logout"))}</button></form>')
    other = "en" if lang == "zh" else "zh"
    toggle = f'<a href="?lang={other}">{"English" if other == "en" else "中文"}</a>'
    return f"""<!doctype html>
<html lang="{'en' if lang == 'en' else 'zh-CN'}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf" content="{e(csrf)}">
<title>{e(title)} · {e(t(lang, "app"))}</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>{e(t(lang, "app"))}</h1>{nav}<span>{toggle}</span></header>
{extra}
<main>
{body}
</main>
</body>
</html>"""


def login_page(lang: str, error: str, next_url: str, login_csrf: str) -> str:
    """The login form (its own CSRF token, double-submitted in a cookie)."""
    err = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = f"""<div class="login card">
<h2>{e(t(lang, "login"))}</h2>{err}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{e(login_csrf)}">
<input type="hidden" name="next" value="{e(next_url)}">
<label for="username">{e(t(lang, "username"))}</label>
<input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">{e(t(lang, "password"))}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<p><button class="go" type="submit">{e(t(lang, "login"))}</button></p>
</form></div>"""
    return layout(lang, t(lang, "login"), body)


def queue_row(a: dict[str, Any]) -> dict[str, Any]:
    """What the queue (and the live stream) carries of an alert: not the whole body (its
    timeline alone can be 30 kB), the detail page has that."""
    body = a["body"]
    return {k: a[k] for k in ("alert_id", "gateway_id", "home_id", "code", "event",
                              "severity", "title", "room", "device_id", "test", "received_at",
                              "deliveries", "state", "operator", "outcome", "accepted_at",
                              "resolved_at", "district", "escalation", "first_escalated_at")
            } | {"body": {"residents": [{"name": r.get("name", "")}
                                        for r in body.get("residents", [])]}}


def queue_page(lang: str, user: Any, csrf: str, rows: list[dict[str, Any]],
               now: float) -> str:
    """The live queue: four lanes, filled and kept current by console.js."""
    heads = "".join(f"<th>{e(t(lang, k))}</th>" for k in (
        "level", "what", "resident", "room", "since_raised", "state", "actions"))
    lanes = "".join(
        f'<section id="lane-{name}"><h2>{e(t(lang, "lane_" + name))}<span class="n">0</span>'
        f'</h2><table><thead><tr>{heads}</tr></thead><tbody></tbody></table>'
        f'<p class="none sub">{e(t(lang, "empty"))}</p></section>' for name in LANES)
    body = (f'<p><span id="status" class="off">…</span> '
            f'<button id="mute" type="button" aria-pressed="false"></button></p>{lanes}'
            + _json_script("strings", json.loads(strings(lang)))
            + _json_script("technical", sorted(TECHNICAL_EVENTS))
            + _json_script("rooms", {k: (zh if lang == "zh" else en)
                                     for k, (zh, en) in ROOMS.items()})
            + _json_script("initial", [queue_row(a) for a in rows])
            + _json_script("server-now", now)
            + f"<script>{JS}</script>")
    banner = '<div id="banner" role="alert"></div>'
    return layout(lang, t(lang, "queue"), body, user=user, here="queue", csrf=csrf,
                  extra=banner)


def _sev(lang: str, severity: int) -> str:
    return t(lang, f"sev{severity}")


def _title(lang: str, a: dict[str, Any]) -> str:
    return str((a.get("title") or {}).get(lang, a["event"]))


def _since(ts: float, now: float, lang: str) -> str:
    return duration(now - ts, lang)


def _resident(lang: str, r: dict[str, Any]) -> str:
    level = r.get("ability_level")
    rows = [("age", f'{r["age"]} {t(lang, "years")}' if r.get("age") is not None else "—"),
            ("ability", f"{level} · {t(lang, f'ability{level}')}" if level is not None
             else "—"),
            ("conditions", "、".join(map(str, r.get("conditions") or [])) or t(lang, "none")),
            ("medication", r.get("medication") or "—")]
    return (f'<p class="big">{e(str(r.get("name", "")))}</p><dl class="kv">'
            + "".join(f"<dt>{e(t(lang, k))}</dt><dd>{e(str(v))}</dd>" for k, v in rows)
            + "</dl>")


def _contacts(lang: str, contacts: list[dict[str, Any]]) -> str:
    if not contacts:
        return f'<p class="sub">{e(t(lang, "none"))}</p>'
    items = []
    for c in contacts:
        phone = str(c.get("phone", ""))
        tel = quote(phone, safe="+")
        items.append(
            f'<li><strong>{e(str(c.get("name", "")))}</strong> '
            f'<span class="sub">{e(str(c.get("relation", "")))} · {e(phone)}</span>'
            f'<a class="tel btn" href="tel:{e(tel)}">{e(t(lang, "call"))}</a>'
            f'<a class="btn" href="sms:{e(tel)}">{e(t(lang, "sms"))}</a></li>')
    return '<ul class="plain">' + "".join(items) + "</ul>"


def timeline_svg(entries: list[dict[str, Any]], lang: str, end: float | None = None) -> str:
    """The home's last hours as dots, one line per sensor: where there was life, and when."""
    points = []
    for x in entries:
        try:
            points.append((datetime.fromisoformat(x["at"]).timestamp(), x))
        except (KeyError, TypeError, ValueError):
            continue
    if not points:
        return ""
    lines = sorted({(p[1].get("room") or "", p[1].get("device", ""), p[1].get("kind", ""))
                    for p in points})
    t1 = max(end or 0, *(p[0] for p in points))
    t0 = min(t1 - 3600, *(p[0] for p in points))
    left, width, row_h = 190, 560, 22
    height = row_h * len(lines) + 30
    span = max(t1 - t0, 1.0)
    out = [f'<svg class="tl" role="img" viewBox="0 0 {left + width + 30} {height}" '
           f'width="100%" aria-label="{e(t(lang, "timeline"))}">']
    for i, (rm, _dev, kd) in enumerate(lines):
        y = 20 + i * row_h
        out.append(f'<text x="0" y="{y + 4}">{e(room(rm, lang))} · {e(kind(kd, lang))}</text>'
                   f'<line x1="{left}" y1="{y}" x2="{left + width}" y2="{y}" stroke="#ddd"/>')
    index = {k: i for i, k in enumerate(lines)}
    for ts, x in points:
        i = index[(x.get("room") or "", x.get("device", ""), x.get("kind", ""))]
        cx = left + (ts - t0) / span * width
        active = x.get("value") not in (False, 0, None)
        out.append(f'<circle cx="{cx:.1f}" cy="{20 + i * row_h}" r="4" '
                   f'fill="{"#1f6f3f" if active else "#bbb"}"><title>'
                   f'{e(iso_local(x["at"], "%H:%M:%S"))} {e(str(x.get("device", "")))}: '
                   f'{e(reading(str(x.get("kind", "")), x.get("value"), lang))}</title></circle>')
    for k in range(5):
        ts = t0 + span * k / 4
        out.append(f'<text x="{left + width * k / 4:.0f}" y="{height - 2}" text-anchor="middle">'
                   f'{e(local_time(ts, "%H:%M"))}</text>')
    out.append("</svg>")
    return "".join(out)


def _timeline(lang: str, body: dict[str, Any]) -> str:
    entries = body.get("timeline") or []
    if not entries:
        return f'<p class="sub">{e(t(lang, "none"))}</p>'
    items = "".join(
        f'<li>{e(iso_local(x.get("at", ""), "%H:%M:%S"))} · {e(room(x.get("room"), lang))} · '
        f'{e(kind(str(x.get("kind", "")), lang))}: '
        f'{e(reading(str(x.get("kind", "")), x.get("value"), lang))}'
        f'<span class="sub">{e(str(x.get("device", "")))}</span></li>'
        for x in reversed(entries[-40:]))
    end = None
    with contextlib.suppress(KeyError, TypeError, ValueError):
        end = datetime.fromisoformat(body["raised_at"]).timestamp()
    return (timeline_svg(entries, lang, end)
            + f'<details open><summary>{len(entries)}</summary><ul class="plain">{items}</ul>'
              "</details>")


def _audit(lang: str, audit: list[dict[str, Any]]) -> str:
    if not audit:
        return f'<p class="sub">{e(t(lang, "none"))}</p>'
    items = []
    for a in audit:
        d = a.get("detail") or {}
        what = t(lang, "a_" + a["action"])
        extra = []
        if a.get("outcome"):
            extra.append(outcome(a["outcome"], lang))
        if d.get("target"):
            extra.append(t(lang, "d_" + d["target"]))
        if d.get("who"):
            extra.append(str(d["who"]))
        if a.get("note"):
            extra.append(a["note"])
        items.append(f'<li><span class="timer">{e(local_time(a["at"], "%m-%d %H:%M:%S"))}'
                     f'</span> <strong>{e(a["operator"])}</strong> {e(what)}'
                     f'{": " + e(" · ".join(map(str, extra))) if extra else ""}</li>')
    return '<ul class="plain" id="audit">' + "".join(items) + "</ul>"


def _intercom(lang: str, events: list[dict[str, Any]], look_ins: list[dict[str, Any]]) -> str:
    rows = [(ev.get("received_at", 0.0), f'{t(lang, "ev_" + str(ev.get("event")))}'
             f'{" (" + str(ev["request_id"]) + ")" if ev.get("request_id") else ""}')
            for ev in events]
    rows += [(li["at"], f'{t(lang, "a_look_in")} → {li["operator"]} '
              f'({li["detail"].get("request_id", "")})') for li in look_ins]
    if not rows:
        return f'<p class="sub" id="intercom">{e(t(lang, "no_look_in_yet"))}</p>'
    rows.sort(key=lambda r: r[0], reverse=True)
    return '<ul class="plain" id="intercom">' + "".join(
        f'<li><span class="timer">{e(local_time(at, "%m-%d %H:%M:%S"))}</span> {e(text)}</li>'
        for at, text in rows[:30]) + "</ul>"


def _actions(lang: str, a: dict[str, Any]) -> str:
    state = a["state"]
    if state == "resolved":
        return (f'<p class="ok">{e(t(lang, "resolved"))}: '
                f'{e(outcome(a["outcome"], lang))}</p>')
    parts = []
    if state == "received":
        parts.append(f'<button class="primary" data-post="accept">{e(t(lang, "accept"))}'
                     "</button>")
    if state == "accepted":
        targets = "".join(f'<option value="{k}">{e(t(lang, "d_" + k))}</option>'
                          for k in DISPATCH_TARGETS)
        parts.append(
            f'<form class="inline" data-post="note"><textarea name="note" rows="2" cols="40" '
            f'placeholder="{e(t(lang, "note_hint"))}" required></textarea>'
            f'<button>{e(t(lang, "note"))}</button></form>'
            f'<form class="inline" data-post="dispatch"><select name="target">{targets}'
            f'</select><input name="who" placeholder="{e(t(lang, "who_hint"))}" size="16">'
            f'<button>{e(t(lang, "dispatch"))}</button></form>')
    outcomes = "".join(f'<option value="{e(k)}">{e(outcome(k, lang))}</option>'
                       for k in RESOLUTION_OUTCOMES)
    parts.append(f'<form class="inline" data-post="resolve"><select name="outcome">{outcomes}'
                 f'</select><input name="note" placeholder="{e(t(lang, "note_hint"))}" '
                 f'size="20">'
                 f'<button class="go">{e(t(lang, "resolve"))}</button></form>')
    parts.append(f'<form class="inline" data-post="look-in"><button>'
                 f'{e(t(lang, "look_in"))}</button></form>')
    return "".join(parts) + '<p class="error" id="action-error" role="alert"></p>'


DETAIL_JS = """
const CSRF = document.querySelector('meta[name="csrf"]').content;
const ID = document.body.dataset.alert, HOME = document.body.dataset.home;
let reloading = false;
const reload = () => { if (!reloading) { reloading = true; location.reload(); } };
for (const f of document.querySelectorAll("[data-post]")) {
  const go = async (ev) => {
    ev.preventDefault();
    const kind = f.dataset.post;
    const data = f.tagName === "FORM" ? Object.fromEntries(new FormData(f)) : {};
    const url = kind === "look-in"
      ? `/api/homes/${encodeURIComponent(HOME)}/look-in`
      : `/api/alerts/${encodeURIComponent(ID)}/${kind}`;
    if (kind === "look-in" && ID) data.alert_id = ID;
    const r = await fetch(url, {method: "POST", body: JSON.stringify(data),
      headers: {"Content-Type": "application/json", "X-CSRF-Token": CSRF}});
    if (r.ok) { reload(); return; }
    const e = await r.json().catch(() => ({error: r.statusText}));
    document.getElementById("action-error").textContent = e.error || r.statusText;
  };
  if (f.tagName === "FORM") f.addEventListener("submit", go);
  else f.addEventListener("click", go);
}
// Someone else acted on this alert, or the intercom answered: show it (unless typing).
const es = new EventSource("/events");
const typing = () => [...document.querySelectorAll("main textarea, main input")]
  .some((i) => i.value);
const fresh = (m) => {
  const d = JSON.parse(m.data);
  if ((d.alert_id === ID || d.home_id === HOME) && !typing()) reload();
};
es.addEventListener("alert", fresh);
es.addEventListener("intercom", fresh);
"""


def detail_page(lang: str, user: Any, csrf: str, a: dict[str, Any], now: float, *,
                audit: list[dict[str, Any]], previous: list[dict[str, Any]],
                intercom: list[dict[str, Any]], look_ins: list[dict[str, Any]]) -> str:
    """One alert: what, where, who, evidence, contacts, timeline, history, actions, audit."""
    b = a["body"]
    sentences, rest = evidence_lines(a["event"], b.get("evidence") or {}, lang)
    esc = a.get("escalation")
    esc_text = ""
    if esc:
        esc_text = (f'<p class="timer esc">{e(t(lang, "escalated"))}: '
                    f'{e(str(esc.get("tier_name") or esc.get("tier")))}'
                    f'{" · " + t(lang, "reminder") + " " + str(esc["reminder"]) if esc.get("reminder") else ""}'  # noqa: E501
                    f' · {e(t(lang, "since_escalation"))} '
                    f'{e(_since(a["first_escalated_at"] or now, now, lang))}</p>')
    test = f' <span class="test">{e(t(lang, "test_mark"))}</span>' if a["test"] else ""
    what = f"""<div class="card what sev{int(a['severity'])}">
<p class="big">{e(_sev(lang, a['severity']))} · {e(_title(lang, a))}{test}</p>
<dl class="kv">
<dt>{e(t(lang, "room"))}</dt><dd class="big">{e(room(a['room'], lang))}</dd>
<dt>{e(t(lang, "device"))}</dt><dd>{e(a['device_id'] or '—')}</dd>
<dt>{e(t(lang, "raised"))}</dt><dd>{e(iso_local(b.get('raised_at', ''), '%Y-%m-%d %H:%M:%S'))}
 · {e(t(lang, "since_raised"))} {e(_since(a['received_at'], now, lang))}</dd>
<dt>{e(t(lang, "state"))}</dt><dd id="state">{e(t(lang, a['state']))}
 {e(a['operator'] or '')}</dd>
<dt>{e(t(lang, "home"))}</dt><dd><a href="/homes/{quote(a['home_id'])}">{e(a['home_id'])}</a>
 · {e(t(lang, "gateway"))}
 {e(a['gateway_id'])}</dd>
</dl>{esc_text}</div>"""
    ev = "".join(f"<li>{e(s)}</li>" for s in sentences) or f"<li>{e(t(lang, 'none'))}</li>"
    tech = (f'<details><summary>{e(t(lang, "details"))}</summary><pre>'
            f'{e(json.dumps(rest, ensure_ascii=False, indent=1)[:4000])}</pre></details>'
            if rest else "")
    residents = "".join(_resident(lang, r) for r in b.get("residents") or []) or \
        f'<p class="sub">{e(t(lang, "none"))}</p>'
    snap = b.get("snapshot")
    snapshot = ""
    if isinstance(snap, dict) and snap.get("ref"):
        ref = str(snap["ref"])
        link = (f'<a href="{e(ref)}" rel="noreferrer" target="_blank">{e(ref)}</a>'
                if ref.startswith("https://") else e(ref))
        snapshot = (f'<div class="card"><h3>{e(t(lang, "snapshot"))}</h3><p>{link}</p>'
                    f'<p class="sub">{e(iso_local(str(snap.get("taken_at", ""))))}</p></div>')
    prev = _alert_rows(lang, [p for p in previous if p["alert_id"] != a["alert_id"]])
    body = f"""<div class="grid">
{what}
<div class="card"><h3>{e(t(lang, "actions"))}</h3>{_actions(lang, a)}</div>
<div class="card"><h3>{e(t(lang, "evidence"))}</h3><ul id="evidence">{ev}</ul>{tech}</div>
<div class="card"><h3>{e(t(lang, "resident"))}</h3>{residents}</div>
<div class="card"><h3>{e(t(lang, "address"))}</h3><p class="big">{e(b.get('address') or '—')}</p>
<p>{e(t(lang, "district"))}: {e(b.get('district') or a.get('district') or '—')}</p></div>
<div class="card"><h3>{e(t(lang, "contacts"))}</h3>{_contacts(lang, b.get('contacts') or [])}
</div>
{snapshot}
<div class="card"><h3>{e(t(lang, "intercom"))}</h3>{_intercom(lang, intercom, look_ins)}</div>
<div class="card"><h3>{e(t(lang, "audit"))}</h3>{_audit(lang, audit)}</div>
</div>
<h2>{e(t(lang, "timeline"))}</h2><div class="card">{_timeline(lang, b)}</div>
<h2>{e(t(lang, "previous"))}</h2>
<table><tbody>{prev}</tbody></table>
<script>{DETAIL_JS}</script>"""
    page = layout(lang, _title(lang, a), body, user=user, here="queue", csrf=csrf)
    return page.replace("<body>", f'<body data-alert="{e(a["alert_id"])}" '
                                  f'data-home="{e(a["home_id"])}">', 1)


def _alert_rows(lang: str, alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        return f'<tr><td>{e(t(lang, "none"))}</td></tr>'
    return "".join(
        f'<tr class="sev{p["severity"]}"><td>{e(local_time(p["received_at"], "%m-%d %H:%M"))}'
        f'</td><td class="sev">{e(_sev(lang, p["severity"]))}</td><td>'
        f'<a href="/alerts/{quote(p["alert_id"])}">{e(_title(lang, p))}</a></td>'
        f'<td>{e(t(lang, p["state"]))}</td><td>'
        f'{e(outcome(p["outcome"], lang))}</td></tr>'
        for p in alerts)


def home_page(lang: str, user: Any, csrf: str, home_id: str, alerts: list[dict[str, Any]],
              intercom: list[dict[str, Any]], look_ins: list[dict[str, Any]]) -> str:
    """A home: who lives there and whom to call (from its latest alert), a video look-in
    without an alert, its intercom events and its alerts."""
    b = alerts[0]["body"] if alerts else {}
    residents = "".join(_resident(lang, r) for r in b.get("residents") or []) or \
        f'<p class="sub">{e(t(lang, "none"))}</p>'
    body = f"""<h2>{e(t(lang, "home"))} {e(home_id)}</h2><div class="grid">
<div class="card"><h3>{e(t(lang, "resident"))}</h3>{residents}</div>
<div class="card"><h3>{e(t(lang, "address"))}</h3><p class="big">{e(b.get('address') or '—')}</p>
<p>{e(t(lang, "district"))}: {e(b.get('district') or '—')}</p></div>
<div class="card"><h3>{e(t(lang, "contacts"))}</h3>{_contacts(lang, b.get('contacts') or [])}
</div>
<div class="card"><h3>{e(t(lang, "intercom"))}</h3><form class="inline" data-post="look-in">
<button>{e(t(lang, "look_in"))}</button></form>
<p class="error" id="action-error" role="alert"></p>{_intercom(lang, intercom, look_ins)}</div>
</div>
<h2>{e(t(lang, "previous"))}</h2><table><tbody>{_alert_rows(lang, alerts)}</tbody></table>
<script>{DETAIL_JS}</script>"""
    page = layout(lang, f'{t(lang, "home")} {home_id}', body, user=user, here="queue",
                  csrf=csrf)
    return page.replace("<body>", f'<body data-alert="" data-home="{e(home_id)}">', 1)


def history_page(lang: str, user: Any, csrf: str, rows: list[dict[str, Any]]) -> str:
    """Resolved alerts, most recently resolved first."""
    trs = "".join(
        f'<tr class="sev{r["severity"]}"><td>{e(local_time(r["received_at"]))}</td>'
        f'<td class="sev">{e(_sev(lang, r["severity"]))}</td>'
        f'<td><a href="/alerts/{quote(r["alert_id"])}">{e(_title(lang, r))}</a>'
        f'{" <span class=test>" + e(t(lang, "test_mark")) + "</span>" if r["test"] else ""}'
        f'</td><td>{e(r["home_id"])}</td><td>{e(r["operator"] or "")}</td>'
        f'<td>{e(outcome(r["outcome"], lang))}</td>'
        f'<td>{e(local_time(r["resolved_at"]))}</td></tr>' for r in rows)
    heads = "".join(f"<th>{e(t(lang, k))}</th>" for k in (
        "raised", "type", "what", "home", "operator", "outcome", "resolved_at"))
    body = (f'<h2>{e(t(lang, "history"))}</h2><table id="history"><thead><tr>{heads}</tr>'
            f'</thead><tbody>{trs}</tbody></table>')
    return layout(lang, t(lang, "history"), body, user=user, here="history", csrf=csrf)


def _stat_table(lang: str, title: str, groups: dict[str, dict[str, Any]],
                label: Any, table_id: str) -> str:
    heads = "".join(f"<th>{e(h)}</th>" for h in (
        title, t(lang, "count"), t(lang, "outcome"),
        f'{t(lang, "to_accept")} {t(lang, "median")}', f'{t(lang, "to_accept")} P90',
        f'{t(lang, "to_resolve")} {t(lang, "median")}', f'{t(lang, "to_resolve")} P90'))
    rows = []
    for key, f in groups.items():
        outcomes = " · ".join(f"{outcome(k, lang)} {n}" for k, n in sorted(f["outcomes"].items()))
        rows.append(f'<tr data-key="{e(key)}"><td>{e(label(key))}</td>'
                    f'<td class="count">{f["alerts"]}</td><td>{e(outcomes)}</td>'
                    + "".join(f"<td>{e(duration(f[k], lang))}</td>" for k in (
                        "accept_median_s", "accept_p90_s", "resolve_median_s",
                        "resolve_p90_s")) + "</tr>")
    return (f'<h2>{e(title)}</h2><table id="{table_id}"><thead><tr>{heads}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def stats_page(lang: str, user: Any, csrf: str, stats: dict[str, Any] | None, first: str,
               last: str, period: str, error: str) -> str:
    """Statistics for a date range, by type, outcome, period and district; CSV export."""
    periods = "".join(f'<option value="{p}"{" selected" if p == period else ""}>'
                      f'{e(t(lang, p))}</option>' for p in ("day", "week", "month"))
    form = (f'<form class="inline" method="get" action="/stats">'
            f'<label>{e(t(lang, "from"))} <input type="date" name="from" value="{e(first)}">'
            f'</label><label>{e(t(lang, "to"))} <input type="date" name="to" value="{e(last)}">'
            f'</label><label>{e(t(lang, "period"))} <select name="period">{periods}</select>'
            f'</label><button>{e(t(lang, "show"))}</button>'
            f'<a class="btn" href="/stats.csv?from={quote(first)}&amp;to={quote(last)}'
            f'&amp;period={quote(period)}">{e(t(lang, "csv"))}</a></form>')
    if error or stats is None:
        return layout(lang, t(lang, "stats"), form + f'<p class="error">{e(error)}</p>',
                      user=user, here="stats", csrf=csrf)
    from alerts.wire import title as event_title  # noqa: PLC0415

    total = stats["total"]
    body = (form + f'<p class="big" id="total">{e(t(lang, "total"))}: {total["alerts"]}</p>'
            + _stat_table(lang, t(lang, "by_type"), stats["by_type"],
                          lambda k: event_title(k)["en" if lang == "en" else "zh"], "by-type")
            + _stat_table(lang, t(lang, "by_period"), stats["by_period"], str, "by-period")
            + _stat_table(lang, t(lang, "by_district"), stats["by_district"],
                          lambda k: k or t(lang, "unknown_district"), "by-district")
            + _stat_table(lang, t(lang, "by_outcome"), stats["by_outcome"],
                          lambda k: outcome(k, lang), "by-outcome"))
    return layout(lang, t(lang, "stats"), body, user=user, here="stats", csrf=csrf)


def operators_page(lang: str, user: Any, csrf: str, operators: list[dict[str, Any]],
                   message: str, error: str) -> str:
    """Operators: add, change role, disable/enable, reset a password (shown once)."""
    from hotline.auth import ROLES, can  # noqa: PLC0415

    def roles(selected: str) -> str:
        return "".join(f'<option value="{r}"{" selected" if r == selected else ""}>'
                       f'{e(t(lang, "role_" + r))}</option>'
                       for r in ROLES if can(user.role, r))

    hidden = f'<input type="hidden" name="csrf" value="{e(csrf)}">'
    rows = []
    for o in operators if can(user.role, "supervisor") else []:
        name = o["username"]
        state = (t(lang, "disabled") if o["disabled_at"] else "")
        manage = ""
        if can(user.role, o["role"]) and name != user.username:
            toggle = "enable" if o["disabled_at"] else "disable"
            manage = (f'<form class="inline" method="post" action="/operators/{quote(name)}">'
                      f'{hidden}<select name="role">{roles(o["role"])}</select>'
                      f'<button name="do" value="role">{e(t(lang, "save"))}</button>'
                      f'<button name="do" value="{toggle}">{e(t(lang, toggle))}</button>'
                      f'<button name="do" value="reset">{e(t(lang, "reset_password"))}</button>'
                      "</form>")
        rows.append(f'<tr><td>{e(name)}</td><td>{e(t(lang, "role_" + o["role"]))}</td>'
                    f'<td>{e(local_time(o["created_at"]))}</td><td>{e(state)}</td>'
                    f'<td>{manage}</td></tr>')
    msg = f'<p class="ok" role="status">{e(message)}</p>' if message else ""
    err = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    manage_all = ""
    if can(user.role, "supervisor"):
        manage_all = (
            f'<table id="operators"><tbody>{"".join(rows)}</tbody></table>'
            f'<h2>{e(t(lang, "add"))}</h2><form class="inline" method="post" '
            f'action="/operators">{hidden}<input name="username" required '
            f'placeholder="{e(t(lang, "username"))}"><select name="role">{roles("operator")}'
            f'</select><button class="go">{e(t(lang, "add"))}</button></form>')
    body = (f'<h2>{e(t(lang, "operators"))}</h2>{msg}{err}{manage_all}'
            f'<h2>{e(t(lang, "change_password"))}</h2><form class="inline" method="post" '
            f'action="/password">{hidden}<input type="password" name="current" required '
            f'placeholder="{e(t(lang, "password"))}" autocomplete="current-password">'
            f'<input type="password" name="new" required autocomplete="new-password" '
            f'placeholder="{e(t(lang, "new_password"))}"><button>{e(t(lang, "save"))}'
            "</button></form>")
    return layout(lang, t(lang, "operators"), body, user=user, here="operators", csrf=csrf)


__all__ = ["detail_page", "history_page", "home_page", "lane", "layout", "login_page",
           "operators_page", "queue_page", "queue_row", "stats_page", "timeline_svg"]
