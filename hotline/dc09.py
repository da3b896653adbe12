"""The hotline's SIA DC-09 receiver: alarms from gateways (or any DC-09 transmitter) that
report as an alarm panel does, over TCP, into the same queue as the webhook's.

Framing and the AES scheme are alerts/dc09.py's (the gateway's transmitter uses the same
module). Each account is declared in a TOML file (`--dc09-accounts`):

    [[account]]
    number = "1234"            # 3-16 hex digits, as the transmitter sends it
    home_id = "home-17"        # which home it is (the queue, statistics, look-in)
    key_file = "keys/1234"     # optional AES key (16, 24 or 32 characters); or key = "…"

Per frame: a bad CRC or length gets no answer (DC-09: the transmitter sends it again), an
unknown account or an unreadable message `DUH`, a timestamp outside +20/-40 s a `NAK`
carrying the receiver's clock (the transmitter learns it), anything else `ACK` - only once the
alarm is stored. ADM-CID (Contact ID) and SIA-DCS events become alerts; a retransmission
(same account, sequence, event and zone on the same day) is one alert with another
delivery; restores are acknowledged and logged; NULL messages are link supervision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from alerts import dc09, wire

logger = logging.getLogger(__name__)

MAX_FRAME = 1024
WINDOW_S = (-40.0, 20.0)  # DC-09 7.3: a timestamp this far behind/ahead is refused (NAK)
_FRAME = re.compile(r'^(?P<crc>[0-9A-F]{4})(?P<len>[0-9A-F]{4})'
                    r'(?P<body>"(?P<star>\*?)(?P<id>[A-Z-]+)"(?P<seq>\d{4})'
                    r"(?:R(?P<rcv>[0-9A-F]{1,6}))?L(?P<line>[0-9A-F]{1,6})"
                    r"#(?P<acct>[0-9A-F]{3,16})\[(?P<rest>.*))$", re.S)
_TS = re.compile(r"_(\d{2}:\d{2}:\d{2},\d{2}-\d{2}-\d{4})$")
_CID = re.compile(r"^#(?P<acct>[0-9A-F]{3,16})\|(?P<q>[136])(?P<code>\d{3}) (?P<part>\d{2}) "
                  r"(?P<zone>\d{3})\]$")
_SIA = re.compile(r"^#(?P<acct>[0-9A-F]{3,16})\|N(?:ri(?P<part>\d{1,2})/)?(?P<code>[A-Z]{2})"
                  r"(?P<zone>\d{1,4})\]$")

# Contact ID event codes anxin sends (alerts/dc09.py) and the common ones a panel sends.
CID_EVENTS = {100: "fall", 101: "sos", 110: "fire", 111: "smoke", 120: "panic",
              151: "gas", 154: "water_leak", 381: "offline", 383: "tamper",
              384: "low_battery", 350: "communication_trouble", 601: "test_alarm",
              602: "periodic_test"}
# SIA codes: the first anxin event that maps to each (alerts.dc09.SIA_CODES), so a smoke
# alarm reads as one; several detector findings share MA (medical) and NA (no activity).
SIA_EVENTS = {"FA": "smoke", "GA": "gas", "WA": "water_leak", "QA": "sos", "MA": "fall",
              "TA": "tamper", "XT": "low_battery", "US": "offline", "NA": "inactivity",
              "RX": "test_alarm", "UA": "alarm", "YX": "maintenance_digest",
              "XQ": "weak_link", "UT": "trouble"}
SIA_TO_CID = {"FA": 111, "GA": 151, "WA": 154, "QA": 101, "MA": 100, "TA": 383, "XT": 384,
              "US": 381, "NA": 0, "RX": 601}


def severity(code: int, event: str) -> int:
    """Contact ID classes: 1xx alarms are life (water 2, no-activity care 3), 3xx troubles
    technical; anything else a care call."""
    if event == "water_leak":
        return 2
    if event in ("inactivity", "alarm"):
        return 3
    if 100 <= code < 200 or event in ("smoke", "gas", "sos", "fall"):
        return 1
    if 300 <= code < 400 or event in ("tamper", "low_battery", "offline", "weak_link",
                                      "trouble", "maintenance_digest"):
        return 4
    return 3


@dataclass(frozen=True, slots=True)
class Account:
    """One transmitter account and the home it stands for."""

    number: str
    home_id: str
    key: bytes | None = None

    @property
    def gateway_id(self) -> str:
        """How the queue names the transmitter (supervision, feedback)."""
        return f"dc09-{self.number}"


def load_accounts(path: str | Path) -> dict[str, Account]:
    """The accounts file; ValueError naming the entry and the problem."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"cannot read {path}: {e}") from None
    out: dict[str, Account] = {}
    for i, entry in enumerate(doc.get("account", [])):
        where = f"{path}: account[{i}]"
        number = str(entry.get("number", "")).upper()
        if not re.fullmatch(r"[0-9A-F]{3,16}", number):
            raise ValueError(f"{where}.number must be 3-16 hex digits")
        home_id = entry.get("home_id")
        if not isinstance(home_id, str) or not home_id:
            raise ValueError(f"{where}.home_id is required")
        key: bytes | None = None
        if "key_file" in entry:
            try:
                key = (path.parent / entry["key_file"]).read_bytes().strip()
            except OSError as e:
                raise ValueError(f"{where}.key_file: {e.strerror}") from None
        elif "key" in entry:
            key = str(entry["key"]).encode()
        if key is not None and len(key) not in dc09.KEY_SIZES:
            raise ValueError(f"{where}: the key must be 16, 24 or 32 characters")
        if number in out:
            raise ValueError(f"{where}: account {number} is declared twice")
        out[number] = Account(number, home_id, key)
    return out


