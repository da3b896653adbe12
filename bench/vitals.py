"""Bed-sensor vital signs: accuracy against simulated truth, batch speed, live latency.

Measured on the pure pieces (devices/bcg.py, detectors/vitals.py), one process, so one core:

1. accuracy (gateway/evaluate_signals.py, as `anxin eval` reports it): `--hours` (100)
   simulated hours (simulator/bcg.py, seeds 0.., rates cycling
   50/100/128/200/250 Hz; each hour has 2 apnoeas, a bradycardia and a tachycardia spell, a
   bed exit, a weak-coupling spell and movement at 6-40 bursts/h). Heart rate within 5 bpm
   and breathing rate within 2 /min of the truth over their window, on the windows the
   detector reported (its good-quality windows); coverage = share of still, in-bed windows
   with a rate; rates reported out of bed or while moving. Findings: each labelled event
   found (the right event, between its start and its end + 30 s for apnoea, + 10 min for
   spells) and its delay from the start; or covered by a finding of the same rule shortly
   before (not re-armed: `rearm_s`); or missed (with the missed events' durations). And
   findings that match no labelled event. Each hour goes
   through `vitals.step` as one block (the same assessments as 1 s blocks; the tests
   check that).
2. batch: samples per second of CPU for `vitals.analyse` on one hour, per input rate.
3. live: `--beds` (50) bed sensors at 100 Hz, each publishing a 1 s block; each block is
   parsed (`parse_block`, JSON or binary) and stepped as the core would (a `bcg`
   Observation), interleaved across beds. Per-block time = the latency the vitals path adds
   between a block's arrival and its finding: p50/p99/max, and the share of one core used.

Every speed figure is the median over `--repeats` runs. Prints one JSON object. Not a test:
figures vary +-30 % on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors import vitals  # noqa: E402
from devices.bcg import BcgBlock, encode_binary, encode_json, parse_block  # noqa: E402
from devices.observation import Observation  # noqa: E402
from gateway import evaluate_signals  # noqa: E402
from simulator import bcg as sim  # noqa: E402

RATES = evaluate_signals.BED_RATES


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def batch(repeats: int) -> dict:
    """Samples per second of CPU, whole hour as one block, per input rate."""
    out = {}
    for rate in RATES:
        rec = sim.simulate(7, 3600.0, rate, plan=sim.Plan(apnoeas=2, bed_exits=1))
        block = BcgBlock(rec.rate_hz, rec.t0, rec.signal)
        times = []
        for _ in range(repeats):
            t = time.process_time()
            vitals.analyse(block)
            times.append(time.process_time() - t)
        out[f"{rate}hz"] = round(rec.signal.size / statistics.median(times))
    return out


def live(beds: int, seconds: int, binary: bool, repeats: int) -> dict:
    """Per-block latency for `beds` sensors at 100 Hz publishing 1 s blocks."""
    recs = [sim.simulate(100 + i, seconds, 100.0, plan=sim.Plan(apnoeas=1), t0=1.79e9 + i * 0.37)
            for i in range(beds)]
    enc = encode_binary if binary else encode_json
    streams = [[(b.end, enc(b)) for b in r.blocks(1.0)] for r in recs]
    runs = []
    for _ in range(repeats):
        state, cfg = vitals.VitalsState(), vitals.VitalsConfig(home="bench")
        lat: list[float] = []
        start = time.process_time()
        for k in range(seconds):
            for i, stream in enumerate(streams):
                at, payload = stream[k]
                t = time.perf_counter()
                block = parse_block(payload)
                vitals.step(state, Observation("bench", f"bed-{i}", vitals.RAW_KIND, block, at),
                            at, cfg)
                lat.append(time.perf_counter() - t)
        cpu = time.process_time() - start
        runs.append({"p50_ms": percentile(lat, 50) * 1e3, "p99_ms": percentile(lat, 99) * 1e3,
                     "max_ms": max(lat) * 1e3, "core_share": cpu / seconds,
                     "samples_per_s": beds * 100 * seconds / cpu})
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return {"beds": beds, "rate_hz": 100, "block_s": 1.0, "encoding": "binary" if binary
            else "json", "seconds": seconds,
            "p50_ms": round(med["p50_ms"], 3), "p99_ms": round(med["p99_ms"], 3),
            "max_ms": round(med["max_ms"], 3), "core_share": round(med["core_share"], 3),
            "samples_per_s_per_core": round(med["samples_per_s"]),
            "beds_per_core_at_100hz": int(beds / med["core_share"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=int, default=100, help="simulated hours for accuracy")
    p.add_argument("--beds", type=int, default=50)
    p.add_argument("--seconds", type=int, default=300, help="live: simulated seconds")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(json.dumps({
        "batch_samples_per_s_per_core": batch(args.repeats),
        "live_json": live(args.beds, args.seconds, False, args.repeats),
        "live_binary": live(args.beds, args.seconds, True, args.repeats),
        "accuracy": evaluate_signals.bed(args.hours),
    }, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
