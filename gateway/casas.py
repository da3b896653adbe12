"""Replay a real home's sensor log (WSU CASAS) through the detectors: `anxin replay --casas`.

A simulator cannot fake a real home: months of a real resident's motion and door events show
how often the detectors would have called someone. `anxin replay --casas FILE --mapping MAP`
reads a CASAS event log, turns the lines the mapping names into Observations, runs them through
the detection core on a virtual clock (`Core.replay`, ticking every 60 s up to the log's last
line) with the activity settings the live gateway would use, and reports every alert with the
rate per home-month (alerts / days × 30).

**CASAS logs** (one event a line; fields separated by spaces and/or tabs, mixed in the real
files; the layout is recognised line by line):

- classic (Aruba, Milan, Cairo, Tulum, Kyoto…): `DATE TIME SENSOR STATE [activity labels…]`,
  e.g. `2010-11-04 05:40:43.642664 D002 OPEN Sleep end`;
- hh/csh homes (UCI "Human Activity Recognition from Continuous Ambient Sensor Data"):
  `DATE TIME SENSOR ROOM DETAIL STATE TYPE [label]`,
  e.g. `2012-07-18 12:54:45.682577 MA016 Kitchen Kitchen OFF Control4-MotionArea`;
- area first: `DATE TIME AREA SENSOR STATE [label]`,
  e.g. `2012-07-20 08:05:14.123456 Kitchen KitchenLight ON Cook` (only when the first name
  is not a mapped sensor, so a classic line with a garbled state is not misread this way).

TIME is `HH:MM:SS` with or without a fraction. STATE is ON/OFF (motion: M…, MA… area
sensors), OPEN/CLOSE (doors: D…; CLOSED accepted), a number (temperature T…, light L…,
battery BATP…), or OK/TAP/TAP_COUNT_nn/DEPRESS/RELEASE/PRESENT/ABSENT/START/STOP. Activity
labels are ignored. Lines of Aruba's `ENTERHOME`/`LEAVEHOME` annotation pseudo-sensors are
skipped as annotations.

A line that cannot be read (bad date, no state, an unknown state word, bytes that are not
text, a state that does not fit the sensor's mapped kind) is skipped and reported with its
line number; it is never fatal. Lines out of time order are common in CASAS files (small
steps back): all lines are sorted by time and the count and largest step back are reported.

**Time**: timestamps are the home's local clock, read in the mapping's `timezone`. The default
is the gateway's (Asia/Shanghai), which is wrong for the CASAS homes: they are in Washington
State, so set `timezone = "America/Los_Angeles"`. In the autumn the hour 01:00-02:00 happens
twice; a line in that hour is read as its first occurrence until the log steps back by more
than `FOLD_STEP_S` within it, then as the second. A log written by a clock that ignored
daylight saving needs a fixed zone instead, e.g. `"Etc/GMT+8"` (UTC-8).

**Mapping file** (TOML; unknown keys are errors naming the key):

```toml
timezone = "America/Los_Angeles"  # IANA zone of the home's clock (default "Asia/Shanghai")
home = "aruba"                    # id used in findings (default: the log file's name)
ability_level = 1                 # GB/T 42195 level 0-4 of the resident (default: unknown,
                                  # limits as for level 2)
conditions = []                   # e.g. ["dementia"]: the entrance door at night is enough

[sensors]                         # every sensor to use; the others are listed as unmapped
M001 = { kind = "motion", room = "bedroom" }
MA015 = { kind = "motion", room = "living_room" }
M004 = { kind = "motion", room = "bathroom" }   # bathroom/toilet: bathroom overstay
D001 = { kind = "contact", room = "entrance", entrance = true }
T001 = { kind = "ignore" }        # seen, deliberately unused (not listed as unmapped)
```

Kinds: `motion` (ON is movement; OFF is the sensor's timer running out, not activity, and is
not used), `contact` (OPEN → "open", CLOSE/CLOSED → "closed"; `entrance = true` marks the
entrance door: out of it and quiet is away, at night it may be wandering), `in_bed` and
`presence` (ON/PRESENT → true, OFF/ABSENT → false), `ignore`. Every kind but `ignore` needs a
`room`. There are deliberately no wildcard defaults (such as "every M… sensor is motion in
the home"): a guessed room changes what the detectors conclude (a bathroom sensor starts the
overstay rule, a PIR by the door sees someone leaving), so each sensor is named, and the
report lists the unmapped ones with their line counts to make the gap visible.

The activity settings are built as `gateway/coreconfig.py` builds them for a live home: every
mapped sensor watches (passive); limits from `cold_start_limits(ability_level)`; bathroom,
wake-by and away times from the level and the `[activity]` defaults; dementia → the entrance
door at night is enough. Findings that the gateway keeps for the maintenance digest (a contact
stuck in one state…) are reported apart: they page nobody.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.maintenance import DIGEST_ONLY, is_technical
from detectors.activity import (
    DEFAULT_LEVEL,
    ActivityConfig,
)
from detectors.core import Core, CoreConfig
from detectors.finding import Finding
from devices.observation import Observation, Value
from gateway.config import ActivitySection, GatewaySection
from gateway.coreconfig import activity_settings, has_dementia

__all__ = [
    "KINDS",
    "STATES",
    "CasasError",
    "Line",
    "LineError",
    "Log",
    "Mapping",
    "MappingError",
    "Report",
    "SensorMap",
    "Skipped",
    "activity_config",
    "load_mapping",
    "parse_line",
    "parse_mapping",
    "read_log",
    "render_text",
    "replay",
    "replay_file",
    "skipped_summary",
]

TICK_S = 60.0  # the live gateway ticks every few seconds; a minute is plenty for inactivity
SKIPPED_SHOWN = 20  # skipped lines shown one by one; the rest are counted
FOLD_STEP_S = 600.0  # a step back this large inside a repeated local hour: the second pass
DEFAULT_TIMEZONE: str = next(f.default for f in fields(GatewaySection) if f.name == "timezone")
_ACTIVITY_DEFAULTS = ActivitySection()

# --- the mapping -----------------------------------------------------------------------------

KINDS = ("motion", "contact", "in_bed", "presence", "ignore")
# CASAS state word -> Observation value, per kind. A word missing here does not belong to that
# kind (a motion sensor reporting OPEN is a broken line); None: a known word that carries no
# fact worth passing on (a PIR's OFF is its timer running out, not the person doing anything).
STATES: dict[str, dict[str, Value | None]] = {
    "motion": {"ON": True, "OFF": None},
    "contact": {"OPEN": "open", "CLOSE": "closed", "CLOSED": "closed"},
    "in_bed": {"ON": True, "OFF": False, "PRESENT": True, "ABSENT": False},
    "presence": {"ON": True, "OFF": False, "PRESENT": True, "ABSENT": False},
}

MAPPING_KEYS: dict[str, str] = {
    "timezone": f"IANA time zone of the home's clock (default {DEFAULT_TIMEZONE!r}; the CASAS "
                "homes: 'America/Los_Angeles')",
    "home": "id of the home in findings (default: the log file's name)",
    "ability_level": "GB/T 42195 ability level 0-4 of the resident, for the cold-start limits "
                     f"(default: unknown, limits as for level {DEFAULT_LEVEL})",
    "conditions": "health conditions, e.g. ['dementia']",
    "sensors": "table: CASAS sensor id -> { kind, room, entrance }",
}
SENSOR_KEYS: dict[str, str] = {
    "kind": f"one of {', '.join(KINDS)}",
    "room": "the room, e.g. bedroom, bathroom, entrance (needed by every kind but ignore)",
    "entrance": "true for the entrance door contact",
}


@dataclass(frozen=True, slots=True)
class SensorMap:
    """What one CASAS sensor is to anxin."""

    kind: str
    room: str | None = None
    entrance: bool = False


@dataclass(frozen=True, slots=True)
class Mapping:
    """A CASAS home as anxin sees it: its sensors, clock and resident."""

    sensors: dict[str, SensorMap]
    timezone: str = DEFAULT_TIMEZONE
    home: str = "casas"
    ability_level: int | None = None
    conditions: tuple[str, ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def dementia(self) -> bool:
        return has_dementia(list(self.conditions))  # as for [[home.residents]]

    def used(self) -> dict[str, SensorMap]:
        """The sensors that feed the detectors (all but the ignored ones)."""
        return {s: m for s, m in self.sensors.items() if m.kind != "ignore"}


class CasasError(Exception):
    """The replay cannot start: the log cannot be read or holds no CASAS lines."""


class MappingError(CasasError):
    """The mapping cannot be used; `problems` lists each (key path, message)."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "") -> None:
        self.problems = problems
        lines = [f"mapping {source}: {len(problems)} problem(s)"]
        lines += [f"  {path}: {msg}" for path, msg in problems]
        super().__init__("\n".join(lines))


