"""The operator console's routes: login, the live queue, an alert's detail, actions,
history, statistics (and their CSV for 民政 reporting), operators. Every route here needs a
logged-in operator (hotline/auth.py's middleware); state changes need the CSRF token.

    GET  /login, POST /login, POST /logout
    GET  /                      live queue (SSE from GET /events; JSON at GET /api/queue)
    GET  /alerts/{id}           detail page;  GET /homes/{home_id}: a home, look-in without alert
    POST /api/alerts/{id}/accept | resolve | note | dispatch      (JSON body)
    POST /api/homes/{home_id}/look-in   {"alert_id": optional}: ring the home's intercom
    GET  /history               resolved alerts
    GET  /stats, /stats.csv, /api/stats   ?from=YYYY-MM-DD&to=…&period=day|week|month
    GET  /operators, POST /operators, POST /operators/{username}, POST /password
    GET  /api/alerts, /api/alerts/{id}, /api/rejected, /api/gateways, /api/notifications
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from hotline import auth, pages, stats
from hotline.i18n import LANG_COOKIE, TZ, lang_of
from hotline.store import ActionError, AsyncHotlineStore

logger = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
MAX_NOTE = 2000
SUBSCRIBER_BACKLOG = 1000  # a browser this far behind is dropped (it reconnects and resyncs)


class Live:
    """Server-sent events to every open console page."""

    def __init__(self) -> None:
        self.subscribers: set[asyncio.Queue[bytes | None]] = set()

    def publish(self, event: str, row: dict[str, Any]) -> None:
        """Send `row` as `event:` to every page (an alert as its queue row); a page that
        stopped reading is dropped."""
        if event == "alert":
            row = pages.queue_row(row)
        # Encoded once for every page: a burst of alerts to many operators stays cheap.
        message = f"event: {event}\ndata: {json.dumps(row, ensure_ascii=False)}\n\n".encode()
        for q in list(self.subscribers):
            if q.qsize() >= SUBSCRIBER_BACKLOG:
                self.subscribers.discard(q)
                q.put_nowait(None)
                logger.warning("a console page fell %d events behind: dropped (it resyncs)",
                               SUBSCRIBER_BACKLOG)
                continue
            q.put_nowait(message)

    def close(self) -> None:
        """The app is stopping: end every stream."""
        for q in self.subscribers:
            q.put_nowait(None)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _html(request: web.Request, text: str, status: int = 200) -> web.Response:
    # Only the page's own scripts run: each <script> gets this response's nonce (every
    # value on the page is escaped, so no injected text can spell "<script>").
    nonce = secrets.token_urlsafe(16)
    text = text.replace("<script>", f'<script nonce="{nonce}">')
    resp = web.Response(text=text, content_type="text/html", charset="utf-8", status=status)
    resp.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'")
    if request.query.get("lang") in ("zh", "en"):
        resp.set_cookie(LANG_COOKIE, request.query["lang"], max_age=365 * 86400,
                        samesite="Strict", httponly=True, secure=request.secure)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    return resp


def _safe_next(url: str) -> str:
    """Only a path on this site (no //host, no scheme): no open redirect after login."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else "/"


async def _body(request: web.Request) -> dict[str, Any]:
    """A JSON object body ({} for none); 400 naming the problem otherwise."""
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be JSON"}),
                                 content_type="application/json") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}),
                                 content_type="application/json")
    return data


def _text(data: dict[str, Any], key: str, limit: int = MAX_NOTE) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise web.HTTPBadRequest(text=json.dumps({"error": f"{key} must be a string"}),
                                 content_type="application/json")
    if len(value) > limit:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"{key} is over {limit} characters"}),
                                 content_type="application/json")
    return value.strip()


