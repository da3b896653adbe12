"""The 爱的眼睛 intercom end to end on real parts: Mosquitto, the gateway, the simulator's
intercom emulator (simulator/intercom.py) and a signed centre (a minimal receiver here,
verifying with alerts/wire.py as the hotline does): the centre asks to look in, the intercom
rings, answers or not, and the events reach the centre; the call and SOS keys; stills after
an SOS only with consent; nothing lost across an outage and a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from aiohttp import web

from alerts import wire
from devices.registry import Device
from gateway import intercom as gw_intercom
from gateway.config import load
from gateway.runtime import Gateway
from hotline.server import serve
from simulator.intercom import IntercomBehaviour, IntercomEmulator
from tests import _config, _hotline
from tests._config import write_home
from tests._http import wait_healthy
from tests._mosquitto import free_port

SECRET = _config.SECRET.encode()


class Centre:
    """A signed receiver: POST /alerts, POST /intercom and the long-polled GET /feedback."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.posts = 0  # intercom POSTs, duplicates included
        self.feedback: list[dict[str, Any]] = []
        self.refuse_intercom = False  # answer 503: the centre is down for intercom events
        self.changed = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_post("/alerts", self.post_alert)
        app.router.add_post("/intercom", self.post_intercom)
        app.router.add_get("/feedback", self.get_feedback)
        return app

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def post_alert(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            msg = wire.verify(SECRET, request.headers.get(wire.TIMESTAMP_HEADER),
                              request.headers.get(wire.SIGNATURE_HEADER), raw, time.time()).body
        except wire.WireError as e:
            return web.json_response({"reason": e.reason}, status=401)
        self.alerts.append(msg)
        self.changed.set()
        return web.json_response({"status": "accepted"})

    async def post_intercom(self, request: web.Request) -> web.Response:
        if self.refuse_intercom:
            return web.json_response({"reason": "down"}, status=503)
        raw = await request.read()
        try:
            wire.check_signature(SECRET, request.headers.get(wire.TIMESTAMP_HEADER),
                                 request.headers.get(wire.SIGNATURE_HEADER), raw, time.time())
            msg = wire.decode_intercom(raw)
        except wire.WireError as e:
            return web.json_response({"reason": e.reason}, status=400)
        self.posts += 1
        duplicate = any(e["event_id"] == msg["event_id"] for e in self.events)
        if not duplicate:
            self.events.append(msg)
        self.changed.set()
        return web.json_response({"status": "accepted", "duplicate": duplicate})

    async def get_feedback(self, request: web.Request) -> web.Response:
        wire.check_signature(SECRET, request.headers.get(wire.TIMESTAMP_HEADER),
                             request.headers.get(wire.SIGNATURE_HEADER),
                             wire.request_signature_base("GET", request.path_qs), time.time())
        after = int(request.query.get("after") or 0)
        deadline = time.monotonic() + min(float(request.query.get("wait", "0")), 2.0)
        while len(self.feedback) <= after and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        body = json.dumps({"schema": wire.FEEDBACK_SCHEMA, "cursor": str(len(self.feedback)),
                           "events": self.feedback[after:]}).encode()
        return web.Response(body=body, headers=wire.signed_headers(SECRET, int(time.time()),
                                                                   body))

    def look_in(self, request_id: str, alert_id: str = "") -> None:
        """An operator presses "video look-in"."""
        self.feedback.append({"action": "look_in", "request_id": request_id,
                              "alert_id": alert_id, "operator": "op-7", "at": time.time()})

    async def wait(self, what: str, check: Any, timeout: float = 20.0) -> Any:
        """Wait until `check()` is truthy; its value."""
        deadline = time.monotonic() + timeout
        while not (got := check()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: alerts "
                                     f"{[a['event'] for a in self.alerts]}, events "
                                     f"{[(e['event'], e['request_id']) for e in self.events]}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 0.2)
        return got

    def outcome(self, request_id: str) -> list[str]:
        """The events of one look-in, in order."""
        return [e["event"] for e in self.events if e["request_id"] == request_id]


@contextlib.asynccontextmanager
async def centre_on(port: int) -> AsyncIterator[Centre]:
    centre = Centre()
    runner = web.AppRunner(centre.app(), shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, f"http://127.0.0.1:{port}/healthz")
        yield centre
    finally:
        await runner.cleanup()
        # a long poll cut when the gateway stopped is still finishing its cancellation
        for _ in range(100):
            if not [t for t in asyncio.all_tasks()
                    if "_handle_request" in repr(t.get_coro()) and not t.done()]:
                break
            await asyncio.sleep(0.02)


RESIDENT = """
[[home.residents]]
name = "王秀英"
age = 84
medication = "华法林 2.5mg 每晚（易出血）"
snapshot_consent = {snap}
look_in_auto_answer = {auto}
"""


INTERCOM = """
[[devices]]
id = "door-intercom"
source = "anxin"
topic = "{gid}-native/intercom"
model = "anxin-intercom"
room = "客厅"
"""


def write_config(tmp: Path, broker: int, hport: int, gid: str, *, snap: bool = False,
                 auto: list[bool] | None = None, intercom: bool = True) -> Path:
    """A home with one intercom and a PIR, two emergency contacts, the centre at `hport`."""
    people = "".join(RESIDENT.format(snap=str(snap).lower(), auto=str(a).lower())
                     for a in (auto or [False]))
    path = write_home(tmp, broker, hport, gid, f"""district = "徐汇区 田林街道"
{people}
[[home.contacts]]
name = "王强"
relation = "儿子"
phone = "138 0000 0001"

[[home.contacts]]
name = "李梅"
relation = "邻居"
phone = "13800000002"

{INTERCOM.format(gid=gid) if intercom else ""}
[[devices]]
id = "pir-living"
source = "zigbee2mqtt"
topic = "{gid}/living_pir"
model = "RTCGQ11LM"
room = "客厅"
""", address="徐汇区 田林路 1 弄 2 号 301")
    with path.open("a", encoding="utf-8") as f:  # the [[hotline]] write_home ends with
        f.write(f'retry_max_s = 0.5\nfeedback_url = "http://127.0.0.1:{hport}/feedback"\n')
    return path


def intercom_device(gid: str) -> Device:
    return Device("door-intercom", f"home-{gid}", "anxin", f"{gid}-native/intercom",
                  "anxin-intercom", room="客厅")


@contextlib.asynccontextmanager
async def home(tmp: Path, broker: int, gid: str, behaviour: IntercomBehaviour | None = None,
               **kw: Any) -> AsyncIterator[tuple[Centre, Gateway, IntercomEmulator]]:
    hport = free_port()
    cfg = write_config(tmp, broker, hport, gid, **kw)
    async with centre_on(hport) as centre:
        gw = Gateway(load(cfg))
        await gw.start()
        try:
            async with IntercomEmulator(intercom_device(gid), "127.0.0.1", broker,
                                        behaviour or IntercomBehaviour()) as em:
                yield centre, gw, em
        finally:
            await gw.stop()


@pytest.fixture
def short_look_in(monkeypatch):
    """A look-in nobody answers is missed after 1 s instead of 45 (the gateway decides)."""
    monkeypatch.setattr(gw_intercom, "LOOK_IN_TIMEOUT_S", 1.0)


async def test_look_in_rings_is_answered_and_the_centre_hears_each_step(tmp_path, mosquitto):
    _, port = mosquitto
    async with home(tmp_path, port, "ic-answer") as (centre, _gw, em):
        centre.look_in("R-answer", alert_id="")
        await centre.wait("answered and ended",
                          lambda: centre.outcome("R-answer") == ["ringing", "answered", "ended"])
        (ring,) = [c["ring"] for c in em.commands if "ring" in c]
        assert ring == {"request_id": "R-answer", "from": "centre", "auto_answer": False}
        ringing, answered, _ = [e for e in centre.events if e["request_id"] == "R-answer"]
        assert ringing["detail"]["operator"] == "op-7"
        assert ringing["device_id"] == "door-intercom" and ringing["home_id"] == "home-ic-answer"
        assert answered["detail"]["after_s"] >= 0
        assert answered["at"].endswith("+08:00")
        # the feedback is long-polled again: the same look-in is never rung twice
        await asyncio.sleep(0.5)
        assert len([c for c in em.commands if "ring" in c]) == 1


async def test_a_look_in_nobody_answers_is_missed(tmp_path, mosquitto, short_look_in):
    _, port = mosquitto
    async with home(tmp_path, port, "ic-ignore", IntercomBehaviour(on_ring="ignore")) as (
            centre, _gw, _em):
        centre.look_in("R-ignore")
        await centre.wait("missed", lambda: centre.outcome("R-ignore") == ["ringing", "missed"])
        missed = centre.events[-1]
        assert missed["detail"]["reason"] == "no_answer"


async def test_a_declined_look_in_is_reported_declined(tmp_path, mosquitto):
    _, port = mosquitto
    async with home(tmp_path, port, "ic-decline", IntercomBehaviour(on_ring="decline")) as (
            centre, _gw, _em):
        centre.look_in("R-decline")
        await centre.wait("declined",
                          lambda: centre.outcome("R-decline") == ["ringing", "declined"])


@pytest.mark.parametrize(("consents", "expected"), [
    ([True, False], ["ringing", "answered", "ended"]),  # one refusal is a refusal
    ([True, True], ["ringing", "auto_answered", "ended"]),
])
async def test_auto_answer_only_where_every_resident_consented(tmp_path, mosquitto, consents,
                                                               expected):
    _, port = mosquitto
    gid = "ic-auto-" + "".join("y" if c else "n" for c in consents)
    async with home(tmp_path, port, gid, IntercomBehaviour(on_ring="ignore"),
                    auto=consents) as (centre, _gw, em):
        centre.look_in("R-auto")
        if expected[1] == "answered":  # nobody takes it: no auto-answer, so it stays missed
            await asyncio.sleep(1.0)
            assert centre.outcome("R-auto") == ["ringing"]
            (ring,) = [c["ring"] for c in em.commands if "ring" in c]
            assert ring["auto_answer"] is False
            return
        await centre.wait("auto-answered", lambda: centre.outcome("R-auto") == expected)
        (ring,) = [c["ring"] for c in em.commands if "ring" in c]
        assert ring["auto_answer"] is True


async def test_the_call_key_is_a_care_call_with_the_residents_profile(tmp_path, mosquitto):
    _, port = mosquitto
    gid = "ic-call"
    async with home(tmp_path, port, gid) as (centre, _gw, em):
        # some life before the call, for the timeline
        async with aiomqtt.Client("127.0.0.1", port) as c:
            for occupancy in (True, False, True):
                await c.publish(f"{gid}/living_pir", json.dumps(
                    {"occupancy": occupancy, "battery": 90, "linkquality": 100}).encode(), qos=1)
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        await em.press_call()
        (alert,) = await centre.wait("the care call", lambda: [
            a for a in centre.alerts if a["event"] == "call_request"])
        assert (alert["severity"], alert["code"], alert["title"]["zh"]) == (3, 101, "呼叫请求")
        assert alert["device_id"] == "door-intercom" and alert["room"] == "客厅"
        assert alert["district"] == "徐汇区 田林街道"
        assert alert["contacts"] == [
            {"name": "王强", "relation": "儿子", "phone": "138 0000 0001"},
            {"name": "李梅", "relation": "邻居", "phone": "13800000002"}]
        (resident,) = alert["residents"]
        assert resident["medication"] == "华法林 2.5mg 每晚（易出血）"
        assert "snapshot_consent" not in resident and "look_in_auto_answer" not in resident
        kinds = [(e["device"], e["kind"], e["value"]) for e in alert["timeline"]]
        assert [k for k in kinds if k[0] == "pir-living"] == [
            ("pir-living", "motion", True), ("pir-living", "motion", False),
            ("pir-living", "motion", True)]
        assert ("door-intercom", "availability", "online") in kinds
        assert ("door-intercom", "intercom", "call") in kinds  # what happened, the call too
        assert all(e["kind"] not in ("battery", "link_quality") for e in alert["timeline"])
        assert "snapshot" not in alert
        (call,) = await centre.wait("the call event", lambda: [
            e for e in centre.events if e["event"] == "call"])
        assert call["request_id"] is None


async def test_sos_on_the_intercom_with_consent_carries_the_still(tmp_path, mosquitto):
    _, port = mosquitto
    async with home(tmp_path, port, "ic-snap", snap=True) as (centre, _gw, em):
        await em.press_sos()
        first, update = await centre.wait("the SOS and its still", lambda: (
            sos if len(sos := [a for a in centre.alerts if a["event"] == "sos"]) >= 2
            else None))
        assert first["severity"] == 1 and "snapshot" not in first  # an SOS never waits
        assert update["alert_id"] == first["alert_id"] and "escalation" not in update
        (asked,) = [c["snapshot"] for c in em.commands if "snapshot" in c]
        assert asked == {"request_id": first["alert_id"]}
        assert update["snapshot"]["ref"] == (
            f"https://media.centre.example/snap/{first['alert_id']}.jpg")
        assert update["snapshot"]["taken_at"].endswith("+08:00")
        assert "snapshot" not in update["evidence"]


async def test_without_consent_no_still_is_asked_for_nor_attached(tmp_path, mosquitto):
    _, port = mosquitto
    async with home(tmp_path, port, "ic-nosnap", snap=False) as (centre, _gw, em):
        await em.press_sos()
        (sos,) = await centre.wait("the SOS", lambda: [
            a for a in centre.alerts if a["event"] == "sos"])
        # a still the intercom sends on its own is not attached either
        await em.publish({"snapshot": {"ref": "https://media.centre.example/x.jpg",
                                       "taken_at": time.time(),
                                       "request_id": sos["alert_id"]}})
        await asyncio.sleep(1.0)
        assert not [c for c in em.commands if "snapshot" in c]
        assert [a["event"] for a in centre.alerts] == ["sos"]
        assert all("snapshot" not in a for a in centre.alerts)


async def test_intercom_events_survive_an_outage_and_a_restart(tmp_path, mosquitto):
    _, port = mosquitto
    gid = "ic-durable"
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gid)
    async with centre_on(hport) as centre:
        centre.refuse_intercom = True
        gw = Gateway(load(cfg))
        await gw.start()
        try:
            async with IntercomEmulator(intercom_device(gid), "127.0.0.1", port) as em:
                await em.press_checkin()
                centre.look_in("R-durable")
                await asyncio.wait_for(_until(lambda: len(em.commands) == 1), 20)
                await asyncio.sleep(2.5)  # answered, ended: all refused by the centre
                st = await gw.status()  # what `anxin status` shows
                assert st["intercom"]["unsent"] == {"hotline-1": 4}
        finally:
            await gw.stop()
        assert centre.events == []
        centre.refuse_intercom = False
        gw = Gateway(load(cfg))
        await gw.start()
        try:
            await centre.wait("every event after the restart", lambda: sorted(
                e["event"] for e in centre.events) == ["answered", "checkin", "ended",
                                                       "ringing"])
        finally:
            await gw.stop()
        assert len({e["event_id"] for e in centre.events}) == 4
        assert centre.outcome("R-durable") == ["ringing", "answered", "ended"]


async def _until(check: Any) -> None:
    while not check():
        await asyncio.sleep(0.05)


async def test_a_ring_under_way_at_a_restart_is_still_reported_missed(tmp_path, mosquitto,
                                                                        short_look_in):
    _, port = mosquitto
    gid = "ic-restart"
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gid)
    async with centre_on(hport) as centre, IntercomEmulator(
            intercom_device(gid), "127.0.0.1", port, IntercomBehaviour(on_ring="ignore")):
        gw = Gateway(load(cfg))
        await gw.start()
        try:
            centre.look_in("R-restart")
            await centre.wait("ringing", lambda: centre.outcome("R-restart") == ["ringing"])
        finally:
            await gw.stop()  # before the gateway's 1 s is up
        gw = Gateway(load(cfg))
        await gw.start()
        try:
            await centre.wait("missed after the restart",
                              lambda: centre.outcome("R-restart") == ["ringing", "missed"])
            await asyncio.sleep(0.5)  # the feedback feed again: not rung a second time
            assert centre.outcome("R-restart") == ["ringing", "missed"]
        finally:
            await gw.stop()


