"""Hotline load (issue 6): 5,000 gateways' heartbeats and a burst of 1,000 alerts in a minute.

The real hotline (`anxin hotline`, a fresh SQLite store) runs as its own process, so the load
generator shares neither its event loop nor its CPU accounting. This process plays:

- `--gateways` gateways, each sending its heartbeat the way a real gateway does: its signed
  feedback long poll (gateway/feedback.py: `GET /feedback?...&wait=25`, one connection per
  gateway held until the hotline answers, the answer's signature checked, then the next
  poll at once). Every poll is the gateway's sign of life for the hotline's supervision, so
  this is both the heartbeat and the connection load a centre carries. Starts are spread
  over `--ramp-s`, as gateways that came up at different times are.
- a burst of `--alerts` signed `anxin.alert/1` alerts (alerts/wire.encode_alert; mixed
  events and severities, residents, contacts and a 3 h timeline as a gateway sends them)
  from as many different gateways, at random moments within `--burst-s`; `--duplicates` of
  them are delivered a second time a moment later, as a gateway does when an
  acknowledgement is lost.
- `--operators` logged-in operators, each watching the live queue (`GET /events`), and one
  of them accepting an alert every `--accept-every-s` (the accepted alert's gateway must
  learn it through its long poll); the console's page and JSON API sampled every second.

Measured: queue-update latency (POST sent -> the alert on each operator's stream), /alerts
response times, alerts lost (every alert_id in the store once, with its deliveries counted,
and on every stream exactly once as new), false loss-of-supervision alerts, heartbeat
lateness, accept -> gateway feedback latency, page/API response times during the burst,
the hotline's CPU and memory, and this generator's own event-loop lag (its share of the
error). Prints one JSON object. Not a test: figures vary between runs on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import aiomqtt  # noqa: E402
from yarl import URL  # noqa: E402

from alerts import wire  # noqa: E402
from alerts.alert import Alert, AlertState  # noqa: E402
from alerts.ulid import ulid  # noqa: E402
from bench.e2e import cpu_seconds, percentile, rss_mb  # noqa: E402
from detectors.finding import Finding  # noqa: E402
from tests import _hotline  # noqa: E402
from tests._mosquitto import free_port, running_mosquitto  # noqa: E402

SECRET = b"hotline-load-secret"
TZ = ZoneInfo("Asia/Shanghai")
SLOW_S = 1.0  # the console must answer within this
# What an operator's browser loads: the queue page, its JSON, an alert's detail page, the
# gateways' list (supervision), sampled once a second each during the burst.
CONSOLE_PATHS = ["/", "/api/queue", "/alerts/{latest}", "/api/gateways"]

# event, Contact ID code, severity, detector, weight in the burst (a bad night in a city:
# mostly technical and care alerts, a steady share of emergencies)
KINDS = [
    ("sos", 101, 1, "instant", 8), ("fall", 100, 1, "fall_imu", 6),
    ("smoke", 111, 1, "instant", 3), ("gas", 151, 1, "instant", 2),
    ("no_breathing", 100, 1, "vitals", 1), ("water_leak", 154, 2, "instant", 5),
    ("inactivity", 641, 2, "activity", 6), ("bathroom_overstay", 641, 2, "activity", 3),
    ("missed_checkin", 641, 3, "activity", 8), ("call_request", 101, 3, "intercom", 6),
    ("routine_deviation", 641, 3, "routine", 2), ("low_battery", 384, 4, "instant", 20),
    ("offline", 381, 4, "supervision", 20), ("tamper", 383, 4, "instant", 2),
]
ROOMS = ["bedroom", "bathroom", "kitchen", "living_room", "entrance"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
DISTRICTS = ["鼓楼区/湖南路街道", "玄武区/梅园新村街道", "秦淮区/夫子庙街道", "建邺区/南苑街道"]


# --- the hotline process -----------------------------------------------------------------


@dataclass
class Hotline:
    """The hotline under test: its process, where it listens, its store and log."""

    proc: subprocess.Popen[bytes]
    base: str
    db: Path
    log: Path


def start_hotline(tmp: Path, supervision_s: float, mqtt_url: str | None = None) -> Hotline:
    """`anxin hotline` on a free loopback port with a fresh store (not yet ready); with
    `mqtt_url`, also receiving the MQTT uplink from that broker."""
    port = free_port()
    key = tmp / "hotline.key"
    key.write_bytes(SECRET)
    db, log = tmp / "hotline.db", tmp / "hotline.log"
    # `anxin hotline` is exactly hotline.server.main; called directly, the hotline process
    # imports only hotline/ and alerts/, as a centre's install would.
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from hotline.server import main; "
             "sys.exit(main(sys.argv[1:]))", "--host", "127.0.0.1", "--port", str(port),
             "--secret-file", str(key), "--db", str(db), "--supervision-s", str(supervision_s),
             *(["--mqtt", mqtt_url] if mqtt_url else [])],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    return Hotline(proc, f"http://127.0.0.1:{port}", db, log)


async def wait_ready(http: aiohttp.ClientSession, h: Hotline, timeout: float = 30.0) -> None:
    """Until the hotline answers /healthz."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if h.proc.poll() is not None:
            raise RuntimeError(f"hotline exited: {h.log.read_text()[-2000:]}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{h.base}/healthz") as r:
                if r.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"hotline not ready within {timeout} s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it does not go."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()




