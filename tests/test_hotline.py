"""The reference hotline: verifies, deduplicates, stores, refuses with reasons, shows live."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerts import wire
from hotline.app import MAX_BODY_BYTES, make_app
from hotline.server import main, serve
from hotline.store import AsyncHotlineStore, HotlineStore
from tests._hotline import add_operator, headers, login
from tests._http import wait_healthy
from tests._mosquitto import free_port

SECRET = b"test-secret"
NOW = 1_795_400_000.0


def body(alert_id: str = "01JDTEST0000000000000000AA", **over) -> dict:
    b = {
        "schema": wire.SCHEMA, "alert_id": alert_id, "gateway_id": "gw-1", "home_id": "home-1",
        "sequence": 1, "code": 111, "event": "smoke", "severity": 1, "title": wire.title("smoke"),
        "room": "kitchen", "device_id": "smoke-kitchen", "detector": "instant",
        "occurred_at": "2026-11-22T21:44:05.123+08:00",
        "raised_at": "2026-11-22T21:44:05.124+08:00", "test": False,
        "residents": [{"name": "王秀英", "age": 82, "ability_level": 2, "conditions": []}],
        "evidence": {"kind": "smoke", "value": True},
    }
    b.update(over)
    return b


def signed(b: dict | bytes, ts: float = NOW, secret: bytes = SECRET) -> tuple[bytes, dict]:
    raw = b if isinstance(b, bytes) else json.dumps(b, ensure_ascii=False).encode()
    return raw, wire.signed_headers(secret, int(ts), raw)


@pytest.fixture
async def client(tmp_path):
    add_operator(tmp_path / "hotline.db", "王接警员")
    store = await AsyncHotlineStore(tmp_path / "hotline.db").open()
    c = TestClient(TestServer(make_app(SECRET, store, clock=lambda: NOW)))
    await c.start_server()
    c.csrf = await login(c, username="王接警员")
    try:
        yield c
    finally:
        await c.close()
        await store.close()


async def post(client: TestClient, raw: bytes, headers: dict) -> tuple[int, dict]:
    r = await client.post("/alerts", data=raw, headers=headers)
    return r.status, await r.json()


async def test_signed_alert_is_accepted_and_listed(client):
    status, answer = await post(client, *signed(body()))
    assert (status, answer) == (200, {"status": "accepted", "duplicate": False,
                                      "alert_id": "01JDTEST0000000000000000AA"})
    (a,) = await (await client.get("/api/alerts")).json()
    assert (a["code"], a["severity"], a["event"], a["room"], a["device_id"], a["test"],
            a["deliveries"], a["received_at"]) == (111, 1, "smoke", "kitchen", "smoke-kitchen",
                                                   False, 1, NOW)
    assert a["body"]["residents"][0]["name"] == "王秀英"
    one = await (await client.get(f"/api/alerts/{a['alert_id']}")).json()
    assert one == a
    assert (await client.get("/api/alerts/nope")).status == 404


async def test_duplicate_alert_id_is_one_row_with_two_deliveries(client):
    await post(client, *signed(body()))
    status, answer = await post(client, *signed(body(sequence=99)))
    assert status == 200 and answer["duplicate"] is True
    (a,) = await (await client.get("/api/alerts")).json()
    assert a["deliveries"] == 2 and a["sequence"] == 1  # the first body stands


async def test_a_repeat_carrying_the_intercoms_still_adds_it_to_the_alert(client):
    """An SOS goes out at once; with the resident's consent the intercom's still follows in
    a repeat of the same alert, and the operator must see it."""
    await post(client, *signed(body(event="sos", code=101)))
    snap = {"ref": "https://media.centre.example/s/01JDSNAP", "taken_at":
            "2026-11-22T21:44:07.000+08:00"}
    status, answer = await post(client, *signed(body(event="sos", code=101, snapshot=snap)))
    assert status == 200 and answer["duplicate"] is True
    await post(client, *signed(body(event="sos", code=101)))  # a later repeat without it
    (a,) = await (await client.get("/api/alerts")).json()
    assert a["deliveries"] == 3 and a["body"]["snapshot"] == snap
    assert a["body"]["residents"][0]["name"] == "王秀英"  # the rest of the first body stands


async def test_newest_first(client):
    for i in range(3):
        await post(client, *signed(body(f"01JDTEST00000000000000000{i}", sequence=i)))
    got = await (await client.get("/api/alerts")).json()
    assert [a["sequence"] for a in got] == [2, 1, 0]


@pytest.mark.parametrize(("make", "status", "reason"), [
    (lambda: signed(body(), secret=b"wrong"), 401, "bad_signature"),
    (lambda: signed(body(), ts=NOW - 301), 401, "stale"),
    (lambda: signed(body(), ts=NOW + 301), 401, "stale"),
    (lambda: (json.dumps(body()).encode(), {}), 401, "unsigned"),
    (lambda: (json.dumps(body()).encode(), {wire.TIMESTAMP_HEADER: "soon",
                                            wire.SIGNATURE_HEADER: "sha256=00"}),
     401, "bad_timestamp"),
    (lambda: signed(b"not json"), 400, "bad_json"),
    (lambda: signed({k: v for k, v in body().items() if k != "severity"}), 400, "bad_schema"),
    (lambda: signed(body(severity=7)), 400, "bad_schema"),
    (lambda: signed(body(schema="other/1")), 400, "bad_schema"),
])
async def test_refusals_are_answered_recorded_and_not_stored(client, make, status, reason):
    got_status, answer = await post(client, *make())
    assert (got_status, answer["status"], answer["reason"]) == (status, "rejected", reason)
    assert answer["error"]
    assert await (await client.get("/api/alerts")).json() == []
    (r,) = await (await client.get("/api/rejected")).json()
    assert r["reason"] == reason and r["detail"] == answer["error"]


async def test_missing_field_is_named(client):
    _, answer = await post(client, *signed({k: v for k, v in body().items() if k != "room"}))
    assert "'room'" in answer["error"]


async def test_oversized_body_is_refused_with_413(client):
    raw = json.dumps(body(evidence={"x": "a" * MAX_BODY_BYTES})).encode()
    status, answer = await post(client, *signed(raw))
    assert (status, answer["reason"]) == (413, "too_large")
    assert await (await client.get("/api/alerts")).json() == []


async def test_page_is_chinese_first_and_shows_alerts_escaped(client):
    await post(client, *signed(body(room="<script>alert(1)</script>", test=True)))
    r = await client.get("/")
    page = await r.text()
    assert r.status == 200 and r.content_type == "text/html"
    assert "接警" in page and "烟雾报警" in page and "lane-test" in page
    assert "<script>alert(1)</script>" not in page and "\\u003cscript>" in page
    assert 'new EventSource("/events")' in page
    (a,) = await (await client.get("/api/alerts")).json()
    detail = await (await client.get(f"/alerts/{a['alert_id']}")).text()
    assert "<script>alert(1)</script>" not in detail and "&lt;script&gt;" in detail


async def test_events_stream_pushes_new_alerts(client):
    r = await client.get("/events")
    assert r.headers["Content-Type"].startswith("text/event-stream")
    assert await r.content.readline() == b": connected\n"
    await r.content.readline()
    await post(client, *signed(body()))
    async with asyncio.timeout(5):
        assert await r.content.readline() == b"event: alert\n"
        data = await r.content.readline()
    a = json.loads(data.decode().removeprefix("data: "))
    assert (a["alert_id"], a["code"]) == ("01JDTEST0000000000000000AA", 111)
    r.close()


async def test_healthz(client):
    r = await client.get("/healthz")
    assert (r.status, await r.json()) == (200, {"status": "ok"})


async def test_serve_runs_until_cancelled_and_keeps_what_it_received(tmp_path):
    port = free_port()
    db = tmp_path / "h.db"
    task = asyncio.create_task(serve("127.0.0.1", port, SECRET, str(db)))
    async with aiohttp.ClientSession() as http:
        await wait_healthy(http, f"http://127.0.0.1:{port}/healthz")
        raw, headers = signed(body(), ts=time.time())
        async with http.post(f"http://127.0.0.1:{port}/alerts", data=raw,
                             headers=headers) as r:
            assert r.status == 200
        # an open live page must not hold up the shutdown
        events = await http.get(f"http://127.0.0.1:{port}/events")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        events.close()
    # restarted on the same database, it still has the alert
    store = await AsyncHotlineStore(db).open()
    try:
        assert len(await store.call(HotlineStore.alerts)) == 1
    finally:
        await store.close()


def test_main_without_a_secret_explains_and_exits_2(capsys, monkeypatch):
    monkeypatch.delenv("ANXIN_HOTLINE_SECRET", raising=False)
    assert main(["--port", "0"]) == 2
    assert "secret is required" in capsys.readouterr().err
    assert main(["--secret-file", "/nonexistent/key"]) == 2
    assert "cannot read --secret-file" in capsys.readouterr().err


# --- operator actions and the feedback the gateways read ------------------------------------

async def act(client, alert_id, action, **data):
    data.pop("operator", None)  # who acts is the logged-in operator, not the body
    r = await client.post(f"/api/alerts/{alert_id}/{action}", json=data,
                          headers=headers(client.csrf))
    return r.status, await r.json()


async def test_accept_then_resolve_with_outcome(client):
    await post(client, *signed(body()))
    aid = "01JDTEST0000000000000000AA"
    status, row = await act(client, aid, "accept", operator="王接警员")
    assert (status, row["state"], row["operator"], row["accepted_at"]) == (
        200, "accepted", "王接警员", NOW)
    assert (await act(client, aid, "accept", operator="x"))[0] == 409
    status, row = await act(client, aid, "resolve", operator="王接警员", outcome="false_alarm",
                            note="老人误按")
    assert (status, row["state"], row["outcome"]) == (200, "resolved", "false_alarm")
    assert (await act(client, aid, "resolve", operator="x", outcome="test"))[0] == 409


@pytest.mark.parametrize(("action", "data", "status", "message"), [
    ("resolve", {"outcome": "fine"}, 400, "outcome must be one of"),
    ("resolve", {"outcome": 5}, 400, "outcome must be a string"),
    ("resolve", {"outcome": "test", "note": 5}, 400, "note must be a string"),
    ("note", {"note": "called her"}, 409, "accept alert 01JDTEST0000000000000000AA first"),
    ("dispatch", {"target": "ambulance_120"}, 409, "accept alert"),
])
async def test_bad_actions_are_refused(client, action, data, status, message):
    await post(client, *signed(body()))
    got_status, answer = await act(client, "01JDTEST0000000000000000AA", action, **data)
    assert got_status == status and message in answer["error"]
    assert (await act(client, "nope", "accept"))[0] == 404


def feedback_headers(path_qs: str, ts: float = NOW, secret: bytes = SECRET) -> dict:
    return {wire.TIMESTAMP_HEADER: str(int(ts)),
            wire.SIGNATURE_HEADER: wire.sign(secret, int(ts),
                                             wire.request_signature_base("GET", path_qs))}


async def get_feedback(client, after=0, wait=0, gateway="gw-1", headers=None):
    path = f"/feedback?gateway_id={gateway}&after={after}&wait={wait}"
    r = await client.get(path, headers=headers or feedback_headers(path))
    raw = await r.read()
    return r, raw


async def test_feedback_is_signed_both_ways_and_resumes_from_the_cursor(client):
    await post(client, *signed(body()))
    await post(client, *signed(body("01JDTEST0000000000000000BB", gateway_id="gw-other")))
    await act(client, "01JDTEST0000000000000000AA", "accept", operator="op")
    await act(client, "01JDTEST0000000000000000BB", "accept", operator="op")
    await act(client, "01JDTEST0000000000000000AA", "resolve", operator="op",
              outcome="real_emergency")
    r, raw = await get_feedback(client)
    assert r.status == 200
    wire.check_signature(SECRET, r.headers[wire.TIMESTAMP_HEADER],
                         r.headers[wire.SIGNATURE_HEADER], raw, NOW)
    msg = wire.decode_feedback(raw)
    assert [(e["alert_id"], e["action"], e["outcome"]) for e in msg["events"]] == [
        ("01JDTEST0000000000000000AA", "accepted", None),
        ("01JDTEST0000000000000000AA", "resolved", "real_emergency")]  # only gw-1's
    _, raw = await get_feedback(client, after=int(msg["cursor"]))
    assert wire.decode_feedback(raw)["events"] == []


@pytest.mark.parametrize("headers", [
    {},
    feedback_headers("/feedback?gateway_id=gw-1&after=0&wait=0", secret=b"wrong"),
    feedback_headers("/feedback?gateway_id=gw-2&after=0&wait=0"),  # signed another query
    feedback_headers("/feedback?gateway_id=gw-1&after=0&wait=0", ts=NOW - 600),
])
async def test_feedback_refuses_unsigned_forged_or_stale_requests(client, headers):
    r, _ = await get_feedback(client, headers=headers or {"X-Nothing": "1"})
    assert r.status == 401


async def test_feedback_long_poll_answers_when_an_operator_acts(client):
    await post(client, *signed(body()))
    poll = asyncio.create_task(get_feedback(client, wait=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    await act(client, "01JDTEST0000000000000000AA", "accept", operator="op")
    async with asyncio.timeout(3):
        _, raw = await poll
    assert [e["action"] for e in wire.decode_feedback(raw)["events"]] == ["accepted"]


async def test_a_silent_gateway_becomes_loss_of_supervision_until_heard_again(tmp_path):
    now = [NOW]
    add_operator(tmp_path / "h.db")
    store = await AsyncHotlineStore(tmp_path / "h.db").open()
    app = make_app(SECRET, store, clock=lambda: now[0], supervision_s=120,
                   supervision_check_s=0.02)
    c = TestClient(TestServer(app))
    await c.start_server()
    await login(c)
    try:
        await post(c, *signed(body()))
        now[0] = NOW + 130
        await asyncio.sleep(0.1)
        # a gateway that only posts alerts is not supervised: a quiet day is not silence
        assert len(await (await c.get("/api/alerts")).json()) == 1
        # one that polls its feedback is
        now[0] = NOW
        path = "/feedback?gateway_id=gw-1&home_id=home-1&after=0&wait=0"
        assert (await c.get(path, headers=feedback_headers(path, ts=now[0]))).status == 200
        await asyncio.sleep(0.1)
        assert len(await (await c.get("/api/alerts")).json()) == 1  # not silent yet
        now[0] = NOW + 130
        async with asyncio.timeout(3):
            while True:
                rows = await (await c.get("/api/alerts")).json()
                if len(rows) == 2:
                    break
                await asyncio.sleep(0.02)
        silent = rows[0]
        assert (silent["event"], silent["code"], silent["severity"], silent["home_id"],
                silent["state"]) == ("gateway_silent", 350, 2, "home-1", "received")
        assert silent["body"]["evidence"]["silent_for_s"] == 130
        await asyncio.sleep(0.1)
        assert len(await (await c.get("/api/alerts")).json()) == 2  # raised once, not again
        # the gateway polls its feedback again: supervision restored
        now[0] = NOW + 140
        path = "/feedback?gateway_id=gw-1&home_id=home-1&after=0&wait=0"
        r = await c.get(path, headers=feedback_headers(path, ts=now[0]))
        assert r.status == 200
        back = await (await c.get(f"/api/alerts/{silent['alert_id']}")).json()
        assert (back["state"], back["outcome"]) == ("resolved", "restored")
        (gw,) = await (await c.get("/api/gateways")).json()
        assert (gw["gateway_id"], gw["last_seen"], gw["silent_alert_id"],
                gw["supervised"]) == ("gw-1", NOW + 140, None, 1)
    finally:
        await c.close()
        await store.close()
