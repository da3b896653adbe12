"""SIA DC-09: framing checked by hand, then every anxin event sent to an independent receiver
(pysiaalarm's server) in both formats, clear and encrypted with each AES key size."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pysiaalarm import SIAAccount
from pysiaalarm.aio import CommunicationsProtocol, SIAClient

from alerts import dc09
from gateway.transports.base import DeliveryError
from gateway.transports.dc09 import DC09Transport
from tests._mosquitto import free_port

TS = 1_795_400_000.0  # 2026-11-23 02:13:20 UTC


def test_crc_is_crc16_arc():
    assert dc09.crc16(b"123456789") == 0xBB3D


def test_adm_cid_frame_exactly():
    data = dc09.event_data("ADM-CID", "1234", dc09.Event(111, "FA", zone=5))
    raw = dc09.frame(message_id="ADM-CID", sequence=1, account="1234", data=data, ts=TS)
    body = '"ADM-CID"0001L1#1234[#1234|1111 01 005]_02:13:20,11-23-2026'
    assert raw == f"\n{dc09.crc16(body.encode()):04X}{len(body):04X}{body}\r".encode()


def test_sia_dcs_data_and_receiver_prefix():
    data = dc09.event_data("SIA-DCS", "abc123", dc09.Event(101, "PA", zone=12))
    assert data == "#ABC123|Nri1/PA012]"
    raw = dc09.frame(message_id="SIA-DCS", sequence=9999, account="ABC123", receiver="2A",
                     line="3", data=data, ts=TS)
    assert b'"SIA-DCS"9999R2AL3#ABC123[' in raw


@pytest.mark.parametrize("size", dc09.KEY_SIZES)
def test_encrypted_frame_decrypts_to_pad_bar_data(size):
    key = b"k" * size
    data = dc09.event_data("ADM-CID", "1234", dc09.Event(100, "MA", zone=7))
    raw = dc09.frame(message_id="ADM-CID", sequence=2, account="1234", data=data, ts=TS,
                     key=key, pad=lambda n: "P" * n)
    text = raw.decode().strip()
    assert '"*ADM-CID"0002L1#1234[' in text
    hexpart = text.split("[", 1)[1]
    dec = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).decryptor()
    plain = (dec.update(bytes.fromhex(hexpart)) + dec.finalize()).decode()
    assert len(plain) % 16 == 0
    assert plain.lstrip("P") == "|#1234|1100 01 007]_02:13:20,11-23-2026"


@pytest.mark.parametrize(("kw", "message"), [
    ({"account": "12G4"}, "account must be"),
    ({"account": "12"}, "account must be"),
    ({"line": ""}, "line must be"),
    ({"sequence": 0}, "sequence must be"),
    ({"key": b"short"}, "key must be 16, 24 or 32"),
])
def test_bad_fields_are_named(kw, message):
    args = {"message_id": "NULL", "sequence": 1, "account": "1234", "data": "]", "ts": TS}
    with pytest.raises(dc09.DC09Error, match=message):
        dc09.frame(**{**args, **kw})


def test_replies_are_parsed_and_checked():
    body = '"NAK"0000R0L0A0[]_02:13:20,11-23-2026'
    nak = f"\n{dc09.crc16(body.encode()):04X}{len(body):04X}{body}\r".encode()
    reply = dc09.parse_reply(nak)
    assert reply.kind == "NAK" and reply.receiver_time.isoformat() == "2026-11-23T02:13:20+00:00"
    with pytest.raises(dc09.DC09Error, match="CRC"):
        dc09.parse_reply(b"\n0000" + nak[5:])
    with pytest.raises(dc09.DC09Error, match="not a DC-09"):
        dc09.parse_reply(b"hello")


# --- against pysiaalarm, an independent receiver --------------------------------------------

EVENTS = [("smoke", 111, "FA"), ("gas", 151, "GA"), ("water_leak", 154, "WA"),
          ("sos", 101, "QA"), ("fall", 100, "MA"), ("tamper", 383, "TA"),
          ("low_battery", 384, "XT"), ("offline", 381, "US")]


def alert_body(event: str, code: int, test: bool = False) -> bytes:
    return json.dumps({"alert_id": f"A-{event}", "event": event, "code": code,
                       "device_id": "dev-7", "test": test}).encode()


@pytest.fixture(autouse=True)
def _pysiaalarm_udp_on_this_python(monkeypatch):
    """pysiaalarm 3.2's UDP server asserts its transport is an asyncio.DatagramTransport,
    which CPython 3.11's selector datagram transport is not; everything else it does
    (parsing, CRC, decryption, timestamp window, the reply) is its own and untouched."""
    from pysiaalarm.aio.server import SIAServerUDP  # noqa: PLC0415

    def connection_made(self, transport):
        self.transport = transport

    monkeypatch.setattr(SIAServerUDP, "connection_made", connection_made)


@contextlib.asynccontextmanager
async def receiver(account: str, key: str | None, protocol: str = "tcp"):
    port = free_port()
    got: list = []

    async def on_event(event):
        got.append(event)

    proto = CommunicationsProtocol.TCP if protocol == "tcp" else CommunicationsProtocol.UDP
    client = SIAClient("127.0.0.1", port, [SIAAccount(account, key)], on_event, protocol=proto)
    await client.async_start()
    try:
        yield port, got
    finally:
        await client.async_stop()
        await asyncio.sleep(0.05)  # let the server's connection handlers end


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
@pytest.mark.parametrize("fmt", dc09.FORMATS)
@pytest.mark.parametrize("key", [None, "0123456789ABCDEF", "0123456789ABCDEF01234567",
                                 "0123456789ABCDEF0123456789ABCDEF"])
async def test_every_event_arrives_with_the_right_code_and_account(protocol, fmt, key):
    async with receiver("A1B2", key, protocol) as (port, got):
        t = DC09Transport("centre-dc09", "127.0.0.1", port, account="A1B2", fmt=fmt,
                          key=key.encode() if key else None, protocol=protocol,
                          timeout_s=2, zones={"dev-7": 7})
        try:
            for event, code, _ in EVENTS:
                await t.send(alert_body(event, code))
            await t.send(alert_body("smoke", 111, test=True))
        finally:
            await t.close()
    assert [e.account for e in got] == ["A1B2"] * (len(EVENTS) + 1)
    if fmt == "ADM-CID":
        assert [e.event_type for e in got] == [str(c) for _, c, _ in EVENTS] + ["601"]
        assert all(e.event_qualifier == "1" and e.ri == "007" for e in got)
    else:
        assert [e.code for e in got] == [s for _, _, s in EVENTS] + ["RX"]
    assert all(e.encrypted == bool(key) for e in got)


async def test_null_supervision_messages_are_acknowledged():
    async with receiver("A1B2", None) as (port, got):
        t = DC09Transport("centre", "127.0.0.1", port, account="A1B2", supervision_s=0.1,
                          timeout_s=2)
        await t.start()
        try:
            async with asyncio.timeout(5):
                while t.nulls_acked < 2:
                    await asyncio.sleep(0.02)
        finally:
            await t.close()
    assert [e.message_type.value for e in got][:2] == ["NULL", "NULL"]


async def test_receiver_down_is_a_delivery_error_after_retries():
    t = DC09Transport("centre", "127.0.0.1", free_port(), account="A1B2", timeout_s=0.2,
                      retries=2)
    with pytest.raises(DeliveryError, match="DC-09 ADM-CID"):
        await t.send(alert_body("sos", 101))
    await t.close()


async def test_a_wrong_clock_is_refused_once_and_corrected_from_the_receivers_nak():
    # A Pi without a real-time clock, ten minutes behind: the receiver's NAK carries its
    # time (SIA DC-09), the next try is stamped with it and accepted.
    async with receiver("A1B2", None) as (port, got):
        t = DC09Transport("centre", "127.0.0.1", port, account="A1B2", timeout_s=1,
                          retries=2, clock=lambda: __import__("time").time() - 600)
        await t.send(alert_body("sos", 101))
        await t.close()
    assert len(got) == 1
    assert t.peer.skew_s == pytest.approx(600, abs=5)


async def test_a_wrong_clock_without_a_receiver_time_stays_refused():
    async with receiver("A1B2", None) as (port, got):
        t = DC09Transport("centre", "127.0.0.1", port, account="A1B2", timeout_s=1,
                          retries=1, clock=lambda: __import__("time").time() - 600)
        with pytest.raises(DeliveryError, match="NAK"):
            await t.send(alert_body("sos", 101))  # one try: nothing learned before it
        await t.close()
    assert got == []


async def test_unknown_account_is_refused():
    async with receiver("A1B2", None) as (port, got):
        t = DC09Transport("centre", "127.0.0.1", port, account="FFFF", timeout_s=1, retries=1)
        with pytest.raises(DeliveryError):
            await t.send(alert_body("sos", 101))
        await t.close()
    assert got == []


async def test_gateway_sends_a_real_sos_over_dc09_to_pysiaalarm(tmp_path, mosquitto):
    from gateway.config import load  # noqa: PLC0415
    from gateway.runtime import Gateway  # noqa: PLC0415
    from tests.test_e2e_gateway import (  # noqa: PLC0415
        HS1SA_ALARM,
        HS1SA_QUIET,
        TS0215A_PRESS,
        publish,
    )

    _, mqtt_port = mosquitto
    async with receiver("C0FFEE", "0123456789ABCDEF0123456789ABCDEF") as (port, got):
        cfg = tmp_path / "anxin.toml"
        cfg.write_text(f"""
