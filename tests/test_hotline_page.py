"""The operator console in a real browser (Debian's Chromium, driven by Playwright).

1. The console on its own, fed signed alerts as gateways post them: login, the four lanes
   in severity-then-age order, the severity-1 banner and beep until accepted, escalation
   shown, the detail page (evidence in words, resident, contacts, timeline), note,
   dispatch, resolve, history, English.
2. The whole path: Mosquitto, the real gateway, a fall radar's real payload; the fall
   appears in the queue without a reload, accepting it stops the gateway's escalation,
   resolving it closes it on the gateway, the statistics count it. Screenshots of the queue
   and the detail page go to $ANXIN_SCREENSHOT_DIR when set (docs/ for the README).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from alerts import wire
from devices.registry import Device
from hotline.server import serve
from simulator.intercom import IntercomBehaviour, IntercomEmulator
from tests import _config
from tests._config import write_home
from tests._hotline import PASSWORD, add_operator, session
from tests._http import wait_healthy
from tests._mosquitto import free_port
from tests.test_e2e_gateway import RADAR_FALL, gateway, hotline, publish

SECRET = b"page-secret"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-background-networking",
        "--autoplay-policy=no-user-gesture-required"]
WAIT_MS = 10_000  # generous: the machine may be loaded; the figure is measured, not asserted


def alert(alert_id: str, event: str, code: int, severity: int, *, test: bool = False,
          home: str = "home-page", **extra) -> bytes:
    body = {
        "schema": wire.SCHEMA, "alert_id": alert_id, "gateway_id": "gw-page",
        "home_id": home, "sequence": 1, "code": code, "event": event,
        "severity": severity, "title": wire.title(event), "room": "kitchen",
        "device_id": "smoke-kitchen", "detector": "instant",
        "occurred_at": "2026-11-23T08:00:00.000+08:00",
        "raised_at": "2026-11-23T08:00:00.001+08:00", "test": test,
        "residents": [{"name": "王秀英", "age": 82, "ability_level": 2,
                       "conditions": ["高血压"], "medication": "氨氯地平 5mg 每早"}],
        "evidence": {"kind": "smoke", "value": True}, "address": "徐汇区 田林路 8 号 302",
        "district": "徐汇区 田林街道",
        "contacts": [{"name": "王丽", "relation": "女儿", "phone": "+8613800000001"}],
        "timeline": [{"at": "2026-11-23T07:40:00.000+08:00", "room": "kitchen",
                      "device": "pir-kitchen", "kind": "motion", "value": True},
                     {"at": "2026-11-23T07:58:00.000+08:00", "room": "kitchen",
                      "device": "smoke-kitchen", "kind": "smoke", "value": True}]}
    body.update(extra)
    return json.dumps(body, ensure_ascii=False).encode()


async def deliver(http, port: int, body: bytes) -> None:
    headers = wire.signed_headers(SECRET, int(time.time()), body)
    async with http.post(f"http://127.0.0.1:{port}/alerts", data=body, headers=headers) as r:
        assert r.status == 200


async def log_in(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    """Through the form, as an operator does."""
    await page.goto(f"{base}/")
    assert "/login" in page.url  # nothing without a session
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")
    await page.wait_for_selector("#status:not(.off)")  # the live stream is open


def lane_ids(page: Page, lane: str):
    return page.eval_on_selector_all(f"#lane-{lane} tbody tr", "rows => rows.map(r => r.id)")


@pytest.fixture
async def console(tmp_path):
    port = free_port()
    add_operator(tmp_path / "h.db", "李接警员", "operator")
    task = asyncio.create_task(serve("127.0.0.1", port, SECRET, str(tmp_path / "h.db")))
    async with session() as http:
        await wait_healthy(http, f"http://127.0.0.1:{port}/healthz")
        try:
            yield http, port
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def browser():
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run `make test` (it installs it with apt)")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            await b.close()


async def test_queue_lanes_cue_detail_and_actions_in_the_browser(console):
    http, port = console
    base = f"http://127.0.0.1:{port}"
    async with browser() as b:
        # bypass_csp only so Playwright may evaluate its waits in the page; the other test
        # runs the console under its Content-Security-Policy
        page = await b.new_page(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
        await log_in(page, base, "李接警员")
        assert "接警台" in await page.title()
        for lane in ("emergency", "care", "technical", "test"):
            assert await page.locator(f"#lane-{lane} tbody tr").count() == 0

        await deliver(http, port, alert("01JDPAGE0000000000000000LK", "water_leak", 154, 2,
                                        room="bathroom", evidence={"kind": "water_leak",
                                                                   "value": True}))
        await deliver(http, port, alert("01JDPAGE0000000000000000SM", "smoke", 111, 1))
        await deliver(http, port, alert("01JDPAGE0000000000000000CK", "missed_checkin", 602,
                                        3, room=None, evidence={"last_checkin_day":
                                                                "2026-11-22"}))
        await deliver(http, port, alert("01JDPAGE0000000000000000BT", "low_battery", 302, 4))
        await deliver(http, port, alert("01JDPAGE0000000000000000TT", "smoke", 111, 1,
                                        test=True))
        smoke = page.locator("#a-01JDPAGE0000000000000000SM")
        await smoke.wait_for(timeout=WAIT_MS)
        await page.locator("#a-01JDPAGE0000000000000000TT").wait_for(timeout=WAIT_MS)
        # the most severe first even though it came later; each kind in its own lane
        assert await lane_ids(page, "emergency") == ["a-01JDPAGE0000000000000000SM",
                                                     "a-01JDPAGE0000000000000000LK"]
        assert await lane_ids(page, "care") == ["a-01JDPAGE0000000000000000CK"]
        assert await lane_ids(page, "technical") == ["a-01JDPAGE0000000000000000BT"]
        assert await lane_ids(page, "test") == ["a-01JDPAGE0000000000000000TT"]
        assert "烟雾报警" in await smoke.inner_text() and "王秀英" in await smoke.inner_text()
        assert "厨房" in await smoke.inner_text()
        # severity 1 waiting: the banner, and the beep repeats until someone accepts
        assert await page.locator("#banner.on").count() == 1
        await page.wait_for_function("Number(document.body.dataset.beeps || 0) >= 2",
                                     timeout=WAIT_MS)
        # an escalation of the same alert: one row, with the escalation's own timer
        await deliver(http, port, alert("01JDPAGE0000000000000000SM", "smoke", 111, 1,
                                        escalation={"tier": 1, "tier_name": "backup-centre",
                                                    "reminder": 0}))
        await page.wait_for_function(
            "document.querySelector('#a-01JDPAGE0000000000000000SM .timer.esc') !== null",
            timeout=WAIT_MS)
        assert "backup-centre" in await smoke.inner_text()
        assert await page.locator("#lane-emergency tbody tr").count() == 2

        await smoke.locator('button[data-act="accept"]').click()
        await page.wait_for_function(
            "document.querySelector('#a-01JDPAGE0000000000000000SM td.state')"
            ".textContent.startsWith('已接警')", timeout=WAIT_MS)
        assert "李接警员" in await smoke.locator("td.state").inner_text()
        assert await page.locator("#banner.on").count() == 0
        beeps = await page.evaluate("Number(document.body.dataset.beeps)")
        await page.wait_for_timeout(3500)
        assert await page.evaluate("Number(document.body.dataset.beeps)") == beeps

        # --- the detail page
        await smoke.locator("a.btn").click()
        await page.wait_for_url(f"{base}/alerts/01JDPAGE0000000000000000SM")
        text = await page.inner_text("main")
        for words in ("烟雾报警", "厨房", "传感器报告：烟雾：是", "王秀英", "82 岁",
                      "2 · 中度失能", "高血压", "氨氯地平 5mg 每早", "徐汇区 田林路 8 号 302",
                      "徐汇区 田林街道", "王丽", "女儿", "已升级", "backup-centre"):
            assert words in text, words
        assert await page.get_attribute("a.tel", "href") == "tel:+8613800000001"
        assert await page.locator('a[href="sms:+8613800000001"]').count() == 1
        assert await page.locator("svg.tl circle").count() == 2
        assert "漏水报警" in await page.inner_text("table")  # the home's other alert

        await page.fill("textarea[name=note]", "已电话联系老人，厨房有烟")
        await page.click("form[data-post=note] button")
        await page.wait_for_selector("#audit >> text=已电话联系老人", timeout=WAIT_MS)
        await page.select_option("form[data-post=dispatch] select", "fire_119")
        await page.click("form[data-post=dispatch] button")
        await page.wait_for_selector("#audit >> text=119 消防", timeout=WAIT_MS)
        await page.select_option("form[data-post=resolve] select", "real_emergency")
        await page.click("form[data-post=resolve] button")
        await page.wait_for_selector("text=真实紧急情况", timeout=WAIT_MS)
        trail = (await page.inner_text("#audit")).splitlines()
        assert ["接警" in trail[0], "备注" in trail[1], "派遣" in trail[2],
                "处理完毕" in trail[3]] == [True] * 4

        # --- back to the queue: resolved ones have left it; the history has them
        await page.goto(f"{base}/")
        await page.wait_for_selector("#status:not(.off)")
        assert await lane_ids(page, "emergency") == ["a-01JDPAGE0000000000000000LK"]
        await page.goto(f"{base}/history")
        assert "01JDPAGE0000000000000000SM" in await page.inner_html("#history")
        # English on request, kept in a cookie
        await page.goto(f"{base}/?lang=en")
        assert await page.inner_text("#lane-emergency h2") == "Emergencies1"
        await page.goto(f"{base}/history")
        assert "History" in await page.inner_text("h2")
        # an operator sees no statistics
        r = await page.goto(f"{base}/stats")
        assert r is not None and r.status == 403


async def test_the_queue_survives_a_hotline_restart_and_says_when_it_is_cut_off(tmp_path):
    """The live stream drops: the page says so (and, after 10 s, sounds); the hotline comes
    back on the same database: the same session goes on, and what came meanwhile shows."""
    port, db = free_port(), str(tmp_path / "h.db")
    add_operator(db, "李接警员", "operator")
    base = f"http://127.0.0.1:{port}"

    async def start() -> asyncio.Task:
        task = asyncio.create_task(serve("127.0.0.1", port, SECRET, db))
        async with session() as http:
            await wait_healthy(http, f"{base}/healthz")
        return task

    async def stop(task: asyncio.Task) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    task = await start()
    try:
        async with browser() as b:
            page = await b.new_page()
            await log_in(page, base, "李接警员")
            await stop(task)
            await page.wait_for_selector("#status.off", timeout=WAIT_MS)
            await page.wait_for_selector("#banner.on", timeout=WAIT_MS * 2)  # after 10 s
            assert "连接中断" in await page.inner_text("#banner")
            task = await start()
            async with session() as http:
                await deliver(http, port, alert("01JDPAGE0000000000000000RS", "sos", 101, 1))
            await page.locator("#a-01JDPAGE0000000000000000RS").wait_for(timeout=WAIT_MS * 2)
            await page.wait_for_selector("#status:not(.off)")
            assert "/login" not in page.url  # the session outlived the restart
            assert "连接中断" not in await page.inner_text("#banner")
    finally:
        await stop(task)


def write_config(tmp: Path, broker: int, primary: int, backup: int, gid: str) -> Path:
    """A resident with her profile and contacts, a bathroom fall radar (cancel window 1 s),
    PIRs, the 爱的眼睛 intercom; tiers: this console, then a backup centre after 2 s."""
    path = write_home(tmp, broker, primary, gid, f"""district = "徐汇区 田林街道"

