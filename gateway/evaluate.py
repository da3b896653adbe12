"""`anxin eval`: how well the behavioural detectors catch the quiet emergencies, measured.

Simulated homes (simulator/homes.py) live simulated days (simulator/resident.py) with
incidents whose true start is known; their sensor messages go through the real adapters and
the detection core on a virtual clock (`Core.replay`), configured exactly as the live gateway
would be (gateway/coreconfig.py). Each night at 03:00 the home's baseline is learned again
from what the gateway would have stored (detectors/baseline.py), as the live gateway does.

An incident is **detected** when a finding of a matching kind (`MATCH`) comes between its
start and the moment the resident was found; the **delay** is from the start, and **due** is
when the home's rules (its limits that day) were due to fire. Recall counts the incidents
that outlasted their due time with the resident alone; those found by people before the rules
were due, and those with someone else moving about the home (a partner's fall is not visible
in whole-home activity while the other moves), are reported apart. Every behavioural finding
that falls in no incident's window is a **false alert**. The figures per detector:
incidents, detected, recall, median and p95 delay, median due, false alerts per home-month.
"""

from __future__ import annotations

import bisect
import time
import tomllib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from detectors import baseline, routine
from detectors.activity import BATHROOMS, ActivityConfig, spent
from detectors.core import Core
from detectors.finding import Finding
from devices.observation import Observation
from gateway.config import parse
from gateway.coreconfig import core_config
from simulator.homes import make_home
from simulator.resident import (
    DECLINE_RAMP_DAYS,
    Incident,
    IncidentSpec,
    plan_incidents,
    simulate,
    to_observations,
)

# incident kind -> the findings that count as catching it: for a person down, any alert that
# has the centre call the home while it lasts (help is on its way, whatever the rule's name)
_DOWN = frozenset({"inactivity", "bathroom_overstay", "not_up", "bed_exit", "not_returned",
                   "still_in_bed"})
MATCH: dict[str, frozenset[str]] = {
    "long_lie": _DOWN,
    "bathroom_collapse": _DOWN,
    "not_up": _DOWN,
    "night_wandering": frozenset({"night_wandering"}),
    "device_failure": frozenset({"offline"}),
    "decline": frozenset({"routine_deviation"}),
}
# Findings about the resident (the ones that call the hotline for nothing if wrong).
BEHAVIOURAL = frozenset({"inactivity", "bathroom_overstay", "not_up", "bed_exit",
                         "night_wandering", "missed_checkin", "not_returned",
                         "routine_deviation", "still_in_bed",
                         # signal-level findings, should a simulated bed report set one off
                         "no_breathing", "bradycardia", "tachycardia", "bradypnoea",
                         "tachypnoea"})
# A slow decline is staged in this share of the homes whose run is long enough for the
# routine detector to know the home first (its reference month) and the decline to show.
DECLINE_SHARE = 0.25
DECLINE_FIRST_DAY = routine.MIN_REFERENCE_DAYS + routine.SUSTAINED_DAYS + 11  # day 28
DECLINE_MIN_LEFT = 21  # days of the run left after it begins
LEARN_HOUR = 3
TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, tzinfo=TZ).timestamp()  # a Monday


@dataclass(frozen=True, slots=True)
class HomeResult:
    """One simulated home: its incidents, what caught each, and the false alerts."""

    index: int
    days: int
    incidents: list[dict[str, Any]]
    false_alerts: list[dict[str, Any]]
    observations: int


