"""Floods (issue 8): one device sending 10,000 msg/s must not delay another device's alarm.

Pure tests of the admission control (token bucket per device, the alarm lane first, round
robin across devices, bounded backlog, a flood reported once at its start and once at its
end), then the whole gateway on a real Mosquitto with a real flood.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from devices.catalogue import MODELS_BY_ID
from gateway import cli, ingest
from gateway.ingest import (
    ADMITTED,
    ADMITTED_UNACKED,
    ALARM_DEVICE_LIMIT,
    DEVICE_LIMIT,
    SHED,
    Admission,
    limit_for,
)
from tests._mosquitto import free_port
from tests.test_e2e_gateway import HS1SA_ALARM, HS1SA_QUIET, gateway, hotline, write_config

MOTION = b'{"battery":100,"illuminance":12,"linkquality":120,"occupancy":true,"voltage":3055}'
DEVICES = {"flood/motion": ("motion-hall", DEVICE_LIMIT),
           "flood/busy": ("busy-plug", DEVICE_LIMIT),
           "flood/smoke": ("smoke-kitchen", ALARM_DEVICE_LIMIT),
           "flood/smoke2": ("smoke-bedroom", ALARM_DEVICE_LIMIT)}


def classify(topic: str) -> tuple[str, ingest.Limit]:
    return DEVICES[topic]


def message(topic: str, payload: bytes = MOTION, qos: int = 1, mid: int = 1
            ) -> tuple[str, bytes, int, bool, int]:
    return topic, payload, qos, False, mid


def admit(adm: Admission, m: tuple[str, bytes, int, bool, int], now: float, t: float) -> str:
    return adm.admit(*m, now, t)


def drain(adm: Admission) -> list[str]:
    out = []
    while (item := adm.pop()) is not None:
        out.append(item[0])
    return out


def test_the_catalogue_sorts_alarm_devices_to_the_front():
    assert limit_for(MODELS_BY_ID["HS1SA"]).urgent  # smoke
    assert limit_for(MODELS_BY_ID["TS0215A_sos"]).urgent  # SOS button
    assert limit_for(MODELS_BY_ID["SJCGQ11LM"]).urgent  # water leak
    assert limit_for(MODELS_BY_ID["anxin-wearable-imu"]).urgent  # raw blocks: falls found here
    assert not limit_for(MODELS_BY_ID["RTCGQ11LM"]).urgent  # motion
    assert not limit_for(MODELS_BY_ID["MCCGQ11LM"]).urgent  # door contact


def test_an_honest_busy_device_is_never_shed():
    # 15 msg/s for ten minutes, and a burst of 150 after a network outage: within the limit
    adm = Admission(classify)
    t = 0.0
    for i in range(150):
        assert admit(adm, message("flood/busy", mid=i), 0.0, t) == ADMITTED
    handled = len(drain(adm))
    for i in range(15 * 600):
        t += 1 / 15
        assert admit(adm, message("flood/busy", mid=i), t, t) == ADMITTED
        handled += len(drain(adm))
    assert handled == 150 + 15 * 600
    assert adm.shed == {} and adm.flood_changes(t + 60, t + 60) == []


def test_a_flood_is_shed_and_counted_and_an_alarm_goes_first():
    adm = Admission(classify)
    verdicts = [admit(adm, message("flood/motion", mid=i), 0.0, i / 10_000)
                for i in range(10_000)]  # one second of 10,000 msg/s
    admitted = verdicts.count(ADMITTED)
    # the burst and a second's rate are let through, the rest shed before any parsing
    assert DEVICE_LIMIT.burst <= admitted <= DEVICE_LIMIT.burst + DEVICE_LIMIT.rate_per_s + 1
    assert verdicts.count(SHED) == 10_000 - admitted
    assert adm.shed == {"motion-hall": 10_000 - admitted}
    # a smoke alarm arriving now is handled next, ahead of the motion sensor's backlog, and
    # acknowledged only once handled
    assert admit(adm, message("flood/smoke", HS1SA_ALARM, mid=7), 1.0, 1.0) == ADMITTED_UNACKED
    topic, payload, _, _, mid = adm.pop()
    assert (topic, payload, mid) == ("flood/smoke", HS1SA_ALARM, 7)


def test_a_flooding_alarm_device_is_not_shed_for_its_rate_but_waits_its_turn():
    adm = Admission(classify, device_backlog=50)
    for i in range(1000):
        admit(adm, message("flood/smoke", HS1SA_QUIET, mid=i), 0.0, i / 10_000)
    # beyond its limit it lost the front: in the ordinary lane, only its newest 50 kept
    front = adm.urgent.size
    assert ALARM_DEVICE_LIMIT.burst <= front <= ALARM_DEVICE_LIMIT.burst + 3  # 0.1 s refill
    assert adm.ordinary.size == 50
    assert adm.shed["smoke-kitchen"] == 1000 - front - 50
    # another smoke detector's alarm (within its limit) is in the front lane; once the front
    # lane is through, the motion sensor's message is served in turn, not after the backlog
    admit(adm, message("flood/smoke2", HS1SA_ALARM), 0.2, 0.2)
    admit(adm, message("flood/motion"), 0.2, 0.2)
    order = drain(adm)
    assert "flood/smoke2" in order[:front + 1]
    assert order.index("flood/motion") <= front + 2


def test_the_ordinary_lane_is_bounded():
    adm = Admission(classify, capacity=100, device_backlog=100)
    for i in range(150):
        admit(adm, message("flood/busy", mid=i), 0.0, 0.0)
    assert adm.ordinary.size == 100 and adm.shed == {"busy-plug": 50}


def test_a_flood_is_reported_once_when_it_begins_and_once_when_it_ends():
    adm = Admission(classify)
    t = 0.0
    for _ in range(5000):
        t += 1e-4
        admit(adm, message("flood/motion"), 1000.0 + t, t)
    (start,) = adm.flood_changes(t, 1000.0 + t)
    assert not start.ended and start.key == "motion-hall" and start.topic == "flood/motion"
    assert start.sample == MOTION and start.since == pytest.approx(1000.0, abs=0.1)
    for _ in range(5000):  # still flooding: nothing new to say
        t += 1e-4
        admit(adm, message("flood/motion"), 1000.0 + t, t)
    assert adm.flood_changes(t, 1000.0 + t) == []
    assert adm.flooding() == {"motion-hall": adm.shed["motion-hall"]}
    t += ingest.FLOOD_QUIET_S + 0.1
    (end,) = adm.flood_changes(t, 1000.0 + t)
    assert end.ended and end.shed == adm.shed["motion-hall"] and end.shed > 9000
    assert adm.flooding() == {} and adm.flood_changes(t + 60, t + 60) == []


def test_a_device_assigned_during_a_flood_keeps_its_flood_and_takes_its_new_limit():
    classes = dict(DEVICES)
    adm = Admission(lambda topic: classes[topic])
    for i in range(1000):
        admit(adm, message("flood/motion"), 0.0, i / 10_000)
    assert adm.flood_changes(0.1, 0.1)[0].key == "motion-hall"
    # the technician changes the device to an alarm-capable model: reclassified at once
    classes["flood/motion"] = ("motion-hall", ALARM_DEVICE_LIMIT)
    adm.forget_topics()
    assert admit(adm, message("flood/motion"), 30.0, 30.0) == ADMITTED_UNACKED
    (end,) = adm.flood_changes(31.0, 31.0)  # and the flood's end is still reported
    assert end.ended and end.shed == adm.shed["motion-hall"]


# --- the whole gateway, a real Mosquitto, a real flood ----------------------------------------


def flood(port: int, topic: str, rate: float, stop: threading.Event, qos: int,
          sent: list[int]) -> None:
    """Publish `rate` messages per second on `topic` until stopped (a paho client)."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"flooder-{topic}-{qos}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0, n = time.perf_counter(), 0
    try:
        while not stop.is_set():
            c.publish(topic, MOTION, qos=qos)
            n += 1
            ahead = n / rate - (time.perf_counter() - t0)
            if ahead > 0.001:
                time.sleep(ahead)
    finally:
        sent[0] = n
        c.loop_stop()
        c.disconnect()


