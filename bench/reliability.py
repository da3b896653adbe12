"""No alert is lost: SIGKILL the gateway at random moments while alarms are flowing.

Real Mosquitto on loopback, the gateway as its own process (`anxin run`), the reference
hotline receiver (verifies, deduplicates, SQLite) in this process. A paho publisher presses
SOS buttons at `--rate` presses per second, each press on a button of its own, so each press
must become exactly one alert at the hotline. Meanwhile the gateway is killed with SIGKILL
at a random moment (`--min-s`..`--max-s` after it was started, start-up included) and
restarted at once, `--trials` times. At the end one last gateway drains what is left.

Counted at the receiver, per button: exactly one alert (pass), none (lost), more than one
(duplicate alert); and how many deliveries the receiver deduplicated (resends after a kill).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402

from hotline.server import serve  # noqa: E402
from tests._mosquitto import free_port, running_mosquitto  # noqa: E402

SECRET = "reliability-secret"
PRESS = b'{"action":"emergency","battery":100,"linkquality":90}'


def write_config(path: Path, broker_port: int, hotline_port: int, buttons: int) -> None:
    """A home with `buttons` SOS buttons (one per press)."""
    lines = ['[gateway]\nid = "gw-rel"\ndata_dir = "./data"\nlog_level = "ERROR"\n',
             f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\n',
             '[home]\nid = "home-rel"\n', "[alerts]\n"]
    lines += [f'[[devices]]\nid = "b{i}"\nsource = "zigbee2mqtt"\n'
              f'topic = "zigbee2mqtt/b{i}"\nmodel = "TS0215A_sos"\n' for i in range(buttons)]
    lines.append(f'[[hotline]]\nurl = "http://127.0.0.1:{hotline_port}/alerts"\n'
                 f'secret = "{SECRET}"\nretry_max_s = 1\n')
    path.write_text("\n".join(lines))


def press_loop(port: int, rate: float, buttons: int, stop: threading.Event,
               pressed: list[int]) -> None:
    """Press button 1, 2, 3, … at `rate` per second (QoS 1) until stopped or all pressed."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="reliability-presser")
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        next_t = time.perf_counter()
        for i in range(1, buttons):
            if stop.is_set():
                break
            c.publish(f"zigbee2mqtt/b{i}", PRESS, qos=1).wait_for_publish(10)
            pressed[0] = i
            next_t += 1 / rate
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    finally:
        c.loop_stop()
        c.disconnect()


def received(db: Path) -> list[tuple[str, int]]:
    """(device_id, deliveries) of every alert the hotline stored."""
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("SELECT device_id, deliveries FROM alerts").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def start_gateway(cfg: Path) -> subprocess.Popen[bytes]:
    anxin = Path(sys.executable).with_name("anxin")
    return subprocess.Popen([str(anxin), "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def bench(args: argparse.Namespace) -> dict[str, object]:
    """Run the trials; return the figures."""
    rng = random.Random(args.seed)
    buttons = int(args.trials * (args.max_s + 1.5) * args.rate) + 100
    with running_mosquitto() as (_, port), tempfile.TemporaryDirectory() as tmp:
        hotline_port = free_port()
        hotline_db = Path(tmp) / "hotline.db"
        receiver = asyncio.create_task(serve("127.0.0.1", hotline_port, SECRET.encode(),
                                             str(hotline_db)))
        cfg = Path(tmp) / "anxin.toml"
        write_config(cfg, port, hotline_port, buttons)
        # The gateway's persistent session must exist before anything is pressed (on a real
        # install it has existed since the first start): press button 0 until it arrives.
        gw = start_gateway(cfg)
        probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="reliability-probe")
        probe.connect("127.0.0.1", port)
        probe.loop_start()
        while not received(hotline_db):
            probe.publish("zigbee2mqtt/b0", PRESS, qos=1)
            await asyncio.sleep(0.5)
        probe.loop_stop()
        probe.disconnect()
        stop, pressed = threading.Event(), [0]
        presser = threading.Thread(target=press_loop,
                                   args=(port, args.rate, buttons, stop, pressed))
        presser.start()
        kills, started = 0, time.perf_counter()
        try:
            for _ in range(args.trials):
                await asyncio.sleep(rng.uniform(args.min_s, args.max_s))
                gw.send_signal(signal.SIGKILL)
                gw.wait()
                kills += 1
                gw = start_gateway(cfg)
            stop.set()
            presser.join()
            n = pressed[0]
            # drain: the last gateway delivers whatever is left
            deadline = time.perf_counter() + args.drain_s
            while time.perf_counter() < deadline:
                got = {d for d, _ in received(hotline_db)}
                if len(got) >= n:
                    break
                await asyncio.sleep(0.25)
            await asyncio.sleep(1.0)  # any late duplicate would show now
        finally:
            stop.set()
            presser.join()
            gw.send_signal(signal.SIGTERM)
            gw.wait(20)
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
        rows = received(hotline_db)
    per_device = Counter(d for d, _ in rows)
    expected = {f"b{i}" for i in range(n + 1)}  # b0 was the probe
    lost = sorted(expected - set(per_device), key=lambda d: int(d[1:]))
    return {
        "trials_sigkill": kills,
        "presses": n + 1,
        "alerts_at_hotline": len(rows),
        "exactly_once": sum(1 for d in expected if per_device.get(d) == 1),
        "lost": len(lost),
        "lost_devices": lost[:20],
        "duplicate_alerts_for_one_press": sum(1 for c in per_device.values() if c > 1),
        "resends_deduplicated_by_receiver": sum(dl - 1 for _, dl in rows),
        "max_deliveries_of_one_alert": max((dl for _, dl in rows), default=0),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "settings": {"rate_per_s": args.rate, "kill_after_s": [args.min_s, args.max_s],
                     "seed": args.seed},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=200, help="SIGKILLs")
    p.add_argument("--rate", type=float, default=20.0, help="SOS presses per second")
    p.add_argument("--min-s", type=float, default=0.3, help="earliest kill after a start")
    p.add_argument("--max-s", type=float, default=2.0, help="latest kill after a start")
    p.add_argument("--drain-s", type=float, default=120.0, help="time allowed to drain")
    p.add_argument("--seed", type=int, default=1)
    print(json.dumps(asyncio.run(bench(p.parse_args())), ensure_ascii=False))


if __name__ == "__main__":
    main()
