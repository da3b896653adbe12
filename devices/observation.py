"""The canonical Observation: one fact from one sensor, in canonical units."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class PayloadError(ValueError):
    """A payload that cannot be read; the message names what was wrong with it.

    `partial` holds the Observations that could still be read from the same message (a
    valid smoke alarm beside a garbled battery field): the caller quarantines the message
    and still acts on them.
    """

    def __init__(self, message: str, partial: tuple[Observation, ...] = ()) -> None:
        super().__init__(message)
        self.partial = partial


Value = bool | int | float | str | dict[str, Any]


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise PayloadError(f"expected true/false, got {v!r}")


def _number(lo: float | None = None, hi: float | None = None) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        # bool is an int subclass in Python; a true/false where a number belongs is an error.
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise PayloadError(f"expected a number, got {v!r}")
        if not math.isfinite(v):
            raise PayloadError(f"expected a finite number, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise PayloadError(f"{v!r} is outside {lo}..{hi}")
        return v

    return check


def _one_of(*allowed: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in allowed:
            raise PayloadError(f"expected one of {', '.join(allowed)}, got {v!r}")
        return v

    return check


def _event(v: Any) -> bool:
    # Event kinds (a press, a check-in) carry True: the event happened at `at`.
    if v is not True:
        raise PayloadError(f"an event carries true, got {v!r}")
    return v


INTERCOM_SIGNALS = ("call", "answered", "missed", "declined", "ended")
REQUEST_ID_MAX = 64
SNAPSHOT_REF_MAX = 1024


def _request_id(v: Any) -> str:
    if not isinstance(v, str) or not 0 < len(v) <= REQUEST_ID_MAX or not v.isprintable():
        raise PayloadError(f"expected a request id (1-{REQUEST_ID_MAX} printable characters), "
                           f"got {v!r}")
    return v


def _snapshot(v: Any) -> dict[str, Any]:
    # A reference, never the image: the picture stays on the media server the centre runs,
    # and the gateway passes only where it is, and only where the resident consented.
    if not isinstance(v, dict):
        raise PayloadError(f"expected an object {{ref, taken_at}}, got {v!r}")
    unknown = set(v) - {"ref", "taken_at", "request_id"}
    if unknown:
        raise PayloadError(f"unknown key(s) {', '.join(sorted(unknown))} (expected ref, "
                           "taken_at, request_id)")
    ref = v.get("ref")
    if not isinstance(ref, str) or not 0 < len(ref) <= SNAPSHOT_REF_MAX or not ref.isprintable():
        raise PayloadError(f"ref: expected a reference of 1-{SNAPSHOT_REF_MAX} printable "
                           f"characters, got {ref!r}")
    taken_at = _number(0, None)(v.get("taken_at")) if "taken_at" in v else None
    if taken_at is None:
        raise PayloadError("taken_at: expected unix seconds")
    out: dict[str, Any] = {"ref": ref, "taken_at": float(taken_at)}
    if v.get("request_id") is not None:
        out["request_id"] = _request_id(v["request_id"])
    return out


def _mapping(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise PayloadError(f"expected an object, got {v!r}")
    return v


@dataclass(frozen=True, slots=True)
class Kind:
    """One observation kind: its name, what its value means, and how to check a value."""

    name: str
    description: str
    check: Callable[[Any], Value]


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("motion", "PIR saw movement (true) or has seen none for a while (false)", _bool),
        Kind("contact", "door/window contact: 'open' or 'closed'", _one_of("open", "closed")),
        Kind("smoke", "smoke alarm active", _bool),
        Kind("gas", "combustible gas alarm active", _bool),
        Kind("water_leak", "water detected", _bool),
        Kind("sos", "an emergency button was pressed (event)", _event),
        Kind("cancel", "the resident pressed cancel on a button (event)", _event),
        Kind("fall", "fall state: 'fall', 'suspected' (pre-alarm) or 'none'",
             _one_of("fall", "suspected", "none")),
        Kind("presence", "someone is present (mmWave radar)", _bool),
        Kind("vibration", "a vibration sensor felt movement (a bed, a door, a chair)", _bool),
        Kind("in_bed", "someone is in bed", _bool),
        Kind("heart_rate", "heart rate in beats per minute", _number(0, 300)),
        Kind("respiration_rate", "breaths per minute", _number(0, 120)),
        Kind("accel", "a block of accelerometer samples in g with its rate", _mapping),
        Kind("bcg", "a block of raw bed-sensor signal (ballistocardiogram/pressure) with its "
             "rate", _mapping),
        Kind("battery", "battery level in %", _number(0, 100)),
        Kind("battery_low", "the device reports its battery low", _bool),
        Kind("link_quality", "Zigbee link quality 0..255", _number(0, 255)),
        Kind("tamper", "the device's case is open or it was removed", _bool),
        Kind("test", "the device is in self-test (its test button is pressed)", _bool),
        Kind("trouble", "the device reports a fault", _bool),
        Kind("availability", "'online' or 'offline', as Zigbee2MQTT reports it",
             _one_of("online", "offline")),
        Kind("checkin", "the resident checked in (平安打卡, event)", _event),
        Kind("away_mode", "the resident set the home 'away' (going out, 外出) or 'home' "
             "(back, 回家) on an away key or the intercom", _one_of("away", "home")),
        Kind("intercom", "intercom signalling: 'call' (the resident's call key), and of a "
             "call the centre or family started: 'answered', 'missed', 'declined', 'ended'",
             _one_of(*INTERCOM_SIGNALS)),
        Kind("intercom_request", "the look-in request an intercom event answers (its "
             "request_id, as the gateway rang it)", _request_id),
        Kind("snapshot", "a still the intercom took when asked: {'ref': opaque reference on "
             "the centre's media server, 'taken_at': unix s, 'request_id'}", _snapshot),
        Kind("temperature", "temperature in °C", _number(-60, 150)),
    )
}


@dataclass(frozen=True, slots=True)
class Observation:
    """One fact from one sensor.

    `at` is when the gateway received it (unix seconds); `device_at` is the device's own
    clock where the payload carries one. A missing value is never represented: an adapter
    that finds no value for a kind emits no Observation of that kind.
    """

    home: str
    device: str
    kind: str
    value: Value
    at: float
    room: str | None = None
    device_at: float | None = None


def check_value(kind: str, value: Any) -> Value:
    """Return `value` checked against `kind`, or raise PayloadError naming the problem."""
    spec = KINDS.get(kind)
    if spec is None:
        raise PayloadError(f"unknown observation kind {kind!r}")
    try:
        return spec.check(value)
    except PayloadError as e:
        raise PayloadError(f"{kind}: {e}") from None
