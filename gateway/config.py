"""Gateway configuration: declared once (types, defaults, descriptions), loaded from TOML.

Every section is a dataclass whose fields carry their default and a description. Loading walks
the TOML against those declarations: unknown keys, wrong types and values out of range are
errors naming the key path (e.g. `devices[2].model`) and what would fix it. Cross-checks
(unknown model, duplicate ids and topics, a secret that cannot be read) come after, so one run
reports every problem at once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import tomllib
import types
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.escalation import Policy, Tier
from devices.catalogue import Model, as_away_key, find_model, model_from_exposes
from devices.registry import Device


class ConfigError(Exception):
    """The config cannot be used; `problems` lists each (key path, message)."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "") -> None:
        self.problems = problems
        self.source = source
        lines = [f"{source}: {len(problems)} problem(s)" if source else "config problems:"]
        lines += [f"  {path}: {msg}" for path, msg in problems]
        super().__init__("\n".join(lines))


def doc(description: str, default: Any = MISSING, **kw: Any) -> Any:
    """A dataclass field with its description (and default) declared in one place."""
    if default is not MISSING and isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default),
                     metadata={"doc": description, **kw})
    return field(default=default, metadata={"doc": description, **kw})


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclass(frozen=True)
class GatewaySection:
    """[gateway]"""

    id: str = doc("This gateway's id, unique within the service centre", pattern=_ID)
    timezone: str = doc("IANA time zone of the home, for time-of-day rules and times in alerts",
                        "Asia/Shanghai")
    data_dir: str = doc("Directory for the SQLite store and state (relative to the config file)",
                        "./var")
    log_level: str = doc("Log level: DEBUG, INFO, WARNING, ERROR", "INFO",
                         choices=("DEBUG", "INFO", "WARNING", "ERROR"))


@dataclass(frozen=True)
class WebSection:
    """[web]: the technician pages, on the home's network"""

    enabled: bool = doc("Serve the technician pages", False)
    host: str = doc("Address to listen on (127.0.0.1: this box only; the LAN address or "
                    "0.0.0.0 to let a technician's phone or laptop in)", "127.0.0.1")
    port: int = doc("Port to listen on", 8080, min=1, max=65535)


@dataclass(frozen=True)
class MqttSection:
    """[mqtt]"""

    url: str = doc('Broker URL "mqtt://host:1883" / "mqtts://host:8883", or "embedded" '
                   "(an in-process broker, for the demo only)", "mqtt://127.0.0.1:1883")
    username: str | None = doc("Username on the broker", None)
    password: str | None = doc("Password (prefer password_file)", None)
    password_file: str | None = doc("File holding the password (systemd LoadCredential)", None)
    client_id: str | None = doc("MQTT client id; default anxin-<gateway.id>. Kept fixed so the "
                                "broker holds QoS-1 messages across a reconnect", None)
    keepalive_s: int = doc("MQTT keepalive in seconds", 30, min=5, max=3600)
    ca_file: str | None = doc("CA bundle for mqtts://", None)
    cert_file: str | None = doc("Client certificate for mqtts://", None)
    key_file: str | None = doc("Client key for mqtts://", None)
    zigbee2mqtt_base_topic: str = doc("Zigbee2MQTT's base topic", "zigbee2mqtt")
    native_base_topic: str = doc("Base topic of anxin-native devices", "anxin/sensor")
    embedded_host: str = doc("Listen address of the embedded broker", "127.0.0.1")
    embedded_port: int = doc("Port of the embedded broker", 1883, min=1, max=65535)


@dataclass(frozen=True)
class Resident:
    """[[home.residents]]"""

    name: str = doc("Resident's name (personal data: stays on the gateway except in alerts)")
    age: int | None = doc("Age in years", None, min=0, max=130)
    ability_level: int | None = doc("GB/T 42195-2022 老年人能力评估 level: 0 能力完好 … "
                                    "4 完全失能", None, min=0, max=4)
    conditions: list[str] = doc("Health conditions, free list (e.g. dementia); detectors read it",
                                [])
    heart_rate_low_bpm: float | None = doc(
        "Bed sensor: a heart rate below this for 2 minutes is an alert; unset: 40 (set lower "
        "for a resident on beta blockers whose doctor says so)", None, min=20, max=80)
    heart_rate_high_bpm: float | None = doc(
        "Bed sensor: a heart rate above this for 5 minutes at rest is an alert; unset: 130",
        None, min=80, max=220)
    breath_pause_s: float | None = doc(
        "Bed sensor: no breath in bed this many seconds is a severity-1 alert; unset: 20 "
        "(longer for someone whose sleep has known pauses, e.g. heart failure)", None,
        min=10, max=90)
    medication: str = doc(
        "Medication notes for the hotline operator (e.g. 氨氯地平 5mg 每早; 华法林 — bleeds "
        "easily): sent only inside alerts, never shown on the technician pages", "")
    snapshot_consent: bool = doc(
        "This resident agreed (written consent) that after a fall or SOS the video intercom "
        "takes one still and its reference goes with the alert. Every resident of the home "
        "must agree; otherwise no still is ever asked for", False)
    look_in_auto_answer: bool = doc(
        "This resident agreed that the intercom answers a look-in from the centre or family "
        "by itself. Every resident of the home must agree; otherwise it rings and waits for "
        "someone to answer", False)


