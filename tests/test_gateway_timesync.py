"""A Pi without a real-time clock: trust, the steady clock, re-basing on a step, peer clocks."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import typing
from datetime import UTC, datetime
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from alerts import wire
from alerts.escalation import Policy, Tier
from alerts.manager import Change, Manager, ManagerConfig
from alerts.selftest import Run, SelfTestState
from detectors import activity, fall_imu, health, instant, supervision, vitals
from detectors.activity import ActivityConfig, cold_start_limits
from detectors.core import Core, CoreConfig
from detectors.finding import Finding
from devices import blocks
from devices.observation import Observation
from gateway import timesync
from gateway.clock import STEP_S, SteadyClock
from gateway.ingest import Admission, Limit
from gateway.store import Store
from gateway.transports.sms import SmsTransport
from tests._mosquitto import free_port

SECRET = b"sms-gateway-secret"

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=TZ).timestamp()  # a Monday morning
DAY = 86400.0
SENSORS = {"pir-living": "living_room", "sos": "bedroom"}
ACT = ActivityConfig(home="h1", sensors=SENSORS, passive=frozenset({"pir-living"}),
                     limits_s=cold_start_limits(2), limits_source="cold start", tz=TZ)


class Hand:
    """A clock a test moves by hand."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def steady(wall: float, *, floor: float = 0.0) -> tuple[SteadyClock, Hand, Hand]:
    w, m = Hand(wall), Hand(1000.0)
    return SteadyClock(floor=floor, wall=w, ticks=m), w, m


# --- the steady clock -----------------------------------------------------------------------

def test_the_steady_clock_runs_on_the_monotonic_clock_and_follows_a_step_only_when_checked():
    clock, wall, mono = steady(T0 - 3 * DAY)
    assert clock.now() == T0 - 3 * DAY
    mono.t += 60
    wall.t += 60
    assert clock.now() == T0 - 3 * DAY + 60 and clock.check() == 0.0
    wall.t += 3 * DAY  # NTP steps the wall clock
    assert clock.now() == T0 - 3 * DAY + 60  # not until checked
    assert clock.check() == pytest.approx(3 * DAY)
    assert clock.now() == T0 + 60 and clock.wall_offset() == 0.0
    assert clock.check() == 0.0  # once


def test_less_than_a_step_is_not_followed_and_a_step_back_is():
    clock, wall, _ = steady(T0)
    wall.t += STEP_S * 0.9
    assert clock.check() == 0.0 and clock.now() == T0
    wall.t -= 3600 + STEP_S * 0.9
    assert clock.check() == pytest.approx(-3600)
    assert clock.now() == T0 - 3600


def test_a_clock_behind_the_floor_starts_at_the_floor_and_waits_for_a_real_time():
    floor = T0 - DAY  # e.g. the newest row in the store
    clock, wall, mono = steady(0.0, floor=floor)  # a Pi booted at 1970
    assert clock.now() == floor
    wall.t = 12345.0  # still nonsense: not followed
    mono.t += 10
    assert clock.check() == 0.0 and clock.now() == floor + 10
    wall.t = T0
    assert clock.check() == pytest.approx(T0 - floor - 10)
    assert clock.now() == T0


def test_raising_the_floor_moves_an_early_clock_on():
    clock, _, _ = steady(T0 - DAY)
    clock.raise_floor(T0)
    assert clock.now() == T0 and clock.floor == T0
    clock.raise_floor(T0 - 10 * DAY)  # a lower floor changes nothing
    assert clock.now() == T0 and clock.floor == T0


def test_the_floor_is_the_newest_known_time_and_never_before_the_release(tmp_path):
    saved = tmp_path / "clock"
    assert timesync.floor(None, saved_clock=saved) == timesync.RELEASE_FLOOR
    assert timesync.floor(T0, float("nan"), saved_clock=saved) == T0
    saved.touch()
    os.utime(saved, (T0 + 5, T0 + 5))
    assert timesync.floor(T0, saved_clock=saved) == T0 + 5


