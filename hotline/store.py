"""The hotline's SQLite store: every alert received once (deduplicated on alert_id), with a
count of deliveries, and every refused message with the reason.

One writer owns the connection: `AsyncHotlineStore` runs all calls on one thread. The
migration runner mirrors gateway/store.py's on purpose: the hotline stands for a separate
monitoring centre and knows gateways only through alerts/wire.py (see ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from alerts.wire import RESOLUTION_OUTCOMES, SCHEMA, iso, title

T = TypeVar("T")
REJECTED_BODY_BYTES = 4096


def _m001_initial(db: sqlite3.Connection) -> None:
    db.execute("""
        CREATE TABLE alerts (
            alert_id TEXT PRIMARY KEY,
            gateway_id TEXT NOT NULL,
            home_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            code INTEGER NOT NULL,
            event TEXT NOT NULL,
            severity INTEGER NOT NULL,
            room TEXT,
            device_id TEXT,
            test INTEGER NOT NULL,
            occurred_at TEXT NOT NULL,
            raised_at TEXT NOT NULL,
            body TEXT NOT NULL,
            received_at REAL NOT NULL,
            last_received_at REAL NOT NULL,
            deliveries INTEGER NOT NULL DEFAULT 1
        )""")
    db.execute("CREATE INDEX alerts_received ON alerts (received_at)")
    db.execute("""
        CREATE TABLE rejected (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            remote TEXT,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            body BLOB
        )""")


def _m002_actions(db: sqlite3.Connection) -> None:
    # What operators did, in order: the gateways read it back as feedback.
    for col in ("state TEXT NOT NULL DEFAULT 'received'", "operator TEXT", "outcome TEXT",
                "accepted_at REAL", "resolved_at REAL"):
        db.execute(f"ALTER TABLE alerts ADD COLUMN {col}")
    db.execute("""
        CREATE TABLE actions (
            id INTEGER PRIMARY KEY,
            alert_id TEXT NOT NULL REFERENCES alerts(alert_id),
            gateway_id TEXT NOT NULL,
            action TEXT NOT NULL,
            operator TEXT NOT NULL,
            outcome TEXT,
            note TEXT NOT NULL DEFAULT '',
            at REAL NOT NULL
        )""")
    db.execute("CREATE INDEX actions_gateway ON actions (gateway_id, id)")


def _m003_notifications(db: sqlite3.Connection) -> None:
    # The SMS/voice gateway stand-in: what would have gone to a phone, kept to be read.
    db.execute("""
        CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            alert_id TEXT NOT NULL,
            to_number TEXT NOT NULL,
            channel TEXT NOT NULL,
            text TEXT NOT NULL,
            body TEXT NOT NULL
        )""")


def _m004_supervision(db: sqlite3.Connection) -> None:
    # Every gateway the centre has heard from, and whether it has gone silent.
    db.execute("""
        CREATE TABLE gateways (
            gateway_id TEXT PRIMARY KEY,
            home_id TEXT NOT NULL,
            last_seen REAL NOT NULL,
            silent_alert_id TEXT,
            supervised INTEGER NOT NULL DEFAULT 0
        )""")


def _m005_mqtt_feedback(db: sqlite3.Connection) -> None:
    # Which operator actions have been published to each gateway over the MQTT uplink.
    db.execute("CREATE TABLE mqtt_feedback_sent (gateway_id TEXT PRIMARY KEY, "
               "last_action_id INTEGER NOT NULL)")


MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("001_initial", _m001_initial),
    ("002_actions", _m002_actions),
    ("003_notifications", _m003_notifications),
    ("004_supervision", _m004_supervision),
    ("005_mqtt_feedback", _m005_mqtt_feedback),
]

SILENT_CODE = 350  # Contact ID: communication trouble
SILENT_SEVERITY = 2


class ActionError(ValueError):
    """An operator action that cannot apply; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

COLUMNS = ("alert_id", "gateway_id", "home_id", "sequence", "code", "event", "severity",
           "room", "device_id", "test", "occurred_at", "raised_at", "body", "received_at",
           "last_received_at", "deliveries")
