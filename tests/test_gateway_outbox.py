"""Outbox senders on a real SQLite store: order, retry, and no sender dies of a surprise."""

from __future__ import annotations

import argparse
import asyncio

from alerts.manager import Manager
from bench import outage_day
from detectors.finding import Finding
from gateway.outbox import OutboxSender, Queue, read_due
from gateway.store import AsyncStore, Store
from gateway.transports.base import DeliveryError, Transport


class FlakyTransport(Transport):
    """Fails the first `failures` attempts (with `error`), then acknowledges everything."""

    def __init__(self, failures: list[Exception]) -> None:
        self.name = "t1"
        self.failures = failures
        self.delivered: list[bytes] = []

    async def send(self, body: bytes) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(body)


SEVERITY = {"smoke": 1, "gas": 1, "sos": 1, "fall": 1, "water_leak": 2, "low_battery": 4}


def raised(at: float, event: str):
    f = Finding(detector="instant", home="h1", code=111, event=event, severity=SEVERITY[event],
                at=at, device=f"d-{event}", room="kitchen")
    ((alert, _),) = Manager().on_finding(f, at)
    return alert


async def drain(transport: FlakyTransport, tmp_path, events: list[str]) -> list[str]:
    store = await AsyncStore(tmp_path / "anxin.db").open()
    delivered: list[str] = []

    async def on_delivered(alert_id: str) -> None:
        delivered.append(alert_id)

    sender = OutboxSender(store, transport, on_delivered, backoff_base_s=0.01,
                          backoff_max_s=0.02)
    try:
        for i, event in enumerate(events):
            await store.call(Store.raise_alert, raised(float(i), event), ["t1"],
                             lambda seq, e=event: f"{seq}:{e}".encode(), float(i))
        task = asyncio.create_task(sender.run())
        async with asyncio.timeout(5):
            while len(delivered) < len(events):
                await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert await store.call(Store.outbox_depth) == {}
    finally:
        await store.close()
    return delivered


async def test_outage_then_delivery_in_sequence_order(tmp_path):
    t = FlakyTransport([DeliveryError("HTTP 503"), DeliveryError("refused")])
    await drain(t, tmp_path, ["smoke", "gas", "sos"])
    assert t.delivered == [b"1:smoke", b"2:gas", b"3:sos"]


async def test_an_unexpected_transport_error_is_retried_not_fatal(tmp_path):
    t = FlakyTransport([RuntimeError("a bug in a transport"), ValueError("bad header")])
    await drain(t, tmp_path, ["smoke"])
    assert t.delivered == [b"1:smoke"]


async def test_after_an_outage_the_most_urgent_goes_first(tmp_path):
    t = FlakyTransport([DeliveryError("down")] * 3)
    await drain(t, tmp_path, ["low_battery", "water_leak", "fall", "low_battery", "sos"])
    assert t.delivered == [b"3:fall", b"5:sos", b"2:water_leak", b"1:low_battery",
                           b"4:low_battery"]


async def test_an_alarm_raised_during_an_outage_overtakes_the_waiting_head(tmp_path):
    t = FlakyTransport([DeliveryError("down")] * 4)
    store = await AsyncStore(tmp_path / "anxin.db").open()
    delivered: list[str] = []

    async def on_delivered(alert_id: str) -> None:
        delivered.append(alert_id)

    sender = OutboxSender(store, t, on_delivered, backoff_base_s=0.02, backoff_max_s=0.05)
    task = asyncio.create_task(sender.run())
    try:
        await store.call(Store.raise_alert, raised(0.0, "low_battery"), ["t1"],
                         lambda seq: b"low_battery", 0.0)
        sender.wake()
        while sender.failures < 2:  # the low battery is at the head, failing
            await asyncio.sleep(0.005)
        await store.call(Store.raise_alert, raised(1.0, "fall"), ["t1"], lambda seq: b"fall",
                         1.0)
        sender.wake()
        async with asyncio.timeout(5):
            while len(t.delivered) < 2:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
    assert t.delivered == [b"fall", b"low_battery"]


