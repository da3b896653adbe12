"""alerts/wire.py for issue 6: the alert body's profile additions, look_in feedback and the
`anxin.intercom/1` events (contract between the gateway and the hotline)."""

import json
from zoneinfo import ZoneInfo

import pytest

from alerts import wire
from alerts.alert import Alert, AlertState
from detectors.finding import Finding

TZ = ZoneInfo("Asia/Shanghai")
T0 = 1_795_000_000.0


def raised(event="fall", severity=1, code=100):
    f = Finding(detector="instant", home="h1", code=code, event=event, severity=severity,
                at=T0, device="pendant", room="bathroom")
    a = Alert(id="01JALERT", finding=f, state=AlertState.PENDING_LOCAL)
    a.move(AlertState.RAISED, T0 + 1)
    return a


RESIDENTS = [{"name": "王秀英", "age": 82, "ability_level": "mild", "conditions": ["高血压"],
              "medication": "氨氯地平 5mg 每早"}]
CONTACTS = [{"name": "王强", "relation": "儿子", "phone": "13800000001"},
            {"name": "李梅", "relation": "邻居", "phone": "13800000002"}]
SNAP = {"ref": "https://media.example/snap/1.jpg", "taken_at": "2026-11-22T21:44:05.000+08:00"}


def timeline(n):
    return [wire.timeline_entry(T0 - 3600 + i, "kitchen", "pir1", "motion", True, TZ)
            for i in range(n)]


def encode(alert, **kw):
    return json.loads(wire.encode_alert(alert, gateway_id="gw", sequence=1, residents=RESIDENTS,
                                        tz=TZ, **kw))


def test_profile_additions_travel_and_decode():
    body = wire.encode_alert(raised(), gateway_id="gw", sequence=1, residents=RESIDENTS, tz=TZ,
                             address="幸福路1号", district="徐汇区 田林街道", contacts=CONTACTS,
                             timeline=timeline(3), snapshot=SNAP)
    msg = wire.decode(body)
    assert msg["district"] == "徐汇区 田林街道"
    assert msg["contacts"] == CONTACTS
    assert msg["residents"][0]["medication"] == "氨氯地平 5mg 每早"
    assert msg["snapshot"] == SNAP
    assert [e["kind"] for e in msg["timeline"]] == ["motion"] * 3
    assert msg["timeline"][0] == {"at": wire.iso(T0 - 3600, TZ), "room": "kitchen",
                                  "device": "pir1", "kind": "motion", "value": True}


def test_defaults_are_empty_not_missing():
    msg = encode(raised())
    assert msg["district"] == "" and msg["contacts"] == []
    assert "timeline" not in msg and "snapshot" not in msg


def test_timeline_is_cut_to_the_newest_300():
    msg = encode(raised(), timeline=timeline(450))
    assert len(msg["timeline"]) == wire.TIMELINE_MAX == 300
    assert msg["timeline"][-1]["at"] == wire.iso(T0 - 3600 + 449, TZ)


def test_timeline_only_for_severity_1_to_3():
    assert "timeline" in encode(raised("missed_checkin", 3, 641), timeline=timeline(2))
    assert "timeline" not in encode(raised("low_battery", 4, 384), timeline=timeline(2))


def test_snapshot_only_on_fall_or_sos():
    assert encode(raised("sos", 1, 101), snapshot=SNAP)["snapshot"] == SNAP
    assert "snapshot" not in encode(raised("smoke", 1, 111), snapshot=SNAP)
    assert "snapshot" not in encode(raised("call_request", 3, 101), snapshot=SNAP)


def test_call_request_has_a_title():
    assert wire.title("call_request") == {"zh": "呼叫请求", "en": "Call request"}


@pytest.mark.parametrize(("key", "value", "says"), [
    ("district", 5, "'district'"),
    ("contacts", [{"name": "x", "relation": "y"}], r"contacts\[0\]"),
    ("timeline", [{"at": "t", "room": None, "device": "d", "kind": "k", "value": [1]}],
     r"timeline\[0\]"),
    ("timeline", [{"at": "t", "room": None, "device": "d", "kind": "k", "value": 1}] * 301,
     "301 entries"),
    ("snapshot", {"ref": "", "taken_at": "t"}, "snapshot needs"),
    ("snapshot", "ref", "'snapshot'"),
])
def test_malformed_additions_are_refused_naming_the_field(key, value, says):
    msg = encode(raised())
    msg[key] = value
    with pytest.raises(wire.WireError, match=says):
        wire.decode(json.dumps(msg).encode())


