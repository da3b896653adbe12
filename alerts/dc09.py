"""SIA DC-09 (ANSI/SIA DC-09-2013): the monitoring world's own way to send an alarm over IP.

Pure framing, no I/O and no clock (times are passed in). A frame is

    \\n CRC LLLL "ID" seq R<rcv> L<line> #<acct> [data] _HH:MM:SS,MM-DD-YYYY \\r

CRC: CRC-16/ARC (poly 0xA001 reflected, init 0) as 4 upper-case hex digits, and LLLL the
length as 4 hex digits, both over everything from the opening quote of the ID to the end of
the timestamp. IDs: `ADM-CID` (Ademco Contact ID data `[#acct|Q EEE GG ZZZ]`), `SIA-DCS`
(SIA codes `[#acct|Nri<area>/<code><zone>]`) and `NULL` (link supervision, `[]`). With an
AES key (16, 24 or 32 bytes: AES-128/192/256) the ID gets a `*` and everything after `[`
(data and timestamp) is encrypted: random pad characters, `|`, then the data, to a multiple
of 16 bytes, AES-CBC with an all-zero IV, sent as upper-case hex.

anxin's events in the two formats (Contact ID code / SIA code):

    smoke 111 / FA     gas 151 / GA        water_leak 154 / WA    sos 101 / QA
    fall 100 / MA      tamper 383 / TA     low_battery 384 / XT   offline 381 / US
    any test alarm: 601 / RX (manual test report, with the device's zone)

SOS is "QA" (emergency assistance) and a fall "MA" (medical), the SIA codes the Contact ID
conversion gives for 101 and 100 — not "PA" (panic), which many centres route to the police.
XT is the wireless sensor's
battery (YT would be the gateway's own). A test alarm is reported as a test report, so a
drill can never be dispatched as an emergency.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SIA_CODES: dict[str, str] = {
    "smoke": "FA", "gas": "GA", "water_leak": "WA", "sos": "QA", "fall": "MA", "long_lie": "MA",
    # MA medical alarm: the vital-sign findings
    "no_breathing": "MA", "bradycardia": "MA", "tachycardia": "MA", "bradypnoea": "MA",
    "tachypnoea": "MA",
    "tamper": "TA", "low_battery": "XT", "offline": "US",
    # NA no activity; YX service required (the maintenance digest); XQ RF interference;
    # UT trouble of an untyped zone; UA alarm of an untyped zone (SIA has no wandering code).
    "inactivity": "NA", "bathroom_overstay": "NA", "not_up": "NA", "night_wandering": "UA",
    "missed_checkin": "NA", "bed_exit": "NA", "not_returned": "NA", "still_in_bed": "NA",
    "routine_deviation": "NA",
    "maintenance_digest": "YX", "weak_link": "XQ", "stuck_contact": "UT",
    "self_test_failed": "UT",
}
TEST_CID, TEST_SIA = 601, "RX"
FORMATS = ("ADM-CID", "SIA-DCS")
KEY_SIZES = (16, 24, 32)
IV = bytes(16)
_PAD_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_HEX = re.compile(r"^[0-9A-Fa-f]+$")


class DC09Error(ValueError):
    """A frame that cannot be built or a reply that cannot be read; says which field."""


def crc16(data: bytes) -> int:
    """CRC-16/ARC, as DC-09 uses it."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def timestamp(ts: float) -> str:
    """`_HH:MM:SS,MM-DD-YYYY` in UTC."""
    return datetime.fromtimestamp(ts, UTC).strftime("_%H:%M:%S,%m-%d-%Y")


def _check_hex(name: str, value: str, lo: int, hi: int) -> str:
    if not (lo <= len(value) <= hi) or not _HEX.match(value):
        raise DC09Error(f"{name} must be {lo}-{hi} hex digits, got {value!r}")
    return value.upper()


def _encrypt(key: bytes, text: str, rnd: Callable[[int], str]) -> str:
    body = "|" + text
    pad = 16 - len(body) % 16  # 1..16 pad characters
    plain = (rnd(pad) + body).encode("ascii")
    enc = Cipher(algorithms.AES(key), modes.CBC(IV)).encryptor()
    return (enc.update(plain) + enc.finalize()).hex().upper()


def _random_pad(n: int) -> str:
    # Padding only needs to vary, not to be secret: the key protects the message.
    return "".join(random.choice(_PAD_CHARS) for _ in range(n))


@dataclass(frozen=True, slots=True)
class Event:
    """One DC-09 report."""

    code: int  # Contact ID event code (100 …)
    sia_code: str  # the same event as a SIA code (FA …)
    zone: int  # device/zone number 1..999
    partition: int = 1  # group/partition 1..99
    restore: bool = False  # a restore (qualifier 3 / SIA restore code) instead of a new event


