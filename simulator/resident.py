"""Residents' days in a simulated home: sensor events with ground-truth incidents.

`simulate(home, start, days, rng, incidents)` lives the days of a `SimHome`
(simulator/homes.py) from a local midnight and returns what its sensors saw
(`Simulation.events`, time-ordered `Event(t, device, kind, value)` with observation kinds)
and what really happened (`Simulation.incidents`, each with the exact moment the emergency
began and when the resident was found). `to_messages` turns the events into the MQTT
messages each model publishes (simulator.emulators), `to_observations` into the
Observations the gateway's adapters read from them, for `Core.replay`. Pure and seeded:
the same home, start, days, Generator state and incidents give the same output; no clock,
no I/O.

How a day is made (per resident; a couple's two days are superimposed):

- **Sleep**: bedtime ~ N(bed_h, bed_sd_h) local, clipped to 20:30-23:36; wake-up
  ~ N(wake_h + weekend_shift_h on Sat/Sun, wake_sd_h), clipped to 05:00-08:54 (profiles draw
  wake_h 05:24-08:00, bed_h 21:00-23:18). 0-3 toilet visits a night, Poisson(night_toilet),
  at least 30 min apart: out of bed, 20-60 s walking in the bedroom, 2-6 min in the bathroom
  (longer the slower the resident), back to bed. A resident with dementia is restless on 15%
  of nights (10-40 min about the living room and kitchen).
- **Morning**: 2-6 min dressing in the bedroom, 8-20 min washing in the bathroom; breakfast
  0.3-0.8 h after getting up.
- **Meals**: three a day in the kitchen: cooking 8-18 min for breakfast and 15-40 min for
  lunch (~11:30, sd 0.3 h) and dinner (~17:40, sd 0.4 h), then 10-25 min eating (in the
  kitchen, or at the living-room table), then 3-8 min washing up. A couple eats together; one
  of them cooks.
- **Between**: sitting spells in the living room (15-50 min, TV), dozing in the armchair
  (10-40 min, more likely in the afternoon and for the more dependent), short trips to the
  kitchen or bedroom (2-8 min), the bathroom every 1.5-3.5 h (3-8 min), the door answered
  for a delivery on 25% of days (30-120 s with the door open).
- **Nap**: after lunch with `nap_p`, 30-90 min (longer for the more dependent), in bed or
  motionless in the armchair.
- **Outings**: on `outing_p` of healthy days (0.85 at ability level 0 … 0.03 at level 4), one
  (sometimes two for the most able) of 0.5-4 h, lognormal around 1.3 h: a morning at the
  market or an afternoon walk; 20% of morning outings last over lunch (2.5-4 h). Dressing,
  door open at the moment of leaving and shut 10-40 s later, the same on return, then the
  shopping into the kitchen. Never while a visitor is expected. Couples go together on 35%
  of their outing days.
- **Visitors**: family on `family_visit_p` of weekday afternoons (twice as often at weekends),
  1-3 h in the living room with the resident (who then moves more); home-care visits
  (上门护理) for the more dependent, 1-1.5 h in the morning and 0.75-1.25 h late afternoon:
  cooking, helping in the bedroom and bathroom.
- **Illness**: a spell starts on `ill_p` of days and lasts 1-4 days: up 0.5-1.5 h later, to
  bed 0.3-1 h earlier, 1.5-4 h back in bed after breakfast, movement rates x0.55, chores
  take 1.3x longer, no outings, 40% more toilet visits at night.
- **Ability level** (homes.PACE): PIR rates scale with `pace` (1.15 … 0.45), chores take
  1/sqrt(pace) longer (cooking is simpler from level 2 on); sitting still between movements a
  PIR sees: `fidget_s` (4-12 min, x1 at level 0 to x2 at level 4).
- **SOS**: a press by mistake on 0.5% of days, when the resident is up and by a button.

What the sensors make of it:

- **PIR** (RTCGQ11LM): someone walking into its room is seen at once (p 0.95); then
  detections at a rate by activity (walking/cooking 1/20 s, washing/eating 1/60 s, sitting
  1/fidget_s, asleep 1/h and resting in bed 1/15 min if the PIR sees the bed, a motionless
  nap, a person on the floor or stuck in bed: none), thinned by the device's 60 s blind time
  after each detection. So a moving person fires it about once a minute, a sitting one every
  several minutes, a dozing one not at all. Spurious detections (`DeviceTraits.ghost_per_day`).
  Zigbee2MQTT clears `occupancy` 90 s after the last detection (in `to_messages`).
- **Radar**: presence true 0.5-2 s after someone enters its room, false `hold_s` (10-60 s)
  after the last person left; presence persists over a person lying still. Rare ghosts.
- **Door**: "open" as someone goes out or comes in, "closed" 10-40 s later.
- **Bed sensor**: in_bed true 2-8 s after its owner lies down, false 0.5-3 s after they get
  up; heart and breathing rates with its hourly report while in bed.
- **Reports**: every battery device reports on its own (Aqara and anxin-native: every 50-60
  min; others within their maximum reporting interval), with a battery that drains 0.05-0.35
  %/day. These are `battery` events, so a dead device is silent in one place.

Incidents (`IncidentSpec`, or `plan_incidents` to draw a run's worth): `long_lie` and
`bathroom_collapse` (a fall, out of 5-20 s of movement a PIR not in its blind time sees, at
a moment with no visitor in; nothing more from that resident until found: 6-12 h by day,
next morning 07:30-11:00 if that runs into the night or the fall was at night; sooner when a
visitor arrives or a partner comes into the room), `not_up` (stays in bed from the usual wake
time, found 3-8 h later), `night_wandering` (dementia only: the entrance door at 23:00-04:00,
back 2-6 h later) and `device_failure` (a PIR's battery dies: nothing from it, not even its
heartbeat, until a technician replaces it 24-72 h later; half of them report a level falling
to 3-15% over their last 36 h first), and `decline` (a resident's slow loss over 2-4
weeks to its worst, then no better until the run ends: up later and to bed earlier, moving
at up to 0.55x, slower at everything, back to bed after breakfast and an afternoon nap
more and more often, outings given up, more toilet trips and restless spells at night).
Whoever finds the resident comes in
(door, movement); the resident rests, in bed until next morning if found after 15:00, and the
next day runs as usual.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import functools
import gc
import itertools
import math
import tomllib
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np

from devices.adapters import ADAPTERS, Adapter
from devices.catalogue import Model
from devices.observation import Observation, Value
from devices.registry import Device
from simulator.emulators import RESTING, Emulator, Message
from simulator.homes import ResidentProfile, SimHome, devices_in

__all__ = ["INCIDENT_KINDS", "DayNote", "Event", "Incident", "IncidentSpec", "Simulation",
           "plan_incidents", "simulate", "to_messages", "to_observations"]

DAY_S, HOUR_S, MIN_S = 86400.0, 3600.0, 60.0
PIR_BLIND_S = 60.0  # RTCGQ11LM: after a detection the sensor is blind for a minute
OCCUPANCY_TIMEOUT_S = 90.0  # Zigbee2MQTT's occupancy_timeout for Aqara PIRs (default 90 s)
PIR_ENTRY_P = 0.95
LQI_CYCLE = 509  # link-quality jitter repeats after this many messages (a prime)
SOS_ACCIDENT_P = 0.005  # a press by mistake: about twice a year

INCIDENT_KINDS = ("long_lie", "bathroom_collapse", "not_up", "night_wandering",
                  "device_failure", "decline")
DECLINE_RAMP_DAYS = (14, 28)  # a decline reaches its worst over 2-4 weeks, drawn

# Rooms and what a person is doing there.
LIVING, BEDROOM, BATHROOM, KITCHEN, ENTRANCE, OUT = range(6)
ROOM_NAMES: tuple[str | None, ...] = ("living_room", "bedroom", "bathroom", "kitchen",
                                      "entrance", None)
_ROOM_INDEX = {name: i for i, name in enumerate(ROOM_NAMES) if name}
MOVE, ACTIVE, SIT, STILL, BED, REST, STUCK, DOWN, AWAY, DOOR = range(10)
_IN_BED = (BED, REST, STUCK)
_AWAKE = (MOVE, ACTIVE, SIT)
# PIR detections per second at pace 1 (SIT: the person's own 1/fidget_s; BED/REST: only if
# the PIR sees the bed).
_RATE = np.array([1 / 20, 1 / 60, 0.0, 0.0, 1 / 3600, 1 / 900, 0.0, 0.0, 0.0, 0.0])

Seg = tuple[float, float, int, int, float]  # (t0, t1, room, mode, rate factor)


class Event(NamedTuple):
    """One thing a sensor reports: an observation kind and value at unix time `t`."""

    t: float
    device: str
    kind: str
    value: Value


@dataclass(frozen=True, slots=True)
class IncidentSpec:
    """An incident to stage on day `day` (0: the first), at local `hour` on that calendar day
    or, when None, at a plausible time drawn by the simulation.

    A fall happens at `hour` or at the first moment after it (within 6 h) when the resident
    is up, at home in a fitting room and no visitor is in; not_up is always at the resident's
    usual wake time; for night_wandering `hour` is 23-24 or 0-4 (0-4: the early morning of
    `day`); for device_failure it is when the battery dies. A decline begins on `day` and
    reaches its worst after `duration_h` (default: drawn, 2-4 weeks); it lasts to the end.
    """

    kind: str
    day: int
    hour: float | None = None
    resident: int | None = None  # index into home.residents; None: drawn
    room: str | None = None  # long_lie: living_room, bedroom or kitchen; None: drawn
    device: str | None = None  # device_failure: which device; None: a PIR, drawn
    duration_h: float | None = None  # until found (or replaced; decline: its ramp); None: drawn


@dataclass(frozen=True, slots=True)
class Incident:
    """What happened: `start` is when the emergency began (the fall, the usual wake time, the
    door opening, the battery dying), `end` when the resident was found or the device
    replaced."""

    kind: str
    start: float
    room: str | None
    device: str | None
    resident: str | None
    end: float
    found_by: str = ""  # partner, visitor, carer, family, police, technician


@dataclass(frozen=True, slots=True)
class DayNote:
    """One resident's day as planned (an incident may have changed it): wake and bed times,
    illness, outings taken, toilet visits in the night after."""

    resident: str
    day: int
    wake: float
    bed: float
    ill: bool
    outings: int
    night_toilet: int  # toilet visits in the night after this day


@dataclass(frozen=True, slots=True)
class Simulation:
    """The sensor events of a simulated run and the ground truth behind them."""

    home: SimHome
    start: float
    end: float
    events: list[Event]
    causes: list[str]  # per event: a resident's name, visitor, carer, rescuer, ghost, device
    incidents: list[Incident]
    diary: list[DayNote]


# --- the home's devices ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Setup:
    home_id: str
    devices: tuple[tuple[Device, Model], ...]
    pirs: dict[int, tuple[str, ...]]  # room -> motion sensors
    radars: dict[int, tuple[str, ...]]  # room -> presence sensors
    doors: tuple[str, ...]  # entrance door contacts
    beds: dict[str, str]  # bed sensor -> its resident's name
    sos: dict[int, tuple[str, ...]]  # room -> buttons
    tz: ZoneInfo


@functools.lru_cache(maxsize=128)
def _setup(config_text: str) -> _Setup:
    data = tomllib.loads(config_text)
    listed = devices_in(config_text)
    devices = tuple((dev, model) for dev, model, _ in listed)
    pirs: dict[int, list[str]] = {}
    radars: dict[int, list[str]] = {}
    sos: dict[int, list[str]] = {}
    doors, beds = [], {}
    for dev, model, resident in listed:
        room = _ROOM_INDEX.get(dev.room or "", -1)
        if "motion" in model.classes and room >= 0:
            pirs.setdefault(room, []).append(dev.id)
        if "presence" in model.classes and room >= 0:
            radars.setdefault(room, []).append(dev.id)
        if "contact" in model.classes and room == ENTRANCE:
            doors.append(dev.id)
        if "in_bed" in model.classes and resident:
            beds[dev.id] = resident
        if "sos" in model.classes and room >= 0:
            sos.setdefault(room, []).append(dev.id)
    return _Setup(data["home"]["id"], devices, {k: tuple(v) for k, v in pirs.items()},
                  {k: tuple(v) for k, v in radars.items()}, tuple(doors), beds,
                  {k: tuple(v) for k, v in sos.items()},
                  ZoneInfo(data.get("gateway", {}).get("timezone", "Asia/Shanghai")))


@contextlib.contextmanager
def _quiet_gc() -> Iterator[None]:
    """No cyclic garbage collection while a run's objects are made.

    A run makes a few hundred thousand small objects with no reference cycles among them;
    the collector would rescan the growing lists again and again for nothing (a third of
    the time of `to_observations`). Reference counting still frees everything.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# --- drawing -----------------------------------------------------------------------------


