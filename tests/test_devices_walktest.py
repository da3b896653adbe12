"""The walk test's pure core: which devices the technician has triggered, and how."""

from __future__ import annotations

import pytest

from devices.catalogue import CATALOGUE, find_model
from devices.observation import Observation
from devices.registry import Device
from devices.walktest import ACTIONS, TRIGGERS, WEAK_LINK_LQI, results

HOME = "home-1"


def dev(id_: str, model: str, room: str = "hall"):
    m = find_model(model)
    assert m is not None, model
    return Device(id_, HOME, "zigbee2mqtt", f"z2m/{id_}", model, room, None), m


def obs(device: str, kind: str, value, at: float) -> Observation:
    return Observation(HOME, device, kind, value, at)


KIT = [dev("door", "MCCGQ11LM"), dev("pir", "RTCGQ11LM"), dev("sos", "TS0215A_sos"),
       dev("smoke", "HS1SA", "kitchen"), dev("leak", "SJCGQ11LM", "bathroom")]


def test_each_device_passes_on_its_own_trigger_and_keeps_the_first_time():
    since = [obs("door", "contact", "closed", 10.0),  # closing is not the test
             obs("door", "contact", "open", 11.0), obs("door", "contact", "open", 15.0),
             obs("pir", "motion", False, 12.0), obs("pir", "motion", True, 13.0),
             obs("sos", "sos", True, 14.0),
             obs("smoke", "test", True, 16.0)]  # the smoke detector's test button
    got = {r.device: r for r in results(KIT, since, {})}
    assert (got["door"].passed_at, got["door"].trigger) == (11.0, "contact=open")
    assert (got["pir"].passed_at, got["pir"].trigger) == (13.0, "motion=true")
    assert got["sos"].trigger == "sos=true"
    assert got["smoke"].trigger == "test=true"
    assert not got["leak"].passed and got["leak"].passed_at is None
    assert got["leak"].todo_en == "wet the probe" and got["leak"].todo_zh


def test_health_readings_alone_do_not_pass_a_device():
    since = [obs("door", "battery", 90.0, 1.0), obs("door", "link_quality", 120.0, 1.0),
             obs("smoke", "smoke", False, 2.0)]
    assert not any(r.passed for r in results(KIT, since, {}))


def test_observations_of_unknown_devices_are_ignored():
    got = results(KIT, [obs("stranger", "contact", "open", 1.0)], {})
    assert [r.device for r in got] == ["door", "pir", "sos", "smoke", "leak"]
    assert not any(r.passed for r in got)


@pytest.mark.parametrize(("battery", "flag", "low"), [
    (90.0, None, False), (10.0, None, True),  # below the model's threshold
    (90.0, True, True),  # the device says so, whatever the percentage
])
def test_battery_low_by_model_threshold_or_the_devices_own_flag(battery, flag, low):
    latest = {("door", "battery"): battery}
    if flag is not None:
        latest[("door", "battery_low")] = flag
    (door,) = results(KIT[:1], [], latest)
    assert door.battery == battery and door.battery_low is low


def test_weak_link_below_the_lqi_limit():
    latest = {("door", "link_quality"): WEAK_LINK_LQI - 1, ("pir", "link_quality"): 200}
    got = {r.device: r for r in results(KIT[:2], [], latest)}
    assert got["door"].weak_link and not got["pir"].weak_link
    assert got["pir"].link_quality == 200.0


def test_every_alarm_class_in_the_catalogue_has_a_trigger():
    alarm_classes = {c for m in CATALOGUE for c in m.classes}
    assert alarm_classes <= set(TRIGGERS), alarm_classes - set(TRIGGERS)


def test_every_trigger_class_has_actions_and_nothing_else_does():
    assert set(ACTIONS) == set(TRIGGERS)
    assert all(ACTIONS[c] for c in ACTIONS)


@pytest.mark.parametrize("cls", sorted(TRIGGERS))
def test_every_action_passes_its_class_check(cls):
    # the simulator's walk test performs these; results() must tick each one off
    check = TRIGGERS[cls][2]
    for kind, value in ACTIONS[cls]:
        assert check(kind, value), (cls, kind, value)


@pytest.mark.parametrize("model", CATALOGUE, ids=[m.model for m in CATALOGUE])
def test_every_catalogue_model_has_an_action_it_reports(model):
    assert any(model.expose_for_kind(kind) is not None
               for c in model.classes for kind, _ in ACTIONS.get(c, ())), model.family


def test_zigbee2mqtt_availability_is_checked_only_where_it_supervises_the_device():
    radar = dev("radar", "HS2FD-EF1-3.0", "bathroom")  # mains: Zigbee2MQTT pings it
    door = KIT[0]
    (r, d) = results([radar, door], [], {})
    assert (r.availability, d.availability) == ("never", None)  # availability is off?
    (r,) = results([radar], [], {("radar", "availability"): "online"})
    assert r.availability == "online"
