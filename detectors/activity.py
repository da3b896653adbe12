"""Home state and inactivity: the quiet emergencies show only as missing activity.

**What counts as activity** (`is_activity`): a PIR seeing movement; a radar's presence
*beginning* (a radar keeps reporting "present" over a person lying still on the floor, so a
repeated `presence: true` proves nothing); a door or window changing state (Zigbee2MQTT repeats
`contact` with every battery report: only a change counts); getting into or out of bed; a
vibration; a button pressed, a check-in, an intercom call. Battery, link and temperature
reports are the device being alive, not the person.

**Home state**: `occupied`, or `away` once the entrance door has opened and closed and nothing
inside has moved for `away_after_s` (no radar still seeing someone, no bed sensor saying
someone is in bed — the visitor who leaves after putting the resident to bed): nobody is paged for
inactivity in an empty home. The entrance door opening again, or any movement inside, is the
return.

**Inactivity** (Contact ID 641 senior watch, severity 2): in an occupied home, no activity for
longer than is normal for those hours. Each hour of the day has a limit (`limits_s`, 24
values: from the resident's ability level at cold start, learned from the home later); a quiet
spell spends 1/limit of its budget for every second it lasts in that hour, and the alarm comes
when the whole budget is spent. So quiet that starts in the afternoon alarms after the day
limit, a night's sleep is measured against the night limit, and a spell that runs from night
into morning moves from one to the other smoothly. One finding per quiet spell.

**Bathroom overstay** (severity 2): a quiet spell that began in the bathroom — and, where a
radar watches the bathroom, with it still seeing someone there — lasting beyond
`bathroom_limit_s`. A fall or a collapse there is the commonest quiet emergency.

**Night wandering**: the entrance door opened at night (23:00–04:59) and no return — nothing
moving inside once the door has shut, nobody in bed — within `wander_return_s` (30 min: a
visitor leaving late must not page anyone). For a resident with dementia the door opening at
night is enough (`wander_return_s` = 0), at severity 1. A door shutting at night never makes
the home "away": the inactivity rules keep watching whoever is inside.

**Not up in the morning** (severity 2): by `wake_by_h` (local) the resident has not been seen
up and about since 05:00 — out of the bedroom for 10 minutes or more (a trip to the toilet
and back, a PIR's ghost or turning over in bed is not getting up) — in an occupied home.
Once a day.

**Bed exit without return** (severity 2): in the dead of night (22:00–04:59) a bed sensor
reports the resident out of bed, they are not back within `bed_exit_limit_s` (a toilet visit
included), and nothing has moved for `BED_EXIT_QUIET_S`: someone up and about at 3 a.m. is
sleepless, not fallen; someone out of bed and still is the emergency.

**Away mode** (外出模式): the resident presses "away" on the away key or the intercom and
goes out; the home is away from the moment the entrance door shuts behind them (within
`AWAY_CONFIRM_S` of the press — a press with nobody leaving is a mistake and changes nothing;
where no entrance door is watched, at the press). Nothing is raised about activity while
away — a week at a daughter's pages nobody. The return: "home" pressed, the entrance door
opening, a button pressed or getting into bed, or movement inside that goes on for
`RETURN_SPAN_S` (a PIR's ghost or a pet is not a return; a resident who came back by a door
no sensor watches is). Watching starts again from the return.

**Not returned** (severity 3, a check call): the home went "away" by the door (not by the away
key), and night has come with nothing moving inside: out for the night — or fallen just
inside after taking in a delivery? One check call per away period.

**Missed daily check-in** (平安打卡, severity 3, a care call for the visit list): where a
check-in key is configured (`checkin_by_h` set), no check-in today by that hour in an
occupied home. Once a day.

**In bed for the night**: where a bed sensor says someone is in bed, or the evening's last
movement was in a bedroom, a quiet spell that began in the evening or night is sleep: it is
judged by the time to be up (not_up), not by the hourly limits — a PIR that cannot see the
bed does not make a sleeper inactive.

**Bed-bound residents** (`bedbound`): a PIR over the bed of someone who cannot get up keeps
firing on small movements — a hand, a turn, a twitch — so its motion proves little: it does
not count as the home's activity. What does: care (someone moving outside the bedroom, the
door, a button), judged against the care limits (`BEDBOUND_CARE_H`: carers come morning and
evening; the door shutting behind a carer never makes the home "away": only the away key
does, for a stay in hospital), and — a worse sign — the bed's own movements stopping altogether for
`BEDBOUND_STILL_S` (someone in bed moves now and then, even asleep). Not-up does not apply
(a bed sensor reporting them out of bed at night still does: they may have fallen out).

**A blip is not a person**: movement from one sensor in another room than the last
activity, after half an hour of quiet, lasting under a minute, with nothing else anywhere
in the half hour after it, is what a PIR's ghost looks like (sunlight, a curtain, the
heating coming on) — and what a person who got up does not: they move on, or sit and
fidget, within minutes. (In the same room as before the quiet it is taken for the person
shifting in their chair; after the bathroom, for them leaving it — a single detection at
the bedroom door, then lying still in bed, is common, and an overstay alarm for it is not.)
Such a blip is set aside when its half hour is over: the quiet spell, the home's state
(away, a night exit) are what they were before it, and the finding's evidence lists the
blips set aside. Until then it counts, so nothing is raised while someone may just have got
up.

**Degraded coverage**: a motion sensor that has gone offline must not look like an inactive
person. The finding's evidence names every activity sensor offline at the time; when *all* of
them are offline nothing is raised here (the devices are reported offline instead, and the
home cannot be watched this way until they are back).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from detectors.finding import Finding
from devices.observation import Observation

NAME = "activity"
CODE, SEVERITY, EVENT = 641, 2, "inactivity"
OCCUPIED, AWAY = "occupied", "away"
# A PIR in the hall may still fire a few seconds after the door shuts behind a resident
# going out (its report lags the movement): such movement is not someone inside. Movement in
# any other room is: the resident who took in a parcel and walked back to the sofa (and
# fell there a moment later) is at home.
DOOR_GRACE_S = 30.0
ENTRANCE_ROOMS = frozenset({"entrance", "hall", "门厅", "玄关", "入户"})

# Cold-start limits by GB/T 42195 ability level (0 independent … 4 fully dependent): hours of
# quiet in the day (07:00–21:00) and at night. Product defaults until the home's own history
# says better; a more dependent resident is checked on sooner by day.
# At night 12 h for everyone: older people are often in bed 10–11 h, and a night in bed is
# judged by the time to be up (not_up) anyway.
COLD_START_H: dict[int, tuple[float, float]] = {
    0: (6.0, 12.0), 1: (5.0, 12.0), 2: (4.0, 12.0), 3: (3.0, 12.0), 4: (2.0, 12.0)}
DEFAULT_LEVEL = 2
DAY_HOURS = range(7, 21)
BATHROOM, WANDERING, NOT_UP = "bathroom_overstay", "night_wandering", "not_up"
MISSED_CHECKIN = "missed_checkin"
NOT_RETURNED = "not_returned"
BED_EXIT = "bed_exit"
BED_EXIT_MIN: dict[int, float] = {0: 60.0, 1: 60.0, 2: 45.0, 3: 40.0, 4: 30.0}
BED_EXIT_HOURS = frozenset((22, 23, 0, 1, 2, 3, 4))
BED_EXIT_QUIET_S = 15 * 60.0
BEDROOMS = frozenset({"bedroom", "卧室", "主卧", "次卧"})
BATHROOMS = frozenset({"bathroom", "toilet", "卫生间", "浴室", "洗手间", "厕所"})
# Cold start: minutes in the bathroom before an alert, by ability level; the hour by which
# a resident is up. A more dependent resident is checked on sooner and gets up later.
BATHROOM_MIN: dict[int, float] = {0: 75.0, 1: 70.0, 2: 60.0, 3: 60.0, 4: 45.0}
PIR_ONLY_BATHROOM = 1.5
# Going out is a daytime thing: a door shutting at night is a visitor leaving (or, for a
# resident with dementia, wandering), never "the home is empty".
AWAY_HOURS = range(6, 22)
WAKE_BY_H: dict[int, float] = {0: 9.5, 1: 9.5, 2: 10.0, 3: 10.5, 4: 11.0}
MAX_NIGHT_S = 16 * 3600.0
SLEEP_FROM_H = 19  # a spell in bed that began after this hour is the night's sleep
MORNING_STARTS_H = 5  # for not-up: moving after this hour is getting up
BEDBOUND_CARE_H = (8.0, 14.0)  # day, night: hours without care activity before an alert
BEDBOUND_STILL_S = 3 * 3600.0  # no movement at all in bed this long: an alert
BEDBOUND_STILL = "still_in_bed"
UP_WITHIN_S = 15 * 60.0
UP_SPAN_S = 10 * 60.0
BACK_TO_BED_S = 30 * 60.0  # back in bed this soon after "up": it was a trip to the toilet
BLIP_AFTER_S = 30 * 60.0  # movement after this much quiet may be a ghost …
BLIP_SPAN_S = 60.0  # … if it lasts under a minute from one sensor …
BLIP_ALONE_S = 30 * 60.0  # … and nothing else moves for half an hour after it
WEAK_KINDS = frozenset({"motion", "presence", "vibration"})
AWAY_CONFIRM_S = 30 * 60.0  # "away" pressed: the door shuts behind the resident within this
RETURN_SPAN_S = 10 * 60.0  # away by the key: movement inside this long is someone home
# Presses and getting into bed show a person at home at once (motion could be a ghost or a pet)
SURELY_HOME = frozenset({"sos", "cancel", "checkin", "intercom", "in_bed", "away_mode"})


@functools.lru_cache(maxsize=16)
def _local(t: float, tz: ZoneInfo) -> datetime:
    """`t` in local time (a tick asks several rules the same question)."""
    return datetime.fromtimestamp(t, tz)


def cold_start_limits(level: int | None) -> tuple[float, ...]:
    """24 hourly limits (seconds) for a resident of `level` (the most dependent one)."""
    day_h, night_h = COLD_START_H[DEFAULT_LEVEL if level is None else level]
    return tuple((day_h if h in DAY_HOURS else night_h) * 3600.0 for h in range(24))


@dataclass(frozen=True, slots=True)
class ActivityConfig:
    """Which devices watch the home, and the limits."""

    home: str = ""
    sensors: dict[str, str | None] = field(default_factory=dict)  # activity device -> room
    passive: frozenset[str] = frozenset()  # those that watch (not buttons): coverage
    entrance: frozenset[str] = frozenset()  # entrance door contacts
    presence: frozenset[str] = frozenset()  # radars: someone there keeps the home occupied
    limits_s: tuple[float, ...] = cold_start_limits(None)
    limits_source: str = f"cold start, ability level {DEFAULT_LEVEL}"
    away_after_s: float = 15 * 60.0
    bathroom_limit_s: float = BATHROOM_MIN[DEFAULT_LEVEL] * 60
    night_hours: frozenset[int] = frozenset((23, 0, 1, 2, 3, 4))
    wander_return_s: float = 30 * 60.0  # 0: the door opening at night is enough (dementia)
    wake_by_h: float = WAKE_BY_H[DEFAULT_LEVEL]
    checkin_by_h: float | None = None  # None: no check-in key, no check-in watch
    bed_exit_limit_s: float = BED_EXIT_MIN[DEFAULT_LEVEL] * 60
    bedbound: bool = False  # a resident who cannot get up: bedroom motion is not activity
    sleep_from_h: float = SLEEP_FROM_H  # a quiet spell in the bedroom from this hour is sleep
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))

    def bathroom(self, device: str) -> bool:
        return (self.sensors.get(device) or "").lower() in BATHROOMS

    def bathroom_limit(self) -> float:
        """The bathroom limit: as set where a radar confirms someone is still there; half as
        long again where only a PIR watches (a return to the bedroom it did not see, and a
        resident still and fine elsewhere, look the same as a collapse)."""
        radar = any(self.bathroom(d) for d in self.presence)
        return self.bathroom_limit_s * (1.0 if radar else PIR_ONLY_BATHROOM)


@dataclass(slots=True)
class _Blip:
    """Movement after a long quiet, and the state from before it to go back to."""

    device: str
    first: float
    last: float
    before: tuple[Any, ...]


_BLIP_FIELDS = ("last_at", "last_device", "last_room", "last_kind", "alarmed",
                "door_closed_at", "mode", "mode_since", "night_exit_at")


@dataclass(slots=True)
class ActivityState:
    """The home's state and its current quiet spell."""

    mode: str = OCCUPIED
    mode_since: float | None = None
    last_at: float | None = None  # last activity inside
    last_device: str | None = None
    last_room: str | None = None
    last_kind: str | None = None
    door_closed_at: float | None = None  # entrance door closed; away if nothing follows
    alarmed: bool = False  # this quiet spell has raised its finding
    night_exit_at: float | None = None  # the entrance door opened at night
    not_up_day: str | None = None  # the local date not-up was last checked for
    checked_in_day: str | None = None  # the local date of the last check-in
    out_of_bed_at: float | None = None  # left the bed at night, not back yet
    up_day: str | None = None  # the local date the resident was last seen up and about
    up_seen_at: float | None = None  # when this excursion out of the bedroom began
    up_last_at: float = 0.0  # its latest movement
    watching_since: float | None = None  # the first tick: a morning not watched says nothing
    not_returned_for: float | None = None  # the away period already checked on
    up_at: float | None = None  # when up_day was set
    due_for: tuple[float | None, tuple[float, ...]] | None = None  # (spell start, limits)
    due_at: float = 0.0  # when the current quiet spell spends its budget
    checkin_checked_day: str | None = None  # the local date the check-in was last looked at
    contact: dict[str, Any] = field(default_factory=dict)  # device -> last contact state
    presence: dict[str, bool] = field(default_factory=dict)  # radar -> someone there now
    in_bed: dict[str, bool] = field(default_factory=dict)
    changes: list[tuple[str, str, float]] = field(default_factory=list)  # (from, to, at)
    away_pressed_at: float | None = None  # "away" pressed, the door not yet shut behind
    away_by_key: bool = False  # this away period was set with the away key
    inside_since: float | None = None  # away by key: movement inside began (a return?)
    inside_last: float = 0.0
    bed_moved_at: float | None = None  # bed-bound: the last small movement in the bedroom
    blip: _Blip | None = None  # movement after a long quiet, not yet known to be a person
    blips: list[dict[str, Any]] = field(default_factory=list)  # set aside in this spell
    bed_still_for: float | None = None  # bed-bound: the stillness already alarmed on


