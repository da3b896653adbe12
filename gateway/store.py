"""The gateway's SQLite store: alerts, the outbox, observations and the quarantine.

One writer owns the connection (CONVENTIONS 8): `Store` is synchronous and is driven from a
single worker thread by `AsyncStore`, so the event loop never waits on the disk and no two
threads ever share the connection. WAL mode; an alert and its outbox rows are committed in one
transaction with `synchronous=FULL` before anything is sent, so a power cut after the commit
cannot lose the alert. Ordinary observations are batched and committed with NORMAL.

**A full disk** (SQLite's SQLITE_FULL: the card is full, or the database reached its page
limit) does not stop the gateway. Alerts, their outbox messages, acknowledgements and
operators' feedback that cannot be written are kept in memory (`due` and `outbox_depth` see
them, so they are still sent) and written through, in one durable transaction, as soon as the
disk has room; observations and other bookkeeping are dropped and counted. The episode is
logged once when it starts and once when it ends.

**A reserve** (gateway/reserve.py): `reserve_bytes` kept allocated beside the database and
given up when an alert cannot be written on a full disk, so that alert is stored durably
rather than only held in memory; while it is spent, only alerts and what concerns them are
written.

**Space** freed by pruning (gateway/retention.py) goes to SQLite's free list and is reused by
the next inserts, so a store at its steady state (a month of observations) stops growing
without the file being shrunk and grown again every day (needless writes on an SD card); the
WAL file is truncated back to `WAL_LIMIT_BYTES` after each checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from alerts.alert import Alert, AlertState
from alerts.maintenance import Item
from devices.observation import Observation
from gateway.reserve import Reserve

logger = logging.getLogger(__name__)

T = TypeVar("T")

QUARANTINE_PAYLOAD_BYTES = 1024
WAL_LIMIT_BYTES = 4 * 2**20
_HEALTH_KINDS = ("battery", "battery_low", "link_quality", "availability")
_OPEN_STATES = ("pending_local", "raised", "delivered", "accepted")


# --- migrations: registered functions, each applied once, in a transaction with its record ---

def _m001_initial(db: sqlite_utils.Database) -> None:
    db["alerts"].create({
        "id": str, "home": str, "device": str, "room": str, "detector": str, "code": int,
        "event": str, "severity": int, "occurred_at": float, "test": int, "resident": str,
        "evidence": str, "state": str, "history": str, "tier": int, "repeats": int,
        "cancel_deadline": float, "sequence": int, "created_at": float, "updated_at": float,
    }, pk="id", not_null={"home", "event", "state", "code", "severity", "occurred_at"})
    db["alerts"].create_index(["state"])
    db["outbox"].create({
        "id": int, "alert_id": str, "target": str, "sequence": int, "severity": int,
        "body": bytes, "created_at": float, "attempts": int, "next_attempt_at": float,
        "last_error": str, "acked_at": float,
    }, pk="id", not_null={"alert_id", "target", "sequence", "body"},
        foreign_keys=[("alert_id", "alerts", "id")])
    db["outbox"].create_index(["target", "acked_at", "sequence"])
    db["outbox"].create_index(["alert_id", "target"], unique=True)
    db["counters"].create({"name": str, "value": int}, pk="name")
    db["observations"].create({
        "id": int, "at": float, "home": str, "device": str, "kind": str, "value": str,
        "room": str, "device_at": float,
    }, pk="id")
    db["observations"].create_index(["device", "at"])
    db["quarantine"].create({
        "topic": str, "category": str, "reason": str, "count": int, "first_at": float,
        "last_at": float, "last_payload": bytes,
    }, pk=("topic", "category"))


def _m002_escalation(db: sqlite_utils.Database) -> None:
    # Escalation state on the alert; an alert may now be sent to a target more than once
    # (reminders), each message with its own sequence number.
    for col, tp in (("tier_at", float), ("notified_at", float), ("reminders", int),
                    ("taken_by", str), ("outcome", str)):
        db["alerts"].add_column(col, tp)
    db.execute("DROP INDEX idx_outbox_alert_id_target")
    db["outbox"].add_column("purpose", str)  # raise | escalate | remind
    db["outbox"].create_index(["alert_id", "target"])
    db["feedback_cursors"].create({"target": str, "cursor": str, "updated_at": float},
                                  pk="target")


def _m003_urgent_first(db: sqlite_utils.Database) -> None:
    # Senders take the most urgent unacknowledged message: keep that lookup cheap however
    # long the acknowledged history grows.
    db.execute("CREATE INDEX outbox_due ON outbox (target, severity, sequence) "
               "WHERE acked_at IS NULL")


def _m004_settings(db: sqlite_utils.Database) -> None:
    # Runtime settings a technician changes from the command line (maintenance mode).
    db["settings"].create({"name": str, "value": str, "updated_at": float}, pk="name")


def _m005_commissioning(db: sqlite_utils.Database) -> None:
    # Installation records: walk tests, end-to-end test alarms and the reports made of them,
    # kept on the gateway for the acceptance check.
    db["commissioning"].create({
        "id": int, "kind": str, "technician": str, "started_at": float, "ended_at": float,
        "data": str,
    }, pk="id", not_null={"kind", "started_at"})
    db["commissioning"].create_index(["kind", "started_at"])
    # Battery and radio at install: the latest reading per device, cheap however long the
    # observation history (a partial index: these kinds are a small share of the rows).
    db.execute("CREATE INDEX observations_health ON observations (kind, device, id) "
               "WHERE kind IN ('battery', 'battery_low', 'link_quality')")


def _m006_maintenance(db: sqlite_utils.Database) -> None:
    # Technical troubles for the maintenance queue and its daily digest: one open item per
    # device and event, counted while it repeats, closed when the condition ends.
    db["maintenance"].create({
        "id": int, "device": str, "event": str, "room": str, "first_at": float,
        "last_at": float, "count": int, "evidence": str, "cleared_at": float,
        "digested_at": float,
    }, pk="id", not_null={"device", "event", "first_at", "last_at", "count"})
    db.execute("CREATE UNIQUE INDEX maintenance_open ON maintenance (device, event) "
               "WHERE cleared_at IS NULL")


def _m007_availability_at_hand(db: sqlite_utils.Database) -> None:
    # Whether Zigbee2MQTT's availability reaches the gateway (mains devices are supervised by
    # it): read at commissioning with the battery and link quality, by the same index.
    db.execute("DROP INDEX observations_health")
    db.execute("CREATE INDEX observations_health ON observations (kind, device, id) "
               "WHERE kind IN ('battery', 'battery_low', 'link_quality', 'availability')")


def _m008_storage(db: sqlite_utils.Database) -> None:
    # Hourly activity totals the routine detector reads beyond the observations' retention
    # window (detectors/routine.py); alerts pruned by age.
    db["activity_hours"].create({"hour": float, "moves": int, "watched": float, "rooms": str},
                                pk="hour")
    db["alerts"].create_index(["updated_at"])


def _m009_intercom_events(db: sqlite_utils.Database) -> None:
    # Issue 6: what the home's video intercom did (anxin.intercom/1), queued per hotline
    # target until acknowledged, like alerts, but apart from them: an event is no alert,
    # and never stands before one in a sender's queue.
    db["intercom_outbox"].create({
        "id": int, "event_id": str, "target": str, "body": bytes, "created_at": float,
        "attempts": int, "next_attempt_at": float, "last_error": str, "acked_at": float,
    }, pk="id", not_null={"event_id", "target", "body", "created_at"})
    db.execute("CREATE UNIQUE INDEX intercom_outbox_event ON intercom_outbox "
               "(event_id, target)")
    db.execute("CREATE INDEX intercom_outbox_due ON intercom_outbox (target, id) "
               "WHERE acked_at IS NULL")


# troubles(open_only, cleared_undigested) -> its WHERE clause (fixed strings only)
_TROUBLES_WHERE = {(True, False): "cleared_at IS NULL", (False, False): "1",
                   (True, True): "cleared_at IS NOT NULL AND digested_at IS NULL",
                   (False, True): "cleared_at IS NOT NULL AND digested_at IS NULL"}


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_initial", _m001_initial),
    ("002_escalation", _m002_escalation),
    ("003_urgent_first", _m003_urgent_first),
    ("004_settings", _m004_settings),
    ("005_commissioning", _m005_commissioning),
    ("006_maintenance", _m006_maintenance),
    ("007_availability_at_hand", _m007_availability_at_hand),
    ("008_storage", _m008_storage),
    ("009_intercom_events", _m009_intercom_events),
]


# What a full or failing SD card looks like to SQLite: full (or the page limit), an I/O error,
# a card the kernel remounted read-only. The gateway goes on without writing through all three.
_CANNOT_WRITE = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY})


def is_full(e: BaseException) -> bool:
    """Whether `e` is SQLite saying it cannot write: the disk (or the database's page
    limit) is full, an I/O error, a read-only file system."""
    code = getattr(e, "sqlite_errorcode", None)
    return isinstance(e, sqlite3.OperationalError) and code is not None and (
        code & 0xFF) in _CANNOT_WRITE


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the database to WAL. Another connection switching the same new file at that
    moment makes SQLite refuse at once ("database is locked": the busy timeout does not apply
    to this), so try again for a few seconds."""
    for attempt in range(50):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == 49:
                raise
            time.sleep(0.1)