[[home.residents]]
name = "李桂兰"
age = 86
ability_level = 2
conditions = ["高血压", "骨质疏松"]
medication = "氨氯地平 5mg 每早；阿仑膦酸钠 每周一次"

[[home.contacts]]
name = "李强"
relation = "儿子"
phone = "138 0000 0001"

[[home.contacts]]
name = "周阿姨"
relation = "邻居"
phone = "13800000002"

[alerts]
fall_cancel_window_s = 1

[[devices]]
id = "radar-bathroom"
source = "zigbee2mqtt"
topic = "{gid}/bathroom_radar"
model = "HS2FD-EF1-3.0"
room = "bathroom"

[[devices]]
id = "pir-living"
source = "zigbee2mqtt"
topic = "{gid}/living_pir"
model = "RTCGQ11LM"
room = "living_room"

[[devices]]
id = "door-intercom"
source = "anxin"
topic = "{gid}-native/intercom"
model = "anxin-intercom"
room = "living_room"
""", address="上海市徐汇区田林路 200 弄 8 号 302 室")
    with path.open("a", encoding="utf-8") as f:  # the [[hotline]] write_home ends with
        f.write(f"""name = "centre"
feedback_url = "http://127.0.0.1:{primary}/feedback"
retry_max_s = 0.5