async def test_look_in_and_events_over_the_mqtt_uplink(tmp_path, mosquitto):
    _, port = mosquitto
    gid, prefix = "ic-uplink", "centre-ic"
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gid)
    with cfg.open("a", encoding="utf-8") as f:
        f.write(f'\n[[hotline]]\nname = "uplink"\nkind = "mqtt"\n'
                f'url = "mqtt://127.0.0.1:{port}"\ntopic_prefix = "{prefix}"\n'
                f'secret = "{SECRET.decode()}"\nretry_max_s = 0.5\n')
    events: list[dict[str, Any]] = []
    async with centre_on(hport) as centre, aiomqtt.Client("127.0.0.1", port) as centre_mqtt:
        await centre_mqtt.subscribe(f"{prefix}/{gid}/intercom", qos=1)

        async def collect() -> None:
            async for m in centre_mqtt.messages:
                assert isinstance(m.payload, bytes)
                events.append(wire.decode_intercom(wire.open_envelope(SECRET, m.payload,
                                                                      time.time())))

        collector = asyncio.create_task(collect())
        gw = Gateway(load(cfg))
        await gw.start()
        try:
            async with IntercomEmulator(intercom_device(gid), "127.0.0.1", port) as em:
                body = json.dumps({"schema": wire.FEEDBACK_SCHEMA, "cursor": "1", "events": [
                    {"action": "look_in", "request_id": "R-up", "alert_id": "",
                     "operator": "op-9", "at": time.time()}]}).encode()
                await centre_mqtt.publish(f"{prefix}/{gid}/feedback",
                                          wire.envelope(SECRET, int(time.time()), body), qos=1)
                await centre.wait("the uplink's events", lambda: [
                    e["event"] for e in events] == ["ringing", "answered", "ended"])
                assert [c["ring"]["request_id"] for c in em.commands if "ring" in c] == ["R-up"]
                assert all(e["request_id"] == "R-up" for e in events)
                # the webhook target hears the same events, once each
                await centre.wait("the webhook's events",
                                  lambda: centre.outcome("R-up") == ["ringing", "answered",
                                                                     "ended"])
                assert {e["event_id"] for e in events} == {
                    e["event_id"] for e in centre.events}
        finally:
            await gw.stop()
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector


