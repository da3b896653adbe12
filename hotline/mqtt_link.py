"""The centre's end of the MQTT uplink (gateway/transports/mqtt_uplink.py).

Subscribes (persistent session, QoS 1) to `<prefix>/+/alerts`, `<prefix>/+/intercom` and
`<prefix>/+/status` on the central broker — as `$share/<group>/…` when several receivers
share the load — verifies each envelope, and stores alerts and intercom events exactly as
the webhook does. Operators' accept/resolve/look-in go back on
`<prefix>/<gateway>/feedback`; what has been published per gateway is remembered in the
store, so an action taken while the broker is unreachable is sent when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt

from alerts import wire
from hotline.store import AsyncHotlineStore

logger = logging.getLogger(__name__)

ENVELOPE_WINDOW_S = 7 * 24 * 3600.0  # a broker may hold messages for a receiver that was down
Publish = Callable[[dict[str, Any]], None]
Status = Callable[[str, str, bool, float], Awaitable[None]]  # gateway, home, online?, now


class MqttLink:
    """Alerts in from the central broker, feedback out."""

    def __init__(self, url: str, secret: bytes, store: AsyncHotlineStore, publish: Publish,
                 status: Status, actions: asyncio.Condition, *, prefix: str = "anxin",
                 share_group: str | None = None, client_id: str = "anxin-hotline",
                 clock: Callable[[], float] = time.time,
                 intercom: Publish | None = None) -> None:
        p = urlsplit(url)
        if p.scheme not in ("mqtt", "mqtts") or not p.hostname:
            raise ValueError(f"not an MQTT URL: {url!r}")
        self.host, self.port = p.hostname, p.port or (8883 if p.scheme == "mqtts" else 1883)
        self.tls = p.scheme == "mqtts"
        self.username = unquote(p.username) if p.username else None
        self.password = unquote(p.password) if p.password else None
        self._secret = secret
        self.store = store
        self.publish = publish
        self.status = status
        self.actions = actions
        self.prefix = prefix
        share = f"$share/{share_group}/" if share_group else ""
        self.intercom = intercom
        self.subscriptions = [f"{share}{prefix}/+/alerts", f"{share}{prefix}/+/status",
                              f"{share}{prefix}/+/intercom"]
        self.client_id = client_id
        self.clock = clock
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Stay connected until cancelled."""
        failures = 0
        while True:
            try:
                async with aiomqtt.Client(
                        self.host, self.port, identifier=self.client_id,
                        username=self.username, password=self.password, clean_session=False,
                        tls_params=aiomqtt.TLSParameters() if self.tls else None) as client:
                    for topic in self.subscriptions:
                        await client.subscribe(topic, qos=1)
                    if failures:
                        logger.warning("central broker %s:%d reachable again", self.host,
                                       self.port)
                    failures = 0
                    self.connected.set()
                    sender = asyncio.create_task(self._send_feedback(client))
                    try:
                        async for message in client.messages:
                            payload = message.payload
                            await self._received(str(message.topic), payload
                                                 if isinstance(payload, bytes)
                                                 else str(payload).encode())
                    finally:
                        self.connected.clear()
                        sender.cancel()
                        await asyncio.gather(sender, return_exceptions=True)
            except aiomqtt.MqttError as e:
                failures += 1
                if failures == 1:
                    logger.warning("central broker %s:%d unreachable (%s); retrying",
                                   self.host, self.port, e)
                await asyncio.sleep(min(10.0, 0.5 * 2 ** min(failures, 5)))

    async def _received(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) < 3:
            return
        gateway_id, kind = parts[-2], parts[-1]
        now = self.clock()
        if kind == "status":
            with contextlib.suppress(ValueError):
                status = json.loads(payload) if payload else {}
                if isinstance(status, dict) and status.get("state") in ("online", "offline"):
                    await self.status(gateway_id, str(status.get("home_id") or ""),
                                      status["state"] == "online", now)
            return
        decode = wire.decode_intercom if kind == "intercom" else wire.decode
        try:
            body = decode(wire.open_envelope(self._secret, payload, now, ENVELOPE_WINDOW_S))
        except wire.WireError as e:
            logger.warning("refused an uplink message on %s: %s (%s)", topic, e.reason, e)
            reason, detail = e.reason, str(e)
            await self.store.call(lambda s: s.reject(f"mqtt:{topic}", reason, detail, payload,
                                                     now))
            return
        if kind == "intercom":
            event, seen = await self.store.call(lambda s: s.record_intercom(body, now))
            if not seen and self.intercom is not None:
                self.intercom(event)
            return
        row, duplicate = await self.store.call(lambda s: s.record(body, now))
        if not duplicate:
            logger.info("alert %s received over MQTT: %s %s, home %s", row["alert_id"],
                        row["code"], row["event"], row["home_id"])
        self.publish(row)

    async def _send_feedback(self, client: aiomqtt.Client) -> None:
        """Publish operators' actions to each gateway's feedback topic, never twice."""
        while True:
            for gateway_id, events, cursor in await self.store.call(
                    lambda s: s.unsent_feedback()):
                if events:  # only notes or dispatches: nothing for the gateway, move on
                    body = json.dumps({"schema": wire.FEEDBACK_SCHEMA,
                                       "gateway_id": gateway_id, "cursor": str(cursor),
                                       "events": events}, ensure_ascii=False).encode()
                    await client.publish(f"{self.prefix}/{gateway_id}/feedback",
                                         wire.envelope(self._secret, int(self.clock()), body),
                                         qos=1, timeout=10)
                await self.store.call(lambda s, g=gateway_id, c=cursor: s.feedback_sent(g, c))
            async with self.actions:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.actions.wait(), 5.0)
