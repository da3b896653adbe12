"""Outbox senders: one per hotline target, delivering stored messages in sequence order.

A message leaves the outbox only when its target acknowledged it. Until then it is retried
with exponential backoff and jitter. The most urgent message goes first: severity 1 before
severity 4, and within a severity in the order raised, so a hotline that comes back after an
outage hears about the fall before the low batteries. A restart picks up exactly where the
database says it was.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from gateway.store import AsyncStore, OutboxRow, Store
from gateway.transports.base import DeliveryError, Transport

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Queue:
    """Where a sender's messages wait and how each goes out: alerts, or intercom events."""

    what: str  # for the log: "alert", "intercom event"
    due: Callable[[Store, str, int], list[OutboxRow]]
    acked: Callable[[Store, int, float], str | None]
    failed: Callable[[Store, int, str, float], None]
    send: Callable[[Transport, bytes], Awaitable[None]]


ALERTS = Queue("alert", Store.due, Store.acked, Store.failed, lambda t, body: t.send(body))
INTERCOM = Queue("intercom event", Store.intercom_due, Store.intercom_acked,
                 Store.intercom_failed, lambda t, body: t.send_intercom(body))


def read_due(store: Store, senders: Sequence[OutboxSender]) -> dict[str, list[OutboxRow] | None]:
    """On the store thread, just after a commit: each sender's most urgent message, for
    its `wake` (None where the read failed: that sender asks for itself)."""
    due: dict[str, list[OutboxRow] | None] = {}
    for s in senders:
        try:
            due[s.target] = s.queue.due(store, s.target, 1)
        except Exception:  # the commit stands whatever this read does
            logger.exception("outbox of %s not read after a commit", s.target)
            due[s.target] = None
    return due


class OutboxSender:
    """Drains one target's outbox through its transport."""

    def __init__(self, store: AsyncStore, transport: Transport,
                 on_delivered: Callable[[str], Awaitable[None]], *,
                 backoff_base_s: float = 0.5, backoff_max_s: float = 60.0,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 queue: Queue = ALERTS) -> None:
        self.store = store
        self.queue = queue
        self.transport = transport
        self.on_delivered = on_delivered
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.clock = clock
        self.sleep = sleep  # injectable with the clock, to replay a day of outage in seconds
        self._wake = asyncio.Event()
        self._idle = False  # waiting for a wake-up, having found nothing to send
        self._fresh: list[OutboxRow] | None = None  # `due` read right after a commit
        self.failures = 0  # consecutive failed attempts; > 0 means the path is down
        self.down_since: float | None = None  # when the current outage began
        self.sent = 0

    @property
    def target(self) -> str:
        """The target's name (the outbox rows' `target`)."""
        return self.transport.name

    def wake(self, due: list[OutboxRow] | None = None) -> None:
        """New rows were written: look at the outbox now. `due` is what `queue.due` answered
        for this target on the store thread right after that commit; a sender idle since it
        last found nothing sends it without asking again (an alarm's store-thread round trip
        fewer). A busy sender asks anyway: its own acks may have changed the answer."""
        if self._idle:
            # the newest commit's answer (the store thread runs in order); a wake without
            # one leaves it unknown, so the sender asks
            self._fresh = due
        self._wake.set()

    def _delay(self) -> float:
        # "Equal jitter": half the backoff fixed, half random, so many gateways that lost the
        # same hotline do not all come back at the same instant.
        cap = min(self.backoff_max_s, self.backoff_base_s * 2 ** min(self.failures - 1, 20))
        return cap / 2 + random.uniform(0, cap / 2)

    async def run(self) -> None:
        """Send until cancelled: always the most urgent unacknowledged message first."""
        await self.transport.start()
        try:
            while True:
                self._wake.clear()
                rows, self._fresh = self._fresh, None
                if rows is None:
                    rows = await self.store.call(self.queue.due, self.target, 1)
                if not rows:
                    self._idle = True
                    try:
                        await self._wake.wait()
                    finally:
                        self._idle = False
                    continue
                row = rows[0]
                if not await self._attempt(row.id, row.alert_id, row.sequence, row.body):
                    # Back off, then ask again: a more urgent alert raised meanwhile goes
                    # first (severity 1 before a low battery that has been waiting).
                    await self.sleep(self._delay())
        finally:
            await self.transport.close()

    async def _attempt(self, row_id: int, alert_id: str, sequence: int, body: bytes) -> bool:
        """One send; True once the target acknowledged."""
        what = self.queue.what
        try:
            await self.queue.send(self.transport, body)
        except Exception as e:
            # Anything a transport raises is a failed attempt, retried like an outage:
            # a sender that died here would hold every later alert until a restart.
            if not isinstance(e, DeliveryError):
                logger.exception("transport %s failed unexpectedly on %s %s",
                                 self.target, what, alert_id)
            self.failures += 1
            if self.failures == 1:
                self.down_since = self.clock()
                logger.warning("hotline %s unreachable (%s); %s %s (seq %d) is kept and "
                               "retried", self.target, e, what, alert_id, sequence)
            await self.store.call(self.queue.failed, row_id, str(e),
                                  self.clock() + self._delay())
            return False
        if self.failures:
            logger.warning("hotline %s reachable again after %d failed attempts",
                           self.target, self.failures)
            self.failures = 0
            self.down_since = None
        self.sent += 1
        done = await self.store.call(self.queue.acked, row_id, self.clock())
        logger.info("%s %s (seq %d) acknowledged by %s", what, alert_id, sequence, self.target)
        if done is not None:
            await self.on_delivered(done)
        return True