def _zone_problem(name: Any) -> str | None:
    if not isinstance(name, str):
        return f"expected a string such as 'America/Los_Angeles', got {name!r}"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory ('America')
        return f"unknown time zone {name!r} (use an IANA name such as America/Los_Angeles)"
    return None


def _unknown(keys: Iterable[str], known: dict[str, str], prefix: str) -> list[tuple[str, str]]:
    return [(f"{prefix}{k}", f"unknown key (known: {', '.join(known)})")
            for k in keys if k not in known]


def _sensor(sid: str, raw: Any, problems: list[tuple[str, str]]) -> SensorMap | None:
    path = f"sensors.{sid}"
    if not isinstance(raw, dict):
        problems.append((path, f"expected a table such as {{ kind = \"motion\", room = "
                               f"\"bedroom\" }}, got {raw!r}"))
        return None
    before = len(problems)
    problems += _unknown(raw, SENSOR_KEYS, f"{path}.")
    kind, room, entrance = raw.get("kind"), raw.get("room"), raw.get("entrance", False)
    if kind not in KINDS:
        problems.append((f"{path}.kind", "missing: " + SENSOR_KEYS["kind"] if kind is None
                         else f"unknown kind {kind!r} (use {', '.join(KINDS)})"))
    if room is not None and (not isinstance(room, str) or not room.strip()):
        problems.append((f"{path}.room", f"expected a room name, got {room!r}"))
    elif room is None and kind in KINDS and kind != "ignore":
        problems.append((f"{path}.room", f"missing: a {kind} sensor needs its room "
                                         "(e.g. room = \"bedroom\")"))
    if not isinstance(entrance, bool):
        problems.append((f"{path}.entrance", f"expected true or false, got {entrance!r}"))
    elif entrance and kind in KINDS and kind != "contact":
        problems.append((f"{path}.entrance", f"only a contact can be the entrance door, this "
                                             f"is {kind}"))
    if len(problems) > before:
        return None
    return SensorMap(kind=kind, room=room, entrance=entrance)


