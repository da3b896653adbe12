"""Simulated life through the live gateway: a resident's two days (simulator/resident.py),
published over Mosquitto in compressed time, heard by the gateway running on a scaled clock
(gateway/clock.py), and a long lie on the second day reaching the hotline receiver as an
inactivity alert while the resident is still on the floor.

Nothing here calls `tick(now)` or stamps messages by hand: the ticker, ingest and outbox run
as in a home, only the clock is fast. Times are checked on the simulated clock (the alert
carries it), with margins of hours, so a busy machine delaying a message or a tick by a
fraction of a second (minutes of simulated time) changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.clock import ScaledClock
from simulator.life import live, timeline
from simulator.resident import IncidentSpec
from simulator.runner import publish_stream
from tests._config import write_home
from tests._mosquitto import free_port
from tests.test_e2e_gateway import gateway, hotline

pytestmark = pytest.mark.mosquitto

TZ = ZoneInfo("Asia/Shanghai")
HOUR = 3600.0
START = datetime(2026, 3, 2, tzinfo=TZ).timestamp()  # a Monday, local midnight
DAYS = 2
SEED = 4  # the fall at 10:00 on day 1, found by family nearly ten hours later
LONG_LIE = IncidentSpec("long_lie", 1, hour=10.0, resident=0, room="living_room")
SPEED = 7200.0  # two simulated hours a real second: the alert comes after ~20 s
# The gateway's clock starts this much before the simulated life, for the gateway to start
# up in (about a real second); if it takes longer, the first messages are sent at once.
LEAD_S = 2 * HOUR


def write(tmp: Path, broker: int, hport: int, gid: str) -> Path:
    """A one-room-per-sensor flat: door, four PIRs, a bedside button; one resident."""
    rooms = [("door-entrance", "front_door", "MCCGQ11LM", "entrance"),
             ("pir-living", "living_pir", "RTCGQ11LM", "living_room"),
             ("pir-bedroom", "bedroom_pir", "RTCGQ11LM", "bedroom"),
             ("pir-kitchen", "kitchen_pir", "RTCGQ11LM", "kitchen"),
             ("pir-bathroom", "bathroom_pir", "RTCGQ11LM", "bathroom"),
             ("sos-bedside", "bedside_sos", "TS0215A_sos", "bedroom")]
    devices = "".join(f"""
[[devices]]
id = "{dev}"
source = "zigbee2mqtt"
topic = "{gid}/{topic}"
model = "{model}"
room = "{room}"
""" for dev, topic, model, room in rooms)
    return write_home(tmp, broker, hport, gid, f"""
[[home.residents]]
name = "周玉兰"
age = 82
ability_level = 2
{devices}""")


def at(alert: dict) -> float:
    """When the gateway raised `alert`, on its (simulated) clock."""
    return datetime.fromisoformat(alert["body"]["raised_at"]).timestamp()


async def test_a_long_lie_in_simulated_life_reaches_the_hotline(tmp_path, mosquitto):
    _, port = mosquitto
    hport, gid = free_port(), "gw-life"
    path = write(tmp_path, port, hport, gid)
    life = live(path.read_text(encoding="utf-8"), START, DAYS, SEED, [LONG_LIE])
    (lie,) = life.incidents
    assert lie.room == "living_room" and lie.resident == "周玉兰"
    assert 10 <= datetime.fromtimestamp(lie.start, TZ).hour < 12  # a fall by day
    assert lie.end - lie.start > 8 * HOUR  # longer than the day limit (4 h) and then some

    clock = ScaledClock(START - LEAD_S, SPEED)
    began = time.monotonic()
    async with hotline(hport, tmp_path / "hotline.db") as hl, \
            gateway(path, clock=clock) as gw:
        # The stream starts where the gateway's clock is now: message times stay the
        # simulated times the gateway stamps them with.
        stream = timeline(life.messages, clock.now())
        publisher = asyncio.create_task(publish_stream(stream, f"mqtt://127.0.0.1:{port}",
                                                       speed=SPEED))
        # until the resident is found, and a little more: a late alert fails below
        give_up = time.monotonic() + clock.real(lie.end - clock.now()) + 10.0
        try:
            quiet: list[dict] = []
            while not quiet and time.monotonic() < give_up:
                if publisher.done():
                    publisher.result()  # a publishing error fails the test here
                await asyncio.sleep(0.1)
                got = await hl.alerts()
                quiet = [a for a in got if a["code"] == 641 and not a["test"]]
        finally:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
        heard = gw.metrics["messages"]
        got = await hl.alerts()
    elapsed = time.monotonic() - began

    def when(t: float) -> str:
        return datetime.fromtimestamp(t, TZ).strftime("%m-%d %H:%M")

    summary = [(a["event"], a["severity"], a["body"]["raised_at"]) for a in got]
    assert quiet, (f"no inactivity alert for the long lie from {when(lie.start)} to "
                   f"{when(lie.end)} (gateway heard {heard} of {len(stream)} messages in "
                   f"{elapsed:.0f} s); alerts: {summary}")
    alert = min(quiet, key=at)
    assert (alert["event"], alert["severity"]) == ("inactivity", 2)
    assert alert["body"]["detector"] == "activity"
    # raised while the resident was down, after the limit had run, before anyone came
    assert lie.start + 3 * HOUR < at(alert) < lie.end, (when(at(alert)), summary)
    # the evidence says where the resident was last seen moving: where they fell
    ev = alert["body"]["evidence"]
    assert ev["last_activity"]["room"] == lie.room == alert["room"]
    assert abs(datetime.fromisoformat(ev["last_activity"]["at"]).timestamp()
               - lie.start) < 1.5 * HOUR
    # a day and a half of ordinary life before it: no call that would have sent someone
    false = [a for a in got if a["severity"] <= 2 and not a["test"] and at(a) < lie.start]
    assert not false, summary