# Built from the constant column list above, never from input.
INSERT_ALERT = (f"INSERT INTO alerts ({', '.join(COLUMNS)}) "  # noqa: S608
                f"VALUES ({', '.join('?' * len(COLUMNS))})")


class HotlineStore:
    """Synchronous store; use from one thread (see AsyncHotlineStore)."""

    def __init__(self, path: str | Path) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self._migrate()

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, "
                        "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
        done = {r[0] for r in self.db.execute("SELECT name FROM migrations")}
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            self.db.execute("BEGIN IMMEDIATE")
            try:
                fn(self.db)
                self.db.execute("INSERT INTO migrations (name) VALUES (?)", (name,))
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def record(self, body: dict[str, Any], now: float) -> tuple[dict[str, Any], bool]:
        """Store a verified alert; a repeat only counts a delivery. Returns (row, duplicate)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cur = self.db.execute(
                "UPDATE alerts SET deliveries = deliveries + 1, last_received_at = ? "
                "WHERE alert_id = ?", (now, body["alert_id"]))
            duplicate = cur.rowcount == 1
            if not duplicate:
                self.db.execute(INSERT_ALERT,
                    (body["alert_id"], body["gateway_id"], body["home_id"], body["sequence"],
                     body["code"], body["event"], body["severity"], body["room"],
                     body["device_id"], int(body["test"]), body["occurred_at"],
                     body["raised_at"], json.dumps(body, ensure_ascii=False), now, now, 1))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        row = self.get(body["alert_id"])
        assert row is not None
        return row, duplicate

    def act(self, alert_id: str, action: str, operator: str, outcome: str | None, note: str,
            now: float) -> dict[str, Any]:
        """Record an operator's accept/resolve; return the alert as it now stands."""
        if not operator.strip():
            raise ActionError(400, "operator is required (who takes charge)")
        if action not in ("accepted", "resolved"):
            raise ActionError(400, f"unknown action {action!r}")
        if action == "resolved" and outcome not in RESOLUTION_OUTCOMES:
            raise ActionError(400, f"outcome must be one of {', '.join(RESOLUTION_OUTCOMES)}")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute("SELECT gateway_id, state FROM alerts WHERE alert_id=?",
                                  (alert_id,)).fetchone()
            if row is None:
                raise ActionError(404, f"no alert {alert_id}")
            if row["state"] == "resolved":
                raise ActionError(409, f"alert {alert_id} is already resolved")
            if action == "accepted" and row["state"] == "accepted":
                raise ActionError(409, f"alert {alert_id} is already accepted")
            if action == "accepted":
                self.db.execute("UPDATE alerts SET state='accepted', operator=?, accepted_at=? "
                                "WHERE alert_id=?", (operator, now, alert_id))
            else:
                self.db.execute("UPDATE alerts SET state='resolved', outcome=?, resolved_at=?, "
                                "operator=coalesce(operator, ?) WHERE alert_id=?",
                                (outcome, now, operator, alert_id))
            self.db.execute("INSERT INTO actions (alert_id, gateway_id, action, operator, "
                            "outcome, note, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (alert_id, row["gateway_id"], action, operator, outcome, note, now))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        got = self.get(alert_id)
        assert got is not None
        return got

    def feedback(self, gateway_id: str, after: int, limit: int = 100
                 ) -> tuple[list[dict[str, Any]], int]:
        """Operator actions on `gateway_id`'s alerts after cursor `after`, and the new cursor."""
        rows = self.db.execute(
            "SELECT id, alert_id, action, operator, outcome, note, at FROM actions "
            "WHERE gateway_id=? AND id>? ORDER BY id LIMIT ?", (gateway_id, after, limit))
        events = [dict(r) for r in rows]
        return events, (events[-1]["id"] if events else after)

    def seen(self, gateway_id: str, home_id: str, now: float, *,
             heartbeat: bool) -> dict[str, Any] | None:
        """A gateway was heard from; if it had gone silent, close that alert and return it.

        Only gateways that send a heartbeat (feedback polls, an uplink's status) are
        supervised: one that only ever posts alerts is quiet on a quiet day.
        """
        row = self.db.execute("SELECT silent_alert_id FROM gateways WHERE gateway_id=?",
                              (gateway_id,)).fetchone()
        self.db.execute(
            "INSERT INTO gateways (gateway_id, home_id, last_seen, supervised) "
            "VALUES (?, ?, ?, ?) "
            "ON CONFLICT(gateway_id) DO UPDATE SET last_seen=excluded.last_seen, "
            "home_id=CASE WHEN excluded.home_id != '' THEN excluded.home_id ELSE home_id END, "
            "silent_alert_id=NULL, supervised=max(supervised, excluded.supervised)",
            (gateway_id, home_id, now, int(heartbeat)))
        if row is None or row["silent_alert_id"] is None:
            return None
        self.db.execute("UPDATE alerts SET state='resolved', outcome='restored', "
                        "resolved_at=? WHERE alert_id=? AND state != 'resolved'",
                        (now, row["silent_alert_id"]))
        return self.get(row["silent_alert_id"])

    def gone_silent(self, now: float, after_s: float, tz: ZoneInfo) -> list[dict[str, Any]]:
        """Gateways not heard from for `after_s`: one loss-of-supervision alert each."""
        rows = self.db.execute(
            "SELECT gateway_id, home_id, last_seen FROM gateways "
            "WHERE supervised AND silent_alert_id IS NULL AND last_seen < ?",
            (now - after_s,)).fetchall()
        return [self._silent(r, now, tz) for r in rows]

    def went_offline(self, gateway_id: str, now: float, tz: ZoneInfo) -> dict[str, Any] | None:
        """The broker says a gateway's uplink died (its last will): silent from now."""
        r = self.db.execute("SELECT gateway_id, home_id, last_seen FROM gateways "
                            "WHERE gateway_id=? AND silent_alert_id IS NULL",
                            (gateway_id,)).fetchone()
        return self._silent(r, now, tz) if r is not None else None

    def _silent(self, r: sqlite3.Row, now: float, tz: ZoneInfo) -> dict[str, Any]:
        alert_id = f"silent-{r['gateway_id']}-{int(now)}"
        body = {
            "schema": SCHEMA, "alert_id": alert_id, "gateway_id": r["gateway_id"],
            "home_id": r["home_id"], "sequence": 0, "code": SILENT_CODE,
            "event": "gateway_silent", "severity": SILENT_SEVERITY,
            "title": title("gateway_silent"), "room": None, "device_id": None,
            "detector": "hotline.supervision", "occurred_at": iso(r["last_seen"], tz),
            "raised_at": iso(now, tz), "test": False, "residents": [],
            "evidence": {"last_seen": iso(r["last_seen"], tz),
                         "silent_for_s": round(now - r["last_seen"])},
        }
        row, _ = self.record(body, now)
        self.db.execute("UPDATE gateways SET silent_alert_id=? WHERE gateway_id=?",
                        (alert_id, r["gateway_id"]))
        return row

    def gateways(self) -> list[dict[str, Any]]:
        """Every gateway heard from, most recently seen first."""
        return [dict(r) for r in self.db.execute(
            "SELECT gateway_id, home_id, last_seen, silent_alert_id, supervised FROM gateways "
            "ORDER BY last_seen DESC")]

    def notified(self, msg: dict[str, Any], now: float) -> dict[str, Any]:
        """Keep one `anxin.notify/1` request as the SMS/voice provider would receive it."""
        cur = self.db.execute(
            "INSERT INTO notifications (at, alert_id, to_number, channel, text, body) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (now, msg["alert_id"], msg["to"], msg["channel"], msg["text"],
             json.dumps(msg, ensure_ascii=False)))
        (row_id,) = cur.fetchone()
        return {"id": row_id, "at": now, **msg}

    def notifications(self, limit: int = 200) -> list[dict[str, Any]]:
        """SMS/voice requests received, newest first."""
        rows = self.db.execute("SELECT id, at, body FROM notifications ORDER BY id DESC "
                               "LIMIT ?", (limit,))
        return [{"id": r["id"], "at": r["at"], **json.loads(r["body"])} for r in rows]

    def unsent_feedback(self) -> list[tuple[str, list[dict[str, Any]], int]]:
        """Per gateway, the operator actions not yet published over MQTT, and their cursor."""
        gateways = [r[0] for r in self.db.execute(
            "SELECT DISTINCT a.gateway_id FROM actions a LEFT JOIN mqtt_feedback_sent s "
            "ON s.gateway_id = a.gateway_id WHERE a.id > coalesce(s.last_action_id, 0)")]
        out = []
        for g in gateways:
            row = self.db.execute("SELECT last_action_id FROM mqtt_feedback_sent "
                                  "WHERE gateway_id=?", (g,)).fetchone()
            events, cursor = self.feedback(g, row[0] if row else 0)
            out.append((g, events, cursor))
        return out

    def feedback_sent(self, gateway_id: str, cursor: int) -> None:
        """Actions up to `cursor` have been published to `gateway_id`."""
        self.db.execute("INSERT INTO mqtt_feedback_sent (gateway_id, last_action_id) "
                        "VALUES (?, ?) ON CONFLICT(gateway_id) DO UPDATE SET "
                        "last_action_id=excluded.last_action_id", (gateway_id, cursor))

    def reject(self, remote: str | None, reason: str, detail: str, raw: bytes,
               now: float) -> None:
        """Keep a refused message (its first 4 KiB) with the reason."""
        self.db.execute("INSERT INTO rejected (at, remote, reason, detail, body) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (now, remote, reason, detail, raw[:REJECTED_BODY_BYTES]))

    def alerts(self, limit: int = 200) -> list[dict[str, Any]]:
        """Received alerts, newest first."""
        rows = self.db.execute("SELECT * FROM alerts ORDER BY received_at DESC, rowid DESC "
                               "LIMIT ?", (limit,))
        return [_alert(r) for r in rows]

    def get(self, alert_id: str) -> dict[str, Any] | None:
        """One alert by id."""
        r = self.db.execute("SELECT * FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        return _alert(r) if r else None

    def rejections(self, limit: int = 200) -> list[dict[str, Any]]:
        """Refused messages, newest first."""
        rows = self.db.execute("SELECT id, at, remote, reason, detail, body FROM rejected "
                               "ORDER BY id DESC LIMIT ?", (limit,))
        return [{**dict(r), "body": bytes(r["body"] or b"").decode("utf-8", "replace")}
                for r in rows]

    def close(self) -> None:
        """Close the database."""
        self.db.close()


def _alert(r: sqlite3.Row) -> dict[str, Any]:
    body = json.loads(r["body"])
    return {
        "alert_id": r["alert_id"], "gateway_id": r["gateway_id"], "home_id": r["home_id"],
        "sequence": r["sequence"], "code": r["code"], "event": r["event"],
        "severity": r["severity"], "title": body.get("title", {}), "room": r["room"],
        "device_id": r["device_id"], "test": bool(r["test"]),
        "occurred_at": r["occurred_at"], "raised_at": r["raised_at"],
        "received_at": r["received_at"], "last_received_at": r["last_received_at"],
        "deliveries": r["deliveries"], "body": body, "state": r["state"],
        "operator": r["operator"], "outcome": r["outcome"], "accepted_at": r["accepted_at"],
        "resolved_at": r["resolved_at"],
    }


class AsyncHotlineStore:
    """A HotlineStore on one dedicated thread, awaited from the event loop."""

    def __init__(self, path: str | Path) -> None:
        self._path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anxin-hotline-store")
        self.store: HotlineStore | None = None

    async def open(self) -> AsyncHotlineStore:
        """Open the database (runs migrations)."""
        self.store = await self._run(HotlineStore, self._path)
        return self

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(store, *args)` on the store thread."""
        return await self._run(partial(fn, self.store, *args))

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def close(self) -> None:
        """Close the database and stop the thread."""
        if self.store is not None:
            await self._run(self.store.close)
            self.store = None
        self._pool.shutdown(wait=True)
