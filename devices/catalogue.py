"""The device catalogue: one entry per real model, built from small capability pieces.

An entry says which payload properties a model publishes and what each means as an
Observation. A piece knows both directions: `decode` (payload value -> canonical value, for the
adapters) and `encode` (canonical value -> payload value, for the simulator's emulators), so a
model is described once. Adding a model is adding an entry; no adapter code changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from devices import bcg, imu
from devices.observation import INTERCOM_SIGNALS, PayloadError, check_value

FIXTURES_DIR = Path(__file__).parent / "fixtures"

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
    actions: tuple[str, ...] = ()  # a button's `action` values the model publishes


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
    # How often a healthy device reports, at the longest (seconds): silence beyond two such
    # intervals is loss of supervision (detectors/supervision.py). None for models that
    # report only on change (mains-powered radars): Zigbee2MQTT's availability covers them.
    supervision_s: float | None = None
    # "battery" or "mains". Zigbee2MQTT pings mains-powered (router) devices every 10
    # minutes, so its availability flag is timely for them (`availability`); for battery
    # devices it waits 25 h, and `supervision_s` is what catches a dead one.
    power: str = "battery"
    # Battery level (%) at or below which the battery is reported low (a technical finding).
    # Coin-cell devices whose percentage Zigbee2MQTT derives from voltage fall off a cliff at
    # the end, so they are flagged earlier. None when the model reports no level (mains, or
    # only its own battery_low flag).
    battery_low_pct: float | None = None

    @property
    def model(self) -> str:
        """The primary model id."""
        return self.models[0]

    @property
    def family(self) -> str:
        """All model ids of the entry, as Zigbee2MQTT's docs name a family ("HS3SA/HS1SA")."""
        return "/".join(self.models)

    @property
    def availability(self) -> bool:
        """Whether Zigbee2MQTT's availability flag is timely for this model (mains-powered)."""
        return self.source == "zigbee2mqtt" and self.power == "mains"

    @property
    def fixture(self) -> Path:
        """The captured payloads this entry is tested against (devices/fixtures/)."""
        return FIXTURES_DIR / (self.family.replace("/", "_") + ".json")

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


def _key(v: Any) -> tuple[str, Any]:
    # Python treats True == 1 and 1 == 1.0: a lookup keyed by value alone would read a
    # payload's 1 as true. Key by the JSON type as well.
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int | float):
        return ("number", v)
    return (type(v).__name__, v)


def enum(prop: str, kind: str, mapping: Mapping[Any, Any], description: str = "",
         *, skip: tuple[Any, ...] = ()) -> Expose:
    """A property whose payload values map to canonical values; `skip` values carry none.

    Values neither mapped nor skipped are a PayloadError: a new firmware value must be
    looked at, not guessed.
    """
    lookup = {_key(raw): canonical for raw, canonical in mapping.items()}
    skipped = {_key(raw) for raw in skip}
    reverse: dict[Any, Any] = {}
    for raw, canonical in mapping.items():
        reverse.setdefault(canonical, raw)

    def decode(v: Any) -> Any:
        if not isinstance(v, str | int | float):
            raise PayloadError(f"{prop}: unexpected value {v!r}")
        key = _key(v)
        if key in skipped:
            return SKIP
        if key not in lookup:
            raise PayloadError(f"{prop}: unexpected value {v!r} (expected one of "
                               f"{', '.join(repr(m) for m in mapping)})")
        return kind, check_value(kind, lookup[key])

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
                  "button action: " + ", ".join(f"{k} -> {v}" for k, v in mapping.items()),
                  actions=tuple(mapping))


# An away key (`use = "away_key"` in [[devices]]): a button by the entrance door that the
# resident presses once going out (外出) and twice coming home (回家), as the away key of a
# telecare panel. Its presses set the home's mode and never call for help.
AWAY_KEY_ACTIONS = {"single": "away", "double": "home"}