_PHONE = re.compile(r"^\+?[0-9][0-9 -]{3,22}[0-9]$")


@dataclass(frozen=True, kw_only=True)
class Contact:
    """[[home.contacts]]: an emergency contact, in the order the centre calls them"""

    name: str = doc("Contact's name (personal data: sent only inside alerts)")
    relation: str = doc("Relation to the resident (儿子, 女儿, 邻居, 社区网格员, …)", "")
    phone: str = doc("Phone number the hotline dials, e.g. 13800000000 or +86 138 0000 0000")


@dataclass(frozen=True)
class HomeSection:
    """[home]"""

    id: str = doc("The home's id at the service centre", pattern=_ID)
    address: str = doc("Street address, sent with alerts so help can be dispatched", "")
    district: str = doc("区 / 街道 of the home (e.g. 徐汇区 田林街道), sent with alerts for the "
                        "centre's statistics by district", "")
    residents: list[Resident] = doc("The people living here", [])
    contacts: list[Contact] = doc("Emergency contacts, in call order (sent only inside alerts)",
                                  [])
    speaker_topic: str | None = doc(
        "MQTT topic of the home's speaker/siren: spoken prompts in Mandarin during a fall "
        "pre-alarm, after an alarm and once the centre has accepted (none if unset)", None)

    def everyone_consents(self, flag: str) -> bool:
        """Whether every resident agreed to `flag` (snapshot_consent, look_in_auto_answer):
        a camera in a shared home sees everyone, so one refusal is a refusal; a home with no
        resident configured has no consent recorded."""
        people = [r for r in self.residents if r is not None]
        return bool(people) and all(getattr(r, flag) is True for r in people)


@dataclass(frozen=True)
class AlertsSection:
    """[alerts]"""

    fall_cancel_window_s: float = doc(
        "Seconds a fall waits in the home before it is sent, so the resident can cancel "
        "(0 sends at once)", 30.0, min=0, max=300)
    dedupe_window_s: float = doc(
        "A repeat of the same event from the same device within this many seconds of the last "
        "one is folded into the open alert instead of opening a new one", 120.0, min=0,
        max=86400)
    cancel_devices: list[str] = doc(
        "Device ids of buttons that only cancel: their presses cancel a pending fall "
        "pre-alarm and raise no SOS (every button's own cancel action works anyway)", [])
    low_battery_pct: float | None = doc(
        "Battery level at or below which a low-battery finding is raised, for every device; "
        "unset: each model's own threshold (anxin devices catalog)", None, min=1, max=90)


@dataclass(frozen=True)
class MaintenanceSection:
    """[maintenance]: device troubles for the technician, and the daily digest"""

    digest_hour: int = doc(
        "Local hour (0-23) of the daily maintenance digest: low batteries, open cases, weak "
        "links, stuck contacts and offline devices in one technical message", 9, min=0, max=23)
    immediate: bool = doc(
        "Send each low battery, tamper, weak link and stuck contact as its own technical "
        "alert at once instead of in the daily digest", False)
    weak_link_lqi: float = doc(
        "Zigbee link quality below which three reports in a row are a weak link (0: off)",
        40.0, min=0, max=255)
    stuck_open_h: float = doc(
        "Hours a door/window contact may stay open before it is reported stuck (0: off)",
        24.0, min=0, max=24 * 90)
    stuck_unchanged_days: float = doc(
        "Days a contact may report the same state before it is reported stuck (0: off)",
        14.0, min=0, max=365)


@dataclass(frozen=True)
class StorageSection:
    """[storage]: how much history the SD card keeps (gateway/retention.py)"""

    observations_days: float = doc(
        "Days of sensor observations kept (the nightly baseline learns from the last 28; "
        "older days live on as hourly activity totals for the routine detector)", 30.0,
        min=29, max=3650)
    alerts_days: float = doc(
        "Days resolved or cancelled alerts and their acknowledged outbox rows are kept "
        "(an open alert or an unacknowledged message is never removed)", 400.0,
        min=30, max=3650)
    alerts_keep: int = doc(
        "However old, the newest this many closed alerts are always kept", 1000,
        min=10, max=1_000_000)
    records_days: float = doc(
        "Days commissioning records (walk tests, test alarms, reports, self-tests) and "
        "closed maintenance items are kept", 730.0, min=30, max=3650)
    records_keep: int = doc(
        "However old, the newest this many commissioning records of each kind are kept", 50,
        min=1, max=100_000)
    quarantine_days: float = doc(
        "Days a quarantined topic is kept after its last message", 30.0, min=1, max=3650)
    max_db_mb: float = doc(
        "Ceiling on the database size in MB: when reached, the oldest observations go first "
        "(alerts and the outbox never do)", 512.0, min=16, max=1_000_000)
    prune_hour: int = doc(
        "Local hour (0-23) of the daily pruning (it also runs at start)", 4, min=0, max=23)
    reserve_mb: float = doc(
        "Disk space kept in reserve beside the database (MB): given up on a full card to "
        "store the alert that found it full, then only alerts are stored until there is room "
        "(0 = none)", 8.0, min=0, max=1024)


