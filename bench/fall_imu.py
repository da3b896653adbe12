"""Wearable fall detector speed: batch samples/s per core, and per-block latency for a home full
of wearables.

Measured on the pure detector (detectors/fall_imu.py), one process, so one core:

1. batch: synthetic SisFall-like recordings (simulator/wearable.py: walking,
   jogging, sitting, lying, falls) streamed through `stream_recording` in blocks of 10 s
   (the longest block the format allows), 1 s, and whole recordings; input samples (one
   sample = one x/y/z triple at the device's rate) per second of CPU, at 200 Hz and 50 Hz.
   Also the SisFall text reader (`gateway.sisfall.parse_text`) in lines per second.
2. live: `--wearables` (200) devices at 50 Hz, each sending a `--block-s` (1 s) block; the
   blocks of each second arrive interleaved and go through `fall_imu.step` as the core would
   call it (an `accel` Observation). Per-block processing time = the latency the detector adds
   between a block's arrival and its finding; p50/p99/max, and the share of one core the
   wearables take.

Every figure is the median over `--repeats` runs. Prints one JSON object. Not a test: figures
vary ±30 % on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors import fall_imu  # noqa: E402
from devices.imu import make_block, observation_value  # noqa: E402
from devices.observation import Observation  # noqa: E402
from gateway.sisfall import parse_text  # noqa: E402
from simulator import wearable  # noqa: E402

MIX = ["D01", "D03", "D07", "D10", "D13", "D16", "D19", "F01", "F02", "F03", "F08", "F13"]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def recordings(rate: int, seed: int = 1) -> list[np.ndarray]:
    """One of each activity in MIX (walking and jogging 60 s), at `rate` Hz."""
    rng = np.random.default_rng(seed)
    out = []
    for code in MIX:
        kw = {"duration_s": 60.0} if code in ("D01", "D03") else {}
        acc, _ = wearable.recording(code, rng, **kw)
        out.append(wearable.at_rate(acc, rate))
    return out


def batch(rate: int, block_s: float | None, repeats: int) -> dict[str, float]:
    """Input samples per CPU second through the streaming detector."""
    recs = recordings(rate)
    n = sum(len(r) for r in recs)
    rates = []
    for _ in range(repeats):
        t = time.process_time()
        for r in recs:
            fall_imu.stream_recording(r, rate, fall_imu.FallImuConfig(),
                                      block_s=block_s or len(r) / rate)
        rates.append(n / (time.process_time() - t))
    return {"samples_per_s": round(statistics.median(rates)), "samples": n}


def reader(repeats: int) -> dict[str, float]:
    """SisFall text parsed per second (200 Hz lines of nine counts)."""
    rng = np.random.default_rng(2)
    acc, gyro = wearable.recording("D01", rng, duration_s=100.0)
    text = wearable.sisfall_text(wearable.counts(acc, gyro), rng)
    lines = len(acc)
    rates = []
    for _ in range(repeats):
        t = time.process_time()
        parse_text(text, Path("D01_SA01_R01.txt"))
        rates.append(lines / (time.process_time() - t))
    return {"lines_per_s": round(statistics.median(rates))}


def live(wearables: int, seconds: int, block_s: float, repeats: int) -> dict[str, object]:
    """Per-block detector time for `wearables` devices at 50 Hz, blocks interleaved."""
    rate = 50
    rng = np.random.default_rng(3)
    base = recordings(rate, seed=4)
    streams = []
    for i in range(wearables):  # each wearable: the activities in its own order, looped
        order = rng.permutation(len(base))
        s = np.vstack([base[j] for j in order])
        reps = int(np.ceil(seconds * rate / len(s)))
        streams.append(np.vstack([s] * reps)[: seconds * rate] if reps > 1 else
                       s[: seconds * rate])
        if len(streams[-1]) < seconds * rate:
            raise SystemExit(f"stream {i} too short")
    per = round(block_s * rate)
    t0 = 1_795_400_000.0
    cfg = fall_imu.FallImuConfig()
    p50s, p99s, maxes, shares, findings = [], [], [], [], []
    for _ in range(repeats):
        state = fall_imu.FallImuState()
        lat: list[float] = []
        found = 0
        busy = 0.0
        for k in range(0, seconds * rate, per):
            now = t0 + (k + per) / rate
            for i, s in enumerate(streams):
                b = make_block(rate, t0 + k / rate, s[k:k + per])
                obs = Observation("home", f"w{i}", "accel", observation_value(b), now)
                t = time.perf_counter()
                found += len(fall_imu.step(state, obs, now, cfg))
                dt = time.perf_counter() - t
                lat.append(dt * 1000)
                busy += dt
            t = time.perf_counter()
            fall_imu.tick(state, now, cfg)
            busy += time.perf_counter() - t
        p50s.append(statistics.median(lat))
        p99s.append(percentile(lat, 99))
        maxes.append(max(lat))
        shares.append(busy / seconds)
        findings.append(found)
    return {
        "wearables": wearables, "rate_hz": rate, "block_s": block_s, "seconds": seconds,
        "block_ms": {"p50": round(statistics.median(p50s), 3),
                     "p99": round(statistics.median(p99s), 3),
                     "max": round(statistics.median(maxes), 3)},
        "core_share": round(statistics.median(shares), 4),
        "falls_raised": int(statistics.median(findings)),
    }


def main() -> None:
    """Run the benchmark and print one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--wearables", type=int, default=200)
    p.add_argument("--seconds", type=int, default=60, help="simulated seconds (live)")
    p.add_argument("--block-s", type=float, default=1.0, help="block length (live)")
    args = p.parse_args()
    out = {
        "batch": {
            f"{rate}hz_{name}": batch(rate, block_s, args.repeats)
            for rate in (200, 50)
            for name, block_s in (("10s_blocks", 10.0), ("1s_blocks", 1.0),
                                  ("whole_recordings", None))
        },
        "sisfall_reader": reader(args.repeats),
        "live": live(args.wearables, args.seconds, args.block_s, args.repeats),
        "targets": {"batch_samples_per_s": 5_000_000, "live_p99_ms": 20.0},
    }
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
