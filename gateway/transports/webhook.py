"""Webhook transport: POST the signed `anxin.alert/1` JSON; any 2xx is an acknowledgement."""

from __future__ import annotations

import time

import aiohttp

from alerts import wire
from gateway.transports.base import DeliveryError, Transport


class WebhookTransport(Transport):
    """One HTTP(S) endpoint at the hotline. The signature is made at send time, so a resend
    hours later still carries a fresh timestamp inside the receiver's window."""

    def __init__(self, name: str, url: str, secret: bytes, timeout_s: float = 10.0) -> None:
        self.name = name
        self.url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP session (keep-alive, so an alert does not wait for a TCP handshake)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, body: bytes) -> None:
        """POST one body; return on 2xx, raise DeliveryError otherwise."""
        await self.start()
        assert self._session is not None
        headers = wire.signed_headers(self._secret, int(time.time()), body)
        try:
            async with self._session.post(self.url, data=body, headers=headers) as resp:
                if 200 <= resp.status < 300:
                    await resp.read()
                    return
                detail = (await resp.text())[:200]
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise DeliveryError(f"{type(e).__name__}: {e}".rstrip(": ")) from None
        raise DeliveryError(f"HTTP {resp.status}: {detail}")