def _replay_learning(core: Core, observations: list[Observation], act: ActivityConfig,
                     start: float, end: float, tz: ZoneInfo,
                     emergencies: list[tuple[float, float]],
                     configs: list[tuple[float, ActivityConfig]]) -> list[Finding]:
    """Replay day by day, learning the baseline each night as the gateway does (from what
    came before that night only: `learn` reads nothing after its `now`). The emergencies
    an operator closed as real are left out of what is learned, as the gateway leaves out
    alerts closed as real: a long lie is not a normal afternoon."""
    found: list[Finding] = []
    day_s = 86400.0
    i, n = 0, len(observations)
    history = baseline.history(observations, act)
    night = start + LEARN_HOUR * 3600.0
    raised: float | None = None
    while night <= end:
        j = i
        while j < n and observations[j].at < night:
            j += 1
        found += core.replay(observations[i:j], until=night - 1.0) if j > i else []
        i = j
        history.outages = [(a, b) for a, b in emergencies if a < night]
        _, care = routine.assess(history, night, tz, act.home, raised)
        if care is not None:
            found.append(care)
            raised = night
        b = baseline.learn(history, act.limits_s, act.wake_by_h, night, tz,
                           act.bathroom_limit_s)
        if b.spells:
            core.cfg = replace(core.cfg, activity=replace(
                core.cfg.activity, limits_s=b.limits_s, limits_source=b.source,
                wake_by_h=b.wake_by_h or act.wake_by_h,
                bathroom_limit_s=b.bathroom_limit_s or act.bathroom_limit_s,
                sleep_from_h=b.sleep_from_h or act.sleep_from_h))
            configs.append((night, core.cfg.activity))
        night += day_s
    found += core.replay(observations[i:], until=end)
    return found


