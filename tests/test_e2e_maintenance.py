"""The maintenance queue end to end: a low battery and a weak link page nobody, they travel
in the daily digest, the digest says when they were fixed; a smoke alarm is never held back."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from gateway.store import Store
from tests._mosquitto import free_port
from tests.test_e2e_gateway import gateway, hotline, publish, write_config

pytestmark = pytest.mark.mosquitto

# A Heiman HS1SA whose battery is failing, far from the coordinator; then with a new battery.
TIRED = b'{"battery":9,"linkquality":30,"smoke":false,"battery_low":true,"enrolled":true}'
TIRED_ALARM = b'{"battery":9,"linkquality":30,"smoke":true,"battery_low":true,"enrolled":true}'
FRESH = b'{"battery":100,"linkquality":120,"smoke":false,"battery_low":false,"enrolled":true}'


async def troubles(gw, **kw) -> list:
    return await gw.store.call(Store.troubles, **kw)


async def test_troubles_wait_for_the_digest_and_alarms_do_not(tmp_path, mosquitto):
    _, port = mosquitto
    hport, gid = free_port(), "gw-maint"
    cfg = write_config(tmp_path, port, hport, gateway_id=gid)
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(cfg) as gw:
        await publish(port, *[(f"{gid}/kitchen_smoke", TIRED)] * 3)
        for _ in range(100):
            if len(await troubles(gw)) == 2:
                break
            await asyncio.sleep(0.05)
        assert {(i.device, i.event) for i in await troubles(gw)} == {
            ("smoke-kitchen", "low_battery"), ("smoke-kitchen", "weak_link")}
        await publish(port, (f"{gid}/kitchen_smoke", TIRED_ALARM))
        await hl.wait_for(1)
        await asyncio.sleep(0.3)
        assert [a["event"] for a in await hl.alerts()] == ["smoke"]  # no page for the battery

        # --- the digest: not before tomorrow's hour (a new install starts counting today);
        # then one technical message with both troubles, once that day
        tomorrow = datetime.now(gw.tz).date() + timedelta(days=1)
        nine = datetime.combine(tomorrow, datetime.min.time(), gw.tz).timestamp() + 9 * 3600
        await gw._maybe_digest(nine - 1)
        await gw._maybe_digest(nine - 86400 + 3600 * 14)  # today, 23:00
        await asyncio.sleep(0.3)
        assert len(await hl.alerts()) == 1
        await gw._maybe_digest(nine)
        await gw._maybe_digest(nine + 3600)
        await gw._maybe_digest(nine - 86400 + 3600)  # the clock stepped back a day (NTP)
        got = await hl.wait_for(2)
        await asyncio.sleep(0.3)
        assert len(await hl.alerts()) == 2
        (d,) = [a for a in got if a["event"] == "maintenance_digest"]
        assert (d["code"], d["severity"], d["test"] in (False, 0)) == (380, 4, True)
        open_items = d["body"]["evidence"]["open"]
        assert {(i["device"], i["event"]) for i in open_items} == {
            ("smoke-kitchen", "low_battery"), ("smoke-kitchen", "weak_link")}
        assert all(i["room"] == "kitchen" and i["since"].endswith("+08:00")
                   for i in open_items)

        # --- a new battery, a router nearby: both troubles end, the next digest says so
        await publish(port, *[(f"{gid}/kitchen_smoke", FRESH)] * 3)
        for _ in range(100):
            if not await troubles(gw):
                break
            await asyncio.sleep(0.05)
        assert await troubles(gw) == []
        # the next day's digest (after the one at `nine`, whatever the hour this test runs)
        assert await gw.send_maintenance_digest(nine + 86400) is not None
        got = await hl.wait_for(3)
        latest = [a for a in got if a["event"] == "maintenance_digest"]
        assert len(latest) == 2
        newest = max(latest, key=lambda a: a["received_at"])
        assert newest["body"]["evidence"]["open"] == []
        assert {(i["device"], i["event"]) for i in newest["body"]["evidence"]["fixed"]} == {
            ("smoke-kitchen", "low_battery"), ("smoke-kitchen", "weak_link")}
        # nothing open, nothing newly fixed: no digest at all
        assert await gw.send_maintenance_digest(nine + 2 * 86400) is None


async def test_immediate_mode_sends_each_trouble_at_once(tmp_path, mosquitto):
    _, port = mosquitto
    hport, gid = free_port(), "gw-maint-now"
    cfg = write_config(tmp_path, port, hport, gateway_id=gid)
    cfg.write_text(cfg.read_text() + "\n[maintenance]\nimmediate = true\nweak_link_lqi = 0\n")
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(cfg):
        await publish(port, (f"{gid}/kitchen_smoke", TIRED))
        (alert,) = await hl.wait_for(1)
        assert (alert["event"], alert["code"], alert["severity"]) == ("low_battery", 384, 4)


async def test_open_troubles_survive_a_restart(tmp_path, mosquitto):
    _, port = mosquitto
    hport, gid = free_port(), "gw-maint-restart"
    cfg = write_config(tmp_path, port, hport, gateway_id=gid)
    async with hotline(hport, tmp_path / "hotline.db"):
        async with gateway(cfg) as gw:
            await publish(port, (f"{gid}/kitchen_smoke", TIRED))
            for _ in range(100):
                if await troubles(gw):
                    break
                await asyncio.sleep(0.05)
        async with gateway(cfg) as gw:
            assert ("smoke-kitchen", "low_battery") in gw._troubles
            await publish(port, (f"{gid}/kitchen_smoke", FRESH))
            for _ in range(100):
                if not await troubles(gw):
                    break
                await asyncio.sleep(0.05)
            assert await troubles(gw) == []
            (fixed,) = await troubles(gw, cleared_undigested=True)
            assert fixed.count == 1 and fixed.cleared_at is not None
