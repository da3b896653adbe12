"""The operator console: login, sessions, CSRF, roles, the first admin, actions and their
audit, look-ins and intercom events, statistics and their CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import sqlite3
import time

import aiomqtt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerts import wire
from hotline import auth, server
from hotline import store as store_mod
from hotline.app import MQTT_LINK, PUBLIC, make_app
from hotline.i18n import TZ
from hotline.protocol import ConsoleStore
from hotline.server import main, serve
from hotline.store import AsyncHotlineStore, HotlineStore
from tests._hotline import PASSWORD, add_operator, headers, login, session
from tests._http import wait_healthy
from tests._mosquitto import free_port
from tests.test_hotline import NOW, SECRET, body, feedback_headers, signed

AID = "01JDTEST0000000000000000AA"


@pytest.fixture
async def app_parts(tmp_path):
    db = tmp_path / "hotline.db"
    add_operator(db, "admin", "admin")
    add_operator(db, "sup", "supervisor")
    add_operator(db, "op1", "operator")
    now = [NOW]
    store = await AsyncHotlineStore(db).open()
    c = TestClient(TestServer(make_app(SECRET, store, clock=lambda: now[0])))
    await c.start_server()
    try:
        yield c, now
    finally:
        await c.close()
        await store.close()


@pytest.fixture
async def anon(app_parts):
    return app_parts[0]


async def deliver(c, **over) -> dict:
    raw, h = signed(body(**over))
    r = await c.post("/alerts", data=raw, headers=h)
    assert r.status == 200, await r.text()
    return await r.json()


async def test_every_route_but_the_signed_and_login_ones_refuses_an_anonymous_request(anon):
    app = anon.server.app
    checked = 0
    for route in app.router.routes():
        path = route.resource.canonical
        if (route.method, path) in PUBLIC or route.method == "HEAD":
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        r = await anon.request(route.method, url, allow_redirects=False,
                               headers={"Accept": "text/html"})
        assert r.status in (303, 401), f"{route.method} {path} answered {r.status}"
        if r.status == 303:
            assert r.headers["Location"].startswith("/login?next=")
        checked += 1
    assert checked >= 24
    # the machine routes refuse what is not signed, the login page is open
    assert (await anon.post("/alerts", data=b"{}")).status == 401
    assert (await anon.post("/intercom", data=b"{}")).status == 401
    assert (await anon.get("/feedback?gateway_id=g")).status == 401
    login_page = await anon.get("/login")
    assert login_page.status == 200
    csp = login_page.headers["Content-Security-Policy"]
    assert "script-src 'nonce-" in csp and "frame-ancestors 'none'" in csp


async def test_login_wrong_password_rate_limit_and_logout(anon, caplog):
    # a form without its CSRF token is refused
    r = await anon.post("/login", data={"username": "op1", "password": PASSWORD})
    assert r.status == 403
    await anon.get("/login")
    token = anon.session.cookie_jar.filter_cookies(anon.make_url("/login"))[
        auth.LOGIN_COOKIE].value
    for _ in range(auth.MAX_FAILURES_ADDR):
        r = await anon.post("/login", data={"csrf": token, "username": "op1",
                                            "password": "wrong-password"})
        assert r.status == 401 and "wrong username or password" in await r.text()
    r = await anon.post("/login", data={"csrf": token, "username": "op1",
                                        "password": PASSWORD})
    assert r.status == 429 and "too many failed logins" in await r.text()
    assert "wrong-password" not in caplog.text and PASSWORD not in caplog.text


def test_failed_logins_lock_a_username_whatever_the_address():
    limiter = auth.LoginLimiter()
    for i in range(auth.MAX_FAILURES_USER):
        assert limiter.wait(f"10.0.0.{i}", "op1", NOW) == 0
        limiter.failed(f"10.0.0.{i}", "op1", NOW)
    assert limiter.wait("10.0.0.99", "op1", NOW + 1) == auth.LOCK_USER_S - 1
    assert limiter.wait("10.0.0.99", "op2", NOW + 1) == 0  # others still log in
    assert limiter.wait("10.0.0.99", "op1", NOW + auth.LOCK_USER_S + 1) == 0
    limiter.succeeded("10.0.0.99", "op1")
    assert "op1" not in limiter.by_user


async def test_session_cookie_flags_csrf_and_logout(anon):
    csrf = await login(anon, username="op1")
    cookie = next(c for c in anon.session.cookie_jar if c.key == auth.COOKIE)
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    await deliver(anon)
    # no CSRF token, a wrong one: refused, nothing changed
    r = await anon.post(f"/api/alerts/{AID}/accept", json={})
    assert r.status == 403 and "CSRF" in (await r.json())["error"]
    r = await anon.post(f"/api/alerts/{AID}/accept", json={}, headers=headers("x" + csrf))
    assert r.status == 403
    assert (await (await anon.get(f"/api/alerts/{AID}")).json())["state"] == "received"
    r = await anon.post(f"/api/alerts/{AID}/accept", json={}, headers=headers(csrf))
    assert r.status == 200 and (await r.json())["operator"] == "op1"
    # logging out ends the session on the server, not just in the browser
    token = cookie.value
    r = await anon.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert r.status == 303
    anon.session.cookie_jar.update_cookies({auth.COOKIE: token})
    assert (await anon.get("/api/queue")).status == 401


async def test_roles_operators_cannot_see_statistics_or_manage(anon):
    csrf = await login(anon, username="op1")
    assert (await anon.get("/stats")).status == 403
    assert (await anon.get("/stats.csv")).status == 403
    r = await anon.post("/operators", json={"username": "x", "role": "operator"},
                        headers=headers(csrf))
    assert r.status == 403
    assert (await anon.get("/operators")).status == 200  # their own password only
    assert 'id="operators"' not in await (await anon.get("/operators")).text()


async def test_supervisor_adds_an_operator_who_logs_in_with_the_password_shown_once(anon):
    csrf = await login(anon, username="sup")
    r = await anon.post("/operators", json={"username": "李接警员", "role": "operator"},
                        headers=headers(csrf))
    made = await r.json()
    assert r.status == 200 and made["role"] == "operator" and len(made["password"]) == 19
    r = await anon.post("/operators", json={"username": "boss", "role": "admin"},
                        headers=headers(csrf))
    assert r.status == 400 and "cannot create a admin" in (await r.json())["error"]
    r = await anon.post("/operators", json={"username": "two words", "role": "operator"},
                        headers=headers(csrf))
    assert r.status == 400 and "no spaces" in (await r.json())["error"]
    r = await anon.post("/operators", json={"username": "李接警员", "role": "operator"},
                        headers=headers(csrf))
    assert r.status == 400 and "already exists" in (await r.json())["error"]
    c2 = TestClient(anon.server)  # another browser: the new operator
    try:
        await login(c2, username="李接警员", password=made["password"])
        # the supervisor disables them: their session ends at once
        r = await anon.post("/operators/%E6%9D%8E%E6%8E%A5%E8%AD%A6%E5%91%98",
                            data={"csrf": csrf, "do": "disable"})
        assert r.status == 200
        assert (await c2.get("/api/queue")).status == 401
    finally:
        await c2.session.close()


async def test_actions_are_audited_and_only_allowed_in_order(app_parts):
    c, now = app_parts
    csrf = await login(c, username="op1")
    await deliver(c)

    async def act(action, **data):
        r = await c.post(f"/api/alerts/{AID}/{action}", json=data, headers=headers(csrf))
        return r.status, await r.json()

    status, answer = await act("note", note="x")
    assert status == 409 and answer["error"] == (
        f"请先接警 / accept alert {AID} first: a note needs an operator in charge")
    assert (await act("accept"))[0] == 200
    now[0] += 5
    status, answer = await act("dispatch", target="helicopter")
    assert status == 400 and "dispatch target must be one of" in answer["error"]
    assert (await act("dispatch", target="ambulance_120", who="120 急救中心"))[0] == 200
    assert (await act("note", note="  "))[0] == 400
    assert (await act("note", note="女儿已在路上"))[0] == 200
    now[0] += 60
    assert (await act("resolve", outcome="real_emergency"))[0] == 200
    assert (await act("note", note="late"))[0] == 409
    trail = await (await c.get(f"/api/alerts/{AID}/audit")).json()
    assert [(a["action"], a["operator"], a["at"]) for a in trail] == [
        ("accepted", "op1", NOW), ("dispatched", "op1", NOW + 5), ("note", "op1", NOW + 5),
        ("resolved", "op1", NOW + 65)]
    assert trail[1]["detail"] == {"target": "ambulance_120", "who": "120 急救中心"}
    # the gateway hears only what the wire carries: accepted and resolved
    path = "/feedback?gateway_id=gw-1&after=0&wait=0"
    raw = await (await c.get(path, headers=feedback_headers(path, ts=now[0]))).read()
    msg = wire.decode_feedback(raw)
    assert [e["action"] for e in msg["events"]] == ["accepted", "resolved"]
    page = await (await c.get(f"/alerts/{AID}")).text()
    for words in ("120 急救", "女儿已在路上", "真实紧急情况", "op1"):
        assert words in page


async def test_look_in_goes_to_the_gateway_and_intercom_events_come_back(app_parts):
    c, now = app_parts
    csrf = await login(c, username="op1")
    await deliver(c)
    r = await c.post("/api/homes/home-1/look-in", json={"alert_id": AID},
                     headers=headers(csrf))
    look = await r.json()
    assert r.status == 200 and look["gateway_id"] == "gw-1"
    assert (await c.post("/api/homes/nowhere/look-in", json={},
                         headers=headers(csrf))).status == 404
    path = "/feedback?gateway_id=gw-1&after=0&wait=0"
    raw = await (await c.get(path, headers=feedback_headers(path, ts=now[0]))).read()
    (ev,) = wire.decode_feedback(raw)["events"]
    assert (ev["action"], ev["request_id"], ev["alert_id"], ev["operator"]) == (
        "look_in", look["request_id"], AID, "op1")
    # the intercom rings and is answered: kept once, on the detail page
    events = await c.get("/events")
    await events.content.readline()
    await events.content.readline()
    for n, what in enumerate(("ringing", "answered", "answered")):
        raw = wire.encode_intercom(event_id=f"01JDICOM{min(n, 1):018d}", gateway_id="gw-1",
                                   home_id="home-1", device_id="intercom", event=what,
                                   request_id=look["request_id"], at=NOW, tz=TZ)
        r = await c.post("/intercom", data=raw, headers=wire.signed_headers(SECRET, int(NOW),
                                                                            raw))
        assert r.status == 200 and (await r.json())["duplicate"] is (n == 2)
    async with asyncio.timeout(5):
        assert await events.content.readline() == b"event: intercom\n"
    events.close()
    raw = json.dumps({"schema": wire.INTERCOM_SCHEMA, "event_id": "x"}).encode()
    r = await c.post("/intercom", data=raw, headers=wire.signed_headers(SECRET, int(NOW), raw))
    assert r.status == 400 and (await r.json())["reason"] == "bad_schema"
    page = await (await c.get(f"/alerts/{AID}")).text()
    assert "已接听" in page and "正在呼叫" in page and look["request_id"] in page


async def test_statistics_by_type_outcome_period_district_and_csv(app_parts):
    c, now = app_parts
    csrf = await login(c, username="sup")
    for i, (event, district, accept_s, resolve_s, outcome) in enumerate([
            ("fall", "朝阳区", 30, 600, "real_emergency"),
            ("fall", "朝阳区", 90, 300, "false_alarm"),
            ("smoke", "海淀区", 10, 120, "false_alarm"),
            ("missed_checkin", "", None, None, None)]):
        now[0] = NOW + i
        aid = f"01JDSTAT00000000000000000{i}"
        await deliver(c, alert_id=aid, event=event, district=district,
                      severity=3 if event == "missed_checkin" else 1)
        if accept_s is not None:
            now[0] = NOW + i + accept_s
            await c.post(f"/api/alerts/{aid}/accept", json={}, headers=headers(csrf))
            now[0] += resolve_s
            await c.post(f"/api/alerts/{aid}/resolve", json={"outcome": outcome},
                         headers=headers(csrf))
    await deliver(c, alert_id="01JDSTAT0000000000000000TT", test=True)  # never counted
    day = "2026-11-23"  # NOW in Beijing
    got = await (await c.get(f"/api/stats?from={day}&to={day}")).json()
    assert got["total"]["alerts"] == 4
    assert got["total"]["outcomes"] == {"real_emergency": 1, "false_alarm": 2, "open": 1}
    assert got["by_type"]["fall"]["alerts"] == 2
    assert got["by_outcome"]["false_alarm"]["alerts"] == 2 and got["by_outcome"]["open"][
        "alerts"] == 1
    assert got["by_type"]["fall"]["accept_median_s"] == pytest.approx(60.0)
    assert got["by_district"]["朝阳区"]["alerts"] == 2 and got["by_district"][""]["alerts"] == 1
    assert got["total"]["accept_p90_s"] == pytest.approx(90.0)
    assert got["total"]["resolve_median_s"] == 300
    page = await (await c.get(f"/stats?from={day}&to={day}&period=week")).text()
    assert "2026-W48" in page and "朝阳区" in page
    r = await c.get(f"/stats.csv?from={day}&to={day}")
    assert r.status == 200 and "attachment" in r.headers["Content-Disposition"]
    text = (await r.read()).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    fall = next(x for x in rows if x["event"] == "fall")
    assert (fall["period"], fall["district"], fall["event_zh"], fall["alerts"],
            fall["false_alarm"]) == (day, "朝阳区", "跌倒报警", "2", "1")
    bad = await c.get("/api/stats?from=2026-11-30&to=2026-11-01")
    assert bad.status == 400 and "is after" in (await bad.json())["error"]
    assert (await c.get("/stats.csv?from=yesterday")).status == 400


async def test_first_start_creates_admin_with_a_password_shown_once(tmp_path, capsys):
    """Not on a terminal (as under systemd, where stdout is the journal): the password goes
    to a file only its owner can read; the output names the file, never the password."""
    port, db = free_port(), tmp_path / "h.db"
    secret_file = tmp_path / "h.db.admin-password"
    for start in range(2):
        task = asyncio.create_task(serve("127.0.0.1", port, SECRET, str(db)))
        async with session() as http:
            await wait_healthy(http, f"http://127.0.0.1:{port}/healthz")
            out = capsys.readouterr().out
            if start == 0:
                assert str(secret_file) in out
                assert secret_file.stat().st_mode & 0o777 == 0o600
                user, password = secret_file.read_text().split()
                assert user == "admin" and password not in out
                await login(http, f"http://127.0.0.1:{port}", "admin", password)
                secret_file.unlink()
            else:
                assert "admin" not in out and not secret_file.exists()  # once only
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    store = HotlineStore(db)
    try:
        (admin,) = store.operators()
        assert admin["role"] == "admin"
        assert password not in store.operator("admin")["password_hash"]
    finally:
        store.close()


def test_first_password_is_printed_on_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(server.sys.stdout, "isatty", lambda: True)
    server.show_first_password("abcd-efgh-ijkl-mnop", str(tmp_path / "h.db"))
    assert "password / 密码: abcd-efgh-ijkl-mnop" in capsys.readouterr().out
    assert not (tmp_path / "h.db.admin-password").exists()


def test_cli_adds_operators_and_resets_passwords(tmp_path, capsys):
    db = str(tmp_path / "h.db")
    assert main(["--db", db, "--add-operator", "王主管", "--role", "supervisor"]) == 0
    first = capsys.readouterr().out.split("密码 ")[1].split()[0]
    assert main(["--db", db, "--add-operator", "王主管"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["--db", db, "--reset-password", "王主管"]) == 0
    second = capsys.readouterr().out.split("密码 ")[1].split()[0]
    assert main(["--db", db, "--reset-password", "nobody"]) == 1
    store = HotlineStore(db)
    try:
        stored = store.operator("王主管")
        assert stored["role"] == "supervisor"
        assert auth.check_password(second, stored["password_hash"])
        assert not auth.check_password(first, stored["password_hash"])
    finally:
        store.close()


def test_passwords_are_scrypt_hashed_and_checked():
    h = auth.hash_password("a-long-password")
    assert h.startswith("scrypt$") and "a-long-password" not in h
    assert auth.check_password("a-long-password", h)
    assert not auth.check_password("a-long-passworD", h)
    assert not auth.check_password("x", "md5$00$00")
    assert auth.hash_password("same") != auth.hash_password("same")  # salted
    assert auth.new_password() != auth.new_password()


async def test_home_page_look_in_without_an_alert(app_parts):
    c, now = app_parts
    csrf = await login(c, username="op1")
    await deliver(c, address="田林路 8 号", contacts=[
        {"name": "王丽", "relation": "女儿", "phone": "13800000001"}])
    page = await (await c.get("/homes/home-1")).text()
    assert "田林路 8 号" in page and "tel:13800000001" in page and AID in page
    assert (await c.get("/homes/nowhere")).status == 404
    r = await c.post("/api/homes/home-1/look-in", json={}, headers=headers(csrf))
    look = await r.json()
    assert r.status == 200 and look["alert_id"] == ""
    path = "/feedback?gateway_id=gw-1&after=0&wait=0"
    raw = await (await c.get(path, headers=feedback_headers(path, ts=now[0]))).read()
    (ev,) = wire.decode_feedback(raw)["events"]
    assert (ev["action"], ev["alert_id"], ev["request_id"]) == ("look_in", "", look["request_id"])
    assert look["request_id"] in await (await c.get("/homes/home-1")).text()


async def test_intercom_events_over_the_mqtt_uplink(tmp_path, mosquitto):
    host, port = mosquitto
    add_operator(tmp_path / "h.db", "op1", "operator")
    store = await AsyncHotlineStore(tmp_path / "h.db").open()
    app = make_app(SECRET, store, supervision_s=0, mqtt_url=f"mqtt://{host}:{port}",
                   mqtt_prefix="icom-up")
    c = TestClient(TestServer(app))
    await c.start_server()
    try:
        await login(c, username="op1")
        await asyncio.wait_for(app[MQTT_LINK].connected.wait(), 10)
        body = wire.encode_intercom(event_id="01JDICOMMQTT0000000000000A", gateway_id="gw-m",
                                    home_id="home-m", device_id="intercom", event="call",
                                    request_id=None, at=time.time(), tz=TZ)
        async with aiomqtt.Client(host, port) as m:
            for payload in (b"{not json", wire.envelope(SECRET, int(time.time()), body)):
                await m.publish("icom-up/gw-m/intercom", payload, qos=1)
        async with asyncio.timeout(10):
            while not await store.call(lambda s: s.intercom_events("home-m")):
                await asyncio.sleep(0.05)
        (ev,) = await store.call(lambda s: s.intercom_events("home-m"))
        assert (ev["event"], ev["device_id"]) == ("call", "intercom")
        (bad,) = await (await c.get("/api/rejected")).json()
        assert bad["reason"] == "bad_json" and bad["remote"] == "mqtt:icom-up/gw-m/intercom"
    finally:
        await c.close()
        await store.close()


def test_sqlite_store_implements_the_console_store_interface(tmp_path):
    store = HotlineStore(tmp_path / "h.db")
    try:
        assert isinstance(store, ConsoleStore)
        missing = [name for name in dir(ConsoleStore) if not name.startswith("_")
                   and not callable(getattr(store, name, None))]
        assert missing == []
    finally:
        store.close()


def test_an_older_database_migrates_with_districts_and_audit_homes(tmp_path):
    """A receiver's database from before the console keeps its alerts and actions."""
    db = tmp_path / "old.db"
    old = [m for m in store_mod.MIGRATIONS if m[0] < "006"]
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL "
                "DEFAULT CURRENT_TIMESTAMP)")
    for name, fn in old:
        fn(con)
        con.execute("INSERT INTO migrations (name) VALUES (?)", (name,))
    b = body(district="徐汇区")
    con.execute("INSERT INTO alerts (alert_id, gateway_id, home_id, sequence, code, event, "
                "severity, room, device_id, test, occurred_at, raised_at, body, received_at, "
                "last_received_at) VALUES (?, 'gw-1', 'home-1', 1, 111, 'smoke', 1, NULL, "
                "NULL, 0, '', '', ?, ?, ?)", (AID, json.dumps(b), NOW, NOW))
    con.execute("INSERT INTO actions (alert_id, gateway_id, action, operator, at) "
                "VALUES (?, 'gw-1', 'accepted', '王', ?)", (AID, NOW))
    con.close()
    store = HotlineStore(db)
    try:
        assert store.get(AID)["district"] == "徐汇区"
        assert [a["action"] for a in store.audit(AID)] == ["accepted"]
        assert store.db.execute("SELECT home_id FROM actions").fetchone()[0] == "home-1"
    finally:
        store.close()