class _Draw:
    """Scalar draws from the Generator, buffered: one call per draw would be slow."""

    __slots__ = ("_n", "_u", "rng")

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._u: list[float] = []
        self._n: list[float] = []

    def u(self, lo: float = 0.0, hi: float = 1.0) -> float:
        if not self._u:
            self._u = self.rng.random(4096).tolist()
        return lo + (hi - lo) * self._u.pop()

    def n(self, mu: float, sd: float) -> float:
        if not self._n:
            self._n = self.rng.standard_normal(1024).tolist()
        return mu + sd * self._n.pop()

    def p(self, prob: float) -> bool:
        return self.u() < prob

    def poisson(self, lam: float) -> int:
        return int(self.rng.poisson(lam)) if lam > 0 else 0

    def pick(self, n: int) -> int:
        return min(int(self.u() * n), n - 1)


class _Track:
    """One person's time, written forward as consecutive segments."""

    __slots__ = ("draw", "room", "segs", "t", "transit_p")

    def __init__(self, t: float, room: int, mode: int, draw: _Draw, transit_p: float) -> None:
        self.t, self.room, self.draw, self.transit_p = t, room, draw, transit_p
        self.segs: list[Seg] = [(t - 1.0, t, room, mode, 1.0)]

    def add(self, room: int, mode: int, dur: float = 0.0, k: float = 1.0, *,
            end: float | None = None) -> None:
        """Go to `room` (through the living room, as the flat's hub, now and then) and do
        `mode` for `dur` seconds, or until `end`."""
        if (room != self.room and LIVING not in (room, self.room) and OUT not in (room, self.room)
                and self.draw.p(self.transit_p)):
            self._seg(LIVING, MOVE, self.draw.u(6.0, 15.0), 1.0)
        if end is not None:
            dur = end - self.t
        if dur > 0.5:
            self._seg(room, mode, dur, k)

    def _seg(self, room: int, mode: int, dur: float, k: float) -> None:
        t1 = self.t + dur
        last = self.segs[-1] if self.segs else None
        if (last is not None and last[2] == room and last[3] == mode and last[4] == k
                and last[1] == self.t):
            self.segs[-1] = (last[0], t1, room, mode, k)
        else:
            self.segs.append((self.t, t1, room, mode, k))
        self.t, self.room = t1, room


@dataclass(slots=True)
class _Visit:
    arrive: float
    leave: float
    kind: str  # visitor (family), carer, rescuer


@dataclass(slots=True)
class _Person:
    name: str
    role: str  # resident, visitor, carer, rescuer
    pace: float
    fidget_s: float
    segs: list[Seg]
    room: int = LIVING  # rescuer: the room they are called to


@dataclass(slots=True)
class _Days:
    """The home's shared plan: meal times, who cooks, visits, joint outings."""

    start: float
    weekday0: int
    lunch: list[float]
    dinner: list[float]
    cook: list[tuple[int, int]]  # (lunch, dinner) cook: resident index
    cook_min: list[tuple[float, float]]
    eat_kitchen: list[tuple[bool, bool]]
    joint: list[tuple[float, float] | None]  # a couple's outing: (leave at, for s)
    visits: list[_Visit]
    family: list[tuple[float, float]] = field(default_factory=list)  # visitor (arrive, leave)

    def day_start(self, d: int) -> float:
        return self.start + d * DAY_S

    def weekend(self, d: int) -> bool:
        return (self.weekday0 + d) % 7 >= 5

    def visitor_at(self, t: float) -> tuple[float, float] | None:
        """The family visit under way at `t`, as (arrive, leave)."""
        i = bisect.bisect_right(self.family, (t, math.inf)) - 1
        return self.family[i] if i >= 0 and t < self.family[i][1] else None

    def next_visit(self, t: float) -> float:
        i = bisect.bisect_right(self.family, (t, math.inf))
        return self.family[i][0] if i < len(self.family) else math.inf

    def busy(self, a: float, b: float) -> bool:
        """Whether a visit overlaps [a, b]: nobody plans to be out then."""
        return any(v.arrive < b and v.leave > a for v in self.visits)


@dataclass(slots=True)
class _Plan:
    """One resident's wake, bed and illness per day, index d + 1 for day d (-1 … days), and
    how far a decline has gone (0 none … 1 its worst)."""

    wake: list[float]
    bed: list[float]
    ill: list[bool]
    frail: list[float]

    def w(self, d: int) -> float:
        return self.wake[d + 1]

    def b(self, d: int) -> float:
        return self.bed[d + 1]

    def sick(self, d: int) -> bool:
        return self.ill[d + 1]

    def frailty(self, d: int) -> float:
        return self.frail[min(max(d + 1, 0), len(self.frail) - 1)]


def _plan(p: ResidentProfile, days: _Days, n_days: int, draw: _Draw,
          decline: tuple[int, float] | None = None) -> _Plan:
    """`decline`: (first day, days to its worst)."""
    wake, bed, ill, frail = [], [], [], []
    spell = 0
    for d in range(-1, n_days + 2):
        if spell == 0 and d >= 0 and draw.p(p.ill_p):
            spell = 1 + draw.pick(4)
        sick = spell > 0
        spell = max(0, spell - 1)
        ds = days.day_start(d)
        w = draw.n(p.wake_h + (p.weekend_shift_h if days.weekend(d) else 0.0), p.wake_sd_h)
        b = draw.n(p.bed_h, p.bed_sd_h)
        if sick:
            w += draw.u(0.5, 1.5)
            b -= draw.u(0.3, 1.0)
        f = 0.0 if decline is None or d < decline[0] else min(1.0, (d - decline[0] + 1)
                                                                / decline[1])
        w += 1.5 * f  # up later and to bed earlier as a decline goes on
        b -= 1.0 * f
        wake.append(ds + min(max(w, 5.0), 8.9 + 1.5 * f) * HOUR_S)
        bed.append(ds + min(max(b, 20.5 - 1.0 * f), 23.6) * HOUR_S)
        ill.append(sick)
        frail.append(f)
    return _Plan(wake, bed, ill, frail)


