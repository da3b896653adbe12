"""The detection core's settings from a gateway config: which devices, which limits.

Used by the running gateway and by replays (`anxin eval`, `anxin replay`), so a replay judges
a home exactly as the live gateway would.
"""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

from detectors.activity import (
    BATHROOM_MIN,
    BED_EXIT_MIN,
    BEDBOUND_CARE_H,
    DAY_HOURS,
    DEFAULT_LEVEL,
    ENTRANCE_ROOMS,
    WAKE_BY_H,
    ActivityConfig,
    cold_start_limits,
)
from detectors.core import CoreConfig
from detectors.health import HealthConfig
from detectors.instant import InstantConfig
from detectors.supervision import Expectation
from detectors.vitals import Bed, Limits, VitalsConfig
from devices.catalogue import Model
from devices.registry import Device
from gateway.config import ActivitySection, Config


def watched_devices(cfg: Config) -> list[tuple[Device, Model]]:
    """The configured devices with their catalogue (or exposes-mapped) models."""
    out = []
    for dev, entry in zip(cfg.device_list(), cfg.devices, strict=True):
        model = entry.catalogue_model()
        assert model is not None  # checked when the config was loaded
        out.append((dev, model))
    return out


def core_config(cfg: Config, devices: list[tuple[Device, Model]] | None = None) -> CoreConfig:
    """Every detector's settings for this home."""
    devices = watched_devices(cfg) if devices is None else devices
    expectations = tuple(Expectation(cfg.home.id, d.id, model.supervision_s, d.room)
                         for d, model in devices if model.supervision_s)
    thresholds = {d.id: cfg.alerts.low_battery_pct or model.battery_low_pct
                  for d, model in devices if cfg.alerts.low_battery_pct or model.battery_low_pct}
    m = cfg.maintenance
    owner = {e.id: e.resident for e in cfg.devices}
    alone = cfg.home.residents[0].name if len(cfg.home.residents) == 1 else None
    beds = {d.id: Bed(resident=owner.get(d.id) or alone,
                      limits=_vitals_limits(cfg, owner.get(d.id) or alone))
            for d, model in devices
            if {"in_bed", "bcg", "heart_rate", "respiration_rate"}
            & {k for e in model.exposes for k in e.kinds}}
    return CoreConfig(
        activity=_activity_config(cfg, devices, ZoneInfo(cfg.gateway.timezone)),
        vitals=VitalsConfig(home=cfg.home.id, beds=beds),
        instant=InstantConfig(device_low_battery_pct=thresholds), supervision=expectations,
        health=HealthConfig(weak_link_lqi=m.weak_link_lqi, stuck_open_s=m.stuck_open_h * 3600,
                            stuck_unchanged_s=m.stuck_unchanged_days * 86400))


def _vitals_limits(cfg: Config, resident: str | None) -> Limits | None:
    """A resident's own vital-sign limits, where [[home.residents]] sets any."""
    r = next((r for r in cfg.home.residents if r.name == resident), None)
    if r is None or (r.heart_rate_low_bpm, r.heart_rate_high_bpm, r.breath_pause_s) == (
            None, None, None):
        return None
    base = Limits()
    return replace(base, brady_bpm=r.heart_rate_low_bpm or base.brady_bpm,
                   tachy_bpm=r.heart_rate_high_bpm or base.tachy_bpm,
                   no_breath_s=r.breath_pause_s or base.no_breath_s)


_ACTIVITY_CLASSES = frozenset({"motion", "presence", "fall", "contact", "in_bed", "vibration",
                               "sos", "intercom", "away_key"})
_WATCHING_CLASSES = frozenset({"motion", "presence", "contact", "in_bed", "vibration"})


DEMENTIA_WORDS = ("dementia", "alzheimer", "痴呆", "认知症", "阿尔茨海默")


