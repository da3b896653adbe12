"""Commissioning from the CLI, as a technician with only SSH does it, against a running gateway,
Mosquitto and the hotline: add devices Zigbee2MQTT has paired, walk test, end-to-end test
alarm with the hotline's acknowledgement, report."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

from gateway.config import load
from gateway.runtime import Gateway
from tests._mosquitto import free_port
from tests.test_e2e_gateway import SECRET, TS0215A_PRESS, TS0215A_RESET, hotline, publish

pytestmark = pytest.mark.mosquitto

ANXIN = [sys.executable, "-m", "gateway.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
BRIDGE_DEVICES = (Path(__file__).parent / "fixtures" / "z2m_bridge_devices.json").read_bytes()
TECH = "王师傅"

# Real payloads: an Aqara MCCGQ11LM opened, a Heiman HS1SA with its test button held, the
# TuYa TS0207 leak sensor wet (shapes as in devices/fixtures/).
DOOR_OPEN = b'{"battery":91,"contact":false,"linkquality":63,"voltage":3005}'
SMOKE_TEST = b'{"battery":90,"linkquality":80,"smoke":true,"test":true,"battery_low":false}'
LEAK_WET = b'{"water_leak":true,"battery_low":false,"tamper":false,"linkquality":120}'


def write_config(tmp: Path, broker_port: int, hotline_port: int, gid: str) -> Path:
    """A home with a smoke detector and an SOS button; the technician adds the rest."""
    path = tmp / "anxin.toml"
    path.write_text(f"""# written by hand at the office; the technician adds devices on site
[gateway]
id = "{gid}"
data_dir = "./data"