def is_activity(state: ActivityState, obs: Observation) -> bool:
    """Whether `obs` shows a person doing something (see the module's docstring)."""
    k, v = obs.kind, obs.value
    if k == "contact":
        before = state.contact.get(obs.device)
        state.contact[obs.device] = v
        return before is not None and before != v
    if k == "presence":
        before = state.presence.get(obs.device, False)
        state.presence[obs.device] = v is True
        return v is True and not before
    if k == "in_bed":
        before = state.in_bed.get(obs.device)
        state.in_bed[obs.device] = v is True
        return before is not None and before != (v is True)
    if k in ("motion", "vibration"):
        return v is True
    if k == "intercom":
        return v == "call"
    return k in ("sos", "cancel", "checkin", "away_mode")


def _set_mode(state: ActivityState, mode: str, at: float, *, by_key: bool = False) -> None:
    if mode != state.mode:
        state.changes.append((state.mode, mode, at))
        state.mode, state.mode_since = mode, at
    state.away_by_key = by_key and mode == AWAY
    state.inside_since = None


def _away_key(state: ActivityState, obs: Observation, cfg: ActivityConfig) -> bool:
    """The away key: "away" waits for the door (or sets away where no door is watched),
    "home" is the return. True if the press set the home away (nothing more to do)."""
    state.away_pressed_at = None
    if obs.value == "home":
        return False  # a press at home: the return, as any activity
    if not cfg.entrance:
        _set_mode(state, AWAY, obs.at, by_key=True)
        return True
    state.away_pressed_at = obs.at
    return False


