"""Simulated 家庭养老床位 homes: a gateway config and the people who live there.

`make_home(index, rng)` draws one home from a seeded `numpy.random.Generator`: who lives there
(`ResidentProfile`: ability level, conditions, daily rhythm), which devices were installed
(real catalogue models, written as the gateway config TOML a technician would leave behind),
and how the hardware behaves (`DeviceTraits`: battery, radio, report interval, radar hold).
`simulator/resident.py` makes the days.

What varies from home to home, and how often:

- Rooms: entrance, living_room, bedroom, bathroom, kitchen.
- Always: an Aqara RTCGQ11LM PIR in the living room, bedroom and kitchen; an Aqara MCCGQ11LM
  contact on the entrance door; an SOS button by the bed (Tuya TS0215A_sos, Heiman HS1EB,
  Aqara WXKG11LM or SONOFF SNZB-01).
- A bathroom PIR in 85% of homes; a bathroom mmWave radar (Heiman HS2FD-EF1-3.0, Tuya
  ZY-M100-S_1, Tuya MIR-HE200-TY or SONOFF SNZB-06P, all reporting `presence`) in 35% of the
  homes with a bathroom PIR and 70% of those without; a second SOS button in the bathroom
  in 30%; the anxin bed sensor (`in_bed`) under each resident's mattress in 30%; a kitchen
  smoke alarm in 80%, a gas detector in 40%, a bathroom leak sensor in 30% (these only report
  their battery: nothing in the simulation sets them off).
- Residents: one, or a couple in 15% of homes (a woman alone in most of the others); aged
  65-95, older the more dependent; GB/T 42195 ability level 0-4 weighted toward 1-3
  (8/27/32/25/8%); dementia more likely the more dependent (none at level 0, 4% at level 1 …
  35% at level 4); other conditions (hypertension, diabetes, …) for the record.
- Rhythm (`ResidentProfile`): mean wake-up 05:24-08:00 (later the more dependent), sd
  0.2-0.45 h, 0-0.6 h later at weekends; mean bedtime 21:00-23:18, sd 0.25-0.5 h; 0.2-2.2
  toilet visits a night on average (more with age and dependency); see simulator/resident.py
  for how the days are made from these.
- Visits: family on 5-30% of weekday afternoons; home care (上门护理) on 10% of days at level
  2, 50% at level 3 (one visit), every day at level 4 (two visits).
- Hardware: batteries 62-100% at install, draining 0.05-0.35 %/day; link quality 70-200;
  a radar holds presence 10-60 s after the last person left; spurious PIR detections 0, 0.05
  or 0.2 a day (sun on a wall, a curtain), radar ghosts 0, 0.1 or 0.4 a day.
- The bedroom PIR sees the bed in 45% of homes (then sleep shows as a rare hit when the
  sleeper turns over); a walk between two rooms that are not the living room passes under
  the living-room PIR with a per-home probability of 0.4-0.9.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from typing import Any

import numpy as np

from devices.catalogue import AQARA_HEARTBEAT_S, NATIVE_HEARTBEAT_S, Model, find_model
from devices.registry import Device

TIMEZONE = "Asia/Shanghai"
ROOMS = ("entrance", "living_room", "bedroom", "bathroom", "kitchen")

SOS_MODELS = ("TS0215A_sos", "HS1EB", "WXKG11LM", "SNZB-01")
RADAR_MODELS = ("HS2FD-EF1-3.0", "ZY-M100-S_1", "MIR-HE200-TY", "SNZB-06P")
SMOKE_MODELS = ("HS1SA", "JTYJ-GD-01LM/BW")
ABILITY_WEIGHTS = (0.08, 0.27, 0.32, 0.25, 0.08)
DEMENTIA_P = (0.0, 0.04, 0.15, 0.30, 0.35)
COUPLE_P = 0.15

# By ability level 0..4: movement factor (PIR rate, and 1/pace for how long chores take),
# chance of going out on a given day, chance of a nap, chance a day starts an illness.
PACE = (1.15, 1.0, 0.85, 0.65, 0.45)
OUTING_P = (0.85, 0.7, 0.45, 0.15, 0.03)
NAP_P = (0.35, 0.45, 0.6, 0.7, 0.85)
ILL_P = (0.008, 0.012, 0.018, 0.025, 0.03)
# Home-care visits (上门护理) per day for the more dependent.
CARER_VISITS = (0, 0, 1, 1, 2)
CARER_P = (0.0, 0.0, 0.1, 0.5, 1.0)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁宋谢唐韩冯于董萧程曹袁邓许傅沈曾彭吕"
_WOMEN = ("秀英", "桂英", "玉兰", "秀兰", "凤英", "淑珍", "玉珍", "兰英", "金凤", "桂兰", "素芬",
          "翠英", "美华", "丽华", "月娥", "惠珍")
_MEN = ("建国", "国华", "德明", "志强", "福生", "根宝", "文华", "振华", "永康", "德胜", "国强",
        "金海", "长生", "荣发", "家明", "树林")
_DISTRICTS = ("静安", "徐汇", "长宁", "普陀", "虹口", "杨浦", "黄浦", "闵行", "宝山", "浦东新")
_ROADS = ("延安西", "武宁", "曹杨", "长寿", "江浦", "控江", "凉城", "天山", "田林", "漕溪", "东明",
          "灵石", "共和新", "彭浦", "中山北")
_OTHER_CONDITIONS = (("hypertension", 0.55), ("diabetes", 0.22), ("copd", 0.08),
                     ("parkinson", 0.05), ("stroke", 0.1), ("arthritis", 0.3))


@dataclass(frozen=True, slots=True)
class ResidentProfile:
    """One person's rhythm, as the simulation draws their days from it."""

    name: str
    age: int
    sex: str  # "f" | "m"
    ability_level: int  # GB/T 42195: 0 independent … 4 fully dependent
    conditions: tuple[str, ...]
    wake_h: float  # mean local hour of getting up on a weekday
    wake_sd_h: float
    weekend_shift_h: float  # how much later on Saturday and Sunday
    bed_h: float  # mean local hour of going to bed
    bed_sd_h: float
    night_toilet: float  # mean toilet visits per night (0-3 drawn each night)
    outing_p: float  # chance of going out on a given (healthy) day
    nap_p: float  # chance of an after-lunch nap
    ill_p: float  # chance that a day starts an illness spell (1-4 days)
    pace: float  # movement factor: PIR hit rates scale with it, chores take 1/pace longer
    fidget_s: float  # mean seconds between movements a PIR sees while sitting

    @property
    def dementia(self) -> bool:
        """Whether the resident has dementia (night wandering is possible)."""
        return "dementia" in self.conditions


