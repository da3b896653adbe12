"""SMS/voice transport: an alert becomes a signed `anxin.notify/1` request to an HTTP SMS or
voice-call gateway (alerts/notify.py), for family contacts and community workers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from alerts import notify, wire
from gateway.transports.webhook import WebhookTransport


class SmsTransport(WebhookTransport):
    """One phone number, reached through the SMS/voice gateway at `url`."""

    def __init__(self, name: str, url: str, secret: bytes, *, to: str, channel: str,
                 address: str = "", timeout_s: float = 10.0,
                 clock: Callable[[], float] = time.time, **kw: Any) -> None:
        super().__init__(name, url, secret, timeout_s, clock=clock, **kw)
        self.to = to
        self.channel = channel
        self.address = address

    async def send(self, body: bytes) -> None:
        """Turn the alert into the person's message and POST it; 2xx = the provider has it."""
        alert = json.loads(body)
        await self._deliver(self.url, lambda: notify.encode(
            self._dated(alert), to=self.to, channel=self.channel, address=self.address))

    def _dated(self, alert: dict[str, Any]) -> dict[str, Any]:
        """The alert with its time told by the receiver's clock when the gateway's is not
        synchronised (a Pi before NTP): a relative reads the real time of the call."""
        clock = alert.get(wire.CLOCK_FIELD)
        if not (isinstance(clock, dict) and clock.get("synced") is False):
            return alert
        try:
            raised = datetime.fromisoformat(alert["raised_at"])
        except (KeyError, TypeError, ValueError):
            return alert
        on_peer = raised.timestamp() + self.peer.now() - self._clock()
        return {**alert, "raised_at": datetime.fromtimestamp(on_peer, raised.tzinfo)
                .isoformat(timespec="milliseconds")}