def _inside_while_away(state: ActivityState, obs: Observation) -> bool:
    """Away by the key, something moved inside: True once it has gone on long enough (or
    was a press or someone getting into bed) to mean a person is home."""
    if obs.kind in SURELY_HOME:
        return True
    if state.inside_since is None or obs.at - state.inside_last > UP_WITHIN_S:
        state.inside_since = obs.at
    state.inside_last = obs.at
    return obs.at - state.inside_since >= RETURN_SPAN_S


def step(state: ActivityState, obs: Observation, now: float, cfg: ActivityConfig,
         *, prime: bool = False) -> list[Finding]:
    """Take one Observation: activity moves the quiet spell on, the door may mean away."""
    if obs.device not in cfg.sensors:
        return []
    if obs.kind == "checkin" and not prime:
        state.checked_in_day = datetime.fromtimestamp(obs.at, cfg.tz).date().isoformat()
    was_in_bed = state.in_bed.get(obs.device)
    active = is_activity(state, obs)
    if prime or not active:
        return []
    if (cfg.bedbound and obs.kind in ("motion", "vibration", "presence")
            and (cfg.sensors[obs.device] or "").lower() in BEDROOMS):
        state.bed_moved_at = obs.at  # a small movement in bed: alive, not cared for
        return []
    if obs.kind == "in_bed":
        if obs.value is True:
            state.out_of_bed_at = None
            if state.up_at is not None and obs.at - state.up_at <= BACK_TO_BED_S:
                state.up_day = None  # only a trip to the toilet: not up yet
            state.night_exit_at = None  # whoever went out, the resident is in bed
        elif was_in_bed and datetime.fromtimestamp(obs.at, cfg.tz).hour in BED_EXIT_HOURS:
            state.out_of_bed_at = obs.at
    if obs.kind == "away_mode" and _away_key(state, obs, cfg):
        return []
    _watch_blip(state, obs, cfg)
    found: list[Finding] = []
    if obs.device in cfg.entrance:
        pressed = state.away_pressed_at
        if (pressed is not None and obs.value == "closed"
                and obs.at - pressed <= AWAY_CONFIRM_S):
            state.away_pressed_at = state.door_closed_at = None
            state.night_exit_at = None
            _set_mode(state, AWAY, obs.at, by_key=True)  # gone out, as the key said
            return []
        if state.away_by_key and obs.at - (state.mode_since or 0.0) <= DOOR_GRACE_S:
            return []  # the door not quite shut behind them, closed again: still leaving
        returning = state.mode == AWAY
        if returning:
            _set_mode(state, OCCUPIED, obs.at)  # the return
        if obs.value == "closed":
            state.door_closed_at = obs.at
        elif (not returning and state.night_exit_at is None and state.mode == OCCUPIED
              and datetime.fromtimestamp(obs.at, cfg.tz).hour in cfg.night_hours):
            state.night_exit_at = obs.at
            if cfg.wander_return_s <= 0:
                found.append(_wandering(state, cfg, obs.at, immediate=True))
    elif state.away_by_key and not _inside_while_away(state, obs):
        return []  # a ghost, a pet, or not yet long enough to be someone home
    elif (state.door_closed_at is None or obs.at > state.door_closed_at + DOOR_GRACE_S
          or (cfg.sensors[obs.device] or "").lower() not in ENTRANCE_ROOMS):
        state.door_closed_at = None  # someone is inside after all
        state.night_exit_at = None  # … or back
        _set_mode(state, OCCUPIED, obs.at)
    if state.blip is None:
        state.blips = []  # a new quiet spell: its own blips
    state.last_at, state.last_device = obs.at, obs.device
    state.last_room, state.last_kind = cfg.sensors[obs.device], obs.kind
    state.alarmed = False
    _maybe_up(state, obs, cfg)
    return found


