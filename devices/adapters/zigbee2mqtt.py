"""Zigbee2MQTT adapter: `zigbee2mqtt/<friendly_name>[/availability|/action]` -> Observations.

What real Zigbee2MQTT traffic looks like (../shared/data/README.md), and how it is read:
- The state topic carries the device's whole current state as a JSON object, repeated on
  every report. Each exposed property becomes an Observation; detectors look for
  transitions, so a repeated `smoke: false` is harmless.
- `null` means unknown (right after a restart): no Observation, never "all clear".
- `contact: true` is closed; `action` is published then reset to "" (not a press).
- `<topic>/availability`: `{"state": "online"|"offline"}`, or the plain string in older
  versions. `<topic>/action`: the legacy plain-string action topic.
- `<topic>/set` and `<topic>/get` are commands *to* the device (ours or Home Assistant's):
  not readings, ignored.
- `last_seen` (ms since the epoch, or ISO 8601 with an offset) becomes `device_at`.
- Properties a model does not expose are skipped: converters gain properties over time
  and an unknown extra must not stop a smoke alarm.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from devices.adapters._common import (
    availability,
    decode_properties,
    json_object,
    observation,
    text,
)
from devices.catalogue import SKIP, Model
from devices.observation import Observation, PayloadError
from devices.registry import Device

# Published by Zigbee2MQTT for every device; not readings.
COMMON_IGNORED = frozenset({"last_seen", "elapsed", "update", "update_available", "device"})

COMMAND_SUBTOPICS = frozenset({"set", "get"})


def last_seen(v: Any) -> float:
    """`last_seen` as unix seconds: ms epoch (`epoch` format) or ISO 8601 (`ISO_8601*`)."""
    if isinstance(v, bool):
        raise PayloadError(f"last_seen: expected a time, got {v!r}")
    if isinstance(v, int | float):
        return v / 1000.0
    if isinstance(v, str):
        try:
            t = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise PayloadError(f"last_seen: {v!r} is not an ISO 8601 time") from None
        if t.tzinfo is None:
            raise PayloadError(f"last_seen: {v!r} has no UTC offset")
        return t.timestamp()
    raise PayloadError(f"last_seen: expected a time, got {v!r}")


def adapt(device: Device, model: Model, topic: str, payload: bytes,
          received_at: float) -> list[Observation]:
    """Observations in one Zigbee2MQTT message for `device`; PayloadError if unreadable."""
    if topic == device.topic:
        return _state(device, model, payload, received_at)
    if not topic.startswith(device.topic + "/"):
        raise PayloadError(f"topic {topic!r} does not belong to device {device.id}")
    sub = topic[len(device.topic) + 1:]
    if sub == "availability":
        return availability(device, payload, received_at)
    if sub.split("/", 1)[0] in COMMAND_SUBTOPICS:
        return []
    if sub == "action":
        return _legacy_action(device, model, payload, received_at)
    raise PayloadError(f"unexpected subtopic {sub!r} (expected availability, action, "
                       "set or get)")


def _state(device: Device, model: Model, payload: bytes,
           received_at: float) -> list[Observation]:
    if not payload:
        return []  # the retained state was cleared (device removed from Zigbee2MQTT)
    msg = json_object(payload)
    device_at = None
    problems: list[str] = []
    if msg.get("last_seen") is not None:
        try:
            device_at = last_seen(msg["last_seen"])
        except PayloadError as e:
            problems.append(str(e))
    body = {k: v for k, v in msg.items() if k not in COMMON_IGNORED}
    try:
        obs = decode_properties(device, model, body, received_at, device_at, unknown="skip")
    except PayloadError as e:
        raise PayloadError("; ".join([*problems, str(e)]), partial=e.partial) from None
    if problems:
        raise PayloadError("; ".join(problems), partial=tuple(obs))
    return obs


def _legacy_action(device: Device, model: Model, payload: bytes,
                   received_at: float) -> list[Observation]:
    expose = model.expose("action")
    if expose is None:
        raise PayloadError(f"model {model.model} has no action, but {device.id}/action "
                           "was published")
    decoded = expose.decode(text(payload))
    if decoded is SKIP:
        return []
    kind, value = decoded
    return [observation(device, kind, value, received_at)]
