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
from tests._config import write_home
from tests._mosquitto import free_port
from tests.test_e2e_gateway import gateway, hotline, publish

pytestmark = pytest.mark.mosquitto

HOUR = 3600.0
# Aqara RTCGQ11LM: movement, and its hourly report without movement (shapes as in
# devices/fixtures/RTCGQ11LM.json).
MOTION = b'{"battery":100,"illuminance":30,"linkquality":90,"occupancy":true,"voltage":3055}'
REPORT = b'{"battery":100,"illuminance":30,"linkquality":90,"voltage":3055}'


def write(tmp, broker: int, hport: int, gid: str):
    return write_home(tmp, broker, hport, gid, f"""
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

""", address="测试路 5 号")


DOOR = """
[[devices]]
id = "door-entrance"
source = "zigbee2mqtt"
topic = "{gid}/front_door"
model = "MCCGQ11LM"
room = "entrance"
"""


AWAY_KEY = """
[[devices]]
id = "key-door"
source = "zigbee2mqtt"
topic = "{gid}/door_key"
model = "WXKG11LM"
room = "entrance"
use = "away_key"
"""


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
        "ability_level = 3", 'ability_level = 3\nconditions = ["dementia"]')
        + DOOR.format(gid=gid), encoding="utf-8")
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


def _quiet_month(home: str, end: float, quiet_days: int) -> list:
    """35 days of a resident moving about the living room and kitchen by day, ending at
    `end`; the last `quiet_days` of them at a third of the usual."""
    import numpy as np  # noqa: PLC0415

    from devices.observation import Observation  # noqa: PLC0415

    rng = np.random.default_rng(11)
    out = []
    for d in range(35):
        factor = 0.3 if d >= 35 - quiet_days else 1.0
        for h in range(24):
            t0 = end - (35 - d) * 86400 + h * 3600
            out.append(Observation(home, "motion-kitchen", "battery", 100, t0 + 60,
                                   "kitchen"))
            n = rng.poisson((12 if 6 <= (h + 3) % 24 < 22 else 1) * factor)
            for t in sorted(rng.uniform(t0, t0 + 3600, n)):
                dev, room = (("motion-living", "living_room") if rng.random() < 0.6
                             else ("motion-kitchen", "kitchen"))
                out.append(Observation(home, dev, "motion", True, float(t), room))
    return out


async def test_several_much_quieter_days_send_one_care_call(tmp_path, mosquitto):
    _, port = mosquitto
    hport, gid = free_port(), "gw-routine"
    path = write(tmp_path, port, hport, gid)
    now = time.time()
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(path) as gw:
        await gw.store.call(Store.add_observations, _quiet_month(f"home-{gid}", now, 3))
        await gw.learn_baseline(now)
        alerts = await hl.wait_for(1)
        (care,) = [a for a in alerts if a["event"] == "routine_deviation"]
        assert (care["code"], care["severity"]) == (641, 3)
        assert care["body"]["detector"] == "routine"
        ev = care["body"]["evidence"]
        assert ev["pattern"] == "much_less_activity" and len(ev["days"]) == 3
        assert all(d["ratio"] < 0.7 for d in ev["days"])
        status = await gw.status()
        assert status["routine"]["ratio"] < 0.7 and status["routine"]["score"] >= 3
        # the next night: no second call for the same episode
        await gw.learn_baseline(now + 60)
        await asyncio.sleep(0.3)
        assert [a["event"] for a in await hl.alerts()].count("routine_deviation") == 1
    async with hotline(hport, tmp_path / "hotline.db"), gateway(path) as gw:
        assert gw.routine["last_raised"] == now  # kept across a restart


async def test_away_by_the_key_survives_a_restart(tmp_path, mosquitto):
    from devices.observation import Observation  # noqa: PLC0415

    _, port = mosquitto
    hport, gid = free_port(), "gw-awaykey"
    path = write(tmp_path, port, hport, gid)
    path.write_text(path.read_text(encoding="utf-8") + DOOR.format(gid=gid)
                    + AWAY_KEY.format(gid=gid), encoding="utf-8")
    home, now = f"home-{gid}", time.time()
    left = now - 5 * HOUR
    history = [Observation(home, "door-entrance", "contact", "closed", left - 3600, "entrance"),
               Observation(home, "motion-living", "motion", True, left - 120, "living_room"),
               Observation(home, "key-door", "away_mode", "away", left - 60, "entrance"),
               Observation(home, "door-entrance", "contact", "open", left, "entrance"),
               Observation(home, "door-entrance", "contact", "closed", left + 20, "entrance")]
    async with hotline(hport, tmp_path / "hotline.db") as hl:
        async with gateway(path) as gw:
            await gw.store.call(Store.add_observations, history)
        async with gateway(path) as gw:  # restarted (a power cut) while the resident is out
            st = (await gw.status())["home_state"]
            assert st == {"mode": "away", "since": left + 20, "away_key": True}
            for k in range(1, 25):  # a day more away: nothing about activity
                await gw.tick(now + k * HOUR)
            await asyncio.sleep(0.3)
            # (the devices are silent in this test: offline, a technician's matter)
            assert [a["event"] for a in await hl.alerts() if a["severity"] < 4] == []
            # home: the Zigbee button pressed twice
            await gw.handle_message(f"{gid}/door_key", b'{"action":"double","battery":100}',
                                    False, now + 25 * HOUR)
            assert gw.core.activity.mode == "occupied"


async def test_the_away_key_is_answered_on_the_speaker(tmp_path, mosquitto):
    import json  # noqa: PLC0415

    import aiomqtt  # noqa: PLC0415

    host, port = mosquitto
    hport, gid = free_port(), "gw-awaysay"
    path = write(tmp_path, port, hport, gid)
    text = path.read_text(encoding="utf-8").replace(
        'address = "测试路 5 号"', f'address = "测试路 5 号"\nspeaker_topic = "{gid}/speaker"')
    path.write_text(text + DOOR.format(gid=gid) + AWAY_KEY.format(gid=gid), encoding="utf-8")
    said: list[str] = []
    closed = b'{"battery":91,"contact":true,"linkquality":63,"voltage":3005}'
    opened = b'{"battery":91,"contact":false,"linkquality":63,"voltage":3005}'
    day = datetime(2026, 11, 24, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    async with hotline(hport, tmp_path / "hotline.db"), gateway(path) as gw, \
            aiomqtt.Client(host, port) as speaker:
        await speaker.subscribe(f"{gid}/speaker", qos=1)

        async def listen():
            async for m in speaker.messages:
                said.append(json.loads(m.payload)["say"])

        async def heard(n: int) -> list[str]:
            for _ in range(100):
                if len(said) >= n:
                    break
                await asyncio.sleep(0.05)
            return said

        listener = asyncio.create_task(listen())
        try:
            key, door = f"{gid}/door_key", f"{gid}/front_door"
            await gw.handle_message(door, closed, False, day - 600)
            await gw.handle_message(key, b'{"action":"single"}', False, day)
            assert (await heard(1))[0].startswith("好的，外出模式")
            await gw.tick(day + 31 * 60)  # nobody went out
            assert (await heard(2))[1].startswith("没有检测到出门")
            await gw.handle_message(key, b'{"action":"single"}', False, day + 3600)
            await gw.handle_message(door, opened, False, day + 3660)
            await gw.handle_message(door, closed, False, day + 3680)
            assert gw.core.activity.away_by_key
            await gw.handle_message(key, b'{"action":"double"}', False, day + 8 * 3600)
            assert (await heard(4))[2:] == [said[0], "欢迎回家。"]
        finally:
            listener.cancel()
