"""Escalation end to end on real parts: Mosquitto, the gateway, two hotline receivers, the
SMS gateway stand-in. Until an operator accepts, the next tier is told; acceptance travels
back over the signed feedback feed and stops it; forged feedback changes nothing."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import aiomqtt
from aiohttp import web

from alerts import wire
from tests._mosquitto import free_port
from tests.test_e2e_gateway import (
    SECRET,
    TS0215A_PRESS,
    TS0215A_RESET,
    HotlineView,
    gateway,
    hotline,
    publish,
)

HS1SA_TEST_ALARM = b'{"battery":90,"linkquality":80,"smoke":true,"test":true}'


def write_config(tmp: Path, broker_port: int, primary: int, backup: int, *, gateway_id: str,
                 primary_feedback: str | None = None) -> Path:
    """A bedside SOS button; tiers: primary hotline -> backup (1 s) -> daughter's phone (2 s)."""
    feedback = f'feedback_url = "{primary_feedback}"\n' if primary_feedback else ""
    text = f"""
[gateway]
id = "{gateway_id}"
data_dir = "./data"

[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"
zigbee2mqtt_base_topic = "{gateway_id}"
native_base_topic = "{gateway_id}-native"

[home]
id = "home-{gateway_id}"
address = "测试路 8 号"
speaker_topic = "{gateway_id}-speaker/say"

[[home.residents]]
name = "赵玉珍"
age = 88

[[devices]]
id = "sos-bedside"
source = "zigbee2mqtt"
topic = "{gateway_id}/bedside_sos"
model = "TS0215A_sos"
room = "卧室"

[[devices]]
id = "smoke-kitchen"
source = "zigbee2mqtt"
topic = "{gateway_id}/kitchen_smoke"
model = "HS1SA"
room = "厨房"

[[hotline]]
name = "primary"
url = "http://127.0.0.1:{primary}/alerts"
secret = "{SECRET}"
retry_max_s = 0.5
{feedback}
[[hotline]]
name = "backup"
url = "http://127.0.0.1:{backup}/alerts"
secret = "{SECRET}"
retry_max_s = 0.5

[[hotline]]
name = "daughter"
kind = "sms"
url = "http://127.0.0.1:{backup}/notify"
to = "+8613800000000"
secret = "{SECRET}"
retry_max_s = 0.5

[escalation]
renotify_s = [0, 0, 0, 0]

[[escalation.tiers]]
name = "centre"
targets = ["primary"]

[[escalation.tiers]]
name = "backup-centre"
targets = ["backup"]
after_s = [1, 1, 0, 0]

[[escalation.tiers]]
name = "family"
targets = ["daughter"]
after_s = [2, 2, 0, 0]
"""
    path = tmp / "anxin.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def notifications(view: HotlineView) -> list[dict]:
    async with view.http.get(f"http://127.0.0.1:{view.port}/api/notifications") as r:
        return await r.json()


def gateway_alert(tmp: Path) -> tuple[str, str | None, int]:
    with sqlite3.connect(f"file:{tmp / 'data' / 'anxin.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT state, taken_by, tier FROM alerts").fetchone()


async def test_unaccepted_sos_escalates_tier_by_tier_to_the_family(tmp_path, mosquitto):
    _, port = mosquitto
    p, b = free_port(), free_port()
    cfg = write_config(tmp_path, port, p, b, gateway_id="gw-esc")
    async with hotline(p, tmp_path / "p.db") as primary, \
            hotline(b, tmp_path / "b.db") as backup, gateway(cfg):
        t0 = time.monotonic()
        await publish(port, ("gw-esc/bedside_sos", TS0215A_PRESS),
                      ("gw-esc/bedside_sos", TS0215A_RESET))
        (first,) = await primary.wait_for(1)
        assert await backup.alerts() == []  # the primary has its second first
        (second,) = await backup.wait_for(1, timeout=5)
        assert time.monotonic() - t0 >= 1.0
        assert second["alert_id"] == first["alert_id"]
        assert second["body"]["escalation"] == {"tier": 1, "tier_name": "backup-centre",
                                                "reminder": 0}
        for _ in range(100):
            sms = await notifications(backup)
            if sms:
                break
            await asyncio.sleep(0.05)
        (msg,) = sms
        assert time.monotonic() - t0 >= 3.0
        assert (msg["to"], msg["channel"], msg["alert_id"]) == (
            "+8613800000000", "sms", first["alert_id"])
        for part in ("赵玉珍", "紧急呼叫", "测试路 8 号"):
            assert part in msg["text"]
        assert len(await primary.alerts()) == 1  # escalation adds, it does not move
    assert gateway_alert(tmp_path)[2] == 2