[[hotline]]
name = "backup"
url = "http://127.0.0.1:{backup}/alerts"
secret = "{_config.SECRET}"
retry_max_s = 0.5

[escalation]
renotify_s = [0, 0, 0, 0]

[[escalation.tiers]]
name = "centre"
targets = ["centre"]

[[escalation.tiers]]
name = "backup-centre"
targets = ["backup"]
after_s = [2, 2, 0, 0]
""")
    return path


def gateway_state(tmp: Path) -> tuple[str, str | None]:
    with sqlite3.connect(f"file:{tmp / 'data' / 'anxin.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT state, taken_by FROM alerts").fetchone()


async def until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_fall_through_the_real_gateway_accepted_resolved_and_counted(tmp_path,
                                                                             mosquitto):
    _, broker = mosquitto
    p, b = free_port(), free_port()
    cfg = write_config(tmp_path, broker, p, b, "gw-console")
    shots = Path(os.environ.get("ANXIN_SCREENSHOT_DIR") or tmp_path)
    base = f"http://127.0.0.1:{p}"
    intercom = Device("door-intercom", "home-gw-console", "anxin", "gw-console-native/intercom",
                      "anxin-intercom", room="living_room")
    async with hotline(p, tmp_path / "p.db", "张主管") as primary, \
            hotline(b, tmp_path / "b.db") as backup, gateway(cfg), browser() as br, \
            IntercomEmulator(intercom, "127.0.0.1", broker, IntercomBehaviour()) as em:
        add_operator(tmp_path / "p.db", "张主管", "supervisor")
        page = await br.new_page(viewport={"width": 1400, "height": 900})
        await log_in(page, base, "张主管")
        # the morning so far: she moved about the living room, then the bathroom
        await publish(broker, *[("gw-console/living_pir", json.dumps(
            {"occupancy": o, "battery": 90, "linkquality": 100}).encode()) for o in
            (True, False, True)], ("gw-console/bathroom_radar",
                                   b'{"fall_status":"normal","occupancy":true}'), gap=0.3)
        await publish(broker, ("gw-console/bathroom_radar", RADAR_FALL))
        row = page.locator("#lane-emergency tbody tr")
        await row.first.wait_for(timeout=WAIT_MS)  # no reload: the live stream brought it
        shown = time.time()
        (stored,) = await primary.alerts()
        shown_after = shown - stored["received_at"]
        print(f"fall shown in the browser {shown_after:.3f} s after the hotline stored it")
        assert "跌倒报警" in await row.first.inner_text()
        assert "卫生间" in await row.first.inner_text()
        # she also presses the intercom's call key: a care call, in its own lane
        await em.press_call()
        care = page.locator("#lane-care tbody tr")
        await care.first.wait_for(timeout=WAIT_MS)
        assert "呼叫请求" in await care.first.inner_text()
        await page.screenshot(path=str(shots / "hotline-queue.png"))

        await row.first.locator('button[data-act="accept"]').click()
        await until(lambda: gateway_state(tmp_path)[0] == "accepted")
        assert gateway_state(tmp_path) == ("accepted", "张主管")
        await asyncio.sleep(3.0)  # past the backup tier's wait
        assert await backup.alerts() == []  # accepted: the gateway stopped escalating

        await page.click("#lane-emergency tbody tr >> text=详情")
        await page.wait_for_selector("#audit >> text=张主管")
        text = await page.inner_text("main")
        for words in ("李桂兰", "阿仑膦酸钠", "徐汇区 田林街道", "李强", "卫生间", "客厅"):
            assert words in text, words
        assert await page.get_attribute("a.tel", "href") == "tel:1380000%200001" or \
            await page.get_attribute("a.tel", "href") == "tel:138%200000%200001"
        # video look-in: the gateway rings the home's intercom, she answers, the page shows it
        await page.click("form[data-post=look-in] button")
        await page.wait_for_selector("#intercom >> text=已接听", timeout=WAIT_MS * 2)
        # the call ends (the emulated resident hangs up): no more events reload the page
        await page.wait_for_selector("#intercom >> text=通话结束", timeout=WAIT_MS * 2)
        await page.wait_for_selector("#audit >> text=视频探视", timeout=WAIT_MS)
        await page.screenshot(path=str(shots / "hotline-alert.png"), full_page=True)
        await page.select_option("form[data-post=resolve] select", "real_emergency")
        await page.click("form[data-post=resolve] button")
        await page.wait_for_selector("#state >> text=已处理", timeout=WAIT_MS)
        await until(lambda: gateway_state(tmp_path)[0] == "resolved")

        await page.goto(f"{base}/stats")
        assert await page.inner_text("#total") == "合计: 2"  # the fall and the call
        fall = page.locator('#by-type tr[data-key="fall"]')
        assert await fall.locator("td.count").inner_text() == "1"
        assert "真实紧急情况 1" in await fall.inner_text()