[gateway]
id = "gw-dc09"
data_dir = "./data"
[mqtt]
url = "mqtt://127.0.0.1:{mqtt_port}"
zigbee2mqtt_base_topic = "gw-dc09"
native_base_topic = "gw-dc09-native"
[home]
id = "home-dc09"
[[devices]]
id = "smoke-kitchen"
source = "zigbee2mqtt"
topic = "gw-dc09/kitchen_smoke"
model = "HS1SA"
[[devices]]
id = "sos-bedside"
source = "zigbee2mqtt"
topic = "gw-dc09/bedside_sos"
model = "TS0215A_sos"
[[hotline]]
name = "alarm-receiver"
kind = "dc09"
host = "127.0.0.1"
port = {port}
account = "C0FFEE"
format = "ADM-CID"
key = "0123456789ABCDEF0123456789ABCDEF"
timeout_s = 2
""", encoding="utf-8")
        gw = Gateway(load(cfg))
        await gw.start()
        try:
            await publish(mqtt_port, ("gw-dc09/bedside_sos", TS0215A_PRESS))
            async with asyncio.timeout(10):
                while not got:
                    await asyncio.sleep(0.05)
            # a technician adds a button on site (anxin devices add), zone 9 at the centre:
            # its alarms carry zone 9 at once, no restart
            text = cfg.read_text(encoding="utf-8").replace("[[hotline]]", """[[devices]]