def test_whether_the_os_says_the_clock_is_synchronised(tmp_path):
    flag = tmp_path / "timesync" / "synchronized"
    assert timesync.os_synchronized(adjtimex=lambda: 0, flag=flag) is True  # TIME_OK
    assert timesync.os_synchronized(adjtimex=lambda: 5, flag=flag) is False  # TIME_ERROR
    # adjtimex forbidden (ProtectClock=): the timesyncd flag file decides
    assert timesync.os_synchronized(adjtimex=lambda: None, flag=flag) is None  # no timesyncd
    flag.parent.mkdir()
    assert timesync.os_synchronized(adjtimex=lambda: None, flag=flag) is False
    flag.touch()
    assert timesync.os_synchronized(adjtimex=lambda: None, flag=flag) is True


def test_a_clock_the_os_calls_unsynchronised_is_not_trusted_however_plausible():
    st = timesync.ClockStatus(synchronized=False, plausible=True, floor=T0, steps=0,
                              last_step_s=None)
    assert not st.trusted
    assert dataclasses.replace(st, synchronized=None).trusted  # no OS word: the floor
    assert not dataclasses.replace(st, synchronized=None, plausible=False).trusted
    assert st.summary()["trusted"] is False


# --- re-basing the domain state -----------------------------------------------------------------


def fresh() -> tuple[Core, Manager, SelfTestState]:
    core = Core(CoreConfig(activity=ACT, supervision=(
        supervision.Expectation("h1", "sos", 3600.0, "bedroom"),)))
    policy = Policy(tiers=(Tier("centre", ("primary",)),
                           Tier("backup", ("backup",), (600.0, 600.0, 0.0, 0.0))))
    return core, Manager(ManagerConfig(policy=policy)), SelfTestState()


def moved_about(core: Core, t: float) -> None:
    core.step(Observation("h1", "sos", "battery", 90, t, "bedroom"), t)  # heard from
    for dt in (0.0, 90.0):
        obs = Observation("h1", "pir-living", "motion", True, t + dt, "living_room")
        core.step(obs, t + dt)


def sos(manager: Manager, t: float):
    f = Finding(detector="instant", home="h1", code=101, event="sos", severity=1, at=t,
                evidence={}, room="bedroom", device="sos")
    ((alert, change),) = manager.on_finding(f, t)
    assert change is Change.RAISED
    return alert


@pytest.mark.parametrize("jump", [90 * DAY, -90 * DAY])
def test_without_re_basing_a_jump_is_a_false_alarm_or_a_frozen_timer(jump):
    """What the re-basing prevents, shown on the same detectors: a forward jump of months
    looks like months without activity (or not up this morning) and a device silent; a
    backward one freezes the escalation that is due."""
    core, manager, _ = fresh()
    moved_about(core, T0)
    core.tick(T0 + 60)
    alert = sos(manager, T0 + 120)
    later = T0 + 1200 + jump
    if jump > 0:
        events = {f.event for f in core.tick(later)}
        assert "offline" in events and events & {"inactivity", "not_up"}
    else:
        assert manager.tick(T0 + 1200 + 600 + jump) == []  # the escalation would wait months
        assert alert.tier == 0


@pytest.mark.parametrize("jump", [90 * DAY, -90 * DAY])
def test_re_basing_keeps_every_elapsed_time_true_across_a_jump(jump):
    core, manager, self_test = fresh()
    moved_about(core, T0)
    assert core.tick(T0 + 60) == []
    alert = sos(manager, T0 + 120)
    self_test.run = Run(started_at=T0 + 100, buttons=("sos",), pressed={"sos": T0 + 110})
    moved = timesync.shift_state(jump, core, manager, self_test)
    assert [a.id for a in moved] == [alert.id]
    assert alert.finding.at == T0 + 120 + jump
    assert {h[1] for h in alert.history} == {T0 + 120 + jump}
    assert self_test.run.started_at == T0 + 100 + jump
    assert self_test.run.pressed == {"sos": T0 + 110 + jump}
    # the escalation comes ten minutes after the SOS, on the new clock, not sooner or later
    assert manager.tick(T0 + 120 + 599 + jump) == []
    ((escalated, change),) = manager.tick(T0 + 120 + 600 + jump)
    assert change is Change.ESCALATED and escalated.id == alert.id
    # twenty minutes after the movement, on the new clock: nothing is due
    assert core.tick(T0 + 1200 + jump) == []
    # and the quiet spell still ends in an inactivity finding when its real limit is spent
    found: list[Finding] = []
    t = T0 + 1200
    while not found and t < T0 + 2 * DAY:
        t += 600
        found = [f for f in core.tick(t + jump) if f.event == "inactivity"]
    no_jump, *_ = fresh()
    moved_about(no_jump, T0)
    u = T0 + 1200
    expected: list[Finding] = []
    while not expected and u < T0 + 2 * DAY:
        u += 600
        expected = [f for f in no_jump.tick(u) if f.event == "inactivity"]
    assert found and t == u  # the same moment of the same quiet spell


