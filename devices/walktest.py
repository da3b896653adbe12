"""The walk test: the technician triggers every device once and each is ticked off.

Pure: given the commissioned devices and the Observations since the test began, which devices
have proved they work, when, by what, and how their battery and radio looked. What counts as
a trigger is what the technician does at install: open the door, walk past the PIR, press the
SOS button, press the smoke detector's test button, wet the leak probe, lie on the bed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from devices.catalogue import Model
from devices.observation import Observation
from devices.registry import Device

# device class -> (what the technician does, in Chinese and English; what proves it)
TRIGGERS: dict[str, tuple[str, str, Callable[[str, Any], bool]]] = {
    "contact": ("开一下门/窗", "open the door or window",
                lambda k, v: k == "contact" and v == "open"),
    "motion": ("在传感器前走过", "walk past the sensor", lambda k, v: k == "motion" and v is True),
    "presence": ("走进探测范围", "walk into its field", lambda k, v: k == "presence" and v is True),
    "fall": ("走进探测范围", "walk into its field",
             lambda k, v: (k == "presence" and v is True) or (k == "fall" and v != "none")),
    "sos": ("按一下呼叫按钮", "press the button", lambda k, v: k in ("sos", "cancel")),
    "smoke": ("按住测试按钮", "hold the test button",
              lambda k, v: k in ("smoke", "test") and v is True),
    "gas": ("按住测试按钮", "hold the test button",
            lambda k, v: k in ("gas", "test") and v is True),
    "water_leak": ("用湿布碰一下探头", "wet the probe",
                   lambda k, v: k == "water_leak" and v is True),
    "in_bed": ("在床上躺一下", "lie on the bed", lambda k, v: k == "in_bed" and v is True),
    "vibration": ("拍一下安装处", "tap where it is mounted",
                  lambda k, v: k == "vibration" and v is True),
    "intercom": ("按一下呼叫或打卡键", "press call or check-in",
                 lambda k, v: (k == "intercom" and v == "call") or k == "checkin"),
    "away_key": ("按一下外出键", "press the away key once", lambda k, v: k == "away_mode"),
}

# device class -> what a technician's action makes the device report, as (kind, value)
# candidates in order of preference: the simulator's walk test performs the first one a
# model reports. A smoke or gas detector's test button is preferred to real smoke, as on
# site. Every action satisfies its class's check in TRIGGERS (the tests hold them together).
ACTIONS: dict[str, tuple[tuple[str, Any], ...]] = {
    "contact": (("contact", "open"),),
    "motion": (("motion", True),),
    "presence": (("presence", True),),
    # Walking into a fall radar's field shows presence; nobody falls to test one.
    "fall": (("presence", True),),
    "sos": (("sos", True),),
    "smoke": (("test", True), ("smoke", True)),
    "gas": (("test", True), ("gas", True)),
    "water_leak": (("water_leak", True),),
    "in_bed": (("in_bed", True),),
    "vibration": (("vibration", True),),
    "intercom": (("intercom", "call"), ("checkin", True)),
    "away_key": (("away_mode", "away"),),
}

# Zigbee link quality (LQI, 0..255) below which the radio link is called weak: messages
# start to be lost around here; a router nearer the device (a mains plug) fixes it.
WEAK_LINK_LQI = 40


@dataclass(frozen=True, slots=True)
class DeviceResult:
    """One device in a walk test."""

    device: str
    name: str | None
    room: str | None
    model: str
    classes: tuple[str, ...]
    todo_zh: str  # what the technician should do to trigger it
    todo_en: str
    passed_at: float | None  # when it was triggered (None: still missing)
    trigger: str | None  # e.g. "contact=open"
    battery: float | None  # latest level, %
    battery_low: bool  # at or below the model's threshold, or the device says so
    link_quality: float | None  # latest LQI
    weak_link: bool
    # Mains Zigbee devices are supervised through Zigbee2MQTT's availability: None when it
    # does not apply, else the latest state seen ("online", "offline"), or "never" when none
    # has reached the gateway (availability is off in Zigbee2MQTT's configuration).
    availability: str | None = None

    @property
    def passed(self) -> bool:
        return self.passed_at is not None


def _value_text(v: Any) -> str:
    return "true" if v is True else "false" if v is False else str(v)


def results(devices: Iterable[tuple[Device, Model]], since: Iterable[Observation],
            latest: dict[tuple[str, str], Any]) -> list[DeviceResult]:
    """Each device's result: `since` are Observations after the test began, in time order;
    `latest` maps (device, kind) to the last value ever seen (battery, link quality)."""
    first: dict[str, tuple[float, str]] = {}
    checks = {d.id: [TRIGGERS[c][2] for c in m.classes if c in TRIGGERS] for d, m in devices}
    for o in since:
        if o.device in first or o.device not in checks:
            continue
        if any(check(o.kind, o.value) for check in checks[o.device]):
            first[o.device] = (o.at, f"{o.kind}={_value_text(o.value)}")
    out = []
    for d, m in devices:
        todo = next((TRIGGERS[c] for c in m.classes if c in TRIGGERS), ("触发一次", "trigger it",
                                                                        None))
        battery = latest.get((d.id, "battery"))
        lqi = latest.get((d.id, "link_quality"))
        low = latest.get((d.id, "battery_low")) is True or (
            battery is not None and m.battery_low_pct is not None
            and float(battery) <= m.battery_low_pct)
        at, trigger = first.get(d.id, (None, None))
        availability = (str(latest.get((d.id, "availability"), "never"))
                        if m.availability else None)
        out.append(DeviceResult(
            device=d.id, name=d.name, room=d.room, model=m.family, classes=m.classes,
            todo_zh=todo[0], todo_en=todo[1], passed_at=at, trigger=trigger,
            battery=None if battery is None else float(battery), battery_low=low,
            link_quality=None if lqi is None else float(lqi),
            weak_link=lqi is not None and float(lqi) < WEAK_LINK_LQI,
            availability=availability))
    return out
