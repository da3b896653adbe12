"""Issue 6 on the gateway, without a broker: the config's profile and consent keys, the alert
timeline, and the intercom's 平安打卡 key feeding the missed-check-in detector."""

from __future__ import annotations

import tomllib
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from alerts import wire
from detectors.core import Core
from devices.adapters import ADAPTERS
from devices.observation import Observation
from gateway.config import ConfigError, parse
from gateway.coreconfig import core_config, watched_devices
from gateway.timeline import MAX_KEPT, VITALS_EVERY_S, Timeline

TZ = ZoneInfo("Asia/Shanghai")

HOME = """
[gateway]
id = "gw-ic"

[home]
id = "home-ic"
district = "徐汇区 田林街道"

[[home.residents]]
name = "王秀英"
medication = "华法林 2.5mg 每晚"
snapshot_consent = true
look_in_auto_answer = true

[[home.contacts]]
name = "王强"
relation = "儿子"
phone = "+86 138 0000 0001"

[[devices]]
id = "door-intercom"
source = "anxin"
topic = "anxin/sensor/door-intercom"
model = "anxin-intercom"
room = "living_room"

[[devices]]
id = "pir-living"
source = "zigbee2mqtt"
topic = "zigbee2mqtt/pir_living"
model = "RTCGQ11LM"
room = "living_room"
"""

SECOND = """
[[home.residents]]
name = "李建国"
"""


def load(text: str):
    return parse(tomllib.loads(text))


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        load(text)
    return dict(e.value.problems)


def test_profile_keys_load():
    cfg = load(HOME)
    assert cfg.home.district == "徐汇区 田林街道"
    (c,) = cfg.home.contacts
    assert (c.name, c.relation, c.phone) == ("王强", "儿子", "+86 138 0000 0001")
    assert cfg.home.residents[0].medication == "华法林 2.5mg 每晚"


def test_defaults_say_no_consent_and_no_profile():
    cfg = load(HOME.replace("snapshot_consent = true\n", "").replace(
        "look_in_auto_answer = true\n", "").replace('district = "徐汇区 田林街道"\n', ""))
    assert cfg.home.district == ""
    assert not cfg.home.everyone_consents("snapshot_consent")
    assert not cfg.home.everyone_consents("look_in_auto_answer")


def test_consent_needs_every_resident():
    assert load(HOME).home.everyone_consents("snapshot_consent")
    both = load(HOME.replace("[[home.contacts]]", SECOND + "\n[[home.contacts]]"))
    assert not both.home.everyone_consents("snapshot_consent")  # 李建国 did not agree
    assert not both.home.everyone_consents("look_in_auto_answer")
    head, _, rest = HOME.partition("[[home.residents]]")
    nobody = load(head + rest.partition("look_in_auto_answer = true\n")[2])
    assert not nobody.home.everyone_consents("snapshot_consent")  # nobody recorded


@pytest.mark.parametrize(("change", "path", "says"), [
    (('phone = "+86 138 0000 0001"', 'phone = "call my son"'), "home.contacts[0].phone",
     "is not a phone number"),
    (('phone = "+86 138 0000 0001"', "phone = 13800000001"), "home.contacts[0].phone",
     "expected a string"),
    (('name = "王强"', 'name = " "'), "home.contacts[0].name", "empty"),
    (('relation = "儿子"\n', 'relation = "儿子"\nemail = "x@y"\n'), "home.contacts[0].email",
     "unknown key"),
    (('phone = "+86 138 0000 0001"\n', ""), "home.contacts[0].phone", "required"),
    (("snapshot_consent = true", 'snapshot_consent = "yes"'),
     "home.residents[0].snapshot_consent", "expected true or false"),
    (("look_in_auto_answer = true", "look_in_auto_answer = 1"),
     "home.residents[0].look_in_auto_answer", "expected true or false"),
    (('medication = "华法林 2.5mg 每晚"', 'medication = ["华法林"]'),
     "home.residents[0].medication", "expected a string"),
    (('district = "徐汇区 田林街道"', "district = 3"), "home.district", "expected a string"),
    (("look_in_auto_answer = true", "auto_answer = true"),
     "home.residents[0].auto_answer", "unknown key"),
])
def test_bad_profile_keys_are_named(change, path, says):
    found = problems(HOME.replace(*change))
    assert says in found[path], found


# --- the timeline ---------------------------------------------------------------------------

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=TZ).timestamp()


def obs(device, kind, value, at, room="living_room"):
    return Observation("home-ic", device, kind, value, at, room)


def test_timeline_keeps_what_an_operator_reads():
    t = Timeline()
    for i, (d, k, v) in enumerate([
            ("pir", "motion", True), ("pir", "battery", 80), ("pir", "link_quality", 90),
            ("pir", "motion", True),  # a republished state: folded
            ("pir", "motion", False), ("door", "contact", "open"),
            ("btn", "sos", True), ("btn", "sos", True),  # two presses: both kept
            ("door-intercom", "intercom_request", "R1"), ("door-intercom", "intercom", "ended"),
            ("door-intercom", "snapshot", {"ref": "m", "taken_at": T0}),
            ("wear", "accel", {"n": 10})]):
        t.add(obs(d, k, v, T0 + i))
    got = t.for_alert(T0 + 20, T0 + 20, TZ)
    assert [(e["device"], e["kind"], e["value"]) for e in got] == [
        ("pir", "motion", True), ("pir", "motion", False), ("door", "contact", "open"),
        ("btn", "sos", True), ("btn", "sos", True), ("door-intercom", "intercom", "ended")]
    assert got[0] == {"at": wire.iso(T0, TZ), "room": "living_room", "device": "pir",
                      "kind": "motion", "value": True}


