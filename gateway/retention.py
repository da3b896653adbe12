"""SD-card care: how long each kind of history is kept, and the pruning that keeps it so.

A gateway runs for years on an SD card: the store must reach a steady size and stay there.
Once a day (at `[storage] prune_hour`, and once at start) observations older than the window
go, then old closed alerts with their acknowledged messages, old commissioning records,
closed maintenance items, silent quarantine topics and old hourly activity totals. An open
alert, an unacknowledged message and each device's newest readings are never removed.

Pruning runs in batches of `BATCH_ROWS`, each its own short transaction on the store's one
thread, with a pause between them: an alert raised meanwhile waits for one batch at most.
Freed pages are reused by SQLite for the next inserts (gateway/store.py says why the file is
not shrunk).

A size ceiling (`[storage] max_db_mb`) bounds the store whatever the traffic: when the pages
in use reach it, the oldest observations go first, down to `LOW_WATER` of it; alerts and the
outbox are never dropped for room. The technician sees it on the status page and in
`anxin status`, and the log says it once when it starts and once when age is again the limit.

While the disk is full (gateway/store.py keeps alerts in memory then), writing them through
is tried again every `FULL_RETRY_S`.

**Repeated health readings are thinned before they are stored** (`Thinning`). Zigbee2MQTT
repeats a device's battery and link quality in every message it publishes: a motion sensor's
"battery 100" hundreds of times a day, two of every three rows written. A reading of those
kinds is stored when it differs from the last one stored (link quality: by `LQI_BAND` or
more; below or across the weak-link limit every reading is kept, for the technician), and
at least every `KEEP_EVERY_S` whatever it says. The detectors see every reading; only the
stored history is thinner, and the newest stored link quality, which commissioning shows, is
on the same side of the weak-link limit as the last one heard and within `LQI_BAND` of it.
(Zigbee2MQTT's own Home Assistant entities for link quality are off by default for the same
reason.)
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from detectors import routine
from devices.observation import Observation
from gateway.config import StorageSection
from gateway.episodes import Episodes
from gateway.store import AsyncStore, Store, read_newest_ids

logger = logging.getLogger(__name__)

DAY_S = 86400.0
BATCH_ROWS = 500  # a batch holds the store ~3 ms here (median; bench/storage.py)
PAUSE_S = 0.02  # real seconds between batches: the alert path gets the store thread
CHECK_S = 5.0  # real seconds: how often the ceiling, the schedule and a full disk are looked at
FULL_RETRY_S = CHECK_S
LOW_WATER = 0.9  # a ceiling prune goes down to this share of the ceiling
# hourly activity totals: the routine detector reads 35 days; a year more is a few hundred KB
HOURS_KEEP_DAYS = 400.0
KEEP_EVERY_S = 3600.0  # a repeated health reading is still stored this often
LQI_BAND = 16.0  # link quality (0-255) changes smaller than this are not stored
THINNED_KINDS = frozenset({"battery", "link_quality"})


@dataclass(frozen=True, slots=True)
class Policy:
    """What is kept, in seconds and rows (from `[storage]`)."""

    observations_s: float = 30 * DAY_S
    alerts_s: float = 400 * DAY_S
    alerts_keep: int = 1000
    records_s: float = 730 * DAY_S
    records_keep: int = 50
    quarantine_s: float = 30 * DAY_S
    max_bytes: int = 512 * 2**20
    prune_hour: int = 4

    @classmethod
    def of(cls, s: StorageSection) -> Policy:
        """The policy a config's `[storage]` section asks for."""
        return cls(s.observations_days * DAY_S, s.alerts_days * DAY_S, s.alerts_keep,
                   s.records_days * DAY_S, s.records_keep, s.quarantine_days * DAY_S,
                   int(s.max_db_mb * 2**20), s.prune_hour)


