"""End to end on real parts: Mosquitto, the gateway, the hotline receiver, SQLite.

Real Zigbee2MQTT payloads go in over MQTT; signed alerts come out at the hotline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import aiomqtt
import pytest
from aiohttp import web

from gateway.config import load
from gateway.runtime import Gateway
from hotline.server import serve
from tests._config import SECRET
from tests._hotline import add_operator, headers, login, session
from tests._http import wait_healthy
from tests._mosquitto import free_port

# Captured from a real Heiman HS3SA/HS1SA in alarm (Koenkk/zigbee2mqtt issue log; see
# ../shared/data/z2m_payloads.json).
HS1SA_ALARM = b'{"battery":76.5,"linkquality":89,"enrolled":true,"smoke":true,"battery_low":false}'
HS1SA_QUIET = b'{"battery":76.5,"linkquality":89,"enrolled":true,"smoke":false,"battery_low":false}'
TS0215A_PRESS = b'{"action":"emergency","battery":100,"linkquality":18}'
TS0215A_RESET = b'{"action":"","battery":100,"linkquality":18}'
RADAR_WARNING = b'{"fall_status":"fall_warning","occupancy":true,"linkquality":255}'
RADAR_FALL = b'{"fall_status":"fall_alarm","occupancy":true,"linkquality":255}'

pytestmark = pytest.mark.mosquitto


def write_config(tmp: Path, broker_port: int, hotline_port: int, *, gateway_id: str,
                 fall_window: float = 30.0, retry_max_s: float = 60.0) -> Path:
    """A home with a smoke detector, SOS button, leak sensor, fall radar and pendant."""
    text = f"""
[gateway]
id = "{gateway_id}"
data_dir = "./data"