@dataclass(frozen=True, slots=True)
class DeviceTraits:
    """How one installed device behaves, beyond what its model says."""

    battery_pct: float | None  # at the start of a simulation; None: mains powered
    drain_pct_per_day: float
    lqi: int  # typical Zigbee link quality at the gateway
    report_s: tuple[float, float] | None  # periodic report interval range; None: on change only
    hold_s: float = 0.0  # radar: how long presence lasts after the person has left
    ghost_per_day: float = 0.0  # spurious detections (sunlight, curtains, a fan)


@dataclass(frozen=True, slots=True)
class SimHome:
    """A simulated home: its gateway config, residents and the hardware's habits."""

    index: int
    gateway_id: str
    home_id: str
    base_topic: str
    config_text: str
    residents: tuple[ResidentProfile, ...]
    devices: dict[str, DeviceTraits]  # by device id, every configured device
    pir_sees_bed: bool  # the bedroom PIR sees a sleeper turning over
    transit_p: float  # a walk between two rooms passes under the living-room PIR
    family_visit_p: float  # chance of a family visit on a weekday afternoon (x2 weekends)
    carer_visits: int  # home-care visits on a day with one (0-2)
    carer_p: float  # chance of a carer day



def devices_in(config_text: str) -> list[tuple[Device, Model, str | None]]:
    """The `[[devices]]` of a gateway config written by `make_home`: device, catalogue model,
    the resident it belongs to. Read from the TOML itself: the simulator knows devices and
    the catalogue, not the gateway (ARCHITECTURE.md)."""
    data = tomllib.loads(config_text)
    home = data["home"]["id"]
    out = []
    for d in data.get("devices", []):
        model = find_model(d["model"])
        if model is None:
            raise ValueError(f"device {d['id']}: unknown model {d['model']!r}")
        out.append((Device(id=d["id"], home=home, source=d["source"], topic=d["topic"],
                           model=d["model"], room=d.get("room"), name=d.get("name")),
                    model, d.get("resident")))
    return out


