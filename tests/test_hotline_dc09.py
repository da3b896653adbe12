"""The hotline's SIA DC-09 receiver: frames made by alerts/dc09.py (the gateway's own
transmitter code) read back, every refusal answered as DC-09 says, and the real gateway's
DC-09 transport into the console's queue over TCP."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerts import dc09
from hotline import dc09 as rx
from hotline.app import make_app
from hotline.i18n import TZ
from hotline.server import main
from hotline.store import AsyncHotlineStore
from tests._hotline import add_operator, login
from tests._mosquitto import free_port
from tests.test_e2e_gateway import TS0215A_PRESS, gateway, publish

KEY = "0123456789ABCDEF0123456789ABCDEF"
NOW = 1_795_400_000.0
ACCOUNTS = {"C0FFEE": rx.Account("C0FFEE", "home-7", KEY.encode()),
            "1234": rx.Account("1234", "home-8")}


def frame(fmt: str, account: str = "1234", *, key: str | None = None, sequence: int = 42,
          ts: float = NOW, event: dc09.Event | None = None) -> bytes:
    if fmt == "NULL":
        return dc09.null_frame(sequence=sequence, account=account, ts=ts,
                               key=key.encode() if key else None)
    data = dc09.event_data(fmt, account, event or dc09.Event(111, "FA", zone=5))
    return dc09.frame(message_id=fmt, sequence=sequence, account=account, data=data, ts=ts,
                      key=key.encode() if key else None)


@pytest.mark.parametrize("fmt", dc09.FORMATS)
@pytest.mark.parametrize(("account", "key"), [("1234", None), ("C0FFEE", KEY)])
def test_events_are_read_and_acknowledged_in_kind(fmt, account, key):
    msg = rx.parse(frame(fmt, account, key=key), ACCOUNTS, NOW + 1)
    code, event, zone, partition, restore = rx.event_of(msg)
    assert (code, event, zone, partition, restore) == (111, "smoke", 5, 1, False)
    body = rx.alert_body(msg, code, event, zone, partition, TZ)
    assert (body["home_id"], body["gateway_id"], body["severity"], body["title"]["zh"],
            body["device_id"]) == (ACCOUNTS[account].home_id, f"dc09-{account}", 1, "烟雾报警",
                                   "zone 005")
    reply = dc09.parse_reply(rx.ack(msg, NOW + 1), key.encode() if key else None)
    assert (reply.kind, reply.sequence) == ("ACK", 42)
    assert reply.authentic is (True if key else None)  # an encrypted link gets an encrypted ACK


def test_a_retransmission_is_the_same_alert_and_a_test_is_a_test():
    first = rx.parse(frame("ADM-CID", ts=NOW), ACCOUNTS, NOW)
    again = rx.parse(frame("ADM-CID", ts=NOW + 5), ACCOUNTS, NOW + 5)  # fresh timestamp
    ids = [rx.alert_body(m, *rx.event_of(m)[:4], TZ)["alert_id"] for m in (first, again)]
    assert ids[0] == ids[1]
    drill = rx.parse(frame("SIA-DCS", event=dc09.Event(601, "RX", zone=3)), ACCOUNTS, NOW)
    body = rx.alert_body(drill, *rx.event_of(drill)[:4], TZ)
    assert (body["event"], body["test"], body["severity"]) == ("test_alarm", True, 4)
    restore = rx.parse(frame("ADM-CID", event=dc09.Event(111, "FA", zone=5, restore=True)),
                       ACCOUNTS, NOW)
    assert rx.event_of(restore)[4] is True


@pytest.mark.parametrize(("raw", "reason", "reply"), [
    (frame("ADM-CID").replace(b"#1234|1111", b"#1234|1112"), "bad_crc", None),
    (frame("ADM-CID", "ABCD"), "unknown_account", "DUH"),
    (frame("ADM-CID", "C0FFEE"), "unencrypted", "DUH"),  # its key is configured
    (frame("ADM-CID", "1234", key=KEY), "bad_key", "DUH"),
    (frame("ADM-CID", "C0FFEE", key="FEDCBA9876543210FEDCBA9876543210"), "bad_key", "DUH"),
    (frame("ADM-CID", ts=NOW - 60), "stale", "NAK"),
    (frame("ADM-CID", ts=NOW + 30), "stale", "NAK"),
    (b"hello\r", "bad_frame", None),
])
def test_refusals_are_answered_as_dc09_says(raw, reason, reply):
    with pytest.raises(rx.RefusedError) as e:
        rx.parse(raw, ACCOUNTS, NOW)
    assert e.value.reason == reason and str(e.value)
    if reply is None:
        assert e.value.reply == b""  # a bad CRC gets no answer: the transmitter repeats
    else:
        got = dc09.parse_reply(e.value.reply)
        assert got.kind == reply
        if reply == "NAK":  # with the receiver's clock, for the transmitter to learn
            assert abs(got.receiver_time.timestamp() - NOW) < 1


def test_accounts_file_is_checked(tmp_path):
    (tmp_path / "k").write_text(KEY + "\n")
    path = tmp_path / "accounts.toml"
    path.write_text('[[account]]\nnumber = "c0ffee"\nhome_id = "home-7"\nkey_file = "k"\n'
                    '[[account]]\nnumber = "1234"\nhome_id = "home-8"\n')
    got = rx.load_accounts(path)
    assert got["C0FFEE"].key == KEY.encode() and got["1234"].key is None
    for text, problem in [('[[account]]\nnumber = "xyz"\nhome_id = "h"\n', "3-16 hex digits"),
                          ('[[account]]\nnumber = "123"\n', "home_id is required"),
                          ('[[account]]\nnumber = "123"\nhome_id = "h"\nkey = "short"\n',
                           "16, 24 or 32"),
                          ("[[account]\n", "cannot read")]:
        path.write_text(text)
        with pytest.raises(ValueError, match=problem):
            rx.load_accounts(path)


async def test_the_real_gateway_over_dc09_into_the_queue(tmp_path, mosquitto):
    _, mqtt_port = mosquitto
    port = free_port()
    add_operator(tmp_path / "h.db", "op", "operator")
    store = await AsyncHotlineStore(tmp_path / "h.db").open()
    app = make_app(b"unused", store, supervision_s=0, dc09_listen=("127.0.0.1", port),
                   dc09_accounts={"C0FFEE": rx.Account("C0FFEE", "home-dc09-rx",
                                                       KEY.encode())})
    c = TestClient(TestServer(app))
    await c.start_server()
    cfg = tmp_path / "anxin.toml"
    cfg.write_text(f"""
