"""Home Assistant MQTT discovery: the entities a family's Home Assistant would create, their
templates rendered with Jinja2 as Home Assistant renders them, against the live gateway."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import jinja2
import pytest

from gateway.store import Store
from tests._mosquitto import free_port
from tests.test_e2e_gateway import gateway, hotline, publish, write_config

pytestmark = pytest.mark.mosquitto

TIRED = b'{"battery":9,"linkquality":90,"smoke":false,"battery_low":true,"enrolled":true}'
SMOKE = b'{"battery":9,"linkquality":90,"smoke":true,"battery_low":true,"enrolled":true}'
ENV = jinja2.Environment(autoescape=False)  # renders JSON, not HTML


def render(template: str, state: dict) -> str:
    """As Home Assistant does: `value_json` is the state topic's payload, parsed."""
    return ENV.from_string(template).render(value_json=state, value=json.dumps(state)).strip()


class Retained:
    """Everything the gateway keeps on the broker for Home Assistant, as a subscriber sees it."""

    def __init__(self, port: int, gid: str) -> None:
        self.port, self.gid = port, gid
        self.got: dict[str, bytes] = {}

    async def run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port) as c:
            await c.subscribe("homeassistant/#", qos=1)
            await c.subscribe(f"anxin/{self.gid}/#", qos=1)
            async for m in c.messages:
                self.got[m.topic.value] = bytes(m.payload)  # type: ignore[arg-type]

    async def until(self, check, timeout: float = 10.0) -> None:
        for _ in range(int(timeout / 0.05)):
            if check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out; have {sorted(self.got)}")

    def state(self) -> dict:
        return json.loads(self.got[f"anxin/{self.gid}/state"])

    def configs(self) -> dict[str, dict]:
        return {t: json.loads(p) for t, p in self.got.items()
                if t.startswith("homeassistant/") and p}


async def test_home_assistant_sees_the_home_its_alarms_and_device_health(tmp_path, mosquitto):
    _, port = mosquitto
    hport, gid = free_port(), "gw-ha"
    cfg = write_config(tmp_path, port, hport, gateway_id=gid)
    cfg.write_text(cfg.read_text(encoding="utf-8") + "\n[home_assistant]\nenabled = true\n",
                   encoding="utf-8")
    seen = Retained(port, gid)
    watcher = asyncio.create_task(seen.run())
    try:
        async with hotline(hport, tmp_path / "hotline.db"), gateway(cfg) as gw:
            assert gw.ingest is not None and gw.ingest.will is not None  # offline if it dies
            assert gw.ingest.will.topic == f"anxin/{gid}/availability"
            await seen.until(lambda: f"anxin/{gid}/state" in seen.got)
            assert seen.got[f"anxin/{gid}/availability"] == b"online"
            configs = seen.configs()
            uids = {c["unique_id"] for c in configs.values()}
            assert len(uids) == len(configs)  # unique ids, one per entity
            node = "anxin_gw_ha"
            alarm = configs[f"homeassistant/binary_sensor/{node}/alarm/config"]
            assert alarm["device_class"] == "safety"
            assert alarm["state_topic"] == f"anxin/{gid}/state"
            assert alarm["availability_topic"] == f"anxin/{gid}/availability"
            # five home entities; per device problem and last seen, battery for battery devices
            per_device = {t.split("/")[3] for t in configs if t.split("/")[3].startswith(
                ("smoke_kitchen", "radar_bathroom"))}
            assert per_device == {"smoke_kitchen_problem", "smoke_kitchen_battery",
                                  "smoke_kitchen_last_seen", "radar_bathroom_problem",
                                  "radar_bathroom_last_seen"}  # the radar is mains-powered
            everything = b"".join(seen.got.values()).decode()
            assert "李桂兰" not in everything and "dementia" not in everything  # private

            state = seen.state()
            assert render(alarm["value_template"], state) == "OFF"

            # a low battery: the device's problem sensor and battery in Home Assistant
            await publish(port, (f"{gid}/kitchen_smoke", TIRED))
            await seen.until(lambda: seen.state()["devices"]["smoke-kitchen"]["problems"])
            state = seen.state()
            problem = configs[f"homeassistant/binary_sensor/{node}/smoke_kitchen_problem/config"]
            battery = configs[f"homeassistant/sensor/{node}/smoke_kitchen_battery/config"]
            assert render(problem["value_template"], state) == "ON"
            assert json.loads(render(problem["json_attributes_template"], state)) == {
                "problems": ["low_battery"]}
            assert render(battery["value_template"], state) == "9.0"
            assert battery["device"]["via_device"] == node
            assert battery["device"]["suggested_area"] == "kitchen"
            maint = configs[f"homeassistant/sensor/{node}/maintenance/config"]
            assert render(maint["value_template"], state) == "1"

            # a smoke alarm: the alarm entity goes on, the open alert is listed
            await publish(port, (f"{gid}/kitchen_smoke", SMOKE))
            await seen.until(lambda: seen.state()["alarm"])
            state = seen.state()
            assert render(alarm["value_template"], state) == "ON"
            opened = configs[f"homeassistant/sensor/{node}/open_alerts/config"]
            assert render(opened["value_template"], state) == "1"
            (listed,) = json.loads(render(opened["json_attributes_template"], state))["alerts"]
            assert (listed["event"], listed["room"], listed["severity"]) == ("smoke", "kitchen", 1)
            assert listed["title"]
            last_seen = configs[f"homeassistant/sensor/{node}/smoke_kitchen_last_seen/config"]
            assert render(last_seen["value_template"], state).endswith("+08:00")
            link = configs[f"homeassistant/binary_sensor/{node}/centre_link/config"]
            assert render(link["value_template"], state) == "ON"
            assert await gw.store.call(Store.troubles)
        # a clean stop says offline
        await seen.until(lambda: seen.got.get(f"anxin/{gid}/availability") == b"offline")
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher


async def test_nothing_is_published_for_home_assistant_unless_asked(tmp_path, mosquitto):
    _, port = mosquitto
    hport, gid = free_port(), "gw-ha-off"
    cfg = write_config(tmp_path, port, hport, gateway_id=gid)
    seen = Retained(port, gid)
    watcher = asyncio.create_task(seen.run())
    try:
        async with hotline(hport, tmp_path / "hotline.db"), gateway(cfg) as gw:
            await publish(port, (f"{gid}/kitchen_smoke", TIRED))
            await asyncio.sleep(2.5)
            assert gw.ha_topics is None and gw.ingest is not None and gw.ingest.will is None
        assert not [t for t in seen.got if "gw_ha_off" in t or t.startswith(f"anxin/{gid}")]
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
