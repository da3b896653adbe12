"""Routine deviation over made-up histories with a known answer: a regular home stays quiet,
several much quieter days, disturbed nights and a slow decline each raise one care call, and
days away, a dead sensor or a gateway that was off are never taken for a resident doing less."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from detectors import routine
from detectors.baseline import History

TZ = ZoneInfo("Asia/Shanghai")
DAY = 86400.0
START = datetime(2026, 9, 1, tzinfo=TZ).timestamp()  # a local midnight
# movements per hour of the day for this resident: asleep at night, busy by day
PROFILE = [1, 1, 0, 0, 0, 1, 4, 12, 14, 10, 9, 10, 12, 8, 6, 8, 10, 13, 12, 10, 8, 5, 2, 1]
ROOMS = ["kitchen", "living_room", "bathroom", "bedroom"]


def home(days: int, factor=lambda d, h: 1.0, seed: int = 5) -> History:
    """`days` days of Poisson movements at PROFILE × factor(day, hour), every hour heard."""
    rng = np.random.default_rng(seed)
    h = History()
    for d in range(days):
        for hour in range(24):
            t0 = START + d * DAY + hour * 3600
            h.heard.add(math.floor(t0 / 3600))
            n = rng.poisson(PROFILE[hour] * factor(d, hour))
            for t in sorted(rng.uniform(t0, t0 + 3600, n)):
                h.activity.append(float(t))
                h.rooms.append("bedroom" if hour < 6 or hour >= 22 else
                               ROOMS[int(rng.integers(len(ROOMS)))])
    return h


def at_3am(day: int) -> float:
    return START + day * DAY + 3 * 3600


def assess_each_night(h: History, days: int) -> list:
    found, raised = [], None
    for d in range(1, days + 1):
        _, f = routine.assess(h, at_3am(d), TZ, "h1", raised)
        if f is not None:
            found.append((d, f))
            raised = f.at
    return found


def test_a_regular_home_scores_low_and_raises_nothing():
    h = home(60)
    assert assess_each_night(h, 60) == []
    scores = routine.scores(h, at_3am(60), TZ, days=14)
    assert len(scores) == 14
    assert max(s.score for s in scores) < routine.Z
    assert all(0.75 < s.ratio < 1.3 for s in scores)


def test_nothing_is_judged_while_the_home_is_still_being_learned():
    h = home(12, lambda d, hour: 0.2 if d >= 9 else 1.0)
    assert routine.scores(h, at_3am(12), TZ) == []
    assert assess_each_night(h, 12) == []


def test_three_much_quieter_days_raise_one_care_call_with_readable_evidence():
    h = home(45, lambda d, hour: 0.35 if 35 <= d <= 40 else 1.0)
    found = assess_each_night(h, 45)
    assert len(found) == 1  # one episode, one call (not again within QUIET_DAYS)
    day, f = found[0]
    assert day == 38  # scored at 03:00 after the third quiet day (days 35, 36, 37)
    assert (f.detector, f.code, f.severity, f.event) == ("routine", 641, 3,
                                                        "routine_deviation")
    ev = f.evidence
    assert ev["pattern"] == "much_less_activity"
    assert [d["day"] for d in ev["days"]] == ["2026-10-06", "2026-10-07", "2026-10-08"]
    assert all(d["ratio"] < routine.LOW_RATIO and d["movements"] < d["expected"]
               for d in ev["days"])
    assert "3 days in a row" in ev["rule"]


def test_two_quiet_days_are_not_enough():
    h = home(45, lambda d, hour: 0.35 if d in (35, 36) else 1.0)
    assert assess_each_night(h, 45) == []


def test_disturbed_nights_raise_a_care_call():
    busy = {22: 12.0, 23: 14.0, 0: 16.0, 1: 14.0, 2: 10.0}
    h = home(45, lambda d, hour: busy.get(hour, 1.0) if 34 <= d <= 38 else 1.0)
    (day, f), = assess_each_night(h, 45)
    # the night of day 33 (its small hours are busy too), 34 and 35: judged at 03:00 on day 36
    assert f.evidence["pattern"] == "disturbed_nights" and day == 36
    nights = f.evidence["days"]
    assert all(n["night_movements"] > 2.5 * n["usual_night"] for n in nights)


def test_a_slow_decline_is_caught_though_no_single_day_stands_out():
    # activity falls linearly to 60 % over three weeks from day 35
    def decline(d, hour):
        return 1.0 - 0.4 * min(1.0, max(0.0, (d - 35) / 21))

    h = home(63, decline)
    found = assess_each_night(h, 63)
    assert found, "decline not caught"
    day, f = found[0]
    assert f.evidence["pattern"] == "gradual_decline"
    assert f.evidence["week"]["ratio"] < routine.WEEK_RATIO
    assert 40 < day < 63
    assert not any(s.low for s in routine.scores(h, at_3am(day), TZ))  # no single day


def test_days_away_are_not_scored_and_never_look_like_decline():
    h = home(50)
    # a week at a daughter's: away, nothing moves at home
    a, b = START + 36 * DAY, START + 43 * DAY
    keep = [k for k, t in enumerate(h.activity) if not a <= t < b]
    h.activity = [h.activity[k] for k in keep]
    h.rooms = [h.rooms[k] for k in keep]
    h.away = [(a, b)]
    assert assess_each_night(h, 50) == []
    days = {s.day for s in routine.scores(h, at_3am(50), TZ, days=16)}
    assert "2026-10-08" not in days  # day 37, away all day


def test_a_dead_sensor_or_a_gateway_that_was_off_is_not_a_quiet_resident():
    for cause in ("outage", "gateway_off"):
        h = home(50)
        a, b = START + 36 * DAY, START + 41 * DAY
        keep = [k for k, t in enumerate(h.activity) if not a <= t < b]
        h.activity = [h.activity[k] for k in keep]
        h.rooms = [h.rooms[k] for k in keep]
        if cause == "outage":
            h.outages = [(a, b)]
        else:
            h.heard = {x for x in h.heard if not a <= x * 3600 < b}
        assert assess_each_night(h, 50) == [], cause


def test_rooms_used_much_less_are_named():
    # the kitchen left unused for three days (not eating?), the rest as ever
    h = home(45)
    quiet = [k for k, t in enumerate(h.activity)
             if START + 35 * DAY <= t < START + 38 * DAY and h.rooms[k] == "kitchen"]
    for k in reversed(quiet):
        del h.activity[k], h.rooms[k]
    last = routine.scores(h, at_3am(38), TZ)[-1]
    assert [r for r, _, _ in last.rooms_less_used] == ["kitchen"]
