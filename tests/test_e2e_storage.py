"""A full disk, end to end on real parts: Mosquitto, the gateway, the hotline receiver, SQLite.

The store is filled to a real SQLite limit (PRAGMA max_page_count: SQLite then refuses writes
with SQLITE_FULL, "database or disk is full", exactly as on a full SD card). An SOS still
reaches the hotline; the technician's status page and `anxin status` say 存储已满 / storage
full; when room returns, the alert and its delivery are written to the store.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from gateway.cli import main
from gateway.config import load
from gateway.store import Store
from gateway.web.app import CODE_SETTING
from gateway.web.auth import hash_code
from tests._mosquitto import free_port
from tests.test_e2e_gateway import (
    HS1SA_QUIET,
    TS0215A_PRESS,
    TS0215A_RESET,
    gateway,
    gateway_db,
    hotline,
    publish,
    write_config,
)
from tests.test_gateway_retention import fill_to_the_limit

pytestmark = pytest.mark.mosquitto

CODE = "ABCD-EFGH-JKLM"


async def wait_until(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def status_page(port: int) -> str:
    # the session cookie is for 127.0.0.1: an IP address, which aiohttp keeps only if told
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http, \
            http.post(f"http://127.0.0.1:{port}/login", data={"code": CODE}) as r:
        assert r.status == 200
        return await r.text()


async def test_full_disk_sos_still_reaches_the_hotline_and_is_written_when_room_returns(
        tmp_path, mosquitto, capsys):
    _, port = mosquitto
    hport, wport = free_port(), free_port()
    path = write_config(tmp_path, port, hport, gateway_id="gw-full")
    path.write_text(path.read_text() + f"\n[web]\nenabled = true\nport = {wport}\n")
    cfg = load(path)
    store = Store(cfg.data_path() / "anxin.db")
    store.set_setting(CODE_SETTING, hash_code(CODE), time.time())
    store.close()
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(path) as gw:
        await gw.store.call(fill_to_the_limit)
        store = gw.store.store
        assert store is not None and store.full_since is not None
        store.room_after_s = 0.0  # room back: the episode ends at the next write
        dropped = store.dropped["observations"]
        await publish(port, ("gw-full/kitchen_smoke", HS1SA_QUIET),
                      ("gw-full/bedside_sos", TS0215A_PRESS),
                      ("gw-full/bedside_sos", TS0215A_RESET))
        (alert,) = await hl.wait_for(1, timeout=20)
        assert (alert["code"], alert["device_id"]) == (101, "sos-bedside")

        async def delivered() -> bool:
            return (await gw.store.call(Store.outbox_depth)) == {} and (
                await gw.store.call(Store.get_alert, alert["alert_id"])).state.value == (
                    "delivered")
        await wait_until(delivered)
        # nothing of it is in the database yet: held in memory, and sent from there
        with gateway_db(tmp_path) as db:
            assert db.execute("SELECT count(*) FROM alerts WHERE event='sos'").fetchone() == (0,)

        async def counted() -> bool:
            return store.dropped["observations"] > dropped  # the smoke detector's report
        await wait_until(counted)
        st = (await gw.status())["storage"]
        assert st["full_since"] is not None and st["pending_alerts"] == 1
        page = await status_page(wport)
        assert "存储已满 STORAGE FULL" in page and "database or disk is full" in page
        assert "2 在线 online /\n5" in page  # the smoke detector and the button were heard
        assert "紧急呼叫" in page  # the SOS, held in memory, among the recent alerts

        async def status_json_says_full() -> bool:  # written every 2 s: this one, since
            text = (cfg.data_path() / "status.json").read_text(encoding="utf-8")
            return json.loads(text)["storage"]["pending_alerts"] == 1
        await wait_until(status_json_says_full)
        capsys.readouterr()
        assert main(["status", "--config", str(path)]) == 1
        out = capsys.readouterr().out
        assert "✗ 存储已满 STORAGE FULL since" in out and "held in memory: 1 alert(s)" in out
        assert "devices: 5 configured, 2 online" in out
        assert "last alert: sos (delivered)" in out

        # room returns: the next write takes what memory held to the database first
        await gw.store.call(lambda s: s.conn.execute("PRAGMA max_page_count=1073741823"))
        await publish(port, ("gw-full/kitchen_smoke", HS1SA_QUIET))

        async def written() -> bool:
            return (await gw.store.call(Store.storage_state))["full_since"] is None
        await wait_until(written)
        assert "存储已满" not in await status_page(wport)
        await asyncio.sleep(0.3)
        assert len(await hl.alerts()) == 1  # sent once, not again after it was written
    with gateway_db(tmp_path) as db:
        assert db.execute("SELECT state FROM alerts WHERE event='sos'").fetchall() == [
            ("delivered",)]
        assert db.execute("SELECT count(*), count(acked_at) FROM outbox o JOIN alerts a "
                          "ON a.id = o.alert_id WHERE a.event='sos'").fetchone() == (1, 1)


async def test_a_status_file_that_cannot_be_written_stops_nothing(tmp_path, mosquitto, caplog):
    """On a full card `status.json` cannot be written either (ENOSPC): the writer says so
    once and goes on, and so does the gateway; alerts still go out."""
    _, port = mosquitto
    hport = free_port()
    path = write_config(tmp_path, port, hport, gateway_id="gw-nostatus")
    (tmp_path / "data" / "status.json").mkdir(parents=True)  # os.replace onto it: OSError
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(path) as gw:
        await asyncio.sleep(2 * 2.0 + 0.5)  # the writer has tried a few times
        await publish(port, ("gw-nostatus/bedside_sos", TS0215A_PRESS),
                      ("gw-nostatus/bedside_sos", TS0215A_RESET))
        (alert,) = await hl.wait_for(1, timeout=20)
        assert alert["code"] == 101
        assert not [t.get_name() for t in gw._tasks if t.done()]  # nothing died
        assert "status.json" in gw.file_errors.open
    said = [r for r in caplog.records if "status.json: not written" in r.getMessage()]
    assert len(said) == 1
