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
- **each anxin-native device** (user = its device id) writes its own topic and the subtopics
  below it (`/availability`, `/imu`, `/bcg`) and nothing else;
- **the speaker** (`speaker`) reads the speaker topic.

Mosquitto denies whatever a user's lines do not allow, so nothing else can publish to the
gateway's command topics, and a user not listed can do nothing at all.
"""

from __future__ import annotations

from gateway.config import Config

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
    if cfg.home_assistant.enabled:
        lines += [f"topic write {cfg.home_assistant.discovery_prefix}/#",
                  f"topic write {cfg.home_assistant.state_prefix}/#"]
    if any(d.source == "zigbee2mqtt" for d in cfg.devices):
        lines += ["", f"user {Z2M_USER}", f"topic readwrite {z2m}/#"]
    for d in cfg.devices:
        if d.source == "anxin":
            lines += ["", f"user {d.id}", f"topic write {d.topic}", f"topic write {d.topic}/#"]
    if cfg.home.speaker_topic:
        lines += ["", f"user {SPEAKER_USER}", f"topic read {cfg.home.speaker_topic}"]
    return "\n".join(lines) + "\n"
