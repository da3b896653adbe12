"""The resident model: seeded days of sensor events in simulated homes, with ground-truth
incidents, published as each model publishes and read back by the real adapters."""

from __future__ import annotations

import dataclasses
import itertools
import time
import tomllib
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detectors.core import Core
from devices.adapters import ADAPTERS
from devices.catalogue import AQARA_HEARTBEAT_S, find_model
from devices.observation import check_value
from gateway.config import parse
from gateway.coreconfig import core_config, watched_devices
from simulator.homes import ROOMS, SimHome, make_home
from simulator.resident import (
    Event,
    IncidentSpec,
    plan_incidents,
    simulate,
    to_messages,
    to_observations,
)

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, tzinfo=TZ).timestamp()  # a Monday, local midnight
DAY = 86400.0
HOMES = [make_home(i, np.random.default_rng(i)) for i in range(120)]
ACTIVITY_KINDS = ("motion", "contact", "presence", "in_bed", "sos")


def config(home: SimHome):
    """The home's config, loaded as the gateway loads it."""
    return parse(tomllib.loads(home.config_text), source=f"simulated home {home.index}")


def first_home(pred):
    return next(h for h in HOMES if pred(h))


SINGLE = first_home(lambda h: len(h.residents) == 1 and h.residents[0].outing_p >= 0.6
                    and "pir-bathroom" in h.devices)
COUPLE = first_home(lambda h: len(h.residents) == 2)
DEMENTIA = first_home(lambda h: any(r.dementia for r in h.residents))
RADAR = first_home(lambda h: "radar-bathroom" in h.devices and len(h.residents) == 1)
BED = first_home(lambda h: any(d.startswith("bed-") for d in h.devices))


def run(home, days=7, seed=1, incidents=None):
    return simulate(home, START, days, np.random.default_rng(seed), incidents)


def local(t: float) -> datetime:
    return datetime.fromtimestamp(t, TZ)


def is_activity(e: Event) -> bool:
    """Movement or a change a person makes (a radar's or PIR's 'nobody' is not)."""
    return e.kind in ACTIVITY_KINDS and e.value is not False


# --- homes -------------------------------------------------------------------------------


def test_every_home_config_loads_with_its_rooms_devices_and_residents():
    gateways, homes_, topics = set(), set(), set()
    for h in HOMES:
        cfg = parse(tomllib.loads(h.config_text), base_dir="/tmp")
        assert cfg.gateway.id == h.gateway_id and cfg.home.id == h.home_id
        assert cfg.gateway.timezone == "Asia/Shanghai"
        assert cfg.mqtt.zigbee2mqtt_base_topic == h.base_topic == f"sim-{h.index}"
        gateways.add(cfg.gateway.id)
        homes_.add(cfg.home.id)
        models = {d.id: d.model for d in cfg.devices}
        rooms = {d.id: d.room for d in cfg.devices}
        for pir in ("pir-living", "pir-bedroom", "pir-kitchen"):
            assert models[pir] == "RTCGQ11LM"
        assert models["door-entrance"] == "MCCGQ11LM" and rooms["door-entrance"] == "entrance"
        assert any("sos" in find_model(m).classes for m in models.values())
        assert set(rooms.values()) <= set(ROOMS)
        assert set(models) == set(h.devices)
        for d in cfg.devices:
            base = cfg.mqtt.native_base_topic if d.source == "anxin" else h.base_topic
            assert d.topic.startswith(base + "/")
            topics.add(d.topic)
            if "presence" in find_model(d.model).classes:
                assert d.room == "bathroom"
            if d.model == "anxin-bed-sensor":
                assert d.room == "bedroom" and d.resident in {r.name for r in h.residents}
        assert [r.name for r in cfg.home.residents] == [r.name for r in h.residents]
        assert len({r.name for r in h.residents}) == len(h.residents)
        for r, rc in zip(h.residents, cfg.home.residents, strict=True):
            assert rc.ability_level == r.ability_level in range(5)
            assert tuple(rc.conditions) == r.conditions
    assert len(gateways) == len(homes_) == len(HOMES)
    assert len(topics) == sum(len(h.devices) for h in HOMES)  # no two homes share a topic