[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"
zigbee2mqtt_base_topic = "{gateway_id}"   # unique base topics per test: one
native_base_topic = "{gateway_id}-native"  # Mosquitto serves the whole session

[home]
id = "home-{gateway_id}"
address = "测试路 1 号"

[[home.residents]]
name = "李桂兰"
age = 86
ability_level = 3
conditions = ["dementia"]

[alerts]
fall_cancel_window_s = {fall_window}

[[devices]]
id = "smoke-kitchen"
source = "zigbee2mqtt"
topic = "{gateway_id}/kitchen_smoke"
model = "HS1SA"
room = "kitchen"

[[devices]]
id = "sos-bedside"
source = "zigbee2mqtt"
topic = "{gateway_id}/bedside_sos"
model = "TS0215A_sos"
room = "bedroom"

[[devices]]
id = "leak-bathroom"
source = "zigbee2mqtt"
topic = "{gateway_id}/bathroom_leak"
model = "SJCGQ11LM"
room = "bathroom"

[[devices]]
id = "radar-bathroom"
source = "zigbee2mqtt"
topic = "{gateway_id}/bathroom_radar"
model = "HS2FD-EF1-3.0"
room = "bathroom"

[[devices]]
id = "button-pendant"
source = "zigbee2mqtt"
topic = "{gateway_id}/pendant_button"
model = "HS1EB/HS1EB-E"
room = "bedroom"

[[hotline]]
kind = "webhook"
url = "http://127.0.0.1:{hotline_port}/alerts"
secret = "{SECRET}"
retry_max_s = {retry_max_s}
"""
    path = tmp / "anxin.toml"
    path.write_text(text)
    return path


@contextlib.asynccontextmanager
async def hotline(port: int, db: Path, operator: str = "接警员"):
    """The hotline on `port`, with `operator` logged in."""
    add_operator(db, operator)
    task = asyncio.create_task(serve("127.0.0.1", port, SECRET.encode(), str(db)))
    async with session() as http:
        await wait_healthy(http, f"http://127.0.0.1:{port}/healthz")
        try:
            yield HotlineView(http, port, await login(http, f"http://127.0.0.1:{port}",
                                                      operator))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class HotlineView:
    """Reads what the hotline received; acts as the logged-in operator."""

    def __init__(self, http: aiohttp.ClientSession, port: int, csrf: str) -> None:
        self.http = http
        self.port = port
        self.csrf = csrf

    async def act(self, alert_id: str, action: str, **data) -> int:
        """accept / resolve / note / dispatch an alert; the HTTP status."""
        async with self.http.post(f"http://127.0.0.1:{self.port}/api/alerts/{alert_id}/"
                                  f"{action}", json=data, headers=headers(self.csrf)) as r:
            return r.status

    async def alerts(self) -> list[dict]:
        async with self.http.get(f"http://127.0.0.1:{self.port}/api/alerts") as r:
            return await r.json()

    async def wait_for(self, n: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            got = await self.alerts()
            if len(got) >= n or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.05)


async def publish(port: int, *messages: tuple[str, bytes], gap: float = 0.0) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as c:
        for topic, payload in messages:
            await c.publish(topic, payload, qos=1)
            if gap:
                await asyncio.sleep(gap)


@contextlib.asynccontextmanager
async def gateway(config: Path, **kw):
    gw = Gateway(load(config), **kw)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


def gateway_db(tmp: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{tmp / 'data' / 'anxin.db'}?mode=ro", uri=True, timeout=5)


async def test_real_smoke_payload_reaches_hotline_once_signed(tmp_path, mosquitto):
    _, port = mosquitto
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gateway_id="gw-smoke")
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(cfg) as gw:
        # whole-state re-publishes during an alarm (every ~3 s on a Heiman) are one alarm
        await publish(port, ("gw-smoke/kitchen_smoke", HS1SA_QUIET),
                      ("gw-smoke/kitchen_smoke", HS1SA_ALARM),
                      ("gw-smoke/kitchen_smoke", HS1SA_ALARM),
                      ("gw-smoke/kitchen_smoke", HS1SA_ALARM))
        (alert,) = await hl.wait_for(1)
        await asyncio.sleep(0.3)
        assert len(await hl.alerts()) == 1
        assert (alert["code"], alert["severity"], alert["event"]) == (111, 1, "smoke")
        assert alert["device_id"] == "smoke-kitchen" and alert["room"] == "kitchen"
        assert alert["deliveries"] == 1 and alert["test"] in (False, 0)
        body = alert["body"]
        assert body["residents"][0]["name"] == "李桂兰"
        assert body["occurred_at"].endswith("+08:00")
        for _ in range(50):
            if gw.metrics["alerts_raised"] == 1 and not sum(
                    (await gw.store.call(type(gw.store.store).outbox_depth)).values()):
                break
            await asyncio.sleep(0.02)
        with gateway_db(tmp_path) as db:
            assert db.execute("SELECT state FROM alerts").fetchall() == [("delivered",)]
            assert db.execute("SELECT count(*) FROM outbox WHERE acked_at IS NULL"
                              ).fetchone() == (0,)


async def test_bad_input_is_quarantined_and_ingest_keeps_going(tmp_path, mosquitto):
    _, port = mosquitto
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gateway_id="gw-bad")
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(cfg):
        await publish(port,
                      ("gw-bad/kitchen_smoke", b'{"smoke": tru'),          # truncated
                      ("gw-bad/kitchen_smoke", b'{"smoke": "yes"}'),       # wrong type
                      ("gw-bad/kitchen_smoke", b"\xff\xfe"),               # not UTF-8
                      ("gw-bad/unknown_smoke", HS1SA_ALARM),               # not commissioned
                      ("gw-bad/bedside_sos", TS0215A_PRESS),
                      ("gw-bad/bedside_sos", TS0215A_RESET))
        (alert,) = await hl.wait_for(1)
        assert alert["code"] == 101  # the SOS after the garbage still went through
        await asyncio.sleep(0.2)
        assert len(await hl.alerts()) == 1  # the uncommissioned smoke detector raised nothing
    with gateway_db(tmp_path) as db:
        rows = {(t, c): (n, r) for t, c, n, r in db.execute(
            "SELECT topic, category, count, reason FROM quarantine")}
    assert rows[("gw-bad/unknown_smoke", "unknown_device")][0] == 1
    count, reason = rows[("gw-bad/kitchen_smoke", "bad_payload")]
    assert (count == 3 and "UTF-8" in reason) or "utf-8" in reason.lower()


async def test_fall_cancelled_inside_window_is_recorded_not_sent(tmp_path, mosquitto):
    _, port = mosquitto
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gateway_id="gw-fallc", fall_window=1.5)
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(cfg):
        await publish(port,
                      ("gw-fallc/bathroom_radar", RADAR_WARNING),
                      ("gw-fallc/bathroom_radar", RADAR_FALL),
                      # the resident holds the pendant button: cancel
                      ("gw-fallc/pendant_button", b'{"action":"hold","battery":90}'),
                      ("gw-fallc/pendant_button", b'{"action":"","battery":90}'), gap=0.1)
        await asyncio.sleep(2.5)
        assert await hl.alerts() == []
    with gateway_db(tmp_path) as db:
        ((state, event, history),) = db.execute("SELECT state, event, history FROM alerts")
    assert (state, event) == ("cancelled", "fall")
    assert [h[0] for h in json.loads(history)] == ["pending_local", "cancelled"]


async def test_fall_without_cancel_is_sent_after_window(tmp_path, mosquitto):
    _, port = mosquitto
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gateway_id="gw-fall", fall_window=1.0)
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(cfg):
        t0 = time.monotonic()
        await publish(port, ("gw-fall/bathroom_radar", RADAR_FALL))
        await asyncio.sleep(0.5)
        assert await hl.alerts() == []  # still inside the resident's window
        (alert,) = await hl.wait_for(1, timeout=5)
        assert time.monotonic() - t0 >= 1.0
        assert (alert["code"], alert["event"], alert["severity"]) == (100, "fall", 1)


async def test_smoke_retained_while_the_gateway_was_down_is_raised_at_start(tmp_path,
                                                                            mosquitto):
    _, port = mosquitto
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gateway_id="gw-retained")
    async with aiomqtt.Client("127.0.0.1", port) as c:  # Zigbee2MQTT with retain: true
        await c.publish("gw-retained/kitchen_smoke", HS1SA_ALARM, qos=1, retain=True)
        await c.publish("gw-retained/bedside_sos", TS0215A_PRESS, qos=1, retain=True)
    try:
        async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(cfg):
            (alert,) = await hl.wait_for(1)
            await asyncio.sleep(0.3)
            assert len(await hl.alerts()) == 1  # the stale retained press raised nothing
            assert alert["event"] == "smoke"
            assert alert["body"]["evidence"]["seen_at_startup"] is True
    finally:
        async with aiomqtt.Client("127.0.0.1", port) as c:  # clear the retained messages
            await c.publish("gw-retained/kitchen_smoke", b"", qos=1, retain=True)
            await c.publish("gw-retained/bedside_sos", b"", qos=1, retain=True)


async def test_hotline_down_then_back_gets_everything_in_order(tmp_path, mosquitto):
    _, port = mosquitto
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gateway_id="gw-down", retry_max_s=0.5)
    async with gateway(cfg) as gw:
        await publish(port,
                      ("gw-down/kitchen_smoke", HS1SA_ALARM),
                      ("gw-down/bedside_sos", TS0215A_PRESS),
                      ("gw-down/bathroom_leak", b'{"water_leak":true,"battery":100}'),
                      gap=0.05)
        for _ in range(100):
            if gw.metrics["alerts_raised"] == 3:
                break
            await asyncio.sleep(0.05)
        assert gw.metrics["alerts_raised"] == 3
        await asyncio.sleep(1.5)  # several failed attempts
        assert gw.senders["hotline-1"].failures > 0
        async with hotline(hport, tmp_path / "hotline.db") as hl:
            got = await hl.wait_for(3, timeout=10)
    by_arrival = sorted(got, key=lambda a: a["received_at"])
    assert [a["code"] for a in by_arrival] == [111, 101, 154]
    assert [a["sequence"] for a in by_arrival] == [1, 2, 3]
    assert all(a["deliveries"] == 1 for a in got)


class SwallowingProxy:
    """Forwards to the hotline, which stores the alert, but never lets the answer back:
    the gateway sees no acknowledgement. `passthrough` makes it an ordinary proxy."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.passthrough = False
        self.forwarded = asyncio.Event()
        self.release = asyncio.Event()  # ends the swallowed requests at the end of the test

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.startswith("X-Anxin")}
        headers["Content-Type"] = "application/json"
        async with aiohttp.ClientSession() as s, s.post(self.upstream, data=body,
                                                        headers=headers) as r:
            status, text = r.status, await r.text()
        if not self.passthrough:
            self.forwarded.set()
            await self.release.wait()
        return web.Response(status=status, text=text, content_type="application/json")


