"""Home Assistant MQTT discovery: a family already running Home Assistant sees anxin appear.

With `[home_assistant] enabled = true` the gateway publishes, retained, on the home's broker:

- one discovery config per entity (Home Assistant's MQTT discovery), on
  `<discovery_prefix>/<component>/anxin_<gateway>/<object>/config`: for the home, *alarm*
  (any open alarm of severity 1–2), *open alerts* (with the list as attributes), *link to
  the centre*, *test mode* and *maintenance items*; for each device, *problem* (offline,
  low battery or another open maintenance item), *battery* for battery devices, *last seen*;
- the state of all of them as one JSON document on `<state_prefix>/<gateway>/state`, whenever it
  changes (the Zigbee2MQTT pattern: one topic, a `value_template` per entity);
- `online` / `offline` on `<state_prefix>/<gateway>/availability` (`offline` is also the MQTT
  last will, so a crashed gateway shows as unavailable, not as "all well").

What leaves the gateway here is what a family member at home may see: events, rooms and
device health. Residents' names, health conditions and evidence are never published.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from alerts.alert import Alert
from alerts.maintenance import Item
from alerts.wire import title
from devices.catalogue import Model
from devices.registry import Device

MANUFACTURER = "anxin 安心"


@dataclass(frozen=True, slots=True)
class Topics:
    """Where the gateway's Home Assistant state lives."""

    discovery_prefix: str
    state: str
    availability: str

    @classmethod
    def of(cls, discovery_prefix: str, state_prefix: str, gateway_id: str) -> Topics:
        return cls(discovery_prefix, f"{state_prefix}/{gateway_id}/state",
                   f"{state_prefix}/{gateway_id}/availability")


def _object(text: str) -> str:
    """A discovery object id: letters, digits, underscores."""
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower()


def discovery(topics: Topics, gateway_id: str, home_id: str,
              devices: list[tuple[Device, Model]]) -> list[tuple[str, bytes]]:
    """Every entity's discovery config: (topic, retained payload)."""
    node = f"anxin_{_object(gateway_id)}"
    hub = {"identifiers": [node], "name": f"安心 anxin {home_id}",
           "manufacturer": MANUFACTURER, "model": "anxin gateway"}
    common = {"state_topic": topics.state, "availability_topic": topics.availability}
    out: list[tuple[str, bytes]] = []

    def add(component: str, obj: str, config: dict[str, Any]) -> None:
        unique = f"{node}_{_object(obj)}"
        payload = {**common, "unique_id": unique, "object_id": unique, **config}
        out.append((f"{topics.discovery_prefix}/{component}/{node}/{_object(obj)}/config",
                    json.dumps(payload, ensure_ascii=False).encode()))

    add("binary_sensor", "alarm", {
        "name": "报警 Alarm", "device_class": "safety", "device": hub,
        "value_template": "{{ 'ON' if value_json.alarm else 'OFF' }}"})
    add("sensor", "open_alerts", {
        "name": "未处理报警 Open alerts", "device": hub, "icon": "mdi:alarm-light",
        "value_template": "{{ value_json.open_alerts | length }}",
        "json_attributes_topic": topics.state,
        "json_attributes_template": "{{ {'alerts': value_json.open_alerts} | tojson }}"})
    add("binary_sensor", "centre_link", {
        "name": "服务中心链路 Link to the centre", "device_class": "connectivity",
        "device": hub, "value_template": "{{ 'ON' if value_json.centre_link else 'OFF' }}"})
    add("binary_sensor", "test_mode", {
        "name": "测试模式 Test mode", "device": hub, "entity_category": "diagnostic",
        "value_template": "{{ 'ON' if value_json.test_mode else 'OFF' }}"})
    add("sensor", "maintenance", {
        "name": "待维护 Maintenance items", "device": hub, "entity_category": "diagnostic",
        "icon": "mdi:wrench", "value_template": "{{ value_json.maintenance | length }}",
        "json_attributes_topic": topics.state,
        "json_attributes_template": "{{ {'items': value_json.maintenance} | tojson }}"})
    for dev, model in devices:
        ha_dev = {"identifiers": [f"{node}_{_object(dev.id)}"],
                  "name": f"{dev.name or dev.id} ({dev.room or '—'})",
                  "manufacturer": model.vendor, "model": model.family,
                  "via_device": node, "suggested_area": dev.room}
        key = f"value_json.devices[{json.dumps(dev.id)}]"
        add("binary_sensor", f"{dev.id}_problem", {
            "name": "故障 Problem", "device_class": "problem", "device": ha_dev,
            "value_template": f"{{{{ 'ON' if {key}.problems else 'OFF' }}}}",
            "json_attributes_topic": topics.state,
            "json_attributes_template": f"{{{{ {{'problems': {key}.problems}} | tojson }}}}"})
        if model.power == "battery":
            add("sensor", f"{dev.id}_battery", {
                "name": "电量 Battery", "device_class": "battery", "unit_of_measurement": "%",
                "state_class": "measurement", "device": ha_dev, "entity_category": "diagnostic",
                "value_template": f"{{{{ {key}.battery }}}}"})
        add("sensor", f"{dev.id}_last_seen", {
            "name": "最近上报 Last seen", "device_class": "timestamp", "device": ha_dev,
            "entity_category": "diagnostic", "value_template": f"{{{{ {key}.last_seen }}}}"})
    return out


def state(*, open_alerts: list[Alert], centre_link: bool, test_mode: bool,
          troubles: list[Item], devices: list[tuple[Device, Model]],
          last_seen: dict[str, float], battery: dict[str, float], tz: ZoneInfo) -> bytes:
    """The state document every entity reads from."""

    def iso(ts: float | None) -> str | None:
        return None if ts is None else datetime.fromtimestamp(ts, tz).isoformat(
            timespec="seconds")

    by_device: dict[str, list[str]] = {}
    for t in troubles:
        by_device.setdefault(t.device, []).append(t.event)
    real = [a for a in open_alerts if not a.finding.test]
    doc = {
        "alarm": any(a.finding.severity <= 2 for a in real),
        "open_alerts": [{"event": a.finding.event, "title": title(a.finding.event)["zh"],
                         "severity": a.finding.severity, "room": a.finding.room,
                         "state": a.state.value, "since": iso(a.raised_at or a.finding.at)}
                        for a in real],
        "centre_link": centre_link, "test_mode": test_mode,
        "maintenance": [{"device": t.device, "event": t.event, "since": iso(t.first_at)}
                        for t in troubles],
        "devices": {d.id: {"problems": sorted(by_device.get(d.id, [])),
                           "battery": battery.get(d.id), "last_seen": iso(last_seen.get(d.id))}
                    for d, _ in devices},
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()