def test_medication_must_be_text():
    msg = encode(raised())
    msg["residents"][0]["medication"] = ["x"]
    with pytest.raises(wire.WireError, match=r"residents\[0\].medication"):
        wire.decode(json.dumps(msg).encode())


def feedback(*events):
    return json.dumps({"schema": wire.FEEDBACK_SCHEMA, "cursor": "7",
                       "events": list(events)}).encode()


def test_look_in_feedback_decodes_with_or_without_an_alert():
    ev = {"action": "look_in", "request_id": "R1", "alert_id": "", "operator": "op", "at": T0}
    assert wire.decode_feedback(feedback(ev))["events"] == [ev]
    assert wire.decode_feedback(feedback({**ev, "alert_id": "01JALERT"}))["events"][0][
        "alert_id"] == "01JALERT"


@pytest.mark.parametrize("request_id", [None, "", 5])
def test_look_in_without_a_request_id_is_refused(request_id):
    ev = {"action": "look_in", "alert_id": "", "operator": "op", "at": T0}
    if request_id is not None:
        ev["request_id"] = request_id
    with pytest.raises(wire.WireError, match="look_in without a request_id"):
        wire.decode_feedback(feedback(ev))


def intercom(**kw):
    args = {"event_id": "01JEVENT", "gateway_id": "gw", "home_id": "h1", "device_id": "door",
            "event": "answered", "request_id": "R1", "at": T0, "tz": TZ,
            "detail": {"after_s": 4.2}} | kw
    return wire.encode_intercom(**args)


def test_intercom_event_round_trip():
    msg = wire.decode_intercom(intercom())
    assert msg == {"schema": wire.INTERCOM_SCHEMA, "event_id": "01JEVENT", "gateway_id": "gw",
                   "home_id": "h1", "device_id": "door", "event": "answered",
                   "request_id": "R1", "at": wire.iso(T0, TZ), "detail": {"after_s": 4.2}}
    assert wire.decode_intercom(intercom(event="call", request_id=None))["request_id"] is None


def test_intercom_events_are_the_contracts():
    expected = {"ringing", "answered", "auto_answered", "missed", "declined", "ended", "call",
                "checkin"}
    assert expected == wire.INTERCOM_EVENTS
    with pytest.raises(ValueError, match="'hangup' is not one of"):
        intercom(event="hangup")


@pytest.mark.parametrize(("change", "says"), [
    ({"schema": "anxin.alert/1"}, "expected 'anxin.intercom/1'"),
    ({"event": "hangup"}, "'hangup' is not one of"),
    ({"event_id": ""}, "event_id is empty"),
    ({"request_id": 3}, "'request_id' has the wrong type"),
    ({"detail": []}, "'detail' has the wrong type"),
    ({"device_id": None}, "'device_id' has the wrong type"),
])
def test_bad_intercom_events_are_refused_naming_the_problem(change, says):
    msg = json.loads(intercom()) | change
    with pytest.raises(wire.WireError, match=says):
        wire.decode_intercom(json.dumps(msg).encode())


@pytest.mark.parametrize(("raw", "says"), [
    (b"{", "not JSON"), (b"[]", "not a JSON object"),
    (json.dumps({k: v for k, v in json.loads(intercom()).items() if k != "at"}).encode(),
     "missing field 'at'"),
])
def test_unreadable_intercom_bodies(raw, says):
    with pytest.raises(wire.WireError, match=says):
        wire.decode_intercom(raw)


def test_intercom_events_sign_and_travel_in_the_uplink_envelope():
    secret = b"s" * 32
    body = intercom()
    opened = wire.open_envelope(secret, wire.envelope(secret, int(T0), body), T0)
    assert wire.decode_intercom(opened)["event_id"] == "01JEVENT"
    with pytest.raises(wire.WireError, match="signature"):
        wire.open_envelope(b"x" * 32, wire.envelope(secret, int(T0), body), T0)
