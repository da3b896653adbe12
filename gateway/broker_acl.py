"""Mosquitto's access list for a home: each publisher may write only what is its own.

`anxin broker-acl --config …` prints it; install it as Mosquitto's `acl_file` beside a
`password_file` with one user per line below (`mosquitto_passwd`), and
`allow_anonymous false` (systemd/mosquitto-anxin.conf). With it a spoofed smoke alarm needs
Zigbee2MQTT's credentials, and a native device's credentials let it speak only for itself:

- **the gateway** (`[mqtt] username`, default `anxin-gateway`) reads every device topic and
  Zigbee2MQTT's bridge, and is the only one that may write the home's speaker topic and the
  Home Assistant discovery/state topics;
- **Zigbee2MQTT** (`zigbee2mqtt`) writes its own base topic (every Zigbee device, and its
  bridge) and reads its `…/set` commands;
- **each anxin-native device** (user = its device id) writes its own topic, its
  `/availability`, and the raw streams its model sends (`/imu`, `/bcg`), and nothing else;
  an intercom also reads its command topic `<topic>/set`, which only the gateway writes (a
  device able to write it could ring itself, or fake the centre's look-in);
- **the speaker** (`speaker`) reads the speaker topic.

Mosquitto denies whatever a user's lines do not allow, so nothing else can publish to the
gateway's command topics, and a user not listed can do nothing at all.
"""

from __future__ import annotations

from devices.adapters.native import COMMAND_SUFFIX, STREAMS
from devices.catalogue import find_model
from gateway.config import Config, DeviceEntry

GATEWAY_USER = "anxin-gateway"
Z2M_USER = "zigbee2mqtt"
SPEAKER_USER = "speaker"


def users(cfg: Config) -> list[str]:
    """Every broker user the home needs, the gateway's first."""
    native = [d.id for d in cfg.devices if d.source == "anxin"]
    out = [cfg.mqtt.username or GATEWAY_USER]
    if any(d.source == "zigbee2mqtt" for d in cfg.devices):
        out.append(Z2M_USER)
    out += native
    if cfg.home.speaker_topic:
        out.append(SPEAKER_USER)
    return out


def acl_text(cfg: Config) -> str:
    """The acl_file for this home's broker."""
    z2m, native = cfg.mqtt.zigbee2mqtt_base_topic, cfg.mqtt.native_base_topic
    gateway = cfg.mqtt.username or GATEWAY_USER
    lines = [f"# anxin: broker access for gateway {cfg.gateway.id}, home {cfg.home.id}",
             "# (written by `anxin broker-acl`; what a user's lines do not allow is denied)",
             "", f"user {gateway}", f"topic read {z2m}/#", f"topic read {native}/#"]
    for d in cfg.devices:
        if not (d.topic.startswith(z2m + "/") or d.topic.startswith(native + "/")):
            lines += [f"topic read {d.topic}", f"topic read {d.topic}/#"]
    if cfg.home.speaker_topic:
        lines.append(f"topic write {cfg.home.speaker_topic}")
    lines += [f"topic write {d.topic}{COMMAND_SUFFIX}" for d in cfg.devices if _commanded(d)]
    if cfg.home_assistant.enabled:
        lines += [f"topic write {cfg.home_assistant.discovery_prefix}/#",
                  f"topic write {cfg.home_assistant.state_prefix}/#"]
    if any(d.source == "zigbee2mqtt" for d in cfg.devices):
        lines += ["", f"user {Z2M_USER}", f"topic readwrite {z2m}/#"]
    for d in cfg.devices:
        if d.source == "anxin":
            lines += ["", f"user {d.id}", *(f"topic write {t}" for t in _written_by(d))]
            if _commanded(d):
                lines.append(f"topic read {d.topic}{COMMAND_SUFFIX}")
    if cfg.home.speaker_topic:
        lines += ["", f"user {SPEAKER_USER}", f"topic read {cfg.home.speaker_topic}"]
    return "\n".join(lines) + "\n"


def _written_by(d: DeviceEntry) -> list[str]:
    """The topics a native device publishes: its own, its availability, its model's streams."""
    model = find_model(d.model)
    streams = [sub for sub, (kind, _) in STREAMS.items()
               if model is not None and model.expose_for_kind(kind)]
    return [d.topic, f"{d.topic}/availability", *(f"{d.topic}/{sub}" for sub in streams)]


def _commanded(d: DeviceEntry) -> bool:
    """Whether the gateway sends this device commands on `<topic>/set` (the intercom)."""
    model = find_model(d.model)
    return d.source == "anxin" and model is not None and "intercom" in model.classes