def as_away_key(model: Model) -> Model:
    """`model` installed as an away key; ValueError if it has no single and double press."""
    presses = next((e for e in model.exposes if e.property == "action"), None)
    if presses is None or not set(AWAY_KEY_ACTIONS) <= set(presses.actions):
        raise ValueError(f"{model.model} cannot be an away key: it needs a button with single "
                         f"and double presses (its actions: "
                         f"{', '.join(presses.actions) if presses else 'none'})")

    def decode(v: Any) -> Any:
        if not isinstance(v, str):
            raise PayloadError(f"action: expected a string, got {v!r}")
        mode = AWAY_KEY_ACTIONS.get(v)
        return SKIP if mode is None else ("away_mode", mode)

    key = Expose("action", ("away_mode",), _null_is_unknown(decode),
                 lambda _k, v: {m: a for a, m in AWAY_KEY_ACTIONS.items()}[v],
                 "away key: " + ", ".join(f"{a} -> {m}" for a, m in AWAY_KEY_ACTIONS.items()),
                 actions=tuple(AWAY_KEY_ACTIONS))
    return replace(model, description=f"{model.description}, installed as the away key",
                   classes=("away_key",),
                   exposes=tuple(key if e is presses else e for e in model.exposes))


def event(prop: str, kind: str, description: str = "") -> Expose:
    """A native event flag: true means it happened now; false is no event."""
    def decode(v: Any) -> Any:
        if not isinstance(v, bool):
            raise PayloadError(f"{prop}: expected true/false, got {v!r}")
        return (kind, True) if v else SKIP

    return Expose(prop, (kind,), _null_is_unknown(decode), lambda _k, _v: True, description)


def fall_state(prop: str, mapping: Mapping[Any, str], *, skip: tuple[Any, ...] = ()) -> Expose:
    """A radar's or pendant's fall state, mapped to 'fall' / 'suspected' / 'none'."""
    return enum(prop, "fall", mapping, "fall state: " + ", ".join(
        f"{k!r} -> {v}" for k, v in mapping.items()), skip=skip)


def imu_stream() -> Expose:
    """Raw accelerometer blocks (devices/imu.py), published on `<topic>/imu` (or as an `imu`
    object in the state): the gateway decides about falls itself (detectors/fall_imu.py)."""
    def decode(v: Any) -> Any:
        if not isinstance(v, dict):
            raise PayloadError(f"imu: expected a block object, got {v!r}")
        return "accel", imu.observation_value(imu.from_mapping(v))

    return Expose("imu", ("accel",), _null_is_unknown(decode),
                  lambda _k, v: imu.to_mapping(imu.block_from_value(v)),
                  "accelerometer blocks (25-200 Hz) on <topic>/imu")


def bcg_stream() -> Expose:
    """Raw bed-sensor signal blocks (devices/bcg.py), published on `<topic>/bcg` (or as a
    `bcg` object in the state): the gateway estimates heart and breathing rates itself
    (detectors/vitals.py)."""
    def decode(v: Any) -> Any:
        if not isinstance(v, dict):
            raise PayloadError(f"bcg: expected a block object, got {v!r}")
        return "bcg", bcg.observation_value(bcg.block_from_mapping(v))

    return Expose("bcg", ("bcg",), _null_is_unknown(decode),
                  lambda _k, v: json.loads(bcg.encode_json(bcg.block_from_value(v))),
                  "raw bed signal blocks (50-250 Hz) on <topic>/bcg")


def vibration() -> Expose:
    """Vibration (`vibration`): true while the sensor feels movement."""
    return binary("vibration", "vibration", "vibration felt")


# --- the catalogue -------------------------------------------------------------------------
#
# Each entry cites what it was built from in ../shared/data/z2m_payloads.json (the
# zigbee-herdsman-converters definition and captured payloads). Properties listed in
# `ignored` are published by the model but say nothing about safety (settings, raw
# electrical values, firmware update state).

_SETTINGS_AQARA = frozenset({"voltage", "device_temperature", "power_outage_count"})