async def test_a_look_in_at_a_home_without_an_intercom_is_missed_at_once(tmp_path, mosquitto):
    _, port = mosquitto
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, "ic-none", intercom=False)
    async with centre_on(hport) as centre:
        gw = Gateway(load(cfg))
        await gw.start()
        try:
            centre.look_in("R-none", alert_id="01JDALERT")
            (missed,) = await centre.wait("missed", lambda: [
                e for e in centre.events if e["request_id"] == "R-none"])
        finally:
            await gw.stop()
    assert (missed["event"], missed["device_id"]) == ("missed", "")
    assert missed["detail"] == {"reason": "no_intercom", "alert_id": "01JDALERT"}


async def test_a_fall_with_consent_is_sent_with_its_still_in_the_first_body(tmp_path, mosquitto):
    _, port = mosquitto
    gid = "ic-fall"
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gid, snap=True)
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(text.replace("[[hotline]]", f"""[[devices]]
id = "pendant"
source = "anxin"
topic = "{gid}-native/pendant"
model = "anxin-pendant"

[alerts]
fall_cancel_window_s = 2

[[hotline]]""", 1), encoding="utf-8")
    async with centre_on(hport) as centre:
        gw = Gateway(load(cfg))
        await gw.start()
        try:
            async with IntercomEmulator(intercom_device(gid), "127.0.0.1", port) as em, \
                    aiomqtt.Client("127.0.0.1", port) as c:
                await c.publish(f"{gid}-native/pendant", b'{"fall": "fall"}', qos=1)
                (fall,) = await centre.wait("the fall", lambda: [
                    a for a in centre.alerts if a["event"] == "fall"])
                await asyncio.sleep(0.5)
                assert len(centre.alerts) == 1  # one body, the still already in it
                (asked,) = [c["snapshot"] for c in em.commands if "snapshot" in c]
        finally:
            await gw.stop()
    assert asked == {"request_id": fall["alert_id"]}
    assert fall["snapshot"]["ref"].endswith(f"/{fall['alert_id']}.jpg")
    assert "snapshot" not in fall["evidence"]


