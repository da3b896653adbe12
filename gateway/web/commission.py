"""The technician's commissioning pages: discover, assign, walk test, test alarm, report.

    GET  /discover               what Zigbee2MQTT has paired, matched to the catalogue; the
                                 latest pairing events; topics seen that no device owns
    POST /discover/assign        name, room, resident → the config file (validated, backed up)
    GET  /walk-test              the walk test: devices tick off live, what is still missing
    POST /walk-test              start (technician, minutes) or stop
    GET  /test-alarm             the end-to-end test alarm and the hotline's answer
    POST /test-alarm             send one
    GET  /reports                the commissioning reports kept on this gateway
    POST /reports                make one now
    GET  /reports/{id}           one report, printable (the browser's Print makes the PDF)
    GET  /reports/{id}.json      the same as JSON, for the acceptance check

They do what `anxin devices add` and `anxin commission …` do (gateway/commissioning.py), in
the running gateway, so a technician can use either. Pages are rendered on the server, with
no scripts; the live ones refresh themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway import commissioning as cm
from gateway.config import ConfigError
from gateway.discover import DiscoveryError, Found, parse_bridge_devices, pick
from gateway.store import Store
from gateway.web.app import GATEWAY, SESSION, page
from gateway.web.auth import Session

if TYPE_CHECKING:
    from gateway.runtime import Gateway

logger = logging.getLogger(__name__)

TEST_ALARM_STATES = {
    "requested": ("已请求，网关正在发送", "requested; the gateway is sending it"),
    "raised": ("已发出，等待服务中心确认收到", "sent; waiting for the centre to confirm"),
    "delivered": ("服务中心已收到，等待接警员接警", "received by the centre; waiting for an "
                                                  "operator"),
    "accepted": ("接警员已接警：测试通过", "accepted by an operator: test passed"),
}
WALK_MINUTES_MAX = 240


def add_routes(app: web.Application) -> None:
    app.router.add_get("/discover", discover_page)
    app.router.add_post("/discover/assign", assign)
    app.router.add_get("/walk-test", walk_test_page)
    app.router.add_post("/walk-test", walk_test_action)
    app.router.add_get("/test-alarm", test_alarm_page)
    app.router.add_post("/test-alarm", test_alarm_send)
    app.router.add_get("/reports", reports_page)
    app.router.add_post("/reports", report_make)
    app.router.add_get(r"/reports/{rid:\d+}", report_view)
    app.router.add_get(r"/reports/{rid:\d+}.json", report_json)


def _gw(request: web.Request) -> Gateway:
    return request.app[GATEWAY]


def _session(request: web.Request) -> Session:
    return request[SESSION]


def _csrf(request: web.Request) -> str:
    return f'<input type="hidden" name="csrf" value="{html.escape(_session(request).csrf)}">'


def _when(gw: Gateway, ts: float | None, fmt: str = "%H:%M:%S") -> str:
    return "—" if ts is None else datetime.fromtimestamp(ts, gw.tz).strftime(fmt)


def _technician(request: web.Request, form: Any) -> str:
    """The technician's name from the form, remembered in the session for the next steps."""
    session = _session(request)
    name = str(form.get("technician", "")).strip()[:60]
    if name:
        session.technician = name
    if not session.technician:
        raise web.HTTPBadRequest(text="the technician's name is needed for the report")
    return session.technician


# --- discover and assign ----------------------------------------------------------------------


def _suggest_id(f: Found, taken: set[str]) -> str:
    stem = (f.mapped_classes or ("device",))[0] if not f.in_catalogue else None
    if stem is None:
        from devices.catalogue import find_model  # noqa: PLC0415

        model = find_model(f.model or "")
        stem = model.classes[0] if model else "device"
    name = re.sub(r"[^A-Za-z0-9_.:-]+", "-", f.friendly_name).strip("-")[:40] or "device"
    base = f"{stem.replace('_', '-')}-{name}"
    out, n = base, 2
    while out in taken:
        out, n = f"{base}-{n}", n + 1
    return out