# --- operators -----------------------------------------------------------------------------


@dataclass
class Operator:
    """A logged-in operator: a session on the console (its cookie and CSRF token)."""

    name: str
    http: aiohttp.ClientSession
    base: str
    headers: dict[str, str] = field(default_factory=dict)  # the CSRF token for POSTs

    async def accept(self, alert_id: str) -> int:
        """Take charge of an alert; the HTTP status."""
        async with self.http.post(f"{self.base}/api/alerts/{alert_id}/accept", json={},
                                  headers=self.headers) as r:
            await r.read()
            return r.status


async def login(h: Hotline, name: str) -> Operator:
    """An operator account made with the hotline's own function, logged in through the
    login form as a browser is (session cookie, CSRF token), as tests/_hotline.py does."""
    password = secrets.token_urlsafe(12)
    _hotline.add_operator(h.db, name, "operator", password)
    http = _hotline.session()
    try:
        csrf = await _hotline.login(http, h.base, name, password)
    except BaseException:
        await http.close()
        raise
    return Operator(name, http, h.base, _hotline.headers(csrf))


@dataclass
class Stream:
    """What one operator's live queue (`GET /events`) showed, and when."""

    first_seen: dict[str, float] = field(default_factory=dict)  # alert_id -> perf_counter
    first_wall: dict[str, float] = field(default_factory=dict)  # the same, time.time()
    received_at: dict[str, float] = field(default_factory=dict)  # the hotline's stamp
    new: Counter[str] = field(default_factory=Counter)  # alert_id -> times shown as new
    events: int = 0
    dropped: int = 0  # times the hotline ended the stream (a reader too far behind)
    silent: set[str] = field(default_factory=set)  # loss-of-supervision alerts shown
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self, data: bytes, t: float) -> None:
        """One `event: alert` arrived at `t`."""
        row = json.loads(data)
        alert_id = row.get("alert_id")
        if not isinstance(alert_id, str):
            return
        self.events += 1
        if alert_id not in self.first_seen:
            self.first_seen[alert_id], self.first_wall[alert_id] = t, time.time()
            if isinstance(row.get("received_at"), (int, float)):
                self.received_at[alert_id] = row["received_at"]
        # Shown as new: its first delivery, before anyone acted on it.
        if row.get("deliveries", 1) == 1 and row.get("state", "received") == "received":
            self.new[alert_id] += 1
        if row.get("event") == "gateway_silent":
            self.silent.add(alert_id)
        self.changed.set()


async def watch(op: Operator, stream: Stream) -> None:
    """Read the operator's server-sent events until cancelled; reconnect as a browser's
    EventSource does if the hotline ends the stream (counted: alerts meanwhile are missed)."""
    while True:
        async with op.http.get(f"{op.base}/events", headers=op.headers,
                               allow_redirects=False) as r:
            if r.status != 200:
                raise RuntimeError(f"/events answered {r.status} (not logged in?)")
            stream.connected.set()
            buf = b""
            async for chunk in r.content.iter_any():
                t = time.perf_counter()
                buf += chunk
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    kind, data = "message", []
                    for line in block.split(b"\n"):
                        if line.startswith(b"event:"):
                            kind = line[6:].strip().decode()
                        elif line.startswith(b"data:"):
                            data.append(line[5:].lstrip())
                    if kind == "alert" and data:
                        stream.note(b"\n".join(data), t)
        stream.dropped += 1
        await asyncio.sleep(0.5)


# --- gateways ------------------------------------------------------------------------------


