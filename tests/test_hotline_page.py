"""The 接警台 page in a real browser (Debian's Chromium, driven by Playwright): an alert posted
to the hotline appears without a reload; a redelivery updates its row instead of adding one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time

import aiohttp
import pytest
from playwright.async_api import async_playwright

from alerts import wire
from hotline.server import serve
from tests._http import wait_healthy
from tests._mosquitto import free_port

SECRET = b"page-secret"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def alert(alert_id: str, event: str, code: int, severity: int, test: bool = False) -> bytes:
    return json.dumps({
        "schema": wire.SCHEMA, "alert_id": alert_id, "gateway_id": "gw-page",
        "home_id": "home-page", "sequence": 1, "code": code, "event": event,
        "severity": severity, "title": wire.title(event), "room": "kitchen",
        "device_id": "smoke-kitchen", "detector": "instant",
        "occurred_at": "2026-11-23T08:00:00.000+08:00",
        "raised_at": "2026-11-23T08:00:00.001+08:00", "test": test, "residents": [],
        "evidence": {}}, ensure_ascii=False).encode()


async def deliver(http: aiohttp.ClientSession, port: int, body: bytes) -> None:
    headers = wire.signed_headers(SECRET, int(time.time()), body)
    async with http.post(f"http://127.0.0.1:{port}/alerts", data=body, headers=headers) as r:
        assert r.status == 200


@pytest.fixture
async def hotline(tmp_path):
    port = free_port()
    task = asyncio.create_task(serve("127.0.0.1", port, SECRET, str(tmp_path / "h.db")))
    async with aiohttp.ClientSession() as http:
        await wait_healthy(http, f"http://127.0.0.1:{port}/healthz")
        try:
            yield http, port
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_alert_appears_live_and_redelivery_updates_its_row(hotline):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run `make test` (it installs it with apt)")
    http, port = hotline
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"])
        try:
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{port}/")
            assert "接警台" in await page.title()
            assert await page.locator("#alerts tr").count() == 0
            # wait until the live stream is open before posting
            await page.wait_for_function("document.getElementById('status').className === ''")

            await deliver(http, port, alert("01JDPAGE00000000000000000A", "smoke", 111, 1))
            row = page.locator("#a-01JDPAGE00000000000000000A")
            await row.wait_for(timeout=5000)
            text = await row.inner_text()
            assert "烟雾报警" in text and "紧急" in text and "111" in text
            assert (await row.get_attribute("class")).split() == ["sev1", "new", "st-received"]
            assert await page.locator("#count").inner_text() == "1"

            # the same alert delivered again (a gateway resend): one row, 2 deliveries
            await deliver(http, port, alert("01JDPAGE00000000000000000A", "smoke", 111, 1))
            await page.wait_for_function(
                "document.querySelector('#a-01JDPAGE00000000000000000A td.n')"
                ".textContent === '2'", timeout=5000)
            await deliver(http, port, alert("01JDPAGE00000000000000000B", "sos", 101, 1))
            await page.locator("#a-01JDPAGE00000000000000000B").wait_for(timeout=5000)
            ids = await page.eval_on_selector_all("#alerts tr", "rows => rows.map(r => r.id)")
            assert ids == ["a-01JDPAGE00000000000000000B", "a-01JDPAGE00000000000000000A"]
            assert await page.locator("#count").inner_text() == "2"

            # an operator takes charge of the SOS, then closes it, from the page
            sos = page.locator("#a-01JDPAGE00000000000000000B")
            await page.fill("#operator", "李接警员")
            await sos.locator('button[data-act="accept"]').click()
            await page.wait_for_function(
                "document.querySelector('#a-01JDPAGE00000000000000000B td.state')"
                ".textContent.startsWith('已接警')", timeout=5000)
            assert "李接警员" in await sos.locator("td.state").inner_text()
            await sos.locator("select.outcome").select_option("false_alarm")
            await sos.locator('button[data-act="resolve"]').click()
            await page.wait_for_function(
                "document.querySelector('#a-01JDPAGE00000000000000000B td.state')"
                ".textContent.startsWith('已处理')", timeout=5000)
            assert await sos.locator("button").count() == 0

            # a drill goes to the test queue, never among the emergencies
            await deliver(http, port, alert("01JDPAGE00000000000000000T", "smoke", 111, 1,
                                            test=True))
            await page.locator("#tests #a-01JDPAGE00000000000000000T").wait_for(timeout=5000)
            assert await page.locator("#alerts tr").count() == 2
            assert await page.locator("#test-count").inner_text() == "1"

            # a reload renders the same from the server
            await page.reload()
            ids = await page.eval_on_selector_all("#alerts tr", "rows => rows.map(r => r.id)")
            assert ids == ["a-01JDPAGE00000000000000000B", "a-01JDPAGE00000000000000000A"]
            assert "误报" in await page.locator("#a-01JDPAGE00000000000000000B td.state"
                                              ).inner_text()
            assert await page.locator("#tests tr").count() == 1
        finally:
            await browser.close()
