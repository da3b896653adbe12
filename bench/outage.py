"""A long hotline outage: thousands of alerts queue up, then everything arrives, most urgent first.

Real Mosquitto on loopback, the gateway as its own process (`anxin run`), and no hotline:
the webhook port is closed. `--alerts` alarms of every severity are raised (each on a device
of its own: SOS presses = severity 1, water leaks = 2, low batteries and tampers = 4) while
the gateway retries. During the outage the gateway must stay responsive: the time from a
sensor publish to the alert being committed in its store is measured. Then a verifying
receiver comes up and the backlog drains.

Checked: every alert arrives exactly once; in order of (severity, sequence) — severity 1
first; each with its original `occurred_at` (not re-stamped on delivery); the store's size.
Prints one JSON object. (The outage is as long as it takes to raise the alerts; what a 24 h
outage adds is only more of the same queue, which `--alerts` sets.)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from aiohttp import web  # noqa: E402

from alerts import wire  # noqa: E402
from tests._mosquitto import free_port, running_mosquitto  # noqa: E402

SECRET = "outage-secret"
# model, payload that raises the alarm, expected severity
KINDS = [
    ("TS0215A_sos", b'{"action":"emergency","battery":100,"linkquality":90}', 1),
    ("SJCGQ11LM", b'{"water_leak":true,"battery":100,"linkquality":90}', 2),
    ("HS1SA", b'{"smoke":false,"battery":5,"linkquality":90}', 4),
    ("SNZB-04", b'{"contact":true,"tamper":true,"battery":100,"linkquality":90}', 4),
]


def write_config(path: Path, broker_port: int, hook_port: int, n: int, retry_max_s: float
                 ) -> None:
    """A home with `n` alarm devices of the kinds above, one alarm each."""
    lines = ['[gateway]\nid = "gw-outage"\ndata_dir = "./data"\nlog_level = "ERROR"\n',
             f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\n', '[home]\nid = "home-out"\n']
    lines += [f'[[devices]]\nid = "d{i}"\nsource = "zigbee2mqtt"\n'
              f'topic = "zigbee2mqtt/d{i}"\nmodel = "{KINDS[i % len(KINDS)][0]}"\n'
              for i in range(n)]
    lines.append(f'[[hotline]]\nurl = "http://127.0.0.1:{hook_port}/alerts"\n'
                 f'secret = "{SECRET}"\nretry_max_s = {retry_max_s}\n')
    path.write_text("\n".join(lines))


def committed(db: Path) -> set[str]:
    """Device ids whose alert the gateway has committed."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return {r[0] for r in con.execute("SELECT device FROM alerts")}
    except sqlite3.OperationalError:
        return set()
    finally:
        con.close()


class Receiver:
    """Verifies every message and records the order and bodies of arrival."""

    def __init__(self) -> None:
        self.order: list[dict] = []
        self.bad = 0
        self.first_at: float | None = None

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            msg = wire.verify(SECRET.encode(), request.headers.get(wire.TIMESTAMP_HEADER),
                              request.headers.get(wire.SIGNATURE_HEADER), raw, time.time())
        except wire.WireError:
            self.bad += 1
            return web.Response(status=401)
        self.first_at = self.first_at or time.perf_counter()
        self.order.append(msg.body)
        return web.json_response({"status": "accepted"})