class RefusedError(ValueError):
    """A frame answered with something other than ACK; `reply` is that answer (b"" none)."""

    def __init__(self, reason: str, message: str, reply: bytes) -> None:
        super().__init__(message)
        self.reason = reason
        self.reply = reply


@dataclass(frozen=True, slots=True)
class Message:
    """One well-formed, authentic, timely frame."""

    kind: str  # ADM-CID, SIA-DCS, NULL
    sequence: int
    line: str
    receiver: str | None
    account: Account
    data: str  # `#acct|…]` or `]`
    sent_at: datetime


def _frame_reply(kind: str, sequence: int, line: str, receiver: str | None, account: str,
                 now: float, key: bytes | None) -> bytes:
    return dc09.frame(message_id=kind, sequence=max(sequence, 1), account=account, line=line,
                      receiver=receiver, data="]", ts=now, key=key)


def nak(now: float) -> bytes:
    """A NAK with the receiver's time (DC-09: `"NAK"0000R0L0A0[]_time`)."""
    body = f'"NAK"0000R0L0A0[]{dc09.timestamp(now)}'.encode("ascii")
    return f"\n{dc09.crc16(body):04X}{len(body):04X}".encode("ascii") + body + b"\r"


def parse(raw: bytes, accounts: dict[str, Account], now: float) -> Message:
    """Check one frame; RefusedError (with the reply to send) if it cannot be taken."""
    try:
        text = raw.decode("ascii").strip("\n\r")
    except UnicodeDecodeError:
        raise RefusedError("bad_frame", "not ASCII", b"") from None
    m = _FRAME.match(text)
    if m is None:
        raise RefusedError("bad_frame", f"not a DC-09 frame: {text[:60]!r}", b"")
    body = m["body"].encode("ascii")
    if int(m["crc"], 16) != dc09.crc16(body) or int(m["len"], 16) != len(body):
        raise RefusedError("bad_crc", "CRC or length does not match", b"")
    sequence, line, rcv, number = int(m["seq"]), m["line"], m["rcv"], m["acct"]
    account = accounts.get(number)
    if account is None:
        raise RefusedError("unknown_account", f"account {number} is not configured",
                      _frame_reply("DUH", sequence, line, rcv, number, now, None))
    rest = m["rest"]
    if m["star"]:
        if account.key is None:
            raise RefusedError("bad_key", f"account {number} sent encrypted, no key configured",
                          _frame_reply("DUH", sequence, line, rcv, number, now, None))
        rest = _decrypt(account.key, rest)
        if rest is None:
            raise RefusedError("bad_key", f"account {number}: does not decrypt with its key",
                          _frame_reply("DUH", sequence, line, rcv, number, now, None))
    elif account.key is not None:
        raise RefusedError("unencrypted", f"account {number} must encrypt",
                      _frame_reply("DUH", sequence, line, rcv, number, now, None))
    t = _TS.search(rest)
    if t is None:
        raise RefusedError("bad_timestamp", "no timestamp", nak(now))
    sent_at = datetime.strptime(t[1], "%H:%M:%S,%m-%d-%Y").replace(tzinfo=UTC)
    skew = sent_at.timestamp() - now
    if not WINDOW_S[0] <= skew <= WINDOW_S[1]:
        raise RefusedError("stale", f"timestamp {skew:+.0f} s from the receiver's clock", nak(now))
    data = rest[:t.start()]  # "#acct|…]" for an event, "]" for NULL
    kind = m["id"]
    if kind not in ("ADM-CID", "SIA-DCS", "NULL"):
        raise RefusedError("unsupported", f"message type {kind} is not read here",
                      _frame_reply("DUH", sequence, line, rcv, number, now, account.key))
    return Message(kind, sequence, line, rcv, account, data, sent_at)


def _decrypt(key: bytes, hexpart: str) -> str | None:
    try:
        raw = bytes.fromhex(hexpart)
    except ValueError:
        return None
    if not raw or len(raw) % 16:
        return None
    dec = Cipher(algorithms.AES(key), modes.CBC(dc09.IV)).decryptor()
    plain = (dec.update(raw) + dec.finalize()).decode("ascii", "replace")
    _, bar, rest = plain.partition("|")
    # the data of an encrypted frame starts after the pad and "|": "#acct|…]_ts" or "]_ts"
    return rest if bar and _TS.search(rest) else None