@dataclass(frozen=True)
class SelfTestSection:
    """[self_test]: the weekly test of the alarm buttons, prompted by voice"""

    enabled: bool = doc(
        "Ask the resident once a week, through the home's speaker, to press each alarm "
        "button (needs [home] speaker_topic)", True)
    weekday: int = doc("Day of the week: 0 Monday … 6 Sunday (default Wednesday: staff are "
                       "at work to follow up a button that failed)", 2, min=0, max=6)
    hour: int = doc("Local hour to start (it starts up to 3 h late if the gateway was off)",
                    10, min=6, max=20)
    window_min: float = doc("Minutes the resident has to press the buttons", 30.0, min=5,
                            max=180)
    buttons: list[str] | None = doc(
        "Device ids of the buttons to test; unset: every SOS button and pendant that is "
        "not a cancel-only button", None)


@dataclass(frozen=True)
class HomeAssistantSection:
    """[home_assistant]: anxin's state for a family's Home Assistant (MQTT discovery)"""

    enabled: bool = doc(
        "Publish the home's alarm, open alerts, link to the centre, test mode and device "
        "health with Home Assistant's MQTT discovery, on the home's broker", False)
    discovery_prefix: str = doc("Home Assistant's discovery prefix", "homeassistant")
    state_prefix: str = doc("Topics are <prefix>/<gateway id>/state and /availability",
                            "anxin")


@dataclass(frozen=True)
class ActivitySection:
    """[activity]: home state (occupied/away) and inactivity"""

    enabled: bool = doc("Watch for a home that has gone too quiet (Contact ID 641)", True)
    entrance_doors: list[str] | None = doc(
        "Device ids of the entrance door contacts (out of this door, then quiet: away); "
        "unset: the contact sensors whose room is entrance, 门厅 or 玄关", None)
    away_after_min: float = doc(
        "Minutes of quiet after the entrance door closes before the home counts as away",
        15.0, min=1, max=240)
    day_limit_h: float | None = doc(
        "Hours of quiet by day (07:00-21:00) before an inactivity alert; unset: from the "
        "most dependent resident's ability level (2-6 h)", None, min=0.5, max=24)
    night_limit_h: float | None = doc(
        "Hours of quiet at night; unset: from the ability level (9-12 h)", None, min=1, max=24)
    bathroom_limit_min: float | None = doc(
        "Minutes of quiet after the bathroom before an alert; unset: from the ability level "
        "(30-60 min)", None, min=5, max=240)
    wake_by_h: float | None = doc(
        "Local hour by which the resident is normally up (e.g. 9.5 for 09:30); unset: from "
        "the ability level (09:30-11:00)", None, min=5, max=14)
    checkin_by_h: float = doc(
        "Local hour by which the daily check-in (平安打卡) is expected, where a check-in key "
        "or intercom is configured; a missed one is a care call (severity 3)", 10.0, min=6,
        max=20)
    wander_return_min: float = doc(
        "Minutes after the entrance door opens at night (23:00-05:00) without a return "
        "before a night wandering alert (a resident with dementia: at once)", 30.0, min=1,
        max=240)


@dataclass(frozen=True)
class TierEntry:
    """[[escalation.tiers]]"""

    name: str = doc("Name of the tier for logs and alerts, e.g. primary, backup, family",
                    pattern=_ID)
    targets: list[str] = doc("Names of [[hotline]] targets told together at this tier")
    after_s: list[float] = doc(
        "For severity 1..4: seconds the previous tier has to accept before this tier is "
        "told as well; 0 = never for that severity (ignored for the first tier)",
        [0.0, 0.0, 0.0, 0.0])


@dataclass(frozen=True)
class EscalationSection:
    """[escalation]"""

    tiers: list[TierEntry] = doc(
        "Ordered tiers: the first is told when an alert is raised, each next one when "
        "nobody has accepted in time. Empty: every [[hotline]] target at once", [])
    renotify_s: list[float] = doc(
        "For severity 1..4: remind everyone told so far this often while nobody has "
        "accepted; 0 = never", [0.0, 0.0, 0.0, 0.0])