def _paired(gw: Gateway) -> tuple[list[Found], str | None]:
    if gw.bridge_devices is None:
        return [], ("还没有收到 Zigbee2MQTT 的设备列表（bridge/devices）：Zigbee2MQTT 是否在运行、"
                    "是否连接到同一个消息服务器？ / No bridge/devices from Zigbee2MQTT yet: is "
                    "it running, on this broker?")
    base = gw.cfg.mqtt.zigbee2mqtt_base_topic
    try:
        return parse_bridge_devices(gw.bridge_devices, base,
                                    {d.topic: d.id for d in gw.cfg.devices}), None
    except DiscoveryError as e:
        return [], str(e)


async def discover_page(request: web.Request, problem: str = "", done: str = "",
                        status: int = 200) -> web.Response:
    gw = _gw(request)
    e = html.escape
    found, missing = _paired(gw)
    taken = {d.id for d in gw.cfg.devices}
    rooms = sorted({d.room for d in gw.cfg.devices if d.room})
    residents = [r.name for r in gw.cfg.home.residents]
    room_list = "".join(f'<option value="{e(r)}">' for r in rooms)
    rows = []
    for f in found:
        if f.in_catalogue:
            known = '<span class="ok">✓ 目录中 in the catalogue</span>'
        elif f.usable:
            known = ('<span class="warn">目录中没有此型号，按其 exposes 映射为 '
                     f'{e(", ".join(f.mapped_classes))} · mapped from Zigbee2MQTT exposes'
                     '</span>')
        elif not f.interviewed:
            known = "配对中 interview not finished"
        else:
            known = f'<span class="bad">✗ 不能使用 not usable: {e(f.unmappable or "")}</span>'
        if f.configured_as:
            action = f'<span class="ok">已配置为 configured as <b>{e(f.configured_as)}</b></span>'
        elif f.usable and f.interviewed:
            who = "".join(f'<option value="{e(r)}">{e(r)}</option>' for r in residents)
            action = f"""<form method="post" action="/discover/assign" class="assign">
{_csrf(request)}<input type="hidden" name="device" value="{e(f.friendly_name)}">
<label>编号 id <input name="id" value="{e(_suggest_id(f, taken))}" required size="18"></label>
<label>名称 name <input name="name" size="10" placeholder="如 入户门"></label>
<label>房间 room <input name="room" list="rooms" size="10" required></label>
<label>住户 resident <select name="resident"><option value="">—</option>{who}</select></label>
<button>添加 Assign</button></form>"""
        else:
            action = "—"
        rows.append(
            f"<tr><td><b>{e(f.friendly_name)}</b><br><small>{e(f.ieee_address)}</small></td>"
            f"<td>{e(f.vendor or '?')} {e(f.model or '?')}<br><small>"
            f"{e(f.description or '')}</small></td><td>{known}</td><td>{action}</td></tr>")
    events = "".join(
        f"<li>{_when(gw, at)} {e(ev.type)} <b>{e(ev.friendly_name)}</b>"
        f"{' ' + e(ev.status) if ev.status else ''}{' · ' + e(ev.model) if ev.model else ''}"
        "</li>" for at, ev in gw.bridge_events)
    unknown = [q for q in await gw.store.call(Store.quarantined)
               if q["category"] == "unknown_device"][:20]
    strays = "".join(
        f"<tr><td><code>{e(q['topic'])}</code></td><td>{q['count']}</td>"
        f"<td>{_when(gw, q['last_at'], '%m-%d %H:%M')}</td>"
        f"<td><code>{e(bytes(q['last_payload'] or b'')[:80].decode('utf-8', 'replace'))}"
        "</code></td></tr>" for q in unknown)
    body = f"""<h1>设备发现与分配 <small>Discover and assign</small></h1>
{f'<p class="bad">{e(problem)}</p>' if problem else ''}
{f'<p class="ok">{e(done)}</p>' if done else ''}
<p>在 Zigbee2MQTT 中开启配对（permit join），触发新设备配对；配对完成后在这里分配房间和住户。
分配会写入网关配置（先校验、旧版本自动备份），网关立即开始监测。<br><small>Pair in Zigbee2MQTT,
then assign each device here: written to the gateway's config (validated, backed up) and
watched at once.</small></p>
{f'<p class="warn">{e(missing)}</p>' if missing else ''}
<datalist id="rooms">{room_list}</datalist>
<h2>已配对设备 Paired devices ({len(found)})</h2>
<table><tr><th>设备 device</th><th>型号 model</th><th>目录 catalogue</th><th>分配 assign</th></tr>
{''.join(rows) or '<tr><td colspan="4">无 none</td></tr>'}</table>
<h2>配对事件 Pairing events</h2><ul>{events or '<li>无 none</li>'}</ul>
<h2>未知主题 Topics no device owns</h2>
<table><tr><th>主题 topic</th><th>次数 count</th><th>最近 last</th><th>内容 payload</th></tr>
{strays or '<tr><td colspan="4">无 none</td></tr>'}</table>"""
    return page("设备发现 Discover", body, refresh=None if problem else 10, status=status)


