"""The gateway's SQLite store: alerts, the outbox, observations and the quarantine.

One writer owns the connection (CONVENTIONS 8): `Store` is synchronous and is driven from a
single worker thread by `AsyncStore`, so the event loop never waits on the disk and no two
threads ever share the connection. WAL mode; an alert and its outbox rows are committed in one
transaction with `synchronous=FULL` before anything is sent, so a power cut after the commit
cannot lose the alert. Ordinary observations are batched and committed with NORMAL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from alerts.alert import Alert, AlertState
from alerts.maintenance import Item
from devices.observation import Observation

logger = logging.getLogger(__name__)

T = TypeVar("T")

QUARANTINE_PAYLOAD_BYTES = 1024


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
    ("009_intercom_events", _m009_intercom_events),
]


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

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly
        # what the code says it is.
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.db = sqlite_utils.Database(self.conn)
        self._migrate()

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
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                fn(self.db)
                self.conn.execute("INSERT INTO migrations VALUES (?, julianday('now'))", (name,))
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            logger.info("store %s: applied migration %s", self.path, name)

    def _tx(self, durable: bool) -> _Transaction:
        return _Transaction(self.conn, durable)

    # --- alerts ---------------------------------------------------------------------------

    def _write_alert(self, alert: Alert, now: float, sequence: int | None = None) -> None:
        r = alert.to_record()
        row = {**r, "test": int(r["test"]), "evidence": json.dumps(r["evidence"],
                                                                    ensure_ascii=False),
               "history": json.dumps(r["history"]), "updated_at": now}
        cols = list(row)
        self.conn.execute(
            f"INSERT INTO alerts ({', '.join(cols)}, created_at) "  # noqa: S608 (fixed columns)
            f"VALUES ({', '.join('?' * len(cols))}, ?) ON CONFLICT(id) DO UPDATE SET "
            + ", ".join(f"{c}=excluded.{c}" for c in cols if c != "id"),
            [*row.values(), now])
        if sequence is not None:
            self.conn.execute("UPDATE alerts SET sequence=? WHERE id=?", (sequence, alert.id))

    def save_alert(self, alert: Alert, now: float) -> None:
        """Record an alert's current state (pending, cancelled, repeat count, delivered)."""
        with self._tx(durable=True):
            self._write_alert(alert, now)

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
        """
        with self._tx(durable=True):
            (seq,) = self.conn.execute(
                "INSERT INTO counters(name, value) VALUES ('sequence', 1) ON CONFLICT(name) "
                "DO UPDATE SET value = value + 1 RETURNING value").fetchone()
            body = encode(seq)
            self._write_alert(alert, now, seq if purpose == "raise" else None)
            self.conn.executemany(
                "INSERT INTO outbox (alert_id, target, sequence, severity, body, created_at, "
                "attempts, next_attempt_at, purpose) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                [(alert.id, t, seq, alert.finding.severity, body, now, now, purpose)
                 for t in targets])
        return seq

    # --- settings -------------------------------------------------------------------------------

    def setting(self, name: str) -> str | None:
        """A runtime setting, or None."""
        row = self.conn.execute("SELECT value FROM settings WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

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

    def add_record(self, kind: str, technician: str | None, started_at: float,
                   data: dict[str, Any], ended_at: float | None = None) -> int:
        """Keep a commissioning record (walk_test, test_alarm, report); its id."""
        with self._tx(durable=True):
            cur = self.conn.execute(
                "INSERT INTO commissioning (kind, technician, started_at, ended_at, data) "
                "VALUES (?, ?, ?, ?, ?)", (kind, technician, started_at, ended_at,
                                           json.dumps(data, ensure_ascii=False)))
        return int(cur.lastrowid or 0)

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
        with self._tx(durable=True):
            for a in alerts:
                self._write_alert(a, now)
            self.conn.execute(
                "INSERT INTO feedback_cursors (target, cursor, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(target) DO UPDATE SET cursor=excluded.cursor, "
                "updated_at=excluded.updated_at", (target, cursor, now))

    def open_alerts(self) -> list[Alert]:
        """Alerts not yet resolved or cancelled, oldest first (for a restart)."""
        rows = self.conn.execute(
            "SELECT * FROM alerts WHERE state IN ('pending_local','raised','delivered',"
            "'accepted') ORDER BY created_at").fetchall()
        return [self._alert(r) for r in rows]

    def last_alert(self) -> dict[str, Any] | None:
        """The newest alert, briefly: id, event, state, severity, when it was created."""
        row = self.conn.execute("SELECT id, event, state, severity, test, created_at FROM alerts "
                                "ORDER BY created_at DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return dict(zip(("id", "event", "state", "severity", "test", "at"), row, strict=True))

    def get_alert(self, alert_id: str) -> Alert | None:
        """One alert by id."""
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
        rows = self.conn.execute(
            "SELECT id, alert_id, target, sequence, body, attempts, next_attempt_at FROM outbox "
            "WHERE target=? AND acked_at IS NULL ORDER BY severity, sequence LIMIT ?",
            (target, limit)).fetchall()
        return [OutboxRow(*r) for r in rows]

    def acked(self, row_id: int, now: float) -> str | None:
        """Mark a message acknowledged; return its alert id if every target has now acked it."""
        with self._tx(durable=True):
            (alert_id,) = self.conn.execute(
                "UPDATE outbox SET acked_at=?, attempts=attempts+1, last_error=NULL WHERE id=? "
                "RETURNING alert_id", (now, row_id)).fetchone()
            (left,) = self.conn.execute(
                "SELECT count(*) FROM outbox WHERE alert_id=? AND acked_at IS NULL",
                (alert_id,)).fetchone()
        return alert_id if left == 0 else None

    def failed(self, row_id: int, error: str, next_attempt_at: float) -> None:
        """Record a failed attempt and when to try again."""
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

    def intercom_sent(self, event_id: str) -> dict[str, float | None]:
        """When each target acknowledged an intercom event (None: not yet)."""
        return dict(self.conn.execute("SELECT target, acked_at FROM intercom_outbox "
                                      "WHERE event_id=?", (event_id,)))

    def outbox_depth(self) -> dict[str, int]:
        """Unacknowledged messages per target."""
        return dict(self.conn.execute(
            "SELECT target, count(*) FROM outbox WHERE acked_at IS NULL GROUP BY target"))

    # --- observations and quarantine -----------------------------------------------------

    def add_observations(self, batch: Iterable[Observation]) -> None:
        """Append a batch of observations (one NORMAL commit for the batch)."""
        rows = [(o.at, o.home, o.device, o.kind, json.dumps(o.value), o.room, o.device_at)
                for o in batch]
        if not rows:
            return
        with self._tx(durable=False):
            self.conn.executemany(
                "INSERT INTO observations (at, home, device, kind, value, room, device_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

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

    def count(self, table: str) -> int:
        """Rows in one of the store's tables."""
        if table not in ("alerts", "outbox", "observations", "quarantine"):
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
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


class AsyncStore:
    """Runs a Store on one dedicated thread; every call is awaited from the event loop."""

    def __init__(self, path: str | Path) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anxin-store")
        self._path = path
        self.store: Store | None = None

    async def open(self) -> AsyncStore:
        """Open the database (runs migrations) on the store thread."""
        self.store = await self._run(Store, self._path)
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


__all__ = ["MIGRATIONS", "AlertState", "AsyncStore", "OutboxRow", "Store",
           "read_observations"]


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