@dataclass(frozen=True)
class DeviceEntry:
    """[[devices]]"""

    id: str = doc("Device id, unique in this gateway", pattern=_ID)
    source: str = doc('Which adapter reads it: "zigbee2mqtt" or "anxin" (native JSON)',
                      choices=("zigbee2mqtt", "anxin"))
    topic: str = doc("MQTT topic carrying the device's state")
    model: str = doc("Catalogue model id, as Zigbee2MQTT names it (definition.model)")
    room: str | None = doc("Room the device is in (kitchen, bathroom, bedroom, …)", None)
    name: str | None = doc("Human name for the technician and the hotline", None)
    zone: int | None = doc("Zone number at an alarm receiver (SIA DC-09); default: the "
                           "device's position in this list. Set it once the centre has "
                           "recorded the zones, so adding a device renumbers nothing",
                           None, min=1, max=999)
    resident: str | None = doc("Name of the resident this device belongs to (a pendant, a bed "
                               "sensor); must be one of [[home.residents]]", None)
    exposes: list[str] | None = doc(
        "For a model the catalogue does not know: the Zigbee2MQTT exposes it is mapped from "
        "(occupancy, presence, contact, water_leak, smoke, gas, tamper, battery, battery_low, "
        "action); `anxin devices add` fills it in from bridge/devices", None)
    use: str | None = doc(
        'What a button is installed for, where not for help: "away_key", a button by the '
        "entrance door pressed once going out (外出: no inactivity alerts while away) and "
        "twice coming home (回家); its presses never call for help", None,
        choices=("away_key",))

    def catalogue_model(self) -> Model | None:
        """The catalogue entry, or one mapped from `exposes`, installed for its `use`; None
        if that does not work (`model_problem` says why)."""
        try:
            return self._model()
        except ValueError:
            return None

    def model_problem(self) -> tuple[str, str] | None:
        """(field, what is wrong) when no model can be made for this device."""
        try:
            model = self._model(use=False)
        except ValueError as e:
            return ("exposes", str(e))
        try:
            model = self._model()
        except ValueError as e:
            return ("use", str(e))
        if model is None:
            return ("model", f"unknown model {self.model!r}: not in the device catalogue "
                             "(`anxin devices catalog` lists it); for a Zigbee2MQTT model, "
                             "list its `exposes`")
        return None

    def _model(self, *, use: bool = True) -> Model | None:
        model = find_model(self.model)
        if model is None and self.exposes and self.source == "zigbee2mqtt":
            model = model_from_exposes(self.model, self.exposes)
        if model is not None and use and self.use == "away_key":
            model = as_away_key(model)
        return model


@dataclass(frozen=True, kw_only=True)
class HotlineTarget:
    """[[hotline]]: a delivery target (the centre's receiver, or a person's phone)"""

    kind: str = doc('Transport: "webhook" (HTTPS JSON to the service centre, signed), "mqtt" '
                    "(an uplink to the centre's MQTT broker), \"dc09\" (SIA DC-09 to an alarm "
                    "receiver) or \"sms\" (a text or voice call through an HTTP SMS/voice "
                    "gateway, anxin.notify/1)", "webhook",
                    choices=("webhook", "mqtt", "dc09", "sms"))
    url: str | None = doc("webhook/sms: where alerts are POSTed; mqtt: the central broker, "
                          "mqtts://host:8883 (or mqtt://); not for dc09", None)
    name: str | None = doc("Short name for logs, tiers and the outbox; default hotline-<n>",
                           None, pattern=_ID)
    secret: str | None = doc("HMAC-SHA256 key shared with the receiver (prefer secret_file)",
                             None)
    secret_file: str | None = doc("File holding the HMAC key (systemd LoadCredential)", None)
    secret_env: str | None = doc("Environment variable holding the HMAC key", None)
    timeout_s: float = doc("Seconds to wait for the receiver's answer to one POST", 10.0,
                           min=0.1, max=120)
    retry_max_s: float = doc("Longest wait between retries (backoff grows to this)", 60.0,
                             min=0.1, max=3600)
    feedback_url: str | None = doc(
        "webhook: the centre's signed feedback feed (GET, long poll) where the gateway "
        "learns that an operator accepted or resolved an alert", None)
    to: str | None = doc("sms: the phone number to text or call, e.g. +8613800000000", None)
    channel: str = doc('sms: "sms" (a text) or "voice" (a call reading the text)', "sms",
                       choices=("sms", "voice"))
    topic_prefix: str = doc("mqtt: topics are <prefix>/<gateway id>/alerts|status|feedback",
                            "anxin")
    host: str | None = doc("dc09: the alarm receiver's host", None)
    port: int | None = doc("dc09: the alarm receiver's port", None, min=1, max=65535)
    protocol: str = doc('dc09: "tcp" or "udp"', "tcp", choices=("tcp", "udp"))
    account: str | None = doc("dc09: the account number at the receiver (3-16 hex digits)",
                              None)
    receiver: str | None = doc("dc09: receiver number (1-6 hex digits), if the centre uses one",
                               None)
    line: str = doc("dc09: line / account prefix (1-6 hex digits)", "1")
    format: str = doc('dc09: "ADM-CID" (Contact ID) or "SIA-DCS" (SIA codes)', "ADM-CID",
                      choices=("ADM-CID", "SIA-DCS"))
    key: str | None = doc("dc09: AES key, 16, 24 or 32 characters (AES-128/192/256); prefer "
                          "key_file", None)
    key_file: str | None = doc("dc09: file holding the AES key; mqtt: the client certificate's "
                               "private key", None)
    supervision_s: float = doc("dc09: send a NULL supervision message after this many seconds "
                               "without traffic (0 = off)", 0.0, min=0, max=86400)
    username: str | None = doc("mqtt: username on the central broker", None)
    password_file: str | None = doc("mqtt: file holding the broker password", None)
    ca_file: str | None = doc("mqtt: CA certificate(s) to verify the central broker", None)
    cert_file: str | None = doc("mqtt: this gateway's client certificate", None)
    allow_plaintext: bool = doc(
        "webhook/sms/mqtt: allow http:// or mqtt:// to a host other than this box (dc09: no AES "
        "key to a host other than this box). Only for a "
        "link inside an encrypted tunnel (WireGuard or IPsec VPN, an operator's private APN / "
        "VPDN): alerts are signed either way, but names, addresses and conditions would be "
        "readable on an open network", False)