[gateway]
id = "gw-dc09-rx"
data_dir = "./data"
[mqtt]
url = "mqtt://127.0.0.1:{mqtt_port}"
zigbee2mqtt_base_topic = "gw-dc09-rx"
native_base_topic = "gw-dc09-rx-native"
[home]
id = "home-dc09-rx"
[[devices]]
id = "sos-bedside"
source = "zigbee2mqtt"
topic = "gw-dc09-rx/bedside_sos"
model = "TS0215A_sos"
[[hotline]]
name = "alarm-receiver"
kind = "dc09"
host = "127.0.0.1"
port = {port}
account = "C0FFEE"
format = "SIA-DCS"
key = "{KEY}"
timeout_s = 2
""", encoding="utf-8")
    try:
        await login(c, username="op")
        async with gateway(cfg) as gw:
            await publish(mqtt_port, ("gw-dc09-rx/bedside_sos", TS0215A_PRESS))
            async with asyncio.timeout(10):
                while not (rows := await (await c.get("/api/queue")).json()):
                    await asyncio.sleep(0.05)
            (row,) = rows
            assert (row["event"], row["severity"], row["home_id"], row["gateway_id"]) == (
                "sos", 1, "home-dc09-rx", "dc09-C0FFEE")
            # the gateway had its ACK at the first try (encrypted, with the key)
            await asyncio.sleep(0.5)
            assert gw.senders["alarm-receiver"].failures == 0
        assert await (await c.get("/api/rejected")).json() == []
    finally:
        await c.close()
        await store.close()


async def test_over_tcp_null_supervises_and_refusals_are_kept(tmp_path):
    port = free_port()
    add_operator(tmp_path / "h.db", "op", "operator")
    store = await AsyncHotlineStore(tmp_path / "h.db").open()
    app = make_app(b"unused", store, supervision_s=0, dc09_listen=("127.0.0.1", port),
                   dc09_accounts=ACCOUNTS)
    c = TestClient(TestServer(app))
    await c.start_server()
    try:
        await login(c, username="op")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        now = time.time()

        async def exchange(raw: bytes) -> bytes:
            writer.write(raw)
            await writer.drain()
            return await asyncio.wait_for(reader.readuntil(b"\r"), 5)

        assert dc09.parse_reply(await exchange(frame("NULL", ts=now))).kind == "ACK"
        assert dc09.parse_reply(await exchange(frame("ADM-CID", "ABCD", ts=now))).kind == "DUH"
        # a garbled frame gets no answer; the link stays up for the next one
        writer.write(frame("ADM-CID", ts=now).replace(b"1111", b"1112"))
        reply = await exchange(frame("ADM-CID", sequence=43, ts=now))
        assert dc09.parse_reply(reply).kind == "ACK"
        writer.close()
        (gw,) = await (await c.get("/api/gateways")).json()
        assert (gw["gateway_id"], gw["home_id"], gw["supervised"]) == ("dc09-1234", "home-8", 1)
        reasons = [r["reason"] for r in await (await c.get("/api/rejected")).json()]
        assert reasons == ["bad_crc", "unknown_account"]
        (a,) = await (await c.get("/api/alerts")).json()
        assert (a["event"], a["sequence"], a["home_id"]) == ("smoke", 43, "home-8")
    finally:
        await c.close()
        await store.close()


def test_cli_needs_an_accounts_file_for_dc09(tmp_path, capsys):
    assert main(["--secret", "s", "--dc09-port", "12000"]) == 2
    assert "--dc09-port needs --dc09-accounts" in capsys.readouterr().err
    (tmp_path / "a.toml").write_text('[[account]]\nnumber = "1"\n')
    assert main(["--secret", "s", "--dc09-port", "12000", "--dc09-accounts",
                 str(tmp_path / "a.toml")]) == 2
    assert "3-16 hex digits" in capsys.readouterr().err