[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"
zigbee2mqtt_base_topic = "{gid}"
native_base_topic = "{gid}-native"

[home]
id = "home-{gid}"
address = "测试路 9 号"

[[home.residents]]
name = "陈淑芬"
age = 84

[[devices]]
id = "smoke-kitchen"
source = "zigbee2mqtt"
topic = "{gid}/kitchen_smoke"
model = "HS1SA"
room = "kitchen"

[[devices]]
id = "sos-bedside"
source = "zigbee2mqtt"
topic = "{gid}/bedside_sos"
model = "TS0215A_sos"
room = "bedroom"

[[hotline]]
name = "centre"
url = "http://127.0.0.1:{hotline_port}/alerts"
feedback_url = "http://127.0.0.1:{hotline_port}/feedback"
secret = "{SECRET}"
retry_max_s = 0.5
""", encoding="utf-8")
    return path


async def anxin(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *ANXIN, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=ENV)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def running(path: Path):
    gw = Gateway(load(path), config_path=path)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_commissioning_a_home_from_the_cli(tmp_path, mosquitto):
    _, port = mosquitto
    hport, gid = free_port(), "gw-comm"
    path = write_config(tmp_path, port, hport, gid)
    cfg = str(path)
    await publish(port)  # broker up
    async with hotline(hport, tmp_path / "hotline.db", "接警员小李") as hl, \
            running(path) as gw:
        import aiomqtt  # noqa: PLC0415

        async with aiomqtt.Client("127.0.0.1", port) as c:
            await c.publish(f"{gid}/bridge/devices", BRIDGE_DEVICES, qos=1, retain=True)

        # --- add what Zigbee2MQTT paired: one catalogue model, one mapped from exposes
        rc, out, err = await anxin("devices", "add", "door-entrance", "--config", cfg,
                                   "--from-z2m", "hall_door", "--room", "entrance",
                                   "--name", "入户门")
        assert rc == 0, err
        assert "door-entrance: MCCGQ11LM" in out and "previous config kept as" in out
        rc, out, err = await anxin("devices", "add", "leak-bathroom", "--config", cfg,
                                   "--from-z2m", "0xa4c138f00d1e2f3a", "--room", "bathroom")
        assert rc == 0, err
        assert "mapped from its exposes as water_leak" in out
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# written by hand at the office")  # comments kept
        assert 'topic = "gw-comm/0xa4c138f00d1e2f3a"' in text
        # the running gateway takes them without a restart
        await until(lambda: {"gw-comm/hall_door", "gw-comm/0xa4c138f00d1e2f3a"}
                    <= set(gw.devices))

        rc, out, _ = await anxin("devices", "list", "--config", cfg, "--json")
        listed = {r["id"]: r for r in json.loads(out)}
        assert set(listed) == {"smoke-kitchen", "sos-bedside", "door-entrance", "leak-bathroom"}
        assert listed["leak-bathroom"]["mapped_from_exposes"]
        assert not listed["door-entrance"]["mapped_from_exposes"]

        # --- walk test: start, trigger every device, stop
        rc, out, err = await anxin("commission", "walk-test", "start", "--config", cfg,
                                   "--technician", TECH, "--watch", "0")
        assert rc == 0, err
        assert "test mode on" in out and "waiting: 开一下门/窗" in out
        await until(lambda: gw.maintenance_until > time.time())
        await publish(port, (f"{gid}/hall_door", DOOR_OPEN),
                      (f"{gid}/kitchen_smoke", SMOKE_TEST),
                      (f"{gid}/0xa4c138f00d1e2f3a", LEAK_WET),
                      (f"{gid}/bedside_sos", TS0215A_PRESS),
                      (f"{gid}/bedside_sos", TS0215A_RESET), gap=0.05)
        await asyncio.sleep(1.5)  # observations are flushed every second
        rc, out, err = await anxin("commission", "walk-test", "watch", "--config", cfg,
                                   "--watch", "10")
        assert rc == 0, err
        assert "4/4 passed" in out
        rc, out, err = await anxin("commission", "walk-test", "stop", "--config", cfg)
        assert rc == 0, err + out
        assert "every device passed" in out
        assert "battery_low" not in out and "contact=open" in out and "test=true" in out
        # what fired during the walk test reached the hotline marked test, end to end
        got = await hl.wait_for(2)
        assert {a["event"] for a in got} >= {"sos", "smoke"}
        assert all(a["test"] in (True, 1) for a in got)
        await until(lambda: gw.maintenance_until <= time.time())  # test mode ends with it

        # --- end-to-end test alarm: delivered, then accepted by an operator
        rc, out, err = await anxin("commission", "test-alarm", "--config", cfg,
                                   "--technician", TECH, "--wait", "20")
        assert rc == 0, err
        assert "delivered" in out and "centre acknowledged at" in out
        waiting = asyncio.create_task(anxin("commission", "test-alarm", "--config", cfg,
                                            "--technician", TECH, "--wait", "30",
                                            "--until-accepted"))
        deadline = time.monotonic() + 15
        while True:
            tests = [a for a in await hl.alerts() if a["event"] == "test_alarm"]
            if len(tests) == 2:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        newest = max(tests, key=lambda a: a["received_at"])
        assert newest["test"] in (True, 1) and newest["code"] == 601
        assert await hl.act(newest["alert_id"], "accept") == 200
        rc, out, err = await waiting
        assert rc == 0, err
        assert "accepted by 接警员小李" in out

        # --- the report
        rc, out, err = await anxin("commission", "report", "--config", cfg, "--technician",
                                   TECH, "--format", "json")
        assert rc == 0, err + out
        report = json.loads(out)
        assert report["passed"] and report["technician"] == TECH
        assert report["test_alarm"]["state"] == "accepted"
        assert report["test_alarm"]["accepted_by"] == "接警员小李"
        by_id = {d["id"]: d for d in report["devices"]}
        assert by_id["door-entrance"]["battery_pct"] == 91
        assert by_id["door-entrance"]["link_quality"] == 63
        assert by_id["door-entrance"]["walk_test"]["trigger"] == "contact=open"
        assert by_id["door-entrance"]["firmware"] == "3000-0001"  # from bridge/devices
        assert by_id["door-entrance"]["power_source"] == "Battery"
        assert by_id["door-entrance"]["walk_test"]["at"].endswith("+08:00")
        assert by_id["leak-bathroom"]["mapped_from_exposes"]
        kept = sorted((tmp_path / "data" / "reports").iterdir())
        assert [p.suffix for p in kept] == [".html", ".json"]
        page = kept[0].read_text(encoding="utf-8")
        assert "验收通过" in page and "入户门" in page and "接警员小李" in page


async def test_a_device_not_triggered_fails_the_walk_test_and_the_report(tmp_path, mosquitto):
    _, port = mosquitto
    hport, gid = free_port(), "gw-comm-miss"
    path = write_config(tmp_path, port, hport, gid)
    cfg = str(path)
    async with hotline(hport, tmp_path / "hotline.db"), running(path):
        rc, _, err = await anxin("commission", "walk-test", "stop", "--config", cfg)
        assert rc == 1 and "no walk test is under way" in err
        rc, _, err = await anxin("commission", "walk-test", "start", "--config", cfg,
                                 "--watch", "0")
        assert rc == 1 and "technician" in err
        rc, _, err = await anxin("commission", "walk-test", "start", "--config", cfg,
                                 "--technician", TECH, "--watch", "0")
        assert rc == 0, err
        await publish(port, (f"{gid}/bedside_sos", TS0215A_PRESS),
                      (f"{gid}/bedside_sos", TS0215A_RESET))
        await asyncio.sleep(1.5)
        rc, out, _ = await anxin("commission", "walk-test", "stop", "--config", cfg)
        assert rc == 1
        assert "1 missing: smoke-kitchen" in out
        rc, out, _ = await anxin("commission", "report", "--config", cfg, "--technician", TECH,
                                 "--format", "json")
        assert rc == 1
        report = json.loads(out)
        assert not report["passed"]
        assert report["walk_test"]["missing"] == ["smoke-kitchen"]
        assert report["test_alarm"] is None


async def test_adding_a_device_that_would_break_the_config_writes_nothing(tmp_path, mosquitto):
    _, port = mosquitto
    path = write_config(tmp_path, port, free_port(), "gw-comm-bad")
    before = path.read_bytes()
    rc, _, err = await anxin("devices", "add", "door-x", "--config", str(path), "--topic",
                             "gw-comm-bad/door", "--model", "NOPE-1")
    assert rc == 2
    assert "not written" in err and "unknown model 'NOPE-1'" in err
    rc, _, err = await anxin("devices", "add", "door-x", "--config", str(path), "--topic",
                             "gw-comm-bad/door", "--model", "MCCGQ11LM", "--resident", "张三")
    assert rc == 2 and "张三" in err
    rc, _, err = await anxin("devices", "add", "door-x", "--config", str(path), "--from-z2m",
                             "no_such_device", "--wait", "1")
    assert rc == 1
    assert path.read_bytes() == before
    assert not (tmp_path / "config-backups").exists()
