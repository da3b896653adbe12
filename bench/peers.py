"""The bench's other MQTT processes: the bare aiomqtt subscriber (the floor) and a flooder.

Each runs as its own process, as the gateway does, so none of them shares a GIL with the
bench or with each other:

    python -m bench.peers subscriber --port P --count N   # prints one JSON line when done
    python -m bench.peers timer --port P --prefix zigbee2mqtt/alarm_   # until SIGTERM
    python -m bench.peers flood --port P --topic T --rate 10000 --seconds 10
    python -m bench.peers background --port P --rate 1000 --devices 200   # until SIGTERM

(The background traffic once ran as a thread of the bench, beside the webhook receiver that
times the alarms: the receiver then waited for the GIL behind two busy paho threads, and
that wait, up to the 5 ms switch interval, was counted as the gateway's.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiomqtt
import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parents[1]

FLOOD_PAYLOAD = (b'{"battery":100,"illuminance":12,"linkquality":120,"occupancy":true,'
                 b'"voltage":3055}')


async def subscriber(port: int, topic: str, count: int, client_id: str) -> None:
    """The floor: a bare aiomqtt subscriber (persistent session, QoS 1, auto-ack) that only
    counts. Prints `ready` once subscribed, then one JSON line when `count` arrived:
    time.monotonic() of the first and the last message (comparable across processes)."""
    async with aiomqtt.Client("127.0.0.1", port, identifier=client_id,
                              clean_session=False) as client:
        await client.subscribe(topic, qos=1)
        print("ready", flush=True)
        n, first = 0, 0.0
        async for _ in client.messages:
            n += 1
            if n == 1:
                first = time.monotonic()
            if n >= count:
                break
        print(json.dumps({"received": n, "first_at": first, "last_at": time.monotonic()}),
              flush=True)


def timer(port: int, prefix: str, topics: list[str]) -> None:
    """The bare MQTT round trip: a paho subscriber of every topic by default (as the bare
    script of PERFORMANCE-NOTES) noting when the first message of each topic under `prefix` arrived
    (time.monotonic(), comparable across processes). Prints `ready` once subscribed; on
    SIGTERM, one JSON object topic -> arrival."""
    arrived: dict[str, float] = {}
    ready = []

    def on_message(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        t = time.monotonic()
        if m.topic.startswith(prefix):
            arrived.setdefault(m.topic, t)

    def on_subscribe(*_: object) -> None:
        if not ready:
            ready.append(True)
            print("ready", flush=True)

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-timer-{time.time()}")
    c.on_message, c.on_subscribe = on_message, on_subscribe
    c.on_connect = lambda cl, *_: cl.subscribe([(t, 1) for t in topics])
    signal.signal(signal.SIGTERM, lambda *_: c.disconnect())
    c.connect("127.0.0.1", port)
    c.loop_forever()
    print(json.dumps(arrived), flush=True)


def background(port: int, rate: float, devices: int) -> None:
    """Ordinary sensor traffic (bench/e2e.py's) at `rate` msg/s until SIGTERM. Prints `ready`
    when it starts; at the end, one JSON object: messages sent, seconds taken."""
    from bench.e2e import run_background  # noqa: PLC0415 (only this role needs it)

    stop, sent, stopped_at = threading.Event(), [0], [0.0]

    def on_term(*_: object) -> None:
        stopped_at[0] = time.monotonic()  # (not after the client's own closing down)
        stop.set()
    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    t0 = time.monotonic()
    run_background(port, rate, devices, stop, sent)
    print(json.dumps({"sent": sent[0], "seconds": stopped_at[0] - t0}), flush=True)


class Background:
    """The `background` role as a process, from the benches: started and connected when
    made, `stop()` ends it and says the rate it kept."""

    def __init__(self, port: int, rate: float, devices: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.peers", "background", "--port", str(port),
             "--rate", str(rate), "--devices", str(devices)],
            stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            raise RuntimeError("background publisher did not start")

    def stop(self) -> float:
        """Messages a second it sent, from its start to this stop."""
        self.proc.terminate()
        out = json.loads(self.proc.communicate(timeout=30)[0].strip() or "{}")
        return out["sent"] / out["seconds"] if out.get("seconds") else 0.0


def _remaining(n: int) -> bytes:
    """MQTT's variable-length 'remaining length'."""
    out = bytearray()
    while True:
        n, byte = n >> 7, n & 0x7F
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def flood(port: int, topic: str, rate: float, seconds: float) -> None:
    """One device gone wild: `rate` QoS-0 messages per second on `topic` for `seconds`,
    written as raw MQTT 3.1.1 packets in batches every 10 ms (a Python MQTT client would
    need most of a core for 10,000 msg/s, which the gateway under test would not get on a
    small machine). Prints the rate achieved."""
    body = _string("MQTT") + bytes([4, 0x02]) + (60).to_bytes(2, "big") + \
        _string(f"bench-flood-{os.getpid()}")
    publish = _string(topic) + FLOOD_PAYLOAD
    packet = b"\x30" + _remaining(len(publish)) + publish
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"\x10" + _remaining(len(body)) + body)
        if sock.recv(4)[:2] != b"\x20\x02":
            raise RuntimeError("the broker refused the flooder's connection")
        stop: list[bool] = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))  # end early, report
        t0, n = time.perf_counter(), 0
        while (elapsed := time.perf_counter() - t0) < seconds and not stop:
            due = int(rate * elapsed) - n
            if due > 0:
                sock.sendall(packet * due)
                n += due
            time.sleep(0.01)
        sock.sendall(b"\xe0\x00")  # DISCONNECT
    print(json.dumps({"sent": n, "msgs_per_s": round(n / (time.perf_counter() - t0))}),
          flush=True)


def main() -> None:
    """Run one role."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="role", required=True)
    s = sub.add_parser("subscriber")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--topic", default="#")
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--client-id", default="bench-bare")
    t = sub.add_parser("timer")
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--prefix", required=True)
    t.add_argument("--topic", action="append",
                   help="what to subscribe to, once or more (default: #, everything)")
    f = sub.add_parser("flood")
    f.add_argument("--port", type=int, required=True)
    f.add_argument("--topic", required=True)
    f.add_argument("--rate", type=float, default=10_000.0)
    f.add_argument("--seconds", type=float, default=10.0)
    b = sub.add_parser("background")
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--rate", type=float, default=1000.0)
    b.add_argument("--devices", type=int, default=200)
    a = p.parse_args()
    if a.role == "subscriber":
        asyncio.run(subscriber(a.port, a.topic, a.count, a.client_id))
    elif a.role == "timer":
        timer(a.port, a.prefix, a.topic or ["#"])
    elif a.role == "background":
        background(a.port, a.rate, a.devices)
    else:
        flood(a.port, a.topic, a.rate, a.seconds)
    sys.exit(0)


if __name__ == "__main__":
    main()
