"""Routine deviation: a daily score of how far the home's day departed from its usual days,
and a care call (severity 3) when the departure is sustained.

Run once a day (the gateway: with the nightly baseline, at 03:00 local) over the same
`baseline.History` the inactivity limits are learned from — activity exactly as the activity
detector sees it, away periods and device or gateway outages marked — so it survives restarts
and needs no state of its own beyond the time of its last finding.

**A day** is the 24 hours ending at the assessment (03:00 to 03:00: an evening and its night
stay together). Each hour of it counts the movements seen (activity events, per room) and how
much of the hour the home was *watched*: at home (not away), every activity sensor reporting
(no outage), and the gateway recording (something heard that hour). A day watched for fewer
than `MIN_WATCHED_H` hours is not scored: a day out or a dead sensor says nothing about the
resident.

**Usual** is learned from the `REFERENCE_DAYS` scored days before: the movement rate for each
hour of the day. The day's *expected* movements are that rate over the hours it was watched,
so a morning out does not make a quiet day. The **level** is log((seen + 5) / (expected + 5)),
judged against the same figure for each reference day (leave-one-out, robust z: median and
1.4826 × MAD, never narrower than `MIN_SPREAD`). The **night** (22:00–03:00) counts movements
against the reference nights' median and spread. The day's **score** is the larger of the two
departures in spreads (0 = a usual day, 3 = far outside what this home does).

**Findings** (one per episode, none in the `QUIET_DAYS` after the last):
- *much less activity*: the last `SUSTAINED_DAYS` scored days each below −`Z` with under
  `LOW_RATIO` of the expected movements (a stay in bed with a cold, a fall with no injury
  but fear of walking, the start of depression);
- *disturbed nights*: the last `SUSTAINED_DAYS` nights each above `Z` and well over the usual
  count (pain, a urinary infection, delirium);
- *gradual decline*: the last `WEEK_DAYS` days together at under `WEEK_RATIO` of what the
  month before them expected, with most of them (`BROAD_DAYS`) each under `BROAD_RATIO` — a
  broad, slow loss that each day's own comparison, with a reference drifting along with it,
  would miss (and not a couple of bad days).
Evidence names the days, movements seen and expected, nights, and the rooms used much less
than usual (the kitchen left unused is a different worry from the bathroom).

**Hour totals.** An assessment reads `LOOKBACK_DAYS` (35) days, longer than the gateway keeps
raw observations (30 by default). Days are whole local hours (the assessment's `now` is taken
back to the start of its hour), so each hour's movements, watched seconds and room movements
can be kept as they were first computed (`hourly`, from history with weeks of context behind
it) and given back to `assess` / `scores` as `known`: an hour found there is taken from it,
whatever raw history is left. The decision is then the same with or without raw data older
than the retention window.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from detectors.baseline import History
from detectors.finding import Finding

NAME = "routine"
CODE, SEVERITY, EVENT = 641, 3, "routine_deviation"
REFERENCE_DAYS = 28
MIN_REFERENCE_DAYS = 14  # fewer scored days before: still learning, nothing judged
MIN_WATCHED_H = 12.0
SUSTAINED_DAYS = 3
WEEK_DAYS = 7
Z = 3.0
MIN_SPREAD = 0.12  # of the log level (about ±12 %): a very regular home is not hair-trigger
LOW_RATIO = 0.7
WEEK_RATIO = 0.8
BROAD_RATIO, BROAD_DAYS = 0.9, 5  # … and a broad fall: 5 of its days each under 90 %
NIGHT_FACTOR = 2.5  # a disturbed night: also at least 2.5 × the usual count …
NIGHT_EXTRA = 15  # … and 15 movements more (two extra toilet trips are not a disturbed night)
MIN_NIGHT_SPREAD = 4.0
NIGHT_HOURS = frozenset((22, 23, 0, 1, 2))
MIN_NIGHT_WATCHED_H = 4.0
ROOM_EXPECTED_MIN = 10.0  # a room is "used much less" only where it is normally used
QUIET_DAYS = 7
LOOKBACK_DAYS = REFERENCE_DAYS + WEEK_DAYS  # the history an assessment needs
PSEUDO = 5.0  # movements added to both sides of a ratio: a quiet hour is not infinitely odd
DAY_S = 86400.0
SETTLED_S = DAY_S  # an hour's totals are kept once it is this old (later data cannot change it)

# hour start (unix s) -> (movements, watched seconds, movements per room)
HourTotals = dict[float, tuple[int, float, dict[str, int]]]


@dataclass(frozen=True, slots=True)
class DayScore:
    """One day's departure from the usual, in words and numbers."""

    day: str  # the local date the day began (its 03:00)
    watched_h: float
    movements: int
    expected: float
    ratio: float  # movements / expected
    level_z: float
    night_movements: int | None
    night_usual: float | None
    night_z: float | None
    score: float
    low: bool  # much less activity than usual
    disturbed_night: bool
    rooms_less_used: tuple[tuple[str, int, float], ...] = ()  # (room, seen, expected)

    def summary(self) -> dict[str, Any]:
        return {"day": self.day, "movements": self.movements,
                "expected": round(self.expected), "ratio": round(self.ratio, 2),
                "night_movements": self.night_movements,
                "usual_night": None if self.night_usual is None else round(self.night_usual),
                "score": round(self.score, 1),
                "rooms_less_used": [{"room": r, "movements": s, "expected": round(e)}
                                    for r, s, e in self.rooms_less_used]}


