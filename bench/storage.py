"""SD-card care, measured: a simulated busy home's weeks written into a real store, pruned.

The busiest of the simulator's homes (two residents; `--home` picks another) lives `--days`
days (simulator/resident.py), or `--homes N` of them side by side (a small facility, 日间照料中心,
on one gateway); its observations are written as the gateway's flusher writes
them (batches of 500, one NORMAL commit each). Then, day by day as the gateway does at
`[storage] prune_hour`, gateway/retention.py prunes with the default policy. Printed as JSON:

- the database before the first pruning (a month and more of history) and after it;
- each daily pruning's time (it removes one day of observations) and the longest single
  batch, i.e. the longest an alert could wait for the store meanwhile;
- the file size over the last days: at the steady state it stays flat (free pages reused).

    python bench/storage.py [--days 45] [--home 3] [--homes 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devices.observation import Observation  # noqa: E402
from gateway import retention  # noqa: E402
from gateway.evaluate import START  # noqa: E402
from gateway.retention import DAY_S, Policy, Retention, Thinning  # noqa: E402
from gateway.runtime import OBSERVATION_FLUSH_ROWS, RAW_KINDS  # noqa: E402
from gateway.store import AsyncStore, Store  # noqa: E402
from simulator.homes import make_home  # noqa: E402
from simulator.resident import simulate, to_observations  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")


def _mb(n: int) -> float:
    return round(n / 2**20, 2)


def _stream(days: int, index: int, homes: int) -> tuple[list[Observation], int]:
    """The homes' stored observations in order of arrival, and how many residents."""
    stream: list[Observation] = []
    residents = 0
    for n in range(homes):
        thinning = Thinning(40.0)  # as the home's gateway stores them
        rng = np.random.default_rng([1, index + n])
        home = make_home(index + n, rng)
        residents += len(home.residents)
        sim = simulate(home, START, days, rng, [])
        stream += [replace(o, device=f"{n}-{o.device}") if homes > 1 else o
                   for o in to_observations(home, sim.events, start=START)
                   if o.kind not in RAW_KINDS and thinning.keep(o, o.at)]
    stream.sort(key=lambda o: o.at)
    return stream, residents


async def run(days: int, home_index: int, homes: int = 1) -> dict[str, object]:
    """Live, store and prune; the figures."""
    stream, residents = _stream(days, home_index, homes)
    batches: list[float] = []
    original = Store.prune_observations

    def timed(self: Store, *a: object, **kw: object) -> tuple[int, int | None]:
        t = time.perf_counter()
        try:
            return original(self, *a, **kw)  # type: ignore[arg-type]
        finally:
            batches.append(time.perf_counter() - t)

    Store.prune_observations = timed  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        store = await AsyncStore(Path(tmp) / "anxin.db").open()
        try:
            policy = Policy()
            ret = Retention(store, policy, TZ, lambda: 0.0, pause_s=retention.PAUSE_S)
            first_prune_day = int(policy.observations_s // DAY_S) + 5
            t = time.perf_counter()
            i, out, files = 0, {}, []
            daily: list[float] = []
            longest = 0.0
            every: list[float] = []
            for day in range(1, days + 1):
                night = START + day * DAY_S + policy.prune_hour * 3600.0
                j = i
                while j < len(stream) and stream[j].at < night:
                    j += 1
                for k in range(i, j, OBSERVATION_FLUSH_ROWS):
                    await store.call(Store.add_observations,
                                     stream[k:min(j, k + OBSERVATION_FLUSH_ROWS)])
                i = j
                if day < first_prune_day:
                    continue
                size = await store.call(Store.size)
                if day == first_prune_day:
                    out["before"] = {"days_stored": day,
                                     "observations": await store.call(Store.count,
                                                                      "observations"),
                                     "file_mb": _mb(size["file_bytes"]),
                                     "wal_mb": _mb(size["wal_bytes"])}
                    out["write_s"] = round(time.perf_counter() - t, 2)
                batches.clear()
                done = await ret.prune(night)
                if day == first_prune_day:
                    after = await store.call(Store.size)
                    out["first_prune"] = {
                        "seconds": done["seconds"], "deleted": done["deleted"],
                        "observations_left": await store.call(Store.count, "observations"),
                        "used_mb": _mb(after["used_bytes"]),
                        "file_mb": _mb(after["file_bytes"]),
                        "wal_mb": _mb(after["wal_bytes"]),
                        "longest_batch_ms": round(max(batches) * 1000, 1)}
                else:
                    daily.append(done["seconds"])
                    longest = max(longest, max(batches, default=0.0))
                    every += batches
                files.append(_mb((await store.call(Store.size))["file_bytes"]))
            out["daily_prune_s"] = {
                "days": len(daily), "median": round(float(np.median(daily)), 3),
                "max": round(max(daily), 3),
                "batch_rows": retention.BATCH_ROWS,
                "batch_ms_p50": round(float(np.percentile(every, 50)) * 1000, 1),
                "batch_ms_p99": round(float(np.percentile(every, 99)) * 1000, 1),
                "longest_batch_ms": round(longest * 1000, 1)} if daily else None
            out["file_mb_each_day_after_first_prune"] = files
        finally:
            await store.close()
            Store.prune_observations = original  # type: ignore[method-assign]
    per_day = len(stream) / days
    return {"home": home_index, "homes": homes, "residents": residents, "days": days,
            "observations_per_day": round(per_day), **out}


def main() -> None:
    """Run and print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=45)
    ap.add_argument("--home", type=int, default=3)
    ap.add_argument("--homes", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="one line of JSON")
    a = ap.parse_args()
    report = asyncio.run(run(a.days, a.home, a.homes))
    print(json.dumps(report, ensure_ascii=False, indent=None if a.json else 1))


if __name__ == "__main__":
    main()