def evaluate_home(index: int, days: int, seed: int, *, learn: bool = True) -> HomeResult:
    """Simulate, replay and score one home."""
    rng = np.random.default_rng([seed, index])
    home = make_home(index, rng)
    cfg = parse(tomllib.loads(home.config_text))
    tz = ZoneInfo(cfg.gateway.timezone)
    specs = plan_incidents(home, days, rng) + _decline(index, days, seed)
    sim = simulate(home, START, days, rng, specs)
    observations = to_observations(home, sim.events, start=START)
    core = Core(core_config(cfg))
    end = START + days * 86400.0
    configs: list[tuple[float, ActivityConfig]] = [(START, core.cfg.activity)]
    if learn:
        real = [(i.start, i.end) for i in sim.incidents
                if i.kind not in ("device_failure", "decline")]
        failures = [(i.start, i.end) for i in sim.incidents if i.kind == "device_failure"]
        found = _replay_learning(core, observations, core.cfg.activity, START, end, tz,
                                 real + failures, configs)
    else:
        found = core.replay(observations, until=end)
    incidents = []
    claimed: set[int] = set()
    times = [e.t for e in sim.events]
    for inc in sim.incidents:
        # Someone else moving about at home (a partner, a visitor) before the resident was
        # found: whole-home activity cannot single out one person's fall (a wearable can),
        # and usually that person finds them. Scored apart from the incidents of people alone.
        lo, hi = bisect.bisect_left(times, inc.start), bisect.bisect_left(times, inc.end - 60)
        others = any(c not in (inc.resident, "ghost", "device", "rescuer")
                     and sim.events[k].kind not in ("battery",)
                     for k, c in zip(range(lo, hi), sim.causes[lo:hi], strict=True))
        hits = [(k, f) for k, f in enumerate(found)
                if f.event in MATCH[inc.kind] and inc.start <= f.at <= inc.end
                and (f.device in (None, inc.device) or inc.kind != "device_failure")]
        claimed |= {k for k, f in enumerate(found) if inc.start <= f.at <= _aftermath(inc)
                    and (inc.kind != "decline" or f.event in MATCH["decline"])}
        first = min(hits, key=lambda kf: kf[1].at) if hits else None
        act = next(c for t, c in reversed(configs) if t <= inc.start)
        due = _due(inc.kind, inc.start, inc.room, act)
        if inc.kind == "decline":  # a partner's days hide one person's slow decline
            others = len(home.residents) > 1
        incidents.append({"kind": inc.kind, "start": inc.start, "room": inc.room,
                          "alone": inc.kind == "device_failure" or not others,
                          # found by people before any rule was due: nothing to catch
                          "outlasted_limit": inc.end >= due + 120.0, "due_s": due - inc.start,
                          "detected": first is not None,
                          "by": first[1].event if first else None,
                          "delay_s": first[1].at - inc.start if first else None})
    ill = {(START + n.day * 86400.0) // 86400.0 for n in sim.diary if n.ill}
    false = [{"event": f.event, "at": f.at, "room": f.room, "severity": f.severity,
              "evidence": f.evidence,
              # a care call about days the simulation made someone ill is not for nothing
              "during_illness": f.event == "routine_deviation" and any(
                  (f.at - back * 86400.0) // 86400.0 in ill for back in range(1, 5))}
             for k, f in enumerate(found) if f.event in BEHAVIOURAL and k not in claimed]
    return HomeResult(index, days, incidents, false, len(observations))


def _aftermath(inc: Incident) -> float:
    """Until when findings belong to an incident: an hour after the resident was found, or —
    found after 15:00, when the simulation has them rest in bed until the next morning — to
    09:00 the next day (the home then is not normal living: the finder leaves the resident in
    bed, the home looks empty, and a check call that evening is no false alarm)."""
    if inc.kind in ("decline", "device_failure"):
        return inc.end + 3600.0
    found = datetime.fromtimestamp(inc.end, TZ)
    if found.hour < 15:
        return inc.end + 3600.0
    return (found.replace(hour=9, minute=0, second=0, microsecond=0)
            + timedelta(days=1)).timestamp()


def _decline(index: int, days: int, seed: int) -> list[IncidentSpec]:
    """A slow decline for some homes, drawn apart from the other incidents (their draws, and
    so the figures for them, stay as they were)."""
    last = days - DECLINE_MIN_LEFT
    rng = np.random.default_rng([seed, index, 7])
    if last < DECLINE_FIRST_DAY or rng.random() >= DECLINE_SHARE:
        return []
    first = int(rng.integers(DECLINE_FIRST_DAY, last + 1))
    ramp_days = float(rng.uniform(*DECLINE_RAMP_DAYS))
    return [IncidentSpec("decline", first, resident=0, duration_h=ramp_days * 24.0)]


def _due(kind: str, start: float, room: str | None, act: ActivityConfig) -> float:
    """When the rules configured for this home were due to catch an incident that began at
    `start`: the inactivity budget spent, the bathroom limit, the time to be up, the wait
    for a return; a device offline after two missed reports (supervision)."""
    if kind == "night_wandering":
        return start + act.wander_return_s
    if kind == "decline":
        return start
    if kind == "device_failure":
        return start + 2 * 3600.0 + 300.0
    watched = any((r or "").lower() in BATHROOMS for r in act.sensors.values())
    if watched and (kind == "bathroom_collapse" or (room or "") in BATHROOMS):
        return start + act.bathroom_limit()
    if kind == "not_up":
        local = datetime.fromtimestamp(start, act.tz)
        up_by = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() \
            + act.wake_by_h * 3600.0
        return max(start, up_by)
    t = start
    while spent(start, t, act.limits_s, act.tz) < 1.0 - 1e-9:
        t += 60.0
    return t


def _quantile(values: list[float], q: float) -> float | None:
    return float(np.quantile(values, q)) if values else None


def evaluate(homes: int, days: int, seed: int, *, learn: bool = True,
             progress: Callable[[int, int, float], None] | None = None) -> dict[str, Any]:
    """Every home, then the figures per detector (the `--json` object)."""
    t0 = time.perf_counter()
    results = []
    for i in range(homes):
        results.append(evaluate_home(i, days, seed, learn=learn))
        if progress is not None:
            progress(i + 1, homes, time.perf_counter() - t0)
    wall = time.perf_counter() - t0
    home_months = homes * days / 30.0
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        for inc in r.incidents:
            by_kind[inc["kind"]].append(inc)
    false = Counter(f["event"] for r in results for f in r.false_alerts)
    detectors = {}
    for kind in MATCH:
        everyone = [i for i in by_kind.get(kind, []) if i["outlasted_limit"]]
        incs = [i for i in everyone if i["alone"]]
        shared = [i for i in everyone if not i["alone"]]
        delays = [i["delay_s"] / 60.0 for i in incs if i["detected"]]
        detectors[kind] = {
            "incidents": len(incs), "detected": len(delays),
            "recall": round(len(delays) / len(incs), 4) if incs else None,
            "found_by_people_first": sum(not i["outlasted_limit"]
                                         for i in by_kind.get(kind, [])),
            "median_due_min": _round(_quantile([i["due_s"] / 60.0 for i in incs], 0.5)),
            "others_home": len(shared),
            "others_home_detected": sum(i["detected"] for i in shared),
            "median_delay_min": _round(_quantile(delays, 0.5)),
            "p95_delay_min": _round(_quantile(delays, 0.95)),
            "caught_by": dict(Counter(i["by"] for i in incs if i["detected"]))}
    return {
        "homes": homes, "days": days, "seed": seed, "learned_baselines": learn,
        "home_months": round(home_months, 2), "wall_s": round(wall, 2),
        "observations": sum(r.observations for r in results),
        "detectors": detectors,
        "false_alerts": dict(false),
        "false_alerts_per_home_month": round(sum(false.values()) / home_months, 3),
        # care calls (severity 3: the operator phones) apart from alerts (severity 1-2)
        "false_urgent_alerts_per_home_month": round(sum(
            1 for r in results for f in r.false_alerts if f["severity"] <= 2) / home_months, 3),
        "false_alerts_per_home_month_by_detector": {
            k: round(v / home_months, 3) for k, v in sorted(false.items())},
        # routine care calls outside a staged decline, and of those the ones that came in
        # the days after the simulation made someone ill (a call worth making)
        "routine_calls_per_home_month": round(false["routine_deviation"] / home_months, 3),
        "routine_calls_after_illness": sum(1 for r in results for f in r.false_alerts
                                           if f["during_illness"]),
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def table(report: dict[str, Any]) -> str:
    """The report as the table a person reads."""
    lines = [f"{report['homes']} homes × {report['days']} days ({report['home_months']} "
             f"home-months, seed {report['seed']}, baselines "
             f"{'learned nightly' if report['learned_baselines'] else 'cold start only'}), "
             f"{report['observations']:,} observations in {report['wall_s']} s",
             f"{'incident (alone)':<18} {'n':>4} {'found':>6} {'recall':>7} {'median':>8} "
             f"{'p95':>8}  {'due':>7}  {'others home':>11}  {'people first':>12}  caught by"]
    for kind, d in report["detectors"].items():
        recall = "—" if d["recall"] is None else f"{d['recall']:.3f}"
        med = "—" if d["median_delay_min"] is None else f"{d['median_delay_min']:.0f} min"
        p95 = "—" if d["p95_delay_min"] is None else f"{d['p95_delay_min']:.0f} min"
        caught = ", ".join(f"{k} {v}" for k, v in d["caught_by"].items())
        shared = f"{d['others_home_detected']}/{d['others_home']}"
        due = "—" if d["median_due_min"] is None else f"{d['median_due_min']:.0f} min"
        lines.append(f"{kind:<18} {d['incidents']:>4} {d['detected']:>6} {recall:>7} "
                     f"{med:>8} {p95:>8}  {due:>7}  {shared:>11}  "
                     f"{d['found_by_people_first']:>12}  {caught}")
    by = ", ".join(f"{k} {v}" for k, v in report["false_alerts_per_home_month_by_detector"]
                   .items()) or "none"
    lines.append(f"false alerts per home-month: {report['false_alerts_per_home_month']} "
                 f"({by}); of severity 1-2: "
                 f"{report['false_urgent_alerts_per_home_month']}")
    lines.append(f"routine care calls with no staged decline: "
                 f"{report['routine_calls_per_home_month']} per home-month, "
                 f"{report['routine_calls_after_illness']} of them in the days after an illness")
    return "\n".join(lines)
