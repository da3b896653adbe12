"""Raw bed-sensor signal blocks (ballistocardiogram / pressure), vendor vitals names, ordering.

A bed sensor that leaves the deciding to the gateway streams its raw signal in blocks. Two
encodings, told apart by the first bytes: a binary block starts with the 4 bytes `AXB1`; a
JSON block is a JSON object, so its first non-blank byte is `{` (no JSON text starts with `A`).

**JSON** (anxin-native; an unknown key is an error, the format is ours):

    {"rate_hz": 100, "t0": 1795423445.25, "seq": 8812,
     "signal": [2051, 2049, 2046, ...], "channels": [[...], [...]]}

- `rate_hz`: samples per second, 50..250 (a number; 128 is fine).
- `t0`: the device clock at the first sample, unix seconds. A sample `i` is at
  `t0 + i / rate_hz`; consecutive blocks of one device continue where the last one ended.
- `seq`: optional block counter (integer >= 0), for diagnostics; ordering is by `t0`.
- `signal`: the bed signal, one channel, arbitrary units (ADC counts of a piezo film, a
  pressure cell, a load cell): 1..`MAX_SAMPLES` finite numbers, at most `MAX_BLOCK_S` long.
- `channels`: optional extra channels (e.g. a second film, a load channel), each an array as
  long as `signal`; at most `MAX_CHANNELS`.
- `null` for an optional key means absent.
- The whole payload, JSON or binary, is at most the gateway's message limit
  (`devices.payload.MAX_PAYLOAD_BYTES`, 64 KiB): 10 s at 250 Hz of 12-bit counts is about
  13 KiB of JSON or 5 KiB binary; a block with many extra channels must be shorter.

**Binary** (compact; 3-5x smaller than JSON for a 12-bit ADC), little-endian:

    offset size type     field
    0      4    bytes    magic b"AXB1" (anxin bed block, format 1)
    4      4    float32  rate_hz
    8      8    float64  t0
    16     8    int64    seq, -1 when absent
    24     2    uint16   n: samples per channel, 1..MAX_SAMPLES
    26     1    uint8    c: channels in the block, 1 + extra channels (1..1+MAX_CHANNELS)
    27     1    uint8    sample type: 1 = int16, 2 = float32
    28     ...           c * n samples, channel-major: the n of `signal`, then each extra channel

The payload is exactly `28 + c * n * size` bytes; anything else is refused.

A block that contradicts itself (rate 0 or outside 50..250, NaN or infinite values, empty,
too long, channels of different lengths, a truncated binary body) raises PayloadError
naming the field.

Device-reported vitals (`vendor_vitals`) map the field names bed and sleep sensors use to
the canonical kinds `in_bed`, `heart_rate`, `respiration_rate`.

`Assembler` puts a device's blocks back in order: late or out-of-order blocks within a
reorder window are slotted in, duplicates dropped, and a hole that stays open is passed on as
an explicit discontinuity (the analysis restarts its filters there; nothing is invented).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from devices.observation import PayloadError, Value, check_value
from devices.payload import MAX_PAYLOAD_BYTES, json_object

RATE_RANGE_HZ = (50.0, 250.0)
MAX_SAMPLES = 4096
MAX_BLOCK_S = 20.0
MAX_CHANNELS = 8

MAGIC = b"AXB1"
_HEADER = struct.Struct("<4sfdqHBB")
_SAMPLE_TYPES: dict[int, np.dtype] = {1: np.dtype("<i2"), 2: np.dtype("<f4")}
_JSON_KEYS = frozenset({"rate_hz", "t0", "seq", "signal", "channels"})


@dataclass(frozen=True, slots=True, eq=False)
class BcgBlock:
    """One block of raw bed signal from one device; arrays are float64 and read-only."""

    rate_hz: float
    t0: float
    signal: np.ndarray
    seq: int | None = None
    channels: tuple[np.ndarray, ...] = ()

    @property
    def n(self) -> int:
        return int(self.signal.shape[0])

    @property
    def end(self) -> float:
        """The time just after the last sample: where the next block should start."""
        return self.t0 + self.n / self.rate_hz

    def tail(self, start: int) -> BcgBlock:
        """The block without its first `start` samples (t0 moved on accordingly)."""
        return BcgBlock(self.rate_hz, self.t0 + start / self.rate_hz, self.signal[start:],
                        self.seq, tuple(c[start:] for c in self.channels))


def parse_block(payload: bytes) -> BcgBlock:
    """A raw bed-signal block from its JSON or binary payload, or PayloadError."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    if payload[:4] == MAGIC:
        return _parse_binary(payload)
    return block_from_mapping(json_object(payload))


