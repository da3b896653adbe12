"""The 爱的眼睛 intercom's documented MQTT interface as the native adapter reads it, and the
care call it becomes (detectors/instant.py)."""

from __future__ import annotations

import pytest

from detectors import instant
from devices.adapters import ADAPTERS
from devices.catalogue import find_model
from devices.observation import Observation, PayloadError
from devices.registry import Device

NOW = 1_795_400_000.0
DOOR = Device("door", "home-1", "anxin", "anxin/sensor/door", "anxin-intercom",
              room="living_room")
MODEL = find_model("anxin-intercom")


def kv(payload: bytes, topic: str | None = None) -> list[tuple[str, object]]:
    assert MODEL is not None
    return [(o.kind, o.value) for o in ADAPTERS["anxin"](DOOR, MODEL, topic or DOOR.topic,
                                                          payload, NOW)]


def test_every_documented_message_reads():
    assert kv(b'{"intercom": "call"}') == [("intercom", "call")]
    assert kv(b'{"sos": true}') == [("sos", True)]
    assert kv(b'{"checkin": true}') == [("checkin", True)]
    assert kv(b'{"away_mode": "away"}') == [("away_mode", "away")]
    for signal in ("answered", "missed", "declined", "ended"):
        # the request id comes first, so whoever reads the signal already knows its call
        assert kv(b'{"intercom": "%s", "request_id": "R-1"}' % signal.encode()) == [
            ("intercom_request", "R-1"), ("intercom", signal)]
    assert kv(b'{"snapshot": {"ref": "media/1.jpg", "taken_at": 1795400001}}') == [
        ("snapshot", {"ref": "media/1.jpg", "taken_at": 1795400001.0})]


def test_the_gateways_own_commands_heard_back_are_no_observation():
    assert kv(b'{"ring": {"request_id": "R-1", "from": "centre", "auto_answer": false}}',
              "anxin/sensor/door/set") == []


@pytest.mark.parametrize(("payload", "says"), [
    (b'{"intercom": "hangup"}', "intercom: unexpected value 'hangup'"),
    (b'{"intercom": "answered", "request_id": ""}', "request_id"),
    (b'{"intercom": "answered", "request_id": 7}', "request_id"),
    (b'{"intercom": "answered", "request_id": "%s"}' % (b"x" * 65), "1-64 printable"),
    (b'{"snapshot": "media/1.jpg"}', "snapshot: expected an object"),
    (b'{"snapshot": {"taken_at": 1}}', "ref: expected a reference"),
    (b'{"snapshot": {"ref": "m", "taken_at": "now"}}', "expected a number"),
    (b'{"snapshot": {"ref": "m"}}', "taken_at: expected unix seconds"),
    (b'{"snapshot": {"ref": "m", "taken_at": 1, "jpeg": "..."}}', "unknown key.*jpeg"),
    (b'{"ring": {"request_id": "R-1"}}', "unknown property 'ring'"),
])
def test_bad_intercom_messages_are_refused_naming_the_problem(payload, says):
    with pytest.raises(PayloadError, match=says):
        kv(payload)


def test_a_bad_request_id_does_not_swallow_the_signal():
    assert MODEL is not None
    with pytest.raises(PayloadError) as e:
        ADAPTERS["anxin"](DOOR, MODEL, DOOR.topic, b'{"intercom": "missed", "request_id": ""}',
                          NOW)
    assert [(o.kind, o.value) for o in e.value.partial] == [("intercom", "missed")]


def obs(kind, value, at=NOW):
    return Observation("home-1", "door", kind, value, at, "living_room")


def test_the_call_key_is_a_care_call_and_sos_stays_severity_1():
    state, cfg = instant.InstantState(), instant.InstantConfig()
    (call,) = instant.step(state, obs("intercom", "call"), NOW, cfg)
    assert (call.event, call.severity, call.code, call.device, call.room) == (
        "call_request", 3, instant.CALL_REQUEST[0], "door", "living_room")
    (sos,) = instant.step(state, obs("sos", True, NOW + 1), NOW + 1, cfg)
    assert (sos.event, sos.severity, sos.code) == ("sos", 1, 101)


def test_signalling_and_a_stale_call_raise_nothing():
    state, cfg = instant.InstantState(), instant.InstantConfig()
    for signal in ("answered", "missed", "declined", "ended"):
        assert instant.step(state, obs("intercom", signal), NOW, cfg) == []
    assert instant.step(state, obs("intercom", "call"), NOW, cfg, prime=True) == []
    assert instant.step(state, obs("snapshot", {"ref": "m", "taken_at": NOW}), NOW, cfg) == []
