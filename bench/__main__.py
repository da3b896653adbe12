"""`python -m bench --json`: issue 8's performance budget, every figure in one JSON object.

Runs bench/budget.py's sub-benches one after another (ingest against the bare aiomqtt floor,
alarm latency against the bare MQTT round trip at 1,000 msg/s background, the same under a
10,000 msg/s flood from one device, and the footprint: start-up, memory and idle CPU with
200 devices and a month of data), then checks each figure against its target. About three
minutes; `--quick` for about one, `--only` for a part. Figures on a shared machine vary
±30 %: compare the medians of several runs, on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

from bench.budget import BENCHES, add_options

# figure -> (target, whether the figure must be at most (True) or at least (False) it)
TARGETS: dict[str, tuple[float, bool]] = {
    "ingest_ratio_to_bare": (0.6, False),
    "alarm_latency_p99_ms": (10.0, True),
    "flood_alarm_latency_p99_ms": (10.0, True),
    "rss_mb": (80.0, True),
    "startup_s": (2.0, True),
    "idle_cpu_pct": (1.0, True),
}
QUICK = {"burst": 10_000, "alarms": 80, "days": 30, "settle": 3.0, "idle_seconds": 10.0}


def verdicts(figures: dict[str, object]) -> dict[str, dict[str, object]]:
    """Each budgeted figure beside its target, and whether it is met."""
    out: dict[str, dict[str, object]] = {}
    for name, (target, at_most) in TARGETS.items():
        value = figures.get(name)
        if isinstance(value, int | float):
            met = value <= target if at_most else value >= target
            out[name] = {"value": value, "target": f"{'<=' if at_most else '>='} {target:g}",
                         "met": met}
    return out


async def run(args: argparse.Namespace) -> dict[str, object]:
    """The chosen sub-benches, one after another (never two at once: they share the CPU)."""
    figures: dict[str, object] = {}
    took: dict[str, float] = {}
    for name in args.only:
        t = time.perf_counter()
        figures.update(await BENCHES[name](args))
        took[name] = round(time.perf_counter() - t, 1)
    figures["budget"] = verdicts(figures)
    figures["run"] = {"seconds": took, "quick": args.quick, "cpus": os.cpu_count(),
                      "load_avg_1m": round(os.getloadavg()[0], 2),
                      "python": sys.version.split()[0]}
    return figures


def main() -> None:
    """Parse, run, print one JSON object (or a short table without --json)."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--only", type=lambda s: s.split(","), default=list(BENCHES),
                   help=f"comma-separated sub-benches of {','.join(BENCHES)} (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="smaller runs (about a minute); figures are rougher")
    add_options(p)
    args = p.parse_args()
    unknown = [n for n in args.only if n not in BENCHES]
    if unknown:
        p.error(f"--only: unknown sub-bench {', '.join(unknown)} (choose from "
                f"{', '.join(BENCHES)})")
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    figures = asyncio.run(run(args))
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
        return
    for name, v in figures.items():
        if not isinstance(v, dict):
            print(f"{name:32} {v}")
    budget = figures["budget"]
    assert isinstance(budget, dict)
    for name, b in budget.items():
        print(f"{name:32} {b['value']!s:>10}  target {b['target']:8} "
              f"{'met' if b['met'] else 'NOT MET'}")


if __name__ == "__main__":
    main()
