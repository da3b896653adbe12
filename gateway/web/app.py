"""The technician pages: is this home covered? Login, then one status page.

    GET  /login, POST /login, POST /logout
    GET  /                   status: broker, path to the centre, outbox, devices, recent alerts
    POST /maintenance        start (minutes) or stop test/maintenance mode
    GET  /healthz            liveness (the only route without a login)

Every other route needs a session; every form carries the session's CSRF token. Pages are
rendered on the server (no scripts) and refresh themselves every few seconds.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from alerts import wire
from alerts.maintenance import ITEM_TEXT
from gateway.commissioning import BUTTON_STATS_DAYS, button_report
from gateway.store import Store
from gateway.web.auth import Session, Sessions, check_code

if TYPE_CHECKING:
    from gateway.runtime import Gateway

logger = logging.getLogger(__name__)

COOKIE = "anxin_session"
CODE_SETTING = "technician_code_hash"
GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway")
SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions", Sessions)
SESSION: web.RequestKey[Session] = web.RequestKey("session", Session)
OPEN_ROUTES = frozenset({"/login", "/healthz"})
HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A session on every route but login and health; security headers on every answer."""
    if request.path not in OPEN_ROUTES:
        session = request.app[SESSIONS].get(request.cookies.get(COOKIE))
        if session is None:
            if request.method == "GET":
                raise web.HTTPSeeOther("/login")
            raise web.HTTPUnauthorized(text="log in first")
        if request.method == "POST":
            form = await request.post()
            if form.get("csrf") != session.csrf:
                raise web.HTTPForbidden(text="stale or forged form (CSRF token)")
        request[SESSION] = session
    response = await handler(request)
    response.headers.update(HEADERS)
    return response


def make_app(gw: Gateway) -> web.Application:
    """The technician app for a running gateway."""
    app = web.Application(middlewares=[guard])
    app[GATEWAY] = gw
    app[SESSIONS] = Sessions()
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", status_page)
    app.router.add_post("/maintenance", maintenance)
    app.router.add_get("/healthz", healthz)
    from gateway.web.commission import add_routes  # noqa: PLC0415 (it imports this module)

    add_routes(app)
    return app


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def login_page(request: web.Request, problem: str = "") -> web.Response:
    e = html.escape
    body = f"""<h1>安心 网关 · 技术人员登录 <small>technician login</small></h1>
<form method="post" action="/login">
<p><label>技术人员代码 Technician code<br>
<input name="code" autocomplete="one-time-code" autofocus required
 placeholder="XXXX-XXXX-XXXX"></label></p>
<p><button>登录 Log in</button></p>
{f'<p class="bad">{e(problem)}</p>' if problem else ''}
<p class="hint">代码在网关首次启动时生成；忘记了可在网关上运行
<code>anxin technician-code --config …</code> 生成新代码。<br>
The code was made at the gateway's first start; `anxin technician-code` makes a new one.</p>
</form>"""
    return page("登录 Login", body, status=401 if problem else 200, nav=False)


async def login(request: web.Request) -> web.Response:
    gw, sessions = request.app[GATEWAY], request.app[SESSIONS]
    # Login lockouts are about a person at a keyboard: real time, whatever the gateway's clock.
    addr, now = request.remote or "?", time.time()
    wait = sessions.locked(addr, now)
    if wait:
        return await login_page(request, f"尝试次数过多，请 {wait:.0f} 秒后再试 / too many "
                                         f"tries, wait {wait:.0f} s")
    form = await request.post()
    stored = await gw.store.call(Store.setting, CODE_SETTING)
    code = str(form.get("code", ""))
    if not stored or not check_code(code, stored):
        sessions.failed(addr, now)
        logger.warning("technician login refused from %s", addr)
        return await login_page(request, "代码不对 / wrong code")
    token, _ = sessions.open(addr, now)
    logger.info("technician logged in from %s", addr)
    response = web.HTTPSeeOther("/")
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict",
                        secure=request.secure, max_age=8 * 3600)
    raise response


async def logout(request: web.Request) -> web.Response:
    request.app[SESSIONS].close(request.cookies.get(COOKIE))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE)
    raise response