# Supervision intervals. Aqara/Xiaomi battery devices send a heartbeat report about every
# 50-60 minutes. Other battery devices report their battery at least every 62,000 s (the
# maximum reporting interval zigbee-herdsman-converters configures, repInterval.MAX).
# anxin-native devices must publish at least hourly (devices/adapters/native.py).
AQARA_HEARTBEAT_S = 3600.0
BATTERY_REPORT_MAX_S = 62000.0
# eWeLink (SONOFF) buttons: battery reported every 3600-7200 s (ewelinkBattery in
# zigbee-herdsman-converters, "3600/7200 prevents disconnect").
EWELINK_BATTERY_S = 7200.0
NATIVE_HEARTBEAT_S = 3600.0

# Low-battery thresholds. Zigbee2MQTT derives Aqara/Xiaomi and most coin-cell percentages
# from voltage, and a CR2032's voltage holds up until near the end and then drops: flag
# them early. IAS devices that report their own remaining percentage (Heiman) are nearer
# linear. The anxin pendant and bed sensor are rechargeable: a low level is a "charge me".
COIN_CELL_LOW_PCT = 25.0
DEVICE_PCT_LOW_PCT = 15.0
RECHARGEABLE_LOW_PCT = 20.0

CATALOGUE: tuple[Model, ...] = (
    # Aqara (Xiaomi) --------------------------------------------------------------------
    Model(("RTCGQ11LM",), "Aqara (Xiaomi)", "Aqara human body movement and illuminance sensor",
          ("motion",), (occupancy("motion"), battery(), linkquality()),
          ignored=_SETTINGS_AQARA | {"illuminance", "illuminance_lux", "no_occupancy_since"},
          supervision_s=AQARA_HEARTBEAT_S, battery_low_pct=COIN_CELL_LOW_PCT),
    Model(("MCCGQ11LM",), "Aqara (Xiaomi)", "Aqara door & window contact sensor",
          ("contact",), (contact(), battery(), temperature(), linkquality()),
          ignored=_SETTINGS_AQARA,
          supervision_s=AQARA_HEARTBEAT_S, battery_low_pct=COIN_CELL_LOW_PCT),
    Model(("SJCGQ11LM",), "Aqara (Xiaomi)", "Aqara water leak sensor",
          ("water_leak",),
          (water_leak(), battery_low(), tamper(), battery(), temperature(), linkquality()),
          ignored=_SETTINGS_AQARA,
          supervision_s=AQARA_HEARTBEAT_S, battery_low_pct=COIN_CELL_LOW_PCT),
    Model(("JTYJ-GD-01LM/BW",), "Xiaomi (Mijia Honeywell)", "Mijia Honeywell smoke detector",
          ("smoke",),
          (test(), smoke(), battery_low(), tamper(), battery(), linkquality()),
          ignored=_SETTINGS_AQARA | {"smoke_density", "sensitivity"},
          supervision_s=AQARA_HEARTBEAT_S, battery_low_pct=COIN_CELL_LOW_PCT),
    Model(("JT-BZ-01AQ/A",), "Aqara", "Smart natural gas detector (mains powered)",
          ("gas",), (test(), gas(), linkquality()),
          ignored=_SETTINGS_AQARA | {"gas_density", "gas_sensitivity", "buzzer_manual_alarm",
                                     "buzzer_manual_mute", "linkage_alarm",
                                     "linkage_alarm_state", "state"}, power="mains"),
    Model(("RTCZCGQ11LM",), "Aqara", "Presence sensor FP1 (60 GHz mmWave)",
          ("presence",), (presence(), linkquality()),
          # region enter/leave actions and presence_event repeat what `presence` says.
          ignored=_SETTINGS_AQARA | {"presence_event", "action", "monitoring_mode",
                                     "approach_distance", "motion_sensitivity"}, power="mains"),
    # Heiman -----------------------------------------------------------------------------
    Model(("HS1CG",), "Heiman", "Smart combustible gas sensor (IAS zone)",
          ("gas",), (gas(), tamper(), battery_low(), linkquality()), power="mains"),
    Model(("HS3SA", "HS1SA"), "Heiman", "Smart smoke alarm (IAS zone)",
          ("smoke",),
          (test(), trouble(), tamper(), smoke(), battery_low(), battery(), linkquality()),
          ignored=frozenset({"supervision_reports", "restore_reports", "ac_status",
                             "battery_defect", "enrolled"}),
          supervision_s=BATTERY_REPORT_MAX_S, battery_low_pct=DEVICE_PCT_LOW_PCT),
    Model(("HS1WL", "HS3WL"), "Heiman", "Water leakage sensor (IAS zone)",
          ("water_leak",), (water_leak(), battery_low(), tamper(), battery(), linkquality()),
          supervision_s=BATTERY_REPORT_MAX_S, battery_low_pct=DEVICE_PCT_LOW_PCT),
    Model(("HS1EB", "HS1EB-E"), "Heiman", "Smart emergency button",
          ("sos",),
          # A press (single or double) is an emergency; holding the button for 3 s is the
          # deliberate "I am all right" that cancels a pending fall. "off" is the zone's
          # idle state, not a press.
          (action({"single": "sos", "double": "sos", "hold": "cancel"}), battery(),
           linkquality()),
          ignored=frozenset({"click"}),
          supervision_s=BATTERY_REPORT_MAX_S, battery_low_pct=DEVICE_PCT_LOW_PCT),
    Model(("HS2FD-EF1-3.0",), "Heiman", "Fall detection sensor (mmWave radar)",
          ("presence", "fall"),
          (occupancy("presence"),
           fall_state("fall_status", {"fall_alarm": "fall", "fall_warning": "suspected",
                                      "normal": "none"}, skip=("unknown",)),
           linkquality()),
          # Settings arrive as enums or, before the converter's lookup, as raw integers.
          ignored=frozenset({"sensor_status", "sensitivity", "installation_method",
                             "cell_mounted_table", "wall_mounted_table",
                             "sub_region_isolation_table", "enable_indicator",
                             "enable_sub_region_isolation"}), power="mains"),
    # Tuya -------------------------------------------------------------------------------
    Model(("TS0215A_sos",), "Tuya", "SOS button (IAS ACE emergency command)",
          ("sos",), (action({"emergency": "sos"}), battery(), linkquality()),
          supervision_s=BATTERY_REPORT_MAX_S, battery_low_pct=COIN_CELL_LOW_PCT),
    Model(("MIR-HE200-TY",), "Tuya", "Human presence sensor with fall function",
          ("presence", "fall"),
          (presence(),
           # fall_down_status was a boolean before zigbee-herdsman-converters PR #3701.
           fall_state("fall_down_status", {"fall": "fall", "maybe_fall": "suspected",
                                           "none": "none", True: "fall", False: "none"}),
           linkquality()),
          # `occupancy` on this model is inconsistent (true while still, false while
          # moving: zigbee2mqtt#18805); `presence` is the reliable signal.
          ignored=frozenset({"occupancy", "motion", "illuminance", "illuminance_lux",
                             "motion_speed", "motion_direction", "radar_sensitivity",
                             "radar_scene", "tumble_switch", "fall_sensitivity",
                             "tumble_alarm_time", "static_dwell_alarm"}), power="mains"),
    Model(("ZY-M100-S_1",), "Tuya", "Mini human breathe sensor (24 GHz mmWave)",
          ("presence",), (presence(), linkquality()),
          ignored=frozenset({"illuminance", "illuminance_lux", "target_distance",
                             "radar_sensitivity", "minimum_range", "maximum_range",
                             "detection_delay", "fading_time"}), power="mains"),
    # SONOFF -----------------------------------------------------------------------------
    Model(("SNZB-04",), "SONOFF", "Contact sensor (IAS zone)",
          ("contact",), (contact(), battery_low(), tamper(), battery(), linkquality()),
          supervision_s=BATTERY_REPORT_MAX_S, battery_low_pct=COIN_CELL_LOW_PCT),
    Model(("SNZB-06P",), "SONOFF", "Zigbee occupancy sensor (mmWave)",
          ("presence",), (occupancy("presence"), linkquality()),
          ignored=frozenset({"occupancy_timeout", "occupancy_sensitivity", "illumination"}),
          power="mains"),
    # More Aqara / Xiaomi (devices/fixtures/<model>.json cite each converter and payload) ----
    Model(("RTCGQ13LM",), "Aqara", "High precision motion sensor",
          ("motion",), (occupancy("motion"), battery(), linkquality()),
          # `temperature` in older payloads is the device's own temperature, not the room's.
          ignored=_SETTINGS_AQARA | {"temperature", "motion_sensitivity", "detection_interval",
                                     "occupancy_timeout", "state"},
          supervision_s=AQARA_HEARTBEAT_S, battery_low_pct=COIN_CELL_LOW_PCT),
    Model(("SJCGQ12LM",), "Aqara", "Water leak sensor T1",
          ("water_leak",), (water_leak(), battery_low(), tamper(), battery(), linkquality()),
          ignored=_SETTINGS_AQARA,
          supervision_s=AQARA_HEARTBEAT_S, battery_low_pct=COIN_CELL_LOW_PCT),
    Model(("WXKG11LM",), "Aqara", "Wireless mini switch, installed as an SOS button",
          ("sos",),
          # As the SOS button of a kit: any press is a call for help; holding it is the
          # deliberate "I am all right" (as on the Heiman HS1EB). "release" follows a hold.
          (action({"single": "sos", "double": "sos", "triple": "sos", "quadruple": "sos",
                   "hold": "cancel"}), battery(), linkquality()),
          ignored=_SETTINGS_AQARA | {"temperature", "click", "duration"},
          supervision_s=AQARA_HEARTBEAT_S, battery_low_pct=COIN_CELL_LOW_PCT),
    Model(("WXKG13LM",), "Aqara", "Wireless mini switch T1, installed as an SOS button",
          ("sos",),
          (action({"single": "sos", "double": "sos", "triple": "sos", "quintuple": "sos",
                   "many": "sos", "hold": "cancel"}), battery(), linkquality()),
          ignored=_SETTINGS_AQARA,
          supervision_s=AQARA_HEARTBEAT_S, battery_low_pct=COIN_CELL_LOW_PCT),
    Model(("DJT11LM",), "Aqara", "Vibration sensor (on a bed frame, a door or a chair)",
          ("vibration",),
          (vibration(),
           action({"vibration": "vibration", "tilt": "vibration", "drop": "vibration"}),
           battery(), linkquality()),
          ignored=_SETTINGS_AQARA | {"strength", "sensitivity", "angle", "angle_x", "angle_y",
                                     "angle_z", "angle_x_absolute", "angle_y_absolute",
                                     "x_axis", "y_axis", "z_axis"},
          supervision_s=AQARA_HEARTBEAT_S, battery_low_pct=COIN_CELL_LOW_PCT),
    Model(("JTQJ-BF-01LM/BW",), "Xiaomi (Mijia Honeywell)", "Natural gas leak detector",
          ("gas",),
          # battery_low appears in older firmware's reports on this mains device; kept as
          # the device says it.
          (gas(), tamper(), battery_low(), linkquality()),
          ignored=_SETTINGS_AQARA | {"gas_density", "sensitivity", "selftest"},
          power="mains"),
    # More Tuya --------------------------------------------------------------------------------
    Model(("TS0202",), "Tuya", "PIR motion sensor (IAS zone)",
          ("motion",), (occupancy("motion"), battery_low(), tamper(), battery(), linkquality()),
          ignored=frozenset({"voltage", "sensitivity", "keep_time"}),
          supervision_s=BATTERY_REPORT_MAX_S, battery_low_pct=COIN_CELL_LOW_PCT),
    Model(("IH012-RT01",), "Tuya", "PIR motion sensor (TS0202 variant)",
          ("motion",), (occupancy("motion"), battery_low(), tamper(), battery(), linkquality()),
          ignored=frozenset({"voltage", "sensitivity", "keep_time"}),
          supervision_s=BATTERY_REPORT_MAX_S, battery_low_pct=COIN_CELL_LOW_PCT),
    Model(("TS0203",), "Tuya", "Door/window contact sensor (IAS zone)",
          ("contact",), (contact(), battery_low(), tamper(), battery(), linkquality()),
          ignored=frozenset({"voltage"}),
          supervision_s=BATTERY_REPORT_MAX_S, battery_low_pct=COIN_CELL_LOW_PCT),
    # IKEA -------------------------------------------------------------------------------------
    Model(("E1525", "E1745"), "IKEA", "TRADFRI motion sensor",
          ("motion",), (occupancy("motion"), battery(), linkquality()),
          ignored=frozenset({"requested_brightness_level", "requested_brightness_percent",
                             "illuminance_above_threshold"}),
          supervision_s=BATTERY_REPORT_MAX_S, battery_low_pct=DEVICE_PCT_LOW_PCT),
    Model(("E2134",), "IKEA", "VALLHORN wireless motion sensor",
          ("motion",), (occupancy("motion"), battery(), linkquality()),
          ignored=frozenset({"illuminance", "illuminance_lux", "no_occupancy_since",
                             "identify"}),
          supervision_s=BATTERY_REPORT_MAX_S, battery_low_pct=DEVICE_PCT_LOW_PCT),
    Model(("E2013",), "IKEA", "PARASOLL door/window sensor",
          ("contact",), (contact(), battery(), linkquality()),
          ignored=frozenset({"identify"}),
          supervision_s=BATTERY_REPORT_MAX_S, battery_low_pct=DEVICE_PCT_LOW_PCT),
    # More SONOFF ------------------------------------------------------------------------------
    Model(("SNZB-01",), "SONOFF", "Wireless button, installed as an SOS button",
          ("sos",),
          (action({"single": "sos", "double": "sos", "long": "cancel"}), battery(),
           linkquality()),
          ignored=frozenset({"voltage"}),
          supervision_s=EWELINK_BATTERY_S, battery_low_pct=COIN_CELL_LOW_PCT),
    # anxin-native devices (no Zigbee equivalent; see devices/adapters/native.py) -----------
    Model(("anxin-pendant",), "anxin", "Wearable pendant: fall detection, SOS and cancel keys",
          ("fall", "sos"),
          (fall_state("fall", {"fall": "fall", "suspected": "suspected", "none": "none"}),
           event("sos", "sos", "SOS key pressed"),
           event("cancel", "cancel", "cancel key pressed"),
           battery(), battery_low()),
          source="anxin", supervision_s=NATIVE_HEARTBEAT_S,
          battery_low_pct=RECHARGEABLE_LOW_PCT),
    Model(("anxin-wearable-imu",), "anxin",
          "Wearable with a raw accelerometer stream (the gateway detects falls), SOS and "
          "cancel keys",
          ("fall", "sos"),
          (imu_stream(), event("sos", "sos", "SOS key pressed"),
           event("cancel", "cancel", "cancel key pressed"), battery(), battery_low()),
          source="anxin", supervision_s=NATIVE_HEARTBEAT_S,
          battery_low_pct=RECHARGEABLE_LOW_PCT),
    Model(("anxin-bed-sensor",), "anxin", "Bed sensor: in bed, heart and respiration rate",
          ("in_bed",),
          (binary("in_bed", "in_bed", "someone is in bed"),
           numeric("heart_rate", "heart_rate", "beats per minute"),
           numeric("respiration_rate", "respiration_rate", "breaths per minute"),
           battery()),
          source="anxin", supervision_s=NATIVE_HEARTBEAT_S,
          battery_low_pct=RECHARGEABLE_LOW_PCT),
    Model(("anxin-bed-sensor-raw",), "anxin",
          "Under-mattress sensor streaming its raw signal (the gateway estimates heart and "
          "breathing rates, and sees an empty bed)",
          ("in_bed",),
          (bcg_stream(), binary("in_bed", "in_bed", "someone is in bed")),
          source="anxin", supervision_s=NATIVE_HEARTBEAT_S, power="mains"),
    # The 爱的眼睛 video intercom. The media (SIP/WebRTC) goes from the device to the centre;
    # over MQTT it reports its keys and the signalling of calls, and takes the gateway's
    # commands on `<topic>/set` (a ring for a look-in, a snapshot after a fall or SOS):
    # devices/adapters/native.py documents both directions.
    Model(("anxin-intercom",), "anxin", "爱的眼睛 video intercom: call, check-in, SOS keys",
          ("intercom", "sos"),
          (enum("intercom", "intercom", {v: v for v in INTERCOM_SIGNALS},
                "call key (call); a look-in's answered, missed, declined, ended"),
           Expose("request_id", ("intercom_request",),
                  _null_is_unknown(lambda v: ("intercom_request",
                                              check_value("intercom_request", v))),
                  lambda _k, v: v, "the look-in (ring request) an intercom event answers"),
           Expose("snapshot", ("snapshot",),
                  _null_is_unknown(lambda v: ("snapshot", check_value("snapshot", v))),
                  lambda _k, v: v, "a still taken when the gateway asked: {ref, taken_at, "
                                   "request_id}"),
           event("sos", "sos", "SOS key pressed"),
           event("checkin", "checkin", "平安打卡 key pressed"),
           event("cancel", "cancel", "cancel key pressed"),
           enum("away_mode", "away_mode", {"away": "away", "home": "home"},
                "away key: going out (away) or back home (home)")),
          source="anxin", supervision_s=NATIVE_HEARTBEAT_S, power="mains"),
)