async def test_acceptance_travels_back_and_stops_escalation(tmp_path, mosquitto):
    host, port = mosquitto
    p, b = free_port(), free_port()
    cfg = write_config(tmp_path, port, p, b, gateway_id="gw-acc",
                       primary_feedback=f"http://127.0.0.1:{p}/feedback")
    said: list[dict] = []
    async with hotline(p, tmp_path / "p.db", "王接警员") as primary, \
            hotline(b, tmp_path / "b.db") as backup, gateway(cfg) as gw, \
            aiomqtt.Client(host, port) as speaker:
        await speaker.subscribe("gw-acc-speaker/say", qos=1)

        async def listen():
            async for m in speaker.messages:
                said.append(json.loads(m.payload))

        listener = asyncio.create_task(listen())
        try:
            await publish(port, ("gw-acc/bedside_sos", TS0215A_PRESS))
            (alert,) = await primary.wait_for(1)
            assert await primary.act(alert["alert_id"], "accept") == 200
            for _ in range(100):
                if gateway_alert(tmp_path)[0] == "accepted":
                    break
                await asyncio.sleep(0.05)
            assert gateway_alert(tmp_path)[:2] == ("accepted", "王接警员")
            await asyncio.sleep(2.5)  # past both escalation waits
            assert await backup.alerts() == [] and await notifications(backup) == []
            assert gw.metrics["alerts_accepted"] == 1
            assert await primary.act(alert["alert_id"], "resolve",
                                     outcome="real_emergency") == 200
            for _ in range(100):
                if gateway_alert(tmp_path)[0] == "resolved":
                    break
                await asyncio.sleep(0.05)
            assert gateway_alert(tmp_path)[0] == "resolved"
            for _ in range(50):
                if len(said) >= 2:
                    break
                await asyncio.sleep(0.05)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
    assert [s["say"][:6] for s in said] == ["已收到您的紧", "服务中心已经"]
    assert all(s["lang"] == "zh-CN" and s["alert_id"] == alert["alert_id"] for s in said)


async def test_forged_acceptance_is_not_believed(tmp_path, mosquitto):
    _, port = mosquitto
    p, b, f = free_port(), free_port(), free_port()

    async def forged(_request: web.Request) -> web.Response:  # a feed with the wrong key
        body = json.dumps({"schema": wire.FEEDBACK_SCHEMA, "cursor": "1", "events": [
            {"alert_id": forged.alert_id, "action": "accepted", "operator": "mallory",
             "at": time.time()}]}).encode()
        return web.Response(body=body, headers=wire.signed_headers(b"not-the-secret",
                                                                   int(time.time()), body))
    forged.alert_id = ""
    app = web.Application()
    app.router.add_get("/feedback", forged)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", f).start()
    cfg = write_config(tmp_path, port, p, b, gateway_id="gw-forge",
                       primary_feedback=f"http://127.0.0.1:{f}/feedback")
    try:
        async with hotline(p, tmp_path / "p.db") as primary, \
                hotline(b, tmp_path / "b.db") as backup, gateway(cfg):
            await publish(port, ("gw-forge/bedside_sos", TS0215A_PRESS))
            (alert,) = await primary.wait_for(1)
            forged.alert_id = alert["alert_id"]
            (escalated,) = await backup.wait_for(1, timeout=5)  # escalation went on
            assert escalated["alert_id"] == alert["alert_id"]
        assert gateway_alert(tmp_path)[0] in ("raised", "delivered")
    finally:
        await runner.cleanup()