@dataclass
class Gateways:
    """The simulated gateways' heartbeats (feedback long polls) and what they learned."""

    base: str
    wait_s: float
    polls: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    late_s: list[float] = field(default_factory=list)  # answer time beyond the wait
    max_gap_s: dict[str, float] = field(default_factory=dict)  # longest time between polls
    feedback: dict[str, float] = field(default_factory=dict)  # accepted id -> time.time()
    started: set[str] = field(default_factory=set)

    async def run(self, http: aiohttp.ClientSession, gateway_id: str, home_id: str,
                  delay: float) -> None:
        """One gateway's feedback poller, as gateway/feedback.py runs it, until cancelled."""
        await asyncio.sleep(delay)
        self.started.add(gateway_id)
        cursor, failures, last = "0", 0, None
        url = URL(f"{self.base}/feedback")
        while True:
            wait = 0 if failures else self.wait_s
            u = url.update_query(gateway_id=gateway_id, home_id=home_id, after=cursor,
                                 wait=f"{wait:g}")
            ts = int(time.time())
            headers = {wire.TIMESTAMP_HEADER: str(ts), wire.SIGNATURE_HEADER: wire.sign(
                SECRET, ts, wire.request_signature_base("GET", u.raw_path_qs))}
            t0 = time.perf_counter()
            if last is not None:
                self.max_gap_s[gateway_id] = max(self.max_gap_s.get(gateway_id, 0.0), t0 - last)
            last = t0
            try:
                async with http.get(u, headers=headers) as r:
                    body = await r.read()
                    if r.status != 200:
                        raise ValueError(f"HTTP {r.status}")
                    wire.check_signature(SECRET, r.headers.get(wire.TIMESTAMP_HEADER),
                                         r.headers.get(wire.SIGNATURE_HEADER), body, time.time())
                    msg = wire.decode_feedback(body)
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
                self.errors[type(e).__name__ if not isinstance(e, ValueError) else str(e)] += 1
                failures += 1
                await asyncio.sleep(min(30.0, 0.5 * 2 ** min(failures, 10)) * random.random())
                continue
            took = time.perf_counter() - t0
            self.polls += 1
            if not msg["events"] and wait:
                self.late_s.append(max(0.0, took - wait))
            failures = 0
            for ev in msg["events"]:
                if ev["action"] == "accepted":
                    self.feedback.setdefault(ev["alert_id"], time.time())
            cursor = msg["cursor"]

    def summary(self) -> dict[str, Any]:
        """What the fleet saw, to send back to the parent."""
        return {"started": len(self.started), "polls": self.polls, "errors": dict(self.errors),
                "late_ms": dist_ms(self.late_s), "feedback": self.feedback,
                "max_gap_s": round(max(self.max_gap_s.values(), default=0.0), 1)}


def fleet_process(base: str, gateways: list[tuple[str, str]], wait_s: float, ramp_s: float,
                  conn: Connection) -> None:
    """The gateways in a process of their own, so their load does not lag the measuring
    process's clock; runs until the parent sends anything on `conn`, then sends back
    `Gateways.summary()`."""
    asyncio.run(_fleet(base, gateways, wait_s, ramp_s, conn))


async def _fleet(base: str, gateways: list[tuple[str, str]], wait_s: float, ramp_s: float,
                 conn: Connection) -> None:
    raise_fd_limit(len(gateways) + 100)
    fleet = Gateways(base, wait_s)
    # Like the gateway's poller: timeout = wait + 15 s (one session here for all of them).
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=wait_s + 15),
                                     connector=aiohttp.TCPConnector(limit=0)) as http:
        tasks = [asyncio.create_task(fleet.run(http, g, home, ramp_s * i / len(gateways)))
                 for i, (g, home) in enumerate(gateways)]
        lag: list[float] = []
        tasks.append(asyncio.create_task(loop_lag(lag)))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    conn.send({**fleet.summary(), "loop_lag_ms": dist_ms(lag),
               "cpu_s": sum(os.times()[:2])})
    conn.close()


# --- alerts --------------------------------------------------------------------------------


