"""MQTT ingest: one long-lived aiomqtt client with a reconnect loop (CONVENTIONS 7), and the
admission control in front of the message path: per-device rate limits, alarms first.

The session is persistent (fixed client id, clean_session false, QoS 1), so messages published
while the gateway is briefly disconnected are held by the broker and delivered on reconnect.

A QoS-1 message from a device that can raise an alarm (a smoke detector, a pendant, a
wearable's raw blocks) is acknowledged (PUBACK) only after the handler has finished with it,
which for an alarm means after the alert is committed to SQLite. A gateway killed in between
gets the message again from the broker when it comes back (and folds it into the alert it had
already written), instead of having acknowledged a message it never acted on. Ordinary
messages (motion, contact, battery) are acknowledged as they are admitted: their
observations are only written in one-second batches anyway, and an unacknowledged backlog of
them would fill the broker's in-flight window and hold an alarm back at the broker.

Floods (a broken sensor, or someone with one device's credentials sending 10,000 msg/s):
every device has a token bucket, checked on the topic alone before anything is parsed, with
limits no honest device reaches. An ordinary device over its limit is shed (acknowledged,
counted); an alarm-capable one is never shed for its rate but loses its place at the front
and waits its turn among the devices, its own backlog bounded. A flood is logged and reported
(`on_flood`) once when it begins and once when it ends, with the count shed, never per
message. Alarm-capable devices within their limit go first, ahead of any backlog, and every
lane is served round robin across devices, so one device's backlog never sits in front of
another device's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt.client as mqtt

from devices.catalogue import Model
from gateway.config import read_credential

logger = logging.getLogger(__name__)

Handler = Callable[[str, bytes, bool, float], Awaitable[None]]
OnConnect = Callable[[aiomqtt.Client], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Limit:
    """A device's admission: sustained messages per second, the burst above that, and whether
    its messages go to the front (it can raise an alarm)."""

    rate_per_s: float
    burst: float
    urgent: bool = False


# Kinds whose delay is a delayed rescue: a device exposing one of them is alarm-capable. The
# wearable's raw accelerometer blocks are where the gateway itself finds a fall; `cancel` is
# the resident's "I am all right" that stops a pending fall alarm.
ALARM_KINDS = frozenset({"smoke", "gas", "water_leak", "sos", "fall", "cancel", "tamper",
                         "accel"})

# Limits no honest device reaches. A Zigbee sensor reports on change and at most a few times
# a second (a power plug on a changing load); after a restart or a network outage it may send
# its whole backlog at once, which the burst covers. Raw wearable/bed blocks are sent as
# blocks of about a second (README, 64 KiB each), 1 msg/s; a wearable that was out of range
# catches up in a burst. Zigbee2MQTT's own bridge topics (device list, pairing events, its
# log) come in bursts at start. Messages on topics of no commissioned device are only
# quarantined, all of them together in one bucket.
DEVICE_LIMIT = Limit(20.0, 200.0)
ALARM_DEVICE_LIMIT = Limit(20.0, 200.0, urgent=True)
BRIDGE_LIMIT = Limit(200.0, 2000.0)
UNKNOWN_LIMIT = Limit(20.0, 200.0)
UNKNOWN_KEY = "(topics of no commissioned device)"

# What may wait in the ordinary lane: everything, and one device. Beyond the first the newest
# arrival is shed; beyond a device's share its own oldest message is (its newest state wins).
QUEUE_CAPACITY = 20_000
DEVICE_BACKLOG = 500
FLOOD_CHECK_S = 1.0
FLOOD_QUIET_S = 10.0  # a device that stayed within its limit this long no longer floods
YIELD_S = 0.001  # the longest the message path runs without letting the socket be read
_TOPIC_CACHE = 4096  # topics remembered with their device (cleared when full: spraying)

Classify = Callable[[str], tuple[str, Limit]]  # topic -> (device id, its limit)


def unclassified(topic: str) -> tuple[str, Limit]:
    """Every topic its own ordinary device (an Ingest used without a device list)."""
    return topic, DEVICE_LIMIT


def device_classifier(route: Callable[[str], tuple[Any, Model] | None],
                      bridge_prefix: str) -> Classify:
    """Classify topics by the commissioned device `route` finds (its id and model)."""
    def classify(topic: str) -> tuple[str, Limit]:
        hit = route(topic)
        if hit is not None:
            return hit[0].id, limit_for(hit[1])
        if topic.startswith(bridge_prefix):
            return "zigbee2mqtt bridge", BRIDGE_LIMIT
        return UNKNOWN_KEY, UNKNOWN_LIMIT

    return classify


def limit_for(model: Model) -> Limit:
    """The admission of a device of this catalogue model."""
    alarm = any(k in ALARM_KINDS for e in model.exposes for k in e.kinds)
    return ALARM_DEVICE_LIMIT if alarm else DEVICE_LIMIT


@dataclass(frozen=True, slots=True)
class FloodReport:
    """A device began to flood (`ended` False) or stopped (`ended` True)."""

    key: str  # the device id (or UNKNOWN_KEY)
    topic: str  # the last topic it flooded on
    ended: bool
    shed: int  # messages shed so far in this flood
    since: float  # the gateway's clock when the flood began
    duration_s: float
    limit_per_s: float
    sample: bytes  # the last payload shed (what a technician looks at first)


OnFlood = Callable[[FloodReport], Awaitable[None]]


class _Bucket:
    __slots__ = ("at", "flood_at", "flood_since", "last_shed", "limit", "reported", "sample",
                 "shed", "tokens", "topic")

    def __init__(self, limit: Limit, mono: float) -> None:
        self.limit = limit
        self.tokens = limit.burst
        self.at = mono
        self.shed = 0  # in the current flood
        self.flood_at = 0.0  # when the current flood began (on the rates' clock)
        self.flood_since = 0.0  # the gateway's clock, the same moment
        self.last_shed = 0.0
        self.topic = ""
        self.sample = b""
        self.reported = False

    def take(self, mono: float) -> bool:
        # (a clock stepped back refills nothing)
        tokens = self.tokens + max(0.0, mono - self.at) * self.limit.rate_per_s
        self.at = max(self.at, mono)
        if tokens >= 1.0:
            self.tokens = min(self.limit.burst, tokens) - 1.0
            return True
        self.tokens = tokens
        return False

    def note_shed(self, topic: str, payload: bytes, mono: float, now: float) -> None:
        if self.shed == 0:
            self.flood_at, self.flood_since = mono, now
        self.shed += 1
        self.last_shed = mono
        self.topic, self.sample = topic, payload


Item = tuple[str, bytes, bool, float, int | None]  # topic, payload, retained, at, mid to ack


class _Lane:
    """Messages waiting, one queue per device, served round robin across devices."""

    __slots__ = ("queues", "size", "turns")

    def __init__(self) -> None:
        self.queues: dict[str, deque[Item]] = {}
        self.turns: deque[str] = deque()
        self.size = 0

    def push(self, key: str, item: Item) -> deque[Item]:
        q = self.queues.get(key)
        if q is None:
            q = self.queues[key] = deque()
            self.turns.append(key)
        q.append(item)
        self.size += 1
        return q

    def pop(self) -> Item | None:
        if not self.turns:
            return None
        key = self.turns.popleft()
        q = self.queues[key]
        item = q.popleft()
        self.size -= 1
        if q:
            self.turns.append(key)
        else:
            del self.queues[key]
        return item

    def clear(self) -> None:
        self.queues.clear()
        self.turns.clear()
        self.size = 0


SHED, ADMITTED, ADMITTED_UNACKED = "shed", "admitted", "admitted-unacked"


class Admission:
    """Rate limits per device, the alarm lane before the ordinary one, bounded backlog."""

    def __init__(self, classify: Classify, *, capacity: int = QUEUE_CAPACITY,
                 device_backlog: int = DEVICE_BACKLOG) -> None:
        self.classify = classify
        self.capacity = capacity
        self.device_backlog = device_backlog
        self.buckets: dict[str, _Bucket] = {}
        self.urgent = _Lane()
        self.ordinary = _Lane()
        self.shed: dict[str, int] = {}  # device -> messages shed since start
        self._topics: dict[str, tuple[str, Limit]] = {}
        self._flooding: set[str] = set()

    def forget_topics(self) -> None:
        """The devices changed: classify every topic afresh (a device's bucket, and a flood
        under way, carry on)."""
        self._topics.clear()

    def admit(self, topic: str, payload: bytes, qos: int, retain: bool, mid: int | None,
              now: float, mono: float) -> str:
        """SHED, ADMITTED (acknowledge now) or ADMITTED_UNACKED (once handled). `now` stamps
        the message; `mono` is the clock rates are measured on."""
        hit = self._topics.get(topic)
        if hit is None:
            if len(self._topics) >= _TOPIC_CACHE:
                self._topics.clear()
            hit = self._topics[topic] = self.classify(topic)
        key, limit = hit
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket(limit, mono)
        elif bucket.limit is not limit:  # the device was given another model
            bucket.limit = limit
        within = bucket.take(mono)
        if within and limit.urgent:
            mid = mid if qos == 1 else None
            self.urgent.push(key, (topic, payload, retain, now, mid))
            return ADMITTED if mid is None else ADMITTED_UNACKED
        if not within and not limit.urgent:
            self._note_shed(key, bucket, topic, payload, mono, now)
            return SHED
        # An ordinary device within its limit, or an alarm-capable one beyond it (never shed
        # for its rate: it waits its turn among the devices, behind the alarm lane).
        if self.ordinary.size >= self.capacity and key not in self.ordinary.queues:
            self._note_shed(key, bucket, topic, payload, mono, now)
            return SHED
        q = self.ordinary.push(key, (topic, payload, retain, now, None))
        if len(q) > self.device_backlog or self.ordinary.size > self.capacity:
            old = q.popleft()  # this device's oldest: its newest state is what counts
            self.ordinary.size -= 1
            self._note_shed(key, bucket, old[0], old[1], mono, now)
        if not within:
            bucket.last_shed = mono  # over its limit: a flood even while nothing is shed
            if not bucket.shed:
                bucket.flood_at, bucket.flood_since, bucket.topic = mono, now, topic
            self._flooding.add(key)
        return ADMITTED

    def _note_shed(self, key: str, bucket: _Bucket, topic: str, payload: bytes, mono: float,
                   now: float) -> None:
        bucket.note_shed(topic, payload, mono, now)
        self.shed[key] = self.shed.get(key, 0) + 1
        self._flooding.add(key)

    def pop(self) -> Item | None:
        """The next message to handle: the alarm lane first."""
        return self.urgent.pop() or self.ordinary.pop()

    def waiting(self) -> int:
        """Messages admitted and not yet handled."""
        return self.urgent.size + self.ordinary.size

    def disconnected(self) -> None:
        """The connection is gone: the alarm lane's unacknowledged messages will be
        redelivered by the broker (their ids are void now); the rest is still handled."""
        kept = [(key, item) for key, q in self.urgent.queues.items() for item in q
                if item[4] is None]
        self.urgent.clear()
        for key, item in kept:
            self.urgent.push(key, item)

    def flooding(self) -> dict[str, int]:
        """Devices flooding now -> messages shed in their current flood."""
        return {k: self.buckets[k].shed for k in self._flooding if k in self.buckets}

    def flood_changes(self, mono: float, now: float) -> list[FloodReport]:
        """Floods that began (not yet reported) or ended (quiet for FLOOD_QUIET_S)."""
        reports = []
        for key in list(self._flooding):
            b = self.buckets[key]
            ended = mono - b.last_shed >= FLOOD_QUIET_S
            if not b.reported or ended:
                reports.append(FloodReport(key, b.topic, ended, b.shed,
                                           b.flood_since or now, mono - b.flood_at,
                                           b.limit.rate_per_s, b.sample))
                b.reported = True
            if ended:
                self._flooding.discard(key)
                b.shed, b.reported, b.flood_at, b.flood_since, b.sample = 0, False, 0.0, 0.0, b""
        return reports


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where and how to connect."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def from_url(cls, url: str, **kw: str | None) -> BrokerAddress:
        """Parse mqtt://[user:pass@]host[:port] or mqtts://…; keyword args override."""
        p = urlsplit(url)
        if p.scheme not in ("mqtt", "mqtts") or not p.hostname:
            raise ValueError(f"not an MQTT URL: {url!r}")
        tls = p.scheme == "mqtts"
        username = kw.pop("username", None) or (unquote(p.username) if p.username else None)
        password = kw.pop("password", None) or (unquote(p.password) if p.password else None)
        return cls(p.hostname, p.port or (8883 if tls else 1883), tls, username, password, **kw)

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context for mqtts://, or None."""
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


