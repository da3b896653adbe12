"""Pieces the adapters share: size limit, text and JSON decoding, availability, ordering."""

from __future__ import annotations

from typing import Any

from devices.catalogue import SKIP, Model
from devices.observation import Observation, PayloadError, check_value
from devices.payload import MAX_PAYLOAD_BYTES, json_object, text
from devices.registry import Device

__all__ = ["MAX_PAYLOAD_BYTES", "QUALIFIERS", "availability", "decode_properties",
           "json_object", "text"]

# Kinds that qualify the state kinds of the same message. They are emitted first so that a
# detector reading `smoke: true, test: true` already knows the test is on when it sees smoke.
QUALIFIERS = ("availability", "test", "tamper", "trouble", "battery", "battery_low",
              "link_quality", "temperature", "intercom_request")


def availability(device: Device, payload: bytes, received_at: float) -> list[Observation]:
    """`<topic>/availability`: `{"state": "online"}` (current) or plain `online` (legacy)."""
    s = text(payload).strip()
    if not s:
        return []  # a cleared retained message
    if s.startswith("{"):
        state = json_object(payload).get("state")
        if state is None:
            raise PayloadError('availability: expected {"state": "online"|"offline"}')
    else:
        state = s
    return [observation(device, "availability", check_value("availability", state),
                        received_at)]


def observation(device: Device, kind: str, value: Any, at: float,
                device_at: float | None = None) -> Observation:
    """An Observation from this device."""
    return Observation(device.home, device.id, kind, value, at, device.room, device_at)


def decode_properties(device: Device, model: Model, msg: dict[str, Any], received_at: float,
                      device_at: float | None, *, unknown: str,
                      known_extra: frozenset[str] = frozenset()) -> list[Observation]:
    """Every property of `msg` the model exposes, as Observations, qualifiers first.

    `unknown` says what to do with a property the model neither exposes nor ignores:
    "skip" (Zigbee2MQTT: converters add properties over time) or "error" (a format anxin
    owns, where an unknown key is a typo). Bad values are collected, not fatal: the error
    raised at the end carries the Observations that could be read.
    """
    obs: list[Observation] = []
    problems: list[str] = []
    for prop, raw in msg.items():
        expose = model.expose(prop)
        if expose is None:
            if unknown == "error" and prop not in model.ignored and prop not in known_extra:
                problems.append(f"unknown property {prop!r} for model {model.model}")
            continue
        try:
            decoded = expose.decode(raw)
        except PayloadError as e:
            problems.append(f"{prop}: {e}" if not str(e).startswith(prop) else str(e))
            continue
        if decoded is SKIP:
            continue
        kind, value = decoded
        obs.append(observation(device, kind, value, received_at, device_at))
    obs.sort(key=lambda o: 0 if o.kind in QUALIFIERS else 1)  # stable: payload order kept
    if problems:
        raise PayloadError("; ".join(problems), partial=tuple(obs))
    return obs