def parse_mapping(doc: dict[str, Any], *, source: str = "", home: str = "casas") -> Mapping:
    """A Mapping from a parsed TOML document, or MappingError naming every bad key."""
    problems = _unknown(doc, MAPPING_KEYS, "")
    tz = doc.get("timezone", DEFAULT_TIMEZONE)
    if (p := _zone_problem(tz)) is not None:
        problems.append(("timezone", p))
    level = doc.get("ability_level")
    if level is not None and (isinstance(level, bool) or not isinstance(level, int)
                              or not 0 <= level <= 4):
        problems.append(("ability_level", f"expected a whole number 0-4, got {level!r}"))
    conditions = doc.get("conditions", [])
    if not isinstance(conditions, list) or not all(isinstance(c, str) for c in conditions):
        problems.append(("conditions", f"expected a list of strings, got {conditions!r}"))
    home = doc.get("home", home)
    if not isinstance(home, str) or not home.strip():
        problems.append(("home", f"expected a non-empty string, got {home!r}"))
    raw_sensors = doc.get("sensors")
    sensors: dict[str, SensorMap] = {}
    if not isinstance(raw_sensors, dict) or not raw_sensors:
        problems.append(("sensors", "missing or empty: map each CASAS sensor to use, e.g. "
                                    "M001 = { kind = \"motion\", room = \"bedroom\" }"))
    else:
        for sid, raw in raw_sensors.items():
            sensor = _sensor(sid, raw, problems)
            if sensor is not None:
                sensors[sid] = sensor
        if len(sensors) == len(raw_sensors) and all(m.kind == "ignore"
                                                    for m in sensors.values()):
            problems.append(("sensors", "every sensor is ignored: nothing to replay"))
    if problems:
        raise MappingError(problems, source)
    return Mapping(sensors=sensors, timezone=tz, home=home, ability_level=level,
                   conditions=tuple(conditions))


