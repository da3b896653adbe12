"""Home state and inactivity with a controlled clock: door-then-silence, a sensor offline, a
couple, the Shanghai midnight, a radar over a still body."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from detectors.activity import (
    AWAY,
    CODE,
    OCCUPIED,
    ActivityConfig,
    ActivityState,
    cold_start_limits,
    spent,
    step,
    tick,
)
from devices.observation import Observation

TZ = ZoneInfo("Asia/Shanghai")
HOUR = 3600.0
SENSORS = {"door": "entrance", "pir-living": "living_room", "pir-bed": "bedroom",
           "radar-bath": "bathroom", "sos": "bedroom", "pir-hall": "entrance"}
CFG = ActivityConfig(home="h1", sensors=SENSORS, entrance=frozenset({"door"}),
                     passive=frozenset({"door", "pir-living", "pir-bed", "radar-bath",
                                        "pir-hall"}),
                     presence=frozenset({"radar-bath"}), limits_s=cold_start_limits(2),
                     limits_source="cold start, ability level 2", tz=TZ)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp()


def see(s: ActivityState, device: str, kind: str, value, t: float) -> None:
    step(s, Observation("h1", device, kind, value, t, SENSORS.get(device)), t, CFG)


def move(s: ActivityState, device: str, t: float) -> None:
    """A person moving about: two detections a minute and a half apart (one alone, after a
    long quiet, could be a PIR's ghost)."""
    see(s, device, "motion", True, t)
    see(s, device, "motion", True, t + 90)


def run(s: ActivityState, start: float, end: float, every: float = 60.0,
        offline: frozenset[str] = frozenset()) -> list:
    found, t = [], start
    while t <= end:
        found += tick(s, t, CFG, offline)
        t += every
    return found


def test_daytime_quiet_alarms_after_the_day_limit_once_with_evidence():
    s = ActivityState()
    see(s, "pir-living", "motion", True, at("2026-11-23T10:00:00"))
    assert run(s, at("2026-11-23T10:01:00"), at("2026-11-23T13:59:00")) == []
    (f,) = run(s, at("2026-11-23T14:00:00"), at("2026-11-23T18:00:00"))
    assert (f.code, f.severity, f.event, f.room) == (CODE, 2, "inactivity", "living_room")
    assert f.at == at("2026-11-23T14:00:00")
    ev = f.evidence
    assert ev["last_activity"] == {"device": "pir-living", "room": "living_room",
                                   "kind": "motion", "at": "2026-11-23T10:00+08:00"}
    assert ev["quiet_for_s"] == 4 * 3600 and ev["limit_this_hour_s"] == 4 * 3600
    assert ev["limits_source"] == "cold start, ability level 2"
    assert "degraded_coverage" not in ev
    # activity resumes: the next quiet spell can alarm again
    move(s, "pir-bed", at("2026-11-23T18:30:00"))
    assert len(run(s, at("2026-11-23T18:32:00"), at("2026-11-24T06:00:00"))) == 1


def test_a_night_is_measured_against_the_night_limit_across_midnight():
    s = ActivityState()
    see(s, "pir-living", "motion", True, at("2026-11-23T21:00:00"))  # asleep in the armchair?
    # 21:00-07:00 at the 12 h night rate spends 10/12; the rest at the 4 h day rate takes
    # 40 min: 07:40 Shanghai (23:40 UTC, the day before in UTC)
    assert run(s, at("2026-11-23T21:01:00"), at("2026-11-24T07:39:00")) == []
    (f,) = run(s, at("2026-11-24T07:40:00"), at("2026-11-24T12:00:00"))
    assert (f.event, f.at) == ("inactivity", at("2026-11-24T07:40:00"))


def test_a_night_in_the_bedroom_is_judged_by_the_time_to_be_up():
    s = ActivityState()
    see(s, "pir-bed", "motion", True, at("2026-11-23T21:00:00"))  # off to bed
    assert run(s, at("2026-11-23T21:01:00"), at("2026-11-24T09:59:00")) == []
    (f,) = run(s, at("2026-11-24T10:00:00"), at("2026-11-24T12:00:00"))
    assert (f.event, f.at) == ("not_up", at("2026-11-24T10:00:00"))


def test_a_spell_from_night_into_morning_moves_smoothly_between_limits():
    # 05:00 to 07:00 spends 2/12 of the budget; the rest (5/6 × 4 h) by day: 10:20
    got = spent(at("2026-11-24T05:00:00"), at("2026-11-24T10:20:00"), CFG.limits_s, TZ)
    assert got == pytest.approx(1.0)


def test_door_then_silence_is_away_not_inactive_and_the_return_is_noticed():
    s = ActivityState()
    see(s, "door", "contact", "closed", at("2026-11-23T09:00:00"))  # state, not activity
    see(s, "pir-living", "motion", True, at("2026-11-23T09:30:00"))
    see(s, "door", "contact", "open", at("2026-11-23T09:40:00"))
    see(s, "door", "contact", "closed", at("2026-11-23T09:40:30"))
    see(s, "pir-hall", "motion", True, at("2026-11-23T09:40:45"))  # hall PIR lag
    # away: no inactivity alert all day; one check call when night comes and still nothing
    found = run(s, at("2026-11-23T09:41:00"), at("2026-11-24T09:00:00"), every=300)
    (f,) = found
    assert f.event == "not_returned"
    assert at("2026-11-23T22:00:00") <= f.at < at("2026-11-23T22:05:00")  # the first tick
    assert s.mode == AWAY and s.mode_since == at("2026-11-23T09:40:30")
    see(s, "door", "contact", "open", at("2026-11-24T10:00:00"))
    assert s.mode == OCCUPIED
    assert [c[:2] for c in s.changes] == [(OCCUPIED, AWAY), (AWAY, OCCUPIED)]
    # home again, then quiet: watched again
    assert len(run(s, at("2026-11-24T10:01:00"), at("2026-11-24T15:00:00"))) == 1


def test_movement_in_a_room_right_after_the_door_shut_is_someone_back_inside():
    # a parcel taken in at the door, back to the sofa, and a fall there a moment later
    s = ActivityState()
    see(s, "door", "contact", "closed", at("2026-11-23T09:00:00"))
    see(s, "door", "contact", "open", at("2026-11-23T10:38:22"))
    see(s, "door", "contact", "closed", at("2026-11-23T10:38:49"))
    see(s, "pir-living", "motion", True, at("2026-11-23T10:39:15"))
    (f,) = run(s, at("2026-11-23T10:40:00"), at("2026-11-23T15:00:00"), every=300)
    assert f.event == "inactivity" and s.mode == OCCUPIED


def test_movement_inside_after_the_door_closed_means_someone_is_home():
    s = ActivityState()
    see(s, "door", "contact", "closed", at("2026-11-23T09:00:00"))
    see(s, "door", "contact", "open", at("2026-11-23T09:40:00"))
    see(s, "door", "contact", "closed", at("2026-11-23T09:41:00"))  # a visitor left
    see(s, "pir-bed", "motion", True, at("2026-11-23T09:45:00"))
    run(s, at("2026-11-23T09:46:00"), at("2026-11-23T10:30:00"))
    assert s.mode == OCCUPIED


def test_a_radar_still_seeing_someone_keeps_the_home_occupied():
    s = ActivityState()
    see(s, "radar-bath", "presence", True, at("2026-11-23T09:30:00"))
    see(s, "door", "contact", "closed", at("2026-11-23T09:00:00"))
    see(s, "door", "contact", "open", at("2026-11-23T09:40:00"))
    see(s, "door", "contact", "closed", at("2026-11-23T09:41:00"))
    # the radar keeps saying "present": that is someone lying still, not proof of life
    for k in range(30):
        see(s, "radar-bath", "presence", True, at("2026-11-23T09:45:00") + k * 600)
    found = run(s, at("2026-11-23T09:46:00"), at("2026-11-23T14:30:00"))
    assert s.mode == OCCUPIED
    assert len(found) == 1 and found[0].evidence["last_activity"]["kind"] == "contact"


def test_repeated_contact_state_is_not_activity():
    s = ActivityState()
    see(s, "door", "contact", "closed", at("2026-11-23T09:00:00"))
    see(s, "pir-bed", "motion", True, at("2026-11-23T10:00:00"))
    for k in range(8):  # the whole state repeated with each battery report
        see(s, "door", "contact", "closed", at("2026-11-23T10:30:00") + k * 1800)
    assert len(run(s, at("2026-11-23T10:01:00"), at("2026-11-23T14:01:00"))) == 1


def test_an_offline_motion_sensor_is_named_and_a_blind_home_raises_nothing():
    s = ActivityState()
    see(s, "pir-living", "motion", True, at("2026-11-23T10:00:00"))
    (f,) = run(s, at("2026-11-23T13:00:00"), at("2026-11-23T14:00:00"),
               offline=frozenset({"pir-bed"}))
    assert f.evidence["degraded_coverage"] == [{"device": "pir-bed", "room": "bedroom"}]
    blind = ActivityState()
    see(blind, "pir-living", "motion", True, at("2026-11-23T10:00:00"))
    every_sensor = frozenset({"pir-living", "pir-bed", "radar-bath", "pir-hall"})
    assert run(blind, at("2026-11-23T10:01:00"), at("2026-11-23T20:00:00"),
               offline=every_sensor) == []


def test_a_couple_is_one_home_either_person_moving_counts():
    s = ActivityState()
    see(s, "pir-bed", "motion", True, at("2026-11-23T10:00:00"))  # one rests in the bedroom
    move(s, "pir-living", at("2026-11-23T12:00:00"))  # the other moves about
    assert run(s, at("2026-11-23T12:02:00"), at("2026-11-23T16:01:00")) == []


def test_retained_state_at_start_is_not_activity_and_the_clock_starts_at_the_first_tick():
    s = ActivityState()
    step(s, Observation("h1", "pir-bed", "motion", True, 100.0, "bedroom"), 100.0, CFG,
         prime=True)
    start = at("2026-11-23T10:00:00")
    assert tick(s, start, CFG) == []
    assert s.last_kind == "gateway_start" and s.last_at == start
    assert len(run(s, start, start + 4 * HOUR)) == 1


@pytest.mark.parametrize(("level", "day_h", "night_h"), [(0, 6, 12), (2, 4, 12), (4, 2, 12),
                                                         (None, 4, 12)])
def test_cold_start_limits_follow_the_ability_level(level, day_h, night_h):
    limits = cold_start_limits(level)
    assert len(limits) == 24
    assert limits[12] == day_h * HOUR and limits[3] == night_h * HOUR
    assert limits[7] == day_h * HOUR and limits[21] == night_h * HOUR


def test_quiet_after_the_bathroom_is_an_overstay_long_before_inactivity():
    s = ActivityState()
    see(s, "pir-living", "motion", True, at("2026-11-23T10:00:00"))
    see(s, "radar-bath", "presence", True, at("2026-11-23T10:05:00"))
    assert run(s, at("2026-11-23T10:06:00"), at("2026-11-23T11:04:00")) == []
    (f,) = run(s, at("2026-11-23T11:05:00"), at("2026-11-23T16:00:00"))
    assert (f.event, f.room, f.severity) == ("bathroom_overstay", "bathroom", 2)
    assert f.evidence["in_bathroom_since"] == "2026-11-23T10:05+08:00"
    assert f.evidence["limit_s"] == 60 * 60


def test_the_bathroom_radar_seeing_nobody_means_they_left():
    s = ActivityState()
    see(s, "radar-bath", "presence", True, at("2026-11-23T10:05:00"))
    see(s, "radar-bath", "presence", False, at("2026-11-23T10:10:00"))  # left, to a sofa
    found = run(s, at("2026-11-23T10:11:00"), at("2026-11-23T14:10:00"))
    assert [f.event for f in found] == ["inactivity"]  # the day limit, not the bathroom's


def test_a_night_exit_without_return_is_wandering_and_a_return_cancels_it():
    s = ActivityState()
    see(s, "door", "contact", "closed", at("2026-11-23T20:00:00"))
    see(s, "door", "contact", "open", at("2026-11-24T02:00:00"))
    see(s, "door", "contact", "closed", at("2026-11-24T02:00:20"))
    assert run(s, at("2026-11-24T02:01:00"), at("2026-11-24T02:09:00")) == []
    (f,) = run(s, at("2026-11-24T02:10:00"), at("2026-11-24T02:30:00"))
    assert (f.event, f.severity) == ("night_wandering", 2)
    assert f.evidence["door_opened_at"] == "2026-11-24T02:00+08:00"
    back = ActivityState()
    see(back, "door", "contact", "closed", at("2026-11-23T20:00:00"))
    see(back, "door", "contact", "open", at("2026-11-24T02:00:00"))
    see(back, "door", "contact", "closed", at("2026-11-24T02:00:20"))
    see(back, "pir-living", "motion", True, at("2026-11-24T02:03:00"))  # only the rubbish
    assert not [f for f in run(back, at("2026-11-24T02:04:00"), at("2026-11-24T03:00:00"))
                if f.event == "night_wandering"]


def test_for_a_resident_with_dementia_the_door_at_night_is_enough():
    cfg = ActivityConfig(**{**{f: getattr(CFG, f) for f in CFG.__slots__},
                            "wander_return_s": 0.0})
    s = ActivityState()
    step(s, Observation("h1", "door", "contact", "closed", 0.0), 0.0, cfg)
    (f,) = step(s, Observation("h1", "door", "contact", "open", at("2026-11-24T03:00:00")),
                at("2026-11-24T03:00:00"), cfg)
    assert (f.event, f.severity) == ("night_wandering", 1)
    day = ActivityState()
    step(day, Observation("h1", "door", "contact", "closed", 0.0), 0.0, cfg)
    assert step(day, Observation("h1", "door", "contact", "open", at("2026-11-24T09:00:00")),
                at("2026-11-24T09:00:00"), cfg) == []  # by day, going out is living


def test_not_up_by_the_hour_once_a_day():
    cfg = ActivityConfig(**{**{f: getattr(CFG, f) for f in CFG.__slots__},
                            "limits_s": (14 * HOUR,) * 24, "wake_by_h": 10.0})
    s = ActivityState()
    step(s, Observation("h1", "pir-bed", "motion", True, at("2026-11-23T23:00:00"),
                        "bedroom"), at("2026-11-23T23:00:00"), cfg)
    found, t = [], at("2026-11-24T04:00:00")  # watching since before the morning
    while t <= at("2026-11-24T12:00:00"):
        found += tick(s, t, cfg)
        t += 60
    (f,) = found
    assert (f.event, f.at) == ("not_up", at("2026-11-24T10:00:00"))
    assert f.evidence["up_by"] == "10:00"
    assert f.evidence["last_activity"]["at"] == "2026-11-23T23:00+08:00"


def test_a_recorded_day_replays_on_a_virtual_clock():
    from detectors.core import Core, CoreConfig  # noqa: PLC0415

    core = Core(CoreConfig(activity=CFG))
    day = [Observation("h1", "pir-living", "motion", True, at("2026-11-23T09:00:00"),
                       "living_room"),
           Observation("h1", "pir-bed", "motion", True, at("2026-11-23T10:00:00"), "bedroom"),
           Observation("h1", "pir-bed", "motion", True, at("2026-11-23T10:01:30"), "bedroom")]
    found = core.replay(day, until=at("2026-11-23T16:00:00"))
    (f,) = [f for f in found if f.detector == "activity"]
    assert f.at == at("2026-11-23T14:02:00") and f.room == "bedroom"  # the first tick due


def test_a_missed_daily_checkin_is_a_care_call_once_a_day():
    cfg = ActivityConfig(**{**{f: getattr(CFG, f) for f in CFG.__slots__},
                            "sensors": {**SENSORS, "intercom": "living_room"},
                            "checkin_by_h": 10.0})
    s = ActivityState()

    def ticks(start: str, end: str) -> list:
        found, t = [], at(start)
        while t <= at(end):
            found += [f for f in tick(s, t, cfg) if f.event == "missed_checkin"]
            t += 300
        return found

    step(s, Observation("h1", "pir-living", "motion", True, at("2026-11-23T08:00:00")),
         at("2026-11-23T08:00:00"), cfg)
    step(s, Observation("h1", "intercom", "checkin", True, at("2026-11-23T08:30:00")),
         at("2026-11-23T08:30:00"), cfg)
    assert ticks("2026-11-23T09:00:00", "2026-11-23T12:00:00") == []  # checked in
    step(s, Observation("h1", "pir-living", "motion", True, at("2026-11-24T08:00:00")),
         at("2026-11-24T08:00:00"), cfg)
    (f,) = ticks("2026-11-24T09:00:00", "2026-11-24T12:00:00")
    assert (f.severity, f.at) == (3, at("2026-11-24T10:00:00"))
    assert f.evidence["checkin_by"] == "10:00" and f.evidence["last_checkin_day"] == "2026-11-23"


def test_out_of_bed_at_night_and_not_back():
    cfg = ActivityConfig(**{**{f: getattr(CFG, f) for f in CFG.__slots__},
                            "sensors": {**SENSORS, "bed": "bedroom"},
                            "passive": CFG.passive | {"bed"}})
    s = ActivityState()

    def bed(value: bool, when: str) -> None:
        step(s, Observation("h1", "bed", "in_bed", value, at(when), "bedroom"), at(when), cfg)

    def ticks(start: str, end: str) -> list:
        found, t = [], at(start)
        while t <= at(end):
            found += [f for f in tick(s, t, cfg) if f.event == "bed_exit"]
            t += 60
        return found

    bed(True, "2026-11-23T22:00:00")
    bed(False, "2026-11-24T02:00:00")  # to the toilet
    step(s, Observation("h1", "radar-bath", "presence", True, at("2026-11-24T02:02:00"),
                        "bathroom"), at("2026-11-24T02:02:00"), cfg)
    bed(True, "2026-11-24T02:15:00")  # back
    assert ticks("2026-11-24T02:01:00", "2026-11-24T03:30:00") == []
    bed(False, "2026-11-24T03:30:00")
    (f,) = ticks("2026-11-24T03:31:00", "2026-11-24T05:00:00")
    assert f.at == at("2026-11-24T04:15:00") and f.evidence["limit_s"] == 45 * 60
    bed(True, "2026-11-24T05:00:00")
    bed(False, "2026-11-24T07:40:00")  # getting up in the morning is not a bed exit
    assert ticks("2026-11-24T07:41:00", "2026-11-24T09:00:00") == []


def test_a_ghost_or_the_bedroom_is_not_getting_up_but_the_kitchen_twice_is():
    cfg = ActivityConfig(**{**{f: getattr(CFG, f) for f in CFG.__slots__},
                            "limits_s": (14 * HOUR,) * 24, "wake_by_h": 9.0})

    def morning(*events: tuple[str, str, str]) -> list:
        s = ActivityState()
        tick(s, at("2026-11-24T00:00:00"), cfg)  # watching through the night
        for device, kind, when in events:
            step(s, Observation("h1", device, kind, True, at(when), SENSORS[device]),
                 at(when), cfg)
        found, t = [], at("2026-11-24T01:00:00")
        while t <= at("2026-11-24T11:00:00"):
            found += [f.event for f in tick(s, t, cfg)]
            t += 300
        return found

    assert morning(("pir-bed", "motion", "2026-11-24T06:00:00"),  # turning over
                   ("pir-bed", "motion", "2026-11-24T06:05:00"),
                   ("pir-living", "motion", "2026-11-24T06:40:00")) == ["not_up"]  # a ghost
    assert morning(("pir-living", "motion", "2026-11-24T06:40:00"),  # the toilet and back
                   ("radar-bath", "presence", "2026-11-24T06:42:00"),
                   ("pir-bed", "motion", "2026-11-24T06:46:00")) == ["not_up"]
    assert morning(("pir-living", "motion", "2026-11-24T06:40:00"),
                   ("pir-living", "motion", "2026-11-24T06:48:00"),
                   ("pir-living", "motion", "2026-11-24T06:52:00")) == []  # up and about



# --- away mode: the away key or the intercom ------------------------------------------------

KEY_SENSORS = {**SENSORS, "key": "entrance"}
KEY_CFG = ActivityConfig(home="h1", sensors=KEY_SENSORS, entrance=frozenset({"door"}),
                         passive=CFG.passive, presence=CFG.presence, limits_s=CFG.limits_s,
                         tz=TZ)


def key_see(s: ActivityState, device: str, kind: str, value, t: float,
            cfg: ActivityConfig = KEY_CFG) -> list:
    return step(s, Observation("h1", device, kind, value, t, cfg.sensors.get(device)), t, cfg)


def key_run(s: ActivityState, start: float, end: float,
            cfg: ActivityConfig = KEY_CFG) -> list:
    found, t = [], start
    while t <= end:
        found += tick(s, t, cfg)
        t += 300.0
    return found


def leave_with_the_key(s: ActivityState, t: float) -> None:
    key_see(s, "door", "contact", "closed", t - 600)
    key_see(s, "pir-living", "motion", True, t - 120)
    key_see(s, "key", "away_mode", "away", t)
    key_see(s, "door", "contact", "open", t + 60)
    key_see(s, "door", "contact", "closed", t + 80)


def test_away_by_the_key_pages_nobody_for_a_week_and_the_door_is_the_return():
    s = ActivityState()
    leave_with_the_key(s, at("2026-11-23T20:30:00"))  # to a daughter's, in the evening
    assert (s.mode, s.away_by_key) == (AWAY, True)
    assert s.mode_since == at("2026-11-23T20:31:20")
    # a week away: no inactivity, no not-up, no "not returned" check call at night, even
    # with a PIR's ghost now and then and the door bouncing as it latched
    key_see(s, "door", "contact", "open", at("2026-11-23T20:31:35"))
    key_see(s, "door", "contact", "closed", at("2026-11-23T20:31:40"))
    assert s.mode == AWAY
    found = key_run(s, at("2026-11-23T20:35:00"), at("2026-11-26T12:00:00"))
    key_see(s, "pir-living", "motion", True, at("2026-11-26T12:00:00"))  # a ghost
    found += key_run(s, at("2026-11-26T12:05:00"), at("2026-11-30T15:00:00"))
    assert found == [] and s.mode == AWAY
    # home: the door, then watching from the return
    key_see(s, "door", "contact", "open", at("2026-11-30T15:00:00"))
    assert s.mode == OCCUPIED and not s.away_by_key
    key_see(s, "door", "contact", "closed", at("2026-11-30T15:00:20"))
    key_see(s, "pir-living", "motion", True, at("2026-11-30T15:01:00"))
    (f,) = key_run(s, at("2026-11-30T15:05:00"), at("2026-11-30T20:00:00"))
    assert f.event == "inactivity" and f.at == at("2026-11-30T19:05:00")


def test_away_pressed_by_mistake_changes_nothing():
    s = ActivityState()
    key_see(s, "pir-living", "motion", True, at("2026-11-23T09:58:00"))
    key_see(s, "key", "away_mode", "away", at("2026-11-23T10:00:00"))
    # nobody goes out; the resident sits down and later falls: the day limit applies as if
    # nothing had been pressed (4 h from the press, the last activity)
    (f,) = key_run(s, at("2026-11-23T10:05:00"), at("2026-11-23T15:00:00"))
    assert (f.event, f.at, s.mode) == ("inactivity", at("2026-11-23T14:00:00"), OCCUPIED)
    assert s.away_pressed_at is None
    # the door shutting an hour after the press is not "gone out by the key"
    s = ActivityState()
    key_see(s, "key", "away_mode", "away", at("2026-11-23T10:00:00"))
    key_run(s, at("2026-11-23T10:05:00"), at("2026-11-23T11:00:00"))
    key_see(s, "door", "contact", "open", at("2026-11-23T11:00:00"))
    key_see(s, "door", "contact", "closed", at("2026-11-23T11:00:20"))
    assert not s.away_by_key


def test_away_by_the_key_ends_with_home_pressed_a_press_or_sustained_movement():
    for returned in ("home_key", "checkin", "in_bed", "movement"):
        s = ActivityState()
        leave_with_the_key(s, at("2026-11-23T09:00:00"))
        t = at("2026-11-24T16:00:00")
        if returned == "home_key":
            key_see(s, "key", "away_mode", "home", t)
        elif returned == "checkin":
            key_see(s, "sos", "checkin", True, t)
        elif returned == "in_bed":
            key_see(s, "pir-bed", "in_bed", False, t - 1)
            key_see(s, "pir-bed", "in_bed", True, t)
        else:  # came in by a door no sensor watches (or its contact's battery is dead)
            for i in range(0, 11, 2):
                key_see(s, "pir-living", "motion", True, t + i * 60)
                assert s.mode == (AWAY if i < 10 else OCCUPIED), (returned, i)
        assert s.mode == OCCUPIED and not s.away_by_key, returned
        # watched again: a long quiet after the return alarms
        assert [f.event for f in key_run(s, t + 900, t + 12 * HOUR)] == ["inactivity"]


def test_without_an_entrance_door_the_key_sets_away_at_the_press():
    cfg = ActivityConfig(home="h1", sensors={"pir": "living_room", "intercom": "living_room"},
                         passive=frozenset({"pir"}), limits_s=cold_start_limits(2), tz=TZ)
    s = ActivityState()
    key_see(s, "intercom", "away_mode", "away", at("2026-11-23T10:00:00"), cfg)
    assert s.mode == AWAY and s.away_by_key
    assert key_run(s, at("2026-11-23T10:05:00"), at("2026-11-25T10:00:00"), cfg) == []


def test_coming_home_late_is_not_night_wandering():
    cfg = ActivityConfig(home="h1", sensors=KEY_SENSORS, entrance=frozenset({"door"}),
                         passive=CFG.passive, limits_s=CFG.limits_s, wander_return_s=0.0,
                         tz=TZ)
    s = ActivityState()
    leave_with_the_key(s, at("2026-11-23T17:00:00"))
    assert key_see(s, "door", "contact", "open", at("2026-11-23T23:40:00"), cfg) == []
    assert s.mode == OCCUPIED
    # … but the door opening again at night is
    key_see(s, "door", "contact", "closed", at("2026-11-23T23:40:30"), cfg)
    (f,) = key_see(s, "door", "contact", "open", at("2026-11-24T01:10:00"), cfg)
    assert (f.event, f.severity) == ("night_wandering", 1)


# --- a bed-bound resident: the PIR over the bed fires on small movements ---------------------

BB_SENSORS = {"door": "entrance", "pir-bed": "bedroom", "pir-kitchen": "kitchen"}
BB_CFG = ActivityConfig(home="h1", sensors=BB_SENSORS, entrance=frozenset({"door"}),
                        passive=frozenset(BB_SENSORS), bedbound=True, tz=TZ,
                        limits_s=tuple((8.0 if 7 <= h < 21 else 14.0) * 3600
                                       for h in range(24)))


def bb(s, device, kind, value, t):
    return step(s, Observation("h1", device, kind, value, t, BB_SENSORS[device]), t, BB_CFG)


def bb_run(s, start, end, offline=frozenset()):
    found, t = [], start
    while t <= end:
        found += tick(s, t, BB_CFG, offline)
        t += 300.0
    return found


def test_bed_bound_small_movements_in_bed_do_not_stand_for_care():
    s = ActivityState()
    bb(s, "door", "contact", "open", at("2026-11-23T08:00:00"))  # the carer's morning visit
    bb(s, "door", "contact", "closed", at("2026-11-23T08:00:20"))
    bb(s, "pir-kitchen", "motion", True, at("2026-11-23T08:30:00"))
    bb(s, "door", "contact", "open", at("2026-11-23T09:00:00"))
    bb(s, "door", "contact", "closed", at("2026-11-23T09:00:20"))
    found, t = [], at("2026-11-23T09:05:00")
    while t < at("2026-11-23T19:00:00"):  # the PIR over the bed fires every 20 min all day
        bb(s, "pir-bed", "motion", True, t)
        found += bb_run(s, t, t + 1199)
        t += 1200
    # no carer since 09:00: the care limit (8 h) is spent at 17:00, whatever the bed PIR says
    (f,) = found
    assert f.event == "inactivity" and at("2026-11-23T17:00:00") <= f.at < at(
        "2026-11-23T17:06:00")
    assert f.evidence["last_activity"]["device"] == "door"


def test_bed_bound_movements_in_bed_stopping_is_an_alert_and_not_up_does_not_apply():
    s = ActivityState()
    bb(s, "pir-kitchen", "motion", True, at("2026-11-23T06:00:00"))  # a carer (night visit)
    bb(s, "pir-bed", "motion", True, at("2026-11-23T06:30:00"))
    bb(s, "pir-bed", "motion", True, at("2026-11-23T07:10:00"))
    found = bb_run(s, at("2026-11-23T07:15:00"), at("2026-11-23T12:00:00"))
    (f,) = found  # never up by 10:00 is no news for someone bed-bound; stillness is
    assert f.event == "still_in_bed" and f.severity == 2 and f.room == "bedroom"
    assert at("2026-11-23T10:10:00") <= f.at < at("2026-11-23T10:16:00")
    assert f.evidence["last_movement_in_bed"] == "2026-11-23T07:10+08:00"
    # the bedroom PIR offline: reported as a device, not as a still resident
    s = ActivityState()
    bb(s, "pir-kitchen", "motion", True, at("2026-11-23T06:00:00"))
    bb(s, "pir-bed", "motion", True, at("2026-11-23T07:10:00"))
    assert bb_run(s, at("2026-11-23T07:15:00"), at("2026-11-23T12:00:00"),
                  offline=frozenset({"pir-bed"})) == []


def test_a_visitor_leaving_the_resident_in_bed_does_not_make_the_home_away():
    s = ActivityState()
    see(s, "door", "contact", "closed", at("2026-11-23T16:00:00"))
    see(s, "pir-bed", "in_bed", False, at("2026-11-23T16:00:00"))
    see(s, "pir-bed", "in_bed", True, at("2026-11-23T19:30:00"))  # helped to bed
    see(s, "pir-living", "motion", True, at("2026-11-23T20:00:00"))  # the daughter
    see(s, "door", "contact", "open", at("2026-11-23T20:10:00"))  # leaves
    see(s, "door", "contact", "closed", at("2026-11-23T20:10:20"))
    found = run(s, at("2026-11-23T20:11:00"), at("2026-11-23T23:00:00"), every=300)
    assert s.mode == OCCUPIED and found == []  # no "not returned" check call at 22:00


# --- a PIR's ghost is not a person ------------------------------------------------------------


def test_a_ghost_during_a_long_lie_does_not_put_the_alarm_off():
    s = ActivityState()
    move(s, "pir-living", at("2026-11-23T09:58:30"))  # then a fall, at 10:00
    see(s, "pir-bed", "motion", True, at("2026-11-23T12:00:00"))  # sunlight on the bed
    see(s, "pir-bed", "motion", True, at("2026-11-23T12:00:27"))
    assert run(s, at("2026-11-23T12:01:00"), at("2026-11-23T13:59:00")) == []
    (f,) = run(s, at("2026-11-23T14:00:00"), at("2026-11-23T16:00:00"))
    assert f.event == "inactivity" and f.at == at("2026-11-23T14:00:00")
    assert f.evidence["last_activity"]["at"] == "2026-11-23T10:00+08:00"
    assert f.evidence["blips_set_aside"] == [{"device": "pir-bed",
                                              "at": "2026-11-23T12:00+08:00"}]


def test_a_ghost_in_an_empty_home_does_not_bring_the_resident_back():
    s = ActivityState()
    see(s, "door", "contact", "closed", at("2026-11-23T09:00:00"))
    move(s, "pir-living", at("2026-11-23T09:30:00"))
    see(s, "door", "contact", "open", at("2026-11-23T09:40:00"))
    see(s, "door", "contact", "closed", at("2026-11-23T09:40:30"))
    run(s, at("2026-11-23T09:41:00"), at("2026-11-23T12:59:00"), every=300)
    assert s.mode == AWAY
    see(s, "pir-living", "motion", True, at("2026-11-23T13:00:00"))  # the curtains
    assert s.mode == OCCUPIED  # for now: it may be them
    found = run(s, at("2026-11-23T13:01:00"), at("2026-11-23T19:00:00"), every=300)
    assert s.mode == AWAY and found == []  # half an hour of nothing: a ghost, still out


def test_someone_who_got_up_and_sat_down_again_is_not_a_ghost():
    s = ActivityState()
    move(s, "pir-living", at("2026-11-23T09:00:00"))
    see(s, "pir-living", "motion", True, at("2026-11-23T12:00:00"))  # woke from a doze
    see(s, "pir-living", "motion", True, at("2026-11-23T12:12:00"))  # fidgets, as sitting
    assert run(s, at("2026-11-23T12:13:00"), at("2026-11-23T16:11:00")) == []
    assert s.blips == [] and s.last_at == at("2026-11-23T12:12:00")
