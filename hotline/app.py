"""The hotline as an aiohttp app: the machine routes gateways use, and the operator console.

Machine routes, signed with the shared secret (alerts/wire.py), no login:
    POST /alerts           `anxin.alert/1`; 200 once stored, also for a duplicate alert_id
                           (so the gateway stops resending)
    POST /intercom         `anxin.intercom/1`: the home intercom's signalling (rang, answered…)
    GET  /feedback?gateway_id=…&after=<cursor>&wait=<s>
                           long poll: the gateway learns acceptance, resolution and look-in
                           requests (`anxin.feedback/1`, signed over the body)
    POST /notify           stand-in for an SMS/voice gateway: signed `anxin.notify/1`
                           requests are kept (GET /api/notifications), as a provider would
                           receive them, so tests and the demo send real requests
    GET  /healthz          liveness
    SIA DC-09 over TCP     (optional, hotline/dc09.py) alarms from DC-09 transmitters

Everything else is the operator console (hotline/console.py) and needs a logged-in
operator (hotline/auth.py). Supervision: a gateway that polls its feedback or reports its
uplink status is supervised; one silent too long becomes a loss-of-supervision alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from alerts import wire
from hotline import auth, console, dc09
from hotline.mqtt_link import MqttLink
from hotline.store import AsyncHotlineStore

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
TZ = ZoneInfo("Asia/Shanghai")

STORE: web.AppKey[AsyncHotlineStore] = web.AppKey("store", AsyncHotlineStore)
ACTIONS: web.AppKey[asyncio.Condition] = web.AppKey("actions", asyncio.Condition)
MAX_FEEDBACK_WAIT_S = 30.0
BACKGROUND: web.AppKey[list[asyncio.Task[None]]] = web.AppKey("background", list)
MQTT_LINK: web.AppKey[MqttLink] = web.AppKey("mqtt_link", MqttLink)
DC09: web.AppKey[dc09.Receiver] = web.AppKey("dc09", dc09.Receiver)

# Refusals that are about who sent it (401) rather than what was sent (400).
UNAUTHORISED = frozenset({"unsigned", "bad_signature", "stale", "bad_timestamp"})
# No session needed: the gateways' signed routes, liveness and the login itself.
PUBLIC = {("POST", "/alerts"), ("POST", "/intercom"), ("POST", "/notify"),
          ("GET", "/feedback"), ("GET", "/healthz"), ("GET", "/login"), ("POST", "/login")}


def forwarded(trusted: frozenset[str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Behind a reverse proxy that terminates TLS (nginx, Caddy), every request reaches the
    console over plain HTTP from the proxy's address: cookies would not be marked Secure and
    every failed login would count against one address, so one attacker could lock every
    operator out. A request from a `trusted` address is taken as its X-Forwarded-Proto and
    X-Forwarded-For say (the last hop of each: what that proxy itself saw). From any other
    address those headers are ignored: anyone can send them."""

    @web.middleware
    async def middleware(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        if trusted and request.remote in trusted:
            proto = request.headers.get("X-Forwarded-Proto", "").rsplit(",", 1)[-1].strip()
            client = request.headers.get("X-Forwarded-For", "").rsplit(",", 1)[-1].strip()
            request = request.clone(
                scheme=proto.lower() if proto.lower() in ("http", "https") else request.scheme,
                remote=client or request.remote)
        return await handler(request)
    return middleware


def make_app(secret: bytes, store: AsyncHotlineStore,
             clock: Callable[[], float] = time.time, *, supervision_s: float = 120.0,
             supervision_check_s: float = 5.0, mqtt_url: str | None = None,
             mqtt_prefix: str = "anxin", mqtt_share_group: str | None = None,
             dc09_listen: tuple[str, int] | None = None,
             dc09_accounts: dict[str, dc09.Account] | None = None,
             trusted_proxies: frozenset[str] = frozenset()) -> web.Application:
    """The hotline app; `clock` is injectable so tests can check the 5-minute rule.

    Supervision: a gateway that polls its feedback feed is supervised, and every signed
    alert or poll from it counts as a sign of life. A gateway silent for `supervision_s`
    (0 = off) becomes a loss-of-supervision alert for its home (网关失联, Contact ID 350,
    severity 2), closed when it is heard again. With `dc09_listen` (host, port) a SIA DC-09
    receiver takes alarms for `dc09_accounts` too; a transmitter's NULL messages supervise it.
    Requests from `trusted_proxies` (the addresses of a TLS-terminating reverse proxy) are
    taken as the proxy says they came: see `forwarded`.
    """
    app = web.Application(middlewares=[forwarded(trusted_proxies),
                                       auth.middleware(store, PUBLIC, clock)])
    app[STORE] = store
    app[ACTIONS] = asyncio.Condition()
    closing = asyncio.Event()
    live = console.Live()

    polls: dict[str, set[asyncio.Event]] = {}  # gateway -> its feedback long polls waiting

    async def acted(gateway_id: str | None = None) -> None:
        """An operator did something `gateway_id` (None: every gateway) may need: answer its
        long polls now, and tell the MQTT link. Only that gateway's: waking all 5,000 polls
        for each accept sent 5,000 gateways polling again (bench/hotline_load.py)."""
        woken = ([e for waiting in polls.values() for e in waiting] if gateway_id is None
                 else list(polls.get(gateway_id, ())))
        for e in woken:
            e.set()
        async with app[ACTIONS]:
            app[ACTIONS].notify_all()

    def publish(row: dict[str, Any]) -> None:
        live.publish("alert", row)

    async def alive(gateway_id: str, home_id: str, now: float, *, heartbeat: bool) -> None:
        restored = await store.call(lambda s: s.seen(gateway_id, home_id, now,
                                                     heartbeat=heartbeat))
        if restored is not None:
            logger.warning("gateway %s (home %s) heard from again", gateway_id,
                           restored["home_id"])
            publish(restored)

    async def supervise() -> None:
        while True:
            await asyncio.sleep(supervision_check_s)
            for row in await store.call(lambda s: s.gone_silent(clock(), supervision_s, TZ)):
                logger.warning("gateway %s (home %s) silent for %.0f s: loss of supervision",
                               row["gateway_id"], row["home_id"],
                               row["body"]["evidence"]["silent_for_s"])
                publish(row)

    async def uplink_status(gateway_id: str, home_id: str, online: bool, now: float) -> None:
        if online:
            # The broker's last will reports a dead uplink at once: no timer needed.
            await alive(gateway_id, home_id, now, heartbeat=False)
            return
        row = await store.call(lambda s: s.went_offline(gateway_id, now, TZ))
        if row is not None:
            logger.warning("gateway %s (home %s) lost its uplink (last will)", gateway_id,
                           row["home_id"])
            publish(row)

    async def start_supervision(app: web.Application) -> None:
        tasks = []
        if supervision_s > 0:
            tasks.append(asyncio.create_task(supervise(), name="hotline-supervision"))
        if dc09_listen is not None:
            receiver = dc09.Receiver(dc09_accounts or {}, dc09_alarm, dc09_alive, dc09_reject,
                                     clock, TZ)
            await receiver.start(*dc09_listen)
            app[DC09] = receiver
        if mqtt_url is not None:
            link = MqttLink(mqtt_url, secret, store, publish, uplink_status, app[ACTIONS],
                            prefix=mqtt_prefix, share_group=mqtt_share_group, clock=clock,
                            intercom=lambda row: live.publish("intercom", row))
            app[MQTT_LINK] = link
            tasks.append(asyncio.create_task(link.run(), name="hotline-mqtt"))
        app[BACKGROUND] = tasks

    async def dc09_alarm(body: dict[str, Any], now: float) -> None:
        row, duplicate = await store.call(lambda s: s.record(body, now))
        await alive(body["gateway_id"], body["home_id"], now, heartbeat=False)
        if duplicate:
            logger.info("alert %s delivered again over DC-09", row["alert_id"])
        else:
            logger.info("alert %s received over DC-09: %s %s, home %s", row["alert_id"],
                        row["code"], row["event"], row["home_id"])
        publish(row)

    async def dc09_alive(gateway_id: str, home_id: str, now: float) -> None:
        await alive(gateway_id, home_id, now, heartbeat=True)

    async def dc09_reject(remote: str, reason: str, detail: str, raw: bytes,
                          now: float) -> None:
        await store.call(lambda s: s.reject(remote, reason, detail, raw, now))

    async def stop_supervision(app: web.Application) -> None:
        if DC09 in app:
            await app[DC09].close()
        for task in app.get(BACKGROUND, []):
            task.cancel()
        await asyncio.gather(*app.get(BACKGROUND, []), return_exceptions=True)

    app.on_startup.append(start_supervision)
    app.on_cleanup.append(stop_supervision)

    async def signed_body(request: web.Request, now: float
                          ) -> tuple[bytes, None] | tuple[None, web.Response]:
        """The raw body if it is small enough and signed with the secret; else the refusal."""
        raw = await _read_limited(request, MAX_BODY_BYTES)
        if raw is None:
            await store.call(lambda s: s.reject(request.remote, "too_large",
                                                f"body over {MAX_BODY_BYTES} bytes", b"", now))
            return None, _refuse(413, "too_large", f"body is over {MAX_BODY_BYTES} bytes")
        try:
            wire.check_signature(secret, request.headers.get(wire.TIMESTAMP_HEADER),
                                 request.headers.get(wire.SIGNATURE_HEADER), raw, now)
        except wire.WireError as e:
            return None, await refused(request, e, raw, now)
        return raw, None

    async def refused(request: web.Request, e: wire.WireError, raw: bytes,
                      now: float) -> web.Response:
        logger.warning("refused a message from %s: %s (%s)", request.remote, e.reason, e)
        reason, detail = e.reason, str(e)
        await store.call(lambda s: s.reject(request.remote, reason, detail, raw, now))
        return _refuse(401 if reason in UNAUTHORISED else 400, reason, detail)

    async def signed_message(request: web.Request, now: float,
                             decode: Callable[[bytes], dict[str, Any]]
                             ) -> tuple[dict[str, Any], None] | tuple[None, web.Response]:
        """The decoded body of a signed message; else the refusal (recorded, with why)."""
        raw, refusal = await signed_body(request, now)
        if raw is None:
            assert refusal is not None
            return None, refusal
        try:
            return decode(raw), None
        except wire.WireError as e:
            return None, await refused(request, e, raw, now)

    async def receive(request: web.Request) -> web.Response:
        now = clock()
        body, refusal = await signed_message(request, now, wire.decode)
        if body is None:
            assert refusal is not None
            return refusal
        row, duplicate = await store.call(lambda s: s.record(body, now))
        await alive(body["gateway_id"], body["home_id"], now, heartbeat=False)
        if duplicate:
            logger.info("alert %s delivered again (%d deliveries)", row["alert_id"],
                        row["deliveries"])
        else:
            logger.info("alert %s received: %s %s, severity %d, home %s", row["alert_id"],
                        row["code"], row["event"], row["severity"], row["home_id"])
        publish(row)
        return web.json_response({"status": "accepted", "alert_id": row["alert_id"],
                                  "duplicate": duplicate})

    async def intercom(request: web.Request) -> web.Response:
        now = clock()
        body, refusal = await signed_message(request, now, wire.decode_intercom)
        if body is None:
            assert refusal is not None
            return refusal
        row, duplicate = await store.call(lambda s: s.record_intercom(body, now))
        await alive(body["gateway_id"], body["home_id"], now, heartbeat=False)
        if not duplicate:
            logger.info("intercom %s in home %s: %s", body["device_id"], body["home_id"],
                        body["event"])
            live.publish("intercom", row)
        return web.json_response({"status": "accepted", "duplicate": duplicate})

    async def notify(request: web.Request) -> web.Response:
        now = clock()
        raw, refusal = await signed_body(request, now)
        if raw is None:
            assert refusal is not None
            return refusal
        try:
            msg = json.loads(raw)
            ok = isinstance(msg, dict) and msg.get("schema") == "anxin.notify/1" and all(
                isinstance(msg.get(k), str) for k in ("to", "channel", "text", "alert_id"))
        except ValueError:
            ok = False
        if not ok:
            await store.call(lambda s: s.reject(request.remote, "bad_schema",
                                                "not an anxin.notify/1 request", raw, now))
            return _refuse(400, "bad_schema", "not an anxin.notify/1 request")
        row = await store.call(lambda s: s.notified(msg, now))
        logger.info("%s to %s about alert %s", msg["channel"], msg["to"], msg["alert_id"])
        return web.json_response({"status": "accepted", "id": row["id"]})

    async def feedback(request: web.Request) -> web.Response:
        now = clock()
        try:
            wire.check_signature(secret, request.headers.get(wire.TIMESTAMP_HEADER),
                                 request.headers.get(wire.SIGNATURE_HEADER),
                                 wire.request_signature_base("GET", request.path_qs), now)
        except wire.WireError as e:
            return _refuse(401, e.reason, str(e))
        gateway_id = request.query.get("gateway_id", "")
        try:
            after = int(request.query.get("after") or 0)
            wait = min(float(request.query.get("wait") or 0), MAX_FEEDBACK_WAIT_S)
        except ValueError:
            return _refuse(400, "bad_query", "after must be an integer and wait a number")
        if not gateway_id:
            return _refuse(400, "bad_query", "gateway_id is required")
        await alive(gateway_id, request.query.get("home_id", ""), now, heartbeat=True)
        events, cursor = await store.call(lambda s: s.feedback(gateway_id, after))
        if not events and wait > 0 and not closing.is_set():
            # Long poll: answer as soon as an operator acts on this gateway's alerts, or
            # after `wait` seconds.
            woken = asyncio.Event()
            polls.setdefault(gateway_id, set()).add(woken)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), wait)
            finally:
                polls[gateway_id].discard(woken)
                if not polls[gateway_id]:
                    del polls[gateway_id]
            events, cursor = await store.call(lambda s: s.feedback(gateway_id, after))
        body = json.dumps({"schema": wire.FEEDBACK_SCHEMA, "gateway_id": gateway_id,
                           "cursor": str(cursor), "events": events},
                          ensure_ascii=False).encode()
        return web.Response(body=body, headers=wire.signed_headers(secret, int(clock()), body))

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def end_streams(app: web.Application) -> None:
        closing.set()
        live.close()
        await acted()  # long polls answer now

    app.on_shutdown.append(end_streams)
    app.router.add_post("/alerts", receive)
    app.router.add_post("/intercom", intercom)
    app.router.add_get("/feedback", feedback)
    app.router.add_post("/notify", notify)
    app.router.add_get("/healthz", healthz)
    console.add_routes(app, store, live, clock, acted)
    return app


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None if it is longer than `limit` (read no further than that)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(status: int, reason: str, error: str) -> web.Response:
    return web.json_response({"status": "rejected", "reason": reason, "error": error},
                             status=status)


__all__ = ["MAX_BODY_BYTES", "PUBLIC", "make_app"]
