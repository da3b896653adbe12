"""Instant alarms: a sensor that itself says "fire", "gas", "help", "fall" becomes a Finding.

Zigbee2MQTT republishes a device's whole state on every report (a battery report repeats
`smoke: false`; a smoke alarm repeats `smoke: true` every few seconds), so an alarm is a
*transition* into the alarm state, remembered per device.

A retained message seen at start-up (`prime`) is state, not an event: a button press in it is
stale and raises nothing, nor does a low battery already known. But an alarm *state* in it
(smoke, gas, water, tamper, a fall) may have begun while the gateway was down: it is raised,
marked `seen_at_startup` in the evidence (an alert already open for it absorbs it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors.finding import Finding
from devices.observation import Observation

NAME = "instant"

# Contact ID has no standard fall code; vendors use 100 (medical) or 120. anxin uses 100
# (medical alarm) and keeps the machine name "fall" in `event`.
FALL_CODE = 100

# kind -> (Contact ID code, severity, event name) for alarm kinds that fire on becoming true.
_LATCHING: dict[str, tuple[int, int, str]] = {
    "smoke": (111, 1, "smoke"),
    "gas": (151, 1, "gas"),
    "water_leak": (154, 2, "water_leak"),
    "tamper": (383, 4, "tamper"),
    "battery_low": (384, 4, "low_battery"),
}
SOS = (101, 1, "sos")
# The intercom's call key: the resident asks the centre to call back (呼叫请求). Contact ID
# 101 is the assistance request a receiver calls back on; severity 3 puts it in the care
# lane, apart from the SOS key beside it (101, severity 1).
CALL_REQUEST = (101, 3, "call_request")
FALL = (FALL_CODE, 1, "fall")
LOW_BATTERY = _LATCHING["battery_low"]
OFFLINE = (381, 4, "offline")

# A battery level must climb this far above the threshold before another low-battery finding
# can fire, so a level wobbling around the threshold does not page anyone twice.
BATTERY_HYSTERESIS_PCT = 5.0


@dataclass(slots=True)
class DeviceMemory:
    """What the instant rules remember about one device."""

    last: dict[str, Any] = field(default_factory=dict)  # kind -> last value seen
    battery_alarmed: bool = False
    suspected_at: float | None = None  # when the device last reported a suspected fall


@dataclass(slots=True)
class InstantState:
    """Per-device memory for the instant rules."""

    devices: dict[str, DeviceMemory] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InstantConfig:
    """Thresholds for the instant rules."""

    low_battery_pct: float = 15.0  # for devices without a threshold of their own
    device_low_battery_pct: Mapping[str, float] = field(default_factory=dict)  # device -> %


def _finding(spec: tuple[int, int, str], obs: Observation, now: float, *,
             test: bool = False, **evidence: Any) -> Finding:
    code, severity, event = spec
    evidence = {"kind": obs.kind, "value": obs.value, **evidence}
    if obs.device_at is not None:
        evidence["device_time"] = obs.device_at
    return Finding(detector=NAME, home=obs.home, code=code, event=event, severity=severity,
                   at=obs.at, evidence=evidence, room=obs.room, device=obs.device, test=test)


def step(state: InstantState, obs: Observation, now: float, cfg: InstantConfig,
         *, prime: bool = False) -> list[Finding]:
    """Take one Observation; return the Findings it causes (`prime`: from a retained message)."""
    mem = state.devices.setdefault(obs.device, DeviceMemory())
    previous = mem.last.get(obs.kind)
    mem.last[obs.kind] = obs.value
    kind, value = obs.kind, obs.value
    in_test = mem.last.get("test") is True

    startup = {"seen_at_startup": True} if prime else {}
    if kind in _LATCHING and kind != "battery_low":
        if value is True and previous is not True:
            return [_finding(_LATCHING[kind], obs, now, test=in_test and kind != "tamper",
                             **({"device_self_test": True} if in_test else {}), **startup)]
        return []
    if kind == "sos":
        return [] if prime else [_finding(SOS, obs, now)]
    if kind == "intercom":
        # Only the call key asks for someone; answered/missed/ended are the signalling of a
        # call the centre started (gateway/intercom.py reports those).
        return [_finding(CALL_REQUEST, obs, now)] if value == "call" and not prime else []
    if kind == "fall":
        if value == "suspected":
            # A radar's maybe_fall / fall_warning is a pre-alarm, not an alarm.
            mem.suspected_at = obs.at
            return []
        if value == "fall" and previous != "fall":
            extra: dict[str, Any] = dict(startup)
            if mem.suspected_at is not None:
                extra["suspected_s_before"] = round(obs.at - mem.suspected_at, 3)
            mem.suspected_at = None
            return [_finding(FALL, obs, now, **extra)]
        if value == "none":
            mem.suspected_at = None
        return []
    if kind in ("battery_low", "battery"):
        return _battery(mem, obs, now, cfg, prime)
    if kind == "availability":
        if value == "offline" and previous == "online" and not prime:
            return [_finding(OFFLINE, obs, now)]
        return []
    return []


def _battery(mem: DeviceMemory, obs: Observation, now: float, cfg: InstantConfig,
             prime: bool) -> list[Finding]:
    # Two sources say "battery low": the device's own flag and the level against our
    # threshold. Either one fires once; both must clear before it can fire again.
    threshold = cfg.device_low_battery_pct.get(obs.device, cfg.low_battery_pct)
    if obs.kind == "battery_low":
        low = obs.value is True
    else:
        level = float(obs.value)  # type: ignore[arg-type]
        if level <= threshold:
            low = True
        elif level >= threshold + BATTERY_HYSTERESIS_PCT:
            low = False
        else:
            return []
    if low and not mem.battery_alarmed:
        mem.battery_alarmed = True
        if prime:
            return []
        return [_finding(LOW_BATTERY, obs, now, threshold_pct=threshold)]
    if not low and mem.last.get("battery_low") is not True:
        mem.battery_alarmed = False
    return []