@dataclass(frozen=True)
class Config:
    """The whole gateway config."""

    gateway: GatewaySection = doc("This gateway")
    home: HomeSection = doc("The home this gateway watches")
    mqtt: MqttSection = doc("Where the sensors' messages come from", MISSING)
    alerts: AlertsSection = doc("Alert handling", MISSING)
    escalation: EscalationSection = doc("Who is told when nobody takes charge", MISSING)
    web: WebSection = doc("Technician pages", MISSING)
    maintenance: MaintenanceSection = doc("Device troubles and the daily digest", MISSING)
    self_test: SelfTestSection = doc("The weekly button test", MISSING)
    home_assistant: HomeAssistantSection = doc("Home Assistant MQTT discovery", MISSING)
    activity: ActivitySection = doc("Home state and inactivity", MISSING)
    storage: StorageSection = doc("History kept on the SD card", MISSING)
    devices: list[DeviceEntry] = doc("Commissioned devices", [])
    hotline: list[HotlineTarget] = doc("Where alerts are delivered", [])
    # Not from the file: where it was read, for resolving relative paths.
    base_dir: str = field(default=".", metadata={"internal": True})

    def secret(self, index: int) -> bytes:
        """The HMAC key of hotline target `index` (read from where the config says)."""
        return _read_secret(self.hotline[index], Path(self.base_dir))[0] or b""

    def data_path(self) -> Path:
        """The data directory, absolute."""
        return (Path(self.base_dir) / self.gateway.data_dir).resolve()

    def device_list(self) -> list[Device]:
        """The configured devices as registry Devices of this home."""
        return [Device(id=d.id, home=self.home.id, source=d.source, topic=d.topic, model=d.model,
                       room=d.room, name=d.name) for d in self.devices]

    def zones(self) -> dict[str, int]:
        """Each device's zone number at an alarm receiver."""
        return {d.id: d.zone or n + 1 for n, d in enumerate(self.devices)}

    def self_test_buttons(self) -> tuple[str, ...]:
        """The buttons the weekly self-test asks for (none without a speaker to ask)."""
        if not self.self_test.enabled or self.home.speaker_topic is None:
            return ()
        if self.self_test.buttons is not None:
            return tuple(self.self_test.buttons)
        cancel = set(self.alerts.cancel_devices)
        return tuple(d.id for d in self.devices if d.id not in cancel
                     and (m := d.catalogue_model()) is not None and "sos" in m.classes)

    def target_name(self, index: int) -> str:
        """The name of hotline target `index`."""
        return self.hotline[index].name or f"hotline-{index + 1}"

    def policy(self) -> Policy:
        """The escalation policy: the configured tiers, or everyone at once."""
        names = tuple(self.target_name(i) for i in range(len(self.hotline)))
        if not self.escalation.tiers:
            return Policy((Tier("all", names),), _four(self.escalation.renotify_s))
        return Policy(tuple(Tier(t.name, tuple(t.targets), _four(t.after_s))
                            for t in self.escalation.tiers),
                      _four(self.escalation.renotify_s))


def _four(values: list[float]) -> tuple[float, float, float, float]:
    a, b, c, d = values
    return (a, b, c, d)


# --- loading ---------------------------------------------------------------------------

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _type_name(tp: Any) -> str:
    if is_dataclass(tp):
        return "a table"
    if get_origin(tp) is list:
        return "a list"
    return _TYPE_NAMES.get(tp, str(tp))


def _convert(value: Any, tp: Any, path: str, meta: dict[str, Any],
             problems: list[tuple[str, str]]) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return _convert(value, args[0], path, meta, problems)
    if origin is list:
        (item_tp,) = get_args(tp)
        if not isinstance(value, list):
            problems.append((path, f"expected {_type_name(tp)}, got {_show(value)}"))
            return []
        return [_convert(v, item_tp, f"{path}[{i}]", {}, problems) for i, v in enumerate(value)]
    if is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append((path, f"expected a table, got {_show(value)}"))
            return None
        return _build(tp, value, path, problems)
    ok = isinstance(value, tp) and not (tp in (int, float) and isinstance(value, bool))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        problems.append((path, f"expected {_type_name(tp)}, got {_show(value)}"))
        return value
    if "choices" in meta and value not in meta["choices"]:
        problems.append((path, f"{value!r} is not one of: {', '.join(meta['choices'])}"))
    if "min" in meta and value < meta["min"]:
        problems.append((path, f"{value} is below the minimum {meta['min']}"))
    if "max" in meta and value > meta["max"]:
        problems.append((path, f"{value} is above the maximum {meta['max']}"))
    if "pattern" in meta and not meta["pattern"].match(value):
        problems.append((path, f"{value!r} is not a valid id (letters, digits, _ . : - ; "
                               "up to 64, starting with a letter or digit)"))
    return value