def load_mapping(path: Path, *, home: str | None = None) -> Mapping:
    """Read and check a mapping file (TOML); MappingError says what is wrong and where."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise MappingError([("(file)", f"cannot read it: {e.strerror or e}")], str(path)) from None
    except UnicodeDecodeError as e:
        raise MappingError([("(file)", f"not UTF-8 text: {e}")], str(path)) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise MappingError([("(toml)", str(e))], str(path)) from None
    return parse_mapping(doc, source=str(path), home=home or "casas")


def activity_config(mapping: Mapping) -> ActivityConfig:
    """The activity detector's settings for the mapped home, built exactly as the live
    gateway builds them (gateway/coreconfig.py `activity_settings`)."""
    used = mapping.used()
    return activity_settings(
        home=mapping.home, sensors={s: m.room for s, m in used.items()},
        passive=frozenset(used),  # every mapped kind watches the home
        entrance=frozenset(s for s, m in used.items() if m.entrance),
        presence=frozenset(s for s, m in used.items() if m.kind == "presence"),
        level=mapping.ability_level, dementia=mapping.dementia,
        section=_ACTIVITY_DEFAULTS, tz=mapping.tz)


# --- reading the log -------------------------------------------------------------------------

CLASSIC, HH, AREA = "classic", "hh", "area"
STATE_WORDS = frozenset({"ON", "OFF", "OPEN", "CLOSE", "CLOSED", "OK", "TAP", "DEPRESS",
                         "RELEASE", "PRESENT", "ABSENT", "START", "STOP"})
ANNOTATIONS = ("ENTERHOME", "LEAVEHOME")  # Aruba's pseudo-sensors, in the sensor's place
_ANNOTATION_FIELDS = [[a] for a in ANNOTATIONS]
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_TIME = re.compile(r"\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?\Z")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)\Z")
_TAP_COUNT = re.compile(r"TAP_COUNT_\d+\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # tabs are separators, not junk


@dataclass(frozen=True, slots=True)
class Line:
    """One readable CASAS line: when (local, naive), which sensor, what it said."""

    when: datetime
    sensor: str
    state: str  # upper case
    layout: str


class LineError(ValueError):
    """A line that cannot be read; `category` groups the reasons for the summary."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category


def _is_state(token: str) -> bool:
    word = token.upper()
    return (word in STATE_WORDS or _NUMBER.match(token) is not None
            or _TAP_COUNT.match(word) is not None)


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[:n] + "…"


