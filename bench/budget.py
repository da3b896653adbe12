"""The performance budget of issue 8, measured on loopback against a real Mosquitto.

Every figure is set beside a floor measured in the same run on the same broker, so a busy
machine moves both. The gateway always runs as its own process (`anxin run`), as on a Pi;
readiness is its systemd READY=1 on a notify socket the bench holds.

- ingest: a burst of ordinary sensor messages (QoS 1, spread over the devices as a home
  spreads them) queued at the broker while the receiver is stopped (SIGSTOP), then drained
  when it continues: first by a bare aiomqtt subscriber that only counts (the floor), then by
  the gateway, through adapters, detectors and the store (every message checked stored).
  The end of the gateway's work is the moment its CPU goes quiet; its rate over the floor's
  is `ingest_ratio_to_bare`. No publisher competes for the CPU during either drain. Then the
  same burst from one device (a flood), read and shed: `shed_msgs_per_s`, how fast the
  gateway disposes of a flood (a flood beyond it backs up at the broker).
- latency: smoke/SOS alarms from many devices while 1,000 ordinary messages a second flow;
  sensor publish -> signed webhook received (the hotline's receipt). A paho subscriber of
  every topic in the bench process times the same alarms' bare MQTT round trip, so
  `gateway_added_p99_ms` is the gateway's own share.
- flood: the same, while one device floods at 10,000 msg/s (a separate process).
- footprint: 200 devices configured and a month of observations in the store: start to
  READY, resident memory, and the CPU of a quiet home (no messages) over a while.

Run alone: `python -m bench.budget ingest|latency|flood|footprint [options]`, or all of
them through `python -m bench --json`. Not a test: figures vary ±30 % on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402

from bench.e2e import (  # noqa: E402
    Receiver,
    background_payload,
    cpu_seconds,
    percentile,
    publisher,
    rss_mb,
    stored_observations,
    write_config,
)
from bench.peers import FLOOD_PAYLOAD, Background  # noqa: E402
from devices.observation import Observation  # noqa: E402
from gateway.store import Store  # noqa: E402
from tests._mosquitto import running_mosquitto  # noqa: E402

# one row per background message is certain: its motion or contact (battery and link quality
# are stored only when they change, gateway/retention.py)
MESSAGE_KINDS = ("motion", "contact")
ALARM_DEVICES = 20  # of the footprint's home: smoke detectors and SOS buttons


class Gateway:
    """`anxin run` as its own process, with a notify socket for its READY=1."""

    def __init__(self, cfg: Path, tmp: Path) -> None:
        self.tmp = tmp
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        path = tmp / "notify.sock"
        self.sock.bind(str(path))
        self.log = (tmp / "gateway.log").open("w")
        self.started = time.monotonic()
        # `anxin run` of the tree this bench is in (a checkout elsewhere measures itself)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "--config", str(cfg)], cwd=ROOT,
            env={**os.environ, "NOTIFY_SOCKET": str(path), "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds from the process's start to its READY=1."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.tail()}")
            self.sock.settimeout(0.2)
            with contextlib.suppress(TimeoutError):
                if b"READY=1" in self.sock.recv(4096):
                    return time.monotonic() - self.started
        raise RuntimeError(f"gateway not ready in {timeout} s: {self.tail()}")

    def tail(self) -> str:
        """The end of its log."""
        self.log.flush()
        return (self.tmp / "gateway.log").read_text()[-2000:]

    def stop(self) -> None:
        """Terminate it (a clean stop), kill if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case it was left stopped
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.sock.close()
        self.log.close()
        keep = os.environ.get("ANXIN_BENCH_KEEP_LOG")
        if keep:  # for whoever wants to see what the gateway said
            Path(keep).write_text((self.tmp / "gateway.log").read_text())