async def assign(request: web.Request) -> web.Response:
    gw = _gw(request)
    form = await request.post()
    name = str(form.get("device", ""))
    device_id = str(form.get("id", "")).strip()
    found, missing = _paired(gw)
    try:
        if missing:
            raise DiscoveryError(missing)
        fields = pick(found, name).device_fields(gw.cfg.mqtt.zigbee2mqtt_base_topic)
    except DiscoveryError as e:
        return await discover_page(request, problem=str(e), status=400)
    fields |= {k: str(form.get(k, "")).strip() or None for k in ("name", "room", "resident")}
    try:
        backup = await gw.assign_device(device_id, fields)
    except ConfigError as e:
        problems = "; ".join(msg for _, msg in e.problems)
        return await discover_page(request, problem=f"没有写入 not written: {problems}",
                                   status=400)
    logger.warning("technician assigned %s (%s) as %s in %s", name, fields["model"], device_id,
                   fields.get("room"))
    return await discover_page(request, done=f"✓ {device_id} 已添加并开始监测 added and "
                                             f"watched (备份 backup: {backup.name})")


# --- walk test --------------------------------------------------------------------------------


async def walk_test_page(request: web.Request) -> web.Response:
    gw = _gw(request)
    e = html.escape
    await gw.flush_observations()
    current = await gw.store.call(cm.active_walk_test)
    shown = current
    if shown is None:
        last = await gw.store.call(Store.records, "walk_test", 1)
        shown = last[0] if last else None
    found = [] if shown is None else await gw.store.call(cm.walk_test_results, gw.cfg, shown)
    passed = sum(r.passed for r in found)
    rows = []
    for r in sorted(found, key=lambda r: (r.passed, r.room or "", r.device)):
        battery = "—" if r.battery is None else f"{r.battery:g}%"
        if r.battery_low:
            battery = f'<span class="bad">{battery} 电量低 low</span>'
        lqi = "—" if r.link_quality is None else f"{r.link_quality:g}"
        if r.weak_link:
            lqi = f'<span class="bad">{lqi} 信号弱 weak</span>'
        if r.availability == "never":
            lqi += ('<br><span class="bad">未收到在线状态：请在 Zigbee2MQTT 开启 availability'
                    '<br><small>no availability: enable it in Zigbee2MQTT</small></span>')
        elif r.availability == "offline":
            lqi += '<br><span class="bad">离线 offline</span>'
        state = (f'<span class="ok">✓ {_when(gw, r.passed_at)} {e(r.trigger or "")}</span>'
                 if r.passed else f'<span class="todo">请 {e(r.todo_zh)}<br><small>'
                                  f'{e(r.todo_en)}</small></span>')
        rows.append(
            f'<tr class="{"done" if r.passed else "missing"}" data-device="{e(r.device)}">'
            f"<td><b>{e(r.device)}</b><br><small>{e(r.name or '')}</small></td>"
            f"<td>{e(r.room or '—')}</td><td>{e(r.model)}</td><td>{battery}</td><td>{lqi}</td>"
            f"<td>{state}</td></tr>")
    technician = _session(request).technician
    if current is not None:
        missing = [r.device for r in found if not r.passed]
        head = (f'<p class="warn">走测进行中（{e(current["technician"] or "")}，'
                f'{_when(gw, current["started_at"])} 开始）：测试模式开启，所有报警按测试发送。'
                f'<br><small>Walk test under way: test mode on, every alert is a test.</small></p>'
                f'<p class="big">已通过 passed <b id="passed">{passed}/{len(found)}</b>'
                + (f' · 还差 still missing: {e(", ".join(missing))}' if missing else
                   ' · <span class="ok">全部通过 all passed</span>') + "</p>"
                f'<form method="post" action="/walk-test">{_csrf(request)}'
                '<input type="hidden" name="action" value="stop">'
                "<button>结束走测 Finish walk test</button></form>")
    else:
        head = f"""<form method="post" action="/walk-test">{_csrf(request)}
<input type="hidden" name="action" value="start">
<p><label>技术员姓名 Technician <input name="technician" value="{e(technician)}" required>
</label> <label>最长 at most <input name="minutes" value="{cm.DEFAULT_WALK_MINUTES}" size="3">
分钟 minutes</label> <button>开始走测 Start walk test</button></p></form>
<p class="hint">开始后逐一触发每个设备：开门、在人体传感器前走过、按呼叫按钮、按住烟感测试键……
本页实时勾选。<br>Then trigger each device; this page ticks them off as they report.</p>"""
        if shown is not None:
            started = _when(gw, shown["started_at"], "%Y-%m-%d %H:%M")
            head += (f"<h2>上次走测 Last walk test <small>{started} · "
                     f"{e(shown['technician'] or '')} · {passed}/{len(found)} 通过 passed"
                     "</small></h2>")
    body = f"""<h1>走测 <small>Walk test</small></h1>{head}
<table><tr><th>设备 device</th><th>房间 room</th><th>型号 model</th><th>电量 battery</th>
<th>信号 LQI</th><th>结果 result</th></tr>{''.join(rows)}</table>"""
    return page("走测 Walk test", body, refresh=2 if current is not None else None)