def _home_days(home: SimHome, start: float, n_days: int, weekday0: int,
               draw: _Draw) -> _Days:
    """Meal times, cooks, visits and joint outings for every day of the run."""
    days = _Days(start, weekday0, [], [], [], [], [], [], [])
    nres = len(home.residents)
    can_go = min(r.outing_p for r in home.residents)
    for d in range(-1, n_days + 2):
        ds = days.day_start(d)
        days.lunch.append(ds + draw.n(11.5, 0.3) * HOUR_S)
        days.dinner.append(ds + draw.n(17.67, 0.4) * HOUR_S)
        days.cook.append((draw.pick(nres), draw.pick(nres)))
        days.cook_min.append((draw.u(15, 40) * MIN_S, draw.u(15, 40) * MIN_S))
        days.eat_kitchen.append((draw.p(0.6), draw.p(0.6)))
        visits: list[_Visit] = []
        if draw.p(home.carer_p):
            a = ds + draw.u(8.5, 10.0) * HOUR_S
            visits.append(_Visit(a, a + draw.u(1.0, 1.5) * HOUR_S, "carer"))
            if home.carer_visits > 1:
                a = ds + draw.u(15.5, 16.5) * HOUR_S
                visits.append(_Visit(a, a + draw.u(0.75, 1.25) * HOUR_S, "carer"))
        weekend = days.weekend(d)
        if draw.p(home.family_visit_p * (2.0 if weekend else 1.0)):
            hour = draw.u(9.5, 10.5) if weekend and draw.p(0.3) else draw.u(14.0, 16.5)
            a = ds + hour * HOUR_S
            b = min(a + draw.u(1.0, 3.0) * HOUR_S, ds + 19.5 * HOUR_S)
            if not any(v.arrive < b + 600 and v.leave > a - 600 for v in visits):
                visits.append(_Visit(a, b, "visitor"))
        days.visits += visits
        joint = None
        if nres > 1 and can_go > 0.1 and draw.p(0.35 * can_go):
            a = ds + draw.u(14.5, 15.5) * HOUR_S
            joint = (a, draw.u(0.75, 2.0) * HOUR_S)
        days.joint.append(joint)
    days.visits.sort(key=lambda v: v.arrive)
    days.family = [(v.arrive, v.leave) for v in days.visits if v.kind == "visitor"]
    return days


# --- one resident's normal life ----------------------------------------------------------


class _Life:
    """One resident's normal days, written segment by segment."""

    def __init__(self, index: int, p: ResidentProfile, home: SimHome, plan: _Plan,
                 days: _Days, draw: _Draw) -> None:
        self.index, self.p, self.plan, self.days, self.draw = index, p, plan, days, draw
        self.tr = _Track(plan.b(-1), BEDROOM, BED, draw, home.transit_p)
        self.last_bath = plan.b(-1)
        self.bath_gap = 2.5 * HOUR_S
        self.errand: float | None = None
        self.k, self.slow, self.frail = 1.0, 1.0, 0.0
        self.notes: list[DayNote] = []

    def run(self, n_days: int) -> list[Seg]:
        toilets = self.night(self.plan.w(0), -1)
        for d in range(n_days + 1):
            outings = self.day(d)
            wake, bed = self.plan.w(d), self.plan.b(d)
            toilets = self.night(self.plan.w(d + 1), d)
            self.notes.append(DayNote(self.p.name, d, wake, bed, self.plan.sick(d), outings,
                                      toilets))
        return self.tr.segs

    # -- the night -----------------------------------------------------------------------

    def night(self, until: float, d: int) -> int:
        tr, dr, p = self.tr, self.draw, self.p
        t0 = tr.t
        if until - t0 < 60 * MIN_S:
            tr.add(BEDROOM, BED, end=until)
            return 0
        frail = self.plan.frailty(d)
        n = min(3, dr.poisson(p.night_toilet * (1.4 if self.plan.sick(d) else 1.0)
                              * (1.0 + frail)))
        trips = sorted((dr.u(t0 + 20 * MIN_S, until - 15 * MIN_S), "toilet") for _ in range(n))
        if (p.dementia and dr.p(0.15)) or (frail > 0 and dr.p(0.3 * frail)):
            trips.append((dr.u(t0 + 30 * MIN_S, until - 60 * MIN_S), "restless"))
            trips.sort()
        slow = 1.0 / math.sqrt(p.pace)
        done = 0
        for at, what in trips:
            if at < tr.t + 30 * MIN_S:
                continue
            tr.add(BEDROOM, BED, end=at)
            tr.add(BEDROOM, MOVE, dr.u(20, 60))
            if what == "toilet":
                tr.add(BATHROOM, ACTIVE, dr.u(2, 6) * MIN_S * slow)
                done += 1
            else:
                tr.add(LIVING, MOVE, dr.u(5, 20) * MIN_S)
                if dr.p(0.5):
                    tr.add(KITCHEN, MOVE, dr.u(2, 5) * MIN_S)
                tr.add(LIVING, SIT, dr.u(5, 20) * MIN_S)
                tr.add(BATHROOM, ACTIVE, dr.u(2, 5) * MIN_S * slow)
            tr.add(BEDROOM, MOVE, dr.u(15, 40))
        tr.add(BEDROOM, BED, end=until)
        self.last_bath = until
        return done

    # -- the day -------------------------------------------------------------------------

    def day(self, d: int) -> int:
        tr, dr, p, days = self.tr, self.draw, self.p, self.days
        sick, frail = self.plan.sick(d), self.plan.frailty(d)
        self.frail = frail
        self.k = (0.55 if sick else 1.0) * (1.0 - 0.5 * frail)
        self.slow = (1.3 if sick else 1.0) * (1.0 + 0.5 * frail) / math.sqrt(p.pace)
        ds, wake, bed = days.day_start(d), self.plan.w(d), self.plan.b(d)
        self.errand = ds + dr.u(9.0, 19.0) * HOUR_S if dr.p(0.25) else None
        self.bath_gap = dr.u(1.5, 3.5) * HOUR_S
        tr.add(BEDROOM, MOVE, dr.u(2, 6) * MIN_S * self.slow, self.k)
        self.bathroom(dr.u(8, 20))
        self.fill(wake + dr.u(0.3, 0.8) * HOUR_S)
        self.meal(dr.u(8, 18) * MIN_S, True, dr.p(0.6))
        if sick or (frail > 0 and dr.p(frail)):
            tr.add(BEDROOM, REST, dr.u(1.5, 4.0) * HOUR_S, self.k)
        lunch, dinner = days.lunch[d + 1], days.dinner[d + 1]
        plans = self.outings(d, wake, lunch, dinner)
        outings = 0
        for at, dur in plans:
            if at < lunch:
                outings += self.outing(at, dur)
        if tr.t < lunch + 0.75 * HOUR_S:
            self.fill(lunch)
            self.shared_meal(d, 0)
        if dr.p(0.9 if sick else max(p.nap_p, 0.9 * frail)):
            self.fill(tr.t + dr.u(10, 40) * MIN_S)
            nap = dr.u(30, 90) * MIN_S * (1 + 0.1 * p.ability_level)
            if sick or dr.p(0.5):
                tr.add(BEDROOM, MOVE, dr.u(30, 60), self.k)
                tr.add(BEDROOM, BED, nap)
            else:
                tr.add(LIVING, STILL, nap)
        for at, dur in plans:
            if at >= lunch:
                outings += self.outing(at, dur)
        if tr.t < dinner + 0.75 * HOUR_S:
            self.fill(dinner)
            self.shared_meal(d, 1)
        shower = dr.p(0.1 if sick else 0.3)
        wash = (dr.u(15, 30) if shower else dr.u(6, 12)) * MIN_S * self.slow
        undress = dr.u(3, 8) * MIN_S * self.slow
        self.fill(bed - wash - undress)
        tr.add(BATHROOM, ACTIVE, wash, self.k)
        tr.add(BEDROOM, MOVE, undress, self.k)
        return outings

    def outings(self, d: int, wake: float, lunch: float, dinner: float) -> list[tuple[float,
                                                                                        float]]:
        """When to go out today, and for how long (s)."""
        dr, p, days = self.draw, self.p, self.days
        if self.plan.sick(d) or (self.frail > 0 and dr.p(self.frail)):
            return []
        joint = days.joint[d + 1]
        if joint is not None:
            return [] if days.busy(joint[0] - 0.5 * HOUR_S, sum(joint) + 0.3 * HOUR_S) else [joint]
        if not dr.p(p.outing_p):
            return []
        ds = days.day_start(d)
        slots = ["am", "pm"] if p.ability_level <= 1 and dr.p(0.3) else [
            "am" if dr.p(0.55) else "pm"]
        out = []
        for slot in slots:
            if slot == "am":
                at = max(ds + dr.u(8.0, 10.0) * HOUR_S, wake + 1.5 * HOUR_S)
                latest = lunch - 0.3 * HOUR_S
                if dr.p(0.2):  # lunch out: a long morning
                    latest = at + dr.u(2.5, 4.0) * HOUR_S
            else:
                at = ds + dr.u(14.5, 16.0) * HOUR_S
                latest = dinner - 0.3 * HOUR_S
            dur = min(math.exp(dr.n(math.log(1.3 * HOUR_S), 0.5)), 4 * HOUR_S, latest - at)
            if dur >= 0.5 * HOUR_S and not days.busy(at - 0.5 * HOUR_S, at + dur + 0.3 * HOUR_S):
                out.append((at, dur))
        return out

    def outing(self, at: float, dur: float) -> bool:
        """Out of the door at `at` for `dur` s, if there is still time to get ready."""
        tr, dr = self.tr, self.draw
        dress, hall, shoes = dr.u(3, 6) * MIN_S, dr.u(1, 2) * MIN_S, dr.u(30, 90)
        self.fill(at - dress - hall - shoes - 60)
        if tr.t >= at - dress - hall - shoes:
            return False  # running late: this outing is off
        tr.add(BEDROOM, MOVE, dress, self.k)
        tr.add(LIVING, MOVE, hall, self.k)
        if tr.t >= at - 5:
            return False
        tr.add(ENTRANCE, ACTIVE, end=at)
        tr.add(OUT, AWAY, end=at + dur)
        tr.add(ENTRANCE, ACTIVE, dr.u(20, 60))
        tr.add(LIVING, MOVE, dr.u(1, 3) * MIN_S)
        if dr.p(0.5):
            tr.add(KITCHEN, MOVE, dr.u(3, 8) * MIN_S)
        if dr.p(0.5):
            self.bathroom(dr.u(3, 6))
        return True

    def bathroom(self, minutes: float) -> None:
        self.tr.add(BATHROOM, ACTIVE, minutes * MIN_S * self.slow, self.k)
        self.last_bath = self.tr.t

    def meal(self, cook_s: float, cooks: bool, in_kitchen: bool) -> None:
        tr, dr = self.tr, self.draw
        if cooks:  # the more dependent make simpler meals (or heat what the carer left)
            simple = max(0.4, 1.0 - 0.2 * max(0, self.p.ability_level - 1))
            tr.add(KITCHEN, MOVE, cook_s * simple * self.slow, self.k)
        else:
            tr.add(LIVING, SIT, cook_s * self.slow, 1.5)
        eat = dr.u(10, 25) * MIN_S * self.slow
        if in_kitchen:
            tr.add(KITCHEN, ACTIVE, eat, self.k)
        else:
            tr.add(LIVING, SIT, eat, 1.5 * self.k)
        if dr.p(0.6):
            tr.add(KITCHEN, MOVE, dr.u(3, 8) * MIN_S, self.k)

    def shared_meal(self, d: int, which: int) -> None:
        days = self.days
        self.meal(days.cook_min[d + 1][which], days.cook[d + 1][which] == self.index,
                  days.eat_kitchen[d + 1][which])

    def fill(self, until: float) -> None:
        """Ordinary time at home until `until`: sitting, dozing, small trips, the bathroom."""
        tr, dr, p, days = self.tr, self.draw, self.p, self.days
        while tr.t < until - 20:
            t = tr.t
            visit = days.visitor_at(t)
            limit = min(until, visit[1] if visit else days.next_visit(t))
            hour = (t - days.start) % DAY_S / HOUR_S
            left = max(limit - t, 30.0)  # may run a little past a visitor's ring
            if self.errand is not None and t >= self.errand:
                self.errand = None
                tr.add(LIVING, MOVE, dr.u(10, 25), self.k)
                tr.add(ENTRANCE, DOOR, dr.u(30, 120))
            elif t - self.last_bath > self.bath_gap:
                self.bathroom(min(dr.u(3, 8), left / MIN_S))
                self.bath_gap = dr.u(1.5, 3.5) * HOUR_S
            elif visit is not None:  # sitting with the family, and making them tea
                if dr.p(0.15):
                    tr.add(KITCHEN, MOVE, min(dr.u(3, 8) * MIN_S, left), self.k)
                else:
                    tr.add(LIVING, SIT, min(dr.u(15, 40) * MIN_S, left), 2.5 * self.k)
            else:
                r = dr.u()
                doze = (0.05 + 0.05 * p.ability_level) * (2.0 if 13 <= hour < 17 else 1.0)
                if self.k < 1:  # ill, or declining
                    doze = 0.35 if self.frail == 0 else max(doze, 0.6 * self.frail)
                if r < 0.12:
                    tr.add(KITCHEN, MOVE, min(dr.u(2, 8) * MIN_S, left), self.k)
                elif r < 0.2:
                    tr.add(BEDROOM, MOVE, min(dr.u(2, 8) * MIN_S, left), self.k)
                elif r < 0.2 + 0.08 * p.pace:  # a chore: sweeping, tidying
                    tr.add([LIVING, KITCHEN, BEDROOM][dr.pick(3)], MOVE,
                           min(dr.u(5, 20) * MIN_S, left), self.k)
                elif r < 0.2 + 0.08 * p.pace + doze:
                    tr.add(LIVING, STILL, min(dr.u(10, 40) * MIN_S, left))
                else:
                    tr.add(LIVING, SIT, min(dr.u(15, 50) * MIN_S, left), self.k)
                    if dr.p(0.3) and limit - tr.t > 30:
                        tr.add(LIVING, MOVE, min(dr.u(20, 90), limit - tr.t), self.k)