async def test_with_the_real_hotline_the_operators_look_in_is_answered(tmp_path, mosquitto):
    """The reference hotline (hotline/): the care call lands there, an operator logged in
    asks to look in from the console API, and the intercom's answer is stored there."""
    _, port = mosquitto
    gid = "ic-hotline"
    hport = free_port()
    cfg = write_config(tmp_path, port, hport, gid)
    db = tmp_path / "hotline.db"
    _hotline.add_operator(db)
    server = asyncio.create_task(serve("127.0.0.1", hport, SECRET, str(db)))
    base = f"http://127.0.0.1:{hport}"
    try:
        async with _hotline.session() as http:
            await wait_healthy(http, f"{base}/healthz")
            csrf = await _hotline.login(http, base)
            gw = Gateway(load(cfg))
            await gw.start()
            try:
                async with IntercomEmulator(intercom_device(gid), "127.0.0.1", port) as em:
                    await em.press_call()
                    await asyncio.wait_for(_until(lambda: _hotline_rows(
                        db, "SELECT event FROM alerts") == [("call_request",)]), 20)
                    async with http.post(f"{base}/api/homes/home-{gid}/look-in", json={},
                                         headers=_hotline.headers(csrf)) as r:
                        assert r.status == 200, await r.text()
                        request_id = (await r.json())["request_id"]
                    await asyncio.wait_for(_until(lambda: _hotline_rows(
                        db, "SELECT event FROM intercom WHERE request_id=? ORDER BY at",
                        request_id) == [("ringing",), ("answered",), ("ended",)]), 20)
                    assert [c["ring"]["request_id"] for c in em.commands if "ring" in c] == [
                        request_id]
            finally:
                await gw.stop()
        assert _hotline_rows(db, "SELECT count(*) FROM intercom WHERE event='call'") == [(1,)]
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server


def _hotline_rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


async def test_an_intercom_known_offline_is_not_rung_and_missed_at_once(tmp_path, mosquitto):
    _, port = mosquitto
    gid = "ic-offline"
    async with home(tmp_path, port, gid) as (centre, gw, em), \
            aiomqtt.Client("127.0.0.1", port) as c:
        await c.publish(f"{gid}-native/intercom/availability", b'{"state": "offline"}', qos=1,
                        retain=True)  # its last will: the power is off
        await asyncio.wait_for(_until(lambda: "door-intercom" in gw.core.offline()), 20)
        centre.look_in("R-off")
        (missed,) = await centre.wait("missed", lambda: [
            e for e in centre.events if e["request_id"] == "R-off"])
        assert (missed["event"], missed["detail"]["reason"]) == ("missed", "intercom_offline")
        assert not [c for c in em.commands if "ring" in c]
        await c.publish(f"{gid}-native/intercom/availability", b"", qos=1, retain=True)
