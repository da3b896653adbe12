"""Log volume: a failure repeated on every message is logged when it starts and when it ends,
with a count, never once per message (an SD card full of log lines is a gateway down)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from gateway.episodes import Episodes
from gateway.store import Store
from tests._mosquitto import free_port
from tests.test_e2e_gateway import TS0215A_PRESS, gateway, hotline, publish, write_config


def test_an_episode_logs_its_start_and_its_end_with_the_count(caplog):
    log = logging.getLogger("test.episodes")
    ep = Episodes(log, "bad payloads", quiet_s=60.0)
    with caplog.at_level(logging.WARNING, logger="test.episodes"):
        assert ep.failed("pir-1", "not JSON", 0.0)
        for k in range(1, 1000):
            assert not ep.failed("pir-1", f"not JSON #{k}", float(k))
        ep.failed("door-1", "contact: expected true/false", 5.0)  # its own episode
        ep.expire(1030.0)  # door-1 quiet for over a minute; pir-1 not yet
        ep.ok("pir-1", 1040.0)
        ep.ok("pir-1", 1041.0)  # nothing open: nothing said
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines
    assert lines[0].startswith("pir-1: bad payloads: not JSON")
    assert "door-1: bad payloads over (quiet again): 1 in" in lines[2]
    assert "pir-1: bad payloads over (works again): 1000 in 1040 s" in lines[3]
    assert lines[3].endswith("the last: not JSON #999")


@pytest.mark.mosquitto
async def test_a_device_sending_garbage_is_logged_once_not_per_message(tmp_path, mosquitto,
                                                                      caplog):
    _, port = mosquitto
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gateway_id="gw-noisy")
    n = 150  # within ingest's burst for one device (gateway/ingest.py): each one is judged
    with caplog.at_level(logging.INFO):
        async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(cfg) as gw:
            caplog.clear()
            await publish(port, *[("gw-noisy/kitchen_smoke", b'{"smoke": tru')] * n)
            await publish(port, ("gw-noisy/bedside_sos", TS0215A_PRESS))
            await hl.wait_for(1, timeout=20)  # garbage from one device holds up no alarm
            deadline = time.monotonic() + 30
            while gw.metrics["quarantined_bad_payload"] < n:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            quarantined = await gw.store.call(Store.quarantined)
            # the smoke detector's next report is good: the episode ends, with its count
            await publish(port, ("gw-noisy/kitchen_smoke", b'{"smoke": false, "battery": 90}'))
            while "smoke-kitchen" in gw.bad_payloads.open:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
    about = [r.getMessage() for r in caplog.records if "smoke-kitchen" in r.getMessage()]
    assert len(about) == 2, about
    assert "payloads quarantined" in about[0]
    assert f"over (works again): {n} in" in about[1]
    (row,) = [q for q in quarantined if q["topic"] == "gw-noisy/kitchen_smoke"]
    assert row["count"] == n  # every one still counted and kept for the technician
    assert len(caplog.records) < 40  # the whole run, start to stop
