"""SIA DC-09 cross-checked against pysiaalarm's own parser and replies, and the transmitter's
retransmission rules (same sequence, fresh timestamp) against a scripted receiver.

Complements tests/test_dc09.py, which sends every anxin event through pysiaalarm's server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pysiaalarm import SIAAccount
from pysiaalarm.base_server import BaseSIAServer
from pysiaalarm.event import NAKEvent, SIAEvent
from pysiaalarm.utils import Counter

from alerts import dc09
from gateway.transports.base import DeliveryError
from gateway.transports.dc09 import DC09Transport

KEYS = [None, "0123456789ABCDEF", "0123456789ABCDEF01234567",
        "0123456789ABCDEF0123456789ABCDEF"]


def _receiver(account: str, key: str | None) -> BaseSIAServer:
    """pysiaalarm's parsing and checking, without its network server."""
    return BaseSIAServer({account: SIAAccount(account, key)}, Counter())


def _frame(fmt: str, *, key: str | None, ts: float, sequence: int = 42,
           account: str = "1234") -> bytes:
    data = dc09.event_data(fmt, account, dc09.Event(111, "FA", zone=5, partition=3))
    return dc09.frame(message_id=fmt, sequence=sequence, account=account, data=data, ts=ts,
                      key=key.encode() if key else None)


# --- pure: pysiaalarm's parser on our frames, our parser on pysiaalarm's replies ------------

@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("fmt", dc09.FORMATS)
def test_pysiaalarm_parses_our_frames_and_agrees_on_crc(fmt, key):
    raw = _frame(fmt, key=key, ts=time.time())
    event = _receiver("1234", key).parse_and_check_event(raw)
    assert isinstance(event, SIAEvent)
    assert event.msg_crc == event.calc_crc  # its own CRC over its own reading of the span
    assert int(raw[5:9], 16) == len(raw) - 10  # length: "ID" … timestamp, without \n CRC LLLL \r
    assert (event.account, event.sequence, event.encrypted) == ("1234", "0042", bool(key))
    assert event.response.value == "ACK"
    if fmt == "ADM-CID":
        assert (event.event_qualifier, event.event_type, event.partition, event.ri) == (
            "1", "111", "03", "005")
    else:
        assert (event.code, event.ri) == ("FA", "3")


@pytest.mark.parametrize("key", KEYS)
def test_pysiaalarm_accepts_our_null_message(key):
    raw = dc09.null_frame(sequence=7, account="1234", ts=time.time(),
                          key=key.encode() if key else None)
    event = _receiver("1234", key).parse_and_check_event(raw)
    assert event.message_type.value == "NULL" and event.response.value == "ACK"


@pytest.mark.parametrize("key", KEYS)
def test_we_read_pysiaalarms_ack_for_our_sequence(key):
    event = _receiver("1234", key).parse_and_check_event(
        _frame("ADM-CID", key=key, ts=time.time(), sequence=9999))
    reply = dc09.parse_reply(event.create_response())
    assert (reply.kind, reply.sequence, reply.receiver_time) == ("ACK", 9999, None)


def test_we_read_pysiaalarms_nak_and_its_clock():
    now = time.time()
    event = _receiver("1234", None).parse_and_check_event(
        _frame("ADM-CID", key=None, ts=now - 600))  # outside its -40/+20 s window
    reply = dc09.parse_reply(event.create_response())
    assert reply.kind == "NAK"
    assert abs(reply.receiver_time.timestamp() - now) < 5


def test_we_read_pysiaalarms_nak_for_an_unknown_encrypted_account():
    raw = _frame("ADM-CID", key=KEYS[1], ts=time.time(), account="FFFF")
    event = _receiver("1234", KEYS[1]).parse_and_check_event(raw)
    assert isinstance(event, NAKEvent)
    assert dc09.parse_reply(event.create_response()).kind == "NAK"


def test_pysiaalarms_non_frames_are_refused_not_taken_for_an_ack():
    # A bad CRC gets an empty line back, and an unknown clear-text account a bare "NAK"
    # with no CRC and no \r (over TCP that one ends in the transmitter's timeout).
    raw = bytearray(_frame("ADM-CID", key=None, ts=time.time()))
    raw[1:5] = b"0000" if raw[1:5] != b"0000" else b"1111"
    bad_crc = _receiver("1234", None).parse_and_check_event(bytes(raw)).create_response()
    assert bad_crc == b"\n\r"
    unknown = _receiver("1234", None).parse_and_check_event(
        _frame("ADM-CID", key=None, ts=time.time(), account="FFFF")).create_response()
    assert unknown == b'"NAK"'
    for reply in (bad_crc, unknown):
        with pytest.raises(dc09.DC09Error):
            dc09.parse_reply(reply)


# --- the transmitter's rules, against a scripted receiver -----------------------------------

_SEQ = re.compile(rb'"\*?(?P<id>[A-Z-]+)"(?P<seq>\d{4})')
_TS = re.compile(rb"(_\d{2}:\d{2}:\d{2},\d{2}-\d{2}-\d{4})$")


def _decrypt(key: bytes, raw: bytes) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).decryptor()
    return dec.update(bytes.fromhex(raw.split(b"[", 1)[1].strip().decode())) + dec.finalize()


