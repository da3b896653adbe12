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
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from alerts.wire import FEEDBACK_ACTIONS, RESOLUTION_OUTCOMES, SCHEMA, iso, title
from hotline.protocol import ConsoleStore

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


def _m006_console(db: sqlite3.Connection) -> None:
    # Operators and their sessions; what the console needs beyond the receiver: the district
    # (statistics), the first escalation (the queue's second timer), intercom signalling.
    db.execute("""
        CREATE TABLE operators (
            username TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            disabled_at REAL
        )""")
    db.execute("""
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            username TEXT NOT NULL REFERENCES operators(username),
            csrf TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        )""")
    for col in ("district TEXT NOT NULL DEFAULT ''", "first_escalated_at REAL",
                "escalation TEXT"):
        db.execute(f"ALTER TABLE alerts ADD COLUMN {col}")
    db.execute("ALTER TABLE actions ADD COLUMN detail TEXT NOT NULL DEFAULT '{}'")
    db.execute("ALTER TABLE actions ADD COLUMN home_id TEXT NOT NULL DEFAULT ''")
    db.execute("UPDATE actions SET home_id = coalesce((SELECT home_id FROM alerts "
               "WHERE alerts.alert_id = actions.alert_id), '')")
    db.execute("CREATE INDEX actions_alert ON actions (alert_id, id)")
    db.execute("CREATE INDEX actions_home ON actions (home_id, action, id)")
    db.execute("CREATE INDEX alerts_home ON alerts (home_id, received_at)")
    db.execute("CREATE INDEX alerts_state ON alerts (state, severity, received_at)")
    db.execute("""
        CREATE TABLE intercom (
            event_id TEXT PRIMARY KEY,
            gateway_id TEXT NOT NULL,
            home_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            event TEXT NOT NULL,
            request_id TEXT,
            at TEXT NOT NULL,
            received_at REAL NOT NULL,
            body TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX intercom_home ON intercom (home_id, received_at)")
    for r in db.execute("SELECT alert_id, body FROM alerts").fetchall():
        district = json.loads(r[1]).get("district") or ""
        db.execute("UPDATE alerts SET district=? WHERE alert_id=?", (district, r[0]))


MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("001_initial", _m001_initial),
    ("002_actions", _m002_actions),
    ("003_notifications", _m003_notifications),
    ("004_supervision", _m004_supervision),
    ("005_mqtt_feedback", _m005_mqtt_feedback),
    ("006_console", _m006_console),
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
           "last_received_at", "deliveries", "district", "escalation", "first_escalated_at")
# What an operator can do to an alert, all kept in `actions` (the audit trail); only the
# wire's FEEDBACK_ACTIONS go back to the gateway.
ACTIONS = ("accepted", "resolved", "note", "dispatched", "look_in")
DISPATCH_TARGETS = ("family", "community_worker", "ambulance_120", "fire_119", "police_110")
# Built from the constant column list above, never from input.
INSERT_ALERT = (f"INSERT INTO alerts ({', '.join(COLUMNS)}) "  # noqa: S608
                f"VALUES ({', '.join('?' * len(COLUMNS))})")


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


class HotlineStore:
    """The SQLite `ConsoleStore` (hotline/protocol.py); use from one thread
    (see AsyncHotlineStore)."""

    def __init__(self, path: str | Path) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        _use_wal(self.db)
        self.db.execute("PRAGMA synchronous=FULL")
        self._migrate()
        # The queue's rows: every column, the body without its timeline (the queue shows
        # none, and decoding 500 bodies' timelines per load held up the store thread).
        columns = [r["name"] for r in self.db.execute("PRAGMA table_info(alerts)")]
        self._queue_columns = ", ".join(
            "json_remove(body, '$.timeline') AS body" if c == "body" else c for c in columns)

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, "
                        "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
        done = {r[0] for r in self.db.execute("SELECT name FROM migrations")}
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            # Checked again under the write lock: two processes opening a store at once
            # (a receiver and `anxin hotline --add-operator`) must not both apply it.
            self.db.execute("BEGIN IMMEDIATE")
            if self.db.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                self.db.execute("COMMIT")
                continue
            try:
                fn(self.db)
                self.db.execute("INSERT INTO migrations (name) VALUES (?)", (name,))
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def record(self, body: dict[str, Any], now: float) -> tuple[dict[str, Any], bool]:
        """Store a verified alert; a repeat only counts a delivery. Returns (row, duplicate).

        A repeat that carries `escalation` (a reminder or the next tier) keeps the first
        escalation's time and shows the latest escalation; one that carries a `snapshot` (an
        SOS is sent at once, and again when the intercom's still arrives) adds it to the
        body; the first body stands otherwise.
        """
        escalation = body.get("escalation")
        esc = json.dumps(escalation, ensure_ascii=False) if escalation else None
        snapshot = body.get("snapshot")
        snap = json.dumps(snapshot, ensure_ascii=False) if snapshot else None
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cur = self.db.execute(
                "UPDATE alerts SET deliveries = deliveries + 1, last_received_at = ?, "
                "escalation = coalesce(?, escalation), "
                "first_escalated_at = CASE WHEN ? IS NOT NULL "
                "THEN coalesce(first_escalated_at, ?) ELSE first_escalated_at END, "
                "body = CASE WHEN ? IS NOT NULL THEN json_set(body, '$.snapshot', json(?)) "
                "ELSE body END "
                "WHERE alert_id = ?", (now, esc, esc, now, snap, snap, body["alert_id"]))
            duplicate = cur.rowcount == 1
            if not duplicate:
                self.db.execute(INSERT_ALERT,
                    (body["alert_id"], body["gateway_id"], body["home_id"], body["sequence"],
                     body["code"], body["event"], body["severity"], body["room"],
                     body["device_id"], int(body["test"]), body["occurred_at"],
                     body["raised_at"], json.dumps(body, ensure_ascii=False), now, now, 1,
                     str(body.get("district") or ""), esc, now if esc else None))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        row = self.get(body["alert_id"])
        assert row is not None
        return row, duplicate

    def act(self, alert_id: str, action: str, operator: str, outcome: str | None, note: str,
            now: float, detail: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record an operator's action on an alert (audited); return the alert as it stands.

        accepted: from received only (stops the gateway's escalation). resolved: from
        received or accepted, with an outcome code. note / dispatched: on an accepted alert.
        look_in: on any alert not yet resolved.
        """
        if not operator.strip():
            raise ActionError(400, "operator is required (who takes charge)")
        if action not in ACTIONS:
            raise ActionError(400, f"unknown action {action!r}")
        if action == "resolved" and outcome not in RESOLUTION_OUTCOMES:
            raise ActionError(400, f"outcome must be one of {', '.join(RESOLUTION_OUTCOMES)}")
        if action == "note" and not note.strip():
            raise ActionError(400, "备注为空 / the note is empty")
        if action == "dispatched" and (detail or {}).get("target") not in DISPATCH_TARGETS:
            raise ActionError(400, f"dispatch target must be one of "
                                   f"{', '.join(DISPATCH_TARGETS)}")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute("SELECT gateway_id, home_id, state FROM alerts "
                                  "WHERE alert_id=?", (alert_id,)).fetchone()
            if row is None:
                raise ActionError(404, f"no alert {alert_id}")
            if row["state"] == "resolved":
                raise ActionError(409, f"该报警已处理完毕 / alert {alert_id} is already resolved")
            if action == "accepted" and row["state"] == "accepted":
                raise ActionError(409, f"该报警已有人接警 / alert {alert_id} is already accepted")
            if action in ("note", "dispatched") and row["state"] != "accepted":
                what = "note" if action == "note" else "dispatch"
                raise ActionError(409, f"请先接警 / accept alert {alert_id} first: a {what} "
                                       "needs an operator in charge")
            if action == "accepted":
                self.db.execute("UPDATE alerts SET state='accepted', operator=?, accepted_at=? "
                                "WHERE alert_id=?", (operator, now, alert_id))
            elif action == "resolved":
                self.db.execute("UPDATE alerts SET state='resolved', outcome=?, resolved_at=?, "
                                "operator=coalesce(operator, ?) WHERE alert_id=?",
                                (outcome, now, operator, alert_id))
            self._audit(alert_id, row["gateway_id"], row["home_id"], action, operator, outcome,
                        note, now, detail or {})
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        got = self.get(alert_id)
        assert got is not None
        return got

    def _audit(self, alert_id: str, gateway_id: str, home_id: str, action: str,
               operator: str, outcome: str | None, note: str, now: float,
               detail: dict[str, Any]) -> int:
        cur = self.db.execute(
            "INSERT INTO actions (alert_id, gateway_id, home_id, action, operator, outcome, "
            "note, at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (alert_id, gateway_id, home_id, action, operator, outcome, note, now,
             json.dumps(detail, ensure_ascii=False)))
        (action_id,) = cur.fetchone()
        return int(action_id)

    def look_in(self, home_id: str, alert_id: str, operator: str, request_id: str,
                now: float) -> dict[str, Any]:
        """Ask the home's most recent gateway to ring its intercom; audited. Returns the action.

        Raises ActionError if the home has never been heard from or the alert is not its own.
        """
        gw = self.db.execute("SELECT gateway_id FROM alerts WHERE home_id=? "
                             "ORDER BY received_at DESC LIMIT 1", (home_id,)).fetchone() \
            or self.db.execute("SELECT gateway_id FROM gateways WHERE home_id=? "
                               "ORDER BY last_seen DESC LIMIT 1", (home_id,)).fetchone()
        if gw is None:
            raise ActionError(404, f"no gateway has reported home {home_id}")
        if alert_id:
            a = self.db.execute("SELECT home_id, state FROM alerts WHERE alert_id=?",
                                (alert_id,)).fetchone()
            if a is None or a["home_id"] != home_id:
                raise ActionError(404, f"home {home_id} has no alert {alert_id}")
        action_id = self._audit(alert_id, gw["gateway_id"], home_id, "look_in", operator,
                                None, "", now, {"request_id": request_id})
        return {"id": action_id, "action": "look_in", "alert_id": alert_id,
                "gateway_id": gw["gateway_id"], "home_id": home_id, "operator": operator,
                "request_id": request_id, "at": now}

    def feedback(self, gateway_id: str, after: int, limit: int = 100
                 ) -> tuple[list[dict[str, Any]], int]:
        """Operator actions on `gateway_id`'s alerts after cursor `after`, and the new cursor."""
        # Only what the wire carries goes back (notes and dispatches stay at the centre); the
        # cursor still moves past the rest so a poll never sees them again.
        rows = self.db.execute(
            "SELECT id, alert_id, action, operator, outcome, note, at, detail FROM actions "
            "WHERE gateway_id=? AND id>? ORDER BY id LIMIT ?",
            (gateway_id, after, limit)).fetchall()
        events = []
        for r in rows:
            if r["action"] not in FEEDBACK_ACTIONS:
                continue
            ev = {k: r[k] for k in ("id", "alert_id", "action", "operator", "outcome", "note",
                                    "at")}
            if r["action"] == "look_in":
                ev["request_id"] = json.loads(r["detail"]).get("request_id", "")
            events.append(ev)
        return events, (rows[-1]["id"] if rows else after)

    def seen(self, gateway_id: str, home_id: str, now: float, *,
             heartbeat: bool) -> dict[str, Any] | None:
        """A gateway was heard from; if it had gone silent, close that alert and return it.

        Only gateways that send a heartbeat (feedback polls, an uplink's status) are
        supervised: one that only ever posts alerts is quiet on a quiet day.
        """
        row = self.db.execute("SELECT silent_alert_id FROM gateways WHERE gateway_id=?",
                              (gateway_id,)).fetchone()
        # A sign of life is not worth an fsync (200 a second from 5,000 gateways kept the
        # store thread busy and alerts waited behind them: bench/hotline_load.py). Lost on a
        # power cut, it is only a last-seen time a few seconds old.
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            self.db.execute(
                "INSERT INTO gateways (gateway_id, home_id, last_seen, supervised) "
                "VALUES (?, ?, ?, ?) "
                "ON CONFLICT(gateway_id) DO UPDATE SET last_seen=excluded.last_seen, "
                "home_id=CASE WHEN excluded.home_id != '' THEN excluded.home_id "
                "ELSE home_id END, "
                "silent_alert_id=NULL, supervised=max(supervised, excluded.supervised)",
                (gateway_id, home_id, now, int(heartbeat)))
        finally:
            self.db.execute("PRAGMA synchronous=FULL")
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
            out.append((g, events, cursor))  # events may be empty: the cursor still moves
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

    # --- what the console reads --------------------------------------------------------------

    def queue(self, limit: int = 500) -> list[dict[str, Any]]:
        """Alerts not yet resolved, most severe first, then oldest first."""
        # The queue shows no timeline: leave it out before Python decodes every body.
        rows = self.db.execute(f"SELECT {self._queue_columns} FROM alerts "  # noqa: S608
                               "WHERE state != 'resolved' "
                               "ORDER BY severity, received_at, alert_id LIMIT ?", (limit,))
        return [_alert(r) for r in rows]

    def history(self, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
        """Resolved alerts, most recently resolved first."""
        rows = self.db.execute("SELECT * FROM alerts WHERE state = 'resolved' "
                               "ORDER BY resolved_at DESC, alert_id LIMIT ? OFFSET ?",
                               (limit, offset))
        return [_alert(r) for r in rows]

    def home_alerts(self, home_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """A home's alerts, newest first."""
        rows = self.db.execute("SELECT * FROM alerts WHERE home_id = ? "
                               "ORDER BY received_at DESC, alert_id LIMIT ?", (home_id, limit))
        return [_alert(r) for r in rows]

    def audit(self, alert_id: str) -> list[dict[str, Any]]:
        """Everything operators did about one alert, in order."""
        rows = self.db.execute("SELECT id, alert_id, action, operator, outcome, note, at, "
                               "detail FROM actions WHERE alert_id = ? ORDER BY id", (alert_id,))
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]

    def home_look_ins(self, home_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """Look-ins operators asked of a home, newest first (also those not about an alert)."""
        rows = self.db.execute("SELECT id, alert_id, action, operator, at, detail FROM actions "
                               "WHERE home_id = ? AND action = 'look_in' ORDER BY id DESC "
                               "LIMIT ?", (home_id, limit))
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]

    def record_intercom(self, body: dict[str, Any], now: float) -> tuple[dict[str, Any], bool]:
        """Keep one verified `anxin.intercom/1` event; a repeat of event_id is a duplicate."""
        cur = self.db.execute(
            "INSERT INTO intercom (event_id, gateway_id, home_id, device_id, event, "
            "request_id, at, received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(event_id) DO NOTHING",
            (body["event_id"], body["gateway_id"], body["home_id"], body["device_id"],
             body["event"], body.get("request_id"), body["at"], now,
             json.dumps(body, ensure_ascii=False)))
        return {**body, "received_at": now}, cur.rowcount == 0

    def intercom_events(self, home_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """A home's intercom events, newest first."""
        rows = self.db.execute("SELECT body, received_at FROM intercom WHERE home_id = ? "
                               "ORDER BY received_at DESC, event_id LIMIT ?", (home_id, limit))
        return [{**json.loads(r["body"]), "received_at": r["received_at"]} for r in rows]

    def between(self, start: float, end: float) -> list[dict[str, Any]]:
        """Real (not test) alerts received in [start, end), for statistics; the fields needed."""
        rows = self.db.execute(
            "SELECT alert_id, event, severity, district, state, outcome, received_at, "
            "accepted_at, resolved_at FROM alerts WHERE test = 0 AND received_at >= ? "
            "AND received_at < ? ORDER BY received_at", (start, end))
        return [dict(r) for r in rows]

    # --- operators and sessions ---------------------------------------------------------------

    def add_operator(self, username: str, role: str, password_hash: str, now: float) -> None:
        """A new operator; ValueError if the name is taken."""
        try:
            self.db.execute("INSERT INTO operators (username, role, password_hash, created_at) "
                            "VALUES (?, ?, ?, ?)", (username, role, password_hash, now))
        except sqlite3.IntegrityError:
            raise ValueError(f"operator {username!r} already exists") from None

    def operator(self, username: str) -> dict[str, Any] | None:
        """One operator (with the password hash), or None."""
        r = self.db.execute("SELECT * FROM operators WHERE username = ?",
                            (username,)).fetchone()
        return dict(r) if r else None

    def operators(self) -> list[dict[str, Any]]:
        """Every operator, without password hashes."""
        return [dict(r) for r in self.db.execute(
            "SELECT username, role, created_at, disabled_at FROM operators ORDER BY username")]

    def update_operator(self, username: str, *, role: str | None = None,
                        password_hash: str | None = None, disabled_at: float | None = None,
                        enable: bool = False) -> bool:
        """Change an operator's role, password or state; a change logs them out everywhere."""
        r = self.db.execute(
            "UPDATE operators SET role = coalesce(?, role), "
            "password_hash = coalesce(?, password_hash), "
            "disabled_at = CASE WHEN ? THEN NULL ELSE coalesce(?, disabled_at) END "
            "WHERE username = ?", (role, password_hash, int(enable), disabled_at, username))
        if r.rowcount and (password_hash is not None or disabled_at is not None):
            self.db.execute("DELETE FROM sessions WHERE username = ?", (username,))
        return r.rowcount == 1

    def count_operators(self) -> int:
        """How many operators exist (none: the first start creates an admin)."""
        return int(self.db.execute("SELECT count(*) FROM operators").fetchone()[0])

    def open_session(self, token_hash: str, username: str, csrf: str, now: float,
                     expires_at: float) -> None:
        """Keep a new session (only the token's hash: a copy of the database logs nobody in)."""
        self.db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
        self.db.execute("INSERT INTO sessions (token_hash, username, csrf, created_at, "
                        "expires_at) VALUES (?, ?, ?, ?, ?)",
                        (token_hash, username, csrf, now, expires_at))

    def session(self, token_hash: str, now: float) -> dict[str, Any] | None:
        """The live session and its operator, or None (expired, or the operator disabled)."""
        r = self.db.execute(
            "SELECT s.username, s.csrf, s.expires_at, o.role FROM sessions s "
            "JOIN operators o ON o.username = s.username "
            "WHERE s.token_hash = ? AND s.expires_at >= ? AND o.disabled_at IS NULL",
            (token_hash, now)).fetchone()
        return dict(r) if r else None

    def close_session(self, token_hash: str) -> None:
        """Log out."""
        self.db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

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
        "resolved_at": r["resolved_at"], "district": r["district"],
        "escalation": json.loads(r["escalation"]) if r["escalation"] else None,
        "first_escalated_at": r["first_escalated_at"],
    }


class AsyncHotlineStore:
    """A ConsoleStore on one dedicated thread, awaited from the event loop.

    `factory` opens the store (SQLite's HotlineStore by default; any `ConsoleStore`).
    """

    def __init__(self, path: str | Path,
                 factory: Callable[[str | Path], ConsoleStore] = HotlineStore) -> None:
        self._path = path
        self._factory = factory
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anxin-hotline-store")
        self.store: ConsoleStore | None = None

    async def open(self) -> AsyncHotlineStore:
        """Open the database (runs migrations)."""
        self.store = await self._run(self._factory, self._path)
        return self

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(store, *args)` on the store thread, e.g. `call(lambda s: s.queue())`."""
        return await self._run(partial(fn, self.store, *args))

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def close(self) -> None:
        """Close the database and stop the thread."""
        if self.store is not None:
            await self._run(self.store.close)
            self.store = None
        self._pool.shutdown(wait=True)