def test_homes_vary_as_real_installations_do():
    n = len(HOMES)
    couples = sum(len(h.residents) == 2 for h in HOMES)
    levels = Counter(r.ability_level for h in HOMES for r in h.residents)
    assert 0.07 < couples / n < 0.25
    assert set(levels) == set(range(5))
    assert levels[1] + levels[2] + levels[3] > 0.7 * sum(levels.values())
    assert 0.05 < sum(any(r.dementia for r in h.residents) for h in HOMES) / n < 0.35
    assert 0.7 < sum("pir-bathroom" in h.devices for h in HOMES) / n < 0.95
    assert 0.2 < sum("radar-bathroom" in h.devices for h in HOMES) / n < 0.6
    assert 0.15 < sum(any(d.startswith("bed-") for d in h.devices) for h in HOMES) / n < 0.5
    radar_models = {m.model for h in HOMES for d, m in watched_devices(config(h))
                    if d.id == "radar-bathroom"}
    assert len(radar_models) >= 3


def test_same_seed_same_home():
    a = make_home(5, np.random.default_rng(5))
    assert a == make_home(5, np.random.default_rng(5))
    assert a != make_home(5, np.random.default_rng(6))


# --- determinism and validity --------------------------------------------------------------


def test_same_seed_same_output_and_another_seed_another():
    specs = [IncidentSpec("long_lie", 2), IncidentSpec("device_failure", 4)]
    a, b = run(COUPLE, 7, 3, specs), run(COUPLE, 7, 3, specs)
    assert a.events == b.events and a.causes == b.causes
    assert a.incidents == b.incidents and a.diary == b.diary
    assert to_messages(COUPLE, a.events, start=START) == to_messages(COUPLE, b.events,
                                                                     start=START)
    assert run(COUPLE, 7, 4, specs).events != a.events


@pytest.mark.parametrize("home", [SINGLE, COUPLE, DEMENTIA, RADAR, BED],
                         ids=["single", "couple", "dementia", "radar", "bed"])
def test_events_ordered_on_configured_devices_with_valid_kinds_and_values(home):
    sim = run(home, 14, 2, plan_incidents(home, 14, np.random.default_rng(9), per_month=6))
    devices = {d.id: m for d, m in watched_devices(config(home))}
    assert len(sim.causes) == len(sim.events) > 14 * 100
    times = [e.t for e in sim.events]
    assert times == sorted(times) and times[0] >= START and times[-1] < START + 14 * DAY
    last: dict[tuple[str, str], object] = {}
    for e in sim.events:
        model = devices[e.device]
        assert model.expose_for_kind(e.kind) is not None, e
        assert check_value(e.kind, e.value) == e.value and type(e.value) is not np.bool_
        if e.kind in ("contact", "presence", "in_bed"):  # held states: only changes
            assert last.get((e.device, e.kind)) != e.value, e
            last[e.device, e.kind] = e.value
        if e.kind == "motion":
            assert e.value is True


def test_pir_hits_respect_the_blind_time():
    for home in (SINGLE, COUPLE, BED):
        sim = run(home, 14, 5)
        hits: dict[str, list[float]] = {}
        for e in sim.events:
            if e.kind == "motion":
                hits.setdefault(e.device, []).append(e.t)
        assert set(hits) >= {"pir-living", "pir-bedroom", "pir-kitchen"}
        for ts in hits.values():
            assert min(np.diff(ts)) >= 55.0


def test_battery_devices_report_on_their_own_every_50_to_60_minutes():
    sim = run(SINGLE, 3)
    for dev, model in watched_devices(config(SINGLE)):
        reports = [e.t for e in sim.events if e.device == dev.id and e.kind == "battery"]
        if model.supervision_s == AQARA_HEARTBEAT_S:
            gaps = np.diff(reports)
            assert len(reports) >= 3 * 24 and gaps.min() >= 3000 and gaps.max() <= 3600
        elif model.power == "mains":
            assert not reports


# --- a normal week -------------------------------------------------------------------------


def day_windows(day: int, a_h: float, b_h: float) -> tuple[float, float]:
    return START + day * DAY + a_h * 3600, START + day * DAY + b_h * 3600