async def test_a_day_without_the_hotline_on_a_virtual_clock(tmp_path):
    """The sender keeps trying all day (backoff capped at 60 s) and then delivers it all:
    bench/outage_day.py, small."""
    got = await outage_day.bench(argparse.Namespace(alerts=60, retry_max_s=60.0))
    assert got["arrived_exactly_once"] and got["severity_1_first"]
    assert got["out_of_urgency_order"] == 0
    assert got["failed_attempts_during_outage"] > 24 * 60  # about one a minute, all day
    assert got["oldest_alert_age_at_delivery_h"] >= 23


class CountingDue:
    """`Store.due`, counting how often a sender asks."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self, store: Store, target: str, limit: int = 50):
        self.asked += 1
        return Store.due(store, target, limit)


async def test_an_idle_sender_sends_the_answer_read_with_the_commit(tmp_path):
    """The alarm path's shortcut: `wake(due)` with what `read_due` read right after the
    commit; an idle sender sends the newest such answer (the most urgent first) without
    asking the store again, and a wake without an answer makes it ask."""
    t = FlakyTransport([])
    counting = CountingDue()
    queue = Queue("alert", counting, Store.acked, Store.failed, lambda tr, body: tr.send(body))
    store = await AsyncStore(tmp_path / "anxin.db").open()

    async def on_delivered(alert_id: str) -> None:
        pass

    sender = OutboxSender(store, t, on_delivered, queue=queue)
    task = asyncio.create_task(sender.run())
    try:
        async with asyncio.timeout(5):
            while not sender._idle:  # it asked once at start and found nothing
                await asyncio.sleep(0.005)
        assert counting.asked == 1

        def commit(event: str, at: float):
            def run(s: Store):
                Store.raise_alert(s, raised(at, event), ["t1"], lambda seq: event.encode(), at)
                return read_due(s, [sender])
            return run

        first = await store.call(commit("low_battery", 0.0))
        second = await store.call(commit("fall", 1.0))
        assert [r.body for r in first["t1"]] == [b"low_battery"]
        assert [r.body for r in second["t1"]] == [b"fall"]  # severity 1 first
        before = counting.asked  # read_due asked too, through the sender's queue
        sender.wake(first["t1"])
        sender.wake(second["t1"])  # the newer answer replaces the older
        async with asyncio.timeout(5):
            while len(t.delivered) < 2:
                await asyncio.sleep(0.005)
            while not sender._idle:  # and found nothing more
                await asyncio.sleep(0.005)
        assert t.delivered == [b"fall", b"low_battery"]
        # the fall was sent from the answer; after it the sender asked (low battery), and
        # again after that (nothing): two questions for two messages, not three
        assert counting.asked - before == 2

        await store.call(Store.raise_alert, raised(2.0, "smoke"), ["t1"],
                         lambda seq: b"smoke", 2.0)
        sender.wake()  # no answer: the sender must ask
        async with asyncio.timeout(5):
            while len(t.delivered) < 3:
                await asyncio.sleep(0.005)
        assert t.delivered[-1] == b"smoke"
        assert counting.asked - before >= 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


async def test_a_busy_sender_ignores_an_answer_and_asks(tmp_path):
    """An answer given to a sender that is sending (or backing off) may be stale: its own
    acks and failures since are not in it. It asks instead: the fall still goes first."""
    t = FlakyTransport([DeliveryError("down")])
    store = await AsyncStore(tmp_path / "anxin.db").open()
    backing_off, go_on = asyncio.Event(), asyncio.Event()

    async def on_delivered(alert_id: str) -> None:
        pass

    async def held_backoff(_seconds: float) -> None:  # the backoff ends when the test says
        backing_off.set()
        await go_on.wait()

    sender = OutboxSender(store, t, on_delivered, sleep=held_backoff)
    task = asyncio.create_task(sender.run())
    try:
        stale = await store.call(lambda s: (
            Store.raise_alert(s, raised(0.0, "low_battery"), ["t1"], lambda seq: b"low_battery",
                              0.0), read_due(s, [sender]))[1])
        sender.wake(stale["t1"])
        async with asyncio.timeout(5):
            await backing_off.wait()  # the low battery failed; the sender backs off
        await store.call(Store.raise_alert, raised(1.0, "fall"), ["t1"], lambda seq: b"fall",
                         1.0)
        sender.wake(stale["t1"])  # an answer read before the fall: must not be used
        go_on.set()
        async with asyncio.timeout(5):
            while len(t.delivered) < 2:
                await asyncio.sleep(0.005)
        assert t.delivered == [b"fall", b"low_battery"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