def has_dementia(conditions: list[str]) -> bool:
    """Whether a resident's conditions include dementia (in English or Chinese)."""
    return any(w in c.lower() for c in conditions for w in DEMENTIA_WORDS)


BEDBOUND_WORDS = ("bedbound", "bed-bound", "bedridden", "卧床", "瘫痪")


def is_bedbound(conditions: list[str]) -> bool:
    """Whether a resident's conditions say they cannot get out of bed."""
    return any(w in c.lower() for c in conditions for w in BEDBOUND_WORDS)


def activity_settings(*, home: str, sensors: dict[str, str | None], passive: frozenset[str],
                      entrance: frozenset[str], presence: frozenset[str], level: int | None,
                      dementia: bool, section: ActivitySection, tz: ZoneInfo,
                      checkin: bool = False, bedbound: bool = False) -> ActivityConfig:
    """The activity detector's settings: the cold start for the most dependent resident's
    ability `level`, and what `section` ([activity]) overrides. The live gateway and replays
    of recorded homes (gateway/casas.py) both build them here."""
    a = section
    lvl = DEFAULT_LEVEL if level is None else level
    limits = cold_start_limits(level)
    source = f"cold start, ability level {level if level is not None else f'unknown ({lvl})'}"
    if bedbound:  # care activity, not the resident's own: carers come morning and evening
        limits = tuple(BEDBOUND_CARE_H[0 if h in DAY_HOURS else 1] * 3600 for h in range(24))
        source = "cold start, bed-bound: care activity outside the bedroom"
    if a.day_limit_h is not None or a.night_limit_h is not None:
        limits = tuple(
            (a.day_limit_h * 3600 if h in DAY_HOURS and a.day_limit_h is not None else
             a.night_limit_h * 3600 if h not in DAY_HOURS and a.night_limit_h is not None
             else limits[h]) for h in range(24))
        source = "configured limits ([activity])"
    return ActivityConfig(
        home=home, sensors=sensors, passive=passive, entrance=entrance, presence=presence,
        limits_s=limits, limits_source=source, away_after_s=a.away_after_min * 60,
        bathroom_limit_s=(a.bathroom_limit_min or BATHROOM_MIN[lvl]) * 60,
        bed_exit_limit_s=BED_EXIT_MIN[lvl] * 60,
        wake_by_h=a.wake_by_h or WAKE_BY_H[lvl],
        checkin_by_h=a.checkin_by_h if checkin else None,
        wander_return_s=0.0 if dementia else a.wander_return_min * 60, bedbound=bedbound,
        tz=tz)


def _activity_config(cfg: Config, devices: list[tuple[Device, Model]],
                     tz: ZoneInfo) -> ActivityConfig:
    """Which devices show the home's activity, and the limits for its residents."""
    a = cfg.activity
    if not a.enabled:
        return ActivityConfig(home=cfg.home.id, tz=tz)
    levels = [r.ability_level for r in cfg.home.residents if r.ability_level is not None]
    entrance = (a.entrance_doors if a.entrance_doors is not None else
                [d.id for d, m in devices if "contact" in m.classes
                 and (d.room or "").lower() in ENTRANCE_ROOMS])
    return activity_settings(
        home=cfg.home.id,
        sensors={d.id: d.room for d, m in devices if _ACTIVITY_CLASSES & set(m.classes)},
        passive=frozenset(d.id for d, m in devices if _WATCHING_CLASSES & set(m.classes)),
        entrance=frozenset(entrance),
        presence=frozenset(d.id for d, m in devices if "presence" in m.classes),
        level=max(levels) if levels else None,
        dementia=any(has_dementia(r.conditions) for r in cfg.home.residents),
        # only where everyone at home is bed-bound: a partner's bedroom movements are theirs
        bedbound=bool(cfg.home.residents) and all(is_bedbound(r.conditions)
                                                   for r in cfg.home.residents),
        section=a, tz=tz,
        checkin=any(m.expose_for_kind("checkin") for _, m in devices))