def make_alert(rng: random.Random, gateway_id: str, home_id: str, now: float) -> bytes:
    """A signed-ready `anxin.alert/1` body, as a home's gateway would send it."""
    event, code, severity, detector, _ = rng.choices(KINDS, [k[4] for k in KINDS])[0]
    room = rng.choice(ROOMS)
    at = now - rng.uniform(0, 30)
    finding = Finding(detector=detector, home=home_id, code=code, event=event,
                      severity=severity, at=at, room=room, device=f"{event}-{room}",
                      evidence={"kind": event, "value": True, "room": room})
    alert = Alert(id=ulid(at), finding=finding, state=AlertState.RAISED,
                  history=[(AlertState.RAISED, at + 0.2, "")])
    n = rng.choice([1, 1, 1, 2])
    residents = [{"name": rng.choice(SURNAMES) + rng.choice(["秀英", "桂兰", "建国", "志强"]),
                  "age": rng.randint(68, 96), "ability_level": rng.randint(0, 4),
                  "conditions": rng.sample(["高血压", "糖尿病", "冠心病", "轻度认知障碍"],
                                           rng.randint(0, 2)),
                  "medication": rng.choice(["", "早晚各一片降压药", "胰岛素，饭前"])}
                 for _ in range(n)]
    contacts = [{"name": "女儿", "relation": "daughter", "phone": "13800000000"},
                {"name": "社区网格员", "relation": "community worker", "phone": "02584000000"}]
    timeline = [wire.timeline_entry(at - 10800 + i * 10800 / 80, rng.choice(ROOMS),
                                    f"motion-{i % 5}", "occupancy", rng.random() < 0.5, TZ)
                for i in range(rng.randint(20, 120))]
    return wire.encode_alert(alert, gateway_id=gateway_id, sequence=rng.randint(1, 9999),
                             residents=residents, tz=TZ, address="南京市某路1号3单元502",
                             district=rng.choice(DISTRICTS), contacts=contacts,
                             timeline=timeline)


@dataclass
class Sent:
    """What the burst sent and how /alerts answered."""

    at: dict[str, float] = field(default_factory=dict)  # alert_id -> perf_counter of 1st POST
    wall: dict[str, float] = field(default_factory=dict)  # the same, time.time()
    gateway: dict[str, str] = field(default_factory=dict)  # alert_id -> gateway_id
    response_s: list[float] = field(default_factory=list)
    puback_s: list[float] = field(default_factory=list)  # MQTT uplink: publish -> PUBACK
    over_mqtt: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    duplicates_sent: int = 0
    failed: list[str] = field(default_factory=list)


async def post_alert(http: aiohttp.ClientSession, base: str, body: bytes, alert_id: str,
                     sent: Sent, *, first: bool) -> None:
    """POST one alert as a gateway's webhook sender does (signed at send time)."""
    headers = wire.signed_headers(SECRET, int(time.time()), body)
    t0 = time.perf_counter()
    if first:
        sent.at[alert_id], sent.wall[alert_id] = t0, time.time()
    try:
        async with http.post(f"{base}/alerts", data=body, headers=headers) as r:
            await r.read()
            sent.statuses[r.status] += 1
    except (aiohttp.ClientError, TimeoutError, OSError) as e:
        sent.failed.append(f"{alert_id}: {type(e).__name__}")
        return
    sent.response_s.append(time.perf_counter() - t0)


class Uplink:
    """A gateway on the MQTT uplink (gateway/transports/mqtt_uplink.py): a persistent
    session with a retained online status and an "offline" last will, alerts published as
    signed envelopes (QoS 1) on `anxin/<gateway>/alerts`, operators' actions back on
    `anxin/<gateway>/feedback`."""

    def __init__(self, port: int, gateway_id: str, home_id: str) -> None:
        self.port, self.gateway_id, self.home_id = port, gateway_id, home_id
        self.client: aiomqtt.Client | None = None
        self.ready = asyncio.Event()
        self.feedback: dict[str, float] = {}  # accepted alert_id -> time.time(), over MQTT

    def _status(self, state: str) -> bytes:
        return json.dumps({"state": state, "gateway_id": self.gateway_id,
                           "home_id": self.home_id}).encode()

    async def run(self) -> None:
        """Connected until cancelled (then a clean disconnect: no last will)."""
        status = f"anxin/{self.gateway_id}/status"
        async with aiomqtt.Client(
                "127.0.0.1", self.port, identifier=f"anxin-uplink-{self.gateway_id}",
                clean_session=False, keepalive=30,
                will=aiomqtt.Will(status, self._status("offline"), qos=1, retain=True)) as c:
            await c.subscribe(f"anxin/{self.gateway_id}/feedback", qos=1)
            await c.publish(status, self._status("online"), qos=1, retain=True)
            self.client = c
            self.ready.set()
            async for m in c.messages:
                payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                msg = wire.decode_feedback(wire.open_envelope(SECRET, payload, time.time()))
                for ev in msg["events"]:
                    if ev["action"] == "accepted":
                        self.feedback.setdefault(ev["alert_id"], time.time())

    async def send(self, body: bytes, alert_id: str, sent: Sent, *, first: bool) -> None:
        """Publish one alert; return when the broker has acknowledged it (PUBACK)."""
        assert self.client is not None
        t0 = time.perf_counter()
        if first:
            sent.at[alert_id], sent.wall[alert_id] = t0, time.time()
        try:
            await self.client.publish(f"anxin/{self.gateway_id}/alerts",
                                      wire.envelope(SECRET, int(time.time()), body), qos=1,
                                      timeout=30)
        except (aiomqtt.MqttError, TimeoutError) as e:
            sent.failed.append(f"{alert_id}: {type(e).__name__}")
            return
        sent.puback_s.append(time.perf_counter() - t0)