def frame(*, message_id: str, sequence: int, account: str, line: str = "1",
          receiver: str | None = None, data: str, ts: float, key: bytes | None = None,
          pad: Callable[[int], str] = _random_pad) -> bytes:
    """One complete frame, `\\n` … `\\r`, ready to send."""
    if not 1 <= sequence <= 9999:
        raise DC09Error(f"sequence must be 1..9999, got {sequence}")
    account = _check_hex("account", account, 3, 16)
    line = _check_hex("line", line, 1, 6)
    prefix = f"R{_check_hex('receiver', receiver, 1, 6)}" if receiver else ""
    if key is not None and len(key) not in KEY_SIZES:
        raise DC09Error(f"key must be 16, 24 or 32 bytes (AES-128/192/256), got {len(key)}")
    rest = f"{data}{timestamp(ts)}"
    if key is not None:
        body = (f'"*{message_id}"{sequence:04d}{prefix}L{line}#{account}['
                f"{_encrypt(key, rest, pad)}")
    else:
        body = f'"{message_id}"{sequence:04d}{prefix}L{line}#{account}[{rest}'
    raw = body.encode("ascii")
    return f"\n{crc16(raw):04X}{len(raw):04X}{body}\r".encode("ascii")


def event_data(fmt: str, account: str, ev: Event) -> str:
    """The data part (after `[`, up to and including `]`) of an event in `fmt`."""
    account = _check_hex("account", account, 3, 16)
    if not 1 <= ev.zone <= 999:
        raise DC09Error(f"zone must be 1..999, got {ev.zone}")
    if not 1 <= ev.partition <= 99:
        raise DC09Error(f"partition must be 1..99, got {ev.partition}")
    if fmt == "ADM-CID":
        if not 100 <= ev.code <= 999:
            raise DC09Error(f"Contact ID code must be 3 digits, got {ev.code}")
        qualifier = 3 if ev.restore else 1
        return f"#{account}|{qualifier}{ev.code:03d} {ev.partition:02d} {ev.zone:03d}]"
    if fmt == "SIA-DCS":
        if not re.fullmatch(r"[A-Z]{2}", ev.sia_code):
            raise DC09Error(f"SIA code must be two capital letters, got {ev.sia_code!r}")
        return f"#{account}|Nri{ev.partition}/{ev.sia_code}{ev.zone:03d}]"
    raise DC09Error(f"format must be ADM-CID or SIA-DCS, got {fmt!r}")


def null_frame(*, sequence: int, account: str, line: str = "1", receiver: str | None = None,
               ts: float, key: bytes | None = None) -> bytes:
    """A NULL message: link supervision, no event."""
    return frame(message_id="NULL", sequence=sequence, account=account, line=line,
                 receiver=receiver, data="]", ts=ts, key=key)


def event_from_alert(alert: dict, zone: int) -> Event:
    """The DC-09 event for an `anxin.alert/1` body."""
    if alert.get("test"):
        return Event(code=TEST_CID, sia_code=TEST_SIA, zone=zone)
    code = int(alert["code"])
    sia = SIA_CODES.get(alert["event"], "UA")  # UA: alarm from a zone of unknown type
    return Event(code=code, sia_code=sia, zone=zone)


@dataclass(frozen=True, slots=True)
class Reply:
    """What the receiver answered."""

    kind: str  # ACK, NAK or DUH
    sequence: int | None
    receiver_time: datetime | None  # a NAK carries the receiver's clock
    # An encrypted reply (`"*ACK"`) decrypted with the key: True when it decrypted to a
    # well-formed `…]_timestamp`; None when the reply was not encrypted.
    authentic: bool | None = None


_REPLY = re.compile(r"^\n?(?P<crc>[0-9A-F]{4})(?P<len>[0-9A-F]{4})"
                    r'(?P<body>"\*?(?P<kind>ACK|NAK|DUH)"(?P<seq>\d{4})(?P<rest>.*?))\r?$', re.S)
_TS = re.compile(r"_(\d{2}:\d{2}:\d{2},\d{2}-\d{2}-\d{4})")


def parse_reply(data: bytes, key: bytes | None = None) -> Reply:
    """Read a receiver's reply frame; DC09Error if it is garbled.

    With `key`, an encrypted reply is decrypted and checked: on an encrypted link only an
    ACK that carries the shared key proves the receiver has the alarm (a plain "ACK" could
    come from anyone on the path).
    """
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise DC09Error("reply is not ASCII") from None
    m = _REPLY.match(text)
    if m is None:
        raise DC09Error(f"reply is not a DC-09 ACK/NAK/DUH frame: {text!r}")
    body = m["body"].encode("ascii")
    if int(m["crc"], 16) != crc16(body):
        raise DC09Error("reply CRC does not match")
    if int(m["len"], 16) != len(body):
        raise DC09Error("reply length does not match")
    receiver_time = None
    if m["kind"] == "NAK" and (t := _TS.search(m["rest"])):
        receiver_time = datetime.strptime(t[1], "%H:%M:%S,%m-%d-%Y").replace(tzinfo=UTC)
    authentic = None
    if m["body"].startswith('"*'):
        authentic = key is not None and _decrypts(key, m["rest"])
    return Reply(m["kind"], int(m["seq"]), receiver_time, authentic)


def _decrypts(key: bytes, rest: str) -> bool:
    """Whether the hex after `[` decrypts with `key` to `pad|…]` ending in a timestamp."""
    hexpart = rest.split("[", 1)[1] if "[" in rest else ""
    try:
        raw = bytes.fromhex(hexpart)
    except ValueError:
        return False
    if not raw or len(raw) % 16:
        return False
    dec = Cipher(algorithms.AES(key), modes.CBC(IV)).decryptor()
    plain = (dec.update(raw) + dec.finalize()).decode("ascii", "replace")
    return bool(re.search(r"\]\S*_\d{2}:\d{2}:\d{2},\d{2}-\d{2}-\d{4}$", plain))
