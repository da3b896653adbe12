"""A dead motion sensor never passes for a quiet day: on the live gateway (Mosquitto, store,
hotline), a PIR that stops reporting is a technical finding, and when the home then goes quiet
the inactivity alert reaching the hotline names the sensor it could not rely on.

Time is moved on with `Gateway.tick(now)` and messages stamped with `handle_message(..., now)`:
hours pass in a second, through the same code the ticker runs."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from detectors.supervision import GRACE_S
from gateway.store import Store
from tests._mosquitto import free_port
from tests.test_e2e_gateway import SECRET, gateway, hotline, publish

pytestmark = pytest.mark.mosquitto

HOUR = 3600.0
# Aqara RTCGQ11LM: movement, and its hourly report without movement (shapes as in
# devices/fixtures/RTCGQ11LM.json).
MOTION = b'{"battery":100,"illuminance":30,"linkquality":90,"occupancy":true,"voltage":3055}'
REPORT = b'{"battery":100,"illuminance":30,"linkquality":90,"voltage":3055}'


def write(tmp, broker: int, hport: int, gid: str):
    path = tmp / "anxin.toml"
    path.write_text(f"""
[gateway]
id = "{gid}"
data_dir = "./data"

[mqtt]
url = "mqtt://127.0.0.1:{broker}"
zigbee2mqtt_base_topic = "{gid}"
native_base_topic = "{gid}-native"

[home]
id = "home-{gid}"
address = "测试路 5 号"

[[home.residents]]
name = "周玉兰"
ability_level = 3

[activity]
day_limit_h = 3
night_limit_h = 3          # the same limit whatever the hour this test runs at (and no
                           # bedroom: a night in bed would be judged by the time to be up)

[[devices]]
id = "motion-living"
source = "zigbee2mqtt"
topic = "{gid}/living_pir"
model = "RTCGQ11LM"
room = "living_room"

[[devices]]
id = "motion-kitchen"
source = "zigbee2mqtt"
topic = "{gid}/kitchen_pir"
model = "RTCGQ11LM"
room = "kitchen"

[[hotline]]
url = "http://127.0.0.1:{hport}/alerts"
secret = "{SECRET}"
""", encoding="utf-8")
    return path


async def test_an_offline_pir_is_reported_and_named_by_the_inactivity_alert(tmp_path,
                                                                             mosquitto):
    _, port = mosquitto
    hport, gid = free_port(), "gw-quiet"
    async with hotline(hport, tmp_path / "hotline.db") as hl, \
            gateway(write(tmp_path, port, hport, gid)) as gw:
        await publish(port, (f"{gid}/living_pir", MOTION), (f"{gid}/kitchen_pir", MOTION))
        for _ in range(100):
            if gw.core.activity.last_device == "motion-kitchen":
                break
            await asyncio.sleep(0.05)
        t0 = time.time()
        # the bedroom PIR goes on reporting every 50 minutes; the living-room one has died
        for k in range(1, 5):
            await gw.handle_message(f"{gid}/kitchen_pir", REPORT, False, t0 + k * 3000)
        silent_limit = 2 * HOUR + GRACE_S  # two missed hourly reports, and a grace
        await gw.tick(t0 + silent_limit - 60)
        await asyncio.sleep(0.3)
        assert await hl.alerts() == []
        await gw.tick(t0 + silent_limit + 60)
        (offline,) = await hl.wait_for(1)
        assert (offline["event"], offline["code"], offline["severity"]) == ("offline", 381, 4)
        assert offline["device_id"] == "motion-living"
        assert ("motion-living", "offline") in {(i.device, i.event) for i in
                                                await gw.store.call(Store.troubles)}

        # three quiet hours: the inactivity alert, which says it was half blind
        await gw.tick(t0 + 3 * HOUR - 60)
        await asyncio.sleep(0.3)
        assert len(await hl.alerts()) == 1
        await gw.tick(t0 + 3 * HOUR + 60)
        got = await hl.wait_for(2)
        (quiet,) = [a for a in got if a["event"] == "inactivity"]
        assert (quiet["code"], quiet["severity"]) == (641, 2)
        ev = quiet["body"]["evidence"]
        assert ev["degraded_coverage"] == [{"device": "motion-living", "room": "living_room"}]
        assert ev["last_activity"]["device"] == "motion-kitchen"
        assert ev["limit_this_hour_s"] == 3 * 3600 and ev["quiet_for_s"] >= 3 * 3600
        assert ev["limits_source"] == "configured limits ([activity])"
        assert quiet["room"] == "kitchen"


async def test_when_every_motion_sensor_is_offline_only_the_devices_are_reported(tmp_path,
                                                                               mosquitto):
    _, port = mosquitto
    hport, gid = free_port(), "gw-blind"
    async with hotline(hport, tmp_path / "hotline.db") as hl, \
            gateway(write(tmp_path, port, hport, gid)) as gw:
        await publish(port, (f"{gid}/living_pir", MOTION), (f"{gid}/kitchen_pir", MOTION))
        for _ in range(100):
            if gw.core.activity.last_device is not None and len(gw.last_seen) == 2:
                break
            await asyncio.sleep(0.05)
        t0 = time.time()
        for k in range(1, 13):
            await gw.tick(t0 + k * 1800)
        got = await hl.wait_for(2)
        await asyncio.sleep(0.3)
        got = await hl.alerts()
        assert sorted((a["event"], a["device_id"]) for a in got) == [
            ("offline", "motion-kitchen"), ("offline", "motion-living")]


async def test_a_resident_with_dementia_opening_the_door_at_night(tmp_path, mosquitto):
    _, port = mosquitto
    hport, gid = free_port(), "gw-wander"
    path = write(tmp_path, port, hport, gid)
    path.write_text(path.read_text(encoding="utf-8").replace(
        "ability_level = 3", 'ability_level = 3\nconditions = ["dementia"]') + f"""