# --- sampling ------------------------------------------------------------------------------


async def sample_console(op: Operator, paths: list[str], latest: Stream,
                         out: dict[str, list[float]], errors: Counter[str]) -> None:
    """GET each console path once a second, as an operator's browser would load them;
    `/alerts/{latest}` is the detail page of the newest alert on `latest`'s stream."""
    while True:
        for path in paths:
            if "{latest}" in path:
                if not latest.first_seen:
                    continue
                url = path.replace("{latest}", next(reversed(latest.first_seen)))
            else:
                url = path
            t0 = time.perf_counter()
            try:
                async with op.http.get(f"{op.base}{url}", headers=op.headers,
                                       allow_redirects=False,
                                       timeout=aiohttp.ClientTimeout(total=30)) as r:
                    await r.read()
                    if r.status != 200:
                        errors[f"{path} {r.status}"] += 1
            except (aiohttp.ClientError, TimeoutError) as e:
                errors[f"{path} {type(e).__name__}"] += 1
                continue
            out[path].append(time.perf_counter() - t0)
        await asyncio.sleep(1.0)


async def loop_lag(out: list[float]) -> None:
    """This process's own event-loop lag, sampled every 100 ms (the generator's error)."""
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(0.1)
        out.append(time.perf_counter() - t0 - 0.1)


async def sample_process(pid: int, out: list[tuple[float, float, float]]) -> None:
    """(perf_counter, CPU seconds, RSS MB) of the hotline once a second."""
    while True:
        with contextlib.suppress(OSError):
            out.append((time.perf_counter(), cpu_seconds(pid), rss_mb(pid)))
        await asyncio.sleep(1.0)



def dist_ms(values: list[float]) -> dict[str, float | int | None]:
    """p50/p90/p99/max of durations in seconds, as milliseconds."""
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    return {"n": len(values), "p50": round(statistics.median(values) * 1000, 1),
            "p90": round(percentile(values, 90) * 1000, 1),
            "p99": round(percentile(values, 99) * 1000, 1),
            "max": round(max(values) * 1000, 1)}


def cpu_between(samples: list[tuple[float, float, float]], t0: float, t1: float
                ) -> float | None:
    """The hotline's CPU use between two moments, in % of one core."""
    inside = [s for s in samples if t0 <= s[0] <= t1]
    if len(inside) < 2:
        return None
    (a, ca, _), (b, cb, _) = inside[0], inside[-1]
    return round(100 * (cb - ca) / (b - a), 1)


def stored(db: Path) -> tuple[dict[str, int], int, int]:
    """From the hotline's store: deliveries per alert_id, silent alerts, refusals."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        deliveries = dict(con.execute("SELECT alert_id, deliveries FROM alerts "
                                      "WHERE event != 'gateway_silent'").fetchall())
        silent = con.execute("SELECT count(*) FROM alerts "
                             "WHERE event = 'gateway_silent'").fetchone()[0]
        rejected = con.execute("SELECT count(*) FROM rejected").fetchone()[0]
    finally:
        con.close()
    return deliveries, silent, rejected


def raise_fd_limit(need: int) -> int:
    """Raise this process's (and so the hotline's) open-file limit for `need` sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need)) if hard != resource.RLIM_INFINITY else max(soft, need)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < need:
        raise RuntimeError(f"need {need} open files, the hard limit is {hard} (ulimit -Hn)")
    return want


