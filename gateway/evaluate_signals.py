"""The signal detectors scored against the simulator's ground truth (part of `anxin eval`).

**Falls** (detectors/fall_imu.py): the wearable emulator (simulator/wearable.py) performs each
of SisFall's 15 falls and 19 activities of daily living `trials` times, each trial a new
simulated subject (mounting angle) at a device rate drawn from 25/50/100/200 Hz, streamed in
1 s blocks through the live detector. A fall recording counts as detected if the detector
raises a fall anywhere in it; an activity counts as a false alarm if it raises one.

**Vital signs** (detectors/vitals.py): `hours` simulated hours of a bed signal
(simulator/bcg.py: rates 50–250 Hz, two apnoeas, a bradycardia and a tachycardia spell, a
bed exit, a weak-coupling spell and 6–40 movements per hour each). Heart and breathing
rates against the truth over their windows, on the windows the detector reported (its
good-quality ones), and how much of the still, in-bed time has a rate; each labelled event
found (between its start and its end plus 30 s for an apnoea, 10 min for a spell), covered
by a finding of the same rule just before it (not re-armed yet), or missed; and findings no
event explains.

Both are simulations built here: they show the detectors doing what they were built to do on
signals shaped like real ones, not their accuracy on real people (`anxin eval-fall` runs the
real SisFall recordings).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

import numpy as np

from detectors import fall_imu, vitals
from devices.bcg import BcgBlock
from devices.observation import Observation
from simulator import bcg as bed_sim
from simulator import wearable

FALL_RATES = (25, 50, 100, 200)
BED_RATES = (50, 100, 128, 200, 250)
EXPECTED = {bed_sim.APNOEA: vitals.NO_BREATHING, bed_sim.BRADYCARDIA: vitals.BRADYCARDIA,
            bed_sim.TACHYCARDIA: vitals.TACHYCARDIA}
MARGIN_S = {bed_sim.APNOEA: 30.0, bed_sim.BRADYCARDIA: 600.0, bed_sim.TACHYCARDIA: 600.0}


def falls(trials: int, seed: int) -> dict[str, Any]:
    """Sensitivity and specificity of the wearable fall detector on emulated recordings."""
    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, 4])
    cfg = fall_imu.FallImuConfig()
    tally = Counter[str]()
    missed, false = Counter[str](), Counter[str]()
    samples = 0
    for code in wearable.FALL_CODES + wearable.ADL_CODES:
        for _ in range(trials):
            rate = int(rng.choice(FALL_RATES))
            acc, _ = wearable.recording(code, rng)
            acc = wearable.at_rate(acc, rate)
            samples += len(acc)
            found, _ = fall_imu.stream_recording(acc, float(rate), cfg)
            fell = any(f.event == "fall" for f in found)
            if code.startswith("F"):
                tally["tp" if fell else "fn"] += 1
                missed[code] += not fell
            else:
                tally["fp" if fell else "tn"] += 1
                false[code] += fell
    falls_n, adl_n = tally["tp"] + tally["fn"], tally["fp"] + tally["tn"]
    return {"fall_recordings": falls_n, "adl_recordings": adl_n,
            "sensitivity": round(tally["tp"] / falls_n, 4),
            "specificity": round(tally["tn"] / adl_n, 4),
            "missed_falls": {k: v for k, v in sorted(missed.items()) if v},
            "false_alarms": {k: v for k, v in sorted(false.items()) if v},
            "samples": samples, "wall_s": round(time.perf_counter() - t0, 2)}


def bed_hour(seed: int) -> bed_sim.Recording:
    """One simulated hour in bed, with something to find."""
    plan = bed_sim.Plan(apnoeas=2, bradycardias=1, tachycardias=1, bed_exits=1,
                        weak_spells=1, movements_per_h=(6.0, 20.0, 40.0)[seed % 3])
    return bed_sim.simulate(seed, 3600.0, BED_RATES[seed % len(BED_RATES)], plan=plan)


def bed(hours: int) -> dict[str, Any]:
    """Rates against the truth, and labelled events against findings."""
    t0 = time.perf_counter()
    sums = {"hr": np.zeros(6), "rr": np.zeros(6)}
    by_kind = {k: dict.fromkeys(("labelled", "found", "covered_by_open_finding", "missed"), 0)
               for k in EXPECTED}
    missed: dict[str, list[float]] = {k: [] for k in EXPECTED}
    delays: dict[str, list[float]] = {k: [] for k in EXPECTED}
    limits, settings = vitals.Limits(), vitals.SignalSettings()
    false: list[str] = []
    for seed in range(hours):
        rec = bed_hour(seed)
        state, cfg = vitals.VitalsState(), vitals.VitalsConfig(home="eval")
        block = BcgBlock(rec.rate_hz, rec.t0, rec.signal)
        findings = vitals.step(state, Observation("eval", "bed", vitals.RAW_KIND, block,
                                                  block.end), block.end, cfg)
        s = vitals.analyse(block, settings)
        rel = s.t - rec.t0
        for name, rates, window, tol in (("hr", s.hr, settings.hr_window_s, 5.0),
                                         ("rr", s.rr, settings.rr_window_s, 2.0)):
            sc = bed_sim.score(rec.truth, rel, rates, name, window, tol)
            sums[name] += (sc["within"], sc["scored"], sc["coverage_at_rest"],
                           sc["reported_without_truth"], sc["reported_while_moving"], 1)
        matched: set[int] = set()
        for e in rec.truth.events:
            if e.kind not in EXPECTED:
                continue
            counts = by_kind[e.kind]
            counts["labelled"] += 1
            times = [(i, f.evidence["device_time"] - rec.t0) for i, f in enumerate(findings)
                     if f.event == EXPECTED[e.kind]]
            hit = [(i, t) for i, t in times if e.start <= t <= e.end + MARGIN_S[e.kind]]
            if hit:
                counts["found"] += 1
                delays[e.kind].append(hit[0][1] - e.start)
                matched.add(hit[0][0])
            elif any(e.start - limits.rearm_s - MARGIN_S[e.kind] <= t < e.start
                     for _, t in times):
                counts["covered_by_open_finding"] += 1
            else:
                counts["missed"] += 1
                missed[e.kind].append(round(e.end - e.start, 1))
        false += [f"hour {seed}: {f.event} at {f.evidence['device_time'] - rec.t0:.0f} s"
                  for i, f in enumerate(findings) if i not in matched]
    out: dict[str, Any] = {"hours": hours}
    for name, tol in (("hr", "5bpm"), ("rr", "2permin")):
        w, n, cov, no_truth, moving, count = sums[name]
        out[name] = {f"within_{tol}": round(w / n, 4) if n else None,
                     "windows_reported": int(n), "coverage_at_rest": round(cov / count, 3),
                     "reported_without_truth": int(no_truth),
                     "reported_while_moving": int(moving)}
    out["events"] = {
        k: {**v, "median_delay_s": round(statistics.median(delays[k]), 1) if delays[k] else None,
            "max_delay_s": round(max(delays[k]), 1) if delays[k] else None,
            "missed_durations_s": sorted(missed[k])}
        for k, v in by_kind.items()}
    out["false_findings"] = len(false)
    out["false_findings_list"] = false[:20]
    out["wall_s"] = round(time.perf_counter() - t0, 2)
    return out


def table(f: dict[str, Any], b: dict[str, Any]) -> str:
    """Both, as lines a person reads."""
    lines = [f"wearable falls (emulated, {f['fall_recordings']} falls / {f['adl_recordings']} "
             f"activities at 25-200 Hz): sensitivity {f['sensitivity']:.3f}, specificity "
             f"{f['specificity']:.3f}" + (f"; missed {f['missed_falls']}" if f["missed_falls"]
                                          else "")
             + (f"; false alarms {f['false_alarms']}" if f["false_alarms"] else ""),
             f"bed vital signs (emulated, {b['hours']} h at 50-250 Hz): heart rate within "
             f"5 bpm {b['hr']['within_5bpm']:.1%} of reported windows (at rest "
             f"{b['hr']['coverage_at_rest']:.0%} covered), breathing within 2/min "
             f"{b['rr']['within_2permin']:.1%} ({b['rr']['coverage_at_rest']:.0%} covered); "
             f"false findings {b['false_findings']}"]
    for kind, e in b["events"].items():
        lines.append(f"  {kind:<12} {e['found']}/{e['labelled']} found (median "
                     f"{e['median_delay_s']} s), {e['covered_by_open_finding']} within an "
                     f"open finding, {e['missed']} missed {e['missed_durations_s'] or ''}")
    return "\n".join(lines)