def _watch_blip(state: ActivityState, obs: Observation, cfg: ActivityConfig) -> None:
    """Start, extend or end a possible ghost (see the module's docstring)."""
    b = state.blip
    weak = obs.kind in WEAK_KINDS and obs.device not in cfg.entrance
    if b is not None:
        if weak and obs.device == b.device and obs.at - b.first < BLIP_SPAN_S:
            b.last = obs.at
        else:
            state.blip = None  # more than a blip: someone is there
        return
    if (weak and state.last_at is not None and obs.at - state.last_at >= BLIP_AFTER_S
            and cfg.sensors[obs.device] != state.last_room
            and (state.last_room or "").lower() not in BATHROOMS):
        state.blip = _Blip(obs.device, obs.at, obs.at,
                           tuple(getattr(state, f) for f in _BLIP_FIELDS))


def set_blip_aside(state: ActivityState, now: float) -> _Blip | None:
    """A blip with nothing after it for `BLIP_ALONE_S`: back to the state before it (the blip
    returned; None if there was none to set aside)."""
    b = state.blip
    if b is None or now - b.last < BLIP_ALONE_S:
        return None
    state.blip = None
    for name, value in zip(_BLIP_FIELDS, b.before, strict=True):
        setattr(state, name, value)
    state.blips = [*state.blips[-4:], {"device": b.device, "at": b.first}]
    return b


