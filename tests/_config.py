"""A test gateway's config file: its own topics on the shared test broker, one home, the
reference hotline as its centre. Each test adds residents, devices and sections."""

from __future__ import annotations

from pathlib import Path

SECRET = "e2e-secret"


def write_home(tmp: Path, broker: int, hport: int, gid: str, body: str, *,
               address: str = "测试路 9 号") -> Path:
    """`tmp`/anxin.toml for gateway `gid` (home `home-<gid>`, Zigbee2MQTT topics under `gid`,
    native ones under `<gid>-native`) with `body` (residents, devices, sections) and the
    hotline at 127.0.0.1:`hport`."""
    path = tmp / "anxin.toml"
    path.write_text(f"""
[gateway]
id = "{gid}"
data_dir = "./data"

[mqtt]
url = "mqtt://127.0.0.1:{broker}"
zigbee2mqtt_base_topic = "{gid}"
native_base_topic = "{gid}-native"

[home]
id = "home-{gid}"
address = "{address}"
{body}
[[hotline]]
url = "http://127.0.0.1:{hport}/alerts"
secret = "{SECRET}"
""", encoding="utf-8")
    return path