def _reply(kind: str, seq: str, with_time: bool = False, key: bytes | None = None) -> bytes:
    if key is None:
        body = f'"{kind}"{seq}L1#1234[]' + ("_05:06:07,11-23-2026" if with_time else "")
    else:  # as pysiaalarm answers an encrypted message: "]" and its time, zero-filled
        enc = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
        plain = "]_05:06:07,11-23-2026".zfill(32).encode()
        body = f'"*{kind}"{seq}L1#1234[{(enc.update(plain) + enc.finalize()).hex().upper()}'
    return f"\n{dc09.crc16(body.encode()):04X}{len(body):04X}{body}\r".encode()


@contextlib.asynccontextmanager
async def scripted(actions: list[str], key: bytes | None = None):
    """A receiver answering frame n with actions[n]: ack, nak, duh, blank or silent.
    Yields (port, frames, connections)."""
    frames: list[bytes] = []
    handlers: set[asyncio.Task] = set()
    connections = 0
    script = iter(actions)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        handlers.add(asyncio.current_task())
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                frames.append(raw)
                seq = _SEQ.search(raw)["seq"].decode()
                action = next(script, "ack")
                if action == "silent":
                    continue
                writer.write({"ack": _reply("ACK", seq, key=key),
                              "plain-ack": _reply("ACK", seq),  # no key: forgeable
                              "nak": _reply("NAK", "0000", with_time=True),
                              "duh": _reply("DUH", seq), "blank": b"\n\r"}[action])
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], frames, lambda: connections
    finally:
        server.close()
        await server.wait_closed()
        if handlers:
            await asyncio.wait(handlers, timeout=2)


def _body(event: str = "sos", code: int = 101) -> bytes:
    return json.dumps({"alert_id": "A1", "event": event, "code": code, "device_id": "d",
                       "test": False}).encode()


def _ticking_clock(start: float = 1_795_400_000.0):
    """A clock that moves on a second at every reading, so every frame's time differs."""
    ticks = itertools.count()
    return lambda: start + next(ticks)


async def test_retransmission_keeps_the_sequence_with_a_fresh_timestamp(caplog):
    key = b"SECRETKEY-ABCDEF"
    script = ["silent", "nak", "blank", "ack", "nak", "ack"]
    async with scripted(script, key) as (port, frames, connections):
        t = DC09Transport("centre", "127.0.0.1", port, account="1234", key=key,
                          timeout_s=0.3, retries=4, clock=_ticking_clock())
        with caplog.at_level(logging.DEBUG, logger="gateway.transports.dc09"):
            try:
                await t.send(_body())  # silent, NAK, blank line, ACK: delivered on the 4th
                await t.send(_body("fall", 100))  # NAK, ACK
            finally:
                await t.close()
    seqs = [_SEQ.search(f)["seq"] for f in frames]
    assert seqs == [b"0001"] * 4 + [b"0002"] * 2
    stamps = [_TS.search(_decrypt(key, f))[1] for f in frames[:4]]
    assert stamps[0] != stamps[1]  # each try carries a new time
    # and after the NAK, the receiver's: the NAK's time is there to correct the sender's
    assert all(s.startswith(b"_05:06:0") for s in stamps[2:]), stamps
    assert connections() == 2  # a try without a reply drops the connection; the rest reuse it
    skew = [r for r in caplog.records if "clock" in r.getMessage()]
    assert len(skew) == 1  # the receiver's clock is reported once, not at every NAK
    assert "05:06:07" in skew[0].getMessage()
    assert all(f.startswith(b'\n') and b'"*ADM-CID"' in f for f in frames)
    assert all(key.decode() not in r.getMessage() for r in caplog.records)


async def test_sequence_wraps_from_9999_to_0001():
    async with scripted([]) as (port, frames, _):
        t = DC09Transport("centre", "127.0.0.1", port, account="1234", timeout_s=1)
        t._sequence = 9998  # as if 9,998 messages had gone before
        try:
            for _ in range(3):
                await t.send(_body())
        finally:
            await t.close()
    assert [_SEQ.search(f)["seq"] for f in frames] == [b"9999", b"0001", b"0002"]


async def test_duh_is_not_retransmitted():
    async with scripted(["duh", "ack"]) as (port, frames, _):
        t = DC09Transport("centre", "127.0.0.1", port, account="1234", timeout_s=1,
                          retries=3)
        try:
            with pytest.raises(DeliveryError, match="DUH"):
                await t.send(_body())
        finally:
            await t.close()
    assert len(frames) == 1


async def test_every_try_unanswered_is_a_delivery_error_naming_the_last_problem():
    async with scripted(["nak", "nak", "nak"]) as (port, frames, _):
        t = DC09Transport("centre", "127.0.0.1", port, account="1234", timeout_s=1,
                          retries=3, fmt="SIA-DCS")
        try:
            with pytest.raises(DeliveryError, match=r"SIA-DCS.*NAK"):
                await t.send(_body())
        finally:
            await t.close()
    assert [_SEQ.search(f)["seq"] for f in frames] == [b"0001"] * 3


async def test_on_an_encrypted_link_a_plain_ack_is_not_trusted():
    key = b"SECRETKEY-ABCDEF"
    forged = "plain-ack"
    async with scripted([forged] * 3) as (port, frames, _):
        t = DC09Transport("centre", "127.0.0.1", port, account="1234", key=key,
                          timeout_s=0.5, retries=3)
        try:
            with pytest.raises(DeliveryError, match="not trusted"):
                await t.send(_body())
        finally:
            await t.close()
    assert len(frames) == 3
