"""SD-card care on a real SQLite store: what pruning removes and never removes, the size
ceiling, batches that let an alert through, and a full disk (SQLite's own SQLITE_FULL, made
with PRAGMA max_page_count) that keeps alerts going out and writes them when room returns."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
import tomllib
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from alerts.alert import AlertState
from detectors import baseline, routine
from devices.observation import Observation
from gateway import retention
from gateway.config import ConfigError, load, parse
from gateway.coreconfig import core_config
from gateway.evaluate import START
from gateway.retention import DAY_S, Policy, Retention, Thinning
from gateway.runtime import Gateway
from gateway.store import MIGRATIONS, AsyncStore, Store
from simulator.homes import make_home
from simulator.resident import IncidentSpec, simulate, to_observations
from tests._config import write_home
from tests._mosquitto import free_port
from tests.test_e2e_gateway import gateway, write_config
from tests.test_gateway_store import raised_alert

TZ = ZoneInfo("Asia/Shanghai")
NOW = 1_790_000_000.0


def obs(at: float, device: str = "pir-1", kind: str = "motion", value: object = True
        ) -> Observation:
    return Observation("h1", device, kind, value, at, "kitchen", None)


def fill(store: Store, days: float, every_s: float, devices: tuple[str, ...] = ("pir-1",),
         end: float = NOW) -> int:
    """Observations every `every_s` per device over the `days` before `end`."""
    rows, t = [], end - days * DAY_S
    while t < end:
        rows += [obs(t, d) for d in devices]
        t += every_s
    for i in range(0, len(rows), 5000):
        store.add_observations(rows[i:i + 5000])
    return len(rows)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "anxin.db")
    yield s
    s.close()


async def opened(tmp_path) -> AsyncStore:
    return await AsyncStore(tmp_path / "anxin.db").open()


async def until(check, timeout: float = 30.0) -> None:
    """Wait for `check()` (generously: the machine may be loaded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


# --- by age -----------------------------------------------------------------------------------

async def test_observations_older_than_the_window_go_each_devices_newest_stay(tmp_path):
    s = Store(tmp_path / "anxin.db")
    rows = [obs(NOW - 40 * DAY_S + k * 600.0) for k in range(40 * 144)]
    # a sensor gone silent 31 days ago; a door that reported once, 35 days ago, and its
    # battery then: still what status reads
    rows += [obs(NOW - 40 * DAY_S + k * 600.0 + 1, "pir-2") for k in range(9 * 144)]
    rows += [obs(NOW - 35 * DAY_S + 2, "door-1", "contact", "closed"),
             obs(NOW - 35 * DAY_S + 3, "door-1", "battery", 80)]
    s.add_observations(sorted(rows, key=lambda o: o.at))  # stored in order of arrival
    s.close()
    store = await opened(tmp_path)
    try:
        ret = Retention(store, Policy(), TZ, lambda: NOW, batch=500, pause_s=0)
        done = await ret.prune(NOW)
        cutoff = NOW - 30 * DAY_S
        rows = (await store.call(Store.observations_since, 0.0))
        old = [o for o in rows if o.at < cutoff]
        # each device's newest, and its newest battery (here the same row for the door)
        assert sorted((o.device, o.kind) for o in old) == [("door-1", "battery"),
                                                           ("pir-2", "motion")]
        assert next(o.at for o in rows if o.device == "pir-1") >= cutoff
        assert sum(o.device == "pir-1" for o in rows) == pytest.approx(30 * 144, abs=2)
        assert done["deleted"]["observations"] == 10 * 144 + 9 * 144 - 1 + 1
        assert (await store.call(Store.last_heard))["door-1"] == NOW - 35 * DAY_S + 3
        assert (await store.call(Store.device_health))[("door-1", "battery")] == 80
        assert (await ret.prune(NOW))["deleted"] == {}  # nothing more: idempotent
    finally:
        await store.close()


def close(store: Store, alert, now: float, state: AlertState) -> None:
    alert.move(state, now, "test")
    store.save_alert(alert, now)


async def test_old_closed_alerts_go_open_alerts_and_unacked_messages_never(tmp_path):
    s = Store(tmp_path / "anxin.db")
    old = NOW - 800 * DAY_S  # beyond every default window
    resolved, unacked, still_open, recent = (raised_alert(old + i) for i in range(4))
    for a in (resolved, unacked, still_open, recent):
        s.raise_alert(a, ["t1"], lambda seq: b"body", a.finding.at)
    for a in (resolved, unacked):
        close(s, a, old + 10, AlertState.RESOLVED)
    for row in s.due("t1", 10):
        if row.alert_id != unacked.id:
            s.acked(row.id, old + 5)
    close(s, recent, NOW - DAY_S, AlertState.RESOLVED)
    s.add_record("walk_test", "王师傅", old, {"devices": 3})
    s.add_record("report", "王师傅", old, {"ok": True})
    s.add_record("report", "王师傅", NOW - DAY_S, {"ok": True})
    s.quarantine("x/old", "unknown_device", "no device", b"{}", old)
    s.quarantine("x/new", "unknown_device", "no device", b"{}", NOW - DAY_S)
    s.note_trouble("pir-1", "low_battery", "kitchen", {}, old)
    s.clear_trouble("pir-1", "low_battery", old + 60)
    s.note_trouble("pir-2", "low_battery", "kitchen", {}, old)  # still open: kept
    s.queue_intercom("ev-old", ["t1", "t2"], b"{}", old)
    for row in s.intercom_due("t1"):
        s.intercom_acked(row.id, old + 1)  # t2 never acknowledged it: that one stays
    s.close()
    store = await opened(tmp_path)
    try:
        policy = Policy(alerts_keep=2, records_keep=1)
        done = await Retention(store, policy, TZ, lambda: NOW, pause_s=0).prune(NOW)
        assert done["deleted"] == {"alerts": 1, "outbox": 1, "records": 1, "maintenance": 1,
                                   "quarantine": 1, "intercom_events": 1}
        assert await store.call(Store.intercom_sent, "ev-old") == {"t2": None}
        left = {a["id"] for a in await store.call(Store.alerts, 10)}
        # the resolved one with a message never acknowledged stays, and so does its message
        assert left == {unacked.id, still_open.id, recent.id}
        assert (await store.call(Store.outbox_depth)) == {"t1": 1}
        assert [r["started_at"] for r in await store.call(Store.records, "report", 10)] == [
            NOW - DAY_S]
        assert len(await store.call(Store.records, "walk_test", 10)) == 1  # newest of its kind
        assert [q["topic"] for q in await store.call(Store.quarantined)] == ["x/new"]
        assert [t.device for t in await store.call(Store.troubles, open_only=False)] == [
            "pir-2"]
    finally:
        await store.close()


async def test_the_newest_alerts_are_kept_however_old(tmp_path):
    s = Store(tmp_path / "anxin.db")
    alerts = [raised_alert(NOW - 900 * DAY_S + i) for i in range(5)]
    for a in alerts:
        s.raise_alert(a, ["t1"], lambda seq: b"body", a.finding.at)
        s.acked(s.due("t1", 1)[0].id, a.finding.at + 1)
        close(s, a, a.finding.at + 2, AlertState.RESOLVED)
    s.close()
    store = await opened(tmp_path)
    try:
        await Retention(store, Policy(alerts_keep=3), TZ, lambda: NOW, pause_s=0).prune(NOW)
        assert {a["id"] for a in await store.call(Store.alerts, 10)} == {
            a.id for a in alerts[2:]}
    finally:
        await store.close()


# --- the size ceiling -------------------------------------------------------------------------

async def test_the_ceiling_drops_the_oldest_observations_first_and_says_so_once(tmp_path,
                                                                                caplog):
    s = Store(tmp_path / "anxin.db")
    fill(s, 10, 30.0, ("pir-1", "pir-2"))  # ~57,600 rows, all inside the window
    alert = raised_alert(NOW - 9 * DAY_S)
    s.raise_alert(alert, ["t1"], lambda seq: b"x" * 2000, alert.finding.at)
    used = s.size()["used_bytes"]
    s.close()
    store = await opened(tmp_path)
    try:
        ceiling = used // 2
        ret = Retention(store, Policy(max_bytes=ceiling), TZ, lambda: NOW, batch=1000,
                        pause_s=0)
        with caplog.at_level(logging.WARNING, logger="gateway.retention"):
            await ret.prune(NOW)
            assert ret.ceiling_since is not None
            await ret.enforce_ceiling()  # already under: nothing more, nothing logged
        assert sum("reached its ceiling" in r.getMessage() for r in caplog.records) == 1
        size = await store.call(Store.size)
        assert size["used_bytes"] <= ceiling
        rows = await store.call(Store.observations_since, 0.0)
        oldest = min(o.at for o in rows if o.device == "pir-1")
        assert oldest > NOW - 6 * DAY_S  # the oldest went …
        assert max(o.at for o in rows) >= NOW - 60  # … the newest stayed
        assert (await store.call(Store.get_alert, alert.id)) is not None
        assert (await store.call(Store.outbox_depth)) == {"t1": 1}
        st = await ret.status()
        assert st["ceiling_since"] is not None and st["used_mb"] <= st["max_db_mb"]
    finally:
        await store.close()


async def test_pruning_a_big_store_lets_an_alert_through_between_batches(tmp_path):
    s = Store(tmp_path / "anxin.db")
    total = fill(s, 40, 20.0)  # 172,800 rows, 10 days of them to go
    s.close()
    store = await opened(tmp_path)
    try:
        ret = Retention(store, Policy(), TZ, lambda: NOW, batch=500, pause_s=0)
        prune = asyncio.create_task(ret.prune(NOW))
        while await store.call(Store.count, "observations") == total:  # under way
            await asyncio.sleep(0)
        alert = raised_alert(NOW)
        await store.call(Store.raise_alert, alert, ["t1"], lambda seq: b"body", NOW)
        # the alert was written while the pruning still had batches to go: it waited for
        # one batch, not for the whole pruning
        assert not prune.done()
        done = await prune
        assert done["deleted"]["observations"] == 10 * 4320
        assert (await store.call(Store.outbox_depth)) == {"t1": 1}
    finally:
        await store.close()


# --- a full disk ------------------------------------------------------------------------------

def fill_to_the_limit(store: Store) -> None:
    """Let the database grow no more (SQLite then fails writes with SQLITE_FULL, as it does
    on a full disk), with the pages it has used up: observations as the gateway writes them,
    then closed alerts and acknowledged messages (nothing a sender would pick up)."""
    (pages,) = store.conn.execute("PRAGMA page_count").fetchone()
    store.conn.execute(f"PRAGMA max_page_count={pages}")
    t = NOW - DAY_S
    for n in (200, 20, 1):  # until not even one more row fits
        while True:
            before = store.dropped["observations"]
            store.add_observations([obs(t + i) for i in range(n)])
            t += n
            if store.dropped["observations"] > before:
                break
    fill_tables(store.conn)


def fill_tables(conn: sqlite3.Connection) -> None:
    """Fill the alerts' and the outbox's last pages (a database at its page limit)."""
    for size in (4000, 400, 40, 1):
        with contextlib.suppress(sqlite3.OperationalError):
            for k in range(10**6):
                conn.execute(
                    "INSERT INTO alerts (id, home, event, state, code, severity, occurred_at, "
                    "evidence, history, created_at, updated_at) VALUES (?, 'h1', 'filler', "
                    "'resolved', 0, 4, 0, ?, '[]', 0, 0)",
                    (f"filler-{size}-{k}", json.dumps({"filler": "x" * size})))
    filler = conn.execute("SELECT id FROM alerts WHERE event='filler' LIMIT 1").fetchone()[0]
    for size in (4000, 400, 40, 1):
        with contextlib.suppress(sqlite3.OperationalError):
            for _ in range(10**6):
                conn.execute("INSERT INTO outbox (alert_id, target, sequence, body, acked_at) "
                             "VALUES (?, 'filler', 0, ?, 0)", (filler, b"x" * size))


def test_on_a_full_disk_alerts_are_kept_in_memory_sent_and_written_when_room_returns(
        store, caplog):
    store.room_after_s = 3600.0  # a flapping disk is one episode
    caplog.set_level(logging.WARNING, logger="gateway.store")
    fill_to_the_limit(store)
    dropped = store.dropped["observations"]
    assert dropped > 0
    alert = raised_alert(NOW)
    seq = store.raise_alert(alert, ["t1", "t2"], lambda s: f"body-{s}".encode(), NOW)
    store.add_observations([obs(NOW + i) for i in range(50)])
    other = raised_alert(NOW + 1, "gas")
    seq2 = store.raise_alert(other, ["t1"], lambda s: f"body-{s}".encode(), NOW + 1)
    assert seq2 == seq + 1
    assert store.full_since is not None
    assert store.dropped["observations"] == dropped + 50
    # what a sender reads: the messages, most urgent first, as if they were stored
    rows = store.due("t1", 10)
    assert [(r.alert_id, r.body) for r in rows] == [(alert.id, f"body-{seq}".encode()),
                                                     (other.id, f"body-{seq2}".encode())]
    assert store.outbox_depth() == {"t1": 2, "t2": 1}
    assert store.get_alert(alert.id) is alert
    assert {a.id for a in store.open_alerts()} == {alert.id, other.id}
    assert store.last_alert()["id"] == other.id
    # t1 acknowledges the first while the disk is still full
    assert store.acked(rows[0].id, NOW + 2) is None  # t2 has not yet
    assert store.outbox_depth() == {"t1": 1, "t2": 1}
    st = store.storage_state()
    assert (st["pending_alerts"], st["pending_messages"]) == (2, 2)
    alert.move(AlertState.DELIVERED, NOW + 50, "test")  # a later state, still held
    store.save_alert(alert, NOW + 50)
    # room returns
    store.conn.execute("PRAGMA max_page_count=1000000")
    store.room_after_s = 0.0
    store.add_observations([obs(NOW + 100)])
    assert store.full_since is None
    assert store.storage_state()["pending_alerts"] == 0
    assert store.conn.execute("SELECT created_at, updated_at, state FROM alerts WHERE id=?",
                              (alert.id,)).fetchone() == (alert.history[0][1], NOW + 50,
                                                           "delivered")
    depth = store.conn.execute("SELECT target, alert_id, acked_at IS NOT NULL FROM outbox "
                               "WHERE target != 'filler' ORDER BY id").fetchall()
    assert depth == [("t1", alert.id, 1), ("t2", alert.id, 0), ("t1", other.id, 0)]
    # a sender still holding the memory row's id acknowledges it: the written row is acked
    t2_row = next(r for r in store.due("t2", 5))
    assert store.acked(t2_row.id, NOW + 3) == alert.id
    assert store.conn.execute("SELECT value FROM counters WHERE name='sequence'"
                              ).fetchone() == (seq2,)
    assert store.raise_alert(raised_alert(NOW + 5, "leak"), ["t1"], lambda s: b"b",
                             NOW + 5) == seq2 + 1
    # once when it started, once when it ended: not a line per dropped write
    start, end = (r.getMessage() for r in caplog.records)
    assert "storage full (存储已满)" in start
    assert "room again" in end and "3 alert message(s) held in memory are written" in end
    assert f"{dropped + 50} other write(s) were dropped" in end


def test_a_memory_row_acknowledged_after_it_was_written_through(store):
    store.room_after_s = 0.0
    fill_to_the_limit(store)
    alert = raised_alert(NOW)
    store.raise_alert(alert, ["t1"], lambda s: b"body", NOW)
    (row,) = store.due("t1", 5)
    assert row.id < 0  # held in memory
    store.conn.execute("PRAGMA max_page_count=1000000")
    assert store.write_pending()
    assert store.acked(row.id, NOW + 1) == alert.id  # the sender knew it by its memory id
    assert store.outbox_depth() == {}


# --- the routine detector beyond the window ---------------------------------------------------

def test_routine_decides_the_same_with_raw_history_pruned_to_30_days():
    """A simulated home declines slowly from day 38. Each night the routine detector runs
    twice: on 36 days of raw observations (as before pruning existed), and on the 30 days
    pruning leaves plus the hourly totals kept on the nights before. Every score and the care
    call are the same; on the 30 days alone it would judge differently."""
    rng = np.random.default_rng([7, 0])
    home = make_home(0, rng)
    days = 50
    sim = simulate(home, START, days, rng, [IncidentSpec("decline", 38, resident=0,
                                                         duration_h=4 * 24)])
    stream = to_observations(home, sim.events, start=START)
    act = core_config(parse(tomllib.loads(home.config_text))).activity
    full = baseline.history(stream, act)  # every raw observation, never pruned
    known: routine.HourTotals = {}
    raised: dict[str, float | None] = {"raw": None, "kept": None}
    calls: dict[str, list[int]] = {"raw": [], "kept": []}
    differs_without = False
    for d in range(2, days + 1):
        night = START + d * DAY_S + 3 * 3600
        pruned = baseline.history([o for o in stream if night - 30 * DAY_S <= o.at < night],
                                  act)
        raw = routine.assess(full, night, TZ, "h", raised["raw"])
        kept = routine.assess(pruned, night, TZ, "h", raised["kept"], known)
        alone = routine.assess(pruned, night, TZ, "h", raised["kept"])
        # what the gateway stores each night, from the history it has then
        for k, v in routine.hourly(pruned, night, TZ).items():
            known.setdefault(k, v)
        assert [s.summary() for s in kept[0]] == [s.summary() for s in raw[0]], d
        assert [s.score for s in kept[0]] == [s.score for s in raw[0]]
        differs_without |= [s.score for s in alone[0]] != [s.score for s in raw[0]]
        for name, (_, f) in (("raw", raw), ("kept", kept)):
            if f is not None:
                raised[name] = night
                calls[name].append(d)
                assert f.evidence["pattern"] == "gradual_decline"
    assert calls["raw"] == calls["kept"] and len(calls["raw"]) == 1
    assert calls["raw"][0] >= 38
    assert differs_without  # the kept totals are what makes them agree


# --- the config and the schedule --------------------------------------------------------------

MINIMAL = {"gateway": {"id": "gw-1"}, "home": {"id": "home-1"}}


def test_storage_config_has_defaults_and_refuses_what_it_does_not_know():
    assert Policy.of(parse(MINIMAL).storage) == Policy()
    cfg = parse({**MINIMAL, "storage": {"observations_days": 60, "max_db_mb": 256}})
    assert Policy.of(cfg.storage).observations_s == 60 * DAY_S
    assert Policy.of(cfg.storage).max_bytes == 256 * 2**20
    with pytest.raises(ConfigError) as e:
        parse({**MINIMAL, "storage": {"observation_days": 60, "observations_days": 7}})
    text = str(e.value)
    assert "storage.observation_days: unknown key" in text
    assert "storage.observations_days: 7.0 is below the minimum 29" in text


async def test_the_runtime_loop_prunes_at_start_then_once_a_day_at_its_hour(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(retention, "CHECK_S", 0.01)
    s = Store(tmp_path / "anxin.db")
    fill(s, 45, 3600.0)
    s.close()
    store = await opened(tmp_path)
    clock = [NOW]  # 2026-09-21 22:13 in Shanghai
    ret = Retention(store, Policy(prune_hour=4), TZ, lambda: clock[0], pause_s=0)
    runs: list[float] = []
    original = ret.prune

    async def counted(now: float) -> dict:
        runs.append(now)
        return await original(now)
    monkeypatch.setattr(ret, "prune", counted)
    task = asyncio.create_task(ret.run())
    try:
        async def done_at(at: float) -> None:  # that pruning over, and many looks after
            await until(lambda: ret.last is not None and ret.last["at"] == at)
            for _ in range(20):
                await asyncio.sleep(0.02)
        await done_at(NOW)
        assert runs == [NOW]  # at start
        clock[0] = NOW + 3 * 3600  # 01:13 the next day: not yet its hour
        await done_at(NOW)
        assert len(runs) == 1
        clock[0] = NOW + 7 * 3600  # 05:13
        await done_at(NOW + 7 * 3600)
        assert runs[1:] == [NOW + 7 * 3600]  # once, however often the loop looks
        oldest = await store.call(Store.oldest_observation)
        assert oldest >= NOW + 7 * 3600 - 30 * DAY_S
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


async def test_the_nightly_learning_keeps_hourly_totals_that_outlive_the_raw_data(tmp_path):
    cfg = load(write_config(tmp_path, 1, 9, gateway_id="gw-hours"))
    gw = Gateway(cfg)
    await gw.store.open()
    try:
        start = START + 10 * DAY_S  # a local midnight
        seen = [Observation(cfg.home.id, "radar-bathroom", "presence", bool(k % 2), t,
                            "bathroom", None)
                for k, t in enumerate(np.arange(start, start + 3 * DAY_S, 300.0))]
        await gw.store.call(Store.add_observations, seen)
        night = start + 3 * DAY_S + 3 * 3600
        await gw.learn_baseline(night)
        hours = await gw.store.call(Store.activity_hours, 0.0)
        assert min(hours) == start and max(hours) == night - DAY_S - 3600
        assert all(h % 3600 == 0 for h in hours)
        assert sum(m for m, _, _ in hours.values()) > 100
        assert {room for _, _, rooms in hours.values() for room in rooms} == {"bathroom"}
        # the raw observations pruned away: the next night keeps what was learned of them
        await gw.store.call(Store.prune_observations, night, 0, set(), 10**6)
        await gw.learn_baseline(night + DAY_S)
        again = await gw.store.call(Store.activity_hours, 0.0)
        assert {h: again[h] for h in hours} == hours
    finally:
        await gw.store.close()


def test_a_card_gone_read_only_is_handled_as_a_full_one(store):
    """An SD card failing is remounted read-only by the kernel: SQLITE_READONLY, not
    SQLITE_FULL. Alerts are held and sent all the same (PRAGMA query_only makes SQLite
    refuse writes that way)."""
    store.room_after_s = 0.0
    store.conn.execute("PRAGMA query_only=ON")
    alert = raised_alert(NOW)
    seq = store.raise_alert(alert, ["t1"], lambda s: b"body", NOW)
    store.add_observations([obs(NOW)])
    st = store.storage_state()
    assert st["full_since"] is not None and "readonly" in st["full_reason"]
    assert (st["pending_alerts"], st["dropped"]["observations"]) == (1, 1)
    assert [r.alert_id for r in store.due("t1", 5)] == [alert.id]
    store.conn.execute("PRAGMA query_only=OFF")
    assert store.write_pending()
    assert store.storage_state()["full_since"] is None
    assert store.conn.execute("SELECT sequence FROM alerts").fetchall() == [(seq,)]


async def test_pruning_that_fails_is_said_once_and_tried_again(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(retention, "CHECK_S", 0.01)
    s = Store(tmp_path / "anxin.db")
    fill(s, 35, 3600.0)
    s.close()
    store = await opened(tmp_path)
    ret = Retention(store, Policy(), TZ, lambda: NOW, pause_s=0)
    # a technician's command holding the write lock (busy timeout shortened for the test)
    await store.call(lambda st: st.conn.execute("PRAGMA busy_timeout=10"))
    blocker = sqlite3.connect(tmp_path / "anxin.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    task = asyncio.create_task(ret.run())
    try:
        with caplog.at_level(logging.ERROR, logger="gateway.retention"):
            await until(lambda: "storage pruning" in ret.errors.open)
            await asyncio.sleep(0.2)  # many more looks, all failing
            assert not task.done()
            blocker.execute("ROLLBACK")
            await until(lambda: ret.last is not None)
        assert ret.last is not None and ret.last["deleted"]["observations"] > 0
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 2 and "locked" in said[0] and "works again" in said[1]
    finally:
        blocker.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


async def test_nothing_is_pruned_by_age_on_a_clock_not_to_be_trusted(tmp_path, caplog):
    """A Pi without a real-time clock may start with its clock years ahead: every row would
    look old. Until the clock is synchronised only the ceiling removes anything."""
    s = Store(tmp_path / "anxin.db")
    fill(s, 40, 3600.0)
    alert = raised_alert(NOW - 500 * DAY_S)
    s.raise_alert(alert, ["t1"], lambda seq: b"body", alert.finding.at)
    s.acked(s.due("t1", 1)[0].id, alert.finding.at)
    close(s, alert, alert.finding.at + 1, AlertState.RESOLVED)
    s.close()
    store = await opened(tmp_path)
    synced = [False]
    ahead = NOW + 5 * 365 * DAY_S
    try:
        ret = Retention(store, Policy(alerts_keep=0), TZ, lambda: ahead, pause_s=0,
                        trusted=lambda: synced[0])
        with caplog.at_level(logging.WARNING, logger="gateway.retention"):
            assert (await ret.prune(ahead))["deleted"] == {}
            assert (await ret.prune(ahead + DAY_S))["deleted"] == {}
            assert (await ret.status())["age_paused"]
            assert await store.call(Store.get_alert, alert.id) is not None
            synced[0] = True
            done = await ret.prune(NOW)  # NTP: the clock stepped back to the real time
        assert done["deleted"]["observations"] == 10 * 24  # 40 days of hourly rows, 30 kept
        assert done["deleted"]["alerts"] == 1  # 500 days old: past its 400
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 2 and "not synchronised" in said[0] and "resumes" in said[1]
    finally:
        await store.close()


def test_a_store_opens_on_a_full_card_and_an_upgrade_says_why_it_cannot(tmp_path, monkeypatch,
                                                                       caplog):
    """A gateway restarted on a full card opens its up-to-date store (no write needed) and
    runs as above; a migration that needs room fails saying so."""
    Store(tmp_path / "anxin.db").close()
    real = sqlite3.connect

    def full_card(*a, **kw):  # every connection refuses writes, as on a card with no room
        conn = real(*a, **kw)
        conn.execute("PRAGMA query_only=ON")
        return conn
    monkeypatch.setattr(sqlite3, "connect", full_card)
    store = Store(tmp_path / "anxin.db")
    try:
        alert = raised_alert(NOW)
        store.raise_alert(alert, ["t1"], lambda s: b"body", NOW)
        assert [r.alert_id for r in store.due("t1", 5)] == [alert.id]
    finally:
        store.close()

    def _m999(db):
        db["later"].create({"id": int}, pk="id")
    monkeypatch.setattr("gateway.store.MIGRATIONS", [*MIGRATIONS, ("999_later", _m999)])
    with pytest.raises(sqlite3.OperationalError), caplog.at_level(logging.CRITICAL):
        Store(tmp_path / "anxin.db")
    assert "migration 999_later needs room the disk does not have" in caplog.text


# --- thinning: repeated health readings -------------------------------------------------------

def test_a_repeated_battery_is_stored_once_then_on_change_and_hourly():
    t = Thinning(weak_link_lqi=40.0)
    kept = [t.keep(obs(NOW + i, kind="battery", value=v), NOW + i)
            for i, v in enumerate([100, 100, 100, 97, 97, 100])]
    assert kept == [True, False, False, True, False, True]
    assert t.skipped == 3
    assert not t.keep(obs(NOW + 3000, kind="battery", value=100), NOW + 3000)
    assert t.keep(obs(NOW + 5 + retention.KEEP_EVERY_S, kind="battery", value=100),
                  NOW + 5 + retention.KEEP_EVERY_S)  # an hour since the last one stored


def test_link_quality_is_stored_beyond_its_band_and_every_reading_below_the_weak_limit():
    t = Thinning(weak_link_lqi=40.0)
    band = retention.LQI_BAND
    values = [120, 120 - band + 1, 120 + band - 1, 120 + band, 120 + band + 3, 39, 39, 41, 41]
    kept = [t.keep(obs(NOW + i, kind="link_quality", value=v), NOW + i)
            for i, v in enumerate(values)]
    # (the band is measured from the last value stored, not the last one heard)
    assert kept == [True, False, False, True, False, True, True, True, False]


def test_thinning_is_per_device_and_leaves_every_other_kind_alone():
    t = Thinning(weak_link_lqi=40.0)
    assert t.keep(obs(NOW, "pir-1", "battery", 100), NOW)
    assert t.keep(obs(NOW, "pir-2", "battery", 100), NOW)
    assert all(t.keep(obs(NOW + i, "pir-1", "motion", True), NOW + i) for i in range(5))
    assert all(t.keep(obs(NOW + i, "smoke-1", "smoke", False), NOW + i) for i in range(5))
    assert all(t.keep(obs(NOW + i, "door-1", "battery_low", False), NOW + i) for i in range(5))


def test_a_clock_stepped_back_stores_the_next_reading():
    t = Thinning(weak_link_lqi=40.0)
    assert t.keep(obs(NOW, kind="battery", value=100), NOW)
    assert t.keep(obs(NOW - 600, kind="battery", value=100), NOW - 600)
    assert not t.keep(obs(NOW - 500, kind="battery", value=100), NOW - 500)


@pytest.mark.mosquitto
async def test_the_gateway_stores_repeated_readings_thinned_and_still_finds_a_weak_link(
        tmp_path, mosquitto):
    _, port = mosquitto
    gid = "gw-thin"
    cfg = write_home(tmp_path, port, free_port(), gid, f"""
[[devices]]
id = "motion-hall"
source = "zigbee2mqtt"
topic = "{gid}/hall_pir"
model = "RTCGQ11LM"
room = "hall"
""")

    def report(lqi: int) -> bytes:
        return json.dumps({"battery": 100, "linkquality": lqi, "occupancy": True,
                           "voltage": 3055}).encode()

    async with gateway(cfg) as gw:
        t0 = time.time()
        for k, lqi in enumerate([90, 92, 88, 91, 30, 31, 29]):
            await gw.handle_message(f"{gid}/hall_pir", report(lqi), False, t0 + k * 60)
        await gw.flush_observations()
        rows = gw.store.store.conn.execute(
            "SELECT kind, value FROM observations WHERE device = 'motion-hall' ORDER BY id"
        ).fetchall()
        assert [v for k, v in rows if k == "motion"] == ["true"] * 7
        assert [v for k, v in rows if k == "battery"] == ["100"]
        assert [v for k, v in rows if k == "link_quality"] == ["90", "30", "31", "29"]
        assert ("motion-hall", "weak_link") in gw._troubles
        status = await gw.status()
        assert status["storage"]["readings_not_stored"] == 6 + 3
