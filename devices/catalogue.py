"""The device catalogue: one entry per real model, built from small capability pieces.

An entry says which payload properties a model publishes and what each means as an
Observation. A piece knows both directions: `decode` (payload value -> canonical value, for the
adapters) and `encode` (canonical value -> payload value, for the simulator's emulators), so a
model is described once. Adding a model is adding an entry; no adapter code changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devices.observation import PayloadError, check_value

SKIP: Any = object()
"""Returned by a decoder when the value carries no reading (e.g. null, or an action reset to '')."""


@dataclass(frozen=True, slots=True)
class Expose:
    """One payload property of a model and the Observation kind it becomes."""

    property: str
    kinds: tuple[str, ...]
    # payload value -> (kind, canonical value), or SKIP when the value carries no reading
    decode: Callable[[Any], Any]
    # (kind, canonical value) -> payload value
    encode: Callable[[str, Any], Any]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Model:
    """A catalogue entry: one real model (or a family that shares a definition)."""

    models: tuple[str, ...]
    vendor: str
    description: str
    classes: tuple[str, ...]
    exposes: tuple[Expose, ...]
    source: str = "zigbee2mqtt"
    # Properties the model publishes that carry nothing for safety (settings, firmware
    # update state, ...). They are read past silently; any other unknown property is too,
    # but is listed for the technician as not understood.
    ignored: frozenset[str] = field(default_factory=frozenset)

    @property
    def model(self) -> str:
        """The primary model id."""
        return self.models[0]

    def expose(self, prop: str) -> Expose | None:
        """The expose reading `prop`, if this model has one."""
        for e in self.exposes:
            if e.property == prop:
                return e
        return None

    def expose_for_kind(self, kind: str) -> Expose | None:
        """The expose that produces `kind`, if this model has one."""
        for e in self.exposes:
            if kind in e.kinds:
                return e
        return None


# --- capability pieces -----------------------------------------------------------------


def _null_is_unknown(decode: Callable[[Any], Any]) -> Callable[[Any], Any]:
    # Zigbee2MQTT publishes null for a property whose state is unknown (right after a
    # restart). Unknown is not "all clear": no Observation at all.
    def wrapped(v: Any) -> Any:
        return SKIP if v is None else decode(v)

    return wrapped


def binary(prop: str, kind: str, description: str = "") -> Expose:
    """A true/false property that maps straight to a boolean kind."""
    return Expose(prop, (kind,), _null_is_unknown(lambda v: (kind, check_value(kind, v))),
                  lambda _k, v: v, description)


def numeric(prop: str, kind: str, description: str = "") -> Expose:
    """A number that maps straight to a numeric kind."""
    return Expose(prop, (kind,), _null_is_unknown(lambda v: (kind, check_value(kind, v))),
                  lambda _k, v: v, description)


def enum(prop: str, kind: str, mapping: Mapping[Any, Any], description: str = "",
         *, skip: tuple[Any, ...] = ()) -> Expose:
    """A property whose payload values map to canonical values; `skip` values carry none.

    Values neither mapped nor skipped are a PayloadError: a new firmware value must be
    looked at, not guessed.
    """
    reverse: dict[Any, Any] = {}
    for raw, canonical in mapping.items():
        reverse.setdefault(canonical, raw)

    def decode(v: Any) -> Any:
        if v in skip:
            return SKIP
        if isinstance(v, bool) or not isinstance(v, str | int | float) or v not in mapping:
            raise PayloadError(f"{prop}: unexpected value {v!r}")
        return kind, check_value(kind, mapping[v])

    def encode(_kind: str, v: Any) -> Any:
        return reverse[v]

    return Expose(prop, (kind,), _null_is_unknown(decode), encode, description)


# Common pieces, named as Zigbee2MQTT's exposes are.

def smoke() -> Expose:
    """Smoke alarm (`smoke`)."""
    return binary("smoke", "smoke", "smoke detected")


def gas() -> Expose:
    """Combustible gas alarm (`gas`)."""
    return binary("gas", "gas", "gas detected")


def water_leak() -> Expose:
    """Water leak (`water_leak`)."""
    return binary("water_leak", "water_leak", "water detected")


def contact() -> Expose:
    """Door/window contact (`contact`): true means closed, false means open."""
    return enum("contact", "contact", {True: "closed", False: "open"},
                "true = closed, false = open")


def occupancy(kind: str = "motion") -> Expose:
    """PIR/radar occupancy (`occupancy`): motion for a PIR, presence for a radar."""
    return binary("occupancy", kind, "occupancy")


def presence() -> Expose:
    """mmWave presence (`presence`)."""
    return binary("presence", "presence", "presence")


def battery() -> Expose:
    """Battery level in % (`battery`)."""
    return numeric("battery", "battery", "battery %")


def battery_low() -> Expose:
    """The device's own low-battery flag (`battery_low`)."""
    return binary("battery_low", "battery_low", "battery low")


def linkquality() -> Expose:
    """Zigbee link quality (`linkquality`)."""
    return numeric("linkquality", "link_quality", "link quality 0..255")


def tamper() -> Expose:
    """Tamper switch (`tamper`)."""
    return binary("tamper", "tamper", "tamper")


def test() -> Expose:
    """Self-test in progress (`test`): an alarm during a test is a test alarm."""
    return binary("test", "test", "self-test active")


def trouble() -> Expose:
    """Device fault (`trouble`)."""
    return binary("trouble", "trouble", "device trouble")


def temperature() -> Expose:
    """Temperature in °C (`temperature`)."""
    return numeric("temperature", "temperature", "°C")


def action(mapping: Mapping[str, str]) -> Expose:
    """A button's `action`: maps action names to the event kind they raise.

    `mapping` is action value -> event kind (e.g. {"emergency": "sos"}). Zigbee2MQTT publishes
    the action and then resets it to "": the empty string is not a press. Actions not in the
    mapping (e.g. a region_enter of a radar) carry nothing for safety and are skipped.
    """
    def decode(v: Any) -> Any:
        if not isinstance(v, str):
            raise PayloadError(f"action: expected a string, got {v!r}")
        kind = mapping.get(v)
        if kind is None:
            return SKIP
        return (kind, True)

    reverse: dict[str, str] = {}
    for raw, kind in mapping.items():
        reverse.setdefault(kind, raw)

    def encode(kind: str, _v: Any) -> str:
        return reverse[kind]

    return Expose("action", tuple(dict.fromkeys(mapping.values())), _null_is_unknown(decode),
                  encode,
                  "button action: " + ", ".join(f"{k} -> {v}" for k, v in mapping.items()))