def _droppable(default: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A write the gateway can go on without: on a full disk it is counted and skipped."""
    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        def run(self: Store, *args: Any, **kw: Any) -> T:
            if self.reserve.spent:
                self._full(fn.__name__)  # the room the reserve left is for alerts
                return default  # type: ignore[no-any-return]
            try:
                return fn(self, *args, **kw)
            except sqlite3.OperationalError as e:
                if not is_full(e):
                    raise
                self._full(fn.__name__, e)
                return default  # type: ignore[no-any-return]
        run.__name__, run.__doc__ = fn.__name__, fn.__doc__
        return run
    return wrap


class _StillFullError(Exception):
    """An alert could not be written: the disk is full even without the reserve."""

    def __init__(self, error: sqlite3.OperationalError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(slots=True)
class _MemRow:
    """An outbox message kept in memory while the disk is full."""

    id: int  # negative: not in the database
    alert_id: str
    target: str
    sequence: int
    severity: int
    body: bytes
    created_at: float
    purpose: str
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    acked_at: float | None = None


@dataclass(slots=True)
class _Pending:
    """What the disk had no room for, to be written through when it has."""

    alerts: dict[str, tuple[Alert, float, int | None]] = field(default_factory=dict)
    rows: dict[int, _MemRow] = field(default_factory=dict)
    acks: dict[int, float] = field(default_factory=dict)  # database row id -> acked_at
    cursors: dict[str, tuple[str, float]] = field(default_factory=dict)
    moved: dict[int, int] = field(default_factory=dict)  # memory id -> its database id
    next_id: int = -1

    def __bool__(self) -> bool:
        return bool(self.alerts or self.rows or self.acks or self.cursors)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One message waiting for one hotline target."""

    id: int
    alert_id: str
    target: str
    sequence: int
    body: bytes
    attempts: int
    next_attempt_at: float


class Store:
    """Synchronous store; use it from one thread only (AsyncStore does that for you)."""

    # A nearly full disk takes a small write and refuses the next big one: the episode ends
    # only after this long without a refusal, so it is logged once, not once per flap.
    room_after_s = 60.0

    def __init__(self, path: str | Path, reserve_bytes: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.reserve = Reserve(self.path.with_suffix(".reserve"), reserve_bytes)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly
        # what the code says it is.
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        _use_wal(self.conn)
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        self.db = sqlite_utils.Database(self.conn)
        self._migrate()
        self.full_since: float | None = None  # wall clock: since when writes fail (disk full)
        self.full_reason = ""  # SQLite's words for it
        self.dropped: Counter[str] = Counter()  # what a full disk cost, by kind of write
        self._episode_dropped = 0
        self._episode_kept = 0
        self._last_full = 0.0  # monotonic: the last write refused
        self._pending = _Pending()
        self._moving: dict[int, int] | None = None  # written through, not yet committed
        self.reserve.ensure()

    def close(self) -> None:
        """Checkpoint and close."""
        self.conn.close()

    def _migrate(self) -> None:
        self.conn.execute("CREATE TABLE IF NOT EXISTS migrations "
                          "(name TEXT PRIMARY KEY, applied_at REAL)")
        done = {r[0] for r in self.conn.execute("SELECT name FROM migrations")}
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            # Checked again under the write lock: two processes opening a store at once
            # (the gateway and a technician's command) must not both apply it.
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                if self.conn.execute("SELECT 1 FROM migrations WHERE name = ?",
                                     (name,)).fetchone():
                    self.conn.execute("COMMIT")
                    continue
                fn(self.db)
                self.conn.execute("INSERT INTO migrations VALUES (?, julianday('now'))", (name,))
            except BaseException as e:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if is_full(e):  # an up-to-date store opens on a full card; an upgrade cannot
                    logger.critical("store %s: migration %s needs room the disk does not have "
                                    "(%s): free space on the card, then start again",
                                    self.path, name, e)
                raise
            self.conn.execute("COMMIT")
            logger.info("store %s: applied migration %s", self.path, name)

    def _tx(self, durable: bool) -> _Transaction:
        return _Transaction(self.conn, durable)

    # --- alerts ---------------------------------------------------------------------------

    def _write_alert(self, alert: Alert, now: float, sequence: int | None = None,
                     created: float | None = None) -> None:
        r = alert.to_record()
        row = {**r, "test": int(r["test"]), "evidence": json.dumps(r["evidence"],
                                                                    ensure_ascii=False),
               "history": json.dumps(r["history"]), "updated_at": now}
        cols = list(row)
        self.conn.execute(
            f"INSERT INTO alerts ({', '.join(cols)}, created_at) "  # noqa: S608 (fixed columns)
            f"VALUES ({', '.join('?' * len(cols))}, ?) ON CONFLICT(id) DO UPDATE SET "
            + ", ".join(f"{c}=excluded.{c}" for c in cols if c != "id"),
            [*row.values(), now if created is None else created])
        if sequence is not None:
            self.conn.execute("UPDATE alerts SET sequence=? WHERE id=?", (sequence, alert.id))

    def save_alert(self, alert: Alert, now: float) -> None:
        """Record an alert's current state (pending, cancelled, repeat count, delivered)."""
        try:
            self._alert_durably(lambda: self._write_alert(alert, now))
        except _StillFullError as full:
            self._full("alerts", full.error)
            self._keep_alert(alert, now, None)

    def raise_alert(self, alert: Alert, targets: Sequence[str],
                    encode: Callable[[int], bytes], now: float) -> int:
        """Write a raised alert and one outbox row per target in one durable transaction.

        `encode(sequence)` makes the wire body; the sequence number comes from this gateway's
        counter inside the same transaction, so numbers never repeat or go backwards.
        """
        return self.notify(alert, targets, encode, now, "raise")

    def notify(self, alert: Alert, targets: Sequence[str], encode: Callable[[int], bytes],
               now: float, purpose: str) -> int:
        """Write the alert's state and a new message to each of `targets`, durably, at once.

        `purpose` is raise, escalate or remind; each message gets its own sequence number.
        On a full disk the alert and its messages are kept in memory (and sent from there)
        until the disk has room.
        """
        def write() -> int:
            (seq,) = self.conn.execute(
                "INSERT INTO counters(name, value) VALUES ('sequence', 1) "
                "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value").fetchone()
            body = encode(seq)
            self._write_alert(alert, now, seq if purpose == "raise" else None)
            self.conn.executemany(
                "INSERT INTO outbox (alert_id, target, sequence, severity, body, "
                "created_at, attempts, next_attempt_at, purpose) "
                "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                [(alert.id, t, seq, alert.finding.severity, body, now, now, purpose)
                 for t in targets])
            return int(seq)

        try:
            return self._alert_durably(write)
        except _StillFullError as full:
            self._full("alerts", full.error)
            return self._keep_message(alert, targets, encode, now, purpose)

    def _alert_durably(self, write: Callable[[], T]) -> T:
        """`write` an alert in one durable transaction, after what memory holds. On a full
        disk the reserve is given up and it is tried once more; _StillFullError if that fails."""
        for last in (False, True):
            try:
                with self._tx(durable=True):
                    self._write_pending()
                    result = write()
            except sqlite3.OperationalError as e:
                self._moving = None
                if not is_full(e):
                    raise
                if not last and self._use_reserve(e):
                    continue  # the room the reserve leaves is for this alert
                raise _StillFullError(e) from None
            self._room_again()
            return result
        raise AssertionError("unreachable")  # the second attempt returns or raises

    # --- a full disk --------------------------------------------------------------------------

    def _full(self, what: str, error: BaseException | None = None) -> None:
        """A write found the disk full: say so once, count what was lost."""
        self.dropped[what] += 1
        self._episode_dropped += what != "alerts"
        self._note_full(error)

    def _use_reserve(self, error: BaseException) -> bool:
        """An alert found the disk full: give up the reserve for it (the episode of a full
        disk starts all the same); whether there was one, so the write is worth retrying."""
        if not self.reserve.release():
            return False
        self._note_full(error)
        return True

    def _note_full(self, error: BaseException | None) -> None:
        self._last_full = time.monotonic()
        if self.full_since is None:
            self.full_since = time.time()
            self.full_reason = str(error or "database or disk is full")
            logger.error("storage full (存储已满): %s cannot be written (%s); alerts are kept in "
                         "memory and still sent, observations are dropped until there is room",
                         self.path, self.full_reason)

    def ensure_reserve(self) -> bool:
        """Allocate the space reserve again once the disk has room for it; whether it is in
        place (or none is wanted)."""
        return self.reserve.ensure() or self.reserve.size <= 0

    def _room_again(self) -> None:
        """After a commit: what it wrote through leaves memory; the episode may be over."""
        if self._moving is not None:
            self._pending = _Pending(moved={**self._pending.moved, **self._moving},
                                     next_id=self._pending.next_id)
            self._moving = None
        if (self.full_since is not None and not self._pending
                and time.monotonic() - self._last_full >= self.room_after_s):
            logger.warning("storage has room again after %.0f s: %d alert message(s) held in "
                           "memory are written; %d other write(s) were dropped meanwhile",
                           time.time() - self.full_since, self._episode_kept,
                           self._episode_dropped)
            self.full_since = None
            self._episode_dropped = self._episode_kept = 0

    def _keep_alert(self, alert: Alert, now: float, sequence: int | None) -> None:
        old = self._pending.alerts.get(alert.id)
        if sequence is None and old is not None:
            sequence = old[2]
        self._pending.alerts[alert.id] = (alert, now, sequence)

    def _keep_message(self, alert: Alert, targets: Sequence[str],
                      encode: Callable[[int], bytes], now: float, purpose: str) -> int:
        row = self.conn.execute("SELECT value FROM counters WHERE name='sequence'").fetchone()
        seq = max([row[0] if row else 0, *(r.sequence for r in self._pending.rows.values())]) + 1
        body = encode(seq)
        self._keep_alert(alert, now, seq if purpose == "raise" else None)
        self._episode_kept += len(targets)
        for t in targets:
            rid = self._pending.next_id
            self._pending.next_id -= 1
            self._pending.rows[rid] = _MemRow(rid, alert.id, t, seq, alert.finding.severity,
                                              body, now, purpose, next_attempt_at=now)
        return seq

    def _write_pending(self) -> None:
        """Inside a transaction: write what was kept in memory (raises SQLITE_FULL if the
        disk still has no room; the caller's transaction then rolls back whole)."""
        pending = self._pending
        if not pending:
            return
        for alert, at, _ in pending.alerts.values():
            # created when first held (its first state), not when last changed
            self._write_alert(alert, at, created=alert.history[0][1] if alert.history else at)
        moved: dict[int, int] = {}
        for r in sorted(pending.rows.values(), key=lambda r: -r.id):
            cur = self.conn.execute(
                "INSERT INTO outbox (alert_id, target, sequence, severity, body, created_at, "
                "attempts, next_attempt_at, last_error, acked_at, purpose) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (r.alert_id, r.target, r.sequence, r.severity, r.body, r.created_at,
                 r.attempts, r.next_attempt_at, r.last_error, r.acked_at, r.purpose))
            moved[r.id] = int(cur.lastrowid or 0)
        for alert_id, (_, _, seq) in pending.alerts.items():
            if seq is not None:
                self.conn.execute("UPDATE alerts SET sequence=? WHERE id=?", (seq, alert_id))
        if pending.rows:
            top = max(r.sequence for r in pending.rows.values())
            self.conn.execute(
                "INSERT INTO counters(name, value) VALUES ('sequence', ?) ON CONFLICT(name) "
                "DO UPDATE SET value = max(value, excluded.value)", (top,))
        self.conn.executemany("UPDATE outbox SET acked_at=?, last_error=NULL WHERE id=?",
                              [(at, rid) for rid, at in pending.acks.items()])
        for target, (cursor, at) in pending.cursors.items():
            self._write_cursor(target, cursor, at)
        # Kept until the commit has happened: a sender may be holding a memory id.
        self._moving = moved

    def write_pending(self) -> bool:
        """Try to write what a full disk kept in memory; True when nothing is left."""
        if not self._pending:
            self._room_again()
            return True
        try:
            with self._tx(durable=True):
                self._write_pending()
        except sqlite3.OperationalError as e:
            self._moving = None
            if not is_full(e):
                raise
            return False
        self._room_again()
        return True

    def storage_state(self) -> dict[str, Any]:
        """The full-disk state: since when, what is held in memory, what was dropped."""
        return {"full_since": self.full_since,
                "full_reason": self.full_reason if self.full_since is not None else None,
                "pending_alerts": len(self._pending.alerts),
                "pending_messages": sum(r.acked_at is None
                                        for r in self._pending.rows.values()),
                "dropped": dict(self.dropped),
                "reserve_mb": round(self.reserve.size / 2**20, 1),
                "reserve_spent": self.reserve.spent}

    # --- settings -------------------------------------------------------------------------------

    def setting(self, name: str) -> str | None:
        """A runtime setting, or None."""
        row = self.conn.execute("SELECT value FROM settings WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    @_droppable(None)
    def set_setting(self, name: str, value: str, now: float) -> None:
        """Store a runtime setting durably."""
        with self._tx(durable=True):
            self.conn.execute(
                "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value=excluded.value, "
                "updated_at=excluded.updated_at", (name, value, now))

    def maintenance_until(self) -> float:
        """Until when the home is in test/maintenance mode (unix s; 0 = not)."""
        return float(self.setting("maintenance_until") or 0.0)

    def set_maintenance_until(self, until: float, now: float) -> None:
        """Start (until > now) or end (0) test/maintenance mode."""
        self.set_setting("maintenance_until", str(until), now)

    # --- commissioning records ----------------------------------------------------------------

    @_droppable(0)
    def add_record(self, kind: str, technician: str | None, started_at: float,
                   data: dict[str, Any], ended_at: float | None = None) -> int:
        """Keep a commissioning record (walk_test, test_alarm, report); its id."""
        with self._tx(durable=True):
            cur = self.conn.execute(
                "INSERT INTO commissioning (kind, technician, started_at, ended_at, data) "
                "VALUES (?, ?, ?, ?, ?)", (kind, technician, started_at, ended_at,
                                           json.dumps(data, ensure_ascii=False)))
        return int(cur.lastrowid or 0)

    @_droppable(None)
    def update_record(self, record_id: int, data: dict[str, Any],
                      ended_at: float | None = None) -> None:
        """Replace a record's data (and end it)."""
        with self._tx(durable=True):
            self.conn.execute("UPDATE commissioning SET data=?, ended_at=? WHERE id=?",
                              (json.dumps(data, ensure_ascii=False), ended_at, record_id))

    def records(self, kind: str, limit: int = 20) -> list[dict[str, Any]]:
        """The newest records of a kind, newest first."""
        rows = self.conn.execute(
            "SELECT id, technician, started_at, ended_at, data FROM commissioning "
            "WHERE kind=? ORDER BY started_at DESC, id DESC LIMIT ?", (kind, limit))
        return [{"id": r[0], "technician": r[1], "started_at": r[2], "ended_at": r[3],
                 **json.loads(r[4] or "{}")} for r in rows]

    def record(self, record_id: int) -> dict[str, Any] | None:
        """One record by id."""
        r = self.conn.execute("SELECT id, kind, technician, started_at, ended_at, data "
                              "FROM commissioning WHERE id=?", (record_id,)).fetchone()
        if r is None:
            return None
        return {"id": r[0], "kind": r[1], "technician": r[2], "started_at": r[3],
                "ended_at": r[4], **json.loads(r[5] or "{}")}

    def observations_since(self, since: float) -> list[Observation]:
        """Observations stored at or after `since`, in time order."""
        rows = self.conn.execute(
            "SELECT home, device, kind, value, at, room, device_at FROM observations "
            "WHERE at >= ? ORDER BY at, id", (since,))
        return [Observation(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6])
                for r in rows]

    def device_health(self) -> dict[tuple[str, str], Any]:
        """The last battery, battery_low, link_quality and availability stored per device."""
        rows = self.conn.execute(
            "SELECT device, kind, value FROM observations WHERE id IN (SELECT max(id) "
            "FROM observations WHERE kind IN ('battery', 'battery_low', 'link_quality', "
            "'availability') GROUP BY kind, device)")
        return {(r[0], r[1]): json.loads(r[2]) for r in rows}

    def last_heard(self) -> dict[str, float]:
        """When each device was last heard from (its newest stored observation)."""
        return dict(self.conn.execute("SELECT device, max(at) FROM observations "
                                      "GROUP BY device"))

    def delivery(self, alert_id: str) -> dict[str, Any]:
        """How an alert's messages fared: per target, when acknowledged, attempts, error."""
        rows = self.conn.execute(
            "SELECT target, min(acked_at), sum(attempts), max(last_error) FROM outbox "
            "WHERE alert_id=? GROUP BY target", (alert_id,))
        return {r[0]: {"acked_at": r[1], "attempts": r[2], "last_error": r[3]} for r in rows}

    # --- the maintenance queue ----------------------------------------------------------------

    @_droppable(False)
    def note_trouble(self, device: str, event: str, room: str | None,
                     evidence: dict[str, Any], now: float) -> bool:
        """Open a maintenance item, or count a repeat of the open one; True if it is new."""
        with self._tx(durable=False):
            cur = self.conn.execute(
                "UPDATE maintenance SET last_at=?, count=count+1, evidence=? "
                "WHERE device=? AND event=? AND cleared_at IS NULL",
                (now, json.dumps(evidence, ensure_ascii=False, default=str), device, event))
            if cur.rowcount:
                return False
            self.conn.execute(
                "INSERT INTO maintenance (device, event, room, first_at, last_at, count, "
                "evidence) VALUES (?, ?, ?, ?, ?, 1, ?)",
                (device, event, room, now, now,
                 json.dumps(evidence, ensure_ascii=False, default=str)))
        return True

    @_droppable(False)
    def clear_trouble(self, device: str, event: str, now: float) -> bool:
        """Close the open item (the condition ended); True if there was one."""
        with self._tx(durable=False):
            cur = self.conn.execute(
                "UPDATE maintenance SET cleared_at=? WHERE device=? AND event=? "
                "AND cleared_at IS NULL", (now, device, event))
        return cur.rowcount > 0

    def troubles(self, *, open_only: bool = True, cleared_undigested: bool = False
                 ) -> list[Item]:
        """Open items (or the closed ones no digest has reported yet), oldest first."""
        where = _TROUBLES_WHERE[(open_only, cleared_undigested)]
        rows = self.conn.execute(
            "SELECT device, event, room, first_at, last_at, count, evidence, cleared_at "  # noqa: S608
            f"FROM maintenance WHERE {where} ORDER BY first_at, id")
        return [Item(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6] or "{}"), r[7])
                for r in rows]

    @_droppable(None)
    def mark_digested(self, now: float) -> None:
        """Everything closed so far has been reported by a digest."""
        with self._tx(durable=False):
            self.conn.execute("UPDATE maintenance SET digested_at=? WHERE cleared_at IS NOT "
                              "NULL AND digested_at IS NULL", (now,))

    def button_stats(self, devices: Sequence[str], since: float) -> dict[str, dict[str, Any]]:
        """Per alarm button since `since`: presses seen, real SOS alerts and how operators
        closed them, the last press; and its latest weekly self-test results."""
        out: dict[str, dict[str, Any]] = {
            d: {"presses": 0, "last_press": None, "alerts": 0, "false_alarms": 0,
                "real_emergencies": 0, "self_tests": []} for d in devices}
        if not devices:
            return out
        marks = ",".join("?" * len(devices))
        for device, n, last in self.conn.execute(
                "SELECT device, count(*), max(at) FROM observations WHERE device IN "  # noqa: S608
                f"({marks}) AND kind IN ('sos', 'cancel') AND at >= ? GROUP BY device",
                (*devices, since)):
            out[device].update(presses=n, last_press=last)
        for device, n, false, real in self.conn.execute(
                "SELECT device, count(*), sum(outcome = 'false_alarm'), "  # noqa: S608
                "sum(outcome = 'real_emergency') FROM alerts WHERE event = 'sos' AND test = 0 "
                f"AND created_at >= ? AND device IN ({marks}) GROUP BY device",
                (since, *devices)):
            out[device].update(alerts=n, false_alarms=false or 0, real_emergencies=real or 0)
        for rec in self.records("self_test", limit=12):
            for device, at in rec.get("pressed", {}).items():
                if device in out:
                    out[device]["self_tests"].append({"at": rec["started_at"],
                                                      "passed": at is not None})
        return out

    # --- what the hotlines said back --------------------------------------------------------

    def feedback_cursor(self, target: str) -> str | None:
        """Where reading `target`'s feedback stream resumes."""
        row = self.conn.execute("SELECT cursor FROM feedback_cursors WHERE target=?",
                                (target,)).fetchone()
        return row[0] if row else None

    def feedback_applied(self, target: str, cursor: str, alerts: Sequence[Alert],
                         now: float) -> None:
        """Store the alerts feedback changed and the new cursor in one durable transaction."""
        try:
            with self._tx(durable=True):
                self._write_pending()
                for a in alerts:
                    self._write_alert(a, now)
                self._write_cursor(target, cursor, now)
        except sqlite3.OperationalError as e:
            self._moving = None
            if not is_full(e):
                raise
            self._full("alerts", e)
            for a in alerts:
                self._keep_alert(a, now, None)
            self._pending.cursors[target] = (cursor, now)
            return
        self._room_again()

    def _write_cursor(self, target: str, cursor: str, now: float) -> None:
        self.conn.execute(
            "INSERT INTO feedback_cursors (target, cursor, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(target) DO UPDATE SET cursor=excluded.cursor, "
            "updated_at=excluded.updated_at", (target, cursor, now))

    def open_alerts(self) -> list[Alert]:
        """Alerts not yet resolved or cancelled, oldest first (for a restart)."""
        rows = self.conn.execute(
            "SELECT * FROM alerts WHERE state IN ('pending_local','raised','delivered',"
            "'accepted') ORDER BY created_at").fetchall()
        found = {a.id: a for a in (self._alert(r) for r in rows)}
        for alert, _, _ in self._pending.alerts.values():  # held in memory: the disk is full
            found.pop(alert.id, None)
            if alert.state.value in _OPEN_STATES:
                found[alert.id] = alert
        return list(found.values())

    def last_alert(self) -> dict[str, Any] | None:
        """The newest alert, briefly: id, event, state, severity, when it was created."""
        row = self.conn.execute("SELECT id, event, state, severity, test, created_at FROM alerts "
                                "ORDER BY created_at DESC LIMIT 1").fetchone()
        names = ("id", "event", "state", "severity", "test", "at")
        last = None if row is None else dict(zip(names, row, strict=True))
        for alert, at, _ in self._pending.alerts.values():
            created = alert.history[0][1] if alert.history else at
            if last is None or created > (last["at"] or 0.0):
                f = alert.finding
                last = dict(zip(names, (alert.id, f.event, alert.state.value, f.severity,
                                        int(f.test), created), strict=True))
        return last

    def get_alert(self, alert_id: str) -> Alert | None:
        """One alert by id."""
        if alert_id in self._pending.alerts:
            return self._pending.alerts[alert_id][0]
        row = self.conn.execute("SELECT * FROM alerts WHERE id=?", (alert_id,)).fetchone()
        return self._alert(row) if row else None

    def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        """Recent alerts as plain dicts, newest first."""
        cur = self.conn.execute("SELECT * FROM alerts ORDER BY created_at DESC LIMIT ?",
                                (limit,))
        names = [c[0] for c in cur.description]
        out = []
        for row in cur.fetchall():
            d = dict(zip(names, row, strict=True))
            d["evidence"] = json.loads(d["evidence"])
            d["history"] = json.loads(d["history"])
            d["test"] = bool(d["test"])
            out.append(d)
        if self._pending.alerts:  # held in memory while the disk is full: shown all the same
            held = {a.id: {**a.to_record(), "sequence": seq, "updated_at": at,
                           "created_at": a.history[0][1] if a.history else at}
                    for a, at, seq in self._pending.alerts.values()}
            out = sorted([*held.values(), *(d for d in out if d["id"] not in held)],
                         key=lambda d: -(d["created_at"] or 0.0))[:limit]
        return out

    def _alert(self, row: tuple[Any, ...]) -> Alert:
        names = [c[1] for c in self.conn.execute("PRAGMA table_info(alerts)")]
        d = dict(zip(names, row, strict=True))
        d["evidence"] = json.loads(d["evidence"])
        d["history"] = json.loads(d["history"])
        return Alert.from_record(d)

    # --- outbox ---------------------------------------------------------------------------

    def due(self, target: str, limit: int = 50) -> list[OutboxRow]:
        """Unacknowledged messages for `target`, most urgent first (severity, then sequence)."""
        pending = self._pending
        extra = len(pending.acks)
        rows = [(sev, OutboxRow(*r)) for sev, *r in self.conn.execute(
            "SELECT severity, id, alert_id, target, sequence, body, attempts, next_attempt_at "
            "FROM outbox WHERE target=? AND acked_at IS NULL ORDER BY severity, sequence "
            "LIMIT ?", (target, limit + extra)) if r[0] not in pending.acks]
        if pending.rows:
            rows += [(m.severity, OutboxRow(m.id, m.alert_id, m.target, m.sequence, m.body,
                                            m.attempts, m.next_attempt_at))
                     for m in pending.rows.values() if m.target == target and m.acked_at is None]
            rows.sort(key=lambda sr: (sr[0], sr[1].sequence))
        return [r for _, r in rows[:limit]]

    def acked(self, row_id: int, now: float) -> str | None:
        """Mark a message acknowledged; return its alert id if every target has now acked it."""
        pending = self._pending
        row_id = pending.moved.pop(row_id, row_id)  # a memory row written through since
        mem = pending.rows.get(row_id)
        if mem is not None:
            mem.acked_at, mem.attempts = now, mem.attempts + 1
            alert_id = mem.alert_id
        else:
            try:
                with self._tx(durable=True):
                    self._write_pending()
                    (alert_id,) = self.conn.execute(
                        "UPDATE outbox SET acked_at=?, attempts=attempts+1, last_error=NULL "
                        "WHERE id=? RETURNING alert_id", (now, row_id)).fetchone()
            except sqlite3.OperationalError as e:
                self._moving = None
                if not is_full(e):
                    raise
                self._full("alerts", e)
                (alert_id,) = self.conn.execute("SELECT alert_id FROM outbox WHERE id=?",
                                                (row_id,)).fetchone()
                pending.acks[row_id] = now
            else:
                self._room_again()
        return alert_id if self._unacked(alert_id) == 0 else None

    def _unacked(self, alert_id: str) -> int:
        pending = self._pending
        ids = [r[0] for r in self.conn.execute(
            "SELECT id FROM outbox WHERE alert_id=? AND acked_at IS NULL", (alert_id,))]
        return (sum(i not in pending.acks for i in ids)
                + sum(m.alert_id == alert_id and m.acked_at is None
                      for m in pending.rows.values()))

    def failed(self, row_id: int, error: str, next_attempt_at: float) -> None:
        """Record a failed attempt and when to try again."""
        mem = self._pending.rows.get(self._pending.moved.get(row_id, row_id))
        if mem is not None:
            mem.attempts, mem.last_error = mem.attempts + 1, error[:500]
            mem.next_attempt_at = next_attempt_at
            return
        self._failed(self._pending.moved.get(row_id, row_id), error, next_attempt_at)

    @_droppable(None)
    def _failed(self, row_id: int, error: str, next_attempt_at: float) -> None:
        with self._tx(durable=False):
            self.conn.execute(
                "UPDATE outbox SET attempts=attempts+1, last_error=?, next_attempt_at=? "
                "WHERE id=?", (error[:500], next_attempt_at, row_id))

    # --- intercom events (issue 6): queued like alerts, acknowledged per target ---------

    def queue_intercom(self, event_id: str, targets: Sequence[str], body: bytes,
                       now: float) -> None:
        """Keep one `anxin.intercom/1` event for each target until it acknowledges it."""
        with self._tx(durable=True):
            self.conn.executemany(
                "INSERT OR IGNORE INTO intercom_outbox (event_id, target, body, created_at, "
                "attempts, next_attempt_at) VALUES (?, ?, ?, ?, 0, ?)",
                [(event_id, t, body, now, now) for t in targets])

    def intercom_due(self, target: str, limit: int = 50) -> list[OutboxRow]:
        """Unacknowledged intercom events for `target`, oldest first (as outbox rows)."""
        rows = self.conn.execute(
            "SELECT id, event_id, target, 0, body, attempts, next_attempt_at FROM "
            "intercom_outbox WHERE target=? AND acked_at IS NULL ORDER BY id LIMIT ?",
            (target, limit)).fetchall()
        return [OutboxRow(*r) for r in rows]

    def intercom_acked(self, row_id: int, now: float) -> None:
        """Mark an intercom event acknowledged by its target."""
        with self._tx(durable=True):
            self.conn.execute("UPDATE intercom_outbox SET acked_at=?, attempts=attempts+1, "
                              "last_error=NULL WHERE id=?", (now, row_id))

    def intercom_failed(self, row_id: int, error: str, next_attempt_at: float) -> None:
        """Record a failed attempt at an intercom event."""
        with self._tx(durable=False):
            self.conn.execute("UPDATE intercom_outbox SET attempts=attempts+1, last_error=?, "
                              "next_attempt_at=? WHERE id=?",
                              (error[:500], next_attempt_at, row_id))

    def intercom_depth(self) -> dict[str, int]:
        """Unacknowledged intercom events per target."""
        return dict(self.conn.execute("SELECT target, count(*) FROM intercom_outbox WHERE "
                                      "acked_at IS NULL GROUP BY target"))

    def intercom_sent(self, event_id: str) -> dict[str, float | None]:
        """When each target acknowledged an intercom event (None: not yet)."""
        return dict(self.conn.execute("SELECT target, acked_at FROM intercom_outbox "
                                      "WHERE event_id=?", (event_id,)))

    def outbox_depth(self) -> dict[str, int]:
        """Unacknowledged messages per target (those held in memory on a full disk too)."""
        depth: Counter[str] = Counter(dict(self.conn.execute(
            "SELECT target, count(*) FROM outbox WHERE acked_at IS NULL GROUP BY target")))
        pending = self._pending
        if pending.acks:
            marks = ",".join("?" * len(pending.acks))
            depth.subtract(dict(self.conn.execute(
                f"SELECT target, count(*) FROM outbox WHERE id IN ({marks}) "  # noqa: S608
                "GROUP BY target", list(pending.acks))))
        depth.update(m.target for m in pending.rows.values() if m.acked_at is None)
        return {t: n for t, n in depth.items() if n > 0}

    # --- observations and quarantine -----------------------------------------------------

    def add_observations(self, batch: Iterable[Observation]) -> None:
        """Append a batch of observations (one NORMAL commit for the batch). On a full disk
        they are dropped and counted; what memory holds is written first when there is room."""
        rows = [(o.at, o.home, o.device, o.kind, _json_value(o.value), o.room, o.device_at)
                for o in batch]
        if not rows:
            return
        if not self.write_pending() or self.reserve.spent:  # alerts first: they need the room
            self._drop_observations(len(rows))
            return
        try:
            with self._tx(durable=False):
                self.conn.executemany(
                    "INSERT INTO observations (at, home, device, kind, value, room, device_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.OperationalError as e:
            if not is_full(e):
                raise
            self._drop_observations(len(rows), e)
            return
        self._room_again()

    def _drop_observations(self, n: int, error: BaseException | None = None) -> None:
        self._full("observations", error)
        self.dropped["observations"] += n - 1
        self._episode_dropped += n - 1

    @_droppable(None)
    def quarantine(self, topic: str, category: str, reason: str, payload: bytes,
                   now: float) -> None:
        """Keep a message that raised no alarm, with why, for the technician."""
        with self._tx(durable=False):
            self.conn.execute(
                "INSERT INTO quarantine (topic, category, reason, count, first_at, last_at, "
                "last_payload) VALUES (?, ?, ?, 1, ?, ?, ?) ON CONFLICT(topic, category) DO "
                "UPDATE SET count=count+1, reason=excluded.reason, last_at=excluded.last_at, "
                "last_payload=excluded.last_payload",
                (topic, category, reason, now, now, payload[:QUARANTINE_PAYLOAD_BYTES]))

    def quarantined(self) -> list[dict[str, Any]]:
        """The quarantine, most recent first."""
        cur = self.conn.execute("SELECT topic, category, reason, count, first_at, last_at, "
                                "last_payload FROM quarantine ORDER BY last_at DESC")
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    # --- retention: gateway/retention.py calls these, one small batch per call ---------------

    def newest_ids(self) -> set[int]:
        """Observations pruning keeps however old (see `newest_ids`)."""
        return newest_ids(self.conn)

    def prune_observations(self, before: float | None, after_id: int, keep: set[int],
                           limit: int) -> tuple[int, int | None]:
        """Delete, of the next `limit` observations by id after `after_id`, those stored
        before `before` (None: whatever their age, to make room) except `keep`.

        Returns (deleted, the id to go on from or None when nothing older is left). Rows are
        read by id (their order of arrival), never by a scan of `at`, so a batch costs the
        same however large the table; the write lock is held for one batch only. The first
        batch reaching `before` ends it: ids follow the gateway's clock, which never goes back
        before the newest stamp stored (gateway/clock.py)."""
        rows = self.conn.execute("SELECT id, at FROM observations WHERE id > ? ORDER BY id "
                                 "LIMIT ?", (after_id, limit)).fetchall()
        doomed = [(i,) for i, at in rows if i not in keep and (before is None or at < before)]
        if doomed:
            with self._tx(durable=False):
                self.conn.executemany("DELETE FROM observations WHERE id=?", doomed)
        reached = before is not None and any(at >= before for _, at in rows)
        return len(doomed), None if reached or len(rows) < limit else rows[-1][0]

    def prune_history(self, *, alerts_before: float, alerts_keep: int, records_before: float,
                      records_keep: int, quarantine_before: float, hours_before: float,
                      limit: int) -> dict[str, int]:
        """Delete up to `limit` rows of each kind of old bookkeeping; how many of each.

        Closed alerts (resolved, cancelled) last changed before `alerts_before`, beyond the
        newest `alerts_keep`, with their outbox rows, all acknowledged (an alert with a
        message still unacknowledged, or not closed, is never removed); commissioning records
        beyond the newest `records_keep` of their kind and closed maintenance items, both
        older than `records_before`; quarantined topics silent since `quarantine_before`;
        hourly activity totals older than `hours_before`; intercom events acknowledged before
        `alerts_before` (one not yet acknowledged stays)."""
        with self._tx(durable=False):
            ids = [r[0] for r in self.conn.execute(
                "SELECT id FROM alerts WHERE state IN ('resolved', 'cancelled') "
                "AND updated_at < ? AND id NOT IN (SELECT id FROM alerts "
                "ORDER BY created_at DESC LIMIT ?) AND NOT EXISTS (SELECT 1 FROM outbox "
                "WHERE outbox.alert_id = alerts.id AND acked_at IS NULL) "
                "ORDER BY updated_at LIMIT ?", (alerts_before, alerts_keep, limit))]
            marks = ",".join("?" * len(ids))
            outbox = self.conn.execute(
                f"DELETE FROM outbox WHERE alert_id IN ({marks})", ids).rowcount  # noqa: S608
            self.conn.execute(f"DELETE FROM alerts WHERE id IN ({marks})", ids)  # noqa: S608
            records = self.conn.execute(
                "DELETE FROM commissioning WHERE id IN (SELECT id FROM (SELECT id, "
                "started_at, row_number() OVER (PARTITION BY kind ORDER BY started_at DESC, "
                "id DESC) AS n FROM commissioning) WHERE n > ? AND started_at < ? LIMIT ?)",
                (records_keep, records_before, limit)).rowcount
            maintenance = self.conn.execute(
                "DELETE FROM maintenance WHERE id IN (SELECT id FROM maintenance WHERE "
                "cleared_at < ? LIMIT ?)", (records_before, limit)).rowcount
            quarantine = self.conn.execute(
                "DELETE FROM quarantine WHERE rowid IN (SELECT rowid FROM quarantine WHERE "
                "last_at < ? LIMIT ?)", (quarantine_before, limit)).rowcount
            hours = self.conn.execute(
                "DELETE FROM activity_hours WHERE hour IN (SELECT hour FROM activity_hours "
                "WHERE hour < ? LIMIT ?)", (hours_before, limit)).rowcount
            intercom = self.conn.execute(
                "DELETE FROM intercom_outbox WHERE id IN (SELECT id FROM intercom_outbox "
                "WHERE acked_at < ? LIMIT ?)", (alerts_before, limit)).rowcount
        return {"alerts": len(ids), "outbox": outbox, "records": records,
                "maintenance": maintenance, "quarantine": quarantine, "activity_hours": hours,
                "intercom_events": intercom}

    def size(self) -> dict[str, int]:
        """Bytes: the database file, the part of it in use (free pages are reused first),
        the WAL beside it."""
        (page,) = self.conn.execute("PRAGMA page_size").fetchone()
        (pages,) = self.conn.execute("PRAGMA page_count").fetchone()
        (free,) = self.conn.execute("PRAGMA freelist_count").fetchone()
        wal = self.path.with_name(self.path.name + "-wal")
        return {"file_bytes": pages * page, "used_bytes": (pages - free) * page,
                "wal_bytes": wal.stat().st_size if wal.exists() else 0}

    def oldest_observation(self) -> float | None:
        """When the oldest stored observation arrived (by id: the order of arrival)."""
        row = self.conn.execute("SELECT at FROM observations ORDER BY id LIMIT 1").fetchone()
        return row[0] if row else None

    def checkpoint(self) -> None:
        """Move what it can of the WAL into the database (after pruning). PASSIVE: it never
        waits for a reader (the nightly learning reads for seconds; the busy timeout would
        hold the store's thread that long); the WAL is cut back to `WAL_LIMIT_BYTES` when
        it next restarts."""
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @_droppable(None)
    def save_activity_hours(self, hours: dict[float, tuple[int, float, dict[str, int]]]
                            ) -> None:
        """Keep each hour's activity totals, as first computed (detectors/routine.py)."""
        with self._tx(durable=False):
            self.conn.executemany(
                "INSERT OR IGNORE INTO activity_hours (hour, moves, watched, rooms) "
                "VALUES (?, ?, ?, ?)",
                [(h, m, w, json.dumps(r, ensure_ascii=False))
                 for h, (m, w, r) in hours.items()])

    def activity_hours(self, since: float) -> dict[float, tuple[int, float, dict[str, int]]]:
        """The kept hourly activity totals from `since` on."""
        return {r[0]: (r[1], r[2], json.loads(r[3])) for r in self.conn.execute(
            "SELECT hour, moves, watched, rooms FROM activity_hours WHERE hour >= ?",
            (since,))}

    def count(self, table: str) -> int:
        """Rows in one of the store's tables."""
        if table not in ("alerts", "outbox", "observations", "quarantine", "commissioning",
                         "maintenance", "activity_hours"):
            raise ValueError(table)
        return self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608


class _Transaction:
    def __init__(self, conn: sqlite3.Connection, durable: bool) -> None:
        self.conn = conn
        self.durable = durable

    def __enter__(self) -> None:
        # FULL makes the commit wait for the WAL to reach the disk; NORMAL may lose the last
        # commits on power loss (never corrupts). Alerts and acks are FULL.
        self.conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type:
            # SQLITE_FULL (among others) may have rolled the transaction back already
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            return
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error:
            # a COMMIT that fails (SQLITE_FULL writing the WAL) can leave the transaction open
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise


class AsyncStore:
    """Runs a Store on one dedicated thread; every call is awaited from the event loop."""

    def __init__(self, path: str | Path, reserve_bytes: int = 0) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anxin-store")
        self._path = path
        self._reserve_bytes = reserve_bytes
        self.path = Path(path)  # for readers on connections of their own
        self.store: Store | None = None

    async def open(self) -> AsyncStore:
        """Open the database (runs migrations) on the store thread."""
        self.store = await self._run(partial(Store, self._path, self._reserve_bytes))
        return self

    async def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run `fn(store, *args, **kw)` on the store thread."""
        return await self._run(partial(fn, self.store, *args, **kw))

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def close(self) -> None:
        """Close the database and stop the thread."""
        if self.store is not None:
            await self._run(self.store.close)
            self.store = None
        self._pool.shutdown(wait=True)


__all__ = ["MIGRATIONS", "AlertState", "AsyncStore", "OutboxRow", "Store", "read_newest_ids",
           "read_observations"]


_JSON_BOOL = {True: "true", False: "false"}


def _json_value(v: object) -> str:
    """`json.dumps(v)`, without its cost for what most observations carry (a bool, an int):
    the store thread writes thousands a second and an alarm's commit waits behind them."""
    t = type(v)
    if t is bool:
        return _JSON_BOOL[v]  # type: ignore[index]
    if t is int:
        return int.__repr__(v)  # type: ignore[arg-type]
    return json.dumps(v)


def newest_ids(conn: sqlite3.Connection) -> set[int]:
    """Observations pruning keeps however old: each device's newest, and its newest battery,
    link quality and availability (what status and commissioning read)."""
    ids = {r[0] for r in conn.execute("SELECT max(id) FROM observations GROUP BY device")}
    # the same IN list as the partial index observations_health, so SQLite uses it
    ids |= {r[0] for r in conn.execute(
        "SELECT max(id) FROM observations WHERE kind IN ('battery', 'battery_low', "
        "'link_quality', 'availability') GROUP BY kind, device")}
    return ids


def read_newest_ids(path: str | Path) -> set[int]:
    """`newest_ids` on a read-only connection of its own: a scan of every device's rows that
    must not hold up the store's thread (an alert waits on it) in a big store."""
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=10)
    try:
        return newest_ids(conn)
    finally:
        conn.close()


def read_observations(path: str | Path, since: float) -> list[Observation]:
    """Observations stored since `since`, read on a connection of its own (read-only, WAL:
    the gateway's writer goes on), for learning a home's baseline off the alert path."""
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT home, device, kind, value, at, room, device_at FROM "
                            "observations WHERE at >= ? ORDER BY at, id", (since,)).fetchall()
    finally:
        conn.close()
    return [Observation(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6]) for r in rows]