FLOOD_CONFIG = """
[[devices]]
id = "motion-hall"
source = "zigbee2mqtt"
topic = "{gid}/hall_motion"
model = "RTCGQ11LM"
room = "hall"

[[devices]]
id = "door-front"
source = "zigbee2mqtt"
topic = "{gid}/front_door"
model = "MCCGQ11LM"
room = "hall"
"""


@pytest.mark.mosquitto
@pytest.mark.parametrize("qos", [0, 1])
async def test_a_flood_does_not_stop_a_smoke_alarm(tmp_path, mosquitto, monkeypatch, capsys,
                                                   qos):
    monkeypatch.setattr(ingest, "FLOOD_QUIET_S", 1.5)
    _, port = mosquitto
    hport = free_port()
    gid = f"gw-flood{qos}"
    cfg = write_config(tmp_path, port, hport, gateway_id=gid)
    cfg.write_text(cfg.read_text() + FLOOD_CONFIG.format(gid=gid))
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(cfg) as gw:
        stop, sent = threading.Event(), [0]
        flooder = threading.Thread(target=flood, args=(port, f"{gid}/hall_motion", 10_000,
                                                       stop, qos, sent))
        flooder.start()
        honest = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"honest-{qos}")
        honest.connect("127.0.0.1", port)
        honest.loop_start()
        try:
            # an honest door contact, busy (5 messages a second), all through the flood
            for i in range(10):
                state = b'{"battery":100,"contact":%s,"linkquality":80,"voltage":3015}' % (
                    b"true" if i % 2 else b"false")
                honest.publish(f"{gid}/front_door", state, qos=1).wait_for_publish(10)
                await asyncio.sleep(0.2)
            honest.publish(f"{gid}/kitchen_smoke", HS1SA_QUIET, qos=1)
            honest.publish(f"{gid}/kitchen_smoke", HS1SA_ALARM, qos=1)
            # (a motion flood at night may also look like wandering: not what is tested here)
            deadline = time.monotonic() + 30
            while not [a for a in await hl.alerts() if a["event"] == "smoke"]:
                assert time.monotonic() < deadline, "the smoke alarm never reached the hotline"
                await asyncio.sleep(0.05)
            for _ in range(50):
                if gw.ingest.admission.flooding():
                    break
                await asyncio.sleep(0.1)
            during = await gw.status()
        finally:
            stop.set()
            await asyncio.to_thread(flooder.join)
            honest.loop_stop()
            honest.disconnect()
        shed = gw.ingest.admission.shed
        assert shed.get("motion-hall", 0) > 0, f"nothing shed of {sent[0]} sent"
        assert set(shed) == {"motion-hall"}  # the honest door, the smoke detector: never
        # the flood is reported to the technician once at its start and once at its end
        deadline = time.monotonic() + 30
        while gw.ingest.admission.flooding() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        for _ in range(20):
            rows = gw.store.store.quarantined()
            flood_rows = [r for r in rows if r["category"] == "flood"]
            if flood_rows and flood_rows[0]["count"] == 2:
                break
            await asyncio.sleep(0.2)
        (row,) = flood_rows
        assert row["topic"] == f"{gid}/hall_motion" and row["count"] == 2
        assert f"{shed['motion-hall']} message(s) shed" in row["reason"]
        assert row["last_payload"] == MOTION
        status = await gw.status()
        assert status["ingest"]["shed"] == {"motion-hall": shed["motion-hall"]}
        assert status["metrics"]["floods"] == 1
        # `anxin status` during the flood said so, on a line of its own
        (tmp_path / "data" / "status.json").write_text(json.dumps(during))
        capsys.readouterr()
        cli.main(["status", "--config", str(cfg)])
        assert "✗ flooding, messages shed: motion-hall (" in capsys.readouterr().out
        await gw.flush_observations()
    with sqlite3.connect(tmp_path / "data" / "anxin.db") as db:
        contacts = db.execute("SELECT count(*) FROM observations WHERE device = 'door-front' "
                              "AND kind = 'contact'").fetchone()[0]
    assert contacts == 10  # every one of the honest device's messages was acted on