def _maybe_up(state: ActivityState, obs: Observation, cfg: ActivityConfig) -> None:
    """Up and about: after 05:00, out of the bedroom for at least `UP_SPAN_S` — movements
    there that far apart, with nothing in the bedroom between and no gap over `UP_WITHIN_S`.
    A trip to the toilet and back, a PIR's ghost, or turning over in bed is not getting up."""
    if (state.last_room or "").lower() in BEDROOMS or obs.kind == "in_bed":
        state.up_seen_at = None  # back in the bedroom: the excursion is over
        return
    local = datetime.fromtimestamp(obs.at, cfg.tz)
    if local.hour < MORNING_STARTS_H:
        return
    if state.up_seen_at is None or obs.at - state.up_last_at > UP_WITHIN_S:
        state.up_seen_at = obs.at  # a new excursion out of the bedroom begins
    state.up_last_at = obs.at
    if obs.at - state.up_seen_at >= UP_SPAN_S:
        if state.up_day != local.date().isoformat():
            state.up_at = obs.at
        state.up_day = local.date().isoformat()


def _finding(cfg: ActivityConfig, event: str, severity: int, at: float, room: str | None,
             evidence: dict[str, Any]) -> Finding:
    return Finding(detector=NAME, home=cfg.home, code=CODE, event=event, severity=severity,
                   at=at, evidence=evidence, room=room, device=None)


