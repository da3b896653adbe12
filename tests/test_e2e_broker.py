"""The broker restarts mid-stream (Mosquitto upgraded, or crashed and restarted by systemd):
ingest resumes within seconds and no QoS-1 message is lost."""

from __future__ import annotations

import asyncio
import contextlib
import time

from tests._mosquitto import free_port, running_mosquitto
from tests.test_e2e_gateway import TS0215A_PRESS, gateway, hotline, publish, write_config


async def test_broker_restart_mid_stream_loses_nothing(tmp_path):
    port, hport = free_port(), free_port()
    persist = tmp_path / "mosquitto"
    persist.mkdir()
    cfg = write_config(tmp_path, port, hport, gateway_id="gw-restart")
    text = cfg.read_text(encoding="utf-8")
    for i in range(5):  # one SOS button per press: each press is its own alert
        text += (f'\n[[devices]]\nid = "sos-{i}"\nsource = "zigbee2mqtt"\n'
                 f'topic = "gw-restart/sos_{i}"\nmodel = "TS0215A_sos"\n')
    cfg.write_text(text, encoding="utf-8")
    with contextlib.ExitStack() as brokers:
        brokers.enter_context(running_mosquitto(port, persist))
        async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(cfg) as gw:
            ingest = gw.ingest
            assert ingest is not None
            await publish(port, ("gw-restart/sos_0", TS0215A_PRESS))
            await hl.wait_for(1)

            brokers.close()  # the broker stops (SIGTERM: it saves sessions and queues)
            for _ in range(100):
                if not ingest.connected.is_set():
                    break
                await asyncio.sleep(0.02)
            assert not ingest.connected.is_set()
            brokers.enter_context(running_mosquitto(port, persist))
            t_up = time.monotonic()
            # Sensors publish the moment the broker is back, before the gateway has
            # reconnected: its persistent session must queue them.
            await publish(port, *[(f"gw-restart/sos_{i}", TS0215A_PRESS) for i in range(1, 5)])
            got = await hl.wait_for(5, timeout=20)
            for _ in range(500):
                if ingest.connected.is_set():
                    break
                await asyncio.sleep(0.02)
            reconnect_s = time.monotonic() - t_up
    assert sorted(a["device_id"] for a in got) == [f"sos-{i}" for i in range(5)]
    assert ingest.connected.is_set() or reconnect_s < 10
    assert reconnect_s < 10, f"ingest took {reconnect_s:.1f} s to resume"