async def test_test_alarm_goes_to_the_first_tier_only(tmp_path, mosquitto):
    _, port = mosquitto
    p, b = free_port(), free_port()
    cfg = write_config(tmp_path, port, p, b, gateway_id="gw-drill")
    async with hotline(p, tmp_path / "p.db") as primary, \
            hotline(b, tmp_path / "b.db") as backup, gateway(cfg):
        await publish(port, ("gw-drill/kitchen_smoke", HS1SA_TEST_ALARM))
        (alert,) = await primary.wait_for(1)
        assert alert["test"] is True and alert["code"] == 111
        await asyncio.sleep(3.5)
        assert await backup.alerts() == [] and await notifications(backup) == []


async def test_home_is_told_when_the_centre_is_unreachable_and_when_it_is_back(
        tmp_path, mosquitto, monkeypatch):
    import alerts.prompts  # noqa: PLC0415
    monkeypatch.setattr(alerts.prompts, "PATH_DOWN_SPEAK_S", 0.5)
    monkeypatch.setattr(alerts.prompts, "DAY_HOURS", range(24))
    host, port = mosquitto
    p, b = free_port(), free_port()
    cfg = write_config(tmp_path, port, p, b, gateway_id="gw-path",
                       primary_feedback=f"http://127.0.0.1:{p}/feedback")
    said: list[str] = []
    async with aiomqtt.Client(host, port) as speaker:
        await speaker.subscribe("gw-path-speaker/say", qos=1)

        async def listen():
            async for m in speaker.messages:
                said.append(json.loads(m.payload)["say"])

        listener = asyncio.create_task(listen())
        try:
            async with gateway(cfg):  # the centre is not there
                for _ in range(100):
                    if said:
                        break
                    await asyncio.sleep(0.05)
                assert said and said[0].startswith("和服务中心的网络断了")
                async with hotline(p, tmp_path / "p.db"):
                    for _ in range(200):
                        if len(said) >= 2:
                            break
                        await asyncio.sleep(0.05)
            assert said[1] == "和服务中心的网络已经恢复了。" and len(said) == 2
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)


async def test_maintenance_mode_sends_everything_as_a_test_to_the_first_tier(tmp_path,
                                                                              mosquitto, capsys):
    from gateway.cli import main  # noqa: PLC0415
    _, port = mosquitto
    p, b = free_port(), free_port()
    cfg = write_config(tmp_path, port, p, b, gateway_id="gw-maint")
    async with hotline(p, tmp_path / "p.db") as primary, \
            hotline(b, tmp_path / "b.db") as backup, gateway(cfg) as gw:
        assert main(["maintenance", "start", "--config", str(cfg), "--minutes", "5"]) == 0
        assert "test/maintenance mode ON" in capsys.readouterr().out
        for _ in range(100):  # the running gateway notices within 2 s
            if gw.maintenance_until:
                break
            await asyncio.sleep(0.05)
        await publish(port, ("gw-maint/bedside_sos", TS0215A_PRESS))
        (drill,) = await primary.wait_for(1)
        assert drill["test"] is True and drill["body"]["evidence"]["maintenance_mode"] is True
        await asyncio.sleep(2.5)  # past the backup tier's wait
        assert await backup.alerts() == []
        assert main(["maintenance", "stop", "--config", str(cfg)]) == 0
        for _ in range(100):
            if not gw.maintenance_until:
                break
            await asyncio.sleep(0.05)
        await publish(port, ("gw-maint/kitchen_smoke", b'{"smoke":true}'))
        got = await primary.wait_for(2)
        assert got[0]["event"] == "smoke" and got[0]["test"] is False
