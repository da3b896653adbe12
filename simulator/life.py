"""Simulated life in a home you configured: `anxin sim --life`.

`home_from_config` turns a gateway config (TOML text) into a `SimHome`: its own
`[[devices]]` and `[[home.residents]]`, with the daily rhythms and hardware habits drawn as
simulator/homes.py draws them for its generated homes. `live` lives its days
(simulator/resident.py) with the incidents asked for and returns the MQTT messages the home's
devices publish, with the ground truth. `timeline` makes them a stream for
`runner.publish_stream`. Pure and seeded; no clock, no I/O.

The simulation knows the rooms entrance, living_room, bedroom, bathroom and kitchen: a
device elsewhere says nothing (`Life.silent` lists them).
"""

from __future__ import annotations

import bisect
import dataclasses
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from simulator import homes
from simulator.emulators import Message
from simulator.homes import CARER_P, CARER_VISITS, DeviceTraits, SimHome, devices_in
from simulator.resident import (
    INCIDENT_KINDS,
    Incident,
    IncidentSpec,
    Simulation,
    simulate,
    to_messages,
)
from simulator.runner import Timed

__all__ = ["Life", "LifeError", "describe_incident", "home_from_config", "live", "milestones",
           "parse_incident", "summary", "timeline"]

DAY_S = 86400.0
BATTERY_PCT = 90.0
DRAIN_PCT_PER_DAY = 0.1
LQI = 120
# A home's habits homes.make_home would draw; here the middle of its ranges.
TRANSIT_P, FAMILY_VISIT_P = 0.6, 0.15


class LifeError(ValueError):
    """A config or an incident the simulation cannot live."""


@dataclass(frozen=True, slots=True)
class Life:
    """A simulated run of a configured home: what its devices publish, and what happened."""

    home: SimHome
    simulation: Simulation
    messages: list[tuple[float, str, bytes]]  # (unix time, topic, payload), in time order
    silent: list[str]  # devices in rooms the simulation does not know

    @property
    def incidents(self) -> list[Incident]:
        """The ground truth: each incident with its true start and when it ended."""
        return self.simulation.incidents

    @property
    def days(self) -> int:
        """How many days were lived."""
        return round((self.simulation.end - self.simulation.start) / DAY_S)


def home_from_config(config_text: str, rng: np.random.Generator) -> SimHome:
    """The `SimHome` of a gateway config: its devices and residents, rhythms drawn from `rng`.

    LifeError when the config has no resident or no device the simulation can drive.
    """
    try:
        data = tomllib.loads(config_text)
        listed = devices_in(config_text)
    except (tomllib.TOMLDecodeError, KeyError, ValueError) as e:
        raise LifeError(f"config: {e}") from e
    people = data.get("home", {}).get("residents", [])
    if not people:
        raise LifeError("config: no [[home.residents]]: the simulation needs someone to live "
                        "there (name, ability_level)")
    if not any(dev.room in homes.ROOMS for dev, _, _ in listed):
        raise LifeError(f"config: no device in a room the simulation knows "
                        f"({', '.join(homes.ROOMS)})")
    residents = []
    for p in people:
        level = p.get("ability_level")
        # The rhythm (wake, bed, night toilet, outings, pace) as make_home draws it for the
        # ability level; who the person is comes from the config. (homes.py keeps these two
        # helpers private; they are the one place those draws are made.)
        drawn = homes.draw_resident(rng, "f", 2 if level is None else level)
        residents.append(dataclasses.replace(
            drawn, name=p["name"], age=p.get("age") or drawn.age,
            conditions=tuple(p.get("conditions", ()))))
    level = max(r.ability_level for r in residents)
    traits = {}
    for dev, model, _ in listed:
        battery = model.power == "battery"
        traits[dev.id] = DeviceTraits(
            battery_pct=BATTERY_PCT if battery else None,
            drain_pct_per_day=DRAIN_PCT_PER_DAY if battery else 0.0,
            lqi=LQI, report_s=homes.report_interval(dev.model))
    mqtt = data.get("mqtt", {})
    return SimHome(
        index=0, gateway_id=data.get("gateway", {}).get("id", ""), home_id=data["home"]["id"],
        base_topic=mqtt.get("zigbee2mqtt_base_topic", "zigbee2mqtt"), config_text=config_text,
        residents=tuple(residents), devices=traits, pir_sees_bed=False, transit_p=TRANSIT_P,
        family_visit_p=FAMILY_VISIT_P, carer_visits=CARER_VISITS[level],
        carer_p=CARER_P[level])


