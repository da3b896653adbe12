"""Raw signals over Mosquitto: a wearable's accelerometer blocks and a bed sensor's
ballistocardiogram. The gateway itself finds the fall in the samples (waiting out the
resident's cancel window) and the breathing that stops in bed, and sends each alert with its
evidence to the hotline; walking about, sitting down hard and a quiet night send nothing."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from detectors import fall_imu
from devices import imu
from simulator import wearable
from tests._config import write_home
from tests._mosquitto import free_port
from tests.test_e2e_gateway import gateway, hotline, publish

pytestmark = pytest.mark.mosquitto

RATE = 50


def write(tmp, broker: int, hport: int, gid: str):
    return write_home(tmp, broker, hport, gid, f"""
[[home.residents]]
name = "王秀珍"
ability_level = 2

[alerts]
fall_cancel_window_s = 2

[[devices]]
id = "wearable-1"
source = "anxin"
topic = "{gid}-native/wearable-1"
model = "anxin-wearable-imu"
room = "living_room"
resident = "王秀珍"
""")


def blocks(code: str, seed: int, t0: float, binary: bool) -> list[bytes]:
    """One SisFall activity as the wearable streams it from `t0`: 50 Hz, one block a
    second (whole seconds of it)."""
    rng = np.random.default_rng(seed)
    acc, _ = wearable.recording(code, rng)
    acc = wearable.at_rate(acc, RATE)
    whole = acc[:len(acc) // RATE * RATE]
    return [imu.encode_binary(b) if binary else json.dumps(imu.to_mapping(b)).encode()
            for b in fall_imu.blocks_of(whole, RATE, 1.0, t0)]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
async def test_a_fall_in_the_samples_reaches_the_hotline(tmp_path, mosquitto, binary):
    _, port = mosquitto
    hport, gid = free_port(), f"gw-imu-{int(binary)}"
    topic = f"{gid}-native/wearable-1/imu"
    async with hotline(hport, tmp_path / "hotline.db") as hl, \
            gateway(write(tmp_path, port, hport, gid)) as gw:
        # ordinary movement first: walking (D01) and sitting down hard (D10)
        t0 = time.time() - 120
        walk = blocks("D01", 1, t0, binary)
        everyday = walk + blocks("D10", 2, t0 + len(walk), binary)
        await publish(port, *[(topic, b) for b in everyday])
        for _ in range(100):
            if gw.metrics["observations"] >= len(everyday):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert [a["event"] for a in await hl.alerts()] == []
        # then a fall forward while walking (F01), streamed out of order in two places
        fall = blocks("F01", 3, t0 + len(everyday), binary)  # the stream goes on
        fall[4], fall[5] = fall[5], fall[4]
        fall[9], fall[10] = fall[10], fall[9]
        await publish(port, *[(topic, b) for b in fall])
        (alert,) = await hl.wait_for(1, timeout=20)
        assert (alert["event"], alert["code"], alert["severity"]) == ("fall", 100, 1)
        assert alert["device_id"] == "wearable-1" and alert["room"] == "living_room"
        ev = alert["body"]["evidence"]
        assert ev["peak_g"] >= 2.0 and ev["orientation_change_deg"] >= 45
        assert ev["rate_hz"] == RATE
        # the samples were not written to the gateway's store
        stored = await gw.store.call(lambda s: s.db.execute(
            "SELECT count(*) FROM observations WHERE kind = 'accel'").fetchone()[0])
        assert stored == 0


def write_bed(tmp, broker: int, hport: int, gid: str):
    return write_home(tmp, broker, hport, gid, f"""
[[home.residents]]
name = "王秀珍"
ability_level = 3

[[devices]]
id = "bed-1"
source = "anxin"
topic = "{gid}-native/bed-1"
model = "anxin-bed-sensor-raw"
room = "bedroom"
resident = "王秀珍"
""")


async def test_breathing_that_stops_in_bed_reaches_the_hotline(tmp_path, mosquitto):
    from simulator.bcg import APNOEA, Event, Plan, simulate  # noqa: PLC0415

    _, port = mosquitto
    hport, gid = free_port(), "gw-bcg"
    topic = f"{gid}-native/bed-1/bcg"
    # ten minutes of a night in bed at 100 Hz, breathing stopping for 40 s at minute 7
    rec = simulate(6, 600, 100, t0=time.time() - 620,
                   plan=Plan(events=(Event(APNOEA, 420, 460),), movements_per_h=0))
    payloads = [p for _, p in rec.payloads(1.0, binary=True)]
    async with hotline(hport, tmp_path / "hotline.db") as hl, \
            gateway(write_bed(tmp_path, port, hport, gid)) as gw:
        await publish(port, *[(topic, p) for p in payloads[:400]])  # before it: nothing
        for _ in range(200):
            if gw.metrics["observations"] >= 400:
                break
            await asyncio.sleep(0.05)
        assert await hl.alerts() == []
        await publish(port, *[(topic, p) for p in payloads[400:]])
        (alert,) = await hl.wait_for(1, timeout=20)
        assert (alert["event"], alert["code"], alert["severity"]) == ("no_breathing", 100, 1)
        assert alert["device_id"] == "bed-1" and alert["room"] == "bedroom"
        ev = alert["body"]["evidence"]
        assert ev["series"], "the rate series around the event is in the evidence"
        await asyncio.sleep(0.5)  # and only the one
        assert len(await hl.alerts()) == 1
