"""The detection core: routes each Observation through the registered detectors.

Detectors are step functions over explicit state with `now` passed in (CONVENTIONS 3). The
registry is a plain dict; later detectors (inactivity, bed exit, accelerometer falls, …) are
entries here, each with `step` and `tick`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from detectors import activity, fall_imu, health, instant, supervision, vitals
from detectors.finding import Finding
from devices.observation import Observation

VITALS_KINDS = frozenset({"bcg", "heart_rate", "respiration_rate", "in_bed"})


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """Settings for every detector, one field per detector."""

    instant: instant.InstantConfig = field(default_factory=instant.InstantConfig)
    supervision: tuple[supervision.Expectation, ...] = ()
    health: health.HealthConfig = field(default_factory=health.HealthConfig)
    activity: activity.ActivityConfig = field(default_factory=activity.ActivityConfig)
    fall_imu: fall_imu.FallImuConfig = field(default_factory=fall_imu.FallImuConfig)
    vitals: vitals.VitalsConfig = field(default_factory=vitals.VitalsConfig)


class Core:
    """Holds each detector's state; `step` for an Observation, `tick` for the passage of time."""

    def __init__(self, cfg: CoreConfig | None = None) -> None:
        self.cfg = cfg or CoreConfig()
        self.instant = instant.InstantState()
        self.supervision = supervision.SupervisionState()
        self.health = health.HealthState()
        self.activity = activity.ActivityState()
        self.fall_imu = fall_imu.FallImuState()
        self.vitals = vitals.VitalsState()

    def step(self, obs: Observation, now: float, *, prime: bool = False) -> list[Finding]:
        """Findings caused by one Observation; `prime` marks a retained message (see instant)."""
        found = instant.step(self.instant, obs, now, self.cfg.instant, prime=prime)
        found += health.step(self.health, obs, now, self.cfg.health, prime=prime)
        found += activity.step(self.activity, obs, now, self.cfg.activity, prime=prime)
        if obs.kind == "accel":
            found += fall_imu.step(self.fall_imu, obs, now, self.cfg.fall_imu, prime=prime)
        elif obs.kind in VITALS_KINDS:
            found += vitals.step(self.vitals, obs, now, self.cfg.vitals, prime=prime)
        if not prime:  # a retained message says nothing about the device being alive now
            found += supervision.step(self.supervision, obs, now)
        return found

    def tick(self, now: float) -> list[Finding]:
        """Findings caused by time passing: devices gone silent, contacts stuck, a home too
        quiet (told which devices are offline, so blindness is not taken for quiet)."""
        found = (supervision.tick(self.supervision, now, self.cfg.supervision)
                 + health.tick(self.health, now, self.cfg.health)
                 + fall_imu.tick(self.fall_imu, now, self.cfg.fall_imu)
                 + vitals.tick(self.vitals, now, self.cfg.vitals))
        return found + activity.tick(self.activity, now, self.cfg.activity, self.offline())

    def offline(self) -> set[str]:
        """Devices offline now: silent too long, or Zigbee2MQTT says so."""
        return set(self.supervision.offline) | {
            d for d, m in self.instant.devices.items() if m.last.get("availability") == "offline"}

    def replay(self, observations: Iterable[Observation], *, tick_s: float = 60.0,
               until: float | None = None) -> list[Finding]:
        """Run a recorded stream (in time order) through the detectors on a virtual clock:
        each Observation at its own time, `tick` every `tick_s` between them and on to
        `until`. What live running does in real time, a simulated month in seconds."""
        found: list[Finding] = []
        next_tick: float | None = None
        for obs in observations:
            if next_tick is None:
                next_tick = obs.at
            while next_tick <= obs.at:
                found += self.tick(next_tick)
                next_tick += tick_s
            found += self.step(obs, obs.at)
        while next_tick is not None and until is not None and next_tick <= until:
            found += self.tick(next_tick)
            next_tick += tick_s
        return found