def test_blocks_waiting_to_be_put_in_order_are_not_held_by_a_step_back():
    asm = blocks.BlockAssembler(reorder_s=2.0)
    asm._waiting = [(5.0, 0, object(), T0, (0, 0))]
    core, manager, self_test = fresh()
    core.fall_imu.devices["w"] = fall_imu.device_state(fall_imu.FallImuConfig())
    core.fall_imu.devices["w"].assembler = asm
    timesync.shift_state(-DAY, core, manager, self_test)
    assert asm._waiting[0][3] == T0 - DAY


# Every float field of the domain's state classes is either a time on the gateway's clock
# (timesync.TIMES: moved on a step) or declared not one (timesync.NOT_TIMES).
STATE_CLASSES = [activity.ActivityState, activity._Blip, supervision.SupervisionState,
                 health._Device, instant.DeviceMemory, vitals.BedState, vitals.Analyser,
                 vitals.Episode, fall_imu.DeviceFall, blocks.BlockAssembler, Run,
                 __import__("alerts.alert", fromlist=["Alert"]).Alert]


@pytest.mark.parametrize("cls", STATE_CLASSES, ids=lambda c: c.__name__)
def test_every_time_in_the_domain_state_is_classified(cls):
    hints = typing.get_type_hints(cls)
    floats = {f.name for f in dataclasses.fields(cls)
              if "float" in str(hints[f.name]) and "tuple" not in str(hints[f.name])
              and "dict" not in str(hints[f.name]) and "list" not in str(hints[f.name])
              and "deque" not in str(hints[f.name])}
    declared = set(timesync.TIMES.get(cls.__name__, ())) | set(
        timesync.NOT_TIMES.get(cls.__name__, ()))
    assert floats <= declared, (f"{cls.__name__}: {sorted(floats - declared)} not in "
                                "gateway/timesync.py TIMES or NOT_TIMES")
    assert declared <= {f.name for f in dataclasses.fields(cls)}  # no stale names


# --- receivers' clocks and the alert body -------------------------------------------------------


def test_a_receiver_clock_is_learned_from_a_date_header_and_kept_on_the_monotonic_clock():
    wall, mono = Hand(T0 - 3 * DAY), Hand(500.0)
    peer = timesync.PeerClock("primary", wall=wall, ticks=mono)
    assert peer.now() == wall.t and peer.skew_s == 0.0
    sent = peer.mark()
    mono.t += 0.2
    date = format_datetime(datetime.fromtimestamp(T0, UTC), usegmt=True)
    assert peer.learn_http_date(date, sent)
    assert peer.now() == pytest.approx(T0 + 0.5 + 0.1, abs=0.01)
    assert peer.skew_s == pytest.approx(3 * DAY + 0.6, abs=0.01)
    assert not peer.learn_http_date(date, peer.mark())  # the same again: nothing new
    assert not peer.learn_http_date("not a date", peer.mark())
    assert not peer.learn_http_date(None, peer.mark())
    wall.t += 3 * DAY  # our wall clock is stepped: what we sign with does not move
    assert peer.now() == pytest.approx(T0 + 0.6, abs=0.01)
    # the receiver agrees with our (now right) wall clock: back to it
    assert peer.learn_http_date(date, peer.mark())
    assert peer.now() == wall.t and peer.skew_s == 0.0