MODELS_BY_ID: dict[str, Model] = {}
for _m in CATALOGUE:
    # "HS1EB/HS1EB-E" is how Zigbee2MQTT's docs name the family; bridge/devices reports
    # either part. The entry answers to every part and to the full name.
    for _name in (*_m.models, "/".join(_m.models)):
        if _name in MODELS_BY_ID and MODELS_BY_ID[_name] is not _m:
            raise RuntimeError(f"catalogue: model id {_name!r} is defined twice")
        MODELS_BY_ID[_name] = _m
del _m, _name


def find_model(model_id: str) -> Model | None:
    """The catalogue entry for a model id as Zigbee2MQTT (or anxin) names it."""
    return MODELS_BY_ID.get(model_id)


# --- models the catalogue does not know --------------------------------------------------
#
# A model Zigbee2MQTT supports but this catalogue lacks still works when its exposes use the
# standard property names: each maps as the same-named piece above does. An unknown button's
# `action` is an SOS only for values that say so; "single" on an unknown remote could be a
# light switch, so it is not guessed.

_STANDARD: dict[str, Callable[[], Expose]] = {
    "occupancy": lambda: occupancy("motion"), "presence": presence, "contact": contact,
    "water_leak": water_leak, "smoke": smoke, "gas": gas, "tamper": tamper,
    "battery": battery, "battery_low": battery_low, "linkquality": linkquality,
    "test": test, "trouble": trouble,
    "action": lambda: action({"emergency": "sos", "sos": "sos", "panic": "sos"}),
}
_CLASS_OF = {"occupancy": "motion", "presence": "presence", "contact": "contact",
             "water_leak": "water_leak", "smoke": "smoke", "gas": "gas", "action": "sos"}
