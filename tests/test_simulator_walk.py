"""The simulated walk test: every configured device is triggered once, what it publishes is
what the adapters read as a passed walk test, and `anxin sim --walk-test` publishes it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest

from devices.adapters import ADAPTERS
from devices.catalogue import CATALOGUE, Model, find_model, model_from_exposes
from devices.observation import Observation
from devices.registry import Device
from devices.walktest import results
from gateway.cli import main
from gateway.config import demo_path, load
from simulator.emulators import Message
from simulator.runner import Timed
from simulator.scenarios import ScenarioError
from simulator.walk import REST, walk_test
from tests.test_cli import ANXIN, ENV, config

START = 1_795_400_000.0
DEMO = load(demo_path())
HOME = DEMO.device_list()
MODELS = [(d, e.catalogue_model()) for d, e in zip(HOME, DEMO.devices, strict=True)]


def observe(devices: list[tuple[Device, Model]], timed: list[Timed]) -> list[Observation]:
    """Every Observation the real adapters read from the stream, in order."""
    by_topic = {d.topic: (d, m) for d, m in devices}
    out: list[Observation] = []
    for item in timed:
        topic = item.message.topic
        device, model = by_topic.get(topic) or by_topic[topic.rsplit("/", 1)[0]]
        out += ADAPTERS[device.source](device, model, topic, item.message.payload,
                                       START + item.t)
    return out


def triggers(timed: list[Timed]) -> list[tuple[float, str]]:
    """(time, device id) of each trigger, from the notes."""
    return [(t.t, t.note.split(" ", 1)[0]) for t in timed
            if t.note and "back to rest" not in t.note]


def test_every_demo_device_is_triggered_once_in_config_order_a_gap_apart():
    timed = walk_test(MODELS, START, gap_s=3.0)
    assert triggers(timed) == [(3.0 * (n + 1), d.id) for n, d in enumerate(HOME)]
    # every device says hello before anything happens
    assert {t.message.topic for t in timed if t.t == 0} >= {f"{d.topic}/availability"
                                                            for d in HOME}
    assert [t.t for t in timed] == sorted(t.t for t in timed)


def test_the_demo_walk_test_passes_every_device_through_the_real_adapters():
    timed = walk_test(MODELS, START)
    got = {r.device: r for r in results(MODELS, observe(MODELS, timed), {})}
    assert [d for d, r in got.items() if not r.passed] == []
    assert got["door-entrance"].trigger == "contact=open"
    assert got["smoke-kitchen"].trigger == "test=true"  # the test button, not real smoke
    assert got["gas-kitchen"].trigger == "gas=true"  # HS1CG has no test button
    assert got["radar-bathroom"].trigger == "presence=true"
    assert got["pendant-wearable"].trigger == "sos=true"


def test_every_device_is_back_at_rest_when_the_walk_ends():
    last = {(o.device, o.kind): o.value for o in observe(MODELS, walk_test(MODELS, START))}
    held = {key: v for key, v in last.items() if key[1] in REST}
    assert held and all(v == REST[kind] for (_, kind), v in held.items()), held


def test_notes_say_what_the_technician_does():
    notes = [t.note for t in walk_test(MODELS, START) if t.note]
    assert "door-entrance (entrance): 开一下门/窗 open the door or window  [contact = 'open']" \
        in notes
    assert "door-entrance (entrance): back to rest  [contact = 'closed']" in notes
    # a button press is an event: nothing to put back
    assert not any(n.startswith("sos-bedside") and "back to rest" in n for n in notes)


@pytest.mark.parametrize("model", CATALOGUE, ids=[m.model for m in CATALOGUE])
def test_every_catalogue_model_passes_its_own_walk_test(model):
    device = Device("d", "h", model.source, f"walk/{model.model}", model.model, room="r")
    timed = walk_test([(device, model)], START)
    (r,) = results([(device, model)], observe([(device, model)], timed), {})
    assert r.passed, model.family


def test_a_model_mapped_from_exposes_is_walk_tested_too():
    model = model_from_exposes("ACME-DW1", ["contact", "battery", "linkquality"])
    assert find_model("ACME-DW1") is None
    device = Device("acme", "h", "zigbee2mqtt", "z2m/acme", "ACME-DW1", room="hall")
    timed = walk_test([(device, model)], START)
    (r,) = results([(device, model)], observe([(device, model)], timed), {})
    assert r.trigger == "contact=open"


def test_a_device_that_can_do_nothing_is_named_before_anything_is_made():
    pir = find_model("RTCGQ11LM")
    deaf = dataclasses.replace(pir, exposes=tuple(e for e in pir.exposes
                                                  if "motion" not in e.kinds))
    device = Device("pir-hall", "h", "zigbee2mqtt", "z2m/pir", "RTCGQ11LM", room="hall")
    with pytest.raises(ScenarioError, match=r"device pir-hall \(model RTCGQ11LM\).*motion"):
        walk_test([*MODELS, (device, deaf)], START)


def test_a_gap_must_be_positive():
    with pytest.raises(ScenarioError, match="gap_s"):
        walk_test(MODELS, START, gap_s=0)


# --- the command ----------------------------------------------------------------------------

def test_sim_walk_test_publishes_every_trigger_to_the_broker(tmp_path, mosquitto):
    host, port = mosquitto
    path = config(tmp_path, port, "z2m-walk")
    cfg = load(path)
    devices = [(d, e.catalogue_model()) for d, e in zip(cfg.device_list(), cfg.devices,
                                                        strict=True)]
    expected = walk_test(devices, START)
    got: list[Timed] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda _c, _u, m: got.append(Timed(0.0, Message(m.topic, m.payload)))
    sub.connect(host, port)
    sub.subscribe([("z2m-walk/#", 1), ("z2m-walk-native/#", 1)])
    sub.loop_start()
    try:
        time.sleep(0.2)
        r = subprocess.run([*ANXIN, "sim", "--broker", f"mqtt://{host}:{port}", "--config",
                            str(path), "--walk-test", "--speed", "40"], capture_output=True,
                           text=True, timeout=30, env=ENV, check=False)
        deadline = time.monotonic() + 5
        while len(got) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert r.returncode == 0, r.stderr
    assert "walk test: 10 device(s)" in r.stdout
    assert "door-entrance (entrance): 开一下门/窗 open the door or window" in r.stdout
    assert [m.message.topic for m in got] == [t.message.topic for t in expected]
    # what arrived is a passed walk test for every device
    assert all(x.passed for x in results(devices, observe(devices, got), {}))
    assert any(json.loads(m.message.payload).get("contact") is False for m in got)


@pytest.mark.parametrize("extra", [[], ["--scenario", "sos_press", "--walk-test"]])
def test_sim_needs_exactly_one_of_scenario_or_walk_test(tmp_path, capsys, extra):
    with pytest.raises(SystemExit) as e:
        main(["sim", "--broker", "mqtt://127.0.0.1:1", "--config", str(config(tmp_path, 1)),
              *extra])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--scenario" in err and "--walk-test" in err
    assert ("is required" if not extra else "not allowed with") in err