@pytest.mark.parametrize("trusted", [True, False])
async def test_behind_a_trusted_tls_proxy_cookies_are_secure_and_limits_count_the_client(
        tmp_path, trusted):
    db = tmp_path / "hotline.db"
    add_operator(db, "op1", "operator")
    store = await AsyncHotlineStore(db).open()
    proxies = frozenset({"127.0.0.1"}) if trusted else frozenset()
    c = TestClient(TestServer(make_app(SECRET, store, clock=lambda: NOW,
                                       trusted_proxies=proxies)))
    await c.start_server()
    try:
        cookie: dict[str, str] = {}

        def via(client: str) -> dict[str, str]:
            # (a Secure cookie comes back only over https: between browser and proxy)
            return {"X-Forwarded-Proto": "https", "X-Forwarded-For": f"198.51.100.9, {client}",
                    **cookie}

        page = await c.get("/login", headers=via("203.0.113.7"))
        assert ("Secure" in page.headers["Set-Cookie"]) is trusted
        token = page.cookies[auth.LOGIN_COOKIE].value
        cookie["Cookie"] = f"{auth.LOGIN_COOKIE}={token}"
        for _ in range(auth.MAX_FAILURES_ADDR):
            await c.post("/login", headers=via("203.0.113.7"), data={
                "csrf": token, "username": "nobody", "password": "wrong-password"})
        # another operator behind the same proxy, from another address
        r = await c.post("/login", headers=via("203.0.113.8"), allow_redirects=False, data={
            "csrf": token, "username": "op1", "password": PASSWORD})
        if trusted:
            assert r.status == 303
            assert "Secure" in r.headers["Set-Cookie"]
        else:  # the headers are anyone's to send: not believed, one address for all
            assert r.status == 429
    finally:
        await c.close()
        await store.close()