async def walk_test_action(request: web.Request) -> web.Response:
    gw = _gw(request)
    form = await request.post()
    now = gw.clock.now()  # the walk test compares it with the devices' observations
    if form.get("action") == "start":
        try:
            minutes = float(str(form.get("minutes", cm.DEFAULT_WALK_MINUTES)))
        except ValueError:
            raise web.HTTPBadRequest(text="minutes must be a number") from None
        if not 1 <= minutes <= WALK_MINUTES_MAX:
            raise web.HTTPBadRequest(text=f"minutes must be 1..{WALK_MINUTES_MAX}")
        try:
            await gw.store.call(cm.start_walk_test, _technician(request, form), now, minutes)
        except cm.CommissioningError as e:
            raise web.HTTPBadRequest(text=str(e)) from None
    else:
        await gw.flush_observations()
        with contextlib.suppress(cm.CommissioningError):  # a second click, or the CLI did
            await gw.store.call(cm.finish_walk_test, gw.cfg, now)
    gw.maintenance_until = await gw.store.call(Store.maintenance_until)
    raise web.HTTPSeeOther("/walk-test")


# --- end-to-end test alarm ----------------------------------------------------------------------


async def test_alarm_page(request: web.Request) -> web.Response:
    gw = _gw(request)
    e = html.escape
    latest = await gw.store.call(Store.records, "test_alarm", 1)
    status = (await gw.store.call(cm.test_alarm_status, latest[0]["id"])) if latest else None
    live = False
    if status is None:
        result = "<p>还没有发送过测试报警 No test alarm sent yet.</p>"
    else:
        zh, en = TEST_ALARM_STATES[status["state"]]
        ok = status["state"] == "accepted"
        live = not ok and gw.clock.now() - status["requested_at"] < 600
        acks = "".join(
            f"<li>{e(t)}: " + (f'<span class="ok">已确认收到 acknowledged '
                               f'{_when(gw, d["acked_at"])}</span>' if d["acked_at"] else
                               f"尝试 attempts {d['attempts']} {e(d['last_error'] or '')}")
            + "</li>" for t, d in status["delivered"].items())
        result = f"""<p class="big {'ok' if ok else 'warn'}" id="test-alarm-state">{e(zh)}<br>
<small>{e(en)}</small></p>
<ul><li>请求 requested {_when(gw, status['requested_at'])} · 技术员
{e(status['technician'] or '')}</li><li>发出 raised {_when(gw, status['raised_at'])} · 报警编号
alert {e(status['alert_id'] or '—')}</li>{acks}<li>接警 accepted: {e(status['accepted_by'] or '—')}
{_when(gw, status['accepted_at'])}</li></ul>"""
    body = f"""<h1>端到端测试报警 <small>End-to-end test alarm</small></h1>
<p>向服务中心发送一条标记为"测试"的报警（Contact ID 601），经过与真实报警相同的路径；请电话告知
服务中心接警员接警，本页显示送达与接警结果。<br><small>A test alarm through the same path as a
real one; ask the centre's operator to accept it; the answer shows here.</small></p>
<form method="post" action="/test-alarm">{_csrf(request)}
<label>技术员 Technician <input name="technician" value="{e(_session(request).technician)}"
 required></label> <button>发送测试报警 Send test alarm</button></form>
{result}"""
    return page("测试报警 Test alarm", body, refresh=1 if live else None)


