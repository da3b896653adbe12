"""End-to-end latency and ingest rate: sensor publish -> signed webhook received at the hotline.

Starts a real Mosquitto (nodelay, deep queue) on a random loopback port, the gateway as a
separate process (`anxin run`), and an in-process webhook receiver that verifies every
signature. Then:

1. latency: N smoke/SOS alarms spread over many devices, published one at a time at random
   intervals while a paho publisher sends `--background` normal sensor messages per second;
   latency = webhook received - MQTT publish (same process, same monotonic clock).
2. ingest: a burst of normal sensor messages as fast as paho can publish; rate = messages the
   gateway stored as observations per second (read back from its SQLite store).

Prints one JSON object. Not a test: figures vary ±30 % between runs on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from aiohttp import web  # noqa: E402

from alerts import wire  # noqa: E402
from bench.peers import Background  # noqa: E402
from tests._mosquitto import free_port, running_mosquitto  # noqa: E402

SECRET = "bench-secret"


def write_config(path: Path, broker_port: int, hook_port: int, n_alarm: int,
                 n_background: int) -> None:
    """A home with many alarm devices and many ordinary sensors."""
    lines = [
        '[gateway]\nid = "gw-bench"\ndata_dir = "./data"\nlog_level = "WARNING"\n',
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\n',
        '[home]\nid = "home-bench"\n',
        '[[home.residents]]\nname = "测试"\nage = 80\nability_level = 1\n',
        # every alarm in the bench is a distinct event: do not fold repeats together
        '[alerts]\ndedupe_window_s = 0\n',
    ]
    for i in range(n_alarm):
        model = "HS1SA" if i % 2 == 0 else "TS0215A_sos"
        lines.append(f'[[devices]]\nid = "alarm-{i}"\nsource = "zigbee2mqtt"\n'
                     f'topic = "zigbee2mqtt/alarm_{i}"\nmodel = "{model}"\nroom = "r{i % 7}"\n')
    for i in range(n_background):
        model = "RTCGQ11LM" if i % 2 == 0 else "MCCGQ11LM"
        lines.append(f'[[devices]]\nid = "bg-{i}"\nsource = "zigbee2mqtt"\n'
                     f'topic = "zigbee2mqtt/bg_{i}"\nmodel = "{model}"\nroom = "r{i % 7}"\n')
    lines.append(f'[[hotline]]\nkind = "webhook"\nurl = "http://127.0.0.1:{hook_port}/alerts"\n'
                 f'secret = "{SECRET}"\n')
    path.write_text("\n".join(lines))


def background_payload(i: int, rng: random.Random) -> tuple[str, bytes]:
    """A normal (non-alarm) whole-state payload for background device i.

    Its link quality varies about a level of its own (60-199 by device, +-8 from message to
    message), as a sensor's does where it stays put; battery and voltage repeat."""
    lqi = 60 + (i * 37) % 140 + rng.randint(-8, 8)
    if i % 2 == 0:
        body = {"battery": 100, "voltage": 3055, "illuminance": rng.randint(0, 200),
                "linkquality": lqi, "occupancy": rng.random() < 0.5}
    else:
        body = {"battery": 100, "contact": rng.random() < 0.5, "device_temperature": 26,
                "linkquality": lqi, "voltage": 3015}
    return f"zigbee2mqtt/bg_{i}", json.dumps(body).encode()


class Receiver:
    """A webhook receiver that verifies signatures and notes when each alert arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}  # device_id -> perf_counter at receipt
        self.bad = 0
        self.event = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        t = time.perf_counter()
        try:
            msg = wire.verify(SECRET.encode(), request.headers.get(wire.TIMESTAMP_HEADER),
                              request.headers.get(wire.SIGNATURE_HEADER), body, time.time())
        except wire.WireError:
            self.bad += 1
            return web.Response(status=401)
        self.note(t, msg.body)
        self.event.set()
        return web.json_response({"status": "accepted"})

    async def serve(self) -> tuple[web.AppRunner, int]:
        """Listen on a free loopback port for POST /alerts; (runner to clean up, port)."""
        app = web.Application()
        app.router.add_post("/alerts", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner, port

    def note(self, t: float, body: dict) -> None:
        """A verified alert arrived at `t` (perf_counter)."""
        self.arrived.setdefault(body["device_id"], t)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def publisher(port: int, name: str) -> mqtt.Client:
    """A connected paho client with its network loop running."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def run_background(port: int, rate: float, n_devices: int, stop: threading.Event,
                   sent: list[int]) -> None:
    """Publish `rate` normal messages per second until stopped."""
    c = publisher(port, "bench-background")
    rng = random.Random(7)
    interval = 1.0 / rate
    next_t = time.perf_counter()
    try:
        while not stop.is_set():
            topic, payload = background_payload(rng.randrange(n_devices), rng)
            c.publish(topic, payload, qos=0)
            sent[0] += 1
            next_t += interval
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    finally:
        c.loop_stop()
        c.disconnect()