def observation_value(block: BcgBlock) -> dict[str, Any]:
    """The value of a `bcg` Observation: the block's summary (what a store keeps) plus the
    block itself under "block" (not JSON)."""
    return {"rate_hz": block.rate_hz, "t0": block.t0, "seq": block.seq, "n": block.n,
            "channels": len(block.channels), "block": block}


def block_from_value(value: Any) -> BcgBlock:
    """The block in a `bcg` Observation's value: a BcgBlock, `observation_value`'s mapping,
    or the JSON object form; PayloadError if it holds no samples (a stored summary)."""
    if isinstance(value, BcgBlock):
        return value
    if not isinstance(value, Mapping):
        raise PayloadError(f"bcg: expected a block, got {type(value).__name__}")
    block = value.get("block")
    if isinstance(block, BcgBlock):
        return block
    if block is not None or "signal" not in value:
        raise PayloadError("bcg: the value holds no samples (a stored summary?)")
    return block_from_mapping(value)


def block_from_mapping(msg: Mapping[str, Any]) -> BcgBlock:
    """A block from its JSON object (or an Observation value of the same shape)."""
    unknown = sorted(set(msg) - _JSON_KEYS)
    if unknown:
        raise PayloadError(f"unknown key(s) {', '.join(unknown)}; a block has "
                           f"{', '.join(sorted(_JSON_KEYS))}")
    for key in ("rate_hz", "t0", "signal"):
        if msg.get(key) is None:
            raise PayloadError(f"{key}: missing")
    rate = _rate(msg["rate_hz"])
    t0 = _finite("t0", msg["t0"])
    seq = msg.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 0):
        raise PayloadError(f"seq: expected an integer >= 0, got {seq!r}")
    signal = _samples("signal", msg["signal"])
    _check_length(signal.shape[0], rate)
    extra = msg.get("channels")
    channels: tuple[np.ndarray, ...] = ()
    if extra is not None:
        if not isinstance(extra, list) or len(extra) > MAX_CHANNELS:
            raise PayloadError(f"channels: expected a list of at most {MAX_CHANNELS} arrays")
        channels = tuple(_samples(f"channels[{i}]", c) for i, c in enumerate(extra))
        for i, c in enumerate(channels):
            if c.shape[0] != signal.shape[0]:
                raise PayloadError(f"channels[{i}]: {c.shape[0]} samples, signal has "
                                   f"{signal.shape[0]}: lengths differ")
    return BcgBlock(rate, t0, signal, seq, channels)


def _parse_binary(payload: bytes) -> BcgBlock:
    if len(payload) < _HEADER.size:
        raise PayloadError(f"binary block: {len(payload)} bytes, the header alone is "
                           f"{_HEADER.size}")
    _, rate, t0, seq, n, c, kind = _HEADER.unpack_from(payload)
    rate = _rate(float(rate))
    t0 = _finite("t0", float(t0))
    dtype = _SAMPLE_TYPES.get(kind)
    if dtype is None:
        raise PayloadError(f"sample type: {kind} is not 1 (int16) or 2 (float32)")
    if not 1 <= c <= 1 + MAX_CHANNELS:
        raise PayloadError(f"channels: {c} in the block, expected 1..{1 + MAX_CHANNELS}")
    if n == 0:
        raise PayloadError("signal: empty")
    if n > MAX_SAMPLES:
        raise PayloadError(f"signal: {n} samples, the limit is {MAX_SAMPLES}")
    _check_length(n, rate)
    expected = _HEADER.size + c * n * dtype.itemsize
    if len(payload) != expected:
        raise PayloadError(f"binary block: {len(payload)} bytes, header says {c} channel(s) "
                           f"x {n} samples = {expected} bytes: lengths differ")
    data = np.frombuffer(payload, dtype, c * n, _HEADER.size).astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(data))
    if bad.size:
        ch, i = divmod(int(bad[0]), n)
        name = "signal" if ch == 0 else f"channels[{ch - 1}]"
        raise PayloadError(f"{name}[{i}]: not a finite number ({data[bad[0]]!r})")
    data.flags.writeable = False
    rows = data.reshape(c, n)
    return BcgBlock(rate, t0, rows[0], None if seq < 0 else int(seq), tuple(rows[1:]))


