"""The technician pages: a code, not a default password; every route but health refuses an
anonymous request; the status page tells the truth about the home; test mode from the page."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import async_playwright

from gateway.config import load
from gateway.runtime import Gateway
from gateway.store import Store
from gateway.web.app import CODE_SETTING
from gateway.web.auth import check_code, hash_code, new_code
from tests._mosquitto import free_port
from tests.test_e2e_gateway import TS0215A_PRESS, publish, write_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CODE = "ABCD-EFGH-JKLM"


def test_codes_are_random_and_checked_in_constant_form():
    a, b = new_code(), new_code()
    assert a != b and len(a) == 14 and a.count("-") == 2
    stored = hash_code(a)
    assert stored.startswith("scrypt$") and a not in stored
    assert check_code(a, stored) and check_code(a.lower().replace("-", ""), stored)
    assert not check_code(b, stored) and not check_code(a, "garbage")


@contextlib.asynccontextmanager
async def technician_gateway(tmp: Path, broker_port: int, gateway_id: str):
    cfg = write_config(tmp, broker_port, free_port(), gateway_id=gateway_id)
    port = free_port()
    cfg.write_text(cfg.read_text() + f"\n[web]\nenabled = true\nport = {port}\n")
    config = load(cfg)
    store = Store(config.data_path() / "anxin.db")
    store.set_setting(CODE_SETTING, hash_code(CODE), time.time())
    store.close()
    gw = Gateway(config)
    await gw.start()
    try:
        yield gw, port, cfg
    finally:
        await gw.stop()


async def test_every_route_but_health_refuses_an_anonymous_request(tmp_path, mosquitto):
    _, broker = mosquitto
    async with technician_gateway(tmp_path, broker, "gw-web-anon") as (gw, port, _), \
            aiohttp.ClientSession() as http:
        assert gw._web is not None
        app = gw._web.app
        for route in app.router.routes():
            path = route.resource.canonical
            async with http.request(route.method, f"http://127.0.0.1:{port}{path}",
                                    allow_redirects=False) as r:
                if path in ("/healthz", "/login"):
                    assert r.status in (200, 401), path  # POST /login without a code: 401
                elif route.method == "GET":
                    assert (r.status, r.headers["Location"]) == (303, "/login"), path
                else:
                    assert r.status == 401, path
        # a wrong code, five times: locked out for a while
        for _ in range(5):
            async with http.post(f"http://127.0.0.1:{port}/login", data={"code": "nope"}) as r:
                assert r.status == 401
        async with http.post(f"http://127.0.0.1:{port}/login", data={"code": CODE},
                             allow_redirects=False) as r:
            assert r.status == 401 and "wait" in await r.text()


async def test_technician_logs_in_sees_the_home_and_starts_test_mode(tmp_path, mosquitto):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run `make test` (it installs it with apt)")
    _, broker = mosquitto
    async with technician_gateway(tmp_path, broker, "gw-web") as (gw, port, _):
        await publish(broker, ("gw-web/bedside_sos", TS0215A_PRESS))
        for _ in range(100):
            if gw.metrics["alerts_raised"]:
                break
            await asyncio.sleep(0.05)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-background-networking"])
            try:
                page = await browser.new_page()
                await page.goto(f"http://127.0.0.1:{port}/")
                assert page.url.endswith("/login")
                await page.fill("input[name=code]", "WRONG-CODE-XXXX")
                await page.click("button")
                assert "代码不对" in await page.content()
                await page.fill("input[name=code]", CODE.lower())  # typed as read out
                await page.click("button")
                await page.wait_for_url(f"http://127.0.0.1:{port}/")
                text = await page.inner_text("body")
                assert "gw-web" in text and "已连接 connected" in text
                assert "sos-bedside" in text and "TS0215A_sos" in text
                assert "紧急呼叫" in text  # the SOS in the recent alerts
                assert "家中 Home: 在家 at home" in text
                assert "作息 routine: 学习中 still learning" in text  # no month of history
                gw.routine = {"days": [{"day": "2026-11-22", "movements": 120,
                                        "expected": 250, "ratio": 0.48, "score": 4.1}]}
                gw.core.activity.mode, gw.core.activity.away_by_key = "away", True
                gw.core.activity.mode_since = time.time() - 7200
                await page.reload()
                text = await page.inner_text("body")
                assert "外出 away（外出键 away key） · 自 since" in text
                assert "2026-11-22: 活动 120 / 平常 usual 250（48%），偏离分 score 4.1" in text
                gw.core.activity.mode, gw.core.activity.away_by_key = "occupied", False
                await page.fill("input[name=minutes]", "30")
                await page.click("text=开始 Start")
                await page.wait_for_selector("text=测试/维护模式 开启")
                assert gw.maintenance_until > time.time() + 25 * 60
                await page.click("text=结束测试模式 End test mode")
                await page.wait_for_selector("input[name=minutes]")
                assert gw.maintenance_until == 0
                await page.screenshot(path=str(tmp_path / "technician.png"))
                await page.click("text=退出 Log out")
                await page.wait_for_url(f"http://127.0.0.1:{port}/login")
            finally:
                await browser.close()
