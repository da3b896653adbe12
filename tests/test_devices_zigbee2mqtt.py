"""The Zigbee2MQTT adapter on real captured payloads, and on everything that is not one."""

from __future__ import annotations

import json

import pytest

from devices.adapters import ADAPTERS
from devices.catalogue import CATALOGUE, find_model
from devices.observation import PayloadError
from devices.registry import Device

# Every Zigbee2MQTT entry's captured payloads (devices/fixtures/<family>.json).
FIXTURES = {m.family: json.loads(m.fixture.read_text(encoding="utf-8"))["payloads"]
            for m in CATALOGUE if m.source == "zigbee2mqtt" and m.fixture.exists()}
NOW = 1_795_400_000.0
adapt = ADAPTERS["zigbee2mqtt"]

# Hand-written from each model's documentation: (kind, value) in emitted order, and the
# device clock where the payload carries `last_seen`. Qualifiers come before state.
EXPECTED: dict[tuple[str, int], tuple[list[tuple[str, object]], float | None]] = {
    ("RTCGQ11LM", 0): ([("battery", 100), ("link_quality", 18), ("motion", False)], None),
    ("RTCGQ11LM", 1): ([("battery", 100), ("link_quality", 26), ("motion", True)], None),
    ("RTCGQ11LM", 2): ([("motion", True)], None),
    # contact false = OPEN
    ("MCCGQ11LM", 0): ([("battery", 100), ("link_quality", 160), ("temperature", 26),
                        ("contact", "open")], None),
    ("SJCGQ11LM", 0): ([("battery", 100), ("battery_low", False), ("link_quality", 83),
                        ("tamper", False), ("temperature", 26), ("water_leak", False)],
                       1656118444.933),
    # water_leak null right after a restart: unknown, so no water_leak Observation at all
    ("SJCGQ11LM", 1): ([("battery", 100), ("link_quality", 167), ("temperature", 31)], None),
    ("JTYJ-GD-01LM/BW", 0): ([("battery", 100), ("link_quality", 94), ("smoke", False)], None),
    ("JTYJ-GD-01LM/BW", 1): ([("battery", 100), ("link_quality", 57), ("smoke", True)],
                             1573393389.829),
    ("HS1CG", 0): ([("battery_low", False), ("link_quality", 42), ("tamper", False),
                    ("gas", False)], None),
    ("HS3SA/HS1SA", 0): ([("battery", 76.5), ("link_quality", 89), ("battery_low", False),
                          ("smoke", True)], None),
    ("TS0215A_sos", 0): ([("link_quality", 90), ("sos", True)], None),
    # the reset to "" right after a press is not a press
    ("TS0215A_sos", 1): ([("link_quality", 90)], None),
    ("TS0215A_sos", 2): ([("battery", 100), ("link_quality", 18), ("sos", True)],
                         1776440002.0),  # 2026-04-17T23:33:22+08:00
    ("SNZB-04", 0): ([("battery_low", False), ("link_quality", 21), ("tamper", False),
                      ("contact", "open")], None),
    ("SNZB-04", 1): ([("battery", 100), ("battery_low", False), ("tamper", False),
                      ("link_quality", 147), ("contact", "closed")], None),
    ("SNZB-04", 2): ([("battery", 100), ("battery_low", False), ("link_quality", 43),
                      ("tamper", False), ("contact", "closed")],
                     1728384891.0),  # 2024-10-08T12:54:51+02:00
    ("HS2FD-EF1-3.0", 0): ([("link_quality", 255), ("fall", "none"), ("presence", True)],
                           None),
    ("ZY-M100-S_1", 0): ([("link_quality", 98), ("presence", True)],
                         1725724481.147),  # 2024-09-07T15:54:41.147Z
    # `temperature` here is the FP1's own; presence_event repeats presence
    ("RTCZCGQ11LM", 0): ([("link_quality", 204), ("presence", True)], None),
    ("RTCZCGQ11LM", 1): ([("link_quality", 200), ("presence", True)], None),
    ("RTCZCGQ11LM", 2): ([("link_quality", 207), ("presence", True)], None),
    ("HS1WL/HS3WL", 0): ([("tamper", False), ("battery_low", False), ("link_quality", 92),
                          ("water_leak", True)], None),
    ("HS1EB/HS1EB-E", 0): ([("battery", 51.5), ("link_quality", 192), ("sos", True)], None),
    # occupancy is the radar's presence; illumination and the settings carry nothing
    ("SNZB-06P", 0): ([("link_quality", 148), ("presence", True)],
                      1782150683.104),  # 2026-06-22T17:51:23.104Z
    ("SNZB-06P", 1): ([("link_quality", 180), ("presence", False)], None),
    # composed from the documentation (not captured: see the fixture)
    ("JT-BZ-01AQ/A", 0): ([("test", False), ("link_quality", 120), ("gas", False)], None),
    ("JT-BZ-01AQ/A", 1): ([("test", False), ("link_quality", 120), ("gas", True)], None),
    ("MIR-HE200-TY", 0): ([("link_quality", 90), ("presence", True), ("fall", "suspected")],
                          None),
    ("MIR-HE200-TY", 1): ([("link_quality", 90), ("presence", True), ("fall", "fall")], None),
    # an action "vibration" is a vibration; a null action is no reading
    ("DJT11LM", 0): ([("battery", 100), ("link_quality", 111), ("vibration", True)],
                     1588586779.0),  # 2020-05-04T12:06:19+02:00
    ("DJT11LM", 1): ([("battery", 100), ("link_quality", 131), ("vibration", False)], None),
    ("E1525/E1745", 0): ([("battery", 87), ("link_quality", 21), ("motion", True)], None),
    ("E1525/E1745", 1): ([("battery", 87), ("link_quality", 21), ("motion", False)], None),
    ("E2134", 0): ([("battery", 100), ("link_quality", 55), ("motion", True)], None),
    ("E2134", 1): ([("battery", 100), ("link_quality", 57), ("motion", False)], None),
    ("E2134", 2): ([("battery", 100), ("link_quality", 109), ("motion", False)], None),
    # battery null (unknown); contact true = closed
    ("E2013", 0): ([("link_quality", 214), ("contact", "closed")], None),
    ("IH012-RT01", 0): ([("battery", 59), ("battery_low", False), ("link_quality", 0),
                         ("tamper", False), ("motion", True)],
                        1706270496.0),  # 2024-01-26T13:01:36+01:00
    ("IH012-RT01", 1): ([("battery_low", False), ("link_quality", 0), ("tamper", False),
                         ("motion", True)], 1706281772.0),  # 16:09:32+01:00
    ("JTQJ-BF-01LM/BW", 0): ([("battery_low", False), ("link_quality", 15),
                              ("tamper", False), ("gas", True)], None),
    ("JTQJ-BF-01LM/BW", 1): ([("battery_low", False), ("link_quality", 21),
                              ("tamper", False)], None),
    # older payloads: `temperature` is the sensor's own, not the room's
    ("RTCGQ13LM", 0): ([("battery", 100), ("link_quality", 152), ("motion", True)], None),
    ("RTCGQ13LM", 1): ([("battery", 100), ("link_quality", 152), ("motion", False)], None),
    ("RTCGQ13LM", 2): ([("battery", 100), ("link_quality", 131), ("motion", False)], None),
    ("SJCGQ12LM", 0): ([("battery_low", False), ("link_quality", 160), ("tamper", False),
                        ("water_leak", False)], None),
    ("SNZB-01", 0): ([("link_quality", 10), ("battery", 100), ("sos", True)], None),
    ("TS0202", 0): ([("battery", 30), ("battery_low", False), ("link_quality", 255),
                     ("tamper", False), ("motion", True)],
                    1685218130.0),  # 2023-05-27T21:08:50+01:00
    ("TS0202", 1): ([("battery", 30), ("battery_low", False), ("link_quality", 255),
                     ("tamper", False), ("motion", False)], 1685218134.0),
    ("TS0203", 0): ([("battery", 100), ("battery_low", False), ("link_quality", 153),
                     ("tamper", False), ("contact", "open")],
                    1693524699.771),  # 2023-08-31T23:31:39.771Z
    ("WXKG11LM", 0): ([("battery", 100), ("link_quality", 167), ("sos", True)], None),
    ("WXKG11LM", 1): ([("battery", 100), ("link_quality", 167)], None),  # reset to ""
    ("WXKG13LM", 0): ([("battery", 100), ("link_quality", 75), ("sos", True)], None),
    ("WXKG13LM", 1): ([("battery", 100), ("link_quality", 75)], None),
    ("WXKG13LM", 2): ([("battery", 100), ("link_quality", 78), ("sos", True)], None),
}