def encode_json(block: BcgBlock) -> bytes:
    """The JSON payload for `block` (integers stay integers: ADC counts)."""
    def samples(a: np.ndarray) -> list[float | int]:
        return a.astype(np.int64).tolist() if np.all(a == np.round(a)) else a.tolist()

    msg: dict[str, Any] = {"rate_hz": block.rate_hz, "t0": block.t0}
    if block.seq is not None:
        msg["seq"] = block.seq
    msg["signal"] = samples(block.signal)
    if block.channels:
        msg["channels"] = [samples(c) for c in block.channels]
    return json.dumps(msg, separators=(",", ":")).encode()


def encode_binary(block: BcgBlock) -> bytes:
    """The binary payload for `block`: int16 when every sample is an int16, else float32."""
    rows = np.vstack((block.signal, *block.channels))
    ints = bool(np.all(rows == np.round(rows)) and rows.min() >= -32768 and rows.max() <= 32767)
    kind = 1 if ints else 2
    header = _HEADER.pack(MAGIC, block.rate_hz, block.t0,
                          -1 if block.seq is None else block.seq, block.n, rows.shape[0], kind)
    return header + rows.astype(_SAMPLE_TYPES[kind]).tobytes()


def _rate(v: Any) -> float:
    r = _finite("rate_hz", v)
    lo, hi = RATE_RANGE_HZ
    if not lo <= r <= hi:
        raise PayloadError(f"rate_hz: {v!r} is outside {lo:g}..{hi:g} Hz")
    return r


