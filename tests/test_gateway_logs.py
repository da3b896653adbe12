"""No secret reaches the log: a gateway logging at DEBUG, behind a broker that wants its
password, with a technician logging in (a wrong code, then the right one) and an SOS going
to the hotline, writes none of the broker password, the hotline's HMAC key, the technician's
code (as typed or as stored) or the session token into any log record."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time

import aiohttp
import aiomqtt
import pytest

from gateway.config import load
from gateway.runtime import Gateway
from gateway.store import Store
from gateway.web.app import CODE_SETTING
from gateway.web.auth import hash_code
from tests._config import SECRET
from tests._mosquitto import free_port, running_mosquitto
from tests.test_e2e_gateway import TS0215A_PRESS, TS0215A_RESET, hotline, write_config

pytestmark = pytest.mark.mosquitto

BROKER_PASSWORD = "mq-7f3a91c2-broker"
CODE = "QWER-TYUP-ASDF"
WRONG = "ZXCV-BNMK-LPQR"


async def test_no_secret_reaches_the_log(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    passwd = tmp_path / "passwd"
    for i, (user, pw) in enumerate((("anxin-gateway", BROKER_PASSWORD), ("z2m", "z2m-pw"))):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(passwd),
                        user, pw], check=True, capture_output=True)
    (tmp_path / "mqtt-password").write_text(BROKER_PASSWORD + "\n")
    gid, hport, web = "gw-logs", free_port(), free_port()
    with running_mosquitto(listener_options=f"allow_anonymous false\npassword_file {passwd}"
                           ) as (_, port):
        cfg = write_config(tmp_path, port, hport, gateway_id=gid)
        cfg.write_text(cfg.read_text().replace(
            "[mqtt]\n", f'[mqtt]\nusername = "anxin-gateway"\n'
                        f'password_file = "{tmp_path / "mqtt-password"}"\n', 1)
            + f"\n[web]\nenabled = true\nport = {web}\n")
        config = load(cfg)
        store = Store(config.data_path() / "anxin.db")
        store.set_setting(CODE_SETTING, hash_code(CODE), time.time())
        stored_hash = store.setting(CODE_SETTING)
        store.close()
        gw = Gateway(config)
        await gw.start()
        try:
            async with hotline(hport, tmp_path / "hotline.db") as hl, \
                    aiohttp.ClientSession() as http:
                base = f"http://127.0.0.1:{web}"
                async with http.post(f"{base}/login", data={"code": WRONG}) as r:
                    assert r.status == 401
                async with http.post(f"{base}/login", data={"code": CODE},
                                     allow_redirects=False) as r:
                    assert r.status == 303
                    token = r.cookies[next(iter(r.cookies))].value
                async with aiomqtt.Client("127.0.0.1", port, username="z2m",
                                          password="z2m-pw") as c:
                    await c.publish(f"{gid}/bedside_sos", TS0215A_PRESS, qos=1)
                    await c.publish(f"{gid}/bedside_sos", TS0215A_RESET, qos=1)
                (alert,) = await hl.wait_for(1)
                assert alert["event"] == "sos"
                await asyncio.sleep(0.3)  # the delivery's own log lines
        finally:
            await gw.stop()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "sos" in text.lower()  # the log was captured at all
    for secret in (BROKER_PASSWORD, SECRET, CODE, CODE.replace("-", ""), WRONG,
                   WRONG.replace("-", ""), token, stored_hash):
        assert secret not in text, f"{secret!r} is in the log"
