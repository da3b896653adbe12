"""Discovery from Zigbee2MQTT's retained bridge/devices: known, commissioned, or not.

The fixture is shaped as Zigbee2MQTT publishes bridge/devices (the documented format: a
coordinator, devices with a definition and exposes, one still being interviewed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from gateway import config as config_module
from gateway.cli import main
from gateway.discover import DiscoveryError, parse_bridge_devices
from tests._mosquitto import running_mosquitto
from tests.test_cli import config

FIXTURE = (Path(__file__).parent / "fixtures" / "z2m_bridge_devices.json").read_bytes()


def test_paired_devices_against_catalogue_and_config():
    found = {f.friendly_name: f for f in parse_bridge_devices(
        FIXTURE, "zigbee2mqtt", {"zigbee2mqtt/kitchen_smoke": "smoke-kitchen"})}
    assert "Coordinator" not in found
    smoke = found["kitchen_smoke"]
    assert (smoke.model, smoke.in_catalogue, smoke.configured_as) == ("HS1SA", True,
                                                                      "smoke-kitchen")
    door = found["hall_door"]
    assert (door.in_catalogue, door.configured_as) == (True, None)
    leak = found["0xa4c138f00d1e2f3a"]
    assert not leak.in_catalogue
    assert leak.exposes == ("water_leak", "battery_low", "tamper")  # nested features too
    assert (leak.mapped_classes, leak.usable) == (("water_leak",), True)
    new = found["new_sensor"]
    assert (new.model, new.interviewed, new.in_catalogue) == (None, False, False)


@pytest.mark.parametrize("payload", [b"{", b'{"a": 1}'])
def test_unreadable_bridge_devices_says_why(payload):
    with pytest.raises(DiscoveryError, match="bridge/devices"):
        parse_bridge_devices(payload, "zigbee2mqtt", {})


def test_discover_reads_the_retained_list_from_the_broker(tmp_path, mosquitto, capsys):
    _, port = mosquitto
    cfg = config(tmp_path, port, "z2m-disc")
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        pub.publish("z2m-disc/bridge/devices", FIXTURE, qos=1, retain=True).wait_for_publish()
        assert main(["devices", "discover", "--config", str(cfg), "--wait", "3"]) == 0
        out = capsys.readouterr().out
        assert "kitchen_smoke" in out and "configured as smoke-kitchen" in out
        assert "TS0207_water_leak_detector" in out and "mapped from exposes" in out
        assert "exposes: water_leak, battery_low, tamper" in out
        assert "mapped from its exposes as water_leak" in out
        assert "interview not finished" in out
        assert main(["devices", "discover", "--config", str(cfg), "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert {r["friendly_name"] for r in rows} == {"kitchen_smoke", "hall_door",
                                                     "0xa4c138f00d1e2f3a", "new_sensor"}
    finally:
        pub.publish("z2m-disc/bridge/devices", b"", qos=1, retain=True).wait_for_publish()
        pub.loop_stop()
        pub.disconnect()


def test_discover_without_zigbee2mqtt_says_so(tmp_path, mosquitto, capsys):
    _, port = mosquitto
    cfg = config(tmp_path, port, "z2m-none")
    assert main(["devices", "discover", "--config", str(cfg), "--wait", "0.5"]) == 1
    assert "is Zigbee2MQTT running" in capsys.readouterr().err


def test_discover_logs_in_like_the_gateway_with_the_units_credential(tmp_path, monkeypatch,
                                                                     capsys):
    """A Pi install's broker lets nobody in anonymously, and the config names the password as
    the unit's LoadCredential copy; a technician's `sudo anxin devices discover` reads its
    source instead, and a wrong password says it could not log in."""
    unit, sources = tmp_path / "run-credentials", tmp_path / "etc-credentials"
    sources.mkdir()
    (sources / "mqtt-password").write_text("pw-gateway\n")
    monkeypatch.setattr(config_module, "UNIT_CREDENTIALS", unit)
    monkeypatch.setattr(config_module, "CREDENTIAL_SOURCES", sources)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    passwd = tmp_path / "passwd"
    for i, (user, pw) in enumerate((("anxin-gateway", "pw-gateway"), ("z2m", "pw-z2m"))):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(passwd),
                        user, pw], check=True, capture_output=True)
    with running_mosquitto(listener_options=f"allow_anonymous false\npassword_file {passwd}"
                           ) as (host, port):
        cfg = config(tmp_path, port, "z2m-auth")
        text = cfg.read_text().replace(
            "[mqtt]\n", f'[mqtt]\nusername = "anxin-gateway"\n'
                        f'password_file = "{unit / "mqtt-password"}"\n', 1)
        cfg.write_text(text)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.username_pw_set("z2m", "pw-z2m")
        pub.connect(host, port)
        pub.loop_start()
        try:
            pub.publish("z2m-auth/bridge/devices", FIXTURE, qos=1,
                        retain=True).wait_for_publish()
            assert main(["devices", "discover", "--config", str(cfg), "--wait", "3"]) == 0
            assert "kitchen_smoke" in capsys.readouterr().out
            (sources / "mqtt-password").write_text("wrong\n")
            assert main(["devices", "discover", "--config", str(cfg), "--wait", "3"]) == 1
            assert "cannot reach or log in to the broker" in capsys.readouterr().err
        finally:
            pub.loop_stop()
            pub.disconnect()


def test_a_missing_credential_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "UNIT_CREDENTIALS", tmp_path / "unit")
    monkeypatch.setattr(config_module, "CREDENTIAL_SOURCES", tmp_path / "src")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(FileNotFoundError) as e:
        config_module.read_credential(tmp_path / "unit" / "mqtt-password")
    assert e.value.filename == str(tmp_path / "src" / "mqtt-password")
    # inside the unit, the copy is read where the config says
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "unit"))
    (tmp_path / "unit").mkdir()
    (tmp_path / "unit" / "mqtt-password").write_text("pw\r\n")
    assert config_module.read_credential(tmp_path / "unit" / "mqtt-password") == b"pw"