def _finite(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise PayloadError(f"{name}: expected a number, got {v!r}")
    try:
        f = float(v)
    except OverflowError:
        raise PayloadError(f"{name}: {v!r} is too large") from None
    if not math.isfinite(f):
        raise PayloadError(f"{name}: expected a finite number, got {v!r}")
    return f


def _samples(name: str, raw: Any) -> np.ndarray:
    if isinstance(raw, np.ndarray):  # an adapter handing on what it already decoded
        if raw.ndim != 1 or raw.dtype.kind not in "iuf":
            raise PayloadError(f"{name}: expected a 1-D array of numbers")
        return _checked(name, raw.astype(np.float64), raw)
    if not isinstance(raw, list):
        raise PayloadError(f"{name}: expected an array of numbers, got {type(raw).__name__}")
    if not raw:
        raise PayloadError(f"{name}: empty")
    if len(raw) > MAX_SAMPLES:
        raise PayloadError(f"{name}: {len(raw)} samples, the limit is {MAX_SAMPLES}")
    # One C-speed pass over the types: true/false (an int subclass), strings and nulls are
    # not samples, and numpy would quietly turn "1.5" or True into a number.
    if not set(map(type, raw)) <= {int, float}:
        i, v = next((i, v) for i, v in enumerate(raw) if type(v) not in (int, float))
        raise PayloadError(f"{name}[{i}]: expected a number, got {v!r}")
    try:
        a = np.asarray(raw, dtype=np.float64)
    except OverflowError:
        raise PayloadError(f"{name}: a sample is too large for a number") from None
    return _checked(name, a, raw)


def _checked(name: str, a: np.ndarray, raw: Any) -> np.ndarray:
    if a.size == 0:
        raise PayloadError(f"{name}: empty")
    if a.size > MAX_SAMPLES:
        raise PayloadError(f"{name}: {a.size} samples, the limit is {MAX_SAMPLES}")
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:  # json.loads reads NaN and Infinity
        raise PayloadError(f"{name}[{int(bad[0])}]: not a finite number ({raw[bad[0]]!r})")
    a.flags.writeable = False
    return a


def _check_length(n: int, rate: float) -> None:
    if n / rate > MAX_BLOCK_S:
        raise PayloadError(f"signal: {n} samples at {rate:g} Hz is {n / rate:.1f} s; a block "
                           f"is at most {MAX_BLOCK_S:g} s")


# --- Device-reported vitals ----------------------------------------------------------------
#
# Field names as vendors publish them (checked against their published exposes/APIs):
# - Zigbee2MQTT Tuya TS0601_bed_presence_sensor (pressure strap): `occupancy` true/false and
#   `work_state` presence | none | presence_5min | presence_30min | none_5min | none_30min
#   (zigbee2mqtt.io docs/devices/TS0601_bed_presence_sensor.md).
# - Zigbee2MQTT OWON FDS315 (radar fall/sleep sensor): `breathing_rate` breaths/min
#   (zigbee-herdsman-converters src/devices/owon.ts).
# - Withings Sleep Analyzer (API v2/sleep, data_fields): `hr` bpm, `rr` breaths/min.
# - Emfit QS (local API, as read by the Home Assistant integration): `hr`, `rr`, `pres`
#   (bed presence, 0/1).
# - 60 GHz sleep radars (Seeed MR60BHA1, DFRobot C1001, MicRadar R60ABD1) through ESPHome or
#   MQTT: `heartbeat_rate`/`heart_rate`, `breathe_rate`/`breath_rate`, `bed_status` "1"/"0",
#   `presence`. Aqara FP2 sleep: `heartrate_value`, `respiration_rate_value`.
# - camelCase firmware (heartRate, breathRate, inBed) and the short `bpm`, `breathing`.
# A value of 0 is kept as a reading (CONVENTIONS 2); detectors/vitals.py says what a 0 rate
# means there. `null` means unknown and is skipped.

VENDOR_FIELDS: dict[str, tuple[str, ...]] = {
    "heart_rate": ("heart_rate", "heartRate", "hr", "heartbeat", "heartbeat_rate",
                   "heart_beat", "bpm", "heartrate_value"),
    "respiration_rate": ("respiration_rate", "respiratory_rate", "respirationRate",
                         "breath_rate", "breathRate", "breathe_rate", "breathing_rate", "rr",
                         "breathing", "respiration_rate_value"),
    "in_bed": ("in_bed", "inBed", "occupancy", "bed_status", "presence", "pres",
               "work_state"),
}
IN_BED_WORDS: dict[str, bool] = {
    **dict.fromkeys(("in", "on", "in_bed", "inbed", "occupied", "present", "presence",
                     "presence_5min", "presence_30min", "true", "yes", "1"), True),
    **dict.fromkeys(("out", "off", "out_of_bed", "outofbed", "unoccupied", "vacant", "empty",
                     "absent", "none", "none_5min", "none_30min", "false", "no", "0"), False),
}


def vendor_vitals(msg: Mapping[str, Any]) -> dict[str, Value]:
    """The canonical vitals (`in_bed`, `heart_rate`, `respiration_rate`) in a vendor message.

    Other fields are ignored; two names for one kind that disagree, or a value that cannot be
    read, raise PayloadError naming the field.
    """
    out: dict[str, Value] = {}
    source: dict[str, str] = {}
    for kind, names in VENDOR_FIELDS.items():
        for name in names:
            raw = msg.get(name)
            if raw is None:
                continue
            value = _in_bed(name, raw) if kind == "in_bed" else _rate_value(kind, name, raw)
            if kind in out and out[kind] != value:
                raise PayloadError(f"{source[kind]}={msg[source[kind]]!r} and {name}={raw!r} "
                                   f"disagree about {kind}")
            out.setdefault(kind, value)
            source.setdefault(kind, name)
    return out


def _rate_value(kind: str, name: str, raw: Any) -> float:
    try:
        return float(check_value(kind, raw))  # type: ignore[arg-type]
    except PayloadError as e:
        raise PayloadError(f"{name}: {e}") from None


def _in_bed(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return raw == 1
    if isinstance(raw, str) and raw.strip().lower() in IN_BED_WORDS:
        return IN_BED_WORDS[raw.strip().lower()]
    raise PayloadError(f"{name}: expected true/false, 0/1 or in/out/on/off, got {raw!r}")