def _q(value: str) -> str:
    """A TOML basic string."""
    return json.dumps(value, ensure_ascii=False)


def report_interval(model_id: str) -> tuple[float, float] | None:
    """How often a healthy device of this model reports, as a (min, max) range in seconds."""
    model = find_model(model_id)
    assert model is not None, model_id
    every = model.supervision_s
    if every is None:
        return None
    if every in (AQARA_HEARTBEAT_S, NATIVE_HEARTBEAT_S):
        return (50 * 60.0, 60 * 60.0)  # Aqara heartbeat: every 50-60 min
    return (0.55 * every, 0.95 * every)  # a battery report inside the configured maximum


def draw_resident(rng: np.random.Generator, sex: str, level: int | None = None,
                  taken: set[str] | None = None) -> ResidentProfile:
    """A resident's rhythm drawn for a home: `level` (GB/T 42195) or drawn as the homes are;
    a name not in `taken`."""
    if level is None:
        level = int(rng.choice(5, p=ABILITY_WEIGHTS))
    given = _WOMEN if sex == "f" else _MEN
    name = ""
    while not name or (taken and name in taken):
        name = str(rng.choice(list(_SURNAMES))) + str(rng.choice(given))
    age = int(np.clip(rng.normal(74 + 3.5 * level, 6.0), 65, 95))
    conditions = [c for c, p in _OTHER_CONDITIONS if rng.random() < p]
    if rng.random() < DEMENTIA_P[level]:
        conditions.insert(0, "dementia")
    # Older and more dependent: up a little later, more toilet visits at night.
    wake = float(np.clip(rng.normal(6.3 + 0.2 * level, 0.55), 5.4, 8.0))
    bed = float(np.clip(rng.normal(22.1 - 0.1 * level, 0.5), 21.0, 23.3))
    return ResidentProfile(
        name=name, age=age, sex=sex, ability_level=level, conditions=tuple(conditions),
        wake_h=round(wake, 2), wake_sd_h=round(float(rng.uniform(0.2, 0.45)), 2),
        weekend_shift_h=round(float(rng.uniform(0.0, 0.6)), 2),
        bed_h=round(bed, 2), bed_sd_h=round(float(rng.uniform(0.25, 0.5)), 2),
        night_toilet=round(float(np.clip(rng.normal(0.3 + 0.03 * (age - 65) + 0.15 * level,
                                                   0.3), 0.2, 2.2)), 2),
        outing_p=round(float(np.clip(OUTING_P[level] + rng.normal(0, 0.08), 0.0, 0.95)), 2),
        nap_p=NAP_P[level], ill_p=ILL_P[level],
        pace=round(float(PACE[level] * rng.uniform(0.9, 1.1)), 3),
        fidget_s=round(float(rng.uniform(240.0, 720.0) * (1 + 0.25 * level)), 0))