def _show(value: Any) -> str:
    kind = {dict: "a table", list: "a list", bool: "a boolean", str: "a string",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text}" if len(text) <= 40 and not isinstance(value, dict | list) else kind


def _build(cls: type, data: dict[str, Any], path: str,
           problems: list[tuple[str, str]]) -> Any:
    hints = get_type_hints(cls)
    declared = {f.name: f for f in fields(cls) if not f.metadata.get("internal")}
    prefix = f"{path}." if path else ""
    for key in data:
        if key not in declared:
            close = [k for k in declared if k.replace("_", "") == key.replace("_", "").lower()]
            hint = f"; did you mean {close[0]!r}?" if close else \
                f"; known keys: {', '.join(declared)}"
            problems.append((f"{prefix}{key}", f"unknown key{hint}"))
    kwargs: dict[str, Any] = {}
    for name, f in declared.items():
        tp = hints[name]
        if name in data:
            kwargs[name] = _convert(data[name], tp, f"{prefix}{name}", dict(f.metadata), problems)
        elif is_dataclass(tp) and f.default is MISSING and f.default_factory is MISSING:
            # A section with every field defaulted may be left out of the file.
            kwargs[name] = _build(tp, {}, f"{prefix}{name}", problems)
        elif f.default is MISSING and f.default_factory is MISSING:
            problems.append((f"{prefix}{name}", f"required: {f.metadata.get('doc', '')}"))
            kwargs[name] = None
    try:
        return cls(**kwargs)
    except TypeError:  # only reached with problems already recorded
        return None


# systemd's LoadCredential (systemd/anxin.service) copies each file of CREDENTIAL_SOURCES into
# UNIT_CREDENTIALS for the service alone. The config names the copies; a technician's command
# run outside the unit (check-config, devices discover, as root) reads the sources instead.
UNIT_CREDENTIALS = Path("/run/credentials/anxin.service")
CREDENTIAL_SOURCES = Path("/etc/anxin/credentials")


def credential_path(path: Path) -> Path:
    """`path`, or the LoadCredential source it was copied from when read outside the unit."""
    if path.is_relative_to(UNIT_CREDENTIALS) and not path.exists() \
            and not os.environ.get("CREDENTIALS_DIRECTORY"):
        return CREDENTIAL_SOURCES / path.relative_to(UNIT_CREDENTIALS)
    return path


def read_credential(path: Path) -> bytes:
    """A secret file's bytes without a trailing newline; OSError names the file.

    Outside the unit its source is root-only: the error then says to use sudo."""
    p = credential_path(path)
    try:
        return p.read_bytes().rstrip(b"\r\n")
    except PermissionError as e:
        raise PermissionError(e.errno, f"{e.strerror} (a root-only credential: run the "
                                       "command with sudo)", str(p)) from None


def _read_secret(t: HotlineTarget, base: Path) -> tuple[bytes | None, str | None]:
    given = [k for k in ("secret", "secret_file", "secret_env") if getattr(t, k)]
    if len(given) != 1:
        return None, ("give exactly one of secret, secret_file, secret_env"
                      + (f" (got {', '.join(given)})" if given else ""))
    if t.secret is not None:
        return t.secret.encode(), None
    if t.secret_file is not None:
        p = credential_path(base / t.secret_file)
        try:
            return read_credential(p), None
        except OSError as e:
            return None, f"cannot read secret_file {str(p)!r}: {e.strerror}"
    value = os.environ.get(t.secret_env or "")
    if not value:
        return None, f"environment variable {t.secret_env} is not set"
    return value.encode(), None


def is_loopback(host: str) -> bool:
    """True for this box itself: localhost, 127.0.0.0/8, ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _plaintext_problem(t: HotlineTarget, url: str) -> str | None:
    """Why `url` may not be used, if it is plain text to another host than this box."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "mqtt") or not parts.hostname or t.allow_plaintext \
            or is_loopback(parts.hostname):
        return None
    tls = "https" if parts.scheme == "http" else "mqtts"
    return (f"{url!r} is unencrypted to {parts.hostname}: use {tls}:// (TLS), so names, "
            "addresses and conditions cannot be read on the way; only if the link runs inside "
            "an encrypted tunnel (a VPN, an operator's private APN) set allow_plaintext = true "
            "on this target")


def dc09_key(t: HotlineTarget, base: Path) -> tuple[bytes | None, str | None]:
    """A dc09 target's AES key (None without encryption), or the problem reading it."""
    if t.key is not None and t.key_file is not None:
        return None, "give key or key_file, not both"
    if t.key_file is not None:
        try:
            key = read_credential(base / t.key_file)
        except OSError as e:
            return None, f"cannot read key_file {str(e.filename)!r}: {e.strerror}"
    elif t.key is not None:
        key = t.key.encode()
    else:
        return None, None
    if len(key) not in (16, 24, 32):
        return None, f"the AES key must be 16, 24 or 32 characters, not {len(key)}"
    return key, None