def add_routes(app: web.Application, store: AsyncHotlineStore, live: Live,
               clock: Callable[[], float],
               acted: Callable[[str | None], Awaitable[None]]) -> None:
    """Add the console to the hotline app."""
    limiter = auth.LoginLimiter()

    # --- login ----------------------------------------------------------------------------

    async def login_form(request: web.Request) -> web.Response:
        token = request.cookies.get(auth.LOGIN_COOKIE) or secrets.token_urlsafe(24)
        resp = _html(request, pages.login_page(lang_of(request), "",
                                               _safe_next(request.query.get("next", "/")),
                                               token))
        resp.set_cookie(auth.LOGIN_COOKIE, token, httponly=True, samesite="Strict",
                        secure=request.secure, path="/login")
        return resp

    async def login(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        lang = lang_of(request)
        cookie = request.cookies.get(auth.LOGIN_COOKIE, "")
        next_url = _safe_next(str(form.get("next", "/")))
        given = str(form.get("csrf", ""))
        if not cookie or not secrets.compare_digest(given.encode(), cookie.encode()):
            return _html(request, pages.login_page(
                lang, "the form expired: log in again", next_url, cookie or
                secrets.token_urlsafe(24)), status=403)
        result = await auth.log_in(store, limiter, request.remote or "?",
                                   str(form.get("username", "")), str(form.get("password", "")),
                                   clock())
        if isinstance(result, str):
            status = 429 if result.startswith("too many") else 401
            return _html(request, pages.login_page(lang, result, next_url, cookie),
                         status=status)
        done = web.HTTPSeeOther(next_url)
        auth.set_session_cookie(request, done, result[0])
        done.del_cookie(auth.LOGIN_COOKIE, path="/login")
        raise done

    async def logout(request: web.Request) -> web.StreamResponse:
        token = request.cookies.get(auth.COOKIE, "")
        await store.call(lambda s: s.close_session(auth.token_hash(token)))
        logger.info("operator %s logged out", auth.current(request).username)
        done = web.HTTPSeeOther("/login")
        done.del_cookie(auth.COOKIE, path="/")
        raise done

    # --- the queue and the live stream ----------------------------------------------------

    async def queue(request: web.Request) -> web.Response:
        op = auth.current(request)
        rows = await store.call(lambda s: s.queue())
        return _html(request, pages.queue_page(lang_of(request), op, op.csrf, rows, clock()))

    async def api_queue(_request: web.Request) -> web.Response:
        return _json([pages.queue_row(a) for a in await store.call(lambda s: s.queue())])

    async def events(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        q: asyncio.Queue[bytes | None] = asyncio.Queue()
        live.subscribers.add(q)
        try:
            await resp.prepare(request)
            await resp.write(b": connected\n\n")
            while True:
                try:
                    message = await asyncio.wait_for(q.get(), HEARTBEAT_S)
                except TimeoutError:
                    await resp.write(b": heartbeat\n\n")
                    continue
                if message is None:  # shutting down, or this page fell behind
                    break
                await resp.write(message)
        except ConnectionResetError:
            pass  # the browser went away
        finally:
            live.subscribers.discard(q)
        return resp

    # --- one alert ------------------------------------------------------------------------

    async def detail(request: web.Request) -> web.Response:
        op = auth.current(request)
        alert_id = request.match_info["alert_id"]
        a = await store.call(lambda s: s.get(alert_id))
        if a is None:
            raise web.HTTPNotFound(text=f"no alert {alert_id}")
        home = a["home_id"]
        audit, previous, intercom, look_ins = await store.call(lambda s: (
            s.audit(alert_id), s.home_alerts(home, 20), s.intercom_events(home, 30),
            s.home_look_ins(home, 10)))
        return _html(request, pages.detail_page(
            lang_of(request), op, op.csrf, a, clock(), audit=audit, previous=previous,
            intercom=intercom, look_ins=look_ins))

    async def home(request: web.Request) -> web.Response:
        op = auth.current(request)
        home_id = request.match_info["home_id"]
        alerts, intercom, look_ins = await store.call(lambda s: (
            s.home_alerts(home_id, 50), s.intercom_events(home_id, 30),
            s.home_look_ins(home_id, 10)))
        if not alerts and not intercom:
            raise web.HTTPNotFound(text=f"no home {home_id}")
        return _html(request, pages.home_page(lang_of(request), op, op.csrf, home_id, alerts,
                                              intercom, look_ins))

    async def act(request: web.Request, action: str) -> web.Response:
        op = auth.current(request)
        data = await _body(request)
        alert_id = request.match_info["alert_id"]
        note = _text(data, "note")
        outcome = data.get("outcome")
        if outcome is not None and not isinstance(outcome, str):
            return _json({"error": "outcome must be a string"}, 400)
        detail: dict[str, Any] = {}
        if action == "dispatched":
            detail = {"target": data.get("target"), "who": _text(data, "who", 200)}
        try:
            row = await store.call(lambda s: s.act(alert_id, action, op.username, outcome,
                                                   note, clock(), detail))
        except ActionError as e:
            return _json({"error": str(e)}, e.status)
        logger.info("alert %s %s by %s", alert_id, action, op.username)
        live.publish("alert", row)
        await acted(row["gateway_id"])
        return _json(row)

    async def accept(request: web.Request) -> web.Response:
        return await act(request, "accepted")

    async def resolve(request: web.Request) -> web.Response:
        return await act(request, "resolved")

    async def note(request: web.Request) -> web.Response:
        return await act(request, "note")

    async def dispatch(request: web.Request) -> web.Response:
        return await act(request, "dispatched")

    async def look_in(request: web.Request) -> web.Response:
        op = auth.current(request)
        data = await _body(request)
        home_id = request.match_info["home_id"]
        alert_id = _text(data, "alert_id", 100)
        request_id = f"look-{secrets.token_hex(8)}"
        try:
            row = await store.call(lambda s: s.look_in(home_id, alert_id, op.username,
                                                       request_id, clock()))
        except ActionError as e:
            return _json({"error": str(e)}, e.status)
        logger.info("look-in %s at home %s asked by %s", request_id, home_id, op.username)
        if alert_id:
            current = await store.call(lambda s: s.get(alert_id))
            if current is not None:
                live.publish("alert", current)
        await acted(row["gateway_id"])
        return _json(row)

    # --- history and statistics -----------------------------------------------------------

    async def history(request: web.Request) -> web.Response:
        op = auth.current(request)
        rows = await store.call(lambda s: s.history(300))
        return _html(request, pages.history_page(lang_of(request), op, op.csrf, rows))

    async def figures(request: web.Request
                      ) -> tuple[str, str, str, list[dict[str, Any]] | None, str]:
        today = datetime.fromtimestamp(clock(), TZ).date()
        period = request.query.get("period", "day")
        try:
            first, last = stats.parse_range(request.query.get("from"),
                                            request.query.get("to"), today)
            if period not in stats.PERIODS:
                raise stats.RangeError(f"period is one of {', '.join(stats.PERIODS)}")
        except stats.RangeError as e:
            return (request.query.get("from", ""), request.query.get("to", ""), period, None,
                    str(e))
        start, end = stats.bounds(first, last, TZ)
        rows = await store.call(lambda s: s.between(start, end))
        return first.isoformat(), last.isoformat(), period, rows, ""

    async def stats_page(request: web.Request) -> web.Response:
        op = auth.require(request, "supervisor")
        first, last, period, rows, error = await figures(request)
        computed = stats.compute(rows, period, TZ) if rows is not None else None
        return _html(request, pages.stats_page(lang_of(request), op, op.csrf, computed, first,
                                               last, period, error),
                     status=400 if error else 200)

    async def api_stats(request: web.Request) -> web.Response:
        auth.require(request, "supervisor")
        first, last, period, rows, error = await figures(request)
        if rows is None:
            return _json({"error": error}, 400)
        return _json({"from": first, "to": last, "period": period,
                      **stats.compute(rows, period, TZ)})

    async def stats_csv(request: web.Request) -> web.Response:
        auth.require(request, "supervisor")
        first, last, period, rows, error = await figures(request)
        if rows is None:
            return _json({"error": error}, 400)
        return web.Response(
            body=stats.to_csv(rows, period, TZ).encode("utf-8"),
            content_type="text/csv", charset="utf-8",
            headers={"Content-Disposition":
                     f'attachment; filename="anxin-hotline-{first}-{last}.csv"'})

    # --- operators ------------------------------------------------------------------------

    async def operators_page(request: web.Request, message: str = "", error: str = "",
                             status: int = 200) -> web.Response:
        op = auth.current(request)
        rows = await store.call(lambda s: s.operators())
        return _html(request, pages.operators_page(lang_of(request), op, op.csrf, rows,
                                                   message, error), status=status)

    async def operators(request: web.Request) -> web.Response:
        return await operators_page(request)

    async def add_operator(request: web.Request) -> web.Response:
        op = auth.require(request, "supervisor")
        as_json = request.content_type == "application/json"
        data = await _body(request) if as_json else dict(await request.post())
        username, role = str(data.get("username", "")).strip(), str(data.get("role", ""))
        problem = auth.username_problem(username)
        if problem is None and role not in auth.ROLES:
            problem = f"role is one of {', '.join(auth.ROLES)}"
        if problem is None and not auth.can(op.role, role):
            problem = f"a {op.role} cannot create a {role}"
        password = auth.new_password()
        if problem is None:
            hashed = auth.hash_password(password)
            try:
                await store.call(lambda s: s.add_operator(username, role, hashed, clock()))
            except ValueError as e:
                problem = str(e)
        if problem is not None:
            return (_json({"error": problem}, 400) if as_json
                    else await operators_page(request, error=problem, status=400))
        logger.info("operator %s (%s) created by %s", username, role, op.username)
        if as_json:
            return _json({"username": username, "role": role, "password": password})
        return await operators_page(
            request, message=f"{username}: {password}  (shown once / 只显示一次)")

    async def change_operator(request: web.Request) -> web.Response:
        op = auth.require(request, "supervisor")
        username = request.match_info["username"]
        form = await request.post()
        do = str(form.get("do", ""))
        target = await store.call(lambda s: s.operator(username))
        if target is None:
            return await operators_page(request, error=f"no operator {username}", status=404)
        if username == op.username or not auth.can(op.role, target["role"]):
            return await operators_page(request, error=f"you cannot change {username}",
                                        status=403)
        message = ""
        if do == "role":
            role = str(form.get("role", ""))
            if role not in auth.ROLES or not auth.can(op.role, role):
                return await operators_page(request, error=f"cannot give the role {role!r}",
                                            status=400)
            await store.call(lambda s: s.update_operator(username, role=role))
        elif do == "disable":
            await store.call(lambda s: s.update_operator(username, disabled_at=clock()))
        elif do == "enable":
            await store.call(lambda s: s.update_operator(username, enable=True))
        elif do == "reset":
            password = auth.new_password()
            hashed = auth.hash_password(password)
            await store.call(lambda s: s.update_operator(username, password_hash=hashed))
            message = f"{username}: {password}  (shown once / 只显示一次)"
        else:
            return await operators_page(request, error=f"unknown change {do!r}", status=400)
        logger.info("operator %s: %s by %s", username, do, op.username)
        return await operators_page(request, message=message or f"{username}: {do} ✓")

    async def change_password(request: web.Request) -> web.Response:
        op = auth.current(request)
        form = await request.post()
        current, new = str(form.get("current", "")), str(form.get("new", ""))
        row = await store.call(lambda s: s.operator(op.username))
        if row is None or not auth.check_password(current, row["password_hash"]):
            return await operators_page(request, error="the current password is wrong",
                                        status=400)
        problem = auth.password_problem(new)
        if problem:
            return await operators_page(request, error=problem, status=400)
        hashed = auth.hash_password(new)
        # Changing it ends every session of this operator, this one too: log in again.
        await store.call(lambda s: s.update_operator(op.username, password_hash=hashed))
        logger.info("operator %s changed their password", op.username)
        raise web.HTTPSeeOther("/login")

    # --- JSON reads -------------------------------------------------------------------------

    async def api_alerts(_request: web.Request) -> web.Response:
        return _json(await store.call(lambda s: s.alerts()))

    async def api_alert(request: web.Request) -> web.Response:
        alert_id = request.match_info["alert_id"]
        row = await store.call(lambda s: s.get(alert_id))
        if row is None:
            return _json({"error": "no such alert"}, 404)
        return _json(row)

    async def api_audit(request: web.Request) -> web.Response:
        alert_id = request.match_info["alert_id"]
        return _json(await store.call(lambda s: s.audit(alert_id)))

    async def api_rejected(_request: web.Request) -> web.Response:
        return _json(await store.call(lambda s: s.rejections()))

    async def api_gateways(_request: web.Request) -> web.Response:
        return _json(await store.call(lambda s: s.gateways()))

    async def api_notifications(_request: web.Request) -> web.Response:
        return _json(await store.call(lambda s: s.notifications()))

    r = app.router
    r.add_get("/login", login_form)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/", queue)
    r.add_get("/api/queue", api_queue)
    r.add_get("/events", events)
    r.add_get("/alerts/{alert_id}", detail)
    r.add_get("/homes/{home_id}", home)
    r.add_post("/api/alerts/{alert_id}/accept", accept)
    r.add_post("/api/alerts/{alert_id}/resolve", resolve)
    r.add_post("/api/alerts/{alert_id}/note", note)
    r.add_post("/api/alerts/{alert_id}/dispatch", dispatch)
    r.add_post("/api/homes/{home_id}/look-in", look_in)
    r.add_get("/history", history)
    r.add_get("/stats", stats_page)
    r.add_get("/stats.csv", stats_csv)
    r.add_get("/api/stats", api_stats)
    r.add_get("/operators", operators)
    r.add_post("/operators", add_operator)
    r.add_post("/operators/{username}", change_operator)
    r.add_post("/password", change_password)
    r.add_get("/api/alerts", api_alerts)
    r.add_get("/api/alerts/{alert_id}", api_alert)
    r.add_get("/api/alerts/{alert_id}/audit", api_audit)
    r.add_get("/api/rejected", api_rejected)
    r.add_get("/api/gateways", api_gateways)
    r.add_get("/api/notifications", api_notifications)

