"""The simulator: scenarios parse strictly, emulators speak what the adapters read, and every
built-in scenario makes the detection core do what the scenario says it should."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import aiomqtt
import numpy as np
import pytest

from alerts.manager import Change, Manager, ManagerConfig
from detectors.core import Core
from devices import bcg, imu
from devices.adapters import ADAPTERS
from devices.catalogue import CATALOGUE, find_model
from devices.registry import Device
from gateway.config import demo_path, load
from simulator.emulators import EVENT_KINDS, Emulator
from simulator.runner import describe, run, stream
from simulator.scenarios import ScenarioError, builtin_names, load_scenario, parse_scenario

START = 1_795_400_000.0
DEMO = load(demo_path())
DEVICES = DEMO.device_list()
BY_TOPIC = {d.topic: d for d in DEVICES}


def replay(scenario_name: str, window_s: float = 30.0) -> tuple[list[str], list[str]]:
    """Run a scenario through adapters, core and manager in virtual time.

    Returns the events sent to the hotline and the events cancelled.
    """
    scenario = load_scenario(scenario_name)
    core, manager = Core(), Manager(ManagerConfig(fall_cancel_window_s=window_s))
    sent: list[str] = []
    cancelled: list[str] = []

    def apply(changes):
        for alert, change in changes:
            if change is Change.RAISED:
                sent.append(alert.finding.event)
            elif change is Change.CANCELLED:
                cancelled.append(alert.finding.event)

    for timed in stream(DEVICES, scenario, START):
        now = START + timed.t
        apply(manager.tick(now))
        topic = timed.message.topic
        device = BY_TOPIC.get(topic) or BY_TOPIC[topic.rsplit("/", 1)[0]]
        model = find_model(device.model)
        for obs in ADAPTERS[device.source](device, model, topic, timed.message.payload, now):
            changes = manager.on_observation(obs, now)
            for finding in core.step(obs, now):
                changes += manager.on_finding(finding, now)
            apply(changes)
    for extra in range(int(scenario.duration_s + window_s) + 2):
        apply(manager.tick(START + extra))
    return sent, cancelled


def test_the_required_scenarios_are_built_in():
    assert {"quiet_day", "smoke_kitchen", "fall_bathroom", "fall_bathroom_cancel",
            "sos_press", "demo"} <= set(builtin_names())


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_scenario_does_what_it_expects_on_the_demo_home(name):
    scenario = load_scenario(name)
    sent, cancelled = replay(name)
    assert (sent, cancelled) == (list(scenario.expect.alerts), list(scenario.expect.cancelled))
    assert scenario.name in describe(scenario)


def test_demo_raises_its_smoke_alarm_within_a_minute():
    smoke = [s for s in load_scenario("demo").steps if s.kind == "smoke" and s.value]
    assert smoke and smoke[0].at < 60


def test_a_fall_cancelled_after_the_window_is_sent():
    # The same scenario with a window shorter than the resident's 8 s to cancel.
    sent, cancelled = replay("fall_bathroom_cancel", window_s=5.0)
    assert (sent, cancelled) == (["fall"], [])


# --- emulators speak what the adapters read --------------------------------------------------

SAMPLES = {
    "motion": [True, False], "contact": ["open", "closed"], "smoke": [True, False],
    "gas": [True, False], "water_leak": [True, False], "presence": [True, False],
    "in_bed": [True, False], "battery": [3, 100], "battery_low": [True, False],
    "link_quality": [0, 200], "tamper": [True, False], "test": [True, False],
    "trouble": [True, False], "temperature": [21.5], "heart_rate": [58], "vibration": [True],
    "respiration_rate": [14], "fall": ["fall", "suspected", "none"], "sos": [True],
    "cancel": [True], "checkin": [True], "intercom": ["call", "ended"],
    "away_mode": ["away", "home"], "intercom_request": ["R-1"],
    "snapshot": [{"ref": "media/1.jpg", "taken_at": START}],
}


@pytest.mark.parametrize("model", CATALOGUE, ids=[m.model for m in CATALOGUE])
def test_every_emulated_report_reads_back_as_itself(model):
    device = Device("d", "h", model.source, f"t/{model.model}", model.model, room="r")
    em = Emulator(device, model)
    adapt = ADAPTERS[model.source]
    for m in em.hello(START):
        obs = adapt(device, model, m.topic, m.payload, START)
        assert all(o.kind not in EVENT_KINDS for o in obs), "hello must not press a button"
    for expose in model.exposes:
        for kind in expose.kinds:
            if kind == "bcg":  # a block of samples, in the state as `bcg`: read back whole
                block = bcg.block_from_mapping({"rate_hz": 100, "t0": START,
                                                "signal": [2.0] * 100})
                (m,) = em.set(kind, bcg.observation_value(block), START)
                (got,) = [o for o in adapt(device, model, m.topic, m.payload, START)
                          if o.kind == "bcg"]
                assert np.allclose(bcg.block_from_value(got.value).signal, 2.0)
                continue
            if kind == "accel":  # a block of samples, in the state as `imu`: read back whole
                block = imu.make_block(50, START, np.ones((25, 3)))
                (m,) = em.set(kind, imu.observation_value(block), START)
                (got,) = [o for o in adapt(device, model, m.topic, m.payload, START)
                          if o.kind == "accel"]
                assert np.allclose(imu.block_from_value(got.value).acc, 1.0)
                continue
            for value in SAMPLES[kind]:
                first, *rest = em.set(kind, value, START)
                got = [(o.kind, o.value)
                       for o in adapt(device, model, first.topic, first.payload, START)]
                assert (kind, value) in got
                for m in rest:  # an action's reset to "" is not a second press
                    assert all(o.kind != kind
                               for o in adapt(device, model, m.topic, m.payload, START))


def test_z2m_state_reports_carry_the_whole_state():
    dev = next(d for d in DEVICES if d.id == "door-entrance")
    em = Emulator(dev, find_model(dev.model))
    em.set("battery", 80, START)
    (m,) = em.set("contact", "open", START)
    assert json.loads(m.payload) == {"contact": False, "battery": 80, "temperature": 22,
                                     "linkquality": 120}


# --- scenarios are checked strictly ----------------------------------------------------------

GOOD_STEP = {"at": 1, "room": "kitchen", "kind": "smoke", "value": True}


@pytest.mark.parametrize(("data", "message"), [
    ({"steps": [GOOD_STEP], "colour": "red"}, "colour: unknown key"),
    ({"steps": [{**GOOD_STEP, "kind": "smok"}]}, r"steps\[0\].kind: unknown kind 'smok'"),
    ({"steps": [{**GOOD_STEP, "value": "yes"}]}, r"steps\[0\].value: smoke: expected"),
    ({"steps": [{**GOOD_STEP, "at": -1}]}, r"steps\[0\].at: must be >= 0"),
    ({"steps": [{**GOOD_STEP, "at": "soon"}]}, r"steps\[0\].at: expected seconds"),
    ({"steps": [{"room": "kitchen", "kind": "smoke", "value": True}]}, r"steps\[0\].at: missing"),
    ({"steps": [{**GOOD_STEP, "device": "x"}]}, "room or device, not both"),
    ({"steps": [{**GOOD_STEP, "at": 5}, GOOD_STEP]}, "in order"),
    ({"steps": [{**GOOD_STEP, "at": 50}], "duration_s": 10}, "before the last step"),
    ({"steps": [GOOD_STEP], "expect": {"alert": []}}, "expect.alert: unknown key"),
])
def test_bad_scenarios_are_refused_by_key_path(data, message):
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(data, "my.toml")


def test_unknown_name_lists_the_builtin_ones(tmp_path):
    with pytest.raises(ScenarioError, match="smoke_kitchen"):
        load_scenario("smoke_in_the_attic")
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = [", encoding="utf-8")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(bad)


@pytest.mark.parametrize(("step", "message"), [
    ({"at": 1, "room": "attic", "kind": "smoke", "value": True}, "no configured device in room"),
    ({"at": 1, "device": "nope", "kind": "smoke", "value": True}, "no configured device 'nope'"),
    ({"at": 1, "device": "door-entrance", "kind": "smoke", "value": True}, "does not report"),
])
def test_steps_the_home_cannot_perform_are_refused_before_anything_is_sent(step, message):
    with pytest.raises(ScenarioError, match=message):
        stream(DEVICES, parse_scenario({"steps": [step]}), START)


# --- against a real broker ---------------------------------------------------------------

async def test_run_publishes_the_stream_in_order_on_mosquitto(mosquitto):
    host, port = mosquitto
    scenario = load_scenario("sos_press")
    # tests share one Mosquitto: this one's devices publish under their own topics
    devices = [dataclasses.replace(d, topic=f"sim-run/{d.topic}") for d in DEVICES]
    expected = [(t.message.topic, t.message.payload) for t in stream(devices, scenario, START)]
    got: list[tuple[str, bytes]] = []
    notes: list[str] = []
    async with aiomqtt.Client(host, port) as sub:
        await sub.subscribe("sim-run/#", qos=1)
        runner = asyncio.create_task(run(devices, scenario, f"mqtt://{host}:{port}",
                                         speed=20, on_event=lambda t, what: notes.append(what)))
        async with asyncio.timeout(15):
            async for msg in sub.messages:
                got.append((str(msg.topic), bytes(msg.payload)))
                if len(got) == len(expected):
                    break
        assert await runner == 0
    # native payloads carry the wall clock in ts: compare them without it
    def plain(items):
        return [(t, p if not t.startswith("sim-run/anxin/") or t.endswith("/availability")
                 else json.dumps({k: v for k, v in json.loads(p).items() if k != "ts"}))
                for t, p in items]
    assert plain(got) == plain(expected)
    assert len(notes) == 2 and "sos" in notes[0]


def test_scenario_files_in_the_tree_all_load():
    for path in (Path(__file__).parents[1] / "simulator" / "scenarios").glob("*.toml"):
        assert load_scenario(path).steps