def _check_dc09(t: HotlineTarget, path: str, base: Path,
                problems: list[tuple[str, str]]) -> None:
    if not t.host:
        problems.append((f"{path}.host", "a dc09 target needs the receiver's host"))
    if t.port is None:
        problems.append((f"{path}.port", "a dc09 target needs the receiver's port"))
    if not t.account or not re.fullmatch(r"[0-9A-Fa-f]{3,16}", t.account):
        problems.append((f"{path}.account", "the account must be 3-16 hex digits"))
    if t.receiver is not None and not re.fullmatch(r"[0-9A-Fa-f]{1,6}", t.receiver):
        problems.append((f"{path}.receiver", "the receiver must be 1-6 hex digits"))
    if not re.fullmatch(r"[0-9A-Fa-f]{1,6}", t.line):
        problems.append((f"{path}.line", "the line must be 1-6 hex digits"))
    key, err = dc09_key(t, base)
    if err:
        problems.append((f"{path}.key", err))
    elif key is None and t.host and not is_loopback(t.host) and not t.allow_plaintext:
        problems.append((f"{path}.key", f"DC-09 to {t.host} without AES encryption: alerts "
                         "would cross the network readable and forgeable; set key_file (the "
                         "receiver's AES key), or, only inside an encrypted tunnel (a VPN, an "
                         "operator's private APN), allow_plaintext = true"))


