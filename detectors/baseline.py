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
quantile of their lengths (Harrell–Davis, `scipy.stats.mstats.hdquantiles`: smooth and stable
with the few dozen spells an hour sees in a month) times `MARGIN`. Because every hour a normal
spell covers gets a limit at least `MARGIN` × its length, a normal spell spends at most
1/`MARGIN` of its budget (activity.spent) and never alarms. Hours with few spells lean on the
cold-start value (shrinkage: `PRIOR_WEIGHT` pseudo-spells of it), and every limit stays within
[`FLOOR_S`, `CAP_S`]. Only the last `WINDOW_DAYS` count, so the baseline follows the resident
slowly (a month), and a learned limit is never more than `MAX_CHANGE` × the cold-start one.

**Up by**: a high quantile of the first activity after 05:00 on each day at home, plus
`WAKE_MARGIN_S`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
from scipy.stats.mstats import hdquantiles

from detectors.activity import AWAY, MORNING_STARTS_H, ActivityConfig, ActivityState, step
from devices.observation import Observation

QUANTILE = 0.99
MARGIN = 1.5
PRIOR_WEIGHT = 10  # pseudo-spells of the cold-start limit in every hour
FLOOR_S = 45 * 60.0
CAP_S = 16 * 3600.0
MAX_CHANGE = 2.5  # a learned limit stays within [cold / 2.5, cold × 2.5]
MAX_SPELL_S = 20 * 3600.0
WINDOW_DAYS = 28
MIN_DAYS = 7  # fewer days at home than this: keep the cold start
WAKE_QUANTILE = 0.9
WAKE_MARGIN_S = 45 * 60.0


@dataclass(slots=True)
class History:
    """What the baseline is learned from."""

    activity: list[float] = field(default_factory=list)  # times of activity, in order
    away: list[tuple[float, float]] = field(default_factory=list)
    outages: list[tuple[float, float]] = field(default_factory=list)  # devices or gateway


@dataclass(frozen=True, slots=True)
class Baseline:
    """Learned limits for one home."""

    limits_s: tuple[float, ...]
    wake_by_h: float | None
    days: int
    spells: int
    source: str


def history(observations: Iterable[Observation], cfg: ActivityConfig) -> History:
    """Replay stored observations through the activity rules: when was there activity, when
    was the home away, when did the resident first move each morning."""
    state, out = ActivityState(), History()
    away_since: float | None = None
    last_t: float | None = None
    for obs in observations:
        before = state.last_at
        step(state, obs, obs.at, cfg)
        last_t = obs.at
        if state.last_at != before and state.last_at is not None:
            t = state.last_at
            if away_since is not None:
                out.away.append((away_since, t))
                away_since = None
            out.activity.append(t)
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


def learn(h: History, cold_limits_s: tuple[float, ...], cold_wake_by_h: float, now: float,
          tz: ZoneInfo) -> Baseline:
    """The limits for this home from its history up to `now` (cold start where it is thin)."""
    since = now - WINDOW_DAYS * 86400.0
    times = np.asarray([t for t in h.activity if since <= t <= now])
    days = len({datetime.fromtimestamp(t, tz).date() for t in times})
    if days < MIN_DAYS or len(times) < 2:
        return Baseline(cold_limits_s, None, days, 0, "cold start (history too short)")
    starts, ends = times[:-1], times[1:]
    keep = (ends - starts) <= MAX_SPELL_S
    excluded = h.away + h.outages
    spells = [(float(s), float(e)) for s, e in zip(starts[keep], ends[keep], strict=True)
              if e - s >= 60.0 and not _overlaps(float(s), float(e), excluded)]
    covering: list[list[float]] = [[] for _ in range(24)]
    for s, e in spells:
        t = s
        while t < e:  # every hour of the day this spell covers
            local = datetime.fromtimestamp(t, tz)
            covering[local.hour].append(e - s)
            t = (local.replace(minute=0, second=0, microsecond=0).timestamp() + 3600.0)
    limits = []
    for hour in range(24):
        cold = cold_limits_s[hour]
        lengths = covering[hour]
        if len(lengths) >= 3:
            q = float(hdquantiles(np.asarray(lengths), prob=[QUANTILE])[0]) * MARGIN
            n = len(lengths)
            value = (n * q + PRIOR_WEIGHT * cold) / (n + PRIOR_WEIGHT)
        else:
            value = cold
        value = min(max(value, cold / MAX_CHANGE, FLOOR_S), cold * MAX_CHANGE, CAP_S)
        limits.append(round(value, 1))
    first_up: dict[date, float] = {}
    for t in times:
        local = datetime.fromtimestamp(float(t), tz)
        if local.hour >= MORNING_STARTS_H and local.date() not in first_up:
            first_up[local.date()] = float(t)
    wake = []
    for day, t in first_up.items():
        morning = datetime(day.year, day.month, day.day, MORNING_STARTS_H, tzinfo=tz).timestamp()
        if not _overlaps(morning, t, excluded):  # away that morning: says nothing
            wake.append((t - morning) / 3600.0 + MORNING_STARTS_H)
    wake_by = None
    if len(wake) >= MIN_DAYS:
        q = float(hdquantiles(np.asarray(wake), prob=[WAKE_QUANTILE])[0])
        wake_by = round(min(max(q + WAKE_MARGIN_S / 3600.0, 6.0), cold_wake_by_h + 2.0), 2)
    return Baseline(tuple(limits), wake_by, days, len(spells),
                    f"learned from {days} days ({len(spells)} quiet spells)")