async def test_sigkill_after_write_before_ack_resends_and_hotline_shows_once(tmp_path,
                                                                            mosquitto):
    _, port = mosquitto
    hport, pport = free_port(), free_port()
    cfg = write_config(tmp_path, port, pport, gateway_id="gw-kill", retry_max_s=0.5)
    proxy = SwallowingProxy(f"http://127.0.0.1:{hport}/alerts")
    app = web.Application()
    app.router.add_post("/alerts", proxy.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", pport).start()
    anxin = [sys.executable, "-m", "gateway.cli", "run", "--config", str(cfg)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen] = []
    try:
        async with hotline(hport, tmp_path / "hotline.db") as hl:
            first = subprocess.Popen(anxin, env=env, stderr=subprocess.PIPE, text=True)
            procs.append(first)
            # wait until the gateway is subscribed: its store exists and it is connected
            await asyncio.sleep(0.5)
            for _ in range(100):
                await publish(port, ("gw-kill/bedside_sos", TS0215A_PRESS),
                              ("gw-kill/bedside_sos", TS0215A_RESET))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proxy.forwarded.wait(), 0.3)
                if proxy.forwarded.is_set():
                    break
            assert proxy.forwarded.is_set(), "the gateway never sent"
            assert len(await hl.alerts()) == 1  # the hotline has it ...
            with gateway_db(tmp_path) as db:  # ... but the gateway has no acknowledgement
                assert db.execute("SELECT count(*) FROM outbox WHERE acked_at IS NULL"
                                  ).fetchone() == (1,)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            assert first.returncode == -signal.SIGKILL
            proxy.passthrough = True
            second = subprocess.Popen(anxin, env=env, stderr=subprocess.PIPE, text=True)
            procs.append(second)
            for _ in range(200):
                got = await hl.alerts()
                if got and got[0]["deliveries"] >= 2:
                    break
                await asyncio.sleep(0.05)
            (alert,) = await hl.alerts()
            assert alert["code"] == 101 and alert["deliveries"] == 2
            for _ in range(100):
                with gateway_db(tmp_path) as db:
                    (left,) = db.execute(
                        "SELECT count(*) FROM outbox WHERE acked_at IS NULL").fetchone()
                if left == 0:
                    break
                await asyncio.sleep(0.05)
            assert left == 0
            second.send_signal(signal.SIGTERM)
            _, err = second.communicate(timeout=10)
            assert second.returncode == 0, err
            assert "Traceback" not in err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            if p.stderr:
                p.stderr.close()
        proxy.release.set()
        await runner.cleanup()