def parse_incident(text: str, days: int) -> IncidentSpec:
    """`KIND@DAY` or `KIND@DAY/HOUR` (day 0 is the first; HOUR local, e.g. 10.5) as a spec."""
    kind, at, rest = text.partition("@")
    day_text, _, hour_text = rest.partition("/")
    if kind not in INCIDENT_KINDS or not at:
        raise LifeError(f"incident {text!r}: write KIND@DAY or KIND@DAY/HOUR, KIND one of "
                        f"{', '.join(INCIDENT_KINDS)} (e.g. long_lie@1/10)")
    try:
        day = int(day_text)
        hour = float(hour_text) if hour_text else None
    except ValueError:
        raise LifeError(f"incident {text!r}: DAY must be a whole number and HOUR a number "
                        "(e.g. long_lie@1/10.5)") from None
    if not 0 <= day < days:
        raise LifeError(f"incident {text!r}: day {day} is not in the {days} simulated day(s) "
                        f"(0 to {days - 1})")
    if hour is not None and not 0 <= hour < 24:
        raise LifeError(f"incident {text!r}: hour {hour:g} is not in 0-24")
    return IncidentSpec(kind, day, hour=hour)


def live(config_text: str, start: float, days: int, seed: int,
         incidents: Iterable[IncidentSpec] = ()) -> Life:
    """Live `days` days of the configured home from `start` (a local midnight)."""
    rng = np.random.default_rng(seed)
    home = home_from_config(config_text, rng)
    try:
        sim = simulate(home, start, days, rng, list(incidents))
    except ValueError as e:
        raise LifeError(str(e)) from e
    silent = [dev.id for dev, _, _ in devices_in(config_text) if dev.room not in homes.ROOMS]
    return Life(home, sim, to_messages(home, sim.events, start=start), silent)


def describe_incident(incident: Incident, tz: ZoneInfo) -> str:
    """One line of ground truth: what, when it began and ended (local), where, who."""
    began = datetime.fromtimestamp(incident.start, tz)
    ended = datetime.fromtimestamp(incident.end, tz)
    where = incident.room or incident.device or "-"
    who = f", {incident.resident}" if incident.resident else ""
    found = f" by {incident.found_by}" if incident.found_by else ""
    return (f"{incident.kind:<18} from {began:%Y-%m-%d %H:%M} to {ended:%Y-%m-%d %H:%M}"
            f"{found}  room {where}{who}")


def summary(life: Life, tz: ZoneInfo) -> list[str]:
    """What a developer reads before the stream starts: the run, and its ground truth."""
    home, start = life.home, life.simulation.start
    lines = [f"simulated life: home {home.home_id}, {len(home.residents)} resident(s) "
             f"({', '.join(r.name for r in home.residents)}), {len(home.devices)} device(s), "
             f"{life.days} day(s) from {datetime.fromtimestamp(start, tz):%Y-%m-%d %H:%M %Z}:"
             f" {len(life.messages)} messages"]
    if life.silent:
        lines.append(f"  silent (in rooms the simulation does not know): "
                     f"{', '.join(life.silent)}")
    lines.append("ground truth, what the gateway should detect:")
    lines += [f"  {describe_incident(i, tz)}" for i in life.incidents] or [
        "  no incidents (stage some with --incident KIND@DAY[/HOUR])"]
    return lines


def milestones(life: Life, tz: ZoneInfo) -> dict[int, str]:
    """Notes to show as the stream passes, by message index: each day's start, each
    incident's start and end (on the first message at or after it)."""
    start = life.simulation.start
    marks = [(start + d * DAY_S,
              f"day {d}: {datetime.fromtimestamp(start + d * DAY_S, tz):%a %Y-%m-%d}")
             for d in range(life.days)]
    for i in life.incidents:
        marks += [(i.start, f"{i.kind} begins ({i.room or i.device or '-'})"),
                  (i.end, f"{i.kind} ends" + (f", found by {i.found_by}" if i.found_by else ""))]
    times = [t for t, _, _ in life.messages]
    notes: dict[int, str] = {}
    for at, what in sorted(marks):
        k = bisect.bisect_left(times, at)
        if k < len(times):
            notes[k] = f"{notes[k]}; {what}" if k in notes else what
    return notes


def timeline(messages: Iterable[tuple[float, str, bytes]], origin: float,
             notes: dict[int, str] | None = None) -> list[Timed]:
    """Messages at unix times as a stream `origin` seconds in; `notes` by message index."""
    notes = notes or {}
    return [Timed(t - origin, Message(topic, payload), notes.get(i))
            for i, (t, topic, payload) in enumerate(messages)]