def device(model: str, topic: str = "zigbee2mqtt/dev") -> Device:
    return Device("dev-1", "home-1", "zigbee2mqtt", topic, model, room="kitchen")


def real_cases() -> list[tuple[str, int, dict]]:
    return [(m, i, p["payload"]) for m, ps in FIXTURES.items() for i, p in enumerate(ps)]


def test_every_real_payload_has_a_hand_written_expectation():
    assert {(m, i) for m, i, _ in real_cases()} == set(EXPECTED)


@pytest.mark.parametrize(("model_id", "index", "payload"), real_cases(),
                         ids=[f"{m}-{i}" for m, i, _ in real_cases()])
def test_real_payload_maps_to_the_right_observations(model_id, index, payload):
    model = find_model(model_id)
    assert model is not None, f"{model_id} has real payloads but no catalogue entry"
    dev = device(model_id)
    obs = adapt(dev, model, dev.topic, json.dumps(payload).encode(), NOW)
    expected, device_at = EXPECTED[(model_id, index)]
    assert [(o.kind, o.value) for o in obs] == expected
    for o in obs:
        assert (o.home, o.device, o.room, o.at) == ("home-1", "dev-1", "kitchen", NOW)
        assert o.device_at == pytest.approx(device_at) if device_at else o.device_at is None


