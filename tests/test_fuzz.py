"""Fuzzing the doors: every adapter, the raw block readers and the config loader take
malformed input with a clear error and nothing else (bench/fuzz.py runs a million)."""

from __future__ import annotations

import contextlib
import random
import tomllib
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.adapters import ADAPTERS
from devices.catalogue import CATALOGUE
from devices.observation import PayloadError
from devices.registry import Device
from gateway.config import ConfigError, parse
from tests import _fuzz

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=12)


def test_twenty_thousand_mutated_real_payloads_are_read_or_refused_with_a_reason():
    rng = random.Random(20261123)
    stream = _fuzz.payloads(rng)
    seen = Counter(_fuzz.check(*next(stream)) for _ in range(20_000))
    # both outcomes are common: the mutations are near misses, not noise
    assert seen["ok"] > 2_000 and seen["refused"] > 2_000, seen


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(model=st.sampled_from(CATALOGUE), msg=st.dictionaries(
    st.sampled_from(["occupancy", "contact", "smoke", "gas", "water_leak", "action",
                     "battery", "battery_low", "tamper", "linkquality", "presence", "fall",
                     "sos", "in_bed", "heart_rate", "imu", "bcg", "away_mode", "ts",
                     "fall_down_status", "test", "state"]) | st.text(max_size=8),
    JSON, max_size=6))
def test_any_json_object_on_any_model(model, msg):
    import json  # noqa: PLC0415

    dev = Device("d", "h", model.source, f"t/{model.model}", model.model, room="r")
    try:
        payload = json.dumps(msg).encode()
    except ValueError:
        return
    _fuzz.check(dev, model, dev.topic, payload)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), which=st.sampled_from(["imu", "bcg", "availability"]))
def test_any_bytes_on_any_topic(data, which):
    model = next(m for m in CATALOGUE if m.model == (
        "anxin-wearable-imu" if which == "imu" else "anxin-bed-sensor-raw"))
    dev = Device("d", "h", model.source, "t/d", model.model, room="r")
    _fuzz.check(dev, model, f"t/d/{which}", data)
    z2m = next(m for m in CATALOGUE if m.source == "zigbee2mqtt")
    zdev = Device("z", "h", "zigbee2mqtt", "z2m/z", z2m.model, room="r")
    with contextlib.suppress(PayloadError):
        ADAPTERS["zigbee2mqtt"](zdev, z2m, "z2m/z", data, 1.0)


GOOD = """
[gateway]
id = "gw-1"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[home]
id = "home-1"
[[home.residents]]
name = "张三"
[[devices]]
id = "smoke"
source = "zigbee2mqtt"
topic = "z2m/smoke"
model = "HS1SA"
[[hotline]]
url = "http://127.0.0.1:9000/alerts"
secret = "s"
"""


@settings(max_examples=300, deadline=None)
@given(section=st.sampled_from(["gateway", "mqtt", "home", "activity", "alerts", "web",
                                "maintenance", "self_test", "home_assistant"]),
       key=st.sampled_from(["id", "url", "port", "enabled", "timezone", "data_dir",
                            "day_limit_h", "away_after_min", "fall_cancel_window_s",
                            "residents", "devices", "digest_hour", "weekday", "x"])
       | st.text(max_size=10),
       value=JSON)
def test_the_config_loader_names_every_problem(section, key, value):
    data = tomllib.loads(GOOD)
    data.setdefault(section, {})
    if isinstance(data[section], dict):
        data[section][key] = value
    problems = None
    try:
        parse(data)
    except ConfigError as e:
        problems = e.problems
    assert problems is None or (problems and all(path and why for path, why in problems))