def _iso(ts: float | None, tz: ZoneInfo) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz).isoformat(timespec="minutes")


def _wandering(state: ActivityState, cfg: ActivityConfig, now: float, *,
               immediate: bool) -> Finding:
    exit_at = state.night_exit_at
    state.night_exit_at = None if immediate else exit_at
    return _finding(cfg, WANDERING, 1 if immediate else 2, now, None, {
        "door_opened_at": _iso(exit_at, cfg.tz),
        "waited_for_return_s": round(now - (exit_at or now)),
        "rule": ("the entrance door opened at night (resident with dementia)" if immediate
                 else f"no return within {cfg.wander_return_s / 60:g} min at night")})


def spent(start: float, end: float, limits_s: tuple[float, ...], tz: ZoneInfo) -> float:
    """The share of the inactivity budget a quiet spell from `start` to `end` has spent."""
    total, t = 0.0, start
    while t < end:
        local = datetime.fromtimestamp(t, tz)
        next_hour = (local.replace(minute=0, second=0, microsecond=0)
                     + timedelta(hours=1)).timestamp()
        stop = min(end, next_hour)
        total += (stop - t) / limits_s[local.hour]
        t = stop
    return total


def due(start: float, limits_s: tuple[float, ...], tz: ZoneInfo) -> float:
    """When a quiet spell from `start` will have spent its whole budget."""
    left, t = 1.0, start
    for _ in range(24 * 7):  # the longest limit is far less than a week
        local = datetime.fromtimestamp(t, tz)
        next_hour = (local.replace(minute=0, second=0, microsecond=0)
                     + timedelta(hours=1)).timestamp()
        limit = limits_s[local.hour]
        if (next_hour - t) / limit >= left - 1e-12:
            return t + left * limit
        left -= (next_hour - t) / limit
        t = next_hour
    return t