def parse_line(text: str, mapped: Container[str] = frozenset()) -> Line:
    """Read one CASAS line in any of the three layouts, or raise LineError saying why not.

    `mapped`: the mapping's sensor ids; a line starting with one is never read as the
    area-first layout.
    """
    tokens = text.split()
    if (len(tokens) < 2 or _DATE.match(tokens[0]) is None
            or _TIME.match(tokens[1]) is None):
        raise LineError("bad_timestamp", "does not start with a date and time "
                                         f"(YYYY-MM-DD HH:MM:SS[.ffffff]): {_short(text)!r}")
    try:
        when = datetime.fromisoformat(f"{tokens[0]} {tokens[1]}")
    except ValueError as e:
        raise LineError("bad_timestamp", f"bad date/time {tokens[0]} {tokens[1]}: {e}") from None
    rest = tokens[2:]
    if not rest:
        raise LineError("missing_state", "no sensor and state after the date and time")
    if len(rest) == 1:
        raise LineError("missing_state", f"no state after the sensor {rest[0]!r}")
    if _is_state(rest[1]):
        return Line(when, rest[0], rest[1].upper(), CLASSIC)
    if len(rest) >= 5 and _is_state(rest[3]):
        return Line(when, rest[0], rest[3].upper(), HH)
    if len(rest) >= 3 and rest[0] not in mapped and _is_state(rest[2]):
        return Line(when, rest[1], rest[2].upper(), AREA)
    raise LineError("unknown_state", "no CASAS state (ON, OFF, OPEN, CLOSE, a number, …) "
                                     f"where one belongs in {_short(' '.join(rest))!r}")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A line left out, and why."""

    line: int
    category: str
    reason: str


@dataclass(slots=True)
class Log:
    """What a CASAS file held: the events to replay (sorted by time) and an account of the
    rest."""

    events: list[tuple[float, str, str, Value]] = field(default_factory=list)  # at, sensor…
    lines: int = 0
    blank: int = 0
    annotations: int = 0
    skipped: list[Skipped] = field(default_factory=list)  # the first SKIPPED_SHOWN
    skipped_count: int = 0
    skipped_by_category: Counter[str] = field(default_factory=Counter)
    layouts: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)  # sensor -> readable lines
    used: Counter[str] = field(default_factory=Counter)  # sensor -> events replayed
    not_used: Counter[str] = field(default_factory=Counter)  # e.g. "motion OFF" -> lines
    out_of_order: int = 0
    max_step_back_s: float = 0.0
    second_pass: int = 0  # lines read in the repeated autumn hour's second pass
    first_at: float | None = None
    last_at: float | None = None

    def skip(self, line: int, category: str, reason: str) -> None:
        self.skipped_count += 1
        self.skipped_by_category[category] += 1
        if len(self.skipped) < SKIPPED_SHOWN:
            self.skipped.append(Skipped(line, category, reason))


class _Clock:
    """Local naive times to unix seconds in the home's zone, reading the repeated autumn
    hour as its first pass until the log steps back within it (see the module docstring)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.ambiguous_hours: dict[tuple[int, int, int, int], bool] = {}
        self.fold = 0
        self.latest_ambiguous: datetime | None = None

    def _ambiguous(self, when: datetime) -> bool:
        key = (when.year, when.month, when.day, when.hour)
        hour = self.ambiguous_hours.get(key)
        if hour is None:
            start = datetime(*key, tzinfo=self.tz)
            hour = self.ambiguous_hours[key] = any(
                start.replace(minute=m).utcoffset() != start.replace(minute=m, fold=1).utcoffset()
                for m in (0, 30, 59))
        if not hour:
            return False
        aware = when.replace(tzinfo=self.tz)
        return aware.utcoffset() != when.replace(tzinfo=self.tz, fold=1).utcoffset()

    def at(self, when: datetime) -> tuple[float, bool]:
        """(unix seconds, whether read as the repeated hour's second pass)."""
        if not self._ambiguous(when):
            self.fold, self.latest_ambiguous = 0, None
            return when.replace(tzinfo=self.tz).timestamp(), False
        latest = self.latest_ambiguous
        if latest is None or when > latest:
            self.latest_ambiguous = when
        elif (latest - when).total_seconds() > FOLD_STEP_S:
            self.fold = 1
        return when.replace(tzinfo=self.tz, fold=self.fold).timestamp(), self.fold == 1


