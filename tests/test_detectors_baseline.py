"""Learned limits: a home's normal quiet never alarms, thin history leans on the cold start,
away days and outages teach nothing."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detectors import baseline
from detectors.activity import ActivityConfig, cold_start_limits, spent
from detectors.baseline import History, history, learn
from devices.observation import Observation

TZ = ZoneInfo("Asia/Shanghai")
COLD = cold_start_limits(2)
DAY0 = datetime(2026, 10, 1, tzinfo=TZ)


def routine(days: int, rng: np.random.Generator, *, nap_h: float = 2.0) -> list[float]:
    """Up ~06:30, busy every 10–30 min, a nap after lunch, to bed ~22:30."""
    out: list[float] = []
    for d in range(days):
        day = DAY0 + timedelta(days=d)
        t = (day + timedelta(hours=6.5 + rng.normal(0, 0.25))).timestamp()
        nap = (day + timedelta(hours=13)).timestamp()
        bed = (day + timedelta(hours=22.5 + rng.normal(0, 0.25))).timestamp()
        while t < bed:
            out.append(t)
            t += nap_h * 3600 if abs(t - nap) < 600 else rng.uniform(600, 1800)
        out.append(bed)
        for k in range(int(rng.integers(0, 3))):  # a toilet visit or two at night
            out.append(bed + 3600 * (2 + 2.5 * k) + rng.uniform(0, 1800))
    return sorted(out)


def mornings(times: list[float]) -> list[float]:
    """When the resident was up each day (their first activity after 05:00)."""
    first: dict = {}
    for t in times:
        local = datetime.fromtimestamp(t, TZ)
        if local.hour >= 5:
            first.setdefault(local.date(), t)
    return sorted(first.values())


def test_normal_quiet_never_alarms_and_the_nap_widens_the_afternoon():
    rng = np.random.default_rng(1)
    times = routine(28, rng)
    now = times[-1] + 3600
    b = learn(History(activity=times, up=mornings(times)), COLD, 10.0, now, TZ)
    assert b.days >= 28 and b.spells > 500 and b.source.startswith("learned from")
    gaps = np.diff(times)
    worst = max(spent(s, s + g, b.limits_s, TZ) for s, g in zip(times, gaps, strict=False))
    assert worst < 1.0  # not one false alarm on the days it learned from
    assert b.limits_s[14] > 2 * 3600 * 1.2  # the two-hour nap
    assert b.limits_s[10] < COLD[10]  # busy mornings: checked on sooner than the guess
    assert all(baseline.FLOOR_S <= v <= baseline.CAP_S for v in b.limits_s)
    assert 7.5 < b.wake_by_h < 8.5  # up by ~06:30 (sd 15 min), plus the margins
    # to bed ~22:30 (sd 15 min): a quiet bedroom is sleep from about 21:00, not 19:00
    assert b.sleep_from_h is not None and 20.8 < b.sleep_from_h < 21.5


def test_an_early_riser_who_goes_to_bed_at_eight_keeps_sleep_from_19():
    rng = np.random.default_rng(4)
    times: list[float] = []
    for d in range(21):  # busy 06:00-20:00 every 20 min, to bed ~20:00, up once at 01:00
        day = DAY0 + timedelta(days=d)
        bed = (day + timedelta(hours=20 + rng.normal(0, 0.1))).timestamp()
        t = (day + timedelta(hours=6)).timestamp()
        while t < bed:
            times.append(t)
            t += 1200
        times += [bed, (day + timedelta(hours=25)).timestamp()]
    b = learn(History(activity=sorted(times)), COLD, 10.0, max(times) + 3600, TZ)
    assert b.sleep_from_h == 19.0  # never earlier than 19:00


def test_a_fall_in_the_morning_is_caught_sooner_than_with_the_cold_start():
    rng = np.random.default_rng(2)
    times = routine(28, rng)
    b = learn(History(activity=times), COLD, 10.0, times[-1], TZ)
    fall = (DAY0 + timedelta(days=29, hours=10)).timestamp()
    learned = next(m for m in range(1, 600) if spent(fall, fall + m * 60, b.limits_s, TZ) >= 1)
    cold = next(m for m in range(1, 600) if spent(fall, fall + m * 60, COLD, TZ) >= 1)
    assert learned < cold


def test_thin_history_keeps_the_cold_start():
    times = routine(5, np.random.default_rng(3))
    b = learn(History(activity=times), COLD, 10.0, times[-1], TZ)
    assert b.limits_s == COLD and b.wake_by_h is None
    assert b.source == "cold start (history too short)"


def test_away_afternoons_and_outages_teach_nothing():
    rng = np.random.default_rng(4)
    times = routine(21, rng)
    now = times[-1] + 3600
    plain = learn(History(activity=times), COLD, 10.0, now, TZ)
    # every third afternoon out visiting family from 14:30 to 21:30: nothing moves at home
    away, out = [], []
    for d in range(0, 21, 3):
        gone = (DAY0 + timedelta(days=d, hours=14.5)).timestamp()
        back = gone + 7 * 3600
        away.append((gone, back))
        out += [t for t in times if gone < t < back]
    kept = [t for t in times if t not in set(out)]
    unlabelled = learn(History(activity=kept), COLD, 10.0, now, TZ)
    labelled = learn(History(activity=kept, away=away), COLD, 10.0, now, TZ)
    assert unlabelled.limits_s[17] > plain.limits_s[17] * 1.3  # a 7-hour "quiet" afternoon
    assert labelled.limits_s[17] <= plain.limits_s[17] * 1.05
    # a 6-hour dead spell during a sensor outage does not stretch the afternoon
    t = (DAY0 + timedelta(days=22, hours=12)).timestamp()
    outage = [*times, t, t + 6 * 3600]
    learned = learn(History(activity=outage, outages=[(t - 60, t + 6 * 3600)]), COLD, 10.0,
                    t + 6 * 3600, TZ)
    assert learned.limits_s[14] <= plain.limits_s[14] * 1.05


def test_history_is_replayed_with_the_detectors_own_rules():
    cfg = ActivityConfig(home="h", sensors={"door": "entrance", "pir": "living_room"},
                         passive=frozenset({"door", "pir"}), entrance=frozenset({"door"}),
                         tz=TZ)
    t0 = (DAY0 + timedelta(hours=8)).timestamp()
    obs = [Observation("h", "door", "contact", "closed", t0 - 60),
           Observation("h", "pir", "motion", True, t0),
           Observation("h", "pir", "motion", True, t0),  # a second PIR report of the same
           Observation("h", "door", "contact", "open", t0 + 600),
           Observation("h", "door", "contact", "closed", t0 + 630),
           Observation("h", "pir", "battery", 90, t0 + 3000),  # heartbeat: time passes
           Observation("h", "door", "contact", "open", t0 + 9000),
           Observation("h", "door", "contact", "closed", t0 + 9030)]
    h = history(obs, cfg)
    assert h.away == [(t0 + 630, t0 + 9000)]
    assert h.activity[0] == t0 and t0 + 9000 in h.activity
    assert h.up == [t0 + 600]  # out of the bedroom for 10 min: up


@pytest.mark.parametrize("n", [2, 3, 7, 30, 200])
def test_harrell_davis_is_scipys_without_loading_scipy_stats(n):
    from scipy.stats.mstats import hdquantiles  # noqa: PLC0415 - the reference, tests only

    rng = np.random.default_rng(n)
    values = rng.gamma(2.0, 1800.0, n)
    for p in (0.05, 0.5, 0.8, 0.9, 0.95, 0.99):
        assert baseline.hd_quantile(values, p) == pytest.approx(
            float(hdquantiles(values, prob=[p])[0]), rel=1e-9)
    assert math.isnan(baseline.hd_quantile(values[:1], 0.9))


def test_the_incomplete_beta_function_is_scipys():
    from scipy.special import betainc  # noqa: PLC0415 - the reference, tests only

    x = np.linspace(0.0, 1.0, 301)
    for a in (0.3, 0.55, 1.0, 2.5, 9.3, 27.9, 180.5, 951.0):
        for b in (0.3, 0.55, 1.0, 3.1, 10.2, 28.0, 49.95, 190.0):
            assert np.max(np.abs(baseline.betainc(a, b, x) - betainc(a, b, x))) < 1e-11, (a, b)


def test_the_gateway_loads_no_scipy_until_a_raw_stream_device_needs_it():
    """scipy is ~70 MB of a Pi's memory: the gateway loads it only for raw-stream devices."""
    code = ("import sys, gateway.runtime; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