def ack(msg: Message, now: float) -> bytes:
    """The ACK, encrypted like the frame it answers."""
    return _frame_reply("ACK", msg.sequence, msg.line, msg.receiver, msg.account.number, now,
                        msg.account.key)


def event_of(msg: Message) -> tuple[int, str, int, int, bool] | None:
    """(Contact ID code, event, zone, partition, restore) of an event frame; None for NULL.
    RefusedError (DUH) if the data cannot be read."""
    if msg.kind == "NULL":
        return None
    data = msg.data
    if msg.kind == "ADM-CID" and (m := _CID.match(data)):
        code = int(m["code"])
        return code, CID_EVENTS.get(code, f"cid_{code}"), int(m["zone"]), int(m["part"]), \
            m["q"] == "3"
    if msg.kind == "SIA-DCS" and (m := _SIA.match(data)):
        sia = m["code"]
        restore = sia.endswith("R") and sia[0] + "A" in SIA_EVENTS  # FR, MR …: a restore
        sia = sia[0] + "A" if restore else sia
        event = SIA_EVENTS.get(sia, f"sia_{sia}")
        return SIA_TO_CID.get(sia, 0), event, int(m["zone"]), int(m["part"] or 1), restore
    raise RefusedError("bad_data", f"cannot read {msg.kind} data {data!r}",
                  _frame_reply("DUH", msg.sequence, msg.line, msg.receiver,
                               msg.account.number, msg.sent_at.timestamp(), msg.account.key))


def alert_body(msg: Message, code: int, event: str, zone: int, partition: int,
               tz: ZoneInfo) -> dict[str, Any]:
    """An `anxin.alert/1`-shaped body for the queue. The alert id ties a retransmission
    (same sequence, event and zone on the same day) to the first delivery."""
    day = msg.sent_at.strftime("%Y%m%d")
    test = event == "test_alarm"
    sent = msg.sent_at.timestamp()
    return {
        "schema": wire.SCHEMA,
        "alert_id": f"dc09-{msg.account.number}-{day}-{msg.sequence:04d}-{code:03d}-{zone:03d}",
        "gateway_id": msg.account.gateway_id, "home_id": msg.account.home_id,
        "sequence": msg.sequence, "code": code, "event": event,
        "severity": 4 if test else severity(code, event), "title": wire.title(event),
        "room": None, "device_id": f"zone {zone:03d}", "detector": f"dc09.{msg.kind}",
        "occurred_at": wire.iso(sent, tz), "raised_at": wire.iso(sent, tz), "test": test,
        "residents": [],
        "evidence": {"dc09": {"format": msg.kind, "account": msg.account.number,
                              "zone": zone, "partition": partition, "data": msg.data}},
    }


Store = Callable[[dict[str, Any], float], Awaitable[None]]
Alive = Callable[[str, str, float], Awaitable[None]]
Reject = Callable[[str, str, str, bytes, float], Awaitable[None]]


class Receiver:
    """The TCP server: one frame in, one reply out, per read, for as long as the link lasts."""

    def __init__(self, accounts: dict[str, Account], store: Store, alive: Alive,
                 reject: Reject, clock: Callable[[], float], tz: ZoneInfo) -> None:
        self.accounts = accounts
        self.store = store
        self.alive = alive
        self.reject = reject
        self.clock = clock
        self.tz = tz
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen."""
        self.server = await asyncio.start_server(self._link, host, port, limit=MAX_FRAME)

    async def close(self) -> None:
        """Stop listening and drop the links."""
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(AttributeError):
                self.server.close_clients()  # Python 3.13+
            await asyncio.wait_for(self.server.wait_closed(), 5)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        remote = f"dc09:{peer[0]}" if peer else "dc09"
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r")
                except asyncio.LimitOverrunError:
                    await self.reject(remote, "too_large", f"frame over {MAX_FRAME} bytes",
                                      b"", self.clock())
                    return
                reply = await self.handle(raw, remote)
                if reply:
                    writer.write(reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the transmitter closed the link
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def handle(self, raw: bytes, remote: str) -> bytes:
        """One frame: stored if it is an alarm; the reply to send (b"" for none)."""
        now = self.clock()
        try:
            msg = parse(raw, self.accounts, now)
            ev = event_of(msg)
        except RefusedError as e:
            logger.warning("DC-09 frame from %s refused: %s (%s)", remote, e.reason, e)
            await self.reject(remote, e.reason, str(e), raw, now)
            return e.reply
        account = msg.account
        if ev is None:  # NULL: the link is alive
            await self.alive(account.gateway_id, account.home_id, now)
            return ack(msg, now)
        code, event, zone, partition, restore = ev
        if restore:
            logger.info("DC-09 account %s: restore of %s zone %d", account.number, event, zone)
        else:
            await self.store(alert_body(msg, code, event, zone, partition, self.tz), now)
        return ack(msg, now)  # only now: the alarm is in the store