@pytest.mark.parametrize("home", [SINGLE, COUPLE, BED], ids=["single", "couple", "bed"])
def test_a_normal_week_has_sleep_meals_outings_and_night_toilet_visits(home):
    sim = run(home, 7, 11)
    ev = sim.events
    motion = [e for e in ev if e.kind == "motion"]
    assert not sim.incidents

    # Sleep: every night a long stretch with nobody moving outside the bedroom, and the
    # diary's times are a plausible bedtime and wake-up.
    for note in sim.diary:
        assert 20.5 <= local(note.bed).hour + local(note.bed).minute / 60 <= 23.6
        assert 5.0 <= local(note.wake).hour + local(note.wake).minute / 60 <= 9.5
    quiet = []
    for night in range(1, 7):
        a, b = day_windows(night, 0.0, 5.0)
        out = [a] + [e.t for e in motion if a <= e.t < b and e.device != "pir-bedroom"] + [b]
        quiet.append(max(np.diff(out)) / 3600)
    assert min(quiet) >= 1.0 and sorted(quiet)[1] >= 1.5, quiet  # a couple: two bladders

    # Meals: the kitchen is busy in the breakfast, lunch and dinner windows.
    kitchen = [e.t for e in motion if e.device == "pir-kitchen"]
    fed = 0
    for d in range(7):
        wake = min(n.wake for n in sim.diary if n.day == d)
        meals = [(wake, wake + 3 * 3600), day_windows(d, 10.5, 13.75), day_windows(d, 16.5, 20)]
        fed += sum(sum(a <= t < b for t in kitchen) >= 3 for a, b in meals)
    assert fed >= 19  # of 21: a lunch may be eaten out

    # Outings: the door opens and shuts 10-40 s later (a delivery at the door: 2 min), and
    # an active resident goes out.
    door = [e for e in ev if e.kind == "contact"]
    assert [e.value for e in door] == ["open", "closed"] * (len(door) // 2)
    assert all(9 <= c.t - o.t <= 180 for o, c in zip(door[::2], door[1::2], strict=True))
    outings = sum(n.outings for n in sim.diary)
    assert outings >= int(max(r.outing_p for r in home.residents) * 7 / 3)
    assert len(door) >= 2 * outings

    # Night toilet visits: the bathroom is used in the nights the diary says (a sensor may
    # miss a short visit now and then).
    bath = [e.t for e in ev if e.kind in ("motion", "presence") and e.value is True
            and e.device.endswith("bathroom")]
    nights = seen = 0
    for n in sim.diary:
        wake = next((m.wake for m in sim.diary if m.day == n.day + 1 and m.resident ==
                     n.resident), sim.end)
        if n.night_toilet and wake < sim.end:
            nights += 1
            seen += any(n.bed + 1200 < t < wake - 600 for t in bath)
    assert seen >= nights - 1


def test_nights_have_toilet_visits():
    home = first_home(lambda h: len(h.residents) == 1 and h.residents[0].night_toilet >= 1.4)
    sim = run(home, 14, 2)
    visits = [n.night_toilet for n in sim.diary]
    assert max(visits) <= 3
    bath = [e.t for e in sim.events if e.kind in ("motion", "presence") and e.value is True
            and e.device.endswith("bathroom")]
    nights = sum(any(n.bed + 1200 < t < m.wake - 600 for t in bath)
                 for n, m in itertools.pairwise(sim.diary))
    assert nights >= 5  # of 13


def test_a_couple_is_two_people_at_once():
    sim = run(COUPLE, 7, 2)
    names = {r.name for r in COUPLE.residents}
    assert names <= set(sim.causes)
    # Both seen within the same hour many times: their days overlap, not alternate.
    hours = {n: {int((e.t - START) // 3600) for e, c in zip(sim.events, sim.causes,
                                                           strict=True) if c == n}
             for n in names}
    a, b = hours.values()
    assert len(a & b) > 7 * 8


def test_visitors_and_sos_presses_happen_now_and_then():
    causes: Counter[str] = Counter()
    sos = 0
    for home in HOMES[:60]:
        sim = run(home, 30, home.index)
        causes.update(set(sim.causes))
        sos += sum(e.kind == "sos" for e in sim.events)
    assert causes["visitor"] >= 10 and causes["carer"] >= 3 and causes["ghost"] >= 3
    assert 1 <= sos <= 35  # ~0.5% of resident-days


# --- incidents -----------------------------------------------------------------------------


def resident_activity(sim, name: str, a: float, b: float) -> list[Event]:
    return [e for e, c in zip(sim.events, sim.causes, strict=True)
            if c == name and a < e.t < b and is_activity(e)]


@pytest.mark.parametrize("home", [SINGLE, COUPLE, RADAR], ids=["single", "couple", "radar"])
def test_a_long_lie_leaves_no_activity_from_that_resident_until_found(home):
    sim = run(home, 10, 7, [IncidentSpec("long_lie", 2, hour=10.0, resident=0),
                            IncidentSpec("bathroom_collapse", 5, resident=0),
                            IncidentSpec("long_lie", 8, room="kitchen", resident=0)])
    name = home.residents[0].name
    assert [i.kind for i in sim.incidents] == ["long_lie", "bathroom_collapse", "long_lie"]
    for inc in sim.incidents:
        assert inc.resident == name and inc.end > inc.start
        assert not resident_activity(sim, name, inc.start, inc.end), inc
        # … and they were up and about just before, and are again after being found.
        assert resident_activity(sim, name, inc.start - 3600, inc.start)
        assert resident_activity(sim, name, inc.end, inc.end + DAY)
    first, collapse, kitchen = sim.incidents
    assert local(first.start).hour >= 10 and first.start < START + 3 * DAY
    assert collapse.room == "bathroom" and kitchen.room == "kitchen"
    if len(home.residents) == 1:  # alone: found only by someone coming in
        assert all(i.found_by in ("family", "visitor", "carer") for i in sim.incidents)
        for inc in sim.incidents:
            opens = [e for e in sim.events if e.kind == "contact" and e.value == "open"
                     and inc.end - 300 <= e.t <= inc.end]
            assert opens, "whoever finds them comes in through the door"


def test_a_radar_keeps_seeing_someone_collapsed_in_the_bathroom():
    sim = run(RADAR, 6, 3, [IncidentSpec("bathroom_collapse", 3, hour=9.0)])
    (inc,) = sim.incidents
    presence = [e for e in sim.events if e.device == "radar-bathroom" and e.kind == "presence"]
    before = [e for e in presence if e.t <= inc.start]
    assert before[-1].value is True
    assert not [e for e in presence if inc.start < e.t < inc.end]
    assert not [e for e, c in zip(sim.events, sim.causes, strict=True)
                if e.device == "pir-bathroom" and e.kind == "motion" and c != "ghost"
                and inc.start < e.t < inc.end]


def test_not_up_starts_at_the_usual_wake_time_and_stays_in_bed():
    sim = run(BED, 6, 4, [IncidentSpec("not_up", 2, resident=0)])
    (inc,) = sim.incidents
    name = BED.residents[0].name
    wake = next(n.wake for n in sim.diary if n.day == 2 and n.resident == name)
    assert inc.start == round(wake, 3) and inc.room == "bedroom"
    assert not resident_activity(sim, name, inc.start, inc.end)
    bed = next(d for d in BED.devices if d.startswith("bed-"))
    owner = parse(tomllib.loads(BED.config_text)).devices
    if next(d.resident for d in owner if d.id == bed) == name:
        in_bed = [e for e in sim.events if e.device == bed and e.kind == "in_bed"]
        assert [e.value for e in in_bed if e.t <= inc.start][-1] is True
        assert not [e for e in in_bed if inc.start < e.t < inc.end]


def test_night_wandering_opens_the_door_at_night_and_stays_out():
    r = next(i for i, p in enumerate(DEMENTIA.residents) if p.dementia)
    sim = run(DEMENTIA, 5, 6, [IncidentSpec("night_wandering", 2, resident=r)])
    (inc,) = sim.incidents
    assert local(inc.start).hour in (23, 0, 1, 2, 3, 4) and inc.end - inc.start >= 2 * 3600
    door = [e for e in sim.events if e.kind == "contact"]
    assert any(e.t == inc.start and e.value == "open" for e in door)
    name = DEMENTIA.residents[r].name
    assert [e.value for e in resident_activity(sim, name, inc.start, inc.end)] == ["closed"]
    assert any(e.t == inc.end and e.value == "open" for e in door)  # brought back
    with pytest.raises(ValueError, match="dementia"):
        run(first_home(lambda h: not any(p.dementia for p in h.residents)), 3, 1,
            [IncidentSpec("night_wandering", 1)])


def test_a_failed_device_publishes_nothing_until_replaced():
    sim = run(SINGLE, 6, 8, [IncidentSpec("device_failure", 2, hour=14.0,
                                          device="pir-living", duration_h=30)])
    (inc,) = sim.incidents
    assert inc.device == "pir-living" and inc.end - inc.start == pytest.approx(30 * 3600, abs=1)
    mine = [e for e in sim.events if e.device == "pir-living"]
    assert mine and not [e for e in mine if inc.start <= e.t < inc.end]
    assert (inc.end, "battery", 100) in {(e.t, e.kind, e.value) for e in mine}  # new battery
    topic = next(d.topic for d, _ in watched_devices(config(SINGLE)) if d.id == "pir-living")
    published = [t for t, tp, _ in to_messages(SINGLE, sim.events, start=START)
                 if tp.startswith(topic) and inc.start <= t < inc.end]
    # Only Zigbee2MQTT's own occupancy reset for a detection just before the battery died.
    assert all(t <= inc.start + 90 for t in published)
    # The resident lives on: the other rooms still see them.
    assert [e for e in sim.events if e.device == "pir-kitchen" and inc.start < e.t < inc.end]


def test_a_decline_slows_the_resident_over_weeks_and_is_labelled():
    days, begin = 42, 14
    normal = run(SINGLE, days, 4)
    worse = run(SINGLE, days, 4, [IncidentSpec("decline", begin, duration_h=14 * 24)])
    (inc,) = worse.incidents
    assert (inc.kind, inc.start, inc.end) == ("decline", START + begin * DAY, START + days * DAY)
    assert inc.resident == SINGLE.residents[0].name

    def motion(sim, a, b):
        return sum(1 for e in sim.events if e.kind == "motion" and e.value is True
                   and START + a * DAY <= e.t < START + b * DAY)

    def outings(sim, a, b):
        return sum(n.outings for n in sim.diary if a <= n.day < b)

    # the same life before it begins (the PIRs' own draws differ a little) …
    assert motion(worse, 0, begin) == pytest.approx(motion(normal, 0, begin), rel=0.02)
    assert [n.wake for n in worse.diary if n.day < begin] == [
        n.wake for n in normal.diary if n.day < begin]
    # … and at its worst: less movement, later up, no outings
    assert motion(worse, 28, 42) < 0.85 * motion(normal, 28, 42)
    assert outings(worse, 28, 42) < outings(normal, 28, 42) or outings(normal, 28, 42) == 0
    wake = {n.day: n.wake for n in worse.diary}
    usual = {n.day: n.wake for n in normal.diary}
    assert np.mean([wake[d] - usual[d] for d in range(28, 42)]) > 3600
    with pytest.raises(ValueError, match="under a day"):
        run(SINGLE, 20, 1, [IncidentSpec("decline", 3, duration_h=2)])


def test_incidents_are_checked():
    with pytest.raises(ValueError, match="unknown incident kind"):
        run(SINGLE, 3, 1, [IncidentSpec("fire", 1)])
    with pytest.raises(ValueError, match="outside the run"):
        run(SINGLE, 3, 1, [IncidentSpec("not_up", 3)])
    with pytest.raises(ValueError, match="midnight"):
        simulate(SINGLE, START + 3600, 3, np.random.default_rng(1))
    with pytest.raises(ValueError, match="an earlier incident"):
        run(SINGLE, 4, 1, [IncidentSpec("long_lie", 1, hour=10.0, duration_h=30),
                           IncidentSpec("not_up", 2)])


def test_plan_incidents_spreads_plausible_incidents_over_a_run():
    for home in HOMES[:20]:
        specs = plan_incidents(home, 60, np.random.default_rng(home.index), per_month=3)
        days = [s.day for s in specs]
        assert days == sorted(days) and all(b - a >= 2 for a, b in itertools.pairwise(days))
        for s in specs:
            if s.kind == "night_wandering":
                assert home.residents[s.resident].dementia
        sim = simulate(home, START, 60, np.random.default_rng(home.index), specs)
        assert len(sim.incidents) == len(specs)


# --- MQTT and the adapters -----------------------------------------------------------------


@pytest.mark.parametrize("home", [COUPLE, RADAR, BED], ids=["couple", "radar", "bed"])
def test_messages_read_by_the_real_adapters_give_back_the_events(home):
    sim = run(home, 4, 9, [IncidentSpec("device_failure", 1)])
    by_topic = {d.topic: (d, m) for d, m in watched_devices(config(home))}
    read = []
    for t, topic, payload in to_messages(home, sim.events, start=START):
        device, model = by_topic.get(topic) or by_topic[topic.rsplit("/", 1)[0]]
        read += ADAPTERS[device.source](device, model, topic, payload, t)
    # The fast path is the same as reading every message.
    assert to_observations(home, sim.events, start=START) == read
    seen = {(o.at, o.device, o.kind, o.value) for o in read}
    assert all(tuple(e) in seen for e in sim.events)
    # Anything else of an activity kind only repeats the state (a heartbeat's full state)
    # or is Zigbee2MQTT clearing a PIR's occupancy.
    events = {tuple(e) for e in sim.events}
    state: dict[tuple[str, str], object] = {}
    for o in read:
        key = (o.at, o.device, o.kind, o.value)
        if o.kind in ACTIVITY_KINDS and key not in events:
            assert o.value is False or state.get((o.device, o.kind)) == o.value \
                or o.at == START, o
        if o.kind != "motion" or o.value is True:
            state[o.device, o.kind] = o.value
    assert {o.kind for o in read} >= {"availability", "battery", "link_quality", "motion"}


def test_every_device_says_hello_with_its_state_at_the_start():
    sim = run(BED, 2, 1)
    msgs = to_messages(BED, sim.events, start=START)
    at_start = [(topic, payload) for t, topic, payload in msgs if t == START]
    topics = {d.topic for d, _ in watched_devices(config(BED))}
    assert {tp for tp, _ in at_start} == topics | {f"{tp}/availability" for tp in topics}
    bed = next(d for d, _ in watched_devices(config(BED)) if d.model == "anxin-bed-sensor")
    hello = [p for tp, p in at_start if tp == bed.topic]
    assert b'"in_bed": true' in hello[0]  # midnight: in bed since the evening before


# --- the detectors see it --------------------------------------------------------------------


def test_the_detection_core_finds_a_long_lie():
    # A resident who seldom goes out: a fall just after coming home looks like an empty
    # home to the activity detector (the door shut, nothing moving inside).
    home = first_home(lambda h: len(h.residents) == 1 and h.residents[0].outing_p < 0.2)
    sim = run(home, 6, 12, [IncidentSpec("long_lie", 3, hour=9.5, duration_h=11)])
    (inc,) = sim.incidents
    found = Core(core_config(config(home))).replay(
        to_observations(home, sim.events, start=START), until=sim.end)
    assert [f for f in found if f.detector == "activity" and inc.start < f.at < inc.end]


# --- speed -----------------------------------------------------------------------------------


def test_generation_speed(capsys):
    """Measured, not asserted: 50 homes x 60 days must stay well under 30 s."""
    sims = 0.0
    obs = 0.0
    n_events = n_obs = 0
    homes = HOMES[:6]
    for home in homes:
        t0 = time.perf_counter()
        sim = run(home, 60, home.index,
                  plan_incidents(home, 60, np.random.default_rng(home.index)))
        t1 = time.perf_counter()
        n_obs += len(to_observations(home, sim.events, start=START))
        obs += time.perf_counter() - t1
        sims += t1 - t0
        n_events += len(sim.events)
    per_home = (sims + obs) / len(homes)
    with capsys.disabled():
        print(f"\n  resident model, 60 days per home (mean of {len(homes)}): simulate "
              f"{sims / len(homes) * 1000:.0f} ms, to_observations {obs / len(homes) * 1000:.0f}"
              f" ms; {n_events / len(homes) / 60:.0f} events/day, "
              f"{n_obs / len(homes) / 60:.0f} observations/day; 50 homes x 60 days ~ "
              f"{50 * per_home:.1f} s")


def test_simulation_is_a_plain_value():
    sim = run(SINGLE, 2, 1)
    assert dataclasses.is_dataclass(sim)
    assert all(isinstance(e, Event) and isinstance(e.t, float) for e in sim.events)
    assert all(find_model(m.model) for _, m in watched_devices(config(SINGLE)))