# --- the ingest's own socket reader: big and small packets, plain and TLS ---------------------


def unlimited(topic: str) -> tuple[str, ingest.Limit]:
    return topic, ingest.Limit(1e9, 1e9)


@pytest.mark.mosquitto
@pytest.mark.parametrize("tls", [False, True])
async def test_every_message_arrives_whole_and_in_order(tmp_path, tls):
    from tests._mosquitto import running_mosquitto  # noqa: PLC0415
    from tests._tls import make_pki  # noqa: PLC0415

    options = ""
    if tls:
        pki = make_pki(tmp_path)
        options = f"cafile {pki['ca']}\ncertfile {pki['server']}\nkeyfile {pki['server_key']}"
    # small messages, and now and then one of 60 KiB (a raw block) that spans reads
    messages = [(f"reader/dev{i % 10}", b"%d:" % i + (b"x" * 60_000 if i % 97 == 0 else MOTION))
                for i in range(3000)]
    got: list[tuple[str, bytes]] = []
    done = asyncio.Event()

    async def handler(topic: str, payload: bytes, retained: bool, at: float) -> None:
        got.append((topic, payload))
        if len(got) == len(messages):
            done.set()

    with running_mosquitto(listener_options=options) as (_, port):
        address = ingest.BrokerAddress("127.0.0.1", port, tls=tls,
                                       ca_file=str(pki["ca"]) if tls else None)
        ing = ingest.Ingest(address, ["reader/#"], handler, client_id=f"reader-{tls}",
                            classify=unlimited)
        task = asyncio.create_task(ing.run())
        try:
            await asyncio.wait_for(ing.connected.wait(), 30)
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{tls}")
            if tls:
                c.tls_set(ca_certs=str(pki["ca"]))
            c.max_inflight_messages_set(500)
            c.connect("127.0.0.1", port)
            c.loop_start()
            try:
                for topic, payload in messages:
                    c.publish(topic, payload, qos=1)
                await asyncio.wait_for(done.wait(), 120)
            finally:
                c.loop_stop()
                c.disconnect()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    for device in range(10):  # each device's messages whole, once, in the order sent
        sent = [m for m in messages if m[0] == f"reader/dev{device}"]
        assert [m for m in got if m[0] == f"reader/dev{device}"] == sent
    assert ing.admission.shed == {}
    # most decoded by the ingest's reader, those split across reads by paho
    assert ing.reader is not None and 0 < ing.reader.decoded < ing.messages == len(messages)