def read_log(raw_lines: Iterable[bytes], mapping: Mapping) -> Log:
    """Read a CASAS log (lines as bytes) against a mapping: the events to replay, sorted by
    time, and an account of every line that was not one."""
    log = Log()
    clock = _Clock(mapping.tz)
    sensors = mapping.sensors
    latest: float | None = None
    for number, raw in enumerate(raw_lines, start=1):
        log.lines += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            log.skip(number, "not_text", "not UTF-8 text (binary junk?)")
            continue
        if number == 1:
            text = text.removeprefix("\ufeff")
        text = text.rstrip("\r\n")
        if not text.strip():
            log.blank += 1
            continue
        if _CONTROL.search(text) is not None:
            log.skip(number, "not_text", "control characters in the line (binary junk?)")
            continue
        if b"HOME" in raw and text.split()[2:3] in _ANNOTATION_FIELDS:
            log.annotations += 1
            continue
        try:
            line = parse_line(text, sensors)
        except LineError as e:
            log.skip(number, e.category, str(e))
            continue
        m = sensors.get(line.sensor)
        value: Value | None = None
        if m is not None and m.kind != "ignore":
            states = STATES[m.kind]
            if line.state not in states:
                log.skip(number, "state_for_kind",
                         f"{line.sensor} is mapped as {m.kind}: {line.state!r} is not one of "
                         f"{', '.join(states)}")
                continue
            value = states[line.state]
        at, second_pass = clock.at(line.when)
        log.second_pass += second_pass
        log.layouts[line.layout] += 1
        log.seen[line.sensor] += 1
        if latest is None or at >= latest:
            latest = at
        else:
            log.out_of_order += 1
            log.max_step_back_s = max(log.max_step_back_s, latest - at)
        if log.first_at is None or at < log.first_at:
            log.first_at = at
        if m is None or m.kind == "ignore":
            continue
        if value is None:
            log.not_used[f"{m.kind} {line.state}"] += 1
            continue
        log.used[line.sensor] += 1
        log.events.append((at, line.sensor, m.kind, value))
    log.last_at = latest
    log.events.sort(key=lambda e: e[0])  # stable: equal times keep the file's order
    return log


# --- the replay ------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    """A replay's outcome: the log's account, the settings used, the alerts."""

    source: str
    mapping: Mapping
    log: Log
    activity: ActivityConfig
    alerts: list[Finding]
    maintenance: list[Finding]

    @property
    def days(self) -> float:
        """Days from the log's first line to its last."""
        if self.log.first_at is None or self.log.last_at is None:
            return 0.0
        return (self.log.last_at - self.log.first_at) / 86400.0

    @property
    def per_home_month(self) -> float | None:
        """Alerts per 30 days of this home; None for a log shorter than a minute."""
        return None if self.days * 86400 < 60 else len(self.alerts) / self.days * 30

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.mapping.tz)

    def as_json(self) -> dict[str, Any]:
        """The report as one JSON-ready object."""
        log, used = self.log, self.mapping.used()
        rate = self.per_home_month

        def finding(f: Finding) -> dict[str, Any]:
            return {"time": self.local(f.at).isoformat(timespec="seconds"),
                    "detector": f.event, "code": f.code, "severity": f.severity,
                    "source": f.detector, "room": f.room, "device": f.device,
                    "evidence": f.evidence}

        return {
            "source": self.source, "home": self.mapping.home,
            "timezone": self.mapping.timezone,
            "first_event": None if log.first_at is None
            else self.local(log.first_at).isoformat(timespec="seconds"),
            "last_event": None if log.last_at is None
            else self.local(log.last_at).isoformat(timespec="seconds"),
            "days": round(self.days, 3),
            "alerts": [finding(f) for f in self.alerts],
            "alerts_per_home_month": None if rate is None else round(rate, 2),
            "maintenance": [finding(f) for f in self.maintenance],
            "events": len(log.events), "lines": log.lines, "blank_lines": log.blank,
            "annotation_lines": log.annotations,
            "skipped_lines": log.skipped_count,
            "skipped_by_category": dict(sorted(log.skipped_by_category.items())),
            "skipped_examples": [{"line": s.line, "category": s.category, "reason": s.reason}
                                 for s in log.skipped],
            "out_of_order": log.out_of_order,
            "max_step_back_s": round(log.max_step_back_s, 3),
            "repeated_hour_second_pass": log.second_pass,
            "layouts": dict(log.layouts), "not_used": dict(log.not_used),
            "sensors": {s: {"lines": n, "events": log.used[s],
                            "kind": self.mapping.sensors[s].kind
                            if s in self.mapping.sensors else None,
                            "room": self.mapping.sensors[s].room
                            if s in self.mapping.sensors else None}
                        for s, n in sorted(log.seen.items())},
            "unmapped_sensors": {s: n for s, n in sorted(log.seen.items())
                                 if s not in self.mapping.sensors},
            "mapped_not_seen": sorted(s for s in self.mapping.sensors if s not in log.seen),
            "settings": {"limits_source": self.activity.limits_source,
                         "day_limit_h": self.activity.limits_s[12] / 3600,
                         "night_limit_h": self.activity.limits_s[0] / 3600,
                         "bathroom_limit_min": self.activity.bathroom_limit_s / 60,
                         "wake_by_h": self.activity.wake_by_h,
                         "wander_return_min": self.activity.wander_return_s / 60,
                         "entrance": sorted(self.activity.entrance),
                         "dementia": self.mapping.dementia,
                         "mapped_sensors": len(used)},
        }