# --- visitors ----------------------------------------------------------------------------


def _visitor(v: _Visit, draw: _Draw, transit_p: float) -> _Person:
    tr = _Track(v.arrive - 60, OUT, AWAY, draw, transit_p)
    tr.add(OUT, AWAY, end=v.arrive)
    tr.add(ENTRANCE, ACTIVE, draw.u(10, 30))
    leave = v.leave - 30
    if v.kind == "carer":
        tr.add(KITCHEN, MOVE, draw.u(20, 40) * MIN_S)
        tr.add(BEDROOM, ACTIVE, draw.u(10, 20) * MIN_S)
        tr.add(BATHROOM, ACTIVE, draw.u(5, 15) * MIN_S)
        tr.add(LIVING, MOVE, end=leave)
    else:
        tr.add(LIVING, SIT, draw.u(5, 20) * MIN_S, 2.0)
        if draw.p(0.7):
            tr.add(KITCHEN, MOVE, draw.u(5, 15) * MIN_S)
        if draw.p(0.4):
            tr.add(BATHROOM, ACTIVE, draw.u(3, 5) * MIN_S)
        tr.add(LIVING, SIT, end=leave, k=2.0)
    _leave(tr, draw)
    return _Person(v.kind, v.kind, 1.0, 240.0, tr.segs)


def _leave(tr: _Track, draw: _Draw) -> None:
    tr.add(ENTRANCE, ACTIVE, draw.u(15, 40))
    tr.add(OUT, AWAY, 60.0)


# --- incidents ---------------------------------------------------------------------------


def plan_incidents(home: SimHome, days: int, rng: np.random.Generator, *,
                   per_month: float = 2.0) -> list[IncidentSpec]:
    """A plausible set of incidents for a run: about `per_month` per 30 days, at least two
    days apart, night wandering only where someone has dementia."""
    dementia = [i for i, r in enumerate(home.residents) if r.dementia]
    kinds = ["long_lie", "bathroom_collapse", "not_up", "device_failure"]
    weights = [0.3, 0.2, 0.2, 0.15]
    if dementia:
        kinds.append("night_wandering")
        weights.append(0.15)
    w = np.array(weights) / sum(weights)
    n = int(rng.poisson(per_month * days / 30.0))
    free = list(range(1, days - 1))
    out: list[IncidentSpec] = []
    for _ in range(n):
        if not free:
            break
        day = free[int(rng.integers(len(free)))]
        free = [d for d in free if abs(d - day) >= 2]
        kind = str(rng.choice(kinds, p=w))
        who = (dementia[int(rng.integers(len(dementia)))] if kind == "night_wandering" else
               int(rng.integers(len(home.residents))))
        out.append(IncidentSpec(kind, day, resident=None if kind == "device_failure" else who))
    return sorted(out, key=lambda s: s.day)