def tick(state: ActivityState, now: float, cfg: ActivityConfig,
         offline: set[str] | frozenset[str] = frozenset()) -> list[Finding]:
    """The home going away; a quiet spell that has gone on too long."""
    if not cfg.sensors:
        return []
    if state.last_at is None:  # nothing seen since the gateway started: count from now
        state.last_at, state.last_kind = now, "gateway_start"
    if state.watching_since is None:
        state.watching_since = now
    set_blip_aside(state, now)
    if (state.mode == OCCUPIED and state.door_closed_at is not None and not cfg.bedbound
            and now - state.door_closed_at >= cfg.away_after_s
            and datetime.fromtimestamp(state.door_closed_at, cfg.tz).hour in AWAY_HOURS
            and not any(state.presence.get(d) for d in cfg.presence if d not in offline)
            and not any(v for d, v in state.in_bed.items() if d not in offline)):
        _set_mode(state, AWAY, state.door_closed_at)
        state.door_closed_at = None
    if state.away_pressed_at is not None and now - state.away_pressed_at > AWAY_CONFIRM_S:
        state.away_pressed_at = None  # "away" pressed, and nobody went out: a mistake
    found: list[Finding] = []
    if (state.night_exit_at is not None and cfg.wander_return_s > 0
            and now - state.night_exit_at >= cfg.wander_return_s):
        found.append(_wandering(state, cfg, now, immediate=False))
        state.night_exit_at = None
    if state.mode == AWAY:
        return found if state.away_by_key else found + _not_returned(state, now, cfg)
    watching = [d for d in cfg.passive if d not in cfg.entrance] or list(cfg.passive)
    down = sorted(d for d in cfg.passive if d in offline)
    if watching and all(d in offline for d in watching):
        return found  # blind, not quiet: the offline devices are reported as such
    if cfg.bedbound:
        found += _still_in_bed(state, now, cfg, down)
    else:
        found += _not_up(state, now, cfg, down)
    found += _checkin(state, now, cfg)
    if (state.out_of_bed_at is not None and now - state.out_of_bed_at >= cfg.bed_exit_limit_s
            and now - state.last_at >= BED_EXIT_QUIET_S):
        found.append(_finding(cfg, BED_EXIT, SEVERITY, now, state.last_room, {
            "out_of_bed_since": _iso(state.out_of_bed_at, cfg.tz),
            "limit_s": round(cfg.bed_exit_limit_s),
            "last_activity": {"device": state.last_device, "room": state.last_room,
                              "at": _iso(state.last_at, cfg.tz)}}))
        state.out_of_bed_at = None
    if state.alarmed:
        return found
    in_bathroom = (state.last_device is not None and cfg.bathroom(state.last_device)
                   and all(state.presence.get(d, True) for d in cfg.presence
                           if cfg.bathroom(d) and d not in offline))
    limit = cfg.bathroom_limit()
    if in_bathroom and now - state.last_at >= limit:
        state.alarmed = True
        return [*found, _finding(cfg, BATHROOM, SEVERITY, now, state.last_room, {
            "in_bathroom_since": _iso(state.last_at, cfg.tz),
            "quiet_for_s": round(now - state.last_at),
            "limit_s": round(limit), "limits_source": cfg.limits_source,
            **_coverage(cfg, down)})]
    key = (state.last_at, cfg.limits_s)
    if state.due_for != key:  # once per quiet spell (and when the limits are learned anew)
        state.due_for, state.due_at = key, due(state.last_at, cfg.limits_s, cfg.tz)
    if now < state.due_at - 1e-6:
        return found
    if not cfg.bedbound and _asleep(state, now, cfg):
        return found  # a night in bed is judged by the time to be up (not_up), not by hours
    state.alarmed = True
    local = _local(now, cfg.tz)
    evidence: dict[str, Any] = {
        "last_activity": {"device": state.last_device, "room": state.last_room,
                          "kind": state.last_kind,
                          "at": datetime.fromtimestamp(state.last_at, cfg.tz).isoformat(
                              timespec="minutes")},
        "quiet_for_s": round(now - state.last_at),
        "limit_this_hour_s": round(cfg.limits_s[local.hour]),
        "limits_source": cfg.limits_source,
        "home_state": state.mode,
    }
    evidence.update(_coverage(cfg, down))
    if state.blips:
        evidence["blips_set_aside"] = [{"device": b["device"], "at": _iso(b["at"], cfg.tz)}
                                       for b in state.blips]
    return [*found, _finding(cfg, EVENT, SEVERITY, now, state.last_room, evidence)]


def _not_returned(state: ActivityState, now: float, cfg: ActivityConfig) -> list[Finding]:
    """Away (inferred from the door) and the evening is over: out for the night, or fallen
    just inside after the door shut? One check call per away period."""
    local = _local(now, cfg.tz)
    if state.not_returned_for == state.mode_since or local.hour in AWAY_HOURS:
        return []
    if state.mode_since is None or now - state.mode_since > MAX_NIGHT_S:
        return []
    state.not_returned_for = state.mode_since
    # a care call (severity 3): the operator phones first; no answer means a visit
    return [_finding(cfg, NOT_RETURNED, 3, now, None, {
        "door_closed_at": _iso(state.mode_since, cfg.tz),
        "quiet_for_s": round(now - (state.last_at or now)),
        "last_activity": {"device": state.last_device, "room": state.last_room,
                          "at": _iso(state.last_at, cfg.tz)},
        "rule": "the entrance door shut, nothing has moved inside since, and it is night"})]


