"""Device emulators: each configured device speaks its model's real native payloads.

A Zigbee2MQTT device publishes its whole current state on every report (as Zigbee2MQTT
does), an `action` followed by a reset to "", and its availability as a retained
`{"state": ...}` on `<topic>/availability`. An anxin-native device publishes the changed
properties with its clock in `ts`. Payloads are made with the catalogue's `encode`, the
inverse of what the adapters `decode`, so the emulators and the adapters cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from devices.catalogue import Model
from devices.observation import KINDS, check_value
from devices.registry import Device

# What a healthy, quiet device reports before anything happens.
RESTING: dict[str, Any] = {
    "motion": False, "contact": "closed", "smoke": False, "gas": False, "water_leak": False,
    "presence": False, "fall": "none", "in_bed": False, "battery": 100, "battery_low": False,
    "link_quality": 120, "tamper": False, "test": False, "trouble": False, "temperature": 22,
}

# Kinds that happen rather than hold: a button press, a check-in.
EVENT_KINDS = frozenset(k for k, spec in KINDS.items()
                        if spec.description.endswith("(event)"))


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publication."""

    topic: str
    payload: bytes
    retain: bool = False


class UnsupportedKindError(ValueError):
    """The device's model does not report this kind."""


class Emulator:
    """One device's current state and the payloads its model publishes."""

    def __init__(self, device: Device, model: Model) -> None:
        self.device = device
        self.model = model
        self.state: dict[str, Any] = {}
        for e in model.exposes:
            kind = e.kinds[0]
            if kind in RESTING and kind not in EVENT_KINDS:
                self.state[e.property] = e.encode(kind, RESTING[kind])

    @property
    def native(self) -> bool:
        """Whether the device speaks anxin-native JSON rather than Zigbee2MQTT."""
        return self.model.source == "anxin"

    def reports(self, kind: str) -> bool:
        """Whether this device can report `kind`."""
        return kind == "availability" or self.model.expose_for_kind(kind) is not None

    def hello(self, now: float) -> list[Message]:
        """What the device publishes when it (re)joins: online, then its whole state."""
        out = [self._availability("online")]
        if self.native:
            out.append(self._native(dict(self.state), now))
        else:
            out.append(self._z2m(self.state))
        return out

    def set(self, kind: str, value: Any, now: float) -> list[Message]:
        """The messages that report `kind` = `value` now."""
        value = check_value(kind, value)
        if kind == "availability":
            return [self._availability(value)]
        expose = self.model.expose_for_kind(kind)
        if expose is None:
            raise UnsupportedKindError(f"device {self.device.id} ({self.model.model}) does not "
                                  f"report {kind!r}")
        raw = expose.encode(kind, value)
        if self.native:
            return [self._native({expose.property: raw}, now)]
        if expose.property == "action":
            # Zigbee2MQTT publishes the action with the full state, then resets it to "".
            return [self._z2m({**self.state, "action": raw}),
                    self._z2m({**self.state, "action": ""})]
        self.state[expose.property] = raw
        return [self._z2m(self.state)]

    def _availability(self, state: str) -> Message:
        return Message(f"{self.device.topic}/availability",
                       json.dumps({"state": state}).encode(), retain=True)

    def _z2m(self, state: dict[str, Any]) -> Message:
        return Message(self.device.topic, json.dumps(state, ensure_ascii=False).encode())

    def _native(self, props: dict[str, Any], now: float) -> Message:
        return Message(self.device.topic,
                       json.dumps({**props, "ts": round(now, 3)}, ensure_ascii=False).encode())
