"""The SQLite store: alert + outbox in one transaction, sequences, acks, quarantine, reopen."""

import sqlite3

import pytest

from alerts.alert import Alert, AlertState
from alerts.manager import Manager
from detectors.finding import Finding
from devices.observation import Observation
from gateway.store import AsyncStore, Store


def raised_alert(at=100.0, event="smoke"):
    f = Finding(detector="instant", home="h1", code=111, event=event, severity=1, at=at,
                device="d1", room="kitchen", evidence={"value": True})
    ((alert, _),) = Manager().on_finding(f, at)
    return alert


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "anxin.db")
    yield s
    s.close()


def test_wal_and_migrations_recorded(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [r[0] for r in store.conn.execute("SELECT name FROM migrations")] == [
        "001_initial", "002_escalation", "003_urgent_first", "004_settings",
        "005_commissioning", "006_maintenance",
        "007_availability_at_hand", "008_storage", "009_intercom_events"]


def test_raise_writes_alert_and_outbox_rows_with_increasing_sequence(store):
    a, b = raised_alert(1.0), raised_alert(2.0, "gas")
    seq_a = store.raise_alert(a, ["t1", "t2"], lambda seq: f"body-{seq}".encode(), 1.0)
    seq_b = store.raise_alert(b, ["t1", "t2"], lambda seq: f"body-{seq}".encode(), 2.0)
    assert (seq_a, seq_b) == (1, 2)
    due = store.due("t1")
    assert [(r.alert_id, r.sequence, r.body) for r in due] == [
        (a.id, 1, b"body-1"), (b.id, 2, b"body-2")]
    assert store.acked(due[0].id, 3.0) is None  # t2 has not acknowledged yet
    (t2_first, _) = store.due("t2")
    assert store.acked(t2_first.id, 3.0) == a.id
    assert [r.alert_id for r in store.due("t1")] == [b.id]
    assert store.outbox_depth() == {"t1": 1, "t2": 1}


def test_encode_failure_rolls_back_everything(store):
    def boom(seq):
        raise ValueError("cannot encode")

    with pytest.raises(ValueError, match="cannot encode"):
        store.raise_alert(raised_alert(), ["t1"], boom, 1.0)
    assert store.count("alerts") == 0 and store.count("outbox") == 0
    # the sequence counter did not advance either
    assert store.raise_alert(raised_alert(), ["t1"], lambda s: b"x", 1.0) == 1


def test_alert_round_trips_and_survives_reopen(tmp_path):
    path = tmp_path / "anxin.db"
    s = Store(path)
    a = raised_alert()
    s.raise_alert(a, ["t1"], lambda seq: b"{}", 1.0)
    a.move(AlertState.DELIVERED, 2.0, "ok")
    s.save_alert(a, 2.0)
    s.close()
    s = Store(path)
    try:
        (back,) = s.open_alerts()
        assert back.id == a.id and back.state is AlertState.DELIVERED
        assert back.finding == a.finding
        assert [h[0] for h in back.history] == ["pending_local", "raised", "delivered"]
        assert isinstance(back, Alert)
    finally:
        s.close()


def test_failed_attempt_recorded(store):
    store.raise_alert(raised_alert(), ["t1"], lambda seq: b"{}", 1.0)
    (row,) = store.due("t1")
    store.failed(row.id, "connection refused", 5.0)
    (row,) = store.due("t1")
    assert row.attempts == 1 and row.next_attempt_at == 5.0
    last_error = store.conn.execute("SELECT last_error FROM outbox").fetchone()[0]
    assert last_error == "connection refused"


def test_quarantine_counts_and_keeps_reason(store):
    store.quarantine("zigbee2mqtt/x", "unknown_device", "no device", b"{}", 1.0)
    store.quarantine("zigbee2mqtt/x", "unknown_device", "no device", b'{"a":1}', 2.0)
    store.quarantine("zigbee2mqtt/y", "bad_payload", "not JSON", b"\xff" * 5000, 3.0)
    rows = {r["topic"]: r for r in store.quarantined()}
    assert rows["zigbee2mqtt/x"]["count"] == 2
    assert rows["zigbee2mqtt/x"]["last_payload"] == b'{"a":1}'
    assert len(rows["zigbee2mqtt/y"]["last_payload"]) == 1024


def test_observations_batch(store):
    store.add_observations([Observation("h", "d", "battery", 0, 1.0, "k"),
                            Observation("h", "d", "smoke", False, 1.0, "k")])
    assert store.conn.execute("SELECT value FROM observations ORDER BY id").fetchall() == [
        ("0",), ("false",)]


def test_outbox_refuses_orphan_rows(store):
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute("INSERT INTO outbox (alert_id, target, sequence, body) "
                           "VALUES ('nope', 't', 1, x'00')")


async def test_async_store_runs_on_its_own_thread(tmp_path):
    s = await AsyncStore(tmp_path / "a.db").open()
    try:
        assert await s.call(Store.count, "alerts") == 0
    finally:
        await s.close()


def test_reminders_are_new_messages_with_their_own_sequence(store):
    a = raised_alert()
    store.raise_alert(a, ["t1"], lambda seq: f"raise-{seq}".encode(), 1.0)
    a.tier, a.reminders = 1, 1
    store.notify(a, ["t1", "t2"], lambda seq: f"remind-{seq}".encode(), 2.0, "remind")
    assert [(r.sequence, r.body) for r in store.due("t1")] == [(1, b"raise-1"),
                                                               (2, b"remind-2")]
    assert [(r.sequence, r.body) for r in store.due("t2")] == [(2, b"remind-2")]
    again = store.get_alert(a.id)
    assert (again.tier, again.reminders) == (1, 1)
    # the alert keeps the sequence it was raised with
    assert store.conn.execute("SELECT sequence FROM alerts").fetchone() == (1,)


def test_feedback_cursor_and_alert_state_stored_together(store):
    a = raised_alert()
    store.raise_alert(a, ["t1"], lambda seq: b"x", 1.0)
    assert store.feedback_cursor("t1") is None
    a.move(AlertState.ACCEPTED, 5.0, "accepted by op")
    a.taken_by = "op"
    store.feedback_applied("t1", "17", [a], 5.0)
    assert store.feedback_cursor("t1") == "17"
    got = store.get_alert(a.id)
    assert (got.state, got.taken_by) == (AlertState.ACCEPTED, "op")


def test_maintenance_setting_survives_reopen(tmp_path):
    s = Store(tmp_path / "anxin.db")
    assert s.maintenance_until() == 0.0
    s.set_maintenance_until(1234.5, 1.0)
    s.close()
    s = Store(tmp_path / "anxin.db")
    try:
        assert s.maintenance_until() == 1234.5
    finally:
        s.close()


def test_observation_values_are_stored_as_json_exactly(tmp_path):
    """The store writes bools and ints without json.dumps (a speed-up on the ingest path):
    every value still reads back as the JSON text json.dumps makes, and as the same value."""
    import json  # noqa: PLC0415

    values = [True, False, 0, 1, -7, 10**20, 2.5, None, "open", 'say "hi"', {"a": [1, True]},
              [1.5, "x"]]
    store = Store(tmp_path / "anxin.db")
    try:
        store.add_observations([Observation("h", "d", "battery", v, float(i), "k")
                                for i, v in enumerate(values)])
        stored = [r[0] for r in store.conn.execute("SELECT value FROM observations ORDER BY at")]
    finally:
        store.close()
    assert stored == [json.dumps(v) for v in values]
    assert [json.loads(s) for s in stored] == values
    assert [type(json.loads(s)) for s in stored] == [type(v) for v in values]