def _asleep(state: ActivityState, now: float, cfg: ActivityConfig) -> bool:
    """Someone went to bed for the night — a bed sensor says so, or the last movement of the
    evening was in a bedroom — and it is not yet time to be up."""
    in_bedroom = (state.last_room or "").lower() in BEDROOMS
    if not (any(state.in_bed.values()) or in_bedroom) or state.last_at is None:
        return False
    began = datetime.fromtimestamp(state.last_at, cfg.tz)
    local = _local(now, cfg.tz)
    evening = (began.hour + began.minute / 60.0 >= cfg.sleep_from_h
               or began.hour < MORNING_STARTS_H)
    before_up = local.hour + local.minute / 60 < cfg.wake_by_h
    return evening and before_up and now - state.last_at < MAX_NIGHT_S


def _still_in_bed(state: ActivityState, now: float, cfg: ActivityConfig,
                  down: list[str]) -> list[Finding]:
    """Bed-bound: the small movements in bed have stopped (once per still spell)."""
    moved = state.bed_moved_at
    if moved is None or state.bed_still_for == moved or now - moved < BEDBOUND_STILL_S:
        return []
    beds = [d for d, r in cfg.sensors.items() if (r or "").lower() in BEDROOMS
            and d in cfg.passive]
    if beds and all(d in down for d in beds):
        return []  # the bedroom sensor is offline: reported as such, not as stillness
    state.bed_still_for = moved
    return [_finding(cfg, BEDBOUND_STILL, SEVERITY, now, "bedroom", {
        "last_movement_in_bed": _iso(moved, cfg.tz), "still_for_s": round(now - moved),
        "limit_s": round(BEDBOUND_STILL_S),
        "rule": "a bed-bound resident's small movements in bed have stopped",
        **_coverage(cfg, down)})]


def _coverage(cfg: ActivityConfig, down: list[str]) -> dict[str, Any]:
    """Evidence of the sensors a finding could not rely on."""
    if not down:
        return {}
    return {"degraded_coverage": [{"device": d, "room": cfg.sensors[d]} for d in down]}


def _checkin(state: ActivityState, now: float, cfg: ActivityConfig) -> list[Finding]:
    """No 平安打卡 today by the hour: a care call."""
    if cfg.checkin_by_h is None:
        return []
    local = _local(now, cfg.tz)
    today = local.date().isoformat()
    if state.checkin_checked_day == today or local.hour + local.minute / 60 < cfg.checkin_by_h:
        return []
    state.checkin_checked_day = today
    if state.checked_in_day == today:
        return []
    by = f"{int(cfg.checkin_by_h):02d}:{round(cfg.checkin_by_h % 1 * 60):02d}"
    return [_finding(cfg, MISSED_CHECKIN, 3, now, None, {
        "checkin_by": by, "last_checkin_day": state.checked_in_day,
        "last_activity": {"device": state.last_device, "room": state.last_room,
                          "at": _iso(state.last_at, cfg.tz)}})]


def _not_up(state: ActivityState, now: float, cfg: ActivityConfig,
            down: list[str]) -> list[Finding]:
    """Nothing has moved this morning, and it is past the hour to be up."""
    local = _local(now, cfg.tz)
    today = local.date().isoformat()
    if state.not_up_day == today or local.hour + local.minute / 60 < cfg.wake_by_h:
        return []
    state.not_up_day = today
    morning = local.replace(hour=MORNING_STARTS_H, minute=0, second=0,
                            microsecond=0).timestamp()
    if (state.up_day == today or state.last_at is None or state.alarmed
            or state.watching_since is None or state.watching_since > morning
            or (state.mode_since or 0.0) > morning):  # came home this morning: not in bed
        return []
    state.alarmed = True  # one alert for this quiet spell
    return [_finding(cfg, NOT_UP, SEVERITY, now, state.last_room, {
        "last_activity": {"device": state.last_device, "room": state.last_room,
                          "at": _iso(state.last_at, cfg.tz)},
        "up_by": f"{int(cfg.wake_by_h):02d}:{round(cfg.wake_by_h % 1 * 60):02d}",
        "limits_source": cfg.limits_source, **_coverage(cfg, down)})]