MAPPED_VENDOR_NOTE = "mapped from Zigbee2MQTT exposes"


def model_from_exposes(model_id: str, exposes: tuple[str, ...] | list[str],
                       vendor: str | None = None) -> Model:
    """A catalogue entry built from the standard exposes of a model the catalogue lacks.

    ValueError names the problem when none of them is something anxin watches.
    """
    usable = [p for p in dict.fromkeys(exposes) if p in _STANDARD]
    classes = tuple(_CLASS_OF[p] for p in usable if p in _CLASS_OF)
    if not classes:
        raise ValueError(f"model {model_id!r} exposes nothing anxin watches (it knows "
                         f"{', '.join(sorted(_CLASS_OF))}); it exposes "
                         f"{', '.join(exposes) or 'nothing'}")
    has_battery = "battery" in usable or "battery_low" in usable
    return Model(
        (model_id,), vendor or "?", MAPPED_VENDOR_NOTE, classes,
        tuple(_STANDARD[p]() for p in usable),
        # Without a known heartbeat, the longest battery report Zigbee2MQTT configures;
        # mains devices answer Zigbee2MQTT's availability pings.
        supervision_s=BATTERY_REPORT_MAX_S if has_battery else None,
        power="battery" if has_battery else "mains",
        battery_low_pct=DEVICE_PCT_LOW_PCT if "battery" in usable else None)