def test_a_zero_reading_is_a_reading():
    obs = adapt(device("RTCGQ11LM"), find_model("RTCGQ11LM"), "zigbee2mqtt/dev",
                b'{"battery": 0, "linkquality": 0}', NOW)
    assert [(o.kind, o.value) for o in obs] == [("battery", 0), ("link_quality", 0)]


@pytest.mark.parametrize(("payload", "expected"), [
    (b'{"state":"online"}', "online"),
    (b'{"state":"offline"}', "offline"),
    (b"online", "online"),       # Zigbee2MQTT before 1.24
    (b"offline", "offline"),
])
def test_availability_current_and_legacy(payload, expected):
    obs = adapt(device("HS1SA"), find_model("HS1SA"), "zigbee2mqtt/dev/availability", payload,
                NOW)
    assert [(o.kind, o.value) for o in obs] == [("availability", expected)]


def test_qualifiers_come_before_state_whatever_the_payload_order():
    obs = adapt(device("HS1SA"), find_model("HS1SA"), "zigbee2mqtt/dev",
                b'{"smoke": true, "test": true, "tamper": false}', NOW)
    assert [o.kind for o in obs] == ["test", "tamper", "smoke"]


def test_legacy_action_topic_and_commands_to_the_device():
    m = find_model("TS0215A_sos")
    dev = device("TS0215A_sos")
    assert [(o.kind, o.value) for o in adapt(dev, m, "zigbee2mqtt/dev/action", b"emergency",
                                             NOW)] == [("sos", True)]
    assert adapt(dev, m, "zigbee2mqtt/dev/action", b"", NOW) == []
    assert adapt(dev, m, "zigbee2mqtt/dev/set", b'{"selftest": ""}', NOW) == []
    assert adapt(dev, m, "zigbee2mqtt/dev/get", b'{"battery": ""}', NOW) == []


def test_hs1eb_press_is_sos_and_hold_is_cancel_and_off_is_nothing():
    m = find_model("HS1EB-E")
    dev = device("HS1EB")
    got = {a: [(o.kind, o.value) for o in adapt(dev, m, dev.topic,
                                                json.dumps({"action": a}).encode(), NOW)]
           for a in ("single", "double", "hold", "off", "")}
    assert got == {"single": [("sos", True)], "double": [("sos", True)],
                   "hold": [("cancel", True)], "off": [], "": []}