@dataclass(frozen=True, slots=True)
class _Days:
    """Per day (rows) and hour of the day (columns, from the day's start): movements and
    watched seconds."""

    starts: list[float]
    moves: np.ndarray  # [days, 24]
    watched: np.ndarray  # [days, 24] seconds
    rooms: dict[str, np.ndarray]  # room -> [days, 24] movements
    hours: list[int]  # local hour of each column


def _blind_before(spans: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the function t -> seconds blind (away or an outage) before t."""
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        elif b > a:
            merged.append([a, b])
    xs, ys, total = [], [], 0.0
    for a, b in merged:
        xs += [a, b]
        ys += [total, total + b - a]
        total += b - a
    return np.asarray(xs), np.asarray(ys)


def _tables(h: History, end: float, days: int, tz: ZoneInfo,
            known: HourTotals | None = None) -> _Days:
    """The `days` days before `end` (taken back to the start of its local hour), hour by
    hour; the hours in `known` from there rather than from `h`."""
    end_local = datetime.fromtimestamp(end, tz).replace(minute=0, second=0, microsecond=0)
    end = end_local.timestamp()
    starts = [(end_local - timedelta(days=days - d)).timestamp() for d in range(days)]
    first = np.asarray(starts)
    lo, hi = bisect.bisect_left(h.activity, starts[0]), bisect.bisect_left(h.activity, end)
    times = np.asarray(h.activity[lo:hi], dtype=float)
    day = np.clip(np.searchsorted(first, times, side="right") - 1, 0, days - 1)
    hour = np.clip(((times - first[day]) // 3600).astype(int), 0, 23)
    moves = np.zeros((days, 24))
    np.add.at(moves, (day, hour), 1)
    rooms: dict[str, np.ndarray] = {}
    names = np.asarray([r or "" for r in h.rooms[lo:hi]] if h.rooms else [""] * len(times))
    for room in set(names.tolist()) - {""}:
        table = np.zeros((days, 24))
        pick = names == room
        np.add.at(table, (day[pick], hour[pick]), 1)
        rooms[room] = table
    # watched seconds per hour: recorded at all, less the time away or with a sensor down
    grid = (first[:, None] + np.arange(24)[None, :] * 3600.0)
    xs, ys = _blind_before(h.away + h.outages)
    if len(xs):
        blind = np.interp(grid + 3600.0, xs, ys) - np.interp(grid, xs, ys)
    else:
        blind = np.zeros_like(grid)
    heard = np.vectorize(lambda a: math.floor(a / 3600.0) in h.heard, otypes=[bool])(grid)
    watched = np.where(heard, np.clip(3600.0 - blind, 0.0, 3600.0), 0.0)
    hours = [(end_local.hour + j) % 24 for j in range(24)]
    if known:
        for (d, j), start in np.ndenumerate(grid):
            cell = known.get(float(start))
            if cell is None:
                continue
            moves[d, j], watched[d, j] = cell[0], cell[1]
            for table in rooms.values():
                table[d, j] = 0.0
            for room, n in cell[2].items():
                rooms.setdefault(room, np.zeros((days, 24)))[d, j] = n
    return _Days(starts, moves, watched, rooms, hours)


def hourly(h: History, now: float, tz: ZoneInfo, *, settled_s: float = SETTLED_S
           ) -> HourTotals:
    """Each hour's totals over the lookback before `now`, for the hours at least
    `settled_s` old (the hours `known` gives back to later assessments)."""
    t = _tables(h, now, LOOKBACK_DAYS, tz)
    out: HourTotals = {}
    for d, start in enumerate(t.starts):
        for j in range(24):
            at = start + j * 3600.0
            if at + 3600.0 > now - settled_s:
                break
            if not (t.moves[d, j] or t.watched[d, j]):
                continue  # nothing recorded (before the install, the gateway off): nothing to keep
            out[at] = (int(t.moves[d, j]), float(t.watched[d, j]),
                       {r: int(tab[d, j]) for r, tab in t.rooms.items() if tab[d, j]})
    return out


def _robust(values: np.ndarray, floor: float) -> tuple[float, float]:
    med = float(np.median(values))
    return med, max(1.4826 * float(np.median(np.abs(values - med))), floor)


def _log_level(seen: float, expected: float) -> float:
    return math.log((seen + PSEUDO) / (expected + PSEUDO))


def _score(t: _Days, d: int, ref: list[int], tz: ZoneInfo) -> DayScore:
    """Day `d` against the reference days `ref` (scored days before it)."""
    moves, watched = t.moves, t.watched
    tot_m, tot_w = moves[ref].sum(axis=0), watched[ref].sum(axis=0)
    rate = np.divide(tot_m, tot_w, out=np.zeros(24), where=tot_w > 0)
    expected = float((watched[d] * rate).sum())
    seen = float(moves[d].sum())
    # the same figure for each reference day, against the others (leave-one-out)
    levels = []
    for r in ref:
        m, w = tot_m - moves[r], tot_w - watched[r]
        rate_r = np.divide(m, w, out=np.zeros(24), where=w > 0)
        levels.append(_log_level(float(moves[r].sum()), float((watched[r] * rate_r).sum())))
    med, spread = _robust(np.asarray(levels), MIN_SPREAD)
    level_z = (_log_level(seen, expected) - med) / spread
    ratio = (seen + PSEUDO) / (expected + PSEUDO)
    night = [j for j, hour in enumerate(t.hours) if hour in NIGHT_HOURS]
    night_n = night_usual = night_z = None
    disturbed = False
    refs_n = [r for r in ref if watched[r, night].sum() >= MIN_NIGHT_WATCHED_H * 3600]
    if watched[d, night].sum() >= MIN_NIGHT_WATCHED_H * 3600 and len(refs_n) >= 7:
        night_n = int(moves[d, night].sum())
        night_usual, spread_n = _robust(moves[np.ix_(refs_n, night)].sum(axis=1),
                                        MIN_NIGHT_SPREAD)
        night_z = (night_n - night_usual) / spread_n
        disturbed = (night_z >= Z and night_n >= NIGHT_FACTOR * night_usual
                     and night_n >= night_usual + NIGHT_EXTRA)
    less = []
    for room, table in sorted(t.rooms.items()):
        tw = tot_w
        r_rate = np.divide(table[ref].sum(axis=0), tw, out=np.zeros(24), where=tw > 0)
        r_exp = float((watched[d] * r_rate).sum())
        r_seen = int(table[d].sum())
        if r_exp >= ROOM_EXPECTED_MIN and (r_seen + PSEUDO) / (r_exp + PSEUDO) < 0.5:
            less.append((room, r_seen, r_exp))
    low = level_z <= -Z and ratio < LOW_RATIO
    score = max(0.0, -level_z, night_z or 0.0)
    day = datetime.fromtimestamp(t.starts[d], tz).date().isoformat()
    return DayScore(day, round(float(watched[d].sum()) / 3600.0, 1), int(seen), expected,
                    ratio, level_z, night_n, night_usual, night_z, score, low, disturbed,
                    tuple(less))


def _valid(t: _Days) -> list[int]:
    return [d for d in range(len(t.starts)) if t.watched[d].sum() >= MIN_WATCHED_H * 3600]


def _scores(t: _Days, tz: ZoneInfo, days: int) -> list[DayScore]:
    valid, n = _valid(t), len(t.starts)
    out = []
    for d in range(n - days, n):
        ref = [r for r in valid if r < d][-REFERENCE_DAYS:]
        if d in valid and len(ref) >= MIN_REFERENCE_DAYS:
            out.append(_score(t, d, ref, tz))
    return out


def scores(h: History, now: float, tz: ZoneInfo, days: int = WEEK_DAYS,
           known: HourTotals | None = None) -> list[DayScore]:
    """The last `days` days before `now` that could be scored, each against the scored days
    before it (oldest first); empty while fewer than `MIN_REFERENCE_DAYS` are known."""
    return _scores(_tables(h, now, REFERENCE_DAYS + days, tz, known), tz, days)


def _week(t: _Days) -> tuple[float, float, float, int] | None:
    """The last week's movements against what the month before it expected: (ratio, seen,
    expected, days each under `BROAD_RATIO` of it), or None when either is too thin."""
    valid, n = _valid(t), len(t.starts)
    week = [d for d in valid if d >= n - WEEK_DAYS]
    ref = [d for d in valid if d < n - WEEK_DAYS]
    if len(week) < WEEK_DAYS - 2 or len(ref) < MIN_REFERENCE_DAYS:
        return None
    tot_m, tot_w = t.moves[ref].sum(axis=0), t.watched[ref].sum(axis=0)
    rate = np.divide(tot_m, tot_w, out=np.zeros(24), where=tot_w > 0)
    per_day = (t.watched[week] * rate).sum(axis=1)
    seen_day = t.moves[week].sum(axis=1)
    under = int(((seen_day + PSEUDO) / (per_day + PSEUDO) < BROAD_RATIO).sum())
    expected, seen = float(per_day.sum()), float(seen_day.sum())
    return (seen + PSEUDO) / (expected + PSEUDO), seen, expected, under


def assess(h: History, now: float, tz: ZoneInfo, home: str,
           last_raised: float | None = None, known: HourTotals | None = None
           ) -> tuple[list[DayScore], Finding | None]:
    """The recent days' scores, and a care call if the departure is sustained (hours in
    `known` taken from there: see `hourly`)."""
    t = _tables(h, now, LOOKBACK_DAYS, tz, known)
    recent = _scores(t, tz, WEEK_DAYS)
    if last_raised is not None and now - last_raised < QUIET_DAYS * DAY_S:
        return recent, None
    last = recent[-SUSTAINED_DAYS:]
    consecutive = len(last) == SUSTAINED_DAYS and _consecutive([s.day for s in last])
    what = None
    if consecutive and all(s.low for s in last):
        what = "much_less_activity"
    elif consecutive and all(s.disturbed_night for s in last):
        what = "disturbed_nights"
    week = _week(t)
    if (what is None and week is not None and week[0] < WEEK_RATIO
            and week[3] >= BROAD_DAYS):
        what = "gradual_decline"
    if what is None:
        return recent, None
    evidence: dict[str, Any] = {
        "pattern": what,
        "days": [s.summary() for s in (recent if what == "gradual_decline" else last)],
        "rule": {
            "much_less_activity": f"{SUSTAINED_DAYS} days in a row with under "
                                  f"{LOW_RATIO:.0%} of the usual movements",
            "disturbed_nights": f"{SUSTAINED_DAYS} nights in a row (22:00-03:00) far busier "
                                "than usual",
            "gradual_decline": f"the last {WEEK_DAYS} days under {WEEK_RATIO:.0%} of what "
                               f"the {REFERENCE_DAYS} days before them expected"}[what],
        "reference_days": REFERENCE_DAYS}
    if week is not None:
        evidence["week"] = {"ratio": round(week[0], 2), "movements": round(week[1]),
                            "expected": round(week[2]), "days_under_90pct": week[3]}
    return recent, Finding(detector=NAME, home=home, code=CODE, event=EVENT,
                           severity=SEVERITY, at=now, evidence=evidence)


def _consecutive(days: list[str]) -> bool:
    dates = [datetime.fromisoformat(d).date() for d in days]
    return all((b - a).days == 1 for a, b in itertools.pairwise(dates))