@contextlib.contextmanager
def home(n_alarm: int, n_background: int, hook_port: int, broker_port: int,
         prepare: object = None) -> Iterator[tuple[Gateway, Path]]:
    """A temporary home (config, data dir) and its gateway process; (gateway, database)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "anxin.toml"
        write_config(cfg, broker_port, hook_port, n_alarm, n_background)
        db = Path(tmp) / "data" / "anxin.db"
        if callable(prepare):
            prepare(db)
        gw = Gateway(cfg, Path(tmp))
        try:
            yield gw, db
        finally:
            gw.stop()


def publish_all(port: int, messages: list[tuple[str, bytes]], qos: int = 1) -> float:
    """Publish every message and wait until the broker has them all; seconds taken."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-burst-{time.time()}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = time.perf_counter()
    try:
        infos = [c.publish(topic, payload, qos=qos) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(60)
    finally:
        c.loop_stop()
        c.disconnect()
    return time.perf_counter() - t0


def wait_quiet(pid: int, quiet_s: float = 0.3, timeout: float = 120.0) -> float:
    """Poll a process's CPU time until it stops growing for `quiet_s`; time.monotonic() of
    the last growth seen (its work's end, to within a poll)."""
    last_cpu, last_change = cpu_seconds(pid), time.monotonic()
    deadline = last_change + timeout
    while time.monotonic() < deadline:
        time.sleep(0.01)
        cpu = cpu_seconds(pid)
        now = time.monotonic()
        if cpu != last_cpu:
            last_cpu, last_change = cpu, now
        elif now - last_change >= quiet_s:
            return last_change
    raise RuntimeError("the process never went quiet")


def burst(n: int, devices: int, seed: int = 3) -> list[tuple[str, bytes]]:
    """`n` ordinary messages, each device in turn (as a home's many sensors interleave)."""
    rng = random.Random(seed)
    return [background_payload(i % devices, rng) for i in range(n)]


async def bench_ingest(args: argparse.Namespace) -> dict[str, object]:
    """The gateway's ingest rate against a bare aiomqtt subscriber's, same broker, same run."""
    messages = burst(args.burst, args.devices)
    rx = Receiver()
    runner, hook_port = await rx.serve()
    try:
        with running_mosquitto() as (_, port):
            bare_before = bare_drain(port, messages, "bench-bare-1")
            with home(2, args.devices, hook_port, port) as (gw, db):
                gw.wait_ready()
                await asyncio.sleep(1.0)  # its start-up work done
                spy = profiler(gw.pid, args.profile)
                os.kill(gw.pid, signal.SIGSTOP)
                base = stored_observations(db, MESSAGE_KINDS)
                publish_all(port, messages)
                cpu0 = cpu_seconds(gw.pid)
                t0 = time.monotonic()
                os.kill(gw.pid, signal.SIGCONT)
                end = await asyncio.to_thread(wait_quiet, gw.pid)
                cpu = cpu_seconds(gw.pid) - cpu0
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(30)
                await asyncio.sleep(1.5)  # the last observations' flush (once a second)
                stored = stored_observations(db, MESSAGE_KINDS) - base
                shed = flood_rows(db)
                rate = stored / (end - t0)
                # the same burst from one device gone wild: read, limited and shed
                os.kill(gw.pid, signal.SIGSTOP)
                publish_all(port, [("zigbee2mqtt/bg_0", FLOOD_PAYLOAD)] * len(messages))
                t0 = time.monotonic()
                os.kill(gw.pid, signal.SIGCONT)
                shed_rate = len(messages) / (await asyncio.to_thread(wait_quiet, gw.pid) - t0)
            # the floor before and after the gateway: a machine whose load changed in between
            # moves both, and their mean is what the gateway is set against
            bare_after = bare_drain(port, messages, "bench-bare-2")
            bare_rate = (bare_before + bare_after) / 2
    finally:
        await runner.cleanup()
    return {
        "ingest_msgs_per_s": round(rate),
        "bare_aiomqtt_msgs_per_s": round(bare_rate),
        "ingest_ratio_to_bare": round(rate / bare_rate, 3),
        "shed_msgs_per_s": round(shed_rate),
        "ingest_detail": {"burst": len(messages), "devices": args.devices,
                          "bare_before_after": [round(bare_before), round(bare_after)],
                          "messages_stored": stored, "flood_reports": shed,
                          "gateway_cpu_us_per_msg": round(cpu / max(stored, 1) * 1e6, 1),
                          "qos": 1},
    }


def profiler(pid: int, out: str | None) -> subprocess.Popen[bytes] | None:
    """py-spy recording `pid` into `out` (collapsed stacks), if asked and installed (a
    developer's tool: `pip install py-spy`, not a dependency of anxin)."""
    if not out:
        return None
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        raise RuntimeError("--profile needs py-spy: venv/bin/pip install py-spy")
    proc = subprocess.Popen([str(spy), "record", "--pid", str(pid), "--rate", "250",
                             "--format", "raw", "--output", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached
    return proc


def bare_drain(port: int, messages: list[tuple[str, bytes]], client_id: str) -> float:
    """The floor: messages/s a bare aiomqtt subscriber (bench/peers.py) drains `messages`
    queued for it at the broker while it was stopped."""
    bare = subprocess.Popen(
        [sys.executable, "-m", "bench.peers", "subscriber", "--port", str(port),
         "--count", str(len(messages)), "--topic", "zigbee2mqtt/#", "--client-id", client_id],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert bare.stdout is not None
        if bare.stdout.readline().strip() != "ready":
            raise RuntimeError("bare subscriber did not start")
        os.kill(bare.pid, signal.SIGSTOP)
        publish_all(port, messages)
        t0 = time.monotonic()
        os.kill(bare.pid, signal.SIGCONT)
        floor = json.loads(bare.stdout.readline())
        return floor["received"] / (floor["last_at"] - t0)
    finally:
        bare.kill()
        bare.wait()


def flood_rows(db: Path) -> int:
    """Flood entries in the gateway's quarantine (a bench that sheds measures nothing)."""
    import sqlite3  # noqa: PLC0415

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("SELECT count(*) FROM quarantine WHERE category = 'flood'"
                           ).fetchone()[0]
    finally:
        con.close()


async def warm_up(probe: mqtt.Client, rx: Receiver) -> None:
    """An alarm from alarm-0 until one reaches the receiver: subscribed, connected to the
    hotline, its start-up work done (as bench/e2e.py's probe)."""
    deadline = time.monotonic() + 60
    while "alarm-0" not in rx.arrived:
        if time.monotonic() > deadline:
            raise RuntimeError("no alarm reached the receiver within 60 s")
        probe.publish("zigbee2mqtt/alarm_0", b'{"smoke": false}', qos=1)
        probe.publish("zigbee2mqtt/alarm_0", b'{"smoke": true}', qos=1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rx.event.wait(), 0.5)
    await asyncio.sleep(1.0)


def summary(values: list[float]) -> dict[str, float]:
    """p50, p99, max of latencies in ms."""
    return {"p50": round(statistics.median(values), 2), "p99": round(percentile(values, 99), 2),
            "max": round(max(values), 2)}


async def alarm_run(args: argparse.Namespace, *, flood_rate: float = 0.0) -> dict[str, object]:
    """Alarms through the gateway at `args.background` msg/s of ordinary traffic (and a flood
    from one device if `flood_rate`): gateway and bare-MQTT latencies of the same alarms."""
    rx = Receiver()
    runner, hook_port = await rx.serve()
    out: dict[str, object] = {}
    try:
        with running_mosquitto() as (_, port), \
                home(args.alarms + 1, args.devices, hook_port, port) as (gw, db):
            gw.wait_ready()
            probe = publisher(port, f"bench-alarms-{time.time()}")
            # Under a flood the bare subscriber takes only the alarms: one taking the flood too
            # would need a core of its own, which a 2-core machine does not have to spare.
            bare_topic = "the alarm topics" if flood_rate else "#"
            only = [a for i in range(args.alarms + 1)
                    for a in ("--topic", f"zigbee2mqtt/alarm_{i}")] if flood_rate else []
            bare = subprocess.Popen(
                [sys.executable, "-m", "bench.peers", "timer", "--port", str(port),
                 "--prefix", "zigbee2mqtt/alarm_", *only],
                stdout=subprocess.PIPE, text=True, cwd=ROOT)
            assert bare.stdout is not None
            if bare.stdout.readline().strip() != "ready":
                raise RuntimeError("bare MQTT timer did not start")
            await warm_up(probe, rx)
            spy = profiler(gw.pid, args.profile)
            # sensors' traffic from a process of its own (bench/peers.py says why)
            bg = Background(port, args.background, args.devices)
            flooder = None
            if flood_rate:
                flooder = subprocess.Popen(
                    [sys.executable, "-m", "bench.peers", "flood", "--port", str(port),
                     "--topic", "zigbee2mqtt/bg_0", "--rate", str(flood_rate),
                     "--seconds", str(args.flood_seconds
                                      or args.alarms * args.alarm_gap + 3.0)],
                    stdout=subprocess.PIPE, text=True, cwd=ROOT)
            try:
                await asyncio.sleep(1.0)  # background (and flood) at steady state
                rng = random.Random(1)
                published: dict[str, tuple[float, float]] = {}  # perf_counter, monotonic
                cpu0, t_start = cpu_seconds(gw.pid), time.perf_counter()
                for i in range(1, args.alarms + 1):
                    if flooder is not None and flooder.poll() is not None:
                        break  # the flood is over: what follows is not under it
                    body = b'{"smoke": true, "battery": 100, "linkquality": 90}' if i % 2 == 0 \
                        else b'{"action": "emergency", "battery": 100, "linkquality": 90}'
                    published[f"alarm-{i}"] = time.perf_counter(), time.monotonic()
                    probe.publish(f"zigbee2mqtt/alarm_{i}", body, qos=1)
                    await asyncio.sleep(rng.uniform(0.5, 1.5) * args.alarm_gap)
                deadline = time.perf_counter() + 30
                while any(d not in rx.arrived for d in published) \
                        and time.perf_counter() < deadline:
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - t_start
                cpu_pct = 100 * (cpu_seconds(gw.pid) - cpu0) / elapsed
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(30)
            finally:
                bg_rate = bg.stop()
                probe.loop_stop()
                probe.disconnect()
                bare.terminate()
                bare_arrived = json.loads(bare.communicate(timeout=30)[0].strip() or "{}")
                if flooder is not None:
                    if flooder.poll() is None:
                        flooder.terminate()
                    flood_out = flooder.communicate(timeout=30)[0]
            lat = [(rx.arrived[d] - t) * 1000 for d, (t, _) in published.items()
                   if d in rx.arrived]
            topics = {d: "zigbee2mqtt/alarm_" + d.split("-")[1] for d in published}
            bare_lat = [(bare_arrived[topics[d]] - t) * 1000 for d, (_, t) in published.items()
                        if topics[d] in bare_arrived]
            out = {"alarms_published": len(published), "alarms_received": len(lat),
                   "bad_signatures": rx.bad,
                   "background_msgs_per_s": round(bg_rate),
                   "gateway": summary(lat),
                   "bare_mqtt": {**summary(bare_lat), "subscribed_to": bare_topic},
                   "gateway_cpu_pct": round(cpu_pct, 1)}
            if flooder is not None:
                with contextlib.suppress(ValueError):
                    out["flood"] = json.loads(flood_out.strip().splitlines()[-1])
                await asyncio.sleep(1.5)
                out["flood_reports"] = flood_rows(db)
    finally:
        await runner.cleanup()
    return out


async def bench_latency(args: argparse.Namespace) -> dict[str, object]:
    """Alarm latency at 1,000 msg/s background, and the bare MQTT round trip beside it."""
    r = await alarm_run(args)
    g, b = r["gateway"], r["bare_mqtt"]
    assert isinstance(g, dict)
    assert isinstance(b, dict)
    return {"alarm_latency_p50_ms": g["p50"], "alarm_latency_p99_ms": g["p99"],
            "bare_mqtt_p50_ms": b["p50"], "bare_mqtt_p99_ms": b["p99"],
            "gateway_added_p99_ms": round(g["p99"] - b["p99"], 2),
            "latency_detail": r}


async def bench_flood(args: argparse.Namespace) -> dict[str, object]:
    """Alarm latency while one device floods at `args.flood_rate` msg/s."""
    r = await alarm_run(args, flood_rate=args.flood_rate)
    g = r["gateway"]
    assert isinstance(g, dict)
    return {"flood_alarm_latency_p50_ms": g["p50"], "flood_alarm_latency_p99_ms": g["p99"],
            "flood_detail": r}


def month_of_data(db: Path, devices: int, days: int, report_min: float) -> int:
    """Fill a new store with `days` of what `devices` sensors report (each every
    `report_min` minutes: its state, battery and link quality; motion sensors also motion
    events through the day); the rows written."""
    store = Store(db)
    rng = random.Random(5)
    end = time.time()
    start = end - days * 86400
    rows = 0
    try:
        for d in range(devices):
            # write_config's devices: 20 alarm devices, then the ordinary ones
            device = f"alarm-{d}" if d < ALARM_DEVICES else f"bg-{d - ALARM_DEVICES}"
            kind = "smoke" if d < ALARM_DEVICES else "motion" if d % 2 == 0 else "contact"
            batch: list[Observation] = []
            t = start + rng.uniform(0, report_min * 60)
            while t < end:
                value: object = kind != "smoke" and rng.random() < 0.5
                if kind == "contact":
                    value = "open" if value else "closed"
                batch += [Observation("home-bench", device, kind, value, t, f"r{d % 7}"),
                          Observation("home-bench", device, "battery", 90, t, f"r{d % 7}"),
                          Observation("home-bench", device, "link_quality",
                                      rng.randint(20, 200), t, f"r{d % 7}")]
                t += report_min * 60 * rng.uniform(0.5, 1.5)
            store.add_observations(batch)  # type: ignore[arg-type]
            rows += len(batch)
    finally:
        store.close()
    return rows


async def bench_footprint(args: argparse.Namespace) -> dict[str, object]:
    """Start to READY, memory and idle CPU with 200 devices and a month in the store."""
    rx = Receiver()
    runner, hook_port = await rx.serve()
    made: dict[str, float] = {}

    def prepare(db: Path) -> None:
        t = time.perf_counter()
        made["rows"] = month_of_data(db, args.footprint_devices, args.days, args.report_min)
        made["s"] = time.perf_counter() - t
        made["mb"] = sum(p.stat().st_size for p in db.parent.glob("anxin.db*")) / 2**20

    try:
        with running_mosquitto() as (_, port), \
                home(ALARM_DEVICES, args.footprint_devices - ALARM_DEVICES, hook_port, port,
                     prepare) as (gw, _):
            startup = gw.wait_ready()
            await asyncio.sleep(args.settle)  # start-up work (learning from the month) done
            cpu0, t0 = cpu_seconds(gw.pid), time.monotonic()
            await asyncio.sleep(args.idle_seconds)
            idle = 100 * (cpu_seconds(gw.pid) - cpu0) / (time.monotonic() - t0)
            rss = rss_mb(gw.pid)
    finally:
        await runner.cleanup()
    return {"rss_mb": round(rss, 1), "startup_s": round(startup, 2),
            "idle_cpu_pct": round(idle, 2),
            "footprint_detail": {"devices": args.footprint_devices, "days": args.days,
                                 "observations_in_store": int(made["rows"]),
                                 "store_mb": round(made["mb"], 1),
                                 "idle_measured_s": args.idle_seconds}}


BENCHES = {"ingest": bench_ingest, "latency": bench_latency, "flood": bench_flood,
           "footprint": bench_footprint}


def add_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `python -m bench` and each sub-bench run alone."""
    p.add_argument("--burst", type=int, default=20_000, help="ingest: messages in the burst")
    p.add_argument("--devices", type=int, default=200, help="ordinary sensor devices")
    p.add_argument("--alarms", type=int, default=200, help="latency: alarm events")
    p.add_argument("--alarm-gap", type=float, default=0.1,
                   help="latency: mean seconds between alarms (each is measured on its own; "
                        "many alarms at once queue behind each other's durable commits, which "
                        "is bench/outage.py's subject)")
    p.add_argument("--background", type=float, default=1000.0, help="ordinary msgs/s")
    p.add_argument("--flood-rate", type=float, default=10_000.0, help="flood: msgs/s")
    p.add_argument("--flood-seconds", type=float,
                   help="flood: how long (default: as long as the alarms take, and 3 s)")
    p.add_argument("--profile", metavar="FILE",
                   help="record the gateway with py-spy (collapsed stacks) while measured")
    p.add_argument("--footprint-devices", type=int, default=200)
    p.add_argument("--days", type=int, default=30, help="footprint: days of data stored")
    p.add_argument("--report-min", type=float, default=30.0,
                   help="footprint: minutes between a device's reports in that data")
    p.add_argument("--settle", type=float, default=5.0,
                   help="footprint: seconds after READY before idle CPU is measured")
    p.add_argument("--idle-seconds", type=float, default=30.0,
                   help="footprint: seconds of quiet home measured")


def main() -> None:
    """Run one sub-bench; print its JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bench", choices=sorted(BENCHES))
    add_options(p)
    args = p.parse_args()
    print(json.dumps(asyncio.run(BENCHES[args.bench](args)), ensure_ascii=False))


if __name__ == "__main__":
    main()
