"""The anxin-native JSON adapter: the documented format, and refusals that name the problem."""

from __future__ import annotations

import json

import pytest

from devices.adapters import ADAPTERS
from devices.catalogue import CATALOGUE, find_model
from devices.observation import PayloadError
from devices.registry import Device

NOW = 1_795_400_000.0
adapt = ADAPTERS["anxin"]
PENDANT = Device("pendant", "home-1", "anxin", "anxin/sensor/pendant", "anxin-pendant",
                 room=None)
BED = Device("bed", "home-1", "anxin", "anxin/sensor/bed", "anxin-bed-sensor", room="bedroom")


def kv(device: Device, payload: bytes, topic: str | None = None) -> list[tuple[str, object]]:
    model = find_model(device.model)
    assert model is not None
    return [(o.kind, o.value) for o in adapt(device, model, topic or device.topic, payload, NOW)]


# Hand-written expectations for the native entries' fixtures (devices/fixtures/anxin-*.json).
FIXTURE_EXPECTED = {
    ("anxin-pendant", 0): [("battery", 87), ("fall", "fall")],
    ("anxin-pendant", 1): [("sos", True)],
    ("anxin-pendant", 2): [("battery", 64), ("battery_low", False), ("fall", "suspected")],
    ("anxin-bed-sensor", 0): [("in_bed", True), ("heart_rate", 62), ("respiration_rate", 15)],
    ("anxin-bed-sensor", 1): [("battery", 91), ("in_bed", False)],
    ("anxin-intercom", 0): [("intercom", "call")],
    ("anxin-intercom", 1): [("checkin", True)],
    ("anxin-intercom", 2): [("away_mode", "away")],
    ("anxin-intercom", 3): [("away_mode", "home")],
    ("anxin-intercom", 4): [("intercom_request", "01JDLOOKIN00000000000000AA"),
                            ("intercom", "answered")],
    ("anxin-intercom", 5): [("intercom_request", "01JDLOOKIN00000000000000AB"),
                            ("intercom", "declined")],
    ("anxin-intercom", 6): [("snapshot", {"ref": "https://media.centre.example/s/7f3a9c.jpg",
                                          "taken_at": 1795423447.5,
                                          "request_id": "01JDALERT000000000000000AC"})],
    ("anxin-intercom", 7): [("sos", True)],
    ("anxin-wearable-imu", 0): [("battery", 76), ("battery_low", False)],
    ("anxin-wearable-imu", 1): [("sos", True)],
    ("anxin-bed-sensor-raw", 0): [("in_bed", True)],
    ("anxin-bed-sensor-raw", 1): [("in_bed", False)],
}


def test_fixtures_map_as_written_down():
    seen = set()
    for model in CATALOGUE:
        if model.source != "anxin":
            continue
        dev = Device("d", "home-1", "anxin", "anxin/sensor/d", model.model, room=None)
        for i, case in enumerate(json.loads(model.fixture.read_text("utf-8"))["payloads"]):
            got = adapt(dev, model, dev.topic, json.dumps(case["payload"]).encode(), NOW)
            assert [(o.kind, o.value) for o in got] == FIXTURE_EXPECTED[(model.model, i)]
            seen.add((model.model, i))
    assert seen == set(FIXTURE_EXPECTED)


def test_documented_examples():
    assert kv(PENDANT, b'{"fall": "fall", "battery": 87, "ts": 1795423445.2}') == [
        ("battery", 87), ("fall", "fall")]
    assert kv(PENDANT, b'{"sos": true}') == [("sos", True)]
    assert kv(PENDANT, b'{"sos": false, "cancel": true}') == [("cancel", True)]
    assert kv(BED, b'{"in_bed": true, "heart_rate": 62, "respiration_rate": 15}') == [
        ("in_bed", True), ("heart_rate", 62), ("respiration_rate", 15)]
    assert kv(PENDANT, b'{"state": "offline"}', "anxin/sensor/pendant/availability") == [
        ("availability", "offline")]


def test_device_clock_and_null():
    model = find_model("anxin-pendant")
    assert model is not None
    (o,) = adapt(PENDANT, model, PENDANT.topic, b'{"fall": "suspected", "battery": null, '
                 b'"ts": 1795423445.25}', NOW)
    assert (o.kind, o.value, o.device_at, o.at) == ("fall", "suspected", 1795423445.25, NOW)


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"sso": true}', "unknown property 'sso'"),        # a typo is an error in our format
    (b'{"fall": "fell"}', "fall"),
    (b'{"sos": "yes"}', "sos"),
    (b'{"battery": 101}', "battery"),
    (b'{"fall": "fall", "ts": "now"}', "ts"),
    (b'{"heart_rate": true}', "heart_rate"),
    (b"{", "not valid JSON"),
    (b"42", "JSON object"),
])
def test_refusals_name_the_problem(payload, reason):
    device = BED if b"heart" in payload else PENDANT
    with pytest.raises(PayloadError, match=reason):
        kv(device, payload)


def test_a_valid_alarm_survives_a_typo_beside_it():
    model = find_model("anxin-pendant")
    assert model is not None
    with pytest.raises(PayloadError) as e:
        adapt(PENDANT, model, PENDANT.topic, b'{"fall": "fall", "batery": 50}', NOW)
    assert [(o.kind, o.value) for o in e.value.partial] == [("fall", "fall")]


def test_other_topics_are_refused():
    with pytest.raises(PayloadError, match="unexpected topic"):
        kv(PENDANT, b"{}", "anxin/sensor/pendant/raw")


def test_accelerometer_blocks_on_the_imu_topic_become_one_accel_observation():
    import numpy as np  # noqa: PLC0415

    from devices import imu  # noqa: PLC0415

    dev = Device("w", "home-1", "anxin", "anxin/sensor/w", "anxin-wearable-imu", room=None)
    block = imu.make_block(50, NOW - 2, np.tile([0.0, 0.0, 1.0], (100, 1)))
    for payload in (json.dumps(imu.to_mapping(block)).encode(), imu.encode_binary(block)):
        (obs,) = adapt(dev, find_model(dev.model), "anxin/sensor/w/imu", payload, NOW)
        assert (obs.kind, obs.device_at, obs.at) == ("accel", NOW - 2, NOW)
        got = imu.block_from_value(obs.value)
        assert got.rate_hz == 50 and got.n == 100
        assert np.allclose(got.acc, block.acc, atol=1e-3)
    with pytest.raises(PayloadError, match="rate"):
        adapt(dev, find_model(dev.model), "anxin/sensor/w/imu",
              json.dumps({**imu.to_mapping(block), "rate_hz": 0}).encode(), NOW)
    pendant = Device("p", "home-1", "anxin", "anxin/sensor/p", "anxin-pendant", room=None)
    with pytest.raises(PayloadError, match="does not stream"):
        adapt(pendant, find_model("anxin-pendant"), "anxin/sensor/p/imu", b"{}", NOW)