class _Stage:
    """Incidents spliced into the normal days."""

    def __init__(self, home: SimHome, setup: _Setup, days: _Days, plans: list[_Plan],
                 people: list[_Person], draw: _Draw, start: float, n_days: int) -> None:
        self.home, self.setup, self.days, self.plans = home, setup, days, plans
        self.people, self.draw, self.start, self.n_days = people, draw, start, n_days
        self.rescuers: list[_Person] = []
        self.dead: list[tuple[str, float, float, bool]] = []  # device, from, to, warned
        self.busy_until = [-math.inf] * len(plans)

    def hour(self, t: float) -> float:
        return (t - self.start) % DAY_S / HOUR_S

    def calendar_day(self, t: float) -> int:
        return int((t - self.start) // DAY_S)

    def stage(self, spec: IncidentSpec) -> Incident:
        if spec.kind not in INCIDENT_KINDS:
            raise ValueError(f"unknown incident kind {spec.kind!r} (kinds: "
                             f"{', '.join(INCIDENT_KINDS)})")
        if not 0 <= spec.day < self.n_days:
            raise ValueError(f"incident day {spec.day} is outside the run (0..{self.n_days - 1})")
        if spec.kind == "device_failure":
            return self.failure(spec)
        residents = self.home.residents
        if spec.resident is not None and not 0 <= spec.resident < len(residents):
            raise ValueError(f"no resident {spec.resident} in home {self.home.index}")
        if spec.kind == "night_wandering":
            able = [i for i, r in enumerate(residents) if r.dementia]
            if spec.resident is not None and spec.resident not in able:
                able = []
            if not able:
                raise ValueError("night_wandering needs a resident with dementia")
            r = spec.resident if spec.resident is not None else able[self.draw.pick(len(able))]
            return self.wander(spec, r)
        r = spec.resident if spec.resident is not None else self.draw.pick(len(residents))
        if spec.kind == "not_up":
            return self.not_up(spec, r)
        return self.fall(spec, r)

    # -- placing -------------------------------------------------------------------------

    def fall(self, spec: IncidentSpec, r: int) -> Incident:
        dr, segs = self.draw, self.people[r].segs
        ds = self.days.day_start(spec.day)
        if spec.kind == "bathroom_collapse":
            rooms = {BATHROOM}
            windows = [(ds + 7 * HOUR_S, ds + 22 * HOUR_S), (ds, ds + 5 * HOUR_S)]
            if dr.p(0.3):
                windows.reverse()
        else:
            if spec.room is not None and spec.room not in ("living_room", "bedroom", "kitchen"):
                raise ValueError(f"long_lie room {spec.room!r}: living_room, bedroom or kitchen")
            rooms = {_ROOM_INDEX[spec.room]} if spec.room else {LIVING, BEDROOM, KITCHEN}
            windows = [(ds + 8 * HOUR_S, ds + 20 * HOUR_S)]
        if spec.hour is not None:
            windows = [(ds + spec.hour * HOUR_S, ds + spec.hour * HOUR_S)]
        t0 = None
        for lo, hi in windows:
            t0 = self.when(r, rooms, lo, hi, exact=spec.hour is not None)
            if t0 is not None:
                break
        if t0 is None:
            raise ValueError(f"{spec.kind} on day {spec.day}: the resident is never in "
                             f"{'/'.join(ROOM_NAMES[x] or '' for x in sorted(rooms))} then")
        room = self.room_at(segs, t0)
        h = self.hour(t0)
        if spec.duration_h is not None:
            end = t0 + spec.duration_h * HOUR_S
        elif h < 5 or h >= 22:
            end = self.morning(t0 + (0 if h < 5 else DAY_S) - h * HOUR_S, 7.5, 11.0)
        else:
            end = t0 + dr.u(6, 12) * HOUR_S
            if not 7 <= self.hour(end) < 23:
                end = self.morning(end + (DAY_S if self.hour(end) >= 23 else 0)
                                   - self.hour(end) * HOUR_S, 7.5, 10.0)
        return self.lie(spec.kind, r, t0, room, end, fixed=spec.duration_h is not None)

    def morning(self, midnight: float, lo: float, hi: float) -> float:
        return midnight + self.draw.u(lo, hi) * HOUR_S

    def when(self, r: int, rooms: set[int], lo: float, hi: float, *, exact: bool) -> float | None:
        """A moment to fall: up, in one of `rooms`, with no visitor in the home, at or soon
        after `lo` (exact) or drawn in [lo, hi], preferably with nobody else at home."""
        segs = self.people[r].segs
        ok = [s for s in segs if s[2] in rooms and s[3] in _AWAKE and s[1] - s[0] >= 60
              and s[1] - 10 > max(lo, self.busy_until[r]) and s[0] >= self.busy_until[r]
              and s[0] <= (lo + 6 * HOUR_S if exact else hi)
              and not self.days.busy(s[0], s[1])]
        if exact:
            return max(lo, ok[0][0] + 20) if ok else None
        if not ok:
            return None
        alone = [s for s in ok if all(self.room_at(p.segs, s[0]) == OUT
                                      for i, p in enumerate(self.people[:len(self.plans)])
                                      if i != r)]
        if alone and len(alone) < len(ok) and self.draw.p(0.8):
            ok = alone
        s = ok[self.draw.pick(len(ok))]
        return self.draw.u(max(s[0] + 20, lo), s[1] - 10) if s[1] - 10 > max(s[0] + 20, lo) \
            else s[0] + 20

    @staticmethod
    def room_at(segs: Sequence[Seg], t: float) -> int:
        i = bisect.bisect_right(segs, (t, math.inf)) - 1
        return segs[max(i, 0)][2]

    @staticmethod
    def mode_at(segs: Sequence[Seg], t: float) -> int:
        i = bisect.bisect_right(segs, (t, math.inf)) - 1
        return segs[max(i, 0)][3]

    # -- who finds them ------------------------------------------------------------------

    def finder(self, r: int, room: int, t0: float, end: float, *,
               fixed: bool) -> tuple[float, str, _Visit | None, bool]:
        """(found at, by whom, the visit that found them, whether that visitor was already
        in), or the planned end and "family"."""
        dr = self.draw
        if fixed:
            return end, "family", None, False
        for v in self.days.visits:
            if v.arrive <= t0 < v.leave:
                return t0 + dr.u(30, 120), v.kind, v, True
            if t0 < v.arrive < end:
                return v.arrive + dr.u(30, 90), v.kind, v, False
        found, by = end, "family"
        for i, p in enumerate(self.people[:len(self.plans)]):
            if i == r:
                continue
            for s in p.segs:
                if s[1] > t0 and s[2] == room and s[3] in (*_AWAKE, DOOR):
                    at = max(s[0], t0) + dr.u(30, 180)
                    if at < found:
                        found, by = at, "partner"
                    break
        return found, by, None, False

    def resume(self, r: int, at: float) -> float:
        """The first moment from `at` when the normal day can take over (not mid-outing)."""
        segs = self.people[r].segs
        i = max(bisect.bisect_right(segs, (at, math.inf)) - 1, 0)
        while i < len(segs) and segs[i][2] in (OUT, ENTRANCE):
            i += 1
        return segs[i][0] if i < len(segs) and segs[i][0] > at else at

    def wake_on(self, r: int, t: float, later: int = 0) -> float:
        """Resident r's planned wake on the calendar day of `t` (+ `later` days)."""
        return self.plans[r].w(max(-1, min(self.calendar_day(t) + later, self.n_days + 1)))

    # -- the incidents -------------------------------------------------------------------

    def lie(self, kind: str, r: int, t0: float, room: int, end: float, *,
            fixed: bool) -> Incident:
        dr = self.draw
        found, by, visit, present = self.finder(r, room, t0, end, fixed=fixed)
        h = self.hour(found)
        if h >= 15:  # rests in bed until the next morning
            back = self.wake_on(r, found, 1)
        elif h < 5:
            back = self.resume(r, max(self.wake_on(r, found), found + HOUR_S))
        else:
            back = self.resume(r, found + dr.u(2, 4) * HOUR_S)
        tr = _Track(found, room, DOWN, dr, self.home.transit_p)
        tr.segs = []
        tr.add(room, MOVE, dr.u(5, 15) * MIN_S, 0.5)
        tr.add(BEDROOM, BED, end=back)
        # A fall comes out of movement (getting up, a turn, a stumble): a PIR that is not
        # blind just then all but surely sees it.
        a = max(t0 - dr.u(5, 20), self.busy_until[r])
        self.splice(r, a, back, [(a, t0, room, MOVE, 10.0), (t0, found, room, DOWN, 1.0),
                                 *tr.segs])
        self.call_help(t0, back, found, room, by, visit, present)
        return Incident(kind, t0, ROOM_NAMES[room], None, self.home.residents[r].name,
                        found, by)

    def not_up(self, spec: IncidentSpec, r: int) -> Incident:
        dr, segs = self.draw, self.people[r].segs
        t0 = self.plans[r].w(spec.day)
        if t0 < self.busy_until[r] or self.mode_at(segs, t0 - 1) not in _IN_BED:
            raise ValueError(f"not_up on day {spec.day}: the resident is not in bed at the "
                             "usual wake time (an earlier incident?)")
        end = t0 + (spec.duration_h if spec.duration_h is not None else dr.u(3, 8)) * HOUR_S
        found, by, visit, present = self.finder(r, BEDROOM, t0, end,
                                                fixed=spec.duration_h is not None)
        back = self.resume(r, found + dr.u(1, 3) * HOUR_S)
        self.splice(r, t0, back, [(t0, found, BEDROOM, STUCK, 1.0),
                                  (found, back, BEDROOM, REST, 0.5)])
        self.call_help(t0, back, found, BEDROOM, by, visit, present)
        return Incident("not_up", t0, "bedroom", None, self.home.residents[r].name, found, by)

    def wander(self, spec: IncidentSpec, r: int) -> Incident:
        dr, segs = self.draw, self.people[r].segs
        ds = self.days.day_start(spec.day)
        if spec.hour is None:
            t0 = ds + dr.u(23.0, 28.0) * HOUR_S
        elif 23 <= spec.hour < 24 or 0 <= spec.hour <= 4:
            t0 = ds + spec.hour * HOUR_S
        else:
            raise ValueError(f"night_wandering hour {spec.hour}: 23-24 or 0-4")
        pre = [(BEDROOM, MOVE, dr.u(1, 2) * MIN_S), (LIVING, ACTIVE, dr.u(3, 15) * MIN_S)]
        if dr.p(0.3):
            pre.append((KITCHEN, MOVE, dr.u(1, 4) * MIN_S))
        pre_s = sum(x[2] for x in pre) + 120
        a = t0 - pre_s
        if a < self.busy_until[r] or self.room_at(segs, a) in (OUT, ENTRANCE):
            raise ValueError(f"night_wandering on day {spec.day}: the resident is not at home "
                             "in bed then (an earlier incident?)")
        end = t0 + (spec.duration_h if spec.duration_h is not None else dr.u(2, 6)) * HOUR_S
        back = self.resume(r, max(self.wake_on(r, end), end + dr.u(1.5, 3.0) * HOUR_S))
        tr = _Track(a, self.room_at(segs, a), self.mode_at(segs, a), dr, self.home.transit_p)
        tr.segs = []
        for room, mode, dur in pre:
            tr.add(room, mode, dur)
        tr.add(ENTRANCE, ACTIVE, end=t0)
        tr.add(OUT, AWAY, end=end)
        tr.add(ENTRANCE, ACTIVE, dr.u(20, 40))
        tr.add(LIVING, ACTIVE, dr.u(10, 20) * MIN_S)
        tr.add(BATHROOM, ACTIVE, dr.u(3, 6) * MIN_S)
        tr.add(BEDROOM, MOVE, dr.u(40, 80))
        tr.add(BEDROOM, BED, end=back)
        self.splice(r, a, back, tr.segs)
        helper = _Track(end - 60, OUT, AWAY, dr, self.home.transit_p)
        helper.add(OUT, AWAY, end=end)
        helper.add(ENTRANCE, ACTIVE, dr.u(20, 40))
        helper.add(LIVING, SIT, dr.u(10, 30) * MIN_S, 2.0)
        _leave(helper, dr)
        self.rescuers.append(_Person("rescuer", "rescuer", 1.0, 240.0, helper.segs))
        self.drop_visits(end, back)
        return Incident("night_wandering", t0, "entrance", None, self.home.residents[r].name,
                        end, "police")

    def failure(self, spec: IncidentSpec) -> Incident:
        dr = self.draw
        pirs = sorted(d for ids in self.setup.pirs.values() for d in ids)
        if spec.device is not None:
            if spec.device not in self.home.devices:
                raise ValueError(f"device_failure: no device {spec.device!r}")
            if self.home.devices[spec.device].battery_pct is None:
                raise ValueError(f"device_failure: {spec.device!r} is mains powered")
            dev = spec.device
        elif pirs:
            dev = pirs[dr.pick(len(pirs))]
        else:
            raise ValueError("device_failure: the home has no PIR")
        hour = spec.hour if spec.hour is not None else dr.u(0, 24)
        t0 = self.days.day_start(spec.day) + hour * HOUR_S
        end = t0 + (spec.duration_h if spec.duration_h is not None else dr.u(24, 72)) * HOUR_S
        self.dead.append((dev, t0, end, dr.p(0.5)))
        room = next((d.room for d, _ in self.setup.devices if d.id == dev), None)
        return Incident("device_failure", t0, room, dev, None, end, "technician")

    # -- helpers -------------------------------------------------------------------------

    def splice(self, r: int, a: float, b: float, new: list[Seg]) -> None:
        """Replace resident r's time from a to b by `new`."""
        segs = self.people[r].segs
        out = [s for s in segs if s[1] <= a]
        out += [(s[0], a, *s[2:]) for s in segs if s[0] < a < s[1]]
        out += [s for s in new if s[1] > s[0]]
        out += [(b, *s[1:]) for s in segs if s[0] < b < s[1]]
        out += [s for s in segs if s[0] >= b]
        self.people[r].segs = out
        self.busy_until[r] = b

    def drop_visits(self, a: float, b: float, keep: _Visit | None = None) -> None:
        self.days.visits = [v for v in self.days.visits
                            if v is keep or not (a <= v.arrive < b)]

    def call_help(self, t0: float, back: float, found: float, room: int, by: str,
                  visit: _Visit | None, present: bool) -> None:
        """Whoever finds the resident comes in; a partner calls the family, who come."""
        dr = self.draw
        self.drop_visits(t0, back, keep=visit if present else None)
        if present:
            return
        if by == "partner":  # who then calls the family
            arrive = found + dr.u(15, 45) * MIN_S
            reach = arrive + dr.u(20, 40)
        else:  # in at the door, and into the room at the moment they find the resident
            arrive = found - dr.u(20, 60)
            reach = found
        tr = _Track(arrive - 60, OUT, AWAY, dr, self.home.transit_p)
        tr.add(OUT, AWAY, end=arrive)
        if room == LIVING:
            tr.add(ENTRANCE, ACTIVE, end=reach)
        else:
            tr.add(ENTRANCE, ACTIVE, end=arrive + dr.u(5, 15))
            tr.add(LIVING, MOVE, end=reach)
        tr.add(room, MOVE, dr.u(10, 20) * MIN_S)
        tr.add(KITCHEN, MOVE, dr.u(5, 15) * MIN_S)
        tr.add(BEDROOM, ACTIVE, dr.u(10, 20) * MIN_S)
        tr.add(LIVING, SIT, dr.u(10, 40) * MIN_S, 2.0)
        _leave(tr, dr)
        self.rescuers.append(_Person(by if by != "partner" else "family", "rescuer", 1.0,
                                     240.0, tr.segs, room))


# --- what the sensors see ----------------------------------------------------------------


class _Out:
    """Events being collected, with who caused each."""

    def __init__(self) -> None:
        self.t: list[float] = []
        self.dev: list[str] = []
        self.kind: list[str] = []
        self.value: list[Value] = []
        self.cause: list[str] = []

    def add(self, t: float, dev: str, kind: str, value: Value, cause: str) -> None:
        self.t.append(t)
        self.dev.append(dev)
        self.kind.append(kind)
        self.value.append(value)
        self.cause.append(cause)

    def extend(self, ts: list[float], dev: str, kind: str, values: list[Value],
               causes: list[str]) -> None:
        self.t += ts
        self.dev += [dev] * len(ts)
        self.kind += [kind] * len(ts)
        self.value += values
        self.cause += causes


def _arrays(people: list[_Person]) -> dict[str, np.ndarray]:
    segs = [s for p in people for s in p.segs]
    a = np.array(segs, dtype=float).reshape(-1, 5)
    pid = np.repeat(np.arange(len(people)), [len(p.segs) for p in people])
    first = np.zeros(len(segs), dtype=bool)
    first[np.cumsum([0] + [len(p.segs) for p in people[:-1]])] = True
    room = a[:, 2].astype(int)
    prev = np.roll(room, 1)
    prev[first] = -1
    return {"t0": a[:, 0], "t1": a[:, 1], "room": room, "mode": a[:, 3].astype(int),
            "k": a[:, 4], "pid": pid, "prev": prev}


def _pirs(out: _Out, arr: dict[str, np.ndarray], people: list[_Person], home: SimHome,
          setup: _Setup, dead: list[tuple[str, float, float, bool]], lo: float, hi: float,
          rng: np.random.Generator) -> None:
    rooms = np.zeros(OUT + 1, dtype=bool)
    rooms[list(setup.pirs)] = True
    m = rooms[arr["room"]]
    t0, t1, mode, k, pid = (arr[x][m] for x in ("t0", "t1", "mode", "k", "pid"))
    room, prev = arr["room"][m], arr["prev"][m]
    pace = np.array([p.pace for p in people])[pid]
    rate = _RATE[mode] * pace * k
    sit = mode == SIT
    rate[sit] = (k / np.array([p.fidget_s for p in people])[pid])[sit]
    in_bed = (mode == BED) | (mode == REST)
    rate[in_bed] = _RATE[mode[in_bed]] if home.pir_sees_bed else 0.0
    dur = t1 - t0
    n = rng.poisson(rate * dur)
    times = np.repeat(t0, n) + rng.random(int(n.sum())) * np.repeat(dur, n)
    who, where = np.repeat(pid, n), np.repeat(room, n)
    enter = ((room != prev) & (mode != DOWN) & (mode != STUCK)
             & (rng.random(len(room)) < PIR_ENTRY_P))
    step_in = t0 + np.minimum(rng.uniform(0.5, 4.0, len(room)), dur / 2)
    times = np.concatenate([times, step_in[enter]])
    who = np.concatenate([who, pid[enter]])
    where = np.concatenate([where, room[enter]])
    names = [p.name for p in people] + ["ghost"]
    for r, devs in sorted(setup.pirs.items()):
        sel = where == r
        for dev in devs:
            ghosts = int(rng.poisson(home.devices[dev].ghost_per_day * (hi - lo) / DAY_S)) \
                if dev in home.devices else 0
            ts = np.concatenate([times[sel], rng.uniform(lo, hi, ghosts)])
            src = np.concatenate([who[sel], np.full(ghosts, len(people))])
            keep = (ts >= lo) & (ts < hi)
            for d, a, b, _ in dead:
                if d == dev:
                    keep &= (ts < a) | (ts >= b)
            ts, src = ts[keep], src[keep]
            order = np.argsort(ts, kind="stable")
            ts, src = ts[order], src[order]
            nxt = np.searchsorted(ts, ts + PIR_BLIND_S, side="left").tolist()
            hits: list[int] = []
            i, total = 0, len(nxt)
            while i < total:
                hits.append(i)
                i = nxt[i]
            idx = np.array(hits, dtype=int)
            out.extend(np.round(ts[idx], 3).tolist(), dev, "motion", [True] * len(hits),
                       [names[s] for s in src[idx].tolist()])


def _intervals(spans: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The union of (start, end, cause) spans; each merged span keeps its first cause."""
    spans.sort()
    out: list[tuple[float, float, str]] = []
    for a, b, c in spans:
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b, out[-1][2])
        else:
            out.append((a, b, c))
    return out


def _radars(out: _Out, people: list[_Person], home: SimHome, setup: _Setup, draw: _Draw,
            lo: float, hi: float) -> None:
    for r, devs in sorted(setup.radars.items()):
        for dev in devs:
            tr = home.devices.get(dev)
            hold = tr.hold_s if tr else 30.0
            spans = [(s[0] + draw.u(0.5, 2.0), s[1] + hold, p.name)
                     for p in people for s in p.segs if s[2] == r and s[3] != AWAY]
            ghost = tr.ghost_per_day if tr else 0.0
            for _ in range(draw.poisson(ghost * (hi - lo) / DAY_S)):
                a = draw.u(lo, hi)
                spans.append((a, a + draw.u(5, 40) + hold, "ghost"))
            for a, b, c in _intervals(spans):
                out.add(round(a, 3), dev, "presence", True, c)
                out.add(round(b, 3), dev, "presence", False, c)


def _doors(out: _Out, people: list[_Person], setup: _Setup, draw: _Draw) -> None:
    cycles: list[tuple[float, float, str]] = []
    for p in people:
        segs = p.segs
        for a, b in itertools.pairwise(segs):
            if {a[2], b[2]} == {ENTRANCE, OUT}:
                cycles.append((b[0], b[0] + draw.u(10, 40), p.name))
        for s in segs:
            if s[3] == DOOR and s[1] - s[0] > 10:
                cycles.append((s[0] + draw.u(2, 5), s[1] - draw.u(1, 3), p.name))
    for dev in setup.doors:
        for a, b, c in _intervals(list(cycles)):
            out.add(round(a, 3), dev, "contact", "open", c)
            out.add(round(b, 3), dev, "contact", "closed", c)


def _beds(out: _Out, people: list[_Person], setup: _Setup,
          draw: _Draw) -> dict[str, list[tuple[float, float, str]]]:
    spans_by: dict[str, list[tuple[float, float, str]]] = {}
    for dev, name in setup.beds.items():
        p = next((p for p in people if p.role == "resident" and p.name == name), None)
        if p is None:
            continue
        spans = _intervals([(s[0], s[1] + 20, name) for s in p.segs if s[3] in _IN_BED])
        spans = [(a, b - 20, c) for a, b, c in spans]
        spans_by[dev] = spans
        for a, b, c in spans:
            out.add(round(a + draw.u(2, 8), 3), dev, "in_bed", True, c)
            out.add(round(b + draw.u(0.5, 3), 3), dev, "in_bed", False, c)
    return spans_by


def _reports(out: _Out, home: SimHome, setup: _Setup, lo: float, hi: float,
             dead: list[tuple[str, float, float, bool]],
             beds: dict[str, list[tuple[float, float, str]]], draw: _Draw,
             rng: np.random.Generator) -> None:
    """Each battery device's periodic report, with its battery level as it drains."""
    for dev, _ in setup.devices:
        tr = home.devices.get(dev.id)
        if tr is None or tr.report_s is None or tr.battery_pct is None:
            continue
        a, b = tr.report_s
        n = int((hi - lo) / a) + 2
        ts = lo - rng.uniform(0, b) + np.cumsum(rng.uniform(a, b, n))
        ts = ts[(ts >= lo) & (ts < hi)]
        level = tr.battery_pct - tr.drain_pct_per_day * (ts - lo) / DAY_S
        for d, fail, fixed, warned in dead:
            if d != dev.id:
                continue
            if warned:  # a coin cell's last day: the reported level falls off a cliff
                w = (ts >= fail - 36 * HOUR_S) & (ts < fail)
                floor = draw.u(3, 15)
                frac = (ts[w] - (fail - 36 * HOUR_S)) / (36 * HOUR_S)
                level[w] = level[w] + (floor - level[w]) * frac
            after = ts >= fixed
            level[after] = 100.0 - tr.drain_pct_per_day * (ts[after] - fixed) / DAY_S
            keep = (ts < fail) | (ts >= fixed)
            ts, level = ts[keep], level[keep]
            if lo <= fixed < hi:  # the new battery: it reports at once
                ts = np.append(ts, fixed)
                level = np.append(level, 100.0)
        values: list[Value] = np.clip(np.round(level), 1, 100).astype(int).tolist()
        times = np.round(ts, 3).tolist()
        out.extend(times, dev.id, "battery", values, ["device"] * len(times))
        spans = beds.get(dev.id)
        if spans:
            starts = [s[0] for s in spans]
            for t in times:
                i = bisect.bisect_right(starts, t) - 1
                if i >= 0 and spans[i][1] > t:
                    out.add(t, dev.id, "heart_rate", round(draw.n(62, 5)), "device")
                    out.add(t, dev.id, "respiration_rate", round(draw.n(15, 1.5)), "device")


def _sos(out: _Out, people: list[_Person], plans: list[_Plan], setup: _Setup, draw: _Draw,
         n_days: int, lo: float, hi: float) -> None:
    """Now and then a button pressed by mistake, while the resident is up and beside it."""
    for p, plan in zip(people, plans, strict=True):
        for d in range(n_days):
            if not draw.p(SOS_ACCIDENT_P):
                continue
            a, b = plan.w(d), plan.b(d)
            near = [s for s in p.segs if a <= s[0] < b and s[2] in setup.sos and s[3] in _AWAKE]
            if near:
                s = near[draw.pick(len(near))]
                t = round(draw.u(s[0], s[1]), 3)
                if lo <= t < hi:
                    out.add(t, setup.sos[s[2]][0], "sos", True, p.name)


def simulate(home: SimHome, start: float, days: int, rng: np.random.Generator,
             incidents: list[IncidentSpec] | None = None) -> Simulation:
    """Live `days` days in `home` from `start` (a local midnight, unix seconds)."""
    setup = _setup(home.config_text)
    local = datetime.fromtimestamp(start, setup.tz)
    if (local.hour, local.minute, local.second, local.microsecond) != (0, 0, 0, 0):
        raise ValueError(f"start {start} is {local.isoformat()}: give a local midnight")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    with _quiet_gc():
        return _simulate(home, setup, start, days, rng, incidents or [])


def _declines(home: SimHome, incidents: list[IncidentSpec], days: int,
              draw: _Draw) -> dict[int, tuple[int, float]]:
    """Resident index -> (first day, days to the worst) of each decline, checked."""
    out: dict[int, tuple[int, float]] = {}
    for spec in incidents:
        if spec.kind != "decline":
            continue
        if not 0 <= spec.day < days:
            raise ValueError(f"incident day {spec.day} is outside the run (0..{days - 1})")
        r = spec.resident if spec.resident is not None else draw.pick(len(home.residents))
        if not 0 <= r < len(home.residents):
            raise ValueError(f"no resident {r} in home {home.index}")
        if r in out:
            raise ValueError(f"resident {r} already has a decline")
        ramp = (spec.duration_h / 24.0 if spec.duration_h is not None
                else draw.u(*DECLINE_RAMP_DAYS))
        if ramp < 1.0:
            raise ValueError(f"decline: duration_h {spec.duration_h} is under a day")
        out[r] = (spec.day, ramp)
    return out


def _simulate(home: SimHome, setup: _Setup, start: float, days: int, rng: np.random.Generator,
              incidents: list[IncidentSpec]) -> Simulation:
    local = datetime.fromtimestamp(start, setup.tz)
    draw = _Draw(rng)
    end = start + days * DAY_S
    shared = _home_days(home, start, days, local.weekday(), draw)
    declines = _declines(home, incidents, days, draw)
    plans = [_plan(p, shared, days, draw, declines.get(i))
             for i, p in enumerate(home.residents)]
    lives = [_Life(i, p, home, plan, shared, draw)
             for i, (p, plan) in enumerate(zip(home.residents, plans, strict=True))]
    people = [_Person(p.name, "resident", p.pace, p.fidget_s, life.run(days))
              for p, life in zip(home.residents, lives, strict=True)]
    stage = _Stage(home, setup, shared, plans, people, draw, start, days)
    found: list[Incident] = []
    order = sorted(incidents, key=lambda s: (s.day, s.hour if s.hour is not None else 12,
                                                   s.kind))
    for spec in order:
        if spec.kind != "decline":
            found.append(stage.stage(spec))
    for r, (day, _) in declines.items():
        found.append(Incident("decline", shared.day_start(day), None, None,
                              home.residents[r].name, end))
    visitors = [_visitor(v, draw, home.transit_p) for v in shared.visits]
    everyone = people + visitors + stage.rescuers

    out = _Out()
    _pirs(out, _arrays(everyone), everyone, home, setup, stage.dead, start, end, rng)
    _radars(out, everyone, home, setup, draw, start, end)
    _doors(out, everyone, setup, draw)
    beds = _beds(out, people, setup, draw)
    _reports(out, home, setup, start, end, stage.dead, beds, draw, rng)
    _sos(out, people, plans, setup, draw, days, start, end)

    ts = np.array(out.t)
    order_i = np.argsort(ts, kind="stable")
    dead = {}
    for dev, a, b, _ in stage.dead:
        dead.setdefault(dev, []).append((a, b))
    keep = [i for i in order_i.tolist() if start <= out.t[i] < end and not (
        out.dev[i] in dead and any(a <= out.t[i] < b for a, b in dead[out.dev[i]]))]
    events = [Event(out.t[i], out.dev[i], out.kind[i], out.value[i]) for i in keep]
    causes = [out.cause[i] for i in keep]
    # Times to the millisecond, as the events'; a wandering resident's exit may have
    # merged with a door cycle just before it: the door opening is the start.
    fixed = []
    for inc in found:
        begin = round(inc.start, 3)
        if inc.kind == "night_wandering":
            opens = [e.t for e in events if e.kind == "contact" and e.value == "open"
                     and begin - 60 <= e.t <= begin]
            begin = opens[-1] if opens else begin
        fixed.append(dataclasses.replace(inc, start=begin, end=round(inc.end, 3)))
    diary = [n for life in lives for n in life.notes if n.day < days]
    return Simulation(home, start, end, events, causes, sorted(fixed, key=lambda i: i.start),
                      diary)


# --- MQTT and Observations ---------------------------------------------------------------

# Kinds whose events are changes of a held state: the state before the first event is the
# opposite of it.
_FLIP: dict[str, tuple[Value, Value]] = {"contact": ("open", "closed"),
                                         "presence": (True, False), "in_bed": (True, False)}


def _initial(em: Emulator, events: list[Event]) -> None:
    """Set the emulator's state to what it was before the first event of each kind."""
    seen: set[str] = set()
    for e in events:
        if e.kind in seen:
            continue
        seen.add(e.kind)
        expose = em.model.expose_for_kind(e.kind)
        if expose is None or e.kind not in RESTING:
            continue
        if e.kind in _FLIP:
            a, b = _FLIP[e.kind]
            before = b if e.value == a else a
        elif e.kind == "battery":
            before = e.value
        else:
            continue
        em.state[expose.property] = expose.encode(e.kind, before)


def _publications(home: SimHome, events: list[Event],
                  start: float | None) -> Iterator[tuple[float, str, list[Message], bool]]:
    """(t, device, messages, shared) for everything the devices publish, in time order.

    Each device says hello (online, then its state) at `start` or the first event's time;
    then every event is published as its model does, and Zigbee2MQTT clears a PIR's
    occupancy 90 s after its last detection. A Zigbee2MQTT message carries the link quality
    of its own frame (jittered around the device's typical value). `shared` lists are the
    same object for the same device state and event, so a reader may cache by identity.
    """
    setup = _setup(home.config_text)
    by_dev: dict[str, list[Event]] = {}
    for e in events:
        by_dev.setdefault(e.device, []).append(e)
    ems = {d.id: Emulator(d, m) for d, m in setup.devices}
    items: list[Event] = list(events)
    for dev, evs in by_dev.items():
        em = ems.get(dev)
        if em is None:
            raise ValueError(f"event for unknown device {dev!r}")
        _initial(em, evs)
        if em.native or em.model.expose_for_kind("motion") is None:
            continue
        hits = [e.t for e in evs if e.kind == "motion" and e.value is True]
        items += [Event(t + OCCUPANCY_TIMEOUT_S, dev, "motion", False)
                  for t, nxt in zip(hits, [*hits[1:], math.inf], strict=True)
                  if nxt - t > OCCUPANCY_TIMEOUT_S]
    items.sort(key=lambda e: e.t)  # two sorted runs: a merge
    t_hello = start if start is not None else (events[0].t if events else 0.0)
    for d, em in ems.items():
        yield t_hello, d, em.hello(t_hello), False

    # A Zigbee2MQTT device's state is a tuple of its property values (link quality left
    # out: each message has its own), numbered; (device, state number, kind, value, lqi) ->
    # (messages, next state number).
    memo: dict[tuple[object, ...], tuple[list[Message], int]] = {}
    numbers: dict[tuple[object, ...], int] = {}
    states: list[tuple[object, ...]] = []
    state: dict[str, int] = {}
    links: dict[str, tuple[str | None, list[int | None]]] = {}

    def number(st: tuple[object, ...]) -> int:
        if st not in numbers:
            numbers[st] = len(states)
            states.append(st)
        return numbers[st]

    for d, em in ems.items():
        if em.native:
            continue
        e = em.model.expose_for_kind("link_quality")
        lq = e.property if e is not None else None
        state[d] = number(tuple((k, None if k == lq else v) for k, v in em.state.items()))
        tr = home.devices.get(d)
        base = tr.lqi if tr else 120
        gen = np.random.default_rng([home.index, zlib.crc32(d.encode())])
        links[d] = (lq, [min(255, max(1, base + 3 * int(j))) if lq else None
                         for j in gen.integers(-2, 3, LQI_CYCLE)])
    count = dict.fromkeys(links, 0)
    for e in items:
        dev = e.device
        if dev not in links:
            yield e.t, dev, ems[dev].set(e.kind, e.value, e.t), False
            continue
        lq, lqis = links[dev]
        n = count[dev]
        count[dev] = n + 1
        lqi = lqis[n % LQI_CYCLE]
        key = (dev, state[dev], e.kind, e.value, lqi)
        hit = memo.get(key)
        if hit is None:
            em = ems[dev]
            em.state = dict(states[state[dev]])
            if lq is not None:
                em.state[lq] = lqi
            msgs = em.set(e.kind, e.value, e.t)
            hit = memo[key] = (msgs, number(tuple((k, None if k == lq else v)
                                                  for k, v in em.state.items())))
        state[dev] = hit[1]
        yield e.t, dev, hit[0], True


def to_messages(home: SimHome, events: list[Event], *,
                start: float | None = None) -> list[tuple[float, str, bytes]]:
    """The MQTT messages (t, topic, payload) the home's devices publish for `events`.

    Every device first says hello at `start` (default: the first event's time) with the
    state it had then; battery reports are events already (`Simulation.events`).
    """
    return [(t, m.topic, m.payload) for t, _, msgs, _ in _publications(home, events, start)
            for m in msgs]


def to_observations(home: SimHome, events: list[Event], *,
                    start: float | None = None) -> list[Observation]:
    """What the gateway's adapters read from `to_messages(home, events)`, in order.

    Each distinct payload is read by the real adapter once; a repeat reuses what it read,
    at its own time (Zigbee2MQTT payloads carry no device clock here).
    """
    setup = _setup(home.config_text)
    devices = {d.id: (d, m, ADAPTERS[d.source]) for d, m in setup.devices}
    out: list[Observation] = []
    home_id = setup.home_id
    with _quiet_gc():
        _observe(_publications(home, events, start), devices, home_id, out)
    return out


def _observe(pubs: Iterator[tuple[float, str, list[Message], bool]],
             devices: dict[str, tuple[Device, Model, Adapter]], home_id: str,
             out: list[Observation]) -> None:
    read: dict[int, tuple[list[Message], list[tuple[str, str, Value, str | None]]]] = {}
    for t, dev, msgs, shared in pubs:
        device, model, adapt = devices[dev]
        if not shared:
            for m in msgs:
                out += adapt(device, model, m.topic, m.payload, t)
            continue
        hit = read.get(id(msgs))
        if hit is None:
            obs = [o for m in msgs for o in adapt(device, model, m.topic, m.payload, 0.0)]
            assert all(o.device_at is None for o in obs)  # else the time is in the payload
            hit = read[id(msgs)] = (msgs, [(o.device, o.kind, o.value, o.room) for o in obs])
        out += [Observation(home_id, d, kind, value, t, room, None)
                for d, kind, value, room in hit[1]]