def _cross_check(cfg: Config, problems: list[tuple[str, str]]) -> None:
    try:
        ZoneInfo(cfg.gateway.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a directory
        problems.append(("gateway.timezone", f"unknown time zone {cfg.gateway.timezone!r} "
                                             "(use an IANA name such as Asia/Shanghai)"))
    url = cfg.mqtt.url
    if url != "embedded":
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            problems.append(("mqtt.url", f"{url!r} is not mqtt://host[:port], mqtts://host[:port]"
                                         " or \"embedded\""))
    if cfg.mqtt.password and cfg.mqtt.password_file:
        problems.append(("mqtt.password", "give password or password_file, not both"))

    ids: dict[str, int] = {}
    topics: dict[str, int] = {}
    for i, d in enumerate(cfg.devices):
        if d is None:
            continue
        path = f"devices[{i}]"
        if d.id in ids:
            problems.append((f"{path}.id", f"duplicate id {d.id!r} (also devices[{ids[d.id]}])"))
        ids.setdefault(d.id, i)
        if d.topic in topics:
            problems.append((f"{path}.topic", f"topic {d.topic!r} is already used by "
                                              f"devices[{topics[d.topic]}]"))
        topics.setdefault(d.topic, i)
        if any(c in d.topic for c in "+#") or not d.topic or d.topic.startswith("/"):
            problems.append((f"{path}.topic", f"{d.topic!r} must be a plain topic without "
                                              "wildcards or a leading /"))
        model = d.catalogue_model()
        if model is None and (problem := d.model_problem()) is not None:
            problems.append((f"{path}.{problem[0]}", problem[1]))
        if d.resident is not None and d.resident not in {r.name for r in cfg.home.residents
                                                           if r is not None}:
            problems.append((f"{path}.resident", f"no resident named {d.resident!r} in "
                                                  "[[home.residents]]"))
        if model is None:
            pass
        elif model.source != d.source:
            problems.append((f"{path}.source", f"model {d.model!r} is read by the "
                                               f"{model.source!r} adapter, not {d.source!r}"))
    zones: dict[int, str] = {}
    for i, d in enumerate(cfg.devices):
        if d is None:
            continue
        zone = d.zone or i + 1
        if zone in zones:
            problems.append((f"devices[{i}].zone", f"zone {zone} is already {zones[zone]}'s"))
        zones.setdefault(zone, d.id)
    for j, r in enumerate(cfg.home.residents):
        if (r is not None and r.heart_rate_low_bpm is not None
                and r.heart_rate_high_bpm is not None
                and r.heart_rate_low_bpm + 10 > r.heart_rate_high_bpm):
            problems.append((f"home.residents[{j}].heart_rate_high_bpm",
                             f"must be at least 10 above heart_rate_low_bpm "
                             f"({r.heart_rate_low_bpm:g})"))
    for j, c in enumerate(cfg.home.contacts):
        if c is not None and not _PHONE.match(c.phone):
            problems.append((f"home.contacts[{j}].phone", f"{c.phone!r} is not a phone number "
                             "(digits, optionally a leading + and spaces or dashes, e.g. "
                             "13800000000 or +86 138 0000 0000)"))
        if c is not None and not c.name.strip():
            problems.append((f"home.contacts[{j}].name", "empty: the operator needs a name to "
                                                         "ask for"))
    for j, dev in enumerate(cfg.alerts.cancel_devices):
        if dev not in ids:
            problems.append((f"alerts.cancel_devices[{j}]", f"no device with id {dev!r}"))
    sos_capable = {d.id for d in cfg.devices if d is not None and (m := d.catalogue_model())
                   is not None and "sos" in m.classes}
    contacts = {d.id for d in cfg.devices if d is not None and (m := d.catalogue_model())
                is not None and "contact" in m.classes}
    for j, dev in enumerate(cfg.activity.entrance_doors or []):
        if dev not in contacts:
            problems.append((f"activity.entrance_doors[{j}]", f"{dev!r} is not a configured "
                             "door contact"))
    for j, dev in enumerate(cfg.self_test.buttons or []):
        if dev not in sos_capable:
            problems.append((f"self_test.buttons[{j}]", f"{dev!r} is not a configured alarm "
                             "button" if dev not in ids else f"{dev!r} has no alarm button"))
    names: set[str] = set()
    for i, t in enumerate(cfg.hotline):
        if t is None:
            continue
        path = f"hotline[{i}]"
        if t.kind == "dc09":
            _check_dc09(t, path, Path(cfg.base_dir), problems)
        else:
            parts = urlsplit(t.url or "")
            schemes = ("mqtt", "mqtts") if t.kind == "mqtt" else ("http", "https")
            if parts.scheme not in schemes or not parts.hostname:
                problems.append((f"{path}.url", f"{t.url!r} is not a {' or '.join(schemes)} "
                                                f"URL (kind = {t.kind!r})"))
            elif (problem := _plaintext_problem(t, t.url or "")) is not None:
                problems.append((f"{path}.url", problem))
        if t.kind != "dc09":  # DC-09 has its own (optional) AES key instead
            _, err = _read_secret(t, Path(cfg.base_dir))
            if err:
                problems.append((f"{path}.secret", err))
        name = cfg.target_name(i)
        if name in names:
            problems.append((f"{path}.name", f"duplicate hotline name {name!r}"))
        names.add(name)
        if t.kind == "sms" and not (t.to and re.fullmatch(r"\+?[0-9]{5,20}", t.to)):
            problems.append((f"{path}.to", "an sms target needs the phone number to reach, "
                                           "e.g. +8613800000000"))
        if t.feedback_url is not None:
            fb = urlsplit(t.feedback_url)
            if t.kind != "webhook":
                problems.append((f"{path}.feedback_url", "only a webhook target has a feedback "
                                                         "feed"))
            elif fb.scheme not in ("http", "https") or not fb.hostname:
                problems.append((f"{path}.feedback_url",
                                 f"{t.feedback_url!r} is not an http(s) URL"))
            elif (problem := _plaintext_problem(t, t.feedback_url)) is not None:
                problems.append((f"{path}.feedback_url", problem))
    esc = cfg.escalation
    for key, values in [("escalation.renotify_s", esc.renotify_s),
                        *[(f"escalation.tiers[{i}].after_s", t.after_s)
                          for i, t in enumerate(esc.tiers) if t is not None]]:
        if len(values) != 4 or any(v < 0 for v in values):
            problems.append((key, "give 4 numbers >= 0, one per severity 1..4 "
                                  "(e.g. [60, 300, 1800, 0])"))
    told: set[str] = set()
    for i, tier in enumerate(esc.tiers):
        if tier is None:
            continue
        if not tier.targets:
            problems.append((f"escalation.tiers[{i}].targets", "a tier needs at least one "
                                                               "target"))
        for j, name in enumerate(tier.targets):
            if name not in names:
                problems.append((f"escalation.tiers[{i}].targets[{j}]",
                                 f"no [[hotline]] target named {name!r} (names: "
                                 f"{', '.join(sorted(names)) or 'none'})"))
            told.add(name)
    if esc.tiers:
        for name in sorted(names - told):
            problems.append(("escalation.tiers", f"[[hotline]] target {name!r} is in no tier: "
                                                 "it would never be told"))


def parse(data: dict[str, Any], *, base_dir: str = ".", source: str = "") -> Config:
    """Build a Config from parsed TOML, or raise ConfigError listing every problem."""
    problems: list[tuple[str, str]] = []
    cfg = _build(Config, data, "", problems)
    if cfg is not None:
        cfg = Config(**{f.name: getattr(cfg, f.name) for f in fields(Config)
                        if f.name != "base_dir"}, base_dir=base_dir)
        if not problems:
            _cross_check(cfg, problems)
        else:
            # Report what can still be checked (an unknown model beside an unknown key)
            # so one run of check-config lists everything; a value already reported as
            # missing or mistyped may stop the checks part-way, which is fine.
            with contextlib.suppress(TypeError, AttributeError):
                _cross_check(cfg, problems)
    if problems:
        raise ConfigError(problems, source)
    return cfg


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML config file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError([("(file)", f"cannot read {str(p)!r}: {e.strerror}")], str(p)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError([("(file)", f"not UTF-8 text: {e}")], str(p)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([("(file)", f"not valid TOML: {e}")], str(p)) from None
    return parse(data, base_dir=str(p.resolve().parent), source=str(p))


def demo_path() -> Path:
    """The demo home's config shipped inside the package."""
    return Path(__file__).with_name("defaults") / "demo.toml"