def make_home(index: int, rng: np.random.Generator) -> SimHome:
    """Draw simulated home number `index` (unique ids and topics per index)."""
    tag = f"sim-{index}"
    couple = rng.random() < COUPLE_P
    first_sex = "f" if rng.random() < 0.62 else "m"  # women outlive men: most live alone
    residents = [draw_resident(rng, first_sex)]
    if couple:
        residents.append(draw_resident(rng, "m" if first_sex == "f" else "f",
                                   taken={residents[0].name}))
    level = max(r.ability_level for r in residents)

    devices: list[dict[str, Any]] = []
    traits: dict[str, DeviceTraits] = {}

    def add(dev_id: str, model: str, room: str | None, *, resident: str | None = None,
            name: str | None = None, ghost: float = 0.0, hold: float = 0.0) -> None:
        m = find_model(model)
        assert m is not None, model
        native = m.source == "anxin"
        topic = f"anxin/{tag}/sensor/{dev_id}" if native else f"{tag}/{dev_id}"
        devices.append({"id": dev_id, "source": m.source, "topic": topic, "model": model,
                        "room": room, "name": name, "resident": resident})
        battery = m.power == "battery"
        traits[dev_id] = DeviceTraits(
            battery_pct=float(rng.integers(62, 101)) if battery else None,
            drain_pct_per_day=round(float(rng.uniform(0.05, 0.35)), 3) if battery else 0.0,
            lqi=int(rng.integers(70, 200)) if not native else 0,
            report_s=report_interval(model), hold_s=hold, ghost_per_day=ghost)

    add("door-entrance", "MCCGQ11LM", "entrance", name="入户门")
    for room, zh in (("living_room", "客厅"), ("bedroom", "卧室"), ("kitchen", "厨房")):
        ghost = float(rng.choice([0.0, 0.05, 0.2], p=[0.5, 0.35, 0.15]))
        add(f"pir-{room.split('_')[0]}", "RTCGQ11LM", room, name=f"{zh}人体传感器",
            ghost=ghost)
    bath_pir = rng.random() < 0.85
    if bath_pir:
        add("pir-bathroom", "RTCGQ11LM", "bathroom", name="卫生间人体传感器")
    if rng.random() < (0.35 if bath_pir else 0.7):
        add("radar-bathroom", str(rng.choice(RADAR_MODELS)), "bathroom", name="卫生间雷达",
            hold=float(rng.uniform(10.0, 60.0)),
            ghost=float(rng.choice([0.0, 0.1, 0.4], p=[0.5, 0.35, 0.15])))
    for n, r in enumerate(residents, 1):
        if rng.random() < 0.3:
            add(f"bed-{n}", "anxin-bed-sensor", "bedroom", resident=r.name,
                name=f"{r.name}的床垫")
    add("sos-bedside", str(rng.choice(SOS_MODELS)), "bedroom", name="床头紧急按钮")
    if rng.random() < 0.3:
        add("sos-bathroom", str(rng.choice(SOS_MODELS)), "bathroom", name="卫生间紧急按钮")
    if rng.random() < 0.8:
        add("smoke-kitchen", str(rng.choice(SMOKE_MODELS)), "kitchen", name="厨房烟感")
    if rng.random() < 0.4:
        add("gas-kitchen", "JT-BZ-01AQ/A", "kitchen", name="厨房燃气")
    if rng.random() < 0.3:
        add("leak-bathroom", "SJCGQ11LM", "bathroom", name="卫生间水浸")

    address = (f"上海市{rng.choice(_DISTRICTS)}区{rng.choice(_ROADS)}路 "
               f"{rng.integers(1, 900)} 弄 {rng.integers(1, 40)} 号 "
               f"{rng.integers(1, 7)}0{rng.integers(1, 4)} 室")
    lines = [
        f"# Simulated home {index} (simulator/homes.py): {len(residents)} resident(s), "
        f"{len(devices)} devices.",
        "",
        "[gateway]",
        f"id = {_q('gw-' + tag)}",
        f"timezone = {_q(TIMEZONE)}",
        f"data_dir = {_q('./var/' + tag)}",
        "",
        "[mqtt]",
        'url = "mqtt://127.0.0.1:1883"',
        f"zigbee2mqtt_base_topic = {_q(tag)}",
        f"native_base_topic = {_q(f'anxin/{tag}/sensor')}",
        "",
        "[home]",
        f"id = {_q('home-' + tag)}",
        f"address = {_q(address)}",
    ]
    for r in residents:
        lines += ["", "[[home.residents]]", f"name = {_q(r.name)}", f"age = {r.age}",
                  f"ability_level = {r.ability_level}",
                  f"conditions = [{', '.join(_q(c) for c in r.conditions)}]"]
    for d in devices:
        lines += ["", "[[devices]]"]
        lines += [f"{k} = {_q(v)}" for k, v in d.items() if v is not None]
    text = "\n".join(lines) + "\n"

    return SimHome(
        index=index, gateway_id=f"gw-{tag}", home_id=f"home-{tag}", base_topic=tag,
        config_text=text, residents=tuple(residents), devices=traits,
        pir_sees_bed=bool(rng.random() < 0.45),
        transit_p=round(float(rng.uniform(0.4, 0.9)), 2),
        family_visit_p=round(float(rng.uniform(0.05, 0.3)), 2),
        carer_visits=CARER_VISITS[level], carer_p=CARER_P[level])
