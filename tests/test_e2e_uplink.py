"""The MQTT uplink end to end: alerts to the centre's broker, acceptance back down, and the
last will telling the centre when a gateway's uplink dies."""

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

import aiomqtt

from hotline.server import serve
from tests._hotline import add_operator, login, session
from tests._http import wait_healthy
from tests._mosquitto import free_port
from tests.test_e2e_gateway import SECRET, TS0215A_PRESS, HotlineView, gateway, publish


def write_config(tmp: Path, port: int, gateway_id: str, prefix: str) -> Path:
    text = f"""
[gateway]
id = "{gateway_id}"
data_dir = "./data"

[mqtt]
url = "mqtt://127.0.0.1:{port}"
zigbee2mqtt_base_topic = "{gateway_id}"
native_base_topic = "{gateway_id}-native"

[home]
id = "home-{gateway_id}"

[[devices]]
id = "sos-bedside"
source = "zigbee2mqtt"
topic = "{gateway_id}/bedside_sos"
model = "TS0215A_sos"
room = "卧室"

[[hotline]]
name = "centre-mqtt"
kind = "mqtt"
url = "mqtt://127.0.0.1:{port}"
topic_prefix = "{prefix}"
secret = "{SECRET}"
retry_max_s = 0.5
"""
    path = tmp / "anxin.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def centre(port: int, hport: int, db: Path, prefix: str):
    add_operator(db, "陈接警员")
    task = asyncio.create_task(serve("127.0.0.1", hport, SECRET.encode(), str(db),
                                     mqtt_url=f"mqtt://127.0.0.1:{port}", mqtt_prefix=prefix))
    async with session() as http:
        await wait_healthy(http, f"http://127.0.0.1:{hport}/healthz")
        try:
            yield HotlineView(http, hport, await login(http, f"http://127.0.0.1:{hport}",
                                                       "陈接警员"))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def state(tmp: Path) -> tuple[str, str | None]:
    with sqlite3.connect(f"file:{tmp / 'data' / 'anxin.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT state, taken_by FROM alerts").fetchone()


async def test_alert_over_the_uplink_and_acceptance_back(tmp_path, mosquitto):
    host, port = mosquitto
    hport = free_port()
    cfg = write_config(tmp_path, port, "gw-up", "central-a")
    async with centre(port, hport, tmp_path / "centre.db", "central-a") as hl, gateway(cfg):
        async with aiomqtt.Client(host, port) as c:  # the retained status says online
            await c.subscribe("central-a/gw-up/status", qos=1)
            async with asyncio.timeout(5):
                async for m in c.messages:
                    assert json.loads(m.payload)["state"] == "online"
                    break
        await publish(port, ("gw-up/bedside_sos", TS0215A_PRESS))
        (alert,) = await hl.wait_for(1)
        assert (alert["code"], alert["gateway_id"], alert["room"]) == (101, "gw-up", "卧室")
        assert await hl.act(alert["alert_id"], "accept") == 200
        for _ in range(100):
            if state(tmp_path)[0] == "accepted":
                break
            await asyncio.sleep(0.05)
        assert state(tmp_path) == ("accepted", "陈接警员")


async def test_dead_uplink_is_loss_of_supervision_at_the_centre(tmp_path, mosquitto):
    _, port = mosquitto
    hport = free_port()
    cfg = write_config(tmp_path, port, "gw-lwt", "central-b")
    async with centre(port, hport, tmp_path / "centre.db", "central-b") as hl:
        gw = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config",
                               str(cfg)], env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):  # until the centre has seen it online
                async with hl.http.get(f"http://127.0.0.1:{hport}/api/gateways") as r:
                    if await r.json():
                        break
                await asyncio.sleep(0.05)
            gw.send_signal(signal.SIGKILL)  # no clean goodbye: the broker's last will
            gw.wait(10)
            (silent,) = await hl.wait_for(1, timeout=60)  # keepalive 30 s x 1.5 at most
            assert (silent["event"], silent["code"], silent["home_id"]) == (
                "gateway_silent", 350, "home-gw-lwt")
        finally:
            if gw.poll() is None:
                gw.kill()
                gw.wait()


async def test_uplink_over_tls_with_a_client_certificate(tmp_path):
    import ssl  # noqa: PLC0415
    import threading  # noqa: PLC0415

    import paho.mqtt.client as mqtt  # noqa: PLC0415

    from alerts import wire  # noqa: PLC0415
    from tests._mosquitto import running_mosquitto  # noqa: PLC0415
    from tests._tls import make_pki  # noqa: PLC0415

    pki = make_pki(tmp_path)
    options = (f"cafile {pki['ca']}\ncertfile {pki['server']}\nkeyfile {pki['server_key']}\n"
               "require_certificate true")
    with running_mosquitto() as (_, home), \
            running_mosquitto(listener_options=options) as (_, central):
        cfg = write_config(tmp_path, home, "gw-tls", "central-tls")
        text = cfg.read_text(encoding="utf-8")
        assert f'url = "mqtt://127.0.0.1:{home}"\ntopic_prefix' in text
        cfg.write_text(text.replace(
            f'url = "mqtt://127.0.0.1:{home}"\ntopic_prefix',
            f'url = "mqtts://127.0.0.1:{central}"\nca_file = "ca.pem"\n'
            f'cert_file = "client.pem"\nkey_file = "client.key"\ntopic_prefix'), encoding="utf-8")
        # the centre, as a paho client on its own thread, with its own certificate
        got: list[bytes] = []
        arrived = threading.Event()
        centre = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="centre-tls")
        centre.tls_set(ca_certs=str(pki["ca"]), certfile=str(pki["client"]),
                       keyfile=str(pki["client_key"]), cert_reqs=ssl.CERT_REQUIRED)
        centre.on_connect = lambda c, *_: c.subscribe("central-tls/gw-tls/alerts", qos=1)

        def on_message(_c, _u, m):
            got.append(m.payload)
            arrived.set()

        centre.on_message = on_message
        centre.connect("127.0.0.1", central)
        centre.loop_start()
        try:
            async with gateway(cfg):
                await publish(home, ("gw-tls/bedside_sos", TS0215A_PRESS))
                for _ in range(200):
                    if arrived.is_set():
                        break
                    await asyncio.sleep(0.05)
        finally:
            centre.loop_stop()
            centre.disconnect()
    (payload,) = got
    body = wire.decode(wire.open_envelope(SECRET.encode(), payload, time.time()))
    assert (body["code"], body["gateway_id"]) == (101, "gw-tls")
