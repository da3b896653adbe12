"""SIA DC-09 transport: alerts to a monitoring centre's alarm receiver over TCP or UDP.

One frame is sent, then the receiver's reply is awaited (receivers read one frame per read):
ACK = delivered; NAK (usually a timestamp outside the receiver's window: its clock is in the
reply — SIA DC-09 puts it there so a transmitter can correct its own — and is learned, so the
next try carries the receiver's time: a Pi whose clock is not yet set is still heard) or no
reply in time (a receiver answers a bad CRC with nothing) = sent
again with a fresh timestamp and the same sequence number, up to `retries` times; then the
attempt has failed and the outbox backs off and tries again later. With `supervision_s`, a
NULL message keeps the path supervised while there is nothing to report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from alerts import dc09
from gateway.timesync import PeerClock
from gateway.transports.base import DeliveryError, Transport

logger = logging.getLogger(__name__)


class _Datagram(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.replies.put_nowait(data)


SEQUENCE_SKIP = 100  # more than could be sent between two saves of the sequence


class DC09Transport(Transport):
    """One alarm receiver account."""

    def __init__(self, name: str, host: str, port: int, *, account: str,
                 receiver: str | None = None, line: str = "1", fmt: str = "ADM-CID",
                 key: bytes | None = None, protocol: str = "tcp", timeout_s: float = 10.0,
                 retries: int = 3, supervision_s: float = 0.0,
                 zones: dict[str, int] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if fmt not in dc09.FORMATS:
            raise ValueError(f"format must be one of {', '.join(dc09.FORMATS)}, got {fmt!r}")
        if protocol not in ("tcp", "udp"):
            raise ValueError(f"protocol must be tcp or udp, got {protocol!r}")
        self.name = name
        self.host, self.port = host, port
        self.account, self.receiver, self.line = account, receiver, line
        self.fmt, self.key, self.protocol = fmt, key, protocol
        self.timeout_s, self.retries = timeout_s, retries
        self.supervision_s = supervision_s
        self.zones = zones or {}
        self.clock = clock
        self.peer = PeerClock(name, wall=clock)  # what the frames' timestamps are read from
        self._sequence = 0
        self._lock = asyncio.Lock()  # one frame in flight at a time
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._udp: tuple[asyncio.DatagramTransport, _Datagram] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._last_sent = 0.0
        self.nulls_acked = 0
        self._skew_logged = False

    def _next_sequence(self) -> int:
        self._sequence = self._sequence % 9999 + 1
        return self._sequence

    @property
    def sequence(self) -> int:
        """The last sequence number sent (0001-9999, then round again)."""
        return self._sequence

    def resume_sequence(self, last: int, skip: int = SEQUENCE_SKIP) -> None:
        """Carry on after a restart from `last` (kept in the store) plus `skip`: numbers sent
        after the last save are not reused, so a receiver that remembers recent sequence
        numbers never takes a new alarm for a repeat of an old one."""
        self._sequence = (last + skip - 1) % 9999 + 1 if last > 0 else 0

    async def start(self) -> None:
        """Start link supervision (NULL messages), if configured."""
        if self.supervision_s > 0 and self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(),
                                                   name=f"dc09-null-{self.name}")

    async def close(self) -> None:
        """Stop supervision and close the connection; nothing is left running."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._supervisor = None
        await self._disconnect()

    async def send(self, body: bytes) -> None:
        """Send one alert; return on ACK, raise DeliveryError after `retries` tries."""
        alert = json.loads(body)
        event = dc09.event_from_alert(alert, self.zones.get(alert.get("device_id") or "", 1))
        try:
            data = dc09.event_data(self.fmt, self.account, event)
        except dc09.DC09Error as e:
            raise DeliveryError(f"cannot encode alert {alert.get('alert_id')}: {e}") from None
        await self._exchange("SIA-DCS" if self.fmt == "SIA-DCS" else "ADM-CID", data)

    async def _supervise(self) -> None:
        down = False
        while True:
            # intervals on the monotonic clock: a step of the wall clock must not stall them
            await asyncio.sleep(max(0.05, self._last_sent + self.supervision_s
                                    - time.monotonic()))
            if time.monotonic() - self._last_sent < self.supervision_s:
                continue
            try:
                # One try only: a NULL holds the line that an alert may be waiting for.
                await self._exchange("NULL", "]", tries=1)
                self.nulls_acked += 1
                if down:
                    logger.warning("DC-09 receiver %s answers NULL messages again", self.name)
                down = False
            except DeliveryError as e:
                if not down:
                    logger.warning("DC-09 receiver %s: link supervision failed (%s)",
                                   self.name, e)
                down = True
                self._last_sent = time.monotonic()  # try again after a full interval

    async def _exchange(self, message_id: str, data: str, tries: int | None = None) -> None:
        async with self._lock:
            sequence = self._next_sequence()
            problem = "no attempt"
            for _ in range(max(1, tries or self.retries)):
                raw = dc09.frame(message_id=message_id, sequence=sequence,
                                 account=self.account, line=self.line, receiver=self.receiver,
                                 data=data, ts=self.peer.now(), key=self.key)
                sent = self.peer.mark()
                try:
                    reply = await self._round_trip(raw)
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                    problem = f"{type(e).__name__}: {e}".rstrip(": ") or "no reply"
                    await self._disconnect()
                    continue
                except dc09.DC09Error as e:
                    problem = f"unreadable reply: {e}"
                    continue
                self._last_sent = time.monotonic()
                if reply.kind == "ACK" and reply.sequence == sequence:
                    if self.key is None or reply.authentic:
                        return
                    # On an encrypted link a plain or undecryptable ACK proves nothing.
                    problem = "ACK not encrypted with our key (not trusted)"
                    continue
                if reply.kind == "NAK":
                    problem = "NAK"
                    if reply.receiver_time is not None:
                        self.peer.learn(reply.receiver_time.timestamp() + 0.5, sent, quiet=True)
                    if reply.receiver_time is not None and not self._skew_logged:
                        self._skew_logged = True
                        logger.warning("DC-09 receiver %s refused our time: its clock says "
                                       "%s, ours %s", self.name,
                                       reply.receiver_time.isoformat(),
                                       datetime.fromtimestamp(self.clock(), UTC).isoformat())
                    continue
                problem = f"{reply.kind} (sequence {reply.sequence})"
                if reply.kind == "DUH":  # the receiver cannot use this message at all
                    break
            raise DeliveryError(f"DC-09 {message_id} to {self.host}:{self.port}: {problem}")

    async def _round_trip(self, raw: bytes) -> dc09.Reply:
        if self.protocol == "udp":
            if self._udp is None:
                loop = asyncio.get_running_loop()
                transport, proto = await loop.create_datagram_endpoint(
                    _Datagram, remote_addr=(self.host, self.port))
                self._udp = (transport, proto)
            transport, proto = self._udp
            while not proto.replies.empty():  # stale replies of an earlier try
                proto.replies.get_nowait()
            transport.sendto(raw)
            return dc09.parse_reply(await asyncio.wait_for(proto.replies.get(),
                                                           self.timeout_s), self.key)
        if self._writer is None:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout_s)
        assert self._reader is not None
        self._writer.write(raw)
        await self._writer.drain()
        reply = await asyncio.wait_for(self._reader.readuntil(b"\r"), self.timeout_s)
        return dc09.parse_reply(reply, self.key)

    async def _disconnect(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self._writer.wait_closed()
        self._reader = self._writer = None
        if self._udp is not None:
            self._udp[0].close()
            self._udp = None
