"""The `anxin` command as a user types it: run, sim and quarantine, in real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from gateway.cli import main
from gateway.config import demo_path

ANXIN = [sys.executable, "-m", "gateway.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def config(tmp: Path, broker_port: int, base: str = "z2m-cli") -> Path:
    """The demo home against a given broker, its store under `tmp`, its Zigbee2MQTT topics
    under `base` (tests share one Mosquitto: each uses its own topics)."""
    text = demo_path().read_text(encoding="utf-8")
    text = text.replace('url = "embedded"', f'url = "mqtt://127.0.0.1:{broker_port}"\n'
                                            f'zigbee2mqtt_base_topic = "{base}"')
    text = text.replace('topic = "zigbee2mqtt/', f'topic = "{base}/')
    text = text.replace('topic = "anxin/sensor/', f'topic = "{base}-native/')
    text = text.replace(f'zigbee2mqtt_base_topic = "{base}"',
                        f'zigbee2mqtt_base_topic = "{base}"\nnative_base_topic = "{base}-native"')
    text = text.replace('data_dir = "./var/demo"', f'data_dir = "{tmp / "data"}"')
    path = tmp / "anxin.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_run_with_a_bad_config_explains_exits_2_and_starts_nothing(tmp_path):
    cfg = config(tmp_path, 1).read_text(encoding="utf-8").replace('model = "HS1SA"',
                                                                  'model = "HS9SA"')
    bad = tmp_path / "bad.toml"
    bad.write_text(cfg, encoding="utf-8")
    r = subprocess.run([*ANXIN, "run", "--config", str(bad)], capture_output=True, text=True,
                       timeout=30, env=ENV, check=False)
    assert r.returncode == 2
    assert "devices[0].model: unknown model 'HS9SA'" in r.stderr
    assert not (tmp_path / "data").exists()


def test_sim_publishes_a_scenario_and_exits_0(tmp_path, mosquitto):
    host, port = mosquitto
    got: list[tuple[str, bytes]] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda _c, _u, m: got.append((m.topic, m.payload))
    sub.connect(host, port)
    sub.subscribe("z2m-sim/bedside_sos", qos=1)
    sub.loop_start()
    try:
        time.sleep(0.2)
        r = subprocess.run([*ANXIN, "sim", "--broker", f"mqtt://{host}:{port}", "--config",
                            str(config(tmp_path, port, "z2m-sim")), "--scenario", "sos_press",
                            "--speed", "20"], capture_output=True, text=True, timeout=30,
                           env=ENV, check=False)
        time.sleep(0.3)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert r.returncode == 0, r.stderr
    assert "scenario sos_press" in r.stdout and "sos-bedside" in r.stdout
    actions = [json.loads(p).get("action") for t, p in got]
    # hello (whole state, no action), then two presses each reset to ""
    assert actions == [None, "emergency", "", "emergency", ""]


def test_sim_with_an_unknown_scenario_exits_2(tmp_path, capsys):
    assert main(["sim", "--broker", "mqtt://127.0.0.1:1", "--config",
                 str(config(tmp_path, 1)), "--scenario", "nope"]) == 2
    assert "smoke_kitchen" in capsys.readouterr().err  # lists what exists


def test_quarantine_lists_what_was_kept_and_why(tmp_path, mosquitto, capsys):
    host, port = mosquitto
    cfg = config(tmp_path, port, "z2m-quarantine")
    gw = subprocess.Popen([*ANXIN, "run", "--config", str(cfg)], stderr=subprocess.PIPE,
                          text=True, env=ENV)
    try:
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect(host, port)
        pub.loop_start()
        db = tmp_path / "data" / "anxin.db"
        deadline = time.monotonic() + 20
        # publish until the gateway is subscribed and has written the quarantine
        while time.monotonic() < deadline:
            pub.publish("z2m-quarantine/attic_smoke", b'{"smoke": false}', qos=1).wait_for_publish()
            pub.publish("z2m-quarantine/kitchen_smoke", b'{"smoke": "maybe"}',
                        qos=1).wait_for_publish()
            time.sleep(0.3)
            if db.exists() and main(["quarantine", "--config", str(cfg), "--json"]) == 0:
                rows = json.loads(capsys.readouterr().out or "[]")
                if len(rows) == 2:
                    break
        pub.loop_stop()
        pub.disconnect()
    finally:
        gw.terminate()
        _, err = gw.communicate(timeout=15)
    assert gw.returncode == 0, err
    assert "Traceback" not in err
    by_topic = {r["topic"]: r for r in rows}
    assert by_topic["z2m-quarantine/attic_smoke"]["category"] == "unknown_device"
    assert by_topic["z2m-quarantine/kitchen_smoke"]["category"] == "bad_payload"
    assert "smoke" in by_topic["z2m-quarantine/kitchen_smoke"]["reason"]
    assert by_topic["z2m-quarantine/attic_smoke"]["count"] >= 1
    assert main(["quarantine", "--config", str(cfg)]) == 0
    assert "[unknown_device]" in capsys.readouterr().out


def test_status_shows_health_at_a_glance(tmp_path, mosquitto, capsys):
    _, port = mosquitto
    cfg = config(tmp_path, port, "z2m-status")  # its centre (127.0.0.1:9000) is not there
    gw = subprocess.Popen([*ANXIN, "run", "--config", str(cfg)], stderr=subprocess.PIPE,
                          text=True, env=ENV)
    status = tmp_path / "data" / "status.json"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if status.exists() and json.loads(status.read_text())["path_down_since"]:
                break
            time.sleep(0.2)
        assert main(["status", "--config", str(cfg)]) == 1  # something is wrong ...
        out = capsys.readouterr().out
        assert "✓ MQTT broker connected" in out
        assert "✗ path to the centre: DOWN since" in out  # ... and it says what
        assert "10 configured" in out
    finally:
        gw.terminate()
        gw.communicate(timeout=15)
    # a status nobody has refreshed for a while means the gateway is not running
    st = json.loads(status.read_text())
    st["updated_at"] -= 60
    assert st["home_state"]["mode"] == "occupied"
    st["home_state"] = {"mode": "away", "since": st["updated_at"] - 3600, "away_key": True}
    st["routine"] = {"day": "2026-11-22", "movements": 120, "expected": 250, "ratio": 0.48,
                     "score": 4.1}
    status.write_text(json.dumps(st))
    assert main(["status", "--config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "NOT RUNNING" in out and "home: away (away key) since" in out
    assert "routine 2026-11-22: 120 movements of 250 expected (48%), score 4.1" in out