@pytest.mark.parametrize(("raw", "fall"), [
    ("fall", "fall"), ("maybe_fall", "suspected"), ("none", "none"),
    (True, "fall"), (False, "none"),   # before zigbee-herdsman-converters PR #3701
])
def test_tuya_fall_radar_states(raw, fall):
    obs = adapt(device("MIR-HE200-TY"), find_model("MIR-HE200-TY"), "zigbee2mqtt/dev",
                json.dumps({"fall_down_status": raw, "presence": True,
                            "occupancy": False}).encode(), NOW)
    assert [(o.kind, o.value) for o in obs] == [("fall", fall), ("presence", True)]


@pytest.mark.parametrize(("raw", "fall"), [
    ("fall_alarm", "fall"), ("fall_warning", "suspected"), ("normal", "none"), ("unknown", None),
])
def test_heiman_fall_radar_states(raw, fall):
    obs = adapt(device("HS2FD-EF1-3.0"), find_model("HS2FD-EF1-3.0"), "zigbee2mqtt/dev",
                json.dumps({"fall_status": raw}).encode(), NOW)
    assert [(o.kind, o.value) for o in obs] == ([("fall", fall)] if fall else [])


# --- what must be refused, with a reason ---------------------------------------------------

@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"smoke": tru', "not valid JSON"),                        # truncated
    (b'{"smoke": true, "battery": 9', "not valid JSON"),         # truncated
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"smoke"', "must be a JSON object"),
    (b'{"smoke": "yes"}', "smoke"),                               # wrong type
    (b'{"smoke": 1}', "smoke"),                                   # 1 is not true
    (b'{"battery": "full"}', "battery"),
    (b'{"battery": 250}', "battery"),                             # out of range
    (b'{"linkquality": -3}', "link_quality"),
    (b'{"last_seen": "yesterday"}', "last_seen"),
    (b'{"x": "' + b"a" * 70_000 + b'"}', "limit"),               # 64 KiB limit
])
def test_malformed_payloads_are_refused_naming_the_problem(payload, reason):
    with pytest.raises(PayloadError, match=reason):
        adapt(device("HS1SA"), find_model("HS1SA"), "zigbee2mqtt/dev", payload, NOW)


def test_deeply_nested_json_under_the_size_limit_is_refused_not_a_crash():
    payload = b'{"x": ' + b"[" * 20000 + b"]" * 20000 + b"}"
    with pytest.raises(PayloadError, match="JSON"):
        adapt(device("HS1SA"), find_model("HS1SA"), "zigbee2mqtt/dev", payload, NOW)


def test_bad_field_keeps_what_could_be_read_in_partial():
    with pytest.raises(PayloadError, match="battery") as e:
        adapt(device("HS1SA"), find_model("HS1SA"), "zigbee2mqtt/dev",
              b'{"battery": "x", "smoke": true}', NOW)
    assert [(o.kind, o.value) for o in e.value.partial] == [("smoke", True)]


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    ("zigbee2mqtt/dev/availability", b'{"state": "sleepy"}', "availability"),
    ("zigbee2mqtt/dev/availability", b'{"status": "online"}', "state"),
    ("zigbee2mqtt/dev/availability", b"maybe", "availability"),
    ("zigbee2mqtt/dev/something", b"{}", "unexpected subtopic"),
    ("zigbee2mqtt/other", b"{}", "does not belong"),
])
def test_bad_topics_and_availability(topic, payload, reason):
    with pytest.raises(PayloadError, match=reason):
        adapt(device("HS1SA"), find_model("HS1SA"), topic, payload, NOW)


def test_unexpected_enum_value_is_refused_not_guessed():
    with pytest.raises(PayloadError, match=r"fall_status.*'fall_maybe'"):
        adapt(device("HS2FD-EF1-3.0"), find_model("HS2FD-EF1-3.0"), "zigbee2mqtt/dev",
              b'{"fall_status": "fall_maybe"}', NOW)


def test_legacy_action_on_a_model_without_actions_is_refused():
    with pytest.raises(PayloadError, match="no action"):
        adapt(device("HS1SA"), find_model("HS1SA"), "zigbee2mqtt/dev/action", b"single", NOW)


def test_cleared_retained_state_is_no_reading_and_unknown_properties_are_skipped():
    m = find_model("HS1SA")
    assert adapt(device("HS1SA"), m, "zigbee2mqtt/dev", b"", NOW) == []
    obs = adapt(device("HS1SA"), m, "zigbee2mqtt/dev", b'{"new_firmware_field": 3}', NOW)
    assert obs == []