def test_timeline_window_cap_and_sampled_vitals():
    t = Timeline()
    for i in range(4 * 3600 // 10):  # a PIR going on and off every 10 s for four hours
        t.add(obs("pir", "motion", i % 2 == 0, T0 + 10 * i))
    for i in range(60):  # a heart rate every minute for an hour
        t.add(obs("bed", "heart_rate", 60 + i % 3, T0 + 60 * i, "bedroom"))
    end = T0 + 4 * 3600
    got = t.for_alert(end, end, TZ)
    assert len(got) == wire.TIMELINE_MAX
    assert got[-1]["at"] == wire.iso(T0 + 10 * (4 * 3600 // 10 - 1), TZ)  # the newest kept
    assert all(e["at"] >= wire.iso(end - wire.TIMELINE_WINDOW_S, TZ) for e in got)
    early = t.for_alert(T0 + 3600, T0 + 3600, TZ)
    hr = [e for e in early if e["kind"] == "heart_rate"]
    assert len(hr) == 3600 // VITALS_EVERY_S  # one per five minutes, not sixty
    assert len(t) <= MAX_KEPT


def test_timeline_seeded_from_stored_history_after_a_restart():
    t = Timeline()
    stored = [obs("pir", "motion", True, T0 - 6 * 3600), obs("pir", "motion", False, T0 - 60)]
    t.seed(stored, T0)
    assert [e["value"] for e in t.for_alert(T0, T0, TZ)] == [False]


# --- the intercom's 平安打卡 key and the missed-check-in detector -------------------------------


def at(hhmm: str) -> float:
    h, m = map(int, hhmm.split(":"))
    return datetime(2026, 11, 23, h, m, tzinfo=TZ).timestamp()


def missed_checkins(press: bool) -> list[str]:
    cfg = load(HOME)
    devices = watched_devices(cfg)
    core = Core(core_config(cfg, devices))
    assert core.cfg.activity.checkin_by_h == 10.0  # the intercom has the key: it is watched
    ((door, model),) = [(d, m) for d, m in devices if d.id == "door-intercom"]
    ((pir, pir_model),) = [(d, m) for d, m in devices if d.id == "pir-living"]
    found: list[str] = []
    t = at("07:30")
    while t <= at("11:00"):
        if (t - at("07:30")) % 1800 == 0:  # up and about: the PIR sees her every half hour
            for o in ADAPTERS["zigbee2mqtt"](pir, pir_model, pir.topic,
                                             b'{"occupancy": true, "battery": 90}', t):
                core.step(o, t)
        if press and t == at("08:30"):  # 平安打卡 on the intercom
            for o in ADAPTERS["anxin"](door, model, door.topic, b'{"checkin": true}', t):
                core.step(o, t)
        found += [f.event for f in core.tick(t) if f.event == "missed_checkin"]
        t += 300
    return found


def test_the_intercoms_checkin_key_keeps_the_missed_checkin_detector_quiet():
    assert missed_checkins(press=True) == []


def test_without_the_press_the_missed_checkin_is_a_care_call():
    assert missed_checkins(press=False) == ["missed_checkin"]


def test_timeline_moves_with_a_clock_step():
    t = Timeline()
    t.add(obs("pir", "motion", True, T0))
    t.shift(3 * 86400.0)  # NTP: the board had booted three days behind
    (e,) = t.for_alert(T0 + 3 * 86400.0, T0 + 3 * 86400.0, TZ)
    assert e["at"] == wire.iso(T0 + 3 * 86400.0, TZ)
    t.add(obs("pir", "motion", True, T0 + 3 * 86400.0 + 1))  # still the same state: folded
    assert len(t) == 1


class _Store:
    """What gateway/intercom.py asks of the store, kept in a list."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    async def call(self, fn, *args):
        self.calls.append((fn.__name__, args))


class _Sender:
    def wake(self) -> None:
        pass


def _intercom():
    from types import SimpleNamespace  # noqa: PLC0415

    from gateway.intercom import Intercom, Ring  # noqa: PLC0415

    gw = SimpleNamespace(store=_Store(), tz=TZ, devices={}, intercom_senders={"c": _Sender()},
                         cfg=SimpleNamespace(gateway=SimpleNamespace(id="gw"),
                                             home=SimpleNamespace(id="h")))
    ic = Intercom(gw)  # type: ignore[arg-type]
    ic.rings[("R1", "door")] = Ring("R1", "door", "", "op", False, T0)
    ic.snapshots["A1"] = T0 + 120
    return ic, gw.store


def _events(store: _Store) -> list[str]:
    return [wire.decode_intercom(args[2])["event"] for name, args in store.calls
            if name == "queue_intercom"]


async def test_a_ring_keeps_its_45_s_across_a_clock_step():
    from gateway.intercom import LOOK_IN_TIMEOUT_S  # noqa: PLC0415

    ic, store = _intercom()
    await ic.shift(-86400.0, T0 - 86400.0 + 1)  # NTP stepped the clock back a day
    await ic.tick(T0 - 86400.0 + LOOK_IN_TIMEOUT_S - 1)
    assert _events(store) == []
    await ic.tick(T0 - 86400.0 + LOOK_IN_TIMEOUT_S)
    assert _events(store) == ["missed"]
    assert ic.snapshots == {"A1": T0 - 86400.0 + 120}


async def test_an_answered_call_whose_end_never_comes_is_forgotten_not_missed():
    from gateway.intercom import CALL_KEPT_S  # noqa: PLC0415

    ic, store = _intercom()
    ic.rings[("R1", "door")].answered = True
    await ic.tick(T0 + 600)
    assert ("R1", "door") in ic.rings and _events(store) == []  # a long talk is fine
    await ic.tick(T0 + CALL_KEPT_S)
    assert ic.rings == {} and _events(store) == []
