"""The reference hotline receiver as an aiohttp app: webhook in, SQLite, a live page out.

    POST /alerts           signed `anxin.alert/1` (alerts/wire.py); 200 once stored,
                           also for a duplicate alert_id (so the gateway stops resending)
    GET  /                 接警台: received alerts, newest first, updated live (SSE)
    GET  /events           server-sent events: `event: alert` with the alert as JSON
    GET  /api/alerts       JSON list, newest first;  GET /api/alerts/{id}
    GET  /api/rejected     refused messages and why
    POST /api/alerts/{id}/accept    {"operator": …}: an operator takes charge
    POST /api/alerts/{id}/resolve   {"operator": …, "outcome": …, "note": …}: closed
    GET  /feedback?gateway_id=…&after=<cursor>&wait=<s>
                           signed long poll: the gateway learns acceptance and resolution
                           (`anxin.feedback/1`, signed over the body)
    POST /notify           stand-in for an SMS/voice gateway: signed `anxin.notify/1`
                           requests are kept (GET /api/notifications), as a provider would
                           receive them, so tests and the demo send real requests
    GET  /api/gateways     every gateway heard from, and when (loss of supervision)
    GET  /healthz          liveness

Operator login comes with the operator console; this reference receiver listens on
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from alerts import wire
from hotline.mqtt_link import MqttLink
from hotline.store import ActionError, AsyncHotlineStore, HotlineStore

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
HEARTBEAT_S = 15.0
TZ = ZoneInfo("Asia/Shanghai")

STORE: web.AppKey[AsyncHotlineStore] = web.AppKey("store", AsyncHotlineStore)
SUBSCRIBERS: web.AppKey[set[asyncio.Queue[dict[str, Any] | None]]] = web.AppKey(
    "subscribers", set)
ACTIONS: web.AppKey[asyncio.Condition] = web.AppKey("actions", asyncio.Condition)
MAX_FEEDBACK_WAIT_S = 30.0
BACKGROUND: web.AppKey[list[asyncio.Task[None]]] = web.AppKey("background", list)
MQTT_LINK: web.AppKey[MqttLink] = web.AppKey("mqtt_link", MqttLink)

# Refusals that are about who sent it (401) rather than what was sent (400).
UNAUTHORISED = frozenset({"unsigned", "bad_signature", "stale", "bad_timestamp"})


def make_app(secret: bytes, store: AsyncHotlineStore,
             clock: Callable[[], float] = time.time, *, supervision_s: float = 120.0,
             supervision_check_s: float = 5.0, mqtt_url: str | None = None,
             mqtt_prefix: str = "anxin", mqtt_share_group: str | None = None
             ) -> web.Application:
    """The receiver app; `clock` is injectable so tests can check the 5-minute rule.

    Supervision: a gateway that polls its feedback feed is supervised, and every signed
    alert or poll from it counts as a sign of life. A gateway silent for `supervision_s`
    (0 = off) becomes a loss-of-supervision alert for its home (网关失联, Contact ID 350,
    severity 2), closed when it is heard again.
    """
    app = web.Application()
    app[STORE] = store
    app[SUBSCRIBERS] = set()
    app[ACTIONS] = asyncio.Condition()
    closing = asyncio.Event()

    def publish(row: dict[str, Any]) -> None:
        for q in app[SUBSCRIBERS]:
            q.put_nowait(row)

    async def alive(gateway_id: str, home_id: str, now: float, *, heartbeat: bool) -> None:
        restored = await store.call(partial(HotlineStore.seen, heartbeat=heartbeat),
                                    gateway_id, home_id, now)
        if restored is not None:
            logger.warning("gateway %s (home %s) heard from again", gateway_id,
                           restored["home_id"])
            publish(restored)

    async def supervise() -> None:
        while True:
            await asyncio.sleep(supervision_check_s)
            for row in await store.call(HotlineStore.gone_silent, clock(), supervision_s, TZ):
                logger.warning("gateway %s (home %s) silent for %.0f s: loss of supervision",
                               row["gateway_id"], row["home_id"],
                               row["body"]["evidence"]["silent_for_s"])
                publish(row)

    async def uplink_status(gateway_id: str, home_id: str, online: bool, now: float) -> None:
        if online:
            # The broker's last will reports a dead uplink at once: no timer needed.
            await alive(gateway_id, home_id, now, heartbeat=False)
            return
        row = await store.call(HotlineStore.went_offline, gateway_id, now, TZ)
        if row is not None:
            logger.warning("gateway %s (home %s) lost its uplink (last will)", gateway_id,
                           row["home_id"])
            publish(row)

    async def start_supervision(app: web.Application) -> None:
        tasks = []
        if supervision_s > 0:
            tasks.append(asyncio.create_task(supervise(), name="hotline-supervision"))
        if mqtt_url is not None:
            link = MqttLink(mqtt_url, secret, store, publish, uplink_status, app[ACTIONS],
                            prefix=mqtt_prefix, share_group=mqtt_share_group, clock=clock)
            app[MQTT_LINK] = link
            tasks.append(asyncio.create_task(link.run(), name="hotline-mqtt"))
        app[BACKGROUND] = tasks

    async def stop_supervision(app: web.Application) -> None:
        for task in app.get(BACKGROUND, []):
            task.cancel()
        await asyncio.gather(*app.get(BACKGROUND, []), return_exceptions=True)

    app.on_startup.append(start_supervision)
    app.on_cleanup.append(stop_supervision)

    async def receive(request: web.Request) -> web.Response:
        now = clock()
        raw = await _read_limited(request, MAX_BODY_BYTES)
        if raw is None:
            await store.call(HotlineStore.reject, request.remote, "too_large",
                             f"body over {MAX_BODY_BYTES} bytes", b"", now)
            return _refuse(413, "too_large", f"body is over {MAX_BODY_BYTES} bytes")
        try:
            msg = wire.verify(secret, request.headers.get(wire.TIMESTAMP_HEADER),
                              request.headers.get(wire.SIGNATURE_HEADER), raw, now)
        except wire.WireError as e:
            logger.warning("refused a message from %s: %s (%s)", request.remote, e.reason, e)
            await store.call(HotlineStore.reject, request.remote, e.reason, str(e), raw, now)
            return _refuse(401 if e.reason in UNAUTHORISED else 400, e.reason, str(e))
        row, duplicate = await store.call(HotlineStore.record, msg.body, now)
        await alive(msg.body["gateway_id"], msg.body["home_id"], now, heartbeat=False)
        if duplicate:
            logger.info("alert %s delivered again (%d deliveries)", row["alert_id"],
                        row["deliveries"])
        else:
            logger.info("alert %s received: %s %s, severity %d, home %s", row["alert_id"],
                        row["code"], row["event"], row["severity"], row["home_id"])
        publish(row)
        return web.json_response({"status": "accepted", "alert_id": row["alert_id"],
                                  "duplicate": duplicate})

    async def notify(request: web.Request) -> web.Response:
        now = clock()
        raw = await _read_limited(request, MAX_BODY_BYTES)
        if raw is None:
            return _refuse(413, "too_large", f"body is over {MAX_BODY_BYTES} bytes")
        try:
            wire.check_signature(secret, request.headers.get(wire.TIMESTAMP_HEADER),
                                 request.headers.get(wire.SIGNATURE_HEADER), raw, now)
        except wire.WireError as e:
            await store.call(HotlineStore.reject, request.remote, e.reason, str(e), raw, now)
            return _refuse(401, e.reason, str(e))
        try:
            msg = json.loads(raw)
            ok = isinstance(msg, dict) and msg.get("schema") == "anxin.notify/1" and all(
                isinstance(msg.get(k), str) for k in ("to", "channel", "text", "alert_id"))
        except ValueError:
            ok = False
        if not ok:
            await store.call(HotlineStore.reject, request.remote, "bad_schema",
                             "not an anxin.notify/1 request", raw, now)
            return _refuse(400, "bad_schema", "not an anxin.notify/1 request")
        row = await store.call(HotlineStore.notified, msg, now)
        logger.info("%s to %s about alert %s: %s", msg["channel"], msg["to"],
                    msg["alert_id"], msg["text"])
        return web.json_response({"status": "accepted", "id": row["id"]})

    async def api_notifications(_request: web.Request) -> web.Response:
        return _json(await store.call(HotlineStore.notifications))

    async def act(request: web.Request, action: str) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            return web.json_response({"error": "body must be JSON"}, status=400)
        if not isinstance(data, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        operator, outcome, note = data.get("operator"), data.get("outcome"), data.get("note", "")
        if not isinstance(operator, str) or not isinstance(note, str) \
                or (outcome is not None and not isinstance(outcome, str)):
            return web.json_response({"error": "operator and note must be strings"}, status=400)
        try:
            row = await store.call(HotlineStore.act, request.match_info["alert_id"], action,
                                   operator, outcome, note, clock())
        except ActionError as e:
            return web.json_response({"error": str(e)}, status=e.status)
        logger.info("alert %s %s by %s", row["alert_id"], action, operator)
        publish(row)
        async with app[ACTIONS]:
            app[ACTIONS].notify_all()
        return _json(row)

    async def accept(request: web.Request) -> web.Response:
        return await act(request, "accepted")

    async def resolve(request: web.Request) -> web.Response:
        return await act(request, "resolved")

    async def feedback(request: web.Request) -> web.Response:
        now = clock()
        try:
            wire.check_signature(secret, request.headers.get(wire.TIMESTAMP_HEADER),
                                 request.headers.get(wire.SIGNATURE_HEADER),
                                 wire.request_signature_base("GET", request.path_qs), now)
        except wire.WireError as e:
            return _refuse(401, e.reason, str(e))
        gateway_id = request.query.get("gateway_id", "")
        try:
            after = int(request.query.get("after") or 0)
            wait = min(float(request.query.get("wait") or 0), MAX_FEEDBACK_WAIT_S)
        except ValueError:
            return _refuse(400, "bad_query", "after must be an integer and wait a number")
        if not gateway_id:
            return _refuse(400, "bad_query", "gateway_id is required")
        await alive(gateway_id, request.query.get("home_id", ""), now, heartbeat=True)
        events, cursor = await store.call(HotlineStore.feedback, gateway_id, after)
        if not events and wait > 0 and not closing.is_set():
            # Long poll: answer as soon as an operator acts, or after `wait` seconds.
            async with app[ACTIONS]:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(app[ACTIONS].wait(), wait)
            events, cursor = await store.call(HotlineStore.feedback, gateway_id, after)
        body = json.dumps({"schema": wire.FEEDBACK_SCHEMA, "gateway_id": gateway_id,
                           "cursor": str(cursor), "events": events},
                          ensure_ascii=False).encode()
        return web.Response(body=body, headers=wire.signed_headers(secret, int(clock()), body))

    async def page(_request: web.Request) -> web.Response:
        rows = await store.call(HotlineStore.alerts)
        return web.Response(text=render_page(rows), content_type="text/html", charset="utf-8")

    async def events(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        app[SUBSCRIBERS].add(q)
        try:
            await resp.write(b": connected\n\n")
            while True:
                try:
                    row = await asyncio.wait_for(q.get(), HEARTBEAT_S)
                except TimeoutError:
                    await resp.write(b": heartbeat\n\n")
                    continue
                if row is None:  # the app is shutting down
                    break
                data = json.dumps(row, ensure_ascii=False)
                await resp.write(f"event: alert\ndata: {data}\n\n".encode())
        except ConnectionResetError:
            pass  # the browser went away
        finally:
            app[SUBSCRIBERS].discard(q)
        return resp

    async def api_alerts(_request: web.Request) -> web.Response:
        return _json(await store.call(HotlineStore.alerts))

    async def api_alert(request: web.Request) -> web.Response:
        row = await store.call(HotlineStore.get, request.match_info["alert_id"])
        if row is None:
            return web.json_response({"error": "no such alert"}, status=404)
        return _json(row)

    async def api_rejected(_request: web.Request) -> web.Response:
        return _json(await store.call(HotlineStore.rejections))

    async def api_gateways(_request: web.Request) -> web.Response:
        return _json(await store.call(HotlineStore.gateways))

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def end_streams(app: web.Application) -> None:
        closing.set()
        for q in app[SUBSCRIBERS]:
            q.put_nowait(None)
        async with app[ACTIONS]:
            app[ACTIONS].notify_all()  # long polls answer now

    app.on_shutdown.append(end_streams)
    app.router.add_post("/alerts", receive)
    app.router.add_get("/", page)
    app.router.add_get("/events", events)
    app.router.add_get("/api/alerts", api_alerts)
    app.router.add_get("/api/alerts/{alert_id}", api_alert)
    app.router.add_get("/api/rejected", api_rejected)
    app.router.add_get("/api/gateways", api_gateways)
    app.router.add_post("/api/alerts/{alert_id}/accept", accept)
    app.router.add_post("/api/alerts/{alert_id}/resolve", resolve)
    app.router.add_get("/feedback", feedback)
    app.router.add_post("/notify", notify)
    app.router.add_get("/api/notifications", api_notifications)
    app.router.add_get("/healthz", healthz)
    return app


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None if it is longer than `limit` (read no further than that)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(status: int, reason: str, error: str) -> web.Response:
    return web.json_response({"status": "rejected", "reason": reason, "error": error},
                             status=status)


def _json(data: Any) -> web.Response:
    return web.json_response(data, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def local_time(ts: float) -> str:
    """Unix seconds as Beijing time, to the second."""
    return datetime.fromtimestamp(ts, TZ).strftime("%Y-%m-%d %H:%M:%S")


SEVERITY = {1: ("紧急", "Life"), 2: ("重要", "Urgent"), 3: ("关注", "Care"),
            4: ("技术", "Technical")}


STATES = {"received": ("待接警", "waiting"), "accepted": ("已接警", "accepted"),
          "resolved": ("已处理", "resolved")}


def _row_html(r: dict[str, Any]) -> str:
    e = html.escape
    zh, en = SEVERITY.get(r["severity"], (str(r["severity"]), ""))
    title = r["title"] or {}
    test = '<span class="test">测试 TEST</span> ' if r["test"] else ""
    state_zh, state_en = STATES.get(r["state"], (r["state"], ""))
    who = r["operator"] or ""
    if r["state"] == "resolved":
        who = f'{who} · {wire.RESOLUTION_OUTCOMES.get(r["outcome"], r["outcome"] or "")}'
    buttons = ""
    if r["state"] == "received":
        buttons += '<button data-act="accept">接警 Accept</button>'
    if r["state"] in ("received", "accepted"):
        buttons += ('<select class="outcome">' + "".join(
            f'<option value="{e(k)}">{e(v)}</option>'
            for k, v in wire.RESOLUTION_OUTCOMES.items())
            + '</select><button data-act="resolve">处理完毕 Resolve</button>')
    return (f'<tr id="a-{e(r["alert_id"])}" data-id="{e(r["alert_id"])}" '
            f'class="sev{int(r["severity"])} st-{e(r["state"])}">'
            f'<td>{e(local_time(r["received_at"]))}</td>'
            f'<td class="sev">{e(zh)}<small>{e(en)}</small></td>'
            f'<td>{test}{e(title.get("zh", r["event"]))}'
            f'<small>{e(title.get("en", ""))}</small></td>'
            f'<td>{e(r["home_id"])}</td><td>{e(r["room"] or "—")}</td>'
            f'<td>{e(r["device_id"] or "—")}</td><td>{int(r["code"])}</td>'
            f'<td class="n">{int(r["deliveries"])}</td>'
            f'<td class="state">{e(state_zh)}<small>{e(state_en)} {e(who)}</small></td>'
            f'<td class="act">{buttons}</td></tr>')


def render_page(rows: list[dict[str, Any]]) -> str:
    """The 接警台 page: rendered on the server, then kept current by /events.

    Test alarms (device self-tests, drills, maintenance mode) have a queue of their own, so
    they never sit among real emergencies.
    """
    real = [r for r in rows if not r["test"]]
    tests = [r for r in rows if r["test"]]
    outcomes = json.dumps(wire.RESOLUTION_OUTCOMES, ensure_ascii=False).replace("<", "\\u003c")
    return (PAGE.replace("{rows}", "\n".join(_row_html(r) for r in real))
            .replace("{test_rows}", "\n".join(_row_html(r) for r in tests))
            .replace("{count}", str(len(real))).replace("{test_count}", str(len(tests)))
            .replace("{outcomes}", outcomes))


PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>安心 接警台 · anxin hotline</title>
<style>
  body { font: 20px/1.5 system-ui, "Noto Sans CJK SC", "Microsoft YaHei", sans-serif;
         margin: 1.5rem; color: #111; background: #fafafa; }
  h1 { font-size: 1.8rem; margin: 0 0 .2rem; }
  h2 { font-size: 1.2rem; margin: 2rem 0 .4rem; color: #555; }
  table.tests { opacity: .85; }
  .sub { color: #555; margin: 0 0 1rem; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: .5rem .7rem; border-bottom: 1px solid #ddd;
           vertical-align: top; }
  th { background: #eee; font-size: .9rem; }
  small { display: block; color: #666; font-size: .75rem; }
  tr.sev1 td.sev { background: #c00; color: #fff; font-weight: bold; }
  tr.sev1 td.sev small { color: #fee; }
  tr.sev2 td.sev { background: #f0a000; font-weight: bold; }
  tr.new { animation: flash 2s ease-out; }
  @keyframes flash { from { background: #ffef9e; } to { background: transparent; } }
  .test { background: #555; color: #fff; padding: 0 .3rem; border-radius: 3px;
          font-size: .8rem; }
  td.n { text-align: right; }
  #status { font-size: .9rem; color: #070; }
  #status.down { color: #c00; }
  tr.st-received td.state { color: #c00; font-weight: bold; }
  tr.st-resolved { color: #777; }
  button, select, input { font-size: .9rem; padding: .3rem .6rem; margin: 0 .2rem .2rem 0; }
  button[data-act="accept"] { background: #c00; color: #fff; border: 0; border-radius: 4px; }
</style>
</head>
<body>
<h1>安心 接警台 <small style="display:inline">anxin hotline</small></h1>
<p class="sub">收到的报警，最新在上；新报警自动出现，无需刷新。
  Alerts received, newest first; new ones appear without a reload.
  <span id="status">● 实时 live</span> · 共 <span id="count">{count}</span> 条</p>
<p class="sub"><label>接警员 Operator: <input id="operator" autocomplete="name"
  placeholder="您的姓名 your name"></label></p>
<table>
<thead><tr><th>接收时间<small>received</small></th><th>级别<small>severity</small></th>
<th>报警<small>alert</small></th><th>家庭<small>home</small></th><th>房间<small>room</small></th>
<th>设备<small>device</small></th><th>CID<small>code</small></th>
<th>送达次数<small>deliveries</small></th><th>状态<small>state</small></th>
<th>操作<small>action</small></th></tr></thead>
<tbody id="alerts">
{rows}
</tbody>
</table>
<h2>测试队列 <small style="display:inline">test queue: self-tests, drills, maintenance mode
· <span id="test-count">{test_count}</span></small></h2>
<table class="tests">
<thead><tr><th>接收时间<small>received</small></th><th>级别<small>severity</small></th>
<th>报警<small>alert</small></th><th>家庭<small>home</small></th><th>房间<small>room</small></th>
<th>设备<small>device</small></th><th>CID<small>code</small></th>
<th>送达次数<small>deliveries</small></th><th>状态<small>state</small></th>
<th>操作<small>action</small></th></tr></thead>
<tbody id="tests">
{test_rows}
</tbody>
</table>
<script>
"use strict";
const SEV = {1: ["紧急", "Life"], 2: ["重要", "Urgent"], 3: ["关注", "Care"],
             4: ["技术", "Technical"]};
function cell(tr, text, small, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.append(document.createTextNode(text));
  if (small) { const s = document.createElement("small"); s.textContent = small; td.append(s); }
  tr.append(td);
  return td;
}
function when(ts) {
  return new Date(ts * 1000).toLocaleString("zh-CN", {timeZone: "Asia/Shanghai", hour12: false});
}
function show(a) {
  const id = "a-" + a.alert_id;
  const old = document.getElementById(id);
  const tr = document.createElement("tr");
  tr.id = id;
  tr.className = "sev" + a.severity + (old ? "" : " new");
  const sev = SEV[a.severity] || [String(a.severity), ""];
  const title = a.title || {};
  cell(tr, when(a.received_at));
  cell(tr, sev[0], sev[1], "sev");
  const t = cell(tr, title.zh || a.event, title.en || "");
  if (a.test) {
    const b = document.createElement("span");
    b.className = "test"; b.textContent = "测试 TEST";
    t.prepend(b, document.createTextNode(" "));
  }
  cell(tr, a.home_id); cell(tr, a.room || "—"); cell(tr, a.device_id || "—");
  cell(tr, String(a.code)); cell(tr, String(a.deliveries), "", "n");
  const st = STATES[a.state] || [a.state, ""];
  let who = a.operator || "";
  if (a.state === "resolved") who += " · " + (OUTCOMES[a.outcome] || a.outcome || "");
  cell(tr, st[0], st[1] + " " + who, "state");
  const act = cell(tr, "", "", "act");
  if (a.state === "received") act.append(button("accept", "接警 Accept"));
  if (a.state === "received" || a.state === "accepted") {
    const sel = document.createElement("select");
    sel.className = "outcome";
    for (const [k, v] of Object.entries(OUTCOMES)) {
      const o = document.createElement("option"); o.value = k; o.textContent = v; sel.append(o);
    }
    act.append(sel, button("resolve", "处理完毕 Resolve"));
  }
  tr.dataset.id = a.alert_id;
  tr.classList.add("st-" + a.state);
  if (old) { old.replaceWith(tr); return; }
  document.getElementById(a.test ? "tests" : "alerts").prepend(tr);
  const c = document.getElementById(a.test ? "test-count" : "count");
  c.textContent = String(Number(c.textContent) + 1);
}
const OUTCOMES = {outcomes};
const STATES = {received: ["待接警", "waiting"], accepted: ["已接警", "accepted"],
                resolved: ["已处理", "resolved"]};
function button(act, text) {
  const b = document.createElement("button"); b.dataset.act = act; b.textContent = text;
  return b;
}
const operator = document.getElementById("operator");
operator.value = localStorage.getItem("anxin-operator") || "";
operator.addEventListener("change", () => localStorage.setItem("anxin-operator", operator.value));
document.body.addEventListener("click", async (ev) => {
  const b = ev.target.closest("button[data-act]");
  if (!b) return;
  const tr = b.closest("tr");
  if (!operator.value.trim()) {
    alert("请先填写接警员姓名 / enter your name first"); operator.focus(); return;
  }
  const body = {operator: operator.value.trim()};
  if (b.dataset.act === "resolve") body.outcome = tr.querySelector("select.outcome").value;
  const r = await fetch(`/api/alerts/${encodeURIComponent(tr.dataset.id)}/${b.dataset.act}`,
    {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  if (!r.ok) alert((await r.json()).error);
});
const status = document.getElementById("status");
const es = new EventSource("/events");
es.addEventListener("alert", (ev) => show(JSON.parse(ev.data)));
es.onopen = () => { status.textContent = "● 实时 live"; status.className = ""; };
es.onerror = () => {
  status.textContent = "● 连接中断，正在重连 reconnecting"; status.className = "down";
};
</script>
</body>
</html>
"""

__all__ = ["MAX_BODY_BYTES", "make_app", "render_page"]