id = "sos-bathroom"
source = "zigbee2mqtt"
topic = "gw-dc09/bathroom_sos"
model = "TS0215A_sos"
zone = 9
[[hotline]]""")
            cfg.write_text(text, encoding="utf-8")
            gw.apply_devices(load(cfg))
            await publish(mqtt_port, ("gw-dc09/bathroom_sos", TS0215A_PRESS))
            async with asyncio.timeout(10):
                while len(got) < 2:
                    await asyncio.sleep(0.05)
        finally:
            await gw.stop()
        # restarted (a power cut): the sequence numbers carry on past those already used,
        # so a receiver that remembers recent ones never takes a new alarm for a repeat
        gw = Gateway(load(cfg))
        await gw.start()
        try:
            await publish(mqtt_port, ("gw-dc09/kitchen_smoke", HS1SA_QUIET),
                          ("gw-dc09/kitchen_smoke", HS1SA_ALARM))  # (the SOS alerts are open)
            async with asyncio.timeout(10):
                while len(got) < 3:
                    await asyncio.sleep(0.05)
        finally:
            await gw.stop()
    first, added, after_restart = got
    # zone 2: the SOS button is the second device in the config
    assert (first.account, first.event_type, first.ri, first.encrypted) == (
        "C0FFEE", "101", "002", True)
    assert (added.event_type, added.ri) == ("101", "009")
    assert after_restart.event_type == "111"
    assert [int(e.sequence) for e in got] == [1, 2, 2 + 100 + 1]


def test_dc09_config_problems_are_named(tmp_path):
    import tomllib  # noqa: PLC0415

    from gateway.config import ConfigError, parse  # noqa: PLC0415
    text = """
[gateway]
id = "gw"
[home]
id = "h"
[[hotline]]
kind = "dc09"
host = "127.0.0.1"
port = 12000
account = "XYZ"
key = "too-short"
"""
    with pytest.raises(ConfigError) as e:
        parse(tomllib.loads(text))
    p = dict(e.value.problems)
    assert "3-16 hex digits" in p["hotline[0].account"]
    assert "16, 24 or 32 characters" in p["hotline[0].key"]
    assert "hotline[0].secret" not in p  # DC-09 uses its own key
