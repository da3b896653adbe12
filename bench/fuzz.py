"""A million near-miss payloads through the adapters: read or refused with a reason, nothing else.

Mutations of every catalogue model's captured payloads and of raw wearable/bed blocks (JSON
and binary), as tests/_fuzz.py makes them, each through the adapter the gateway would use.
Prints one JSON object: how many were read, refused (PayloadError), and anything else raised
(the figure that must be 0), with the first few of those, and the rate.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import _fuzz  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--payloads", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    rng = random.Random(args.seed)
    stream = _fuzz.payloads(rng)
    outcomes: Counter[str] = Counter()
    by_topic: Counter[str] = Counter()
    crashes: list[str] = []
    t0 = time.perf_counter()
    for _ in range(args.payloads):
        dev, model, topic, payload = next(stream)
        by_topic["imu" if topic.endswith("/imu") else "bcg" if topic.endswith("/bcg")
                 else "availability" if topic.endswith("/availability") else "state"] += 1
        try:
            outcomes[_fuzz.check(dev, model, topic, payload)] += 1
        except Exception as e:  # the point is to count what escapes
            outcomes["unclassified"] += 1
            if len(crashes) < 5:
                crashes.append(f"{model.model} {topic} {payload[:120]!r}: "
                               f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
    wall = time.perf_counter() - t0
    print(json.dumps({"payloads": args.payloads, "seed": args.seed,
                      "read": outcomes["ok"], "refused_with_reason": outcomes["refused"],
                      "unclassified_exceptions": outcomes["unclassified"],
                      "by_topic": dict(by_topic), "first_crashes": crashes,
                      "wall_s": round(wall, 1), "per_s": round(args.payloads / wall)},
                     indent=2, ensure_ascii=False))
    sys.exit(1 if outcomes["unclassified"] else 0)


if __name__ == "__main__":
    main()