def start_py_spy(pid: int, out: str) -> subprocess.Popen[bytes] | None:
    """Sample the hotline with py-spy (a developer tool, not a dependency) until stopped."""
    exe = shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("--py-spy needs py-spy on PATH (pip install py-spy)")
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(Path(out).suffix, "raw")
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "200", "--idle",
                             "--format", fmt, "--output", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# --- the run -------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run the load against a fresh hotline; return the figures."""
    raise_fd_limit(args.gateways + 2 * args.operators + 200 + args.alerts // 4)
    rng = random.Random(args.seed)
    gws = [(f"gw-{i:05d}", f"home-{i:05d}") for i in range(args.gateways)]
    loop = asyncio.get_running_loop()
    n_mqtt = round(args.mqtt_alerts * args.alerts)
    with tempfile.TemporaryDirectory() as tmp_s, contextlib.ExitStack() as stack:
        tmp = Path(tmp_s)
        broker = stack.enter_context(running_mosquitto()) if n_mqtt else None
        h = start_hotline(tmp, args.supervision_s,
                          f"mqtt://127.0.0.1:{broker[1]}" if broker else None)
        send_http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                          connector=aiohttp.TCPConnector(limit=0))
        tasks: list[asyncio.Task[None]] = []
        operators: list[Operator] = []
        spy: subprocess.Popen[bytes] | None = None
        mp = get_context("spawn")  # a fresh interpreter: nothing of this loop is inherited
        fleet_proc: BaseProcess | None = None
        fleet: dict[str, Any] | None = None
        to_fleet, from_parent = mp.Pipe()
        try:
            await wait_ready(send_http, h)
            pid = h.proc.pid
            proc_samples: list[tuple[float, float, float]] = []
            lag: list[float] = []
            tasks += [asyncio.create_task(sample_process(pid, proc_samples)),
                      asyncio.create_task(loop_lag(lag))]
            streams = []
            for i in range(args.operators):
                op = await login(h, f"接警员{i + 1}")
                operators.append(op)
                s = Stream()
                streams.append(s)
                tasks.append(asyncio.create_task(watch(op, s)))
            for s, task in zip(streams, tasks[-len(streams):], strict=True):
                opened = asyncio.ensure_future(s.connected.wait())
                await asyncio.wait([task, opened], timeout=30,
                                   return_when=asyncio.FIRST_COMPLETED)
                opened.cancel()
                if task.done():
                    task.result()  # raises why the stream did not open
                if not s.connected.is_set():
                    raise RuntimeError("an operator's /events did not open within 30 s")

            t_start = time.perf_counter()
            fleet_proc = mp.Process(
                target=fleet_process, name="hotline-load-gateways",
                args=(h.base, gws, args.poll_wait_s, args.ramp_s, from_parent))
            fleet_proc.start()
            await asyncio.sleep(args.ramp_s + args.settle_s)
            t_burst = time.perf_counter()

            # The burst: each alert from its own gateway, at a random moment in the window.
            senders = rng.sample(gws, min(args.alerts, len(gws)))
            senders += [rng.choice(gws) for _ in range(args.alerts - len(senders))]
            bodies = []
            for g, home in senders:
                raw = make_alert(rng, g, home, time.time())
                bodies.append((json.loads(raw)["alert_id"], g, raw))
            offsets = sorted(rng.uniform(0, args.burst_s) for _ in bodies)
            # Some homes' gateways use the MQTT uplink instead (they do not long-poll: their
            # feedback comes over MQTT); each its own connection with its own last will.
            uplinks: dict[int, Uplink] = {}
            if broker is not None:
                for i in rng.sample(range(len(bodies)), n_mqtt):
                    alert_id, _, raw = bodies[i]
                    g = f"gwm-{i:05d}"
                    body = json.loads(raw)
                    body.update(gateway_id=g, home_id=f"homem-{i:05d}")
                    bodies[i] = (alert_id, g, json.dumps(body, ensure_ascii=False).encode())
                    uplinks[i] = Uplink(broker[1], g, f"homem-{i:05d}")
                    tasks.append(asyncio.create_task(uplinks[i].run()))
                for u in uplinks.values():
                    await asyncio.wait_for(u.ready.wait(), 60)
            dupes = set(rng.sample(range(len(bodies)), round(args.duplicates * len(bodies))))
            sent = Sent()
            console: dict[str, list[float]] = defaultdict(list)
            console_errors: Counter[str] = Counter()
            accepted_at: dict[str, float] = {}  # alert_id -> time.time() of the accept
            accept_status: Counter[int] = Counter()
            if args.py_spy:
                spy = start_py_spy(pid, args.py_spy)
            sampler = asyncio.create_task(sample_console(
                operators[0], CONSOLE_PATHS, streams[0], console, console_errors))
            tasks.append(sampler)

            async def send_one(i: int) -> None:
                alert_id, g, raw = bodies[i]
                sent.gateway[alert_id] = g
                await asyncio.sleep(offsets[i])
                for n in range(2 if i in dupes else 1):
                    if n:  # the acknowledgement "was lost": the gateway sends it again
                        await asyncio.sleep(rng.uniform(0.2, 3.0))
                        sent.duplicates_sent += 1
                    if i in uplinks:
                        sent.over_mqtt.add(alert_id)
                        await uplinks[i].send(raw, alert_id, sent, first=not n)
                    else:
                        await post_alert(send_http, h.base, raw, alert_id, sent, first=not n)

            async def accept_some() -> None:
                # One operator takes charge of the oldest alert on screen not yet taken.
                if args.accept_every_s <= 0:
                    return
                seen, tried = streams[0].first_seen, set()
                while True:
                    await asyncio.sleep(args.accept_every_s)
                    todo = [a for a in seen if a in sent.gateway and a not in tried]
                    if todo:
                        tried.add(todo[0])
                        t = time.time()
                        status = await operators[0].accept(todo[0])
                        accept_status[status] += 1
                        if status == 200:
                            accepted_at[todo[0]] = t

            acceptor = asyncio.create_task(accept_some())
            tasks.append(acceptor)
            await asyncio.gather(*(send_one(i) for i in range(len(bodies))))
            t_sent = time.perf_counter()
            # Until every alert is on every stream (or it is clearly not coming).
            deadline = time.perf_counter() + args.drain_timeout_s
            ids = set(sent.gateway)
            while time.perf_counter() < deadline and not all(
                    ids <= s.first_seen.keys() for s in streams):
                streams[0].changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(streams[0].changed.wait(), 0.5)
            t_drained = time.perf_counter()
            while args.accept_every_s > 0 and not accepted_at and time.perf_counter() < deadline:
                await asyncio.sleep(0.1)  # a short run still takes charge of one alert
            acceptor.cancel()
            sampler.cancel()
            if spy is not None:
                spy.send_signal(signal.SIGINT)
            # Heartbeats go on: supervision must stay quiet, accepted alerts reach their gateway.
            await asyncio.sleep(args.tail_s)
            t_end = time.perf_counter()
            to_fleet.send("stop")
            if await loop.run_in_executor(None, to_fleet.poll, 60):
                fleet = to_fleet.recv()
            deliveries, silent_stored, rejected = stored(h.db)
        finally:
            if fleet_proc is not None:
                fleet_proc.join(30)
                if fleet_proc.is_alive():
                    fleet_proc.kill()
                    fleet_proc.join()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for op in operators:
                await op.http.close()
            await send_http.close()
            if spy is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    spy.wait(30)
            stop_process(h.proc)
        log_tail = h.log.read_text(errors="replace").splitlines()[-5:] \
            if h.proc.returncode not in (0, -signal.SIGTERM) else []
    if fleet is None:
        raise RuntimeError("the gateways' process did not report")

    latency = [s.first_seen[a] - t for s in streams for a, t in sent.at.items()
               if a in s.first_seen]
    # Where that time went, by the hotline's own stamp (same machine clock).
    to_hotline = [s.received_at[a] - sent.wall[a] for s in streams[:1] for a in sent.wall
                  if a in s.received_at]
    hotline_to_screen = [s.first_wall[a] - s.received_at[a] for s in streams
                         for a in sent.wall if a in s.received_at]
    lost_store = sorted(set(sent.gateway) - deliveries.keys())
    lost_stream = sorted({a for s in streams for a in sent.gateway if a not in s.first_seen})
    shown_new_wrong = sorted({a for s in streams for a in sent.gateway if s.new[a] != 1})
    extra_deliveries = sum(deliveries.values()) - len(deliveries)
    learned = {**fleet["feedback"], **{a: t for u in uplinks.values()
                                       for a, t in u.feedback.items()}}
    fb_latency = [learned[a] - t for a, t in accepted_at.items() if a in learned]
    by_transport = {
        name: dist_ms([s.first_seen[a] - t for s in streams for a, t in sent.at.items()
                       if a in s.first_seen and (a in sent.over_mqtt) == mqtt])
        for name, mqtt in (("webhook", False), ("mqtt_uplink", True))}
    return {
        "gateways": args.gateways,
        "gateways_polling": fleet["started"],
        "heartbeat": "signed feedback long poll per gateway "
                     f"(wait {args.poll_wait_s:g} s), as gateway/feedback.py",
        "alerts": len(bodies), "burst_s": args.burst_s,
        "duplicates_sent": sent.duplicates_sent, "operators": args.operators,
        "streams_dropped": sum(s.dropped for s in streams),
        "queue_update_ms": dist_ms(latency),
        "queue_update_over_1s": sum(1 for x in latency if x > SLOW_S),
        "queue_update_by_transport_ms": by_transport,
        # When in the burst the slow ones were: the worst queue update per 10 s of sending.
        "queue_update_max_ms_per_10s": [
            round(1000 * max((s.first_seen[a] - t for s in streams for a, t in sent.at.items()
                              if a in s.first_seen and k <= (t - t_burst) / 10 < k + 1),
                             default=0.0))
            for k in range(int((t_sent - t_burst) // 10) + 1)],
        "queue_update_split_ms": {"post_to_hotline_received_at": dist_ms(to_hotline),
                                  "received_at_to_operator_stream": dist_ms(hotline_to_screen)},
        "post_alerts_ms": dist_ms(sent.response_s),
        "post_alerts_status": dict(sent.statuses), "post_alerts_failed": sent.failed[:10],
        "mqtt_uplink": {"gateways": len(uplinks), "alerts": len(sent.over_mqtt),
                        "publish_to_puback_ms": dist_ms(sent.puback_s)},
        "lost": {"not_in_store": len(lost_store), "not_on_every_stream": len(lost_stream),
                 "not_shown_new_exactly_once": len(shown_new_wrong),
                 "examples": (lost_store + lost_stream + shown_new_wrong)[:5]},
        "store": {"alerts": len(deliveries), "extra_deliveries_counted": extra_deliveries,
                  "rejected": rejected},
        "false_gateway_silent": {"stored": silent_stored,
                                 "on_stream": len(set().union(*(s.silent for s in streams)))},
        "heartbeats": {"polls_answered": fleet["polls"], "errors": fleet["errors"],
                       "answer_late_ms": fleet["late_ms"],
                       "max_gap_between_polls_s": fleet["max_gap_s"],
                       "supervision_s": args.supervision_s},
        "accepts": {"made": len(accepted_at), "status": dict(accept_status),
                    "reached_gateway": len(fb_latency),
                    "accept_to_gateway_ms": dist_ms(fb_latency)},
        "console_during_burst_ms": {p: dist_ms(v) for p, v in console.items()},
        "console_over_1s": sum(1 for v in console.values() for x in v if x > SLOW_S),
        "console_errors": dict(console_errors),
        "hotline": {
            "cpu_pct_heartbeats_only": cpu_between(proc_samples, t_start + args.ramp_s,
                                                   t_burst),
            "cpu_pct_burst": cpu_between(proc_samples, t_burst, t_drained),
            "cpu_pct_tail": cpu_between(proc_samples, t_drained, t_end),
            "rss_mb_at_start": round(proc_samples[0][2], 1) if proc_samples else None,
            "rss_mb_max": round(max((s[2] for s in proc_samples), default=0.0), 1),
            "exit_log": log_tail,
        },
        "phases_s": {"ramp": args.ramp_s, "settle": args.settle_s,
                     "burst_sent": round(t_sent - t_burst, 1),
                     "drained": round(t_drained - t_burst, 1), "tail": args.tail_s},
        "generator": {"measuring_loop_lag_ms": dist_ms(lag),
                      "gateways_loop_lag_ms": fleet["loop_lag_ms"],
                      "cpu_pct_measuring": round(100 * sum(os.times()[:2])
                                                 / (t_end - t_start + 1e-9), 1),
                      "cpu_pct_gateways": round(100 * fleet["cpu_s"]
                                                / (t_end - t_start + 1e-9), 1)},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "load_avg_1m_at_end": round(os.getloadavg()[0], 2)},
    }


def parser() -> argparse.ArgumentParser:
    """The command line (also the test's source of defaults)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gateways", type=int, default=5000, help="simulated gateways polling")
    p.add_argument("--alerts", type=int, default=1000, help="alerts in the burst")
    p.add_argument("--burst-s", type=float, default=60.0, help="the burst's length")
    p.add_argument("--duplicates", type=float, default=0.05,
                   help="share of alerts delivered twice (a lost acknowledgement)")
    p.add_argument("--operators", type=int, default=3, help="operators watching the queue")
    p.add_argument("--accept-every-s", type=float, default=2.0,
                   help="an operator accepts an alert this often during the burst (0 = never)")
    p.add_argument("--poll-wait-s", type=float, default=25.0,
                   help="the feedback long poll's wait (the gateway's default)")
    p.add_argument("--ramp-s", type=float, default=25.0, help="gateways start over this long")
    p.add_argument("--settle-s", type=float, default=30.0,
                   help="heartbeats alone before the burst")
    p.add_argument("--tail-s", type=float, default=40.0,
                   help="heartbeats after the burst (supervision must stay quiet)")
    p.add_argument("--drain-timeout-s", type=float, default=60.0,
                   help="how long to wait for the last alerts to show")
    p.add_argument("--supervision-s", type=float, default=120.0,
                   help="the hotline's loss-of-supervision time (its default)")
    p.add_argument("--mqtt-alerts", type=float, default=0.0,
                   help="share of the alerts sent by gateways on the MQTT uplink (through a "
                        "real Mosquitto, the hotline subscribed with --mqtt) instead of POST")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--py-spy", metavar="OUT", help="profile the hotline during the burst "
                   "with py-spy (.svg flame graph, .json speedscope, else raw stacks)")
    return p


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    print(json.dumps(asyncio.run(bench(parser().parse_args())), ensure_ascii=False))


if __name__ == "__main__":
    main()
