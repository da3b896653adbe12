"""The home's broker lets nobody in without a password, and each device speak only for
itself: a real Mosquitto with the password file and the ACL `anxin broker-acl` writes; and
behind it, a device that is not commissioned raises no alarm."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tomllib

import aiomqtt
import pytest

from gateway import broker_acl
from gateway.cli import main
from gateway.config import parse
from tests._mosquitto import free_port, running_mosquitto
from tests.test_e2e_gateway import (
    HS1SA_ALARM,
    TS0215A_PRESS,
    TS0215A_RESET,
    gateway,
    gateway_db,
    hotline,
    publish,
    write_config,
)

pytestmark = pytest.mark.mosquitto

CONFIG = """
[gateway]
id = "gw-acl"
[mqtt]
url = "mqtt://127.0.0.1:1883"
username = "anxin-gateway"
[home]
id = "home-acl"
speaker_topic = "anxin/home-acl/speaker"
[[home.residents]]
name = "王秀珍"
[[devices]]
id = "smoke-kitchen"
source = "zigbee2mqtt"
topic = "zigbee2mqtt/kitchen_smoke"
model = "HS1SA"
[[devices]]
id = "pendant"
source = "anxin"
topic = "anxin/sensor/pendant"
model = "anxin-pendant"
[[devices]]
id = "bed-1"
source = "anxin"
topic = "anxin/sensor/bed-1"
model = "anxin-bed-sensor"
[[devices]]
id = "intercom"
source = "anxin"
topic = "anxin/sensor/intercom"
model = "anxin-intercom"
[[hotline]]
url = "http://127.0.0.1:9000/alerts"
secret = "s"
"""


async def receive(client: aiomqtt.Client, seconds: float) -> list[tuple[str, bytes]]:
    got = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for m in client.messages:
                got.append((str(m.topic), bytes(m.payload)))
    return got


async def test_each_device_may_write_only_its_own_topic(tmp_path, capsys):
    cfg = parse(tomllib.loads(CONFIG))
    assert broker_acl.users(cfg) == ["anxin-gateway", "zigbee2mqtt", "pendant", "bed-1",
                                     "intercom", "speaker"]
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    for user in broker_acl.users(cfg):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if not passwd.exists() else []),
                        str(passwd), user, f"pw-{user}"], check=True, capture_output=True)
    (tmp_path / "anxin.toml").write_text(CONFIG, encoding="utf-8")
    assert main(["broker-acl", "--config", str(tmp_path / "anxin.toml")]) == 0
    acl.write_text(capsys.readouterr().out, encoding="utf-8")
    options = f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}"
    with running_mosquitto(listener_options=options) as (host, port):
        def as_user(user: str | None) -> aiomqtt.Client:
            return aiomqtt.Client(host, port, username=user,
                                  password=None if user is None else f"pw-{user}",
                                  identifier=f"t-{user}")

        with pytest.raises(aiomqtt.MqttError):  # no password, no entry
            async with as_user(None):
                pass
        async with as_user("anxin-gateway") as gw, as_user("speaker") as speaker, \
                as_user("pendant") as pendant, as_user("zigbee2mqtt") as z2m, \
                as_user("intercom") as intercom:
            await gw.subscribe("zigbee2mqtt/#", qos=1)
            await gw.subscribe("anxin/sensor/#", qos=1)
            await speaker.subscribe("anxin/home-acl/speaker", qos=1)
            await intercom.subscribe("anxin/sensor/intercom/set", qos=1)
            # its own topic and below: heard
            await pendant.publish("anxin/sensor/pendant", b'{"sos": true}', qos=1)
            await pendant.publish("anxin/sensor/pendant/availability", b"online", qos=1)
            # a spoofed smoke alarm, another device's topic, the speaker: dropped
            await pendant.publish("zigbee2mqtt/kitchen_smoke", b'{"smoke": true}', qos=1)
            await pendant.publish("anxin/sensor/bed-1", b'{"in_bed": false}', qos=1)
            await pendant.publish("anxin/home-acl/speaker", b'{"say": "spoof"}', qos=1)
            # a stream its model does not send; the intercom ringing itself as the centre
            await pendant.publish("anxin/sensor/pendant/imu", b"AXIM", qos=1)
            await intercom.publish("anxin/sensor/intercom/set", b'{"ring": {}}', qos=1)
            await pendant.publish("anxin/sensor/intercom/set", b'{"ring": {}}', qos=1)
            # Zigbee2MQTT for the Zigbee devices; the gateway to the speaker
            await z2m.publish("zigbee2mqtt/kitchen_smoke", b'{"smoke": false}', qos=1)
            await gw.publish("anxin/home-acl/speaker", b'{"say": "ok"}', qos=1)
            await gw.publish("anxin/sensor/intercom/set", b'{"ring": {"request_id": "r1"}}',
                             qos=1)
            heard = await receive(gw, 1.5)
            said = await receive(speaker, 0.5)
            rung = await receive(intercom, 0.5)
    ring = ("anxin/sensor/intercom/set", b'{"ring": {"request_id": "r1"}}')
    assert sorted(heard) == [("anxin/sensor/intercom/set", ring[1]),  # its own, heard back
                             ("anxin/sensor/pendant", b'{"sos": true}'),
                             ("anxin/sensor/pendant/availability", b"online"),
                             ("zigbee2mqtt/kitchen_smoke", b'{"smoke": false}')]
    assert said == [("anxin/home-acl/speaker", b'{"say": "ok"}')]
    assert rung == [ring]  # only the gateway's


async def test_a_device_that_is_not_commissioned_raises_no_alarm(tmp_path, mosquitto):
    """Past the broker (a user with a password but no [[devices]] entry, or a broker with no
    access list): its SOS and smoke alarms are kept for the technician and raise nothing."""
    _, port = mosquitto
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gateway_id="gw-uncommissioned")
    native = "gw-uncommissioned-native"
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(cfg):
        await publish(port,
                      (f"{native}/pendant-unknown", b'{"sos": true}'),      # native, unknown
                      (f"{native}/smoke-kitchen", b'{"smoke": true}'),      # a known id, wrong
                      ("gw-uncommissioned/attic_smoke", HS1SA_ALARM),       # Zigbee, unknown
                      ("gw-uncommissioned/bedside_sos", TS0215A_PRESS),     # commissioned
                      ("gw-uncommissioned/bedside_sos", TS0215A_RESET))
        (alert,) = await hl.wait_for(1)
        assert alert["code"] == 101  # the commissioned button, after the others
        await asyncio.sleep(0.5)
        assert len(await hl.alerts()) == 1
    with gateway_db(tmp_path) as db:
        kept = dict(db.execute("SELECT topic, category FROM quarantine"))
    assert kept == {f"{native}/pendant-unknown": "unknown_device",
                    f"{native}/smoke-kitchen": "unknown_device",
                    "gw-uncommissioned/attic_smoke": "unknown_device"}
