"""Learning what is normal for this home: the inactivity limits and the time to be up.

Cold-start limits (detectors/activity.py) are guesses from the resident's ability level. After a
couple of weeks the home's own history says better: a resident who naps two hours every
afternoon needs a longer afternoon limit; one who is always up by 06:30 should be checked on
long before 10:00.

**Quiet spells** are the gaps between consecutive activities in an occupied home (activity and
home state exactly as detectors/activity.py sees them: the same `is_activity` and away logic
replayed over stored observations). Spells overlapping an away period, a device outage, or
longer than `MAX_SPELL_S` (a gateway that was down, a weekend away not noticed) are left out:
a missing day or a dead sensor teaches nothing.

**Limits**: for each hour of the day, the spells that *cover* that hour; the limit is a high
quantile of their lengths (Harrell–Davis, `hd_quantile`: smooth and stable
with the few dozen spells an hour sees in a month) times `MARGIN`. Because every hour a normal
spell covers gets a limit at least `MARGIN` × its length, a normal spell spends at most
1/`MARGIN` of its budget (activity.spent) and never alarms. Hours with few spells lean on the
cold-start value (shrinkage: `PRIOR_WEIGHT` pseudo-spells of it), and every limit stays within
[`FLOOR_S`, `CAP_S`]. Only the last `WINDOW_DAYS` count, so the baseline follows the resident
slowly (a month), and a learned limit is never more than `MAX_CHANGE` × the cold-start one.

**Up by**: a high quantile of when the resident was seen up (the detector's own rule) on each
day at home plus
`WAKE_MARGIN_S`, and at least `WAKE_MEDIAN_MARGIN_S` after the usual time.

**Bathroom**: the same rule over the spells that began in the bathroom.

**Sleep from**: an hour before the early end (5th percentile) of when the night's long spell
begins, between 19:00 and 23:00: before it, a quiet spell in the bedroom is not bedtime.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from detectors.activity import (
    AWAY,
    BATHROOMS,
    MORNING_STARTS_H,
    SLEEP_FROM_H,
    ActivityConfig,
    ActivityState,
    set_blip_aside,
    step,
)
from devices.observation import Observation

QUANTILE = 0.99
MARGIN = 1.5
MAX_MARGIN = 1.2  # and never below 1.2 × the longest normal spell seen (a rare long nap)
PRIOR_WEIGHT = 10  # pseudo-spells of the cold-start limit in every hour
FLOOR_S = 45 * 60.0
CAP_S = 16 * 3600.0
MAX_CHANGE = 2.5  # a learned limit is at most 2.5 × the cold start …
MIN_SHARE = 0.85  # … and at least 85 % of it: a resident's rare long nap is not worth a page
MAX_SPELL_S = 20 * 3600.0
WINDOW_DAYS = 28
MIN_DAYS = 7  # fewer days at home than this: keep the cold start
WAKE_QUANTILE = 0.98
WAKE_MARGIN_S = 60 * 60.0
WAKE_MEDIAN_MARGIN_S = 90 * 60.0  # and at least 1.5 h after the usual time
NIGHT_SPELL_S = 4 * 3600.0  # a spell beginning in the evening this long is a night's sleep
BEDTIME_QUANTILE = 0.05
BEDTIME_MARGIN_H = 1.0


@dataclass(slots=True)
class History:
    """What the baseline is learned from."""

    activity: list[float] = field(default_factory=list)  # times of activity, in order
    rooms: list[str | None] = field(default_factory=list)  # the room of each
    up: list[float] = field(default_factory=list)  # when the resident was seen up, each day
    away: list[tuple[float, float]] = field(default_factory=list)
    outages: list[tuple[float, float]] = field(default_factory=list)  # devices or gateway
    heard: set[int] = field(default_factory=set)  # hours (unix s // 3600) anything was stored


@dataclass(frozen=True, slots=True)
class Baseline:
    """Learned limits for one home."""

    limits_s: tuple[float, ...]
    wake_by_h: float | None
    days: int
    spells: int
    source: str
    bathroom_limit_s: float | None = None
    sleep_from_h: float | None = None  # from this local hour a quiet spell in the bedroom is sleep


def history(observations: Iterable[Observation], cfg: ActivityConfig) -> History:
    """Replay stored observations through the activity rules: when was there activity, when
    was the home away, when did the resident first move each morning."""
    state, out = ActivityState(), History()
    away_since: float | None = None
    last_t: float | None = None
    for obs in observations:
        # a PIR's ghost set aside as the detector's tick does (observations of any kind
        # stand in for the ticks): not activity to learn from either
        ghost = set_blip_aside(state, obs.at)
        if ghost is not None:
            while out.activity and out.activity[-1] >= ghost.first:
                out.activity.pop()
                out.rooms.pop()
            if out.away and out.away[-1][1] >= ghost.first:  # it had ended an away period
                away_since = out.away.pop()[0]
        before, up_before = state.last_at, state.up_day
        step(state, obs, obs.at, cfg)
        out.heard.add(math.floor(obs.at / 3600.0))
        if state.up_day != up_before:
            out.up.append(obs.at)
        if state.mode == AWAY and away_since is None:  # away by the key
            away_since = state.mode_since
        last_t = obs.at
        if state.last_at != before and state.last_at is not None:
            t = state.last_at
            if away_since is not None:
                out.away.append((away_since, t))
                away_since = None
            out.activity.append(t)
            out.rooms.append(state.last_room)
        # the away rule as the detector's tick applies it (observations of any kind, such as
        # hourly battery reports, stand in for the ticks)
        if (state.door_closed_at is not None and away_since is None
                and obs.at - state.door_closed_at >= cfg.away_after_s):
            away_since = state.door_closed_at
            state.door_closed_at = None
            state.mode = AWAY
    if away_since is not None and last_t is not None:
        out.away.append((away_since, last_t))
    return out


def _overlaps(s: float, e: float, spans: list[tuple[float, float]]) -> bool:
    return any(a < e and s < b for a, b in spans)


def _clear(starts: np.ndarray, ends: np.ndarray,
           spans: list[tuple[float, float]]) -> np.ndarray:
    """Which spells [starts, ends) overlap none of `spans` (vectorised: merged, sorted)."""
    if not spans:
        return np.ones(len(starts), dtype=bool)
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    a_arr = np.asarray([m[0] for m in merged])
    b_arr = np.asarray([m[1] for m in merged])
    idx = np.searchsorted(a_arr, ends, side="left") - 1  # the last span starting before e
    hit = (idx >= 0) & (b_arr[np.maximum(idx, 0)] > starts)
    return ~hit


_TINY = 1e-300


def betainc(a: float, b: float, x: np.ndarray) -> np.ndarray:
    """The regularized incomplete beta function I_x(a, b) (the Beta(a, b) CDF) at each x in
    [0, 1]: the continued fraction by the modified Lentz method (Numerical Recipes 6.4),
    used where it converges fast, through I_x(a, b) = 1 - I_(1-x)(b, a) elsewhere. Checked
    against scipy.special.betainc to 1e-12 in the tests."""
    x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
    flip = x >= (a + 1.0) / (a + b + 2.0)
    aa, bb = np.where(flip, b, a), np.where(flip, a, b)
    xx = np.where(flip, 1.0 - x, x)
    inner = (xx > 0.0) & (xx < 1.0)
    xs = np.where(inner, xx, 0.5)  # placeholders where the front factor is 0 anyway
    front = np.exp(_lgamma(aa + bb) - _lgamma(aa) - _lgamma(bb)
                   + aa * np.log(xs) + bb * np.log1p(-xs)) / aa
    # The continued fraction, all x at once.
    c = np.ones_like(xs)
    d = 1.0 - (aa + bb) * xs / (aa + 1.0)
    d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
    h = d.copy()
    for m in range(1, 1000):
        for num in (m * (bb - m) * xs / ((aa + 2 * m - 1) * (aa + 2 * m)),
                    -(aa + m) * (aa + bb + m) * xs / ((aa + 2 * m) * (aa + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
            c = 1.0 + num / c
            c = np.where(np.abs(c) < _TINY, _TINY, c)
            step = d * c
            h = h * step
        if np.all(np.abs(step - 1.0) < 1e-15):
            break
    part = np.where(inner, front * h, np.where(xx >= 1.0, 1.0, 0.0))
    return np.where(flip, 1.0 - part, part)


_lgamma = np.vectorize(math.lgamma, otypes=[float])


def hd_quantile(values: np.ndarray, p: float) -> float:
    """The Harrell–Davis estimate of the `p` quantile: a Beta((n+1)p, (n+1)(1-p))-weighted
    mean of the sorted values (what `scipy.stats.mstats.hdquantiles` computes, without
    loading scipy, ~70 MB of a Pi's memory for this one function); NaN below 2 values."""
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    if n < 2:
        return math.nan
    if p <= 0.0 or p >= 1.0:
        return float(x[0] if p <= 0.0 else x[-1])
    cdf = betainc((n + 1) * p, (n + 1) * (1 - p), np.arange(n + 1) / n)
    return float(np.dot(np.diff(cdf), x))


def _limit(lengths: list[float], cold: float, prior: int) -> float:
    """A high quantile (Harrell–Davis) of normal spell lengths with a margin, never below
    the longest one seen with a smaller margin, shrunk toward the cold start where few."""
    if len(lengths) < 3:
        return cold
    arr = np.asarray(lengths)
    q = max(hd_quantile(arr, QUANTILE) * MARGIN, float(arr.max()) * MAX_MARGIN)
    return (len(arr) * q + prior * cold) / (len(arr) + prior)


def learn(h: History, cold_limits_s: tuple[float, ...], cold_wake_by_h: float, now: float,
          tz: ZoneInfo, cold_bathroom_s: float | None = None) -> Baseline:
    """The limits for this home from its history up to `now` (cold start where it is thin)."""
    since = now - WINDOW_DAYS * 86400.0
    lo, hi = bisect.bisect_left(h.activity, since), bisect.bisect_right(h.activity, now)
    times = np.asarray(h.activity[lo:hi], dtype=float)
    rooms = h.rooms[lo:hi] if h.rooms else [None] * len(times)
    offset = datetime.fromtimestamp(now, tz).utcoffset()
    off = offset.total_seconds() if offset is not None else 0.0
    days = int(np.unique((times + off) // 86400.0).size)
    if days < MIN_DAYS or len(times) < 2:
        return Baseline(cold_limits_s, None, days, 0, "cold start (history too short)")
    starts, ends = times[:-1], times[1:]
    keep = ((ends - starts) <= MAX_SPELL_S) & ((ends - starts) >= 60.0)
    keep &= _clear(starts, ends, h.away + h.outages)
    spells = list(zip(starts[keep].tolist(), ends[keep].tolist(), strict=True))
    in_bathroom = {float(times[k]) for k, r in enumerate(rooms)
                   if r is not None and r.lower() in BATHROOMS}
    bathroom = [e - s for s, e in spells if s in in_bathroom]
    # every hour of the day each spell covers (the zone's offset at `now`: a clock change
    # moves an hour at most, for the spells of one night)
    first = np.floor((starts[keep] + off) / 3600.0).astype(np.int64)
    last = np.ceil((ends[keep] + off) / 3600.0).astype(np.int64)
    n_hours = last - first
    lengths = np.repeat(ends[keep] - starts[keep], n_hours)
    steps = np.arange(n_hours.sum()) - np.repeat(np.cumsum(n_hours) - n_hours, n_hours)
    hour_of = (np.repeat(first, n_hours) + steps) % 24
    covering = [lengths[hour_of == h].tolist() for h in range(24)]
    limits = []
    for hour in range(24):
        cold = cold_limits_s[hour]
        value = _limit(covering[hour], cold, PRIOR_WEIGHT)
        value = min(max(value, cold * MIN_SHARE, FLOOR_S), cold * MAX_CHANGE, CAP_S)
        limits.append(round(value, 1))
    # the detector's own idea of "up" (activity._maybe_up), so up-by and not_up agree
    first_up: dict[date, float] = {}
    for t in h.up:
        if since <= t <= now:
            first_up.setdefault(datetime.fromtimestamp(t, tz).date(), t)
    wake = []
    for day, t in first_up.items():
        morning = datetime(day.year, day.month, day.day, MORNING_STARTS_H, tzinfo=tz).timestamp()
        if not _overlaps(morning, t, h.away + h.outages):  # away that morning: says nothing
            wake.append((t - morning) / 3600.0 + MORNING_STARTS_H)
    wake_by = None
    if len(wake) >= MIN_DAYS:
        arr = np.asarray(wake)
        q = max(hd_quantile(arr, WAKE_QUANTILE) + WAKE_MARGIN_S / 3600.0,
                float(np.median(arr)) + WAKE_MEDIAN_MARGIN_S / 3600.0)
        wake_by = round(min(max(q, 6.0), cold_wake_by_h + 2.0), 2)
    bathroom_s = None
    if cold_bathroom_s is not None and len(bathroom) >= 5:
        # longer than the cold start where this resident is slow, never shorter: a bath is
        # not an emergency, and spells after the bathroom are few
        bathroom_s = round(min(max(_limit(bathroom, cold_bathroom_s, 5), cold_bathroom_s),
                               cold_bathroom_s * 3), 1)
    return Baseline(tuple(limits), wake_by, days, len(spells),
                    f"learned from {days} days ({len(spells)} quiet spells)", bathroom_s,
                    _sleep_from(spells, tz))


def _sleep_from(spells: list[tuple[float, float]], tz: ZoneInfo) -> float | None:
    """The hour from which a quiet spell in the bedroom is the night's sleep: a little before
    the earliest this resident usually goes to bed (the start of each night's long spell),
    never before `SLEEP_FROM_H` (19:00) nor after 23:00. A fall in the bedroom at 19:30 is
    not bedtime for someone who always turns in at 22:00."""
    starts: dict[date, float] = {}
    for s, e in spells:
        local = datetime.fromtimestamp(s, tz)
        hour = local.hour + local.minute / 60.0
        if e - s >= NIGHT_SPELL_S and (hour >= 18.0 or hour < 2.0):
            night = (local - timedelta(hours=12)).date()  # the evening it began
            starts[night] = min(starts.get(night, 99.0), hour if hour >= 18.0 else hour + 24)
    if len(starts) < MIN_DAYS:
        return None
    q = hd_quantile(np.asarray(list(starts.values())), BEDTIME_QUANTILE)
    return round(min(max(q - BEDTIME_MARGIN_H, SLEEP_FROM_H), 23.0), 2)
