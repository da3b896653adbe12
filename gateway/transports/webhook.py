"""Webhook transport: POST the signed `anxin.alert/1` JSON; any 2xx is an acknowledgement.

The signature's timestamp is the receiver's time as learned from its last response's Date
header (gateway/timesync.py `PeerClock`): a gateway whose clock is wrong (a Pi without a
real-time clock, before NTP) is refused once as "stale", learns the receiver's time from
that refusal, and sends again at once, signed with it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import aiohttp
from yarl import URL

from alerts import wire
from gateway.timesync import PeerClock, stamp_age
from gateway.transports.base import DeliveryError, Transport


class WebhookTransport(Transport):
    """One HTTP(S) endpoint at the hotline. The signature is made at send time, so a resend
    hours later still carries a fresh timestamp inside the receiver's window."""

    def __init__(self, name: str, url: str, secret: bytes, timeout_s: float = 10.0, *,
                 clock: Callable[[], float] = time.time, peer: PeerClock | None = None) -> None:
        self.name = name
        self.url = url
        self._secret = secret
        self._clock = clock  # the gateway's clock: the age of an event when sent
        self.peer = peer or PeerClock(name)
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

    carries_intercom = True

    @property
    def intercom_url(self) -> str:
        """Where intercom events go: the alerts URL with its path replaced by /intercom."""
        return str(URL(self.url).with_path("/intercom"))

    async def send(self, body: bytes) -> None:
        """POST one body; return on 2xx, raise DeliveryError otherwise."""
        await self._deliver(self.url, lambda: stamp_age(body, self._clock()))

    async def send_intercom(self, body: bytes) -> None:
        """POST one `anxin.intercom/1` event, signed like an alert, to `intercom_url`."""
        await self._deliver(self.intercom_url, lambda: body)

    async def _deliver(self, url: str, compose: Callable[[], bytes]) -> None:
        """POST what `compose` makes (made again for the second try, with what the first
        taught); return on 2xx, raise DeliveryError otherwise."""
        await self.start()
        status, detail, relearned = await self._post(url, compose())
        if status == 401 and relearned and _reason(detail) == "stale":
            # Refused for our clock alone, and the refusal told us the receiver's time.
            status, detail, _ = await self._post(url, compose())
        if status is not None and 200 <= status < 300:
            return
        raise DeliveryError(detail if status is None else f"HTTP {status}: {detail[:200]}")

    async def _post(self, url: str, body: bytes) -> tuple[int | None, str, bool]:
        """One POST: (status, detail, whether the receiver's clock was learned anew);
        status None when there was no answer (detail says why)."""
        assert self._session is not None
        headers = wire.signed_headers(self._secret, int(self.peer.now()), body)
        sent = self.peer.mark()
        try:
            async with self._session.post(url, data=body, headers=headers) as resp:
                relearned = self.peer.learn_http_date(resp.headers.get("Date"), sent)
                if 200 <= resp.status < 300:
                    await resp.read()
                    return resp.status, "", relearned
                return resp.status, await resp.text(), relearned
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return None, f"{type(e).__name__}: {e}".rstrip(": "), False


def _reason(detail: str) -> str | None:
    """The machine word of a refusal ({"reason": "stale", …}), if the answer has one."""
    try:
        answer = json.loads(detail)
    except ValueError:
        return None
    return answer.get("reason") if isinstance(answer, dict) else None
