"""A whole day without the hotline, replayed in seconds on the real store and outbox sender.

bench/outage.py runs the gateway as a process against a dead hotline for minutes; this one
shows what a 24-hour outage does, with the clock and the sender's sleep replaced by a
virtual clock (the only things that change with the length of an outage are how many
retries fail and how old the alerts are). `--alerts` alerts of all severities are raised
at times spread over the day and stored exactly as the gateway stores them; the sender
retries against a transport that refuses everything until the day is over, then accepts.

Checked: every alert arrives exactly once; severity 1 first; each body still carries the
time it was raised (hours earlier), signed afresh; how many attempts failed; the store's
size after a day of failures against its size with the backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerts import wire  # noqa: E402
from alerts.manager import Manager  # noqa: E402
from detectors.finding import Finding  # noqa: E402
from gateway.outbox import OutboxSender  # noqa: E402
from gateway.store import AsyncStore, Store  # noqa: E402
from gateway.transports.base import DeliveryError, Transport  # noqa: E402

DAY = 24 * 3600.0
TZ = ZoneInfo("Asia/Shanghai")
KINDS = [("sos", 101, 1), ("water_leak", 154, 2), ("low_battery", 384, 4), ("tamper", 383, 4)]


class VirtualClock:
    """Time that moves only when someone sleeps."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class DeadUntil(Transport):
    """Refuses every message until `until` (virtual), then takes them."""

    def __init__(self, clock: VirtualClock, until: float) -> None:
        self.name = "centre"
        self.clock = clock
        self.until = until
        self.refused = 0
        self.received: list[tuple[dict, float]] = []

    async def send(self, body: bytes) -> None:
        if self.clock() < self.until:
            self.refused += 1
            raise DeliveryError("connection refused")
        self.received.append((json.loads(body), self.clock()))


def size_mb(db: Path) -> float:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 2**20


async def bench(args: argparse.Namespace) -> dict[str, object]:
    """Raise the day's alerts, replay the outage, drain; return the figures."""
    rng = random.Random(5)
    start = 1_795_400_000.0
    clock = VirtualClock(start)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "anxin.db"
        store = await AsyncStore(db).open()
        transport = DeadUntil(clock, start + DAY)
        delivered: list[str] = []

        async def on_delivered(alert_id: str) -> None:
            delivered.append(alert_id)

        sender = OutboxSender(store, transport, on_delivered, backoff_max_s=args.retry_max_s,
                              clock=clock, sleep=clock.sleep)
        task = asyncio.create_task(sender.run())
        times = sorted(start + rng.uniform(0, DAY - 60) for _ in range(args.alerts))
        manager = Manager()
        counter = itertools.count()
        t0 = time.perf_counter()
        for at in times:  # raised through the day, while the sender keeps failing
            while clock.now < at:
                await asyncio.sleep(0)  # the sender advances the clock as it backs off
                if clock.now < at and not sender.failures:
                    clock.now = at
            event, code, severity = KINDS[next(counter) % len(KINDS)]
            f = Finding(detector="instant", home="home-day", code=code, event=event,
                        severity=severity, at=at, device=f"d{int(at)}", room=None)
            ((alert, _),) = manager.on_finding(f, at)
            await store.call(Store.raise_alert, alert, ["centre"],
                             lambda seq, a=alert: wire.encode_alert(
                                 a, gateway_id="gw-day", sequence=seq, residents=[], tz=TZ),
                             at)
            sender.wake()
        mb_backlog = size_mb(db)
        while clock.now < start + DAY:
            await asyncio.sleep(0)
        mb_end = size_mb(db)
        while len(transport.received) < args.alerts:
            await asyncio.sleep(0)
        replay_s = time.perf_counter() - t0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
    bodies = [b for b, _ in transport.received]
    keys = [(b["severity"], b["sequence"]) for b in bodies]
    ages = [(got - datetime.fromisoformat(b["raised_at"]).timestamp()) / 3600
            for b, got in transport.received]
    return {
        "virtual_outage_h": 24,
        "alerts": args.alerts,
        "arrived_exactly_once": len({b["alert_id"] for b in bodies}) == len(bodies) ==
        args.alerts,
        "severity_1_first": all(b["severity"] == 1 for b in bodies[:args.alerts // 4]),
        "out_of_urgency_order": sum(1 for a, b in itertools.pairwise(keys) if b < a),
        "failed_attempts_during_outage": transport.refused,
        "oldest_alert_age_at_delivery_h": round(max(ages), 1),
        "store_mb_with_backlog": round(mb_backlog, 1),
        "store_mb_after_a_day_of_failures": round(mb_end, 1),
        "replayed_in_s": round(replay_s, 1),
        "settings": {"retry_max_s": args.retry_max_s},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--alerts", type=int, default=5000)
    p.add_argument("--retry-max-s", type=float, default=60.0)
    print(json.dumps(asyncio.run(bench(p.parse_args())), ensure_ascii=False))


if __name__ == "__main__":
    main()