class Thinning:
    """Which observations are worth a row: all but a repeated health reading (battery,
    link quality). Pure; the gateway asks `keep(obs, now)` of each before it is buffered."""

    def __init__(self, weak_link_lqi: float, every_s: float = KEEP_EVERY_S) -> None:
        self.weak_link_lqi = weak_link_lqi
        self.every_s = every_s
        self.skipped = 0
        self._stored: dict[tuple[str, str], tuple[Any, float]] = {}  # -> (value, at)

    def keep(self, obs: Observation, now: float) -> bool:
        """Whether to store `obs` (and note it as the last stored of its device and kind)."""
        kind = obs.kind
        if kind not in THINNED_KINDS:
            return True
        key = (obs.device, kind)
        last = self._stored.get(key)
        # (a clock stepped back makes the age negative: stored again, as when it is old)
        if last is not None and 0.0 <= now - last[1] < self.every_s and self._same(
                kind, obs.value, last[0]):
            self.skipped += 1
            return False
        self._stored[key] = (obs.value, now)
        return True

    def _same(self, kind: str, value: Any, stored: Any) -> bool:
        if kind == "battery" or type(value) not in (int, float) or type(stored) not in (
                int, float):
            return bool(value == stored)
        weak = self.weak_link_lqi  # below it, and across it, every reading is stored
        return value >= weak and stored >= weak and abs(value - stored) < LQI_BAND