def body(occurred: float, synced: bool | None) -> bytes:
    msg = {"alert_id": "A1", "occurred_at": datetime.fromtimestamp(occurred, TZ).isoformat(
        timespec="milliseconds"), "raised_at": datetime.fromtimestamp(occurred + 1, TZ)
        .isoformat(timespec="milliseconds"), "timeline": [{"at": datetime.fromtimestamp(
            occurred - 60, TZ).isoformat(timespec="milliseconds")}]}
    if synced is not None:
        msg["clock"] = {"synced": synced}
    return json.dumps(msg, separators=(",", ":")).encode()


def test_an_unsynchronised_body_carries_the_age_of_its_event_when_sent():
    stamped = json.loads(timesync.stamp_age(body(T0, False), T0 + 42.5))
    assert stamped["clock"] == {"synced": False, "age_s": 42.5}
    assert timesync.stamp_age(body(T0, None), T0 + 42.5) == body(T0, None)
    assert timesync.stamp_age(b"not json", T0) == b"not json"


def slow_stamp_age(body: bytes, sent_at: float) -> bytes:
    """What stamp_age makes, by parsing the body and writing it again."""
    msg = json.loads(body)
    age = round(max(0.0, sent_at - datetime.fromisoformat(msg["occurred_at"]).timestamp()), 3)
    msg["clock"] = {**msg["clock"], "age_s": age}
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize("sent_after", [0.0, 42.5, 1 / 3, 86400 * 3 + 0.0004, -5.0])
def test_stamping_a_real_alert_body_without_parsing_it_writes_what_parsing_would(sent_after,
                                                                               monkeypatch):
    f = Finding(detector="instant", home="h1", code=101, event="sos", severity=1, at=T0,
                device="sos-1", room="卧室 \"北\"", evidence={
                    "value": True, "occurred_at": "2020-01-01T00:00:00+08:00",
                    "nested": {"clock": {"synced": False}}})
    ((alert, _),) = Manager().on_finding(f, T0 + 0.25)
    timeline = [wire.timeline_entry(T0 - 60 * i, "厨房", "pir-1", "motion", i % 2 == 0, TZ)
                for i in range(300)]
    body = wire.encode_alert(alert, gateway_id="gw", sequence=7, residents=[
        {"name": "周玉兰", "occurred_at": "x"}], tz=TZ, timeline=timeline,
        clock={"synced": False})
    expected = slow_stamp_age(body, T0 + sent_after)
    with monkeypatch.context() as m:
        m.setattr(timesync.json, "loads", lambda *_: pytest.fail("the body was parsed"))
        stamped = timesync.stamp_age(body, T0 + sent_after)
    assert stamped == expected
    assert json.loads(stamped)["clock"]["age_s"] == round(max(0.0, sent_after), 3)


def test_an_unsent_body_is_corrected_by_the_step():
    fixed = json.loads(timesync.shift_body(body(T0 - 3 * DAY, False), 3 * DAY, True))
    assert datetime.fromisoformat(fixed["occurred_at"]).timestamp() == T0
    assert datetime.fromisoformat(fixed["raised_at"]).timestamp() == T0 + 1
    assert datetime.fromisoformat(fixed["timeline"][0]["at"]).timestamp() == T0 - 60
    assert fixed["occurred_at"].endswith("+08:00") and fixed["clock"] == {"synced": True}
    assert timesync.shift_body(b"\x00garbage", 5.0, True) == b"\x00garbage"


def test_a_synchronised_clock_below_the_floor_is_followed_and_lowers_the_floor():
    # The floor came from a row written while the clock ran a day ahead; NTP says now.
    clock, _, _ = steady(T0, floor=T0 + DAY)
    assert clock.now() == T0 + DAY
    assert clock.check() == 0.0  # the OS does not vouch for it: the floor holds
    assert clock.check(synced=True) == pytest.approx(-DAY)
    assert clock.now() == T0 and clock.floor == T0


# --- what this process stored on the old clock ---------------------------------------------


