"""SMS/voice transport: an alert becomes a signed `anxin.notify/1` request to an HTTP SMS or
voice-call gateway (alerts/notify.py), for family contacts and community workers."""

from __future__ import annotations

import json

from alerts import notify
from gateway.transports.webhook import WebhookTransport


class SmsTransport(WebhookTransport):
    """One phone number, reached through the SMS/voice gateway at `url`."""

    def __init__(self, name: str, url: str, secret: bytes, *, to: str, channel: str,
                 address: str = "", timeout_s: float = 10.0) -> None:
        super().__init__(name, url, secret, timeout_s)
        self.to = to
        self.channel = channel
        self.address = address

    async def send(self, body: bytes) -> None:
        """Turn the alert into the person's message and POST it; 2xx = the provider has it."""
        alert = json.loads(body)
        await super().send(notify.encode(alert, to=self.to, channel=self.channel,
                                         address=self.address))