async def maintenance(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    form = await request.post()
    now = gw.clock.now()  # compared with the gateway's own `now`
    if form.get("action") == "start":
        try:
            minutes = float(str(form.get("minutes", "60")))
        except ValueError:
            raise web.HTTPBadRequest(text="minutes must be a number") from None
        if not 1 <= minutes <= 24 * 60:
            raise web.HTTPBadRequest(text="minutes must be 1..1440")
        until = now + minutes * 60
    else:
        until = 0.0
    await gw.store.call(Store.set_maintenance_until, until, now)
    gw.maintenance_until = until
    logger.warning("technician %s test/maintenance mode from the web page",
                   "started" if until else "ended")
    raise web.HTTPSeeOther("/")


def _ago(now: float, ts: float | None) -> str:
    if ts is None:
        return "从未 never"
    s = now - ts
    if s < 90:
        return f"{s:.0f} 秒前"
    if s < 5400:
        return f"{s / 60:.0f} 分钟前"
    return f"{s / 3600:.1f} 小时前"


async def status_page(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    csrf = request[SESSION].csrf
    e = html.escape
    now = gw.clock.now()  # "seen 3 min ago": on the clock the observations were stamped with
    st = await gw.status()
    recent = await gw.store.call(Store.alerts, 10)
    troubles = await gw.store.call(Store.troubles)
    buttons = await gw.store.call(button_report, gw.cfg, now)

    def mark(ok: bool) -> str:
        return '<span class="ok">✓</span>' if ok else '<span class="bad">✗</span>'

    down = st["path_down_since"]
    def path(since: float | None) -> str:
        return "正常 up" if since is None else f"中断 down since {_ago(now, since)}"

    targets = "".join(
        f"<tr><td>{e(t['name'])}</td><td>{mark(t['down_since'] is None)} "
        f"{path(t['down_since'])}</td><td>{t['sent']}</td>"
        f"<td>{st['outbox_depth'].get(t['name'], 0)}</td></tr>" for t in st["targets"])
    memory = gw.core.instant.devices
    offline = gw.core.supervision.offline
    rows = []
    for dev, model in gw.devices.values():
        mem = memory.get(dev.id)
        last = mem.last if mem else {}
        state = "在线 ok"
        bad = False
        if dev.id in offline or last.get("availability") == "offline":
            state, bad = "离线 offline", True
        elif mem is not None and mem.battery_alarmed:
            state, bad = "电量低 low battery", True
        elif dev.id not in gw.last_seen:
            state = "未上报 not heard yet"
        battery = last.get("battery")
        lq = last.get("link_quality")
        rows.append(
            f"<tr class=\"{'bad' if bad else ''}\"><td>{e(dev.id)}</td><td>{e(dev.name or '')}"
            f"</td><td>{e(model.model)}</td><td>{e(dev.room or '—')}</td>"
            f"<td>{_ago(now, gw.last_seen.get(dev.id))}</td>"
            f"<td>{'—' if battery is None else f'{battery:.0f}%'}</td>"
            f"<td>{'—' if lq is None else int(lq)}</td><td>{state}</td></tr>")
    alerts = "".join(
        f"<tr><td>{datetime.fromtimestamp(a['created_at'], gw.tz):%m-%d %H:%M:%S}</td>"
        f"<td>{e(wire.title(a['event'])['zh'])}{' [测试 TEST]' if a['test'] else ''}</td>"
        f"<td>{e(a['room'] or '—')}</td><td>{e(a['state'])}</td></tr>" for a in recent)
    trouble_rows = "".join(
        f"<tr class=\"bad\"><td>{e(t.device)}</td><td>{e(t.room or '—')}</td>"
        f"<td>{e(' '.join(ITEM_TEXT.get(t.event, (t.event, ''))))}</td>"
        f"<td>{datetime.fromtimestamp(t.first_at, gw.tz):%m-%d %H:%M}</td><td>{t.count}</td>"
        "</tr>" for t in troubles)
    button_rows = "".join(
        f"<tr class=\"{'bad' if b['last_self_test_failed'] else ''}\"><td>{e(b['id'])}</td>"
        f"<td>{e(b['room'] or '—')}</td><td>{b['presses']}</td><td>{b['alerts']}</td>"
        f"<td>{b['false_alarms']}</td><td>{_ago(now, b['last_press'])}</td><td>"
        + (" ".join("✓" if t["passed"] else "✗" for t in b["self_tests"][:8]) or "—")
        + "</td></tr>" for b in buttons)
    hs, day = st["home_state"], st["routine"]
    mode = ("外出 away" + ("（外出键 away key）" if hs["away_key"] else "")
            if hs["mode"] == "away" else "在家 at home")
    home_line = (f"<p>家中 Home: {mode}"
                 + (f" · 自 since {_ago(now, hs['since'])}" if hs["since"] else "")
                 + (f" · 作息 routine {e(day['day'])}: 活动 {day['movements']} / 平常 usual "
                    f"{day['expected']}（{day['ratio']:.0%}），偏离分 score {day['score']}"
                    if day else " · 作息 routine: 学习中 still learning") + "</p>")
    store_line = _storage_line(st, now)
    clock = st.get("clock") or {}
    if clock.get("trusted", True):
        clock_line = ""
    else:  # a Pi without a real-time clock, before NTP: say so, alerts still go out
        clock_line = ('<p class="warn">时钟未同步 clock NOT synchronised（无网络授时）：'
                      '报警照常发送并附带发生后经过的时间，联网授时后自动校正 / alerts still '
                      'go out with their age; times are corrected when NTP arrives</p>')
    mm = st["maintenance_until"]
    maint = (f'<p class="warn">测试/维护模式 开启，至 '
             f'{datetime.fromtimestamp(mm, gw.tz):%H:%M}：所有报警按测试发送 / test mode ON</p>'
             f'<form method="post" action="/maintenance"><input type="hidden" name="csrf" '
             f'value="{e(csrf)}"><input type="hidden" name="action" value="stop">'
             f'<button>结束测试模式 End test mode</button></form>') if mm else (
        f'<form method="post" action="/maintenance"><input type="hidden" name="csrf" '
        f'value="{e(csrf)}"><input type="hidden" name="action" value="start">'
        f'<label>开始测试/维护模式 Start test mode for <input name="minutes" value="60" '
        f'size="4"> 分钟 minutes</label> <button>开始 Start</button></form>')
    body = f"""<h1>安心 网关 {e(st['gateway_id'])} <small>家庭 home {e(st['home_id'])}</small></h1>
<form method="post" action="/logout" class="right"><input type="hidden" name="csrf"
 value="{e(csrf)}"><button>退出 Log out</button></form>
<p>{mark(st['broker_connected'])} MQTT 消息服务器 broker
{'已连接 connected' if st['broker_connected'] else '未连接 NOT connected'} ·
{mark(down is None)} 服务中心链路 path to the centre:
{'正常 up' if down is None else '中断 DOWN since ' + _ago(now, down) + '（报警会保存并重发）'}
· 磁盘剩余 disk free {st['disk_free_mb']} MB</p>
{store_line}
{clock_line}
{home_line}
<h2>服务中心 Delivery targets</h2>
<table><tr><th>目标 target</th><th>状态 state</th><th>已送达 sent</th><th>待发 waiting</th></tr>
{targets}</table>
<h2>测试/维护模式 Test/maintenance mode</h2>{maint}
<h2>设备 Devices ({st['devices'].get('online', 0)} 在线 online /
{st['devices']['configured']})</h2>
<table><tr><th>设备 id</th><th>名称 name</th><th>型号 model</th><th>房间 room</th>
<th>最近上报 last heard</th><th>电量 battery</th><th>信号 link</th><th>状态 state</th></tr>
{''.join(rows)}</table>
<h2>维护队列 Maintenance queue ({len(troubles)})</h2>
<p class="hint">每天 {gw.cfg.maintenance.digest_hour}:00 汇总发送给服务中心 · sent to the centre
in one digest daily</p>
<table><tr><th>设备 device</th><th>房间 room</th><th>问题 trouble</th><th>自 since</th>
<th>次数 count</th></tr>{trouble_rows or '<tr><td colspan="5">无 none</td></tr>'}</table>
<h2>紧急按钮 Alarm buttons <small>近 {BUTTON_STATS_DAYS} 天 last {BUTTON_STATS_DAYS} days
</small></h2>
<table><tr><th>按钮 button</th><th>房间 room</th><th>按下 presses</th><th>报警 alerts</th>
<th>误报 false</th><th>最近按下 last press</th><th>每周测试 self-tests</th></tr>
{button_rows or '<tr><td colspan="7">无 none</td></tr>'}</table>
<h2>最近报警 Recent alerts</h2>
<table><tr><th>时间 time</th><th>报警 alert</th><th>房间 room</th><th>状态 state</th></tr>
{alerts or '<tr><td colspan="4">无 none</td></tr>'}</table>"""
    return page("网关状态 Gateway status", body, refresh=5)


def _storage_line(st: dict[str, Any], now: float) -> str:
    """The store at a glance: size, retention, and a full disk or the ceiling, loudly."""
    s = st.get("storage")
    if not s:
        return ""
    line = (f"<p>数据库 database {s['db_mb']} MB（上限 ceiling {s['max_db_mb']} MB）· "
            f"观测保留 observations kept {s['observations_days']:g} 天 days</p>")
    if s["full_since"] is not None:
        line += (f'<p class="bad">存储已满 STORAGE FULL（自 since '
                 f"{_ago(now, s['full_since'])}: {html.escape(s.get('full_reason') or '')}）："
                 f"报警照常发送，暂存内存 alerts still go out, "
                 f"held in memory: {s['pending_alerts']} 报警 alert(s), "
                 f"{s['pending_messages']} 待发 message(s) · 已丢弃观测 observations dropped: "
                 f"{s['dropped'].get('observations', 0)} — 请清理存储卡 free space on the "
                 f"card</p>")
    if s.get("reserve_spent"):
        line += (f'<p class="bad">备用空间（{s["reserve_mb"]:g} MB）已用于保存报警：'
                 f'存储卡有空间前只保存报警 the disk space reserve is in use: only alerts are '
                 f'stored until the card has room for it again</p>')
    if s["ceiling_since"] is not None:
        line += ('<p class="warn">数据库已达上限：最旧的观测被删除以腾出空间 the database '
                 'reached its ceiling: the oldest observations make room</p>')
    if s.get("age_paused"):
        line += ('<p class="warn">时钟未同步：暂不按时间清理 clock not synchronised: nothing '
                 'is pruned by age until it is (the size ceiling still applies)</p>')
    return line


NAV = (("/", "状态 Status"), ("/discover", "设备发现 Discover"), ("/walk-test", "走测 Walk test"),
       ("/test-alarm", "测试报警 Test alarm"), ("/reports", "报告 Reports"))


def page(title: str, body: str, *, refresh: int | None = None, status: int = 200,
         nav: bool = True) -> web.Response:
    """A page of the technician app: large text, the same links on top of every page."""
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    links = ('<nav>' + " ".join(f'<a href="{href}">{text}</a>' for href, text in NAV)
             + "</nav>") if nav else ""
    text = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">{meta}
<title>安心 {html.escape(title)}</title><style>
body {{ font: 18px/1.5 system-ui, "Noto Sans CJK SC", sans-serif; margin: 1rem; }}
h1 {{ font-size: 1.5rem; }} h2 {{ font-size: 1.15rem; margin-top: 1.5rem; }}
small {{ color: #666; font-size: .75em; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #ddd; }}
tr.bad td, .bad {{ color: #b00; font-weight: bold; }} .ok {{ color: #070; }}
.warn {{ background: #fff3cd; padding: .5rem; }} .right {{ float: right; }}
button, input {{ font-size: 1rem; padding: .3rem .6rem; }} .hint {{ color: #555; }}
nav {{ margin-bottom: 1rem; }} nav a {{ margin-right: 1rem; font-size: 1.05rem; }}
.big {{ font-size: 1.4rem; }} .todo {{ color: #8a5a00; }} tr.done td {{ background: #eefbea; }}
form.assign label {{ display: inline-block; margin-right: .4rem; }}
</style></head><body>{links}{body}</body></html>"""
    return web.Response(text=text, content_type="text/html", charset="utf-8", status=status)
