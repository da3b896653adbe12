"""MQTT ingest: one long-lived aiomqtt client with a reconnect loop (CONVENTIONS 7).

The session is persistent (fixed client id, clean_session false, QoS 1), so messages published
while the gateway is briefly disconnected are held by the broker and delivered on reconnect.

A QoS-1 message is acknowledged (PUBACK) only after the handler has finished with it, which
for an alarm means after the alert is committed to SQLite. A gateway killed in between gets
the message again from the broker when it comes back (and folds it into the alert it had
already written), instead of having acknowledged a message it never acted on. The broker
keeps at most `max_inflight_messages` unacknowledged messages in flight to us, which also
bounds what can pile up in memory here.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiomqtt

logger = logging.getLogger(__name__)

Handler = Callable[[str, bytes, bool, float], Awaitable[None]]
OnConnect = Callable[[aiomqtt.Client], Awaitable[None]]


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


class Ingest:
    """Subscribes to the sensors' topics and feeds every message to `handler`."""

    def __init__(self, address: BrokerAddress, topics: list[str], handler: Handler, *,
                 client_id: str, keepalive_s: int = 30, reconnect_max_s: float = 10.0,
                 will: aiomqtt.Will | None = None, on_connect: OnConnect | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.address = address
        self.topics = topics
        self.handler = handler
        self.client_id = client_id
        self.keepalive_s = keepalive_s
        self.reconnect_max_s = reconnect_max_s
        self.will = will  # published by the broker if the connection dies
        self.on_connect = on_connect  # after every (re)connect: what must be (re)published
        self.clock = clock  # stamps each message as received (the gateway's clock)
        self.connected = asyncio.Event()
        self.messages = 0
        self.client: aiomqtt.Client | None = None

    async def run(self) -> None:
        """Connect, subscribe and dispatch until cancelled; reconnect on any broker error."""
        failures = 0
        while True:
            try:
                client = aiomqtt.Client(
                    self.address.host, self.address.port, identifier=self.client_id,
                    username=self.address.username, password=self.address.password,
                    clean_session=False, keepalive=self.keepalive_s, will=self.will,
                    tls_context=self.address.tls_context())
                # aiomqtt 2.x has no manual-ack option of its own; its paho client does.
                paho = client._client
                paho.manual_ack_set(True)
                async with client:
                    self.client = client
                    await client.subscribe([(t, 1) for t in self.topics])
                    if failures:
                        logger.warning("MQTT broker %s:%d reachable again",
                                       self.address.host, self.address.port)
                    else:
                        logger.info("connected to MQTT broker %s:%d, subscribed to %s",
                                    self.address.host, self.address.port, ", ".join(self.topics))
                    failures = 0
                    if self.on_connect is not None:
                        await self.on_connect(client)
                    self.connected.set()
                    async for message in client.messages:
                        self.messages += 1
                        payload = message.payload
                        if not isinstance(payload, bytes | bytearray):
                            payload = b"" if payload is None else str(payload).encode()
                        await self.handler(message.topic.value, bytes(payload),
                                           bool(message.retain), self.clock())
                        if message.qos > 0:
                            paho.ack(message.mid, message.qos)
            except aiomqtt.MqttError as e:
                self.connected.clear()
                self.client = None
                failures += 1
                if failures == 1:
                    logger.warning("MQTT broker %s:%d lost or unreachable (%s); retrying",
                                   self.address.host, self.address.port, e)
                await asyncio.sleep(min(self.reconnect_max_s, 0.25 * 2 ** min(failures, 6)))


def read_password(password: str | None, password_file: str | None, base: Path) -> str | None:
    """The broker password from the config or its file."""
    if password_file:
        return (base / password_file).read_text().rstrip("\r\n")
    return password
