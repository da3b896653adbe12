"""Raw signals through MQTT: 200 wearables at 50 Hz and 50 bed sensors at 100 Hz in real time.

Starts a real Mosquitto on a random loopback port, the gateway as a separate process
(`anxin run`) configured with the devices (`anxin-wearable-imu`, `anxin-bed-sensor-raw`; the
fall cancel window at 0 so an alert leaves at once), and an in-process webhook receiver that
verifies every signature. Every second each device publishes its last second of samples as
one binary block (devices/imu.py, devices/bcg.py), each device on its own phase within the
second as real devices are (all 250 at the same instant would measure the queue behind a
burst no home produces) — daily movement from the wearable
emulator, a night's bed signal from the bed emulator — and every few seconds one wearable
(a different one each time) streams a fall instead (SisFall's F01, from simulator/wearable.py).

Latency is measured from the moment the block that completes the fall's evidence is
published (the detector decides 3 s after the impact, by design: the block holding
impact + 3 s) to the signed alert arriving at the receiver: MQTT, the adapter, the
streaming detector, the alert manager, the store and the webhook. Also: the gateway's CPU
share and memory, and that no raw block was written to its store.

Prints one JSON object. Not a test: figures vary ±30 % between runs on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from bench import e2e  # noqa: E402
from bench.e2e import cpu_seconds, percentile, publisher, rss_mb  # noqa: E402
from devices import bcg, imu  # noqa: E402
from simulator import bcg as bed_sim  # noqa: E402
from simulator import wearable  # noqa: E402
from tests._mosquitto import running_mosquitto  # noqa: E402

IMU_HZ, BED_HZ = 50, 100


class Receiver(e2e.Receiver):
    """Verifies each alert's signature; keeps when it came and what it said."""

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[tuple[float, dict]] = []

    def note(self, t: float, body: dict) -> None:
        self.alerts.append((t, body))


def write_config(path: Path, broker: int, hook: int, wearables: int, beds: int) -> None:
    lines = ['[gateway]\nid = "gw-signals"\ndata_dir = "./data"\nlog_level = "WARNING"\n',
             f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker}"\n',
             '[home]\nid = "home-signals"\n',
             '[[home.residents]]\nname = "测试"\nage = 80\nability_level = 1\n',
             "[alerts]\nfall_cancel_window_s = 0\ndedupe_window_s = 0\n",
             "[activity]\nenabled = false\n"]
    lines += [f'[[devices]]\nid = "w{i}"\nsource = "anxin"\ntopic = "anxin/sensor/w{i}"\n'
              f'model = "anxin-wearable-imu"\nroom = "r{i % 7}"\n' for i in range(wearables)]
    lines += [f'[[devices]]\nid = "b{i}"\nsource = "anxin"\ntopic = "anxin/sensor/b{i}"\n'
              f'model = "anxin-bed-sensor-raw"\nroom = "bedroom"\n' for i in range(beds)]
    lines.append(f'[[hotline]]\nkind = "webhook"\nurl = "http://127.0.0.1:{hook}/alerts"\n'
                 f'secret = "{e2e.SECRET}"\n')
    path.write_text("\n".join(lines))


def movement(seed: int) -> np.ndarray:
    """A long loop of everyday movement at 50 Hz (walking, sitting down, standing, bending)."""
    rng = np.random.default_rng(seed)
    parts = [wearable.at_rate(wearable.recording(code, rng)[0], IMU_HZ)
             for code in ("D01", "D07", "D09", "D16", "D02")]
    return np.concatenate(parts)


def publish_loop(port: int, streams: list[tuple[str, str]], seconds: int, t0: float,
                 imu_loops: list[np.ndarray], bed_loops: list[np.ndarray],
                 falls: dict[int, tuple[int, np.ndarray]], sent: dict[tuple[str, int], float],
                 stop: threading.Event) -> None:
    """Publish each device's block of second k when it is full: devices keep their own
    phase (device n of N at t0 + k + 1 + n/N), as real ones do — none is in step with another."""
    c = publisher(port, "bench-signals")
    try:
        for k in range(seconds):
            if stop.is_set():
                return
            for n, (dev, kind) in enumerate(streams):
                wait = t0 + k + 1 + n / len(streams) - time.time()
                if wait > 0.0005:
                    time.sleep(wait)
                i = int(dev[1:])
                if kind == "imu":
                    start, fall = falls.get(i, (math.inf, None))
                    if fall is not None and start <= k < start + len(fall) // IMU_HZ:
                        j = (k - start) * IMU_HZ
                        acc = fall[j:j + IMU_HZ]
                    else:
                        loop = imu_loops[i % len(imu_loops)]
                        j = ((k + 37 * i) * IMU_HZ) % (len(loop) - IMU_HZ)
                        acc = loop[j:j + IMU_HZ]
                    payload = imu.encode_binary(imu.make_block(IMU_HZ, t0 + k + n / len(streams),
                                                               acc, seq=k))
                else:
                    loop = bed_loops[i % len(bed_loops)]
                    j = ((k + 11 * i) * BED_HZ) % (len(loop) - BED_HZ)
                    payload = bcg.encode_binary(bcg.BcgBlock(
                        BED_HZ, t0 + k + n / len(streams), loop[j:j + BED_HZ], k))
                c.publish(f"anxin/sensor/{dev}/{kind}", payload, qos=0)
                sent[(dev, k)] = time.perf_counter()
    finally:
        c.loop_stop()
        c.disconnect()


