"""MQTT uplink: alerts to a central broker, acceptance and resolution back down.

This is the path that scales to a city: every gateway keeps one MQTT connection (QoS 1,
persistent session, TLS with a CA and optionally a client certificate) to the centre's
clustered broker, whose receivers share the alert subscription. Topics, with
`prefix` = the target's `topic_prefix` (default `anxin`):

    <prefix>/<gateway_id>/alerts    gateway -> centre   signed envelope around anxin.alert/1
    <prefix>/<gateway_id>/status    gateway -> centre   retained {"state": "online"|"offline",
                                                        "gateway_id": …, "home_id": …};
                                                        "offline" is also the last will
    <prefix>/<gateway_id>/feedback  centre -> gateway   signed envelope around anxin.feedback/1
                                                        (accepted, resolved, look_in)
    <prefix>/<gateway_id>/intercom  gateway -> centre   signed envelope around anxin.intercom/1

An alert counts as delivered when the central broker has acknowledged it (PUBACK); the
centre's own subscription is persistent, so the broker holds it until a receiver takes it.
Envelopes (alerts/wire.py) carry the HMAC signature MQTT 3.1.1 has no headers for; their
time window is a week, because a broker may hold a message for a receiver that is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from alerts import wire
from gateway.config import is_loopback
from gateway.ingest import BrokerAddress
from gateway.timesync import PEER_TOLERANCE_S, PeerClock, shift_body, stamp_age
from gateway.transports.base import DeliveryError, Transport

logger = logging.getLogger(__name__)

ENVELOPE_WINDOW_S = 7 * 24 * 3600.0
UNSURE_KEPT = 200  # alerts sent on an unknown clock, kept to send again once it is known
UNSYNCED = b'"synced":false'  # in an alert body whose gateway clock was not synchronised
ApplyFeedback = Callable[[str, list[dict[str, Any]], str], Awaitable[None]]


class MqttUplink(Transport):
    """One connection to the centre's broker: sends alerts, receives feedback."""

    def __init__(self, name: str, address: BrokerAddress, secret: bytes, *, gateway_id: str,
                 home_id: str, prefix: str = "anxin", timeout_s: float = 10.0,
                 backoff_max_s: float = 30.0, clock: Callable[[], float] = time.time,
                 age_clock: Callable[[], float] | None = None) -> None:
        self.name = name
        self.address = address
        if not address.tls and not is_loopback(address.host):
            # check-config lets this through only with the target's allow_plaintext (a link
            # inside a VPN); say so at every start, so it is never forgotten
            logger.warning("uplink %s to %s:%s is not encrypted (allow_plaintext): it must run "
                           "inside a VPN or private APN", name, address.host, address.port)
        self._secret = secret
        self.gateway_id = gateway_id
        self.home_id = home_id
        self.timeout_s = timeout_s
        self.backoff_max_s = backoff_max_s
        self.clock = clock
        # The centre's time, learned from its signed feedback (MQTT has no Date header):
        # a gateway whose clock is wrong still stamps its envelopes inside the window.
        self.peer = PeerClock(name, wall=clock)
        self._age_clock = age_clock  # the gateway's clock: an event's age when sent
        self._unsure: deque[bytes] = deque(maxlen=UNSURE_KEPT)
        self._relearned = False
        base = f"{prefix}/{gateway_id}"
        self.alerts_topic = f"{base}/alerts"
        self.status_topic = f"{base}/status"
        self.feedback_topic = f"{base}/feedback"
        self.intercom_topic = f"{base}/intercom"
        self.connected = asyncio.Event()
        self.down_since: float | None = None
        self._client: aiomqtt.Client | None = None

    def _status(self, state: str) -> bytes:
        return json.dumps({"state": state, "gateway_id": self.gateway_id,
                           "home_id": self.home_id}).encode()

    async def run(self, apply: ApplyFeedback) -> None:
        """Keep the connection up until cancelled; hand feedback to `apply`."""
        failures = 0
        while True:
            try:
                async with aiomqtt.Client(
                        self.address.host, self.address.port,
                        identifier=f"anxin-uplink-{self.gateway_id}",
                        username=self.address.username, password=self.address.password,
                        clean_session=False, keepalive=30,
                        tls_context=self.address.tls_context(),
                        will=aiomqtt.Will(self.status_topic, self._status("offline"), qos=1,
                                          retain=True)) as client:
                    await client.subscribe(self.feedback_topic, qos=1)
                    await client.publish(self.status_topic, self._status("online"), qos=1,
                                         retain=True)
                    self._client = client
                    self.connected.set()
                    if failures:
                        logger.warning("central broker %s reachable again", self.name)
                    failures, self.down_since = 0, None
                    try:
                        async for message in client.messages:
                            payload = message.payload
                            await self._feedback(payload if isinstance(payload, bytes)
                                                 else str(payload).encode(), apply)
                    except asyncio.CancelledError:
                        # A clean stop: say so, rather than leave it to the last will.
                        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                            await client.publish(self.status_topic, self._status("offline"),
                                                 qos=1, retain=True, timeout=2)
                        raise
                    finally:
                        self._client = None
                        self.connected.clear()
            except aiomqtt.MqttError as e:
                failures += 1
                if failures == 1:
                    self.down_since = self.clock()
                    logger.warning("central broker %s unreachable (%s); alerts are kept and "
                                   "retried", self.name, e)
                cap = min(self.backoff_max_s, 0.5 * 2 ** min(failures, 10))
                await asyncio.sleep(cap / 2 + random.uniform(0, cap / 2))

    def _learn_centre_time(self, payload: bytes) -> None:
        """Move our idea of the centre's time on to a signed envelope's timestamp. Only
        ever forward: a message the broker held for us is older than the centre's now."""
        try:
            wire.open_envelope(self._secret, payload, 0.0, math.inf)  # authentic, any time
            stamp = float(json.loads(payload)["timestamp"])
        except (wire.WireError, ValueError, KeyError, TypeError):
            return
        if stamp > self.peer.now() + PEER_TOLERANCE_S and self.peer.learn(stamp, self.peer.mark()):
            self._relearned = True

    async def _feedback(self, payload: bytes, apply: ApplyFeedback) -> None:
        self._learn_centre_time(payload)
        if self._relearned:
            self._relearned = False
            await self.resend_unsure()
        try:
            msg = wire.decode_feedback(wire.open_envelope(self._secret, payload,
                                                          self.peer.now(), ENVELOPE_WINDOW_S))
        except wire.WireError as e:
            logger.warning("feedback on %s refused (%s): %s", self.feedback_topic, e.reason, e)
            return
        await apply(self.name, msg["events"], msg["cursor"])

    carries_intercom = True

    async def send(self, body: bytes) -> None:
        """Publish one alert (QoS 1); return when the central broker has acknowledged it."""
        raw = body
        if self._age_clock is not None:
            body = stamp_age(body, self._age_clock())
        await self._publish(self.alerts_topic, body)
        if not self.peer.learned and UNSYNCED in raw:
            # Stamped by a clock nobody vouches for, and the centre cannot say "stale" back
            # over MQTT (the broker has acknowledged): sent again once the time is known.
            self._unsure.append(raw)

    async def resend_unsure(self, step: float = 0.0) -> int:
        """Publish again the alerts sent while neither our clock nor the centre's time was
        known (the gateway's clock has stepped by `step` since, or the centre's time was
        learned); the centre deduplicates on the alert id. How many went."""
        bodies, self._unsure = list(self._unsure), deque(maxlen=UNSURE_KEPT)
        sent = 0
        for body in bodies:
            again = shift_body(body, step, synced=True) if step else body
            try:
                await self.send(again)
            except DeliveryError:
                self._unsure.append(again)
                continue
            sent += 1
        if sent:
            logger.warning("%d alert(s) sent again to %s, now stamped with a known time",
                           sent, self.name)
        return sent

    async def send_intercom(self, body: bytes) -> None:
        """Publish one intercom event (QoS 1); return when the central broker has it."""
        await self._publish(self.intercom_topic, body)

    async def _publish(self, topic: str, body: bytes) -> None:
        client = self._client
        if client is None:
            raise DeliveryError("not connected to the central broker")
        payload = wire.envelope(self._secret, int(self.peer.now()), body)
        try:
            await client.publish(topic, payload, qos=1, timeout=self.timeout_s)
        except (aiomqtt.MqttError, TimeoutError) as e:
            raise DeliveryError(f"{type(e).__name__}: {e}".rstrip(": ")) from None