def _observations(log: Log, mapping: Mapping) -> Iterator[Observation]:
    rooms = {s: m.room for s, m in mapping.sensors.items()}
    for at, sensor, kind, value in log.events:
        yield Observation(mapping.home, sensor, kind, value, at, rooms[sensor])


def replay(log: Log, mapping: Mapping, *, source: str = "") -> Report:
    """Run the log's events through the detection core on a virtual clock, ticking every
    `TICK_S` up to the log's last line (a quiet home keeps logging temperature)."""
    activity = activity_config(mapping)
    core = Core(CoreConfig(activity=activity))
    found = core.replay(_observations(log, mapping), tick_s=TICK_S, until=log.last_at)
    # As gateway/runtime.py routes them: these wait for the daily digest, paging nobody.
    digest = [f for f in found if is_technical(f) and f.event in DIGEST_ONLY]
    alerts = [f for f in found if not (is_technical(f) and f.event in DIGEST_ONLY)]
    return Report(source=source, mapping=mapping, log=log, activity=activity, alerts=alerts,
                  maintenance=digest)


def replay_file(casas: Path, mapping_path: Path) -> Report:
    """Load the mapping, read the log and replay it; CasasError (MappingError for the
    mapping) when either cannot be used."""
    mapping = load_mapping(mapping_path, home=casas.stem)
    try:
        with casas.open("rb") as f:
            log = read_log(f, mapping)
    except OSError as e:
        raise CasasError(f"cannot read {casas}: {e.strerror or e}") from None
    if log.first_at is None and log.lines > log.blank:
        first = "; ".join(f"line {s.line}: {s.reason}" for s in log.skipped[:3])
        raise CasasError(f"{casas}: no CASAS event line in {log.lines} line(s)"
                         + (f" ({first})" if first else ""))
    return replay(log, mapping, source=str(casas))


# --- the report as text ----------------------------------------------------------------------


def skipped_summary(report: Report) -> list[str]:
    """The skipped lines for stderr: the first `SKIPPED_SHOWN` one by one, then a count."""
    log = report.log
    lines = [f"{report.source}:{s.line}: skipped: {s.reason}" for s in log.skipped]
    if log.skipped_count > len(log.skipped):
        lines.append(f"{report.source}: … and {log.skipped_count - len(log.skipped)} more "
                     f"skipped line(s) ({log.skipped_count} in all: "
                     + ", ".join(f"{k} {n}" for k, n in sorted(
                         log.skipped_by_category.items())) + ")")
    return lines


def _when(report: Report, ts: float) -> str:
    return report.local(ts).strftime("%Y-%m-%d %H:%M:%S %Z")


def _counts(items: Iterable[tuple[str, int]], limit: int = 12) -> str:
    items = list(items)
    shown = ", ".join(f"{k} ×{n}" for k, n in items[:limit])
    return shown + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