async def test_alarm_send(request: web.Request) -> web.Response:
    gw = _gw(request)
    technician = _technician(request, await request.post())
    now = gw.clock.now()
    rid = await gw.store.call(cm.request_test_alarm, technician, now)
    await gw.raise_test_alarm(rid, now)  # at once; the settings request then finds it done
    raise web.HTTPSeeOther("/test-alarm")


# --- reports -----------------------------------------------------------------------------------


async def reports_page(request: web.Request) -> web.Response:
    gw = _gw(request)
    e = html.escape
    kept = await gw.store.call(Store.records, "report", 50)
    rows = "".join(
        f"<tr><td>{r['id']}</td><td>{_when(gw, r['started_at'], '%Y-%m-%d %H:%M')}</td>"
        f"<td>{e(r['technician'] or '')}</td><td>"
        + ('<span class="ok">✓ 通过 passed</span>' if r["report"]["passed"] else
           '<span class="bad">✗ 未通过 not passed</span>')
        + f'</td><td><a href="/reports/{r["id"]}">查看/打印 view, print</a> · '
          f'<a href="/reports/{r["id"]}.json">JSON</a></td></tr>' for r in kept)
    body = f"""<h1>安装调试报告 <small>Commissioning reports</small></h1>
<p>报告汇总设备、房间、型号与固件、安装时电量和信号、走测结果、端到端测试结果、技术员和日期，
保存在网关上，供民政验收。<br><small>Kept on the gateway for the acceptance check.</small></p>
<form method="post" action="/reports">{_csrf(request)}
<label>技术员 Technician <input name="technician" value="{e(_session(request).technician)}"
 required></label> <button>生成报告 Make report</button></form>
<table><tr><th>编号 no.</th><th>日期 date</th><th>技术员 technician</th><th>结果 result</th>
<th></th></tr>{rows or '<tr><td colspan="5">无 none</td></tr>'}</table>"""
    return page("报告 Reports", body)


async def report_make(request: web.Request) -> web.Response:
    gw = _gw(request)
    technician = _technician(request, await request.post())
    await gw.flush_observations()
    report = await gw.store.call(cm.build_report, gw.cfg, technician, gw.clock.now())
    folder = gw.cfg.data_path() / "reports"
    await asyncio.to_thread(cm.save_report_files, report, folder)
    raise web.HTTPSeeOther(f"/reports/{report['id']}")


async def _report(request: web.Request) -> dict[str, Any]:
    gw = _gw(request)
    rec = await gw.store.call(Store.record, int(request.match_info["rid"]))
    if rec is None or rec["kind"] != "report":
        raise web.HTTPNotFound(text="no such report")
    return {**rec["report"], "id": rec["id"]}


async def report_view(request: web.Request) -> web.Response:
    report = await _report(request)
    return web.Response(text=cm.render_html(report), content_type="text/html",
                        charset="utf-8")


async def report_json(request: web.Request) -> web.Response:
    report = await _report(request)
    return web.Response(
        text=json.dumps(report, ensure_ascii=False, indent=2), content_type="application/json",
        charset="utf-8", headers={"Content-Disposition": f'attachment; filename="'
                                  f'commissioning-{report["home_id"]}-{report["id"]}.json"'})