def stored_observations(db: Path, kinds: tuple[str, ...] = ()) -> int:
    """Rows the gateway has written to its observations table (of `kinds`, if given)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        if kinds:
            return con.execute(
                "SELECT count(*) FROM observations WHERE kind IN "
                f"({','.join('?' * len(kinds))})", kinds).fetchone()[0]
        return con.execute("SELECT count(*) FROM observations").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def bench(args: argparse.Namespace) -> dict[str, object]:
    """Run both measurements; return the figures."""
    rx = Receiver()
    runner, hook_port = await rx.serve()
    results: dict[str, object] = {}
    with running_mosquitto(tuned=not args.mosquitto_defaults) as (_, port), \
            tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "anxin.toml"
        write_config(cfg, port, hook_port, args.alarms, args.devices)
        anxin = Path(sys.executable).with_name("anxin")
        gw = subprocess.Popen([str(anxin), "run", "--config", str(cfg)],
                              stderr=subprocess.PIPE, text=True)
        db = Path(tmp) / "data" / "anxin.db"
        try:
            ready_t = time.perf_counter()
            # wait until the gateway's session is subscribed: a probe alarm round-trips
            probe = publisher(port, "bench-probe")
            while "alarm-0" not in rx.arrived:
                if gw.poll() is not None:
                    raise RuntimeError(f"gateway exited: {gw.stderr.read()[-2000:]}")
                probe.publish("zigbee2mqtt/alarm_0", b'{"smoke": false}', qos=1)
                probe.publish("zigbee2mqtt/alarm_0", b'{"smoke": true}', qos=1)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rx.event.wait(), 0.5)
            startup_s = time.perf_counter() - ready_t

            # sensors' traffic from a process of its own (bench/peers.py says why)
            bg = Background(port, args.background, args.devices)
            try:
                await asyncio.sleep(1.0)  # background at steady state
                rng = random.Random(1)
                published: dict[str, float] = {}
                t_before = time.perf_counter()
                cpu_before = cpu_seconds(gw.pid)
                for i in range(1, args.alarms):
                    device = f"alarm-{i}"
                    body = b'{"smoke": true, "battery": 100, "linkquality": 90}' if i % 2 == 0 \
                        else b'{"action": "emergency", "battery": 100, "linkquality": 90}'
                    published[device] = time.perf_counter()
                    probe.publish(f"zigbee2mqtt/alarm_{i}", body, qos=1)
                    await asyncio.sleep(rng.uniform(0.005, 0.03))
                deadline = time.perf_counter() + 30
                while len([d for d in published if d in rx.arrived]) < len(published) \
                        and time.perf_counter() < deadline:
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - t_before
                cpu_pct = 100 * (cpu_seconds(gw.pid) - cpu_before) / elapsed
            finally:
                bg_rate = bg.stop()
            lat = [(rx.arrived[d] - t) * 1000 for d, t in published.items() if d in rx.arrived]
            results.update({
                "alarms_published": len(published),
                "alarms_received": len(lat),
                "bad_signatures": rx.bad,
                "background_msgs_per_s": round(bg_rate),
                "latency_ms": {"p50": round(statistics.median(lat), 2),
                               "p99": round(percentile(lat, 99), 2),
                               "max": round(max(lat), 2),
                               "mean": round(statistics.fmean(lat), 2)},
                "startup_to_first_alert_s": round(startup_s, 2),
                "gateway_cpu_pct_of_a_core": round(cpu_pct, 1),
                "gateway_rss_mb": round(rss_mb(gw.pid), 1),
            })

            # sustained ingest: a burst of normal messages, counted as stored observations
            await asyncio.sleep(1.5)
            kinds = ("motion", "contact")  # one a message (battery, link quality: on change)
            base = stored_observations(db, kinds)
            rng = random.Random(3)
            payloads = [background_payload(rng.randrange(args.devices), rng)
                        for _ in range(args.burst)]
            t0 = time.perf_counter()
            for topic, payload in payloads:
                probe.publish(topic, payload, qos=1)
            published_s = time.perf_counter() - t0
            target = base + args.burst
            last, last_change = base, time.perf_counter()
            while True:
                await asyncio.sleep(0.2)
                n = stored_observations(db, kinds)
                if n != last:
                    last, last_change = n, time.perf_counter()
                if n >= target or time.perf_counter() - last_change > 5:
                    break
            # observations are flushed once a second: the last change is when the final
            # batch landed, at most one flush interval after processing finished
            elapsed = last_change - t0
            got = last - base
            results["ingest"] = {
                "burst_messages": args.burst,
                "messages_stored": got,
                "publish_s": round(published_s, 2),
                "msgs_per_s": round(got / elapsed) if elapsed > 0 else None,
                "note": "QoS 1; includes up to 1 s of observation-flush delay",
            }
            probe.loop_stop()
            probe.disconnect()
        finally:
            gw.terminate()
            try:
                gw.wait(10)
            except subprocess.TimeoutExpired:
                gw.kill()
    await runner.cleanup()
    results["mosquitto"] = "defaults" if args.mosquitto_defaults else "anxin settings"
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    return results


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alarms", type=int, default=400, help="alarm events (one device each)")
    p.add_argument("--devices", type=int, default=200, help="background sensor devices")
    p.add_argument("--background", type=float, default=1000.0, help="background msgs/s")
    p.add_argument("--burst", type=int, default=20000, help="messages in the ingest burst")
    p.add_argument("--mosquitto-defaults", action="store_true",
                   help="run Mosquitto with its default queue and Nagle settings instead of "
                        "systemd/mosquitto-anxin.conf's, to see what they cost")
    args = p.parse_args()
    print(json.dumps(asyncio.run(bench(args)), ensure_ascii=False))


if __name__ == "__main__":
    main()
