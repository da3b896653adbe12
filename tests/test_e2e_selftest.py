"""The weekly button self-test end to end: the speaker asks, the first press travels to the
centre as a test, a second press is a real call, a silent button becomes a maintenance item
until it is heard again, and each button's record shows it."""

from __future__ import annotations

import asyncio
import json
import time

import aiomqtt
import pytest

from alerts.selftest import ASK, FAILED
from gateway.cli import main
from gateway.store import Store
from tests._mosquitto import free_port
from tests.test_e2e_gateway import (
    TS0215A_PRESS,
    TS0215A_RESET,
    gateway,
    hotline,
    publish,
    write_config,
)

pytestmark = pytest.mark.mosquitto

PENDANT_PRESS = b'{"action":"single","battery":90,"linkquality":80}'


async def test_weekly_self_test(tmp_path, mosquitto, capsys):
    _, port = mosquitto
    hport, gid = free_port(), "gw-selftest"
    cfg = write_config(tmp_path, port, hport, gateway_id=gid)
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(
        'address = "测试路 1 号"', f'address = "测试路 1 号"\nspeaker_topic = "{gid}-speaker"'),
        encoding="utf-8")
    said: list[str] = []
    async with hotline(hport, tmp_path / "hotline.db") as hl, gateway(cfg) as gw, \
            aiomqtt.Client("127.0.0.1", port) as speaker:
        await speaker.subscribe(f"{gid}-speaker", qos=1)

        async def listen() -> None:
            async for m in speaker.messages:
                said.append(json.loads(m.payload)["say"])

        listener = asyncio.create_task(listen())
        try:
            assert gw.self_test_cfg.buttons == ("sos-bedside", "button-pendant")
            now = time.time()
            assert await gw.start_self_test(now)
            for _ in range(50):
                if said:
                    break
                await asyncio.sleep(0.05)
            assert said == [ASK]

            # the first press is the test, and proves the whole path to the centre
            await publish(port, (f"{gid}/bedside_sos", TS0215A_PRESS),
                          (f"{gid}/bedside_sos", TS0215A_RESET))
            (test,) = await hl.wait_for(1)
            assert test["event"] == "sos" and test["test"] in (True, 1)
            assert test["body"]["evidence"]["weekly_self_test"] is True
            # a second press of the same button during the test is someone needing help
            await publish(port, (f"{gid}/bedside_sos", TS0215A_PRESS),
                          (f"{gid}/bedside_sos", TS0215A_RESET))
            got = await hl.wait_for(2)
            assert any(a["event"] == "sos" and a["test"] in (False, 0) for a in got), got

            # the window ends; the pendant never sent anything
            await gw.self_test_tick(now + 30 * 60 + 1)
            for _ in range(50):
                if FAILED in said:
                    break
                await asyncio.sleep(0.05)
            assert said[-1] == FAILED
            failed = [i for i in await gw.store.call(Store.troubles)
                      if i.event == "self_test_failed"]
            assert [i.device for i in failed] == ["button-pendant"]
            (rec,) = await gw.store.call(Store.records, "self_test")
            assert rec["failed"] == ["button-pendant"] and rec["pressed"]["sos-bedside"]

            # the record per button, on the command line
            assert main(["self-test", "status", "--config", str(cfg), "--json"]) == 1
            rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
            assert rows["button-pendant"]["last_self_test_failed"]
            assert rows["button-pendant"]["self_tests"][0]["passed"] is False
            assert rows["sos-bedside"]["self_tests"][0]["passed"] is True
            assert rows["sos-bedside"]["alerts"] >= 1  # the real call (tests not counted)
            assert main(["self-test", "status", "--config", str(cfg)]) == 1
            text = capsys.readouterr().out
            assert "weekly self-test: on (weekday 2, 10:00, 30 min)" in text
            assert any(line.startswith("button-pendant") and line.endswith("✗")
                       for line in text.splitlines())

            # the pendant pressed later: it works, the trouble is over
            await publish(port, (f"{gid}/pendant_button", PENDANT_PRESS))
            for _ in range(100):
                if ("button-pendant", "self_test_failed") not in gw._troubles:
                    break
                await asyncio.sleep(0.05)
            assert not [i for i in await gw.store.call(Store.troubles)
                        if i.event == "self_test_failed"]
        finally:
            listener.cancel()
            with pytest.raises(asyncio.CancelledError):
                await listener


def test_self_test_needs_a_speaker(tmp_path, capsys):
    cfg = write_config(tmp_path, 1, 2, gateway_id="gw-selftest-mute")
    assert main(["self-test", "start", "--config", str(cfg)]) == 1
    assert "speaker_topic" in capsys.readouterr().err