def _finding_line(report: Report, f: Finding) -> str:
    ev = f.evidence
    detail = ""
    if "quiet_for_s" in ev:
        detail = f"  quiet {ev['quiet_for_s'] / 3600:.1f} h"
    elif "door_opened_at" in ev:
        detail = f"  door opened {ev['door_opened_at']}"
    return (f"  {_when(report, f.at)}  {f.event:<18} CID {f.code}  severity {f.severity}  "
            f"{f.room or f.device or '-'}{detail}")


def render_text(report: Report) -> str:
    """The report for a person at a terminal."""
    log, m, a = report.log, report.mapping, report.activity
    out = [f"CASAS replay of {report.source}: home {m.home}, {m.timezone}"]
    if log.first_at is None or log.last_at is None:
        return "\n".join([*out, "  no events in the log"])
    out.append(f"  period: {_when(report, log.first_at)} … {_when(report, log.last_at)} "
               f"({report.days:.2f} days)")
    layouts = ", ".join(f"{k} {n}" for k, n in log.layouts.most_common())
    order = (f"{log.out_of_order} out of time order (largest step back "
             f"{log.max_step_back_s:.1f} s), sorted" if log.out_of_order else "in time order")
    out.append(f"  lines: {log.lines} ({layouts}); {log.skipped_count} skipped, "
               f"{log.blank} blank, {log.annotations} annotation; {order}")
    if log.second_pass:
        out.append(f"  {log.second_pass} line(s) read in the repeated autumn hour's second "
                   "pass (clocks going back)")
    kinds: Counter[str] = Counter()
    for s, n in log.used.items():
        kinds[m.sensors[s].kind] += n
    out.append(f"  events used: {len(log.events)} ("
               + ", ".join(f"{k} {n}" for k, n in kinds.most_common()) + ")"
               + (f"; not used: {_counts(sorted(log.not_used.items()))}"
                  if log.not_used else ""))
    mapped = sorted((s, n) for s, n in log.seen.items()
                    if s in m.sensors and m.sensors[s].kind != "ignore")
    ignored = sorted((s, n) for s, n in log.seen.items()
                     if s in m.sensors and m.sensors[s].kind == "ignore")
    unmapped = sorted((s, n) for s, n in log.seen.items() if s not in m.sensors)
    out.append(f"  sensors: {len(log.seen)} seen: {len(mapped)} mapped, {len(ignored)} "
               f"ignored, {len(unmapped)} unmapped")
    out.append("    mapped: " + (", ".join(
        f"{s} ({m.sensors[s].kind} {m.sensors[s].room}"
        f"{', entrance door' if m.sensors[s].entrance else ''}) ×{n}" for s, n in mapped)
        or "none of them is in the log"))
    if ignored:
        out.append(f"    ignored: {_counts(ignored)}")
    if unmapped:
        out.append(f"    unmapped (not used): {_counts(unmapped)}")
    never = sorted(s for s in m.sensors if s not in log.seen)
    if never:
        out.append(f"    mapped but never in the log: {', '.join(never)}")
    out.append(f"  settings: {a.limits_source} (day {a.limits_s[12] / 3600:g} h, night "
               f"{a.limits_s[0] / 3600:g} h), bathroom {a.bathroom_limit_s / 60:g} min, "
               f"up by {a.wake_by_h:g} h, night door "
               + ("at once (dementia)" if m.dementia else
                  f"{a.wander_return_s / 60:g} min without return")
               + f"; entrance: {', '.join(sorted(a.entrance)) or 'none'}")
    if not a.entrance:
        out.append("  note: no entrance door mapped: the home never counts as away, so time "
                   "out of it reads as inactivity")
    rate = report.per_home_month
    out.append(f"alerts: {len(report.alerts)} in {report.days:.2f} days"
               + ("" if rate is None else f" = {rate:.2f} per home-month"))
    out += [_finding_line(report, f) for f in report.alerts]
    out.append(f"maintenance (daily digest, pages nobody): {len(report.maintenance)}")
    out += [_finding_line(report, f) for f in report.maintenance]
    return "\n".join(out)