async def bench(args: argparse.Namespace) -> dict[str, object]:
    """Run the outage and the recovery; return the figures."""
    n = args.alerts
    rng = random.Random(3)
    hook_port = free_port()
    with running_mosquitto() as (_, port), tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "anxin.toml"
        write_config(cfg, port, hook_port, n, args.retry_max_s)
        db = Path(tmp) / "data" / "anxin.db"
        anxin = Path(sys.executable).with_name("anxin")
        gw = subprocess.Popen([str(anxin), "run", "--config", str(cfg)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="outage-sensors")
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        try:
            while not db.exists():  # wait for the gateway (and its subscription)
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)
            published_at: dict[str, float] = {}
            commit_ms: list[float] = []
            order = list(range(n))
            rng.shuffle(order)
            t0 = time.perf_counter()
            for k, i in enumerate(order):
                published_at[f"d{i}"] = time.time()
                pub.publish(f"zigbee2mqtt/d{i}", KINDS[i % len(KINDS)][1], qos=1)
                if k % 250 == 0:  # responsiveness: publish -> committed, during the outage
                    start = time.perf_counter()
                    while f"d{i}" not in committed(db):
                        await asyncio.sleep(0.002)
                    commit_ms.append((time.perf_counter() - start) * 1000)
                else:
                    await asyncio.sleep(args.interval_s)
            while len(committed(db)) < n:
                await asyncio.sleep(0.2)
            queued_s = time.perf_counter() - t0
            db_mb = sum(p.stat().st_size for p in db.parent.glob("anxin.db*")) / 2**20
            rss = next(int(line.split()[1]) for line in
                       Path(f"/proc/{gw.pid}/status").read_text().splitlines()
                       if line.startswith("VmRSS:")) / 1024
            await asyncio.sleep(args.hold_s)  # the outage goes on; retries keep failing
            db_mb_after = sum(p.stat().st_size for p in db.parent.glob("anxin.db*")) / 2**20
            rss_after = next(int(line.split()[1]) for line in
                             Path(f"/proc/{gw.pid}/status").read_text().splitlines()
                             if line.startswith("VmRSS:")) / 1024

            rx = Receiver()
            app = web.Application()
            app.router.add_post("/alerts", rx.handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            up = time.perf_counter()
            await web.TCPSite(runner, "127.0.0.1", hook_port).start()
            while len(rx.order) < n and time.perf_counter() - up < args.drain_timeout_s:
                await asyncio.sleep(0.2)
            drained_s = time.perf_counter() - up
            await asyncio.sleep(1.0)
            await runner.cleanup()
        finally:
            pub.loop_stop()
            pub.disconnect()
            gw.terminate()
            gw.wait(20)
    bodies = rx.order
    devices = [b["device_id"] for b in bodies]
    keys = [(b["severity"], b["sequence"]) for b in bodies]
    out_of_order = sum(1 for a, b in itertools.pairwise(keys) if b < a)
    skew = [abs(datetime.fromisoformat(b["occurred_at"]).timestamp()
                - published_at[b["device_id"]]) for b in bodies]
    by_sev: dict[int, int] = {}
    for b in bodies:
        by_sev[b["severity"]] = by_sev.get(b["severity"], 0) + 1
    return {
        "alerts_raised": n,
        "by_severity": dict(sorted(by_sev.items())),
        "arrived": len(bodies),
        "arrived_exactly_once": len(set(devices)) == len(devices) == n,
        "bad_signatures": rx.bad,
        "out_of_urgency_order": out_of_order,
        "first_arrivals_severity": [b["severity"] for b in bodies[:5]],
        "occurred_at_vs_publish_max_s": round(max(skew), 3) if skew else None,
        "queue_built_in_s": round(queued_s, 1),
        "outage_s": round(queued_s + args.hold_s, 1),
        "responsive_publish_to_commit_ms": {
            "p50": round(statistics.median(commit_ms), 1), "max": round(max(commit_ms), 1),
            "samples": len(commit_ms)},
        "store_mb_with_backlog": round(db_mb, 1),
        "store_mb_end_of_outage": round(db_mb_after, 1),
        "gateway_rss_mb": round(rss, 1),
        "gateway_rss_mb_end_of_outage": round(rss_after, 1),
        "drain_s": round(drained_s, 1),
        "drain_rate_per_s": round(len(bodies) / drained_s, 1) if drained_s else None,
        "settings": {"retry_max_s": args.retry_max_s, "interval_s": args.interval_s},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--alerts", type=int, default=5000)
    p.add_argument("--interval-s", type=float, default=0.002, help="between alarms")
    p.add_argument("--hold-s", type=float, default=20.0, help="outage after the last alarm")
    p.add_argument("--retry-max-s", type=float, default=10.0, help="sender backoff cap")
    p.add_argument("--drain-timeout-s", type=float, default=600.0)
    print(json.dumps(asyncio.run(bench(p.parse_args())), ensure_ascii=False))


if __name__ == "__main__":
    main()