def test_a_step_moves_this_processs_rows_and_unsent_bodies_but_not_older_ones(tmp_path):
    store = Store(tmp_path / "anxin.db")
    try:
        older = Observation("h1", "pir-living", "motion", True, T0, "living_room")
        store.add_observations([older])
        mark = timesync.high_water(store)
        assert timesync.newest_stamp(store) == T0
        ours = Observation("h1", "pir-living", "motion", True, T0 - 3 * DAY + 60,
                           "living_room")
        store.add_observations([ours])
        _, manager, _ = fresh()
        alert = sos(manager, T0 - 3 * DAY + 120)
        wire_body = body(T0 - 3 * DAY + 120, False)
        store.notify(alert, ("primary",), lambda seq: wire_body, T0 - 3 * DAY + 120, "raise")
        timesync.shift_alert(alert, 3 * DAY)
        fixed = timesync.shift_stored(store, 3 * DAY, mark, [alert], T0 + 130,
                                      lambda b, dt: timesync.shift_body(b, dt, True))
        assert fixed == 1
        assert [o.at for o in store.observations_since(0)] == [T0, T0 + 60]
        (row,) = store.due("primary")
        sent = json.loads(row.body)
        assert datetime.fromisoformat(sent["occurred_at"]).timestamp() == T0 + 120
        assert sent["clock"] == {"synced": True}
        assert store.get_alert(alert.id).finding.at == T0 + 120
    finally:
        store.close()


# --- a family SMS from a gateway whose clock is wrong -------------------------------------------


async def test_an_sms_from_a_gateway_days_behind_is_accepted_and_tells_the_real_time():
    got: list[dict] = []

    async def notify_endpoint(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            wire.check_signature(SECRET, request.headers.get(wire.TIMESTAMP_HEADER),
                                 request.headers.get(wire.SIGNATURE_HEADER), raw, time.time())
        except wire.WireError as e:
            return web.json_response({"status": "rejected", "reason": e.reason}, status=401)
        got.append(json.loads(raw))
        return web.json_response({"status": "accepted"})

    app = web.Application()
    app.router.add_post("/notify", notify_endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    behind = 3 * DAY + 5 * 3600  # not a whole number of days: the HH:MM differs

    def gateway_clock() -> float:
        return time.time() - behind

    sms = SmsTransport("daughter", f"http://127.0.0.1:{port}/notify", SECRET,
                       to="+8613800000000", channel="sms", clock=gateway_clock,
                       peer=timesync.PeerClock("daughter", wall=gateway_clock))
    raised = gateway_clock() - 30  # half a minute ago, by the gateway's (wrong) clock
    alert = {"alert_id": "A1", "home_id": "h1", "event": "sos", "severity": 1, "test": False,
             "title": {"zh": "紧急呼叫"}, "residents": [{"name": "孙秀英"}],
             "raised_at": datetime.fromtimestamp(raised, TZ).isoformat(timespec="milliseconds"),
             "clock": {"synced": False}}
    try:
        await sms.send(json.dumps(alert).encode())
    finally:
        await sms.close()
        await runner.cleanup()
    (message,) = got
    real = datetime.fromtimestamp(raised + behind, TZ)
    told = {f"{real:%H:%M}", f"{datetime.fromtimestamp(raised + behind + 60, TZ):%H:%M}",
            f"{datetime.fromtimestamp(raised + behind - 60, TZ):%H:%M}"}
    assert any(f"孙秀英家{hm}发生" in message["text"] for hm in told), message["text"]
    wrong = f"{datetime.fromtimestamp(raised, TZ):%H:%M}"
    assert f"家{wrong}发生" not in message["text"]


def test_after_a_step_back_the_ingest_rate_limit_refills_as_before():
    """Ingest measures rates on the gateway's clock: unshifted, a step back of a day would
    refill a motion sensor's bucket with nothing for a day, and shed it."""
    message = ("z2m/living_pir", b'{"occupancy":true}', 0, False, None)  # topic … mid

    def sensor(_topic: str) -> tuple[str, Limit]:
        return "pir-living", Limit(rate_per_s=1.0, burst=2.0)

    def admitted_after_a_step_back(shift: bool) -> str:
        admission = Admission(sensor)
        for _ in range(2):  # the burst, spent
            assert admission.admit(*message, T0, T0) == "admitted"
        assert admission.admit(*message, T0, T0) == "shed"
        if shift:
            timesync.shift_admission(admission, -DAY)
        later = T0 - DAY + 5  # five seconds on, on the stepped clock
        return admission.admit(*message, later, later)

    assert admitted_after_a_step_back(shift=False) == "shed"  # what the shift prevents
    assert admitted_after_a_step_back(shift=True) == "admitted"