async def bench(args: argparse.Namespace) -> dict[str, object]:
    rx = Receiver()
    runner, hook = await rx.serve()
    imu_loops = [movement(s) for s in range(3)]
    bed_loops = [bed_sim.simulate(s, 600.0, BED_HZ, plan=bed_sim.Plan(movements_per_h=6.0)
                                  ).signal for s in range(3)]
    fall = wearable.at_rate(wearable.recording("F01", np.random.default_rng(9))[0], IMU_HZ)
    streams = ([(f"w{i}", "imu") for i in range(args.wearables)]
               + [(f"b{i}", "bcg") for i in range(args.beds)])
    first, every = 10, args.fall_every
    falls = {i: (first + n * every, fall)
             for n, i in enumerate(range(0, args.wearables, max(1, args.wearables // 50)))
             if first + n * every + len(fall) // IMU_HZ < args.seconds}
    with running_mosquitto(tuned=True) as (_, port), tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "anxin.toml"
        write_config(cfg, port, hook, args.wearables, args.beds)
        anxin = Path(sys.executable).with_name("anxin")
        gw = subprocess.Popen([str(anxin), "run", "--config", str(cfg)],
                              stderr=subprocess.PIPE, text=True)
        try:
            status = Path(tmp) / "data" / "status.json"
            deadline = time.monotonic() + 60
            while not (status.exists() and json.loads(status.read_text())["broker_connected"]):
                if gw.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gateway not up: {gw.stderr.read()[-2000:]}")
                await asyncio.sleep(0.2)
            sent: dict[tuple[str, int], float] = {}
            stop = threading.Event()
            t0 = math.floor(time.time()) + 1.0
            cpu0, wall0 = cpu_seconds(gw.pid), time.perf_counter()
            th = threading.Thread(target=publish_loop, args=(
                port, streams, args.seconds, t0, imu_loops, bed_loops, falls, sent, stop))
            th.start()
            while th.is_alive():
                await asyncio.sleep(0.2)
            await asyncio.sleep(3.0)  # the last alerts
            cpu = cpu_seconds(gw.pid) - cpu0
            wall = time.perf_counter() - wall0
            rss = rss_mb(gw.pid)
        finally:
            gw.terminate()
            gw.communicate(timeout=30)
        con = sqlite3.connect(Path(tmp) / "data" / "anxin.db")
        raw_rows = con.execute("SELECT count(*) FROM observations WHERE kind IN "
                               "('accel', 'bcg')").fetchone()[0]
        con.close()
    await runner.cleanup()
    latencies, by_device = [], {}
    for t, body in rx.alerts:
        if body["event"] != "fall":
            continue
        ev = body["evidence"]
        deciding = ev["device_time"] + ev["decided_s_after_impact"]
        phase = streams.index((body["device_id"], "imu")) / len(streams)
        k = math.floor(deciding - t0 - phase)  # the block that holds the deciding moment
        published = sent.get((body["device_id"], k))
        if published is not None:
            by_device[body["device_id"]] = (t - published) * 1e3
    latencies = list(by_device.values())
    others = sorted({b["event"] for _, b in rx.alerts} - {"fall"})
    return {
        "wearables": args.wearables, "imu_hz": IMU_HZ, "beds": args.beds, "bed_hz": BED_HZ,
        "seconds": args.seconds, "messages": len(sent),
        "messages_per_s": round(len(sent) / args.seconds),
        "samples_per_s": args.wearables * IMU_HZ + args.beds * BED_HZ,
        "falls_streamed": len(falls), "fall_alerts": len(by_device),
        "fall_latency_ms": {"p50": round(statistics.median(latencies), 1),
                            "p99": round(percentile(latencies, 99), 1),
                            "max": round(max(latencies), 1)} if latencies else None,
        "other_alerts": others, "bad_signatures": rx.bad,
        "gateway_cpu_share": round(cpu / wall, 3), "gateway_rss_mb": round(rss),
        "raw_rows_stored": raw_rows,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wearables", type=int, default=200)
    p.add_argument("--beds", type=int, default=50)
    p.add_argument("--seconds", type=int, default=120)
    p.add_argument("--fall-every", type=int, default=3, help="seconds between injected falls")
    args = p.parse_args()
    print(json.dumps(asyncio.run(bench(args)), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
