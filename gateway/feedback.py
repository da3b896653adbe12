"""Feedback from the centre: the gateway learns that an operator accepted or resolved an alert.

Homes sit behind NAT, so the gateway opens the connection: a long poll on the webhook
target's `feedback_url` (`GET …?gateway_id=…&after=<cursor>&wait=<s>`), the request signed
over `<timestamp>.GET <path?query>` and the `anxin.feedback/1` answer signed over its body
(alerts/wire.py). Only a correctly signed answer is believed: a forged "accepted" would stop
an escalation. The polls are also the gateway's sign of life: a centre that stops hearing
them raises loss of supervision for the home. The cursor is stored with the alert changes
it brought, so a restart neither loses nor repeats feedback.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from yarl import URL

from alerts import wire
from gateway.store import AsyncStore, Store
from gateway.timesync import PeerClock

logger = logging.getLogger(__name__)

Apply = Callable[[str, list[dict[str, Any]], str], Awaitable[None]]


class FeedbackError(Exception):
    """A poll that failed or could not be trusted."""


class FeedbackPoller:
    """Reads one webhook target's feedback feed until cancelled."""

    def __init__(self, name: str, url: str, secret: bytes, gateway_id: str, home_id: str,
                 store: AsyncStore, apply: Apply, *, wait_s: float = 25.0,
                 backoff_max_s: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.url = URL(url)
        self._secret = secret
        self.gateway_id = gateway_id
        self.home_id = home_id
        self.store = store
        self.apply = apply
        self.wait_s = wait_s
        self.backoff_max_s = backoff_max_s
        self.clock = clock
        # The hotline's time, learned from its answers' Date header: a gateway whose clock
        # is wrong (no real-time clock, no NTP yet) still signs within its window.
        self.peer = PeerClock(name, wall=clock)
        self.failures = 0
        self.down_since: float | None = None  # when the current outage began

    async def run(self) -> None:
        """Poll, apply, repeat; back off (with jitter) while the feed is unreachable."""
        cursor = await self.store.call(Store.feedback_cursor, self.name) or "0"
        timeout = aiohttp.ClientTimeout(total=self.wait_s + 15)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                try:
                    events, new_cursor = await self.poll(http, cursor)
                except FeedbackError as e:
                    self.failures += 1
                    if self.failures == 1:
                        self.down_since = self.clock()
                        logger.warning("feedback from %s unavailable (%s): acceptance is not "
                                       "learned until it is back; escalation goes on",
                                       self.name, e)
                    cap = min(self.backoff_max_s, 0.5 * 2 ** min(self.failures, 10))
                    await asyncio.sleep(cap / 2 + random.uniform(0, cap / 2))
                    continue
                if self.failures:
                    logger.warning("feedback from %s available again", self.name)
                    self.failures = 0
                    self.down_since = None
                if events or new_cursor != cursor:
                    await self.apply(self.name, events, new_cursor)
                cursor = new_cursor

    async def poll(self, http: aiohttp.ClientSession, cursor: str
                   ) -> tuple[list[dict[str, Any]], str]:
        """One long poll: the new events and the cursor after them."""
        # After a failure, probe without waiting, so a recovery is noticed at once.
        wait = 0 if self.failures else self.wait_s
        url = self.url.update_query(gateway_id=self.gateway_id, home_id=self.home_id,
                                    after=cursor, wait=f"{wait:g}")
        ts = int(self.peer.now())
        headers = {wire.TIMESTAMP_HEADER: str(ts),
                   wire.SIGNATURE_HEADER: wire.sign(
                       self._secret, ts, wire.request_signature_base("GET", url.raw_path_qs))}
        sent = self.peer.mark()
        try:
            async with http.get(url, headers=headers) as resp:
                self.peer.learn_http_date(resp.headers.get("Date"), sent)
                body = await resp.read()
                if resp.status != 200:
                    raise FeedbackError(f"HTTP {resp.status}: {body[:200]!r}")
                signed_ts = resp.headers.get(wire.TIMESTAMP_HEADER)
                signature = resp.headers.get(wire.SIGNATURE_HEADER)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise FeedbackError(f"{type(e).__name__}: {e}".rstrip(": ")) from None
        try:
            wire.check_signature(self._secret, signed_ts, signature, body, self.peer.now())
            msg = wire.decode_feedback(body)
        except wire.WireError as e:
            raise FeedbackError(f"answer not trusted ({e.reason}): {e}") from None
        return msg["events"], msg["cursor"]