[[devices]]
id = "door-entrance"
source = "zigbee2mqtt"
topic = "{gid}/front_door"
model = "MCCGQ11LM"
room = "entrance"
""", encoding="utf-8")
    closed = b'{"battery":91,"contact":true,"linkquality":63,"voltage":3005}'
    opened = b'{"battery":91,"contact":false,"linkquality":63,"voltage":3005}'
    night = datetime(2026, 11, 24, 2, 30, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(path) as gw:
        await gw.handle_message(f"{gid}/front_door", closed, False, night - 3600)
        await gw.handle_message(f"{gid}/front_door", opened, False, night)
        (alert,) = await hl.wait_for(1)
        assert (alert["event"], alert["severity"], alert["code"]) == ("night_wandering", 1, 641)
        assert alert["body"]["evidence"]["door_opened_at"] == "2026-11-24T02:30+08:00"


async def test_the_gateway_learns_the_home_and_keeps_what_it_learned(tmp_path, mosquitto):
    import numpy as np  # noqa: PLC0415

    from devices.observation import Observation  # noqa: PLC0415
    from tests.test_detectors_baseline import routine  # noqa: PLC0415

    _, port = mosquitto
    hport, gid = free_port(), "gw-learn"
    path = write(tmp_path, port, hport, gid)
    path.write_text(path.read_text(encoding="utf-8").replace(
        "day_limit_h = 3\nnight_limit_h = 3", ""), encoding="utf-8")
    times = routine(21, np.random.default_rng(7))
    shift = time.time() - times[-1] - 3600  # the three weeks just past
    history = [Observation(f"home-{gid}", "motion-living", "motion", True, t + shift,
                           "living_room") for t in times]
    async with hotline(hport, tmp_path / "hotline.db"):
        async with gateway(path) as gw:
            assert gw.core.cfg.activity.limits_source == "cold start, ability level 3"
            await gw.store.call(Store.add_observations, history)
            b = await gw.learn_baseline(time.time())
            assert b.source.startswith("learned from 2") and b.spells > 300
            assert gw.core.cfg.activity.limits_s == b.limits_s
            assert b.wake_by_h is not None and gw.core.cfg.activity.wake_by_h == b.wake_by_h
        async with gateway(path) as gw:  # after a restart
            assert gw.core.cfg.activity.limits_source == b.source
            assert gw.core.cfg.activity.limits_s == b.limits_s