async def test_a_bug_on_one_message_is_kept_and_ingest_goes_on(tmp_path, mosquitto,
                                                                monkeypatch):
    _, port = mosquitto
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gateway_id="gw-bug")
    from devices.adapters import ADAPTERS  # noqa: PLC0415
    real = ADAPTERS["zigbee2mqtt"]

    def buggy(device, model, topic, payload, now):
        if b"boom" in payload:
            raise RuntimeError("simulated adapter bug")
        return real(device, model, topic, payload, now)

    monkeypatch.setitem(ADAPTERS, "zigbee2mqtt", buggy)
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(cfg) as gw:
        await publish(port, ("gw-bug/kitchen_smoke", b'{"boom": 1}'),
                      ("gw-bug/bedside_sos", TS0215A_PRESS))
        (alert,) = await hl.wait_for(1)
        assert alert["code"] == 101
        assert gw.metrics["internal_errors"] == 1
    with gateway_db(tmp_path) as db:
        (row,) = db.execute("SELECT category, reason FROM quarantine").fetchall()
    assert row == ("internal_error", "RuntimeError: simulated adapter bug")


async def test_a_gateway_alone_in_its_process_freezes_its_start_up_heap_and_alarms_still_go(
        tmp_path, mosquitto):
    import gc  # noqa: PLC0415

    _, port = mosquitto
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gateway_id="gw-frozen")
    assert gc.get_freeze_count() == 0
    try:
        async with hotline(hport, tmp_path / "hotline.db") as hl, \
                gateway(cfg, freeze_heap=True) as gw:
            assert gw.ready.is_set()
            frozen = gc.get_freeze_count()
            assert frozen > 10_000  # modules, config, the gateway itself
            await publish(port, ("gw-frozen/kitchen_smoke", HS1SA_QUIET),
                          ("gw-frozen/kitchen_smoke", HS1SA_ALARM))
            (alert,) = await hl.wait_for(1, timeout=10)
            assert alert["event"] == "smoke"
    finally:
        gc.unfreeze()  # (this process goes on to start other gateways)
    (tmp_path / "b").mkdir()
    async with gateway(write_config(tmp_path / "b", port, hport, gateway_id="gw-unfrozen")):
        assert gc.get_freeze_count() == 0  # only `anxin run` asks for it