class Retention:
    """Keeps one store within its policy; `await run()` as a gateway task."""

    def __init__(self, store: AsyncStore, policy: Policy, tz: ZoneInfo,
                 clock: Callable[[], float], *, batch: int = BATCH_ROWS,
                 pause_s: float = PAUSE_S,
                 from_wall: Callable[[float], float] = lambda wall: wall,
                 trusted: Callable[[], bool] = lambda: True) -> None:
        self.store = store
        self.policy = policy
        self.tz = tz
        self.clock = clock  # the gateway's clock: observations are stamped with it
        self.from_wall = from_wall  # the store stamps a full disk on the wall clock
        # Ages are only as good as the clock: one set years ahead (no RTC, no NTP yet) would
        # make everything "old". While it is not trusted only the ceiling removes anything.
        self.trusted = trusted
        self.age_paused = False
        self.batch = batch
        self.pause_s = pause_s
        self.last: dict[str, Any] | None = None  # the last pruning: when, what, how long
        self.ceiling_since: float | None = None  # the ceiling, not age, bounds the history
        self.ceiling_dropped = 0
        self._day: str | None = None  # the local date of the last daily pruning
        self.errors = Episodes(logger, "failed", level=logging.ERROR, quiet_s=float("inf"))

    async def run(self) -> None:
        """Prune now, then daily; watch the ceiling and a full disk, until cancelled."""
        first, looked = True, False  # the pruning at start is still to do; looked once
        while True:
            if looked:
                await asyncio.sleep(CHECK_S)
            looked = True
            now = self.clock()
            try:
                await self._step(now, first)
            except (sqlite3.Error, OSError) as e:
                # Pruning can wait for the next look (a disk too full even to delete, a
                # database locked by a technician's command): the gateway must not stop.
                self.errors.failed("storage pruning", str(e), now)
            else:
                self.errors.ok("storage pruning", now)
                first = False

    async def _step(self, now: float, first: bool) -> None:
        if (await self.store.call(Store.storage_state))["full_since"] is not None:
            await self.store.call(Store.write_pending)
        await self.store.call(Store.ensure_reserve)  # given up on a full disk: back when room
        local = datetime.fromtimestamp(now, self.tz)
        if first or (local.hour >= self.policy.prune_hour
                     and (self._day is None or local.date().isoformat() > self._day)):
            await self.prune(now)
        else:
            await self.enforce_ceiling()

    async def prune(self, now: float) -> dict[str, Any]:
        """The daily pruning: by age, then the ceiling. Figures of what it did."""
        started = time.monotonic()
        self._day = datetime.fromtimestamp(now, self.tz).date().isoformat()
        p = self.policy
        done: Counter[str] = Counter()
        if self.trusted():
            if self.age_paused:
                logger.warning("storage: the clock is trusted again: pruning by age resumes")
                self.age_paused = False
            await self._by_age(now, done)
        elif not self.age_paused:
            self.age_paused = True
            logger.warning("storage: the clock is not synchronised: nothing is pruned by age "
                           "until it is (the size ceiling still bounds the store)")
        if done["observations"] and self.ceiling_since is not None:
            logger.warning("storage: age bounds the history again (%d observations were "
                           "dropped for room at the ceiling of %.0f MB)", self.ceiling_dropped,
                           p.max_bytes / 2**20)
            self.ceiling_since, self.ceiling_dropped = None, 0
        done["observations_for_room"] = await self.enforce_ceiling()
        await self.store.call(Store.checkpoint)
        self.last = {"at": now, "seconds": round(time.monotonic() - started, 3),
                     "deleted": {k: v for k, v in done.items() if v}}
        logger.info("storage pruned in %.2f s: %s", self.last["seconds"],
                    self.last["deleted"] or "nothing to remove")
        return self.last

    async def _by_age(self, now: float, done: Counter[str]) -> None:
        """Everything past its window, batch by batch."""
        p = self.policy
        done["observations"] = await self._observations(now - p.observations_s)
        while True:
            got = await self.store.call(
                Store.prune_history, alerts_before=now - p.alerts_s, alerts_keep=p.alerts_keep,
                records_before=now - p.records_s, records_keep=p.records_keep,
                quarantine_before=now - p.quarantine_s,
                hours_before=now - max(HOURS_KEEP_DAYS, routine.LOOKBACK_DAYS + 2) * DAY_S,
                limit=self.batch)
            done.update(got)
            if max(got.values()) < self.batch:
                break
            await asyncio.sleep(self.pause_s)

    async def _observations(self, before: float | None, *, goal: int | None = None) -> int:
        """Delete observations older than `before` (None: the oldest, until `goal` bytes are
        in use), batch by batch."""
        # read beside the store's thread: in a big store the scan takes a while
        keep = await asyncio.to_thread(read_newest_ids, self.store.path)
        deleted, after = 0, 0
        while True:
            n, nxt = await self.store.call(Store.prune_observations, before, after, keep,
                                           self.batch)
            deleted += n
            if nxt is None:
                return deleted
            after = nxt
            if goal is not None and (await self.store.call(Store.size))["used_bytes"] <= goal:
                return deleted
            await asyncio.sleep(self.pause_s)

    async def enforce_ceiling(self) -> int:
        """Past the ceiling: the oldest observations go, down to `LOW_WATER` of it."""
        size = await self.store.call(Store.size)
        if size["used_bytes"] < self.policy.max_bytes:
            return 0
        if self.ceiling_since is None:
            self.ceiling_since = self.clock()
            logger.warning("storage: the database reached its ceiling of %.0f MB: the oldest "
                           "observations make room (alerts and the outbox are kept)",
                           self.policy.max_bytes / 2**20)
        n = await self._observations(None, goal=int(self.policy.max_bytes * LOW_WATER))
        self.ceiling_dropped += n
        return n

    async def status(self) -> dict[str, Any]:
        """Size, retention and trouble, for the status page and `anxin status`."""
        size = await self.store.call(Store.size)
        full = await self.store.call(Store.storage_state)
        return {
            "db_mb": round((size["file_bytes"] + size["wal_bytes"]) / 2**20, 1),
            "used_mb": round(size["used_bytes"] / 2**20, 1),
            "max_db_mb": round(self.policy.max_bytes / 2**20),
            "observations_days": round(self.policy.observations_s / DAY_S, 1),
            "oldest_observation": await self.store.call(Store.oldest_observation),
            "ceiling_since": self.ceiling_since,
            "age_paused": self.age_paused,
            "last_prune": self.last,
            **full,
            "full_since": None if full["full_since"] is None else self.from_wall(
                full["full_since"]),
        }