OnPublish = Callable[[str, bytes, int, bool, "int | None"], None]


class _Reader:
    """Reads the broker's socket in large chunks and decodes PUBLISH packets itself; paho
    gets every other packet (acknowledgements, pings) from the same buffer.

    paho reads a packet with three or four `recv` calls (the command byte, the length bytes
    one by one, the body), builds an MQTTMessage and matches its topic against callbacks,
    and aiomqtt's reader parses one packet per turn of the event loop: a burst cost several
    system calls, objects and a loop turn per message (a quarter of the gateway's time in
    the profile of `bench.budget ingest`), and a flood as much again before it could be shed.
    Here one `recv` takes up to 64 KiB; an MQTT 3.1.1 PUBLISH (QoS 0 or 1) that is whole in
    the buffer goes straight to admission; anything else, or a packet split across reads,
    is read by paho from the buffer (`_sock_recv`), at its own pace.
    """

    CHUNK = 65536
    # Then the loop's other work gets a turn: under a flood the reader always has more, and
    # an alarm's later steps (its commit's result, the webhook) each wait for one such turn.
    BUDGET_S = 0.0005

    def __init__(self, paho: mqtt.Client, disconnected: asyncio.Future[Any],
                 on_publish: OnPublish) -> None:
        self.paho = paho
        self.disconnected = disconnected
        self.on_publish = on_publish
        # MQTT 5 PUBLISH packets carry properties: paho reads those
        self.fast = paho.protocol in (mqtt.MQTTv31, mqtt.MQTTv311)
        self.buf = b""
        self.pos = 0
        self.decoded = 0  # PUBLISH packets decoded here (the rest by paho)
        self._recv = paho._sock_recv  # paho's own: turns TLS want-read into BlockingIOError
        paho._sock_recv = self.recv  # type: ignore[method-assign]

    def recv(self, n: int) -> bytes:
        """paho's `_sock_recv`, from the buffer."""
        if self.pos >= len(self.buf):
            self.buf, self.pos = self._recv(self.CHUNK), 0  # b"" at EOF: paho sees it
            if not self.buf:
                return b""
        chunk = self.buf[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

    def pending(self) -> bool:
        """Bytes read and not yet parsed (or decrypted by TLS and not yet read)."""
        if self.pos < len(self.buf):
            return True
        sock = self.paho._sock
        return bool(sock is not None and hasattr(sock, "pending") and sock.pending())

    def on_readable(self) -> None:
        """The event loop's reader callback for the socket."""
        paho = self.paho
        try:
            until = time.perf_counter() + self.BUDGET_S
            while time.perf_counter() < until:
                if self.pos >= len(self.buf):
                    try:
                        self.buf, self.pos = self._recv(self.CHUNK), 0
                    except BlockingIOError:
                        return  # all read: the socket signals when there is more
                    if not self.buf:  # closed by the broker: paho notices and says so
                        paho.loop_read()
                        return
                # paho between packets (not inside one it began to read): ours to decode
                if self.fast and paho._in_packet["command"] == 0 and self._publish():
                    continue
                if paho.loop_read() != mqtt.MQTT_ERR_SUCCESS:
                    return
            # more than a wake-up's worth: the socket may not signal again for what is read
            asyncio.get_running_loop().call_soon(self.on_readable)
        except Exception as exc:  # as aiomqtt's reader: a broken connection, disconnect
            if not self.disconnected.done():
                self.disconnected.set_exception(exc)
        finally:
            paho._last_bytes_received = time.monotonic()  # (paho's keepalive bookkeeping)

    def _publish(self) -> bool:
        """Decode the PUBLISH packet at the buffer's position if it is whole; False (and
        nothing consumed) for any other packet, or one to leave to paho."""
        buf, pos = self.buf, self.pos
        first = buf[pos]
        qos = (first >> 1) & 3
        if first & 0xF0 != 0x30 or qos > 1:
            return False
        # the remaining length: 1-4 bytes, 7 bits each, least significant first
        i, shift, remaining = pos + 1, 0, 0
        while True:
            if i >= len(buf) or shift > 21:
                return False
            byte = buf[i]
            remaining |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
        end = i + remaining
        topic_end = i + 2 + int.from_bytes(buf[i:i + 2], "big")
        start = topic_end + 2 if qos else topic_end
        if end > len(buf) or remaining < 2 or start > end:
            return False  # split across reads, or malformed: paho's to read (or refuse)
        try:
            topic = buf[i + 2:topic_end].decode()
        except UnicodeDecodeError:
            return False
        mid = int.from_bytes(buf[topic_end:start], "big") if qos else None
        self.pos = end
        self.decoded += 1
        self.on_publish(topic, buf[start:end], qos, bool(first & 1), mid)
        return True


class Ingest:
    """Subscribes to the sensors' topics and feeds every message to `handler`.

    Messages do not queue inside aiomqtt (its queue is unbounded, CONVENTIONS 7): paho's
    callback hands each one straight to `Admission`, which limits every device's rate before
    anything is parsed, puts alarm-capable devices first and bounds what waits.
    """

    def __init__(self, address: BrokerAddress, topics: list[str], handler: Handler, *,
                 client_id: str, keepalive_s: int = 30, reconnect_max_s: float = 10.0,
                 will: aiomqtt.Will | None = None, on_connect: OnConnect | None = None,
                 clock: Callable[[], float] = time.time,
                 classify: Classify = unclassified,
                 on_flood: OnFlood | None = None) -> None:
        self.address = address
        self.topics = topics
        self.handler = handler
        self.client_id = client_id
        self.keepalive_s = keepalive_s
        self.reconnect_max_s = reconnect_max_s
        self.will = will  # published by the broker if the connection dies
        self.on_connect = on_connect  # after every (re)connect: what must be (re)published
        self.clock = clock  # stamps each message as received (the gateway's clock)
        self.admission = Admission(classify)
        self.on_flood = on_flood  # a flood began or ended: tell the technician
        self.connected = asyncio.Event()
        self.messages = 0
        self.client: aiomqtt.Client | None = None
        self._paho: mqtt.Client | None = None
        self.reader: _Reader | None = None
        self._waiter: asyncio.Future[None] | None = None

    async def run(self) -> None:
        """Connect, subscribe and dispatch until cancelled; reconnect on any broker error."""
        failures = 0
        reporter = asyncio.create_task(self._report_floods(), name="anxin-ingest-floods")
        try:
            while True:
                try:
                    await self._session(failures)
                except aiomqtt.MqttError as e:
                    self.connected.clear()
                    self.client = None
                    self._paho = None
                    self.admission.disconnected()
                    failures += 1
                    if failures == 1:
                        logger.warning("MQTT broker %s:%d lost or unreachable (%s); retrying",
                                       self.address.host, self.address.port, e)
                    await asyncio.sleep(min(self.reconnect_max_s,
                                            0.25 * 2 ** min(failures, 6)))
                else:
                    failures = 0
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter

    async def _session(self, failures: int) -> None:
        client = aiomqtt.Client(
            self.address.host, self.address.port, identifier=self.client_id,
            username=self.address.username, password=self.address.password,
            clean_session=False, keepalive=self.keepalive_s, will=self.will,
            tls_context=self.address.tls_context())
        # aiomqtt 2.x has no manual-ack option of its own; its paho client does. Its message
        # queue is bypassed: paho's callback goes to the admission control directly.
        paho = client._client
        paho.manual_ack_set(True)
        paho.on_message = self._on_message
        self._paho = paho  # (a persistent session's messages may come with the CONNACK)
        async with client:
            self.client = client
            sock = paho.socket()
            if sock is not None:  # our reader instead of aiomqtt's (see _Reader)
                reader = self.reader = _Reader(paho, client._disconnected, self._on_publish)
                loop = asyncio.get_running_loop()
                loop.remove_reader(sock.fileno())
                loop.add_reader(sock.fileno(), reader.on_readable)
            await client.subscribe([(t, 1) for t in self.topics])
            if failures:
                logger.warning("MQTT broker %s:%d reachable again",
                               self.address.host, self.address.port)
            else:
                logger.info("connected to MQTT broker %s:%d, subscribed to %s",
                            self.address.host, self.address.port, ", ".join(self.topics))
            if self.on_connect is not None:
                await self.on_connect(client)
            self.connected.set()
            await self._dispatch(paho, client._disconnected)

    def _on_message(self, _client: mqtt.Client, _userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        """paho's callback, for what paho decoded (see _Reader)."""
        self._on_publish(message.topic, message.payload, message.qos, bool(message.retain),
                         message.mid)

    def _on_publish(self, topic: str, payload: bytes, qos: int, retain: bool,
                    mid: int | None) -> None:
        """A message from the broker (on the event loop, in the socket reader): admit or
        shed."""
        self.messages += 1
        # Rates are per second of the gateway's clock: a simulated home on a fast clock
        # (`anxin sim --life`) sends an honest device's day in minutes.
        now = self.clock()
        verdict = self.admission.admit(topic, payload, qos, retain, mid, now, now)
        if verdict is not ADMITTED_UNACKED and qos == 1 and self._paho is not None:
            # Shed, or an ordinary message: acknowledged now, so the broker's in-flight
            # window to us never fills with what waits here (it would hold back an alarm
            # queued behind it at the broker).
            self._paho.ack(mid, 1)  # type: ignore[arg-type]
        if verdict is not SHED and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _dispatch(self, paho: mqtt.Client, disconnected: asyncio.Future[Any]) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake
        disconnected.add_done_callback(wake)
        yielded = time.perf_counter()
        try:
            while True:
                if disconnected.done():
                    raise aiomqtt.MqttError("disconnected") from disconnected.exception()
                item = self.admission.pop()
                if item is None:
                    self._waiter = loop.create_future()
                    await self._waiter
                    yielded = time.perf_counter()
                    continue
                topic, payload, retained, received_at, mid = item
                await self.handler(topic, payload, retained, received_at)
                if mid is not None:
                    paho.ack(mid, 1)  # an alarm device's message: only once handled
                # Let the socket reader run at least every YIELD_S, so a smoke alarm
                # arriving now is admitted (and goes first) instead of waiting behind the
                # backlog; not after every message, which costs a turn of the loop each.
                now = time.perf_counter()
                if now - yielded >= YIELD_S:
                    await asyncio.sleep(0)
                    yielded = time.perf_counter()
        finally:
            disconnected.remove_done_callback(wake)
            self._waiter = None

    def status(self) -> dict[str, Any]:
        """Messages received, waiting, shed per device, and the devices flooding now."""
        return {"received": self.messages, "waiting": self.admission.waiting(),
                "shed": dict(self.admission.shed), "flooding": self.admission.flooding()}

    def _wake(self, _: object = None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _report_floods(self) -> None:
        """Once a second: floods that began or ended, logged and reported once each."""
        while True:
            await asyncio.sleep(FLOOD_CHECK_S)
            now = self.clock()
            for report in self.admission.flood_changes(now, now):
                if report.ended:
                    logger.warning("device %s no longer floods: %d message(s) shed over "
                                   "%.0f s (limit %g/s)", report.key, report.shed,
                                   report.duration_s, report.limit_per_s)
                else:
                    logger.warning("device %s floods (over %g msg/s): its messages beyond "
                                   "the limit are shed and counted until it stops",
                                   report.key, report.limit_per_s)
                if self.on_flood is not None:
                    try:
                        await self.on_flood(report)
                    except Exception:  # the report is secondary; ingest must go on
                        logger.exception("could not record the flood of %s", report.key)


def read_password(password: str | None, password_file: str | None, base: Path) -> str | None:
    """The broker password from the config or its file (a LoadCredential copy in the unit)."""
    if password_file:
        return read_credential(base / password_file).decode()
    return password
