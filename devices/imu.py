"""Wearable IMU blocks (anxin-native): parse, check, and put back in time order.

A wearable that leaves the deciding to the gateway streams its accelerometer (and optionally
its gyroscope) as *blocks*: a run of samples at a fixed rate, stamped with the time of the
first sample. This module reads one block (`parse_block`) and reassembles a device's blocks
into a gap-aware, time-ordered stream (`devices.blocks.BlockAssembler`, shared with the bed
sensor's blocks). Both are pure.

**JSON block** (UTF-8, one object; an unknown key is an error, the format is ours):

    {"device": "pendant-1",        optional; the topic names the device anyway
     "rate_hz": 50,                25..200 samples per second (any real number in range)
     "t0": 1795423445.20,          device time of the first sample, seconds (unix time)
     "seq": 812,                   optional block counter (integer >= 0), kept as evidence
     "x": [0.01, ...], "y": [...], "z": [...],        acceleration in g, one value per sample
     "gx": [...], "gy": [...], "gz": [...]}           optional gyroscope in deg/s, all three
                                                      or none, as long as x

Sample i was taken at `t0 + i / rate_hz`. A block holds 1 to `MAX_SAMPLES` samples and at most
`MAX_BLOCK_S` seconds, and a JSON block must fit the ingest's 64 KiB message limit
(devices/adapters/_common.py; 1 s at 200 Hz with a gyroscope is ~15-25 KB of JSON, the binary
form 2.4 KB). Send blocks of 1 s or less: a block is only looked at once it has arrived, so
its length adds to the time a fall takes to be noticed.

**Binary block** (little endian; a 32-byte header, then the samples):

    offset  size  type     field
    0       4     bytes    magic b"AXIM" (41 58 49 4D)
    4       1     uint8    version, 1
    5       1     uint8    flags: bit 0 set = gyroscope samples follow; other bits 0
    6       2     uint16   n, samples per axis (1..MAX_SAMPLES)
    8       4     float32  rate_hz (25..200)
    12      4     uint32   seq (block counter, wraps)
    16      8     float64  t0, device time of the first sample (unix seconds)
    24      4     float32  acc_lsb: g per count (> 0; e.g. 1/2048 for a ±16 g int16 range)
    28      4     float32  gyro_lsb: deg/s per count (> 0 with the gyro flag, else 0)
    32      6n    int16    acceleration counts, interleaved x0 y0 z0 x1 y1 z1 ...
    32+6n   6n    int16    gyroscope counts, interleaved the same way (only with the flag)

so a block is exactly 32 + 6n bytes (32 + 12n with the gyroscope), and a value is
count × lsb. **JSON or binary**: a payload whose first four bytes are `AXIM` is binary;
anything else is read as JSON (a JSON text cannot start with `A`).

**Refused with a PayloadError naming the field**: axes of different lengths, an empty block,
a rate of 0 or outside 25..200 Hz, NaN or infinite samples (JSON `NaN`, `null` in an array),
a `t0` that is not a finite time >= 0, more than `MAX_SAMPLES` samples or `MAX_BLOCK_S`
seconds, a gyroscope with only some axes, acceleration beyond ±`MAX_ABS_G` g or a block of a
second or more whose median magnitude exceeds `MAX_MEDIAN_G` (m/s² or raw counts sent as g),
gyroscope beyond ±`MAX_ABS_DPS` deg/s, a binary block of the wrong length, version or flags.

**Reassembly**: see `devices.blocks.BlockAssembler`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from devices.observation import PayloadError
from devices.payload import json_object

RATE_MIN_HZ, RATE_MAX_HZ = 25.0, 200.0
MAX_BLOCK_S = 10.0
MAX_SAMPLES = int(MAX_BLOCK_S * RATE_MAX_HZ)
# Plausibility of "g": consumer accelerometers top out at ±16 g (a few at ±32 g); a value far
# beyond, or a whole second whose median magnitude is several g, is another unit.
MAX_ABS_G = 64.0
MAX_MEDIAN_G = 4.0
MAX_ABS_DPS = 4000.0

MAGIC = b"AXIM"
VERSION = 1
FLAG_GYRO = 0x01
HEADER = struct.Struct("<4sBBHfIdff")  # magic, version, flags, n, rate, seq, t0, acc, gyro lsb
ACC_KEYS = ("x", "y", "z")
GYRO_KEYS = ("gx", "gy", "gz")
JSON_KEYS = frozenset({"device", "rate_hz", "t0", "seq", *ACC_KEYS, *GYRO_KEYS})


@dataclass(frozen=True, slots=True, eq=False)
class ImuBlock:
    """One block of samples: `acc` (n, 3) in g, `gyro` (n, 3) in deg/s or None.

    Sample i was taken at `t0 + i / rate_hz` (device time). Build one with `make_block`,
    which checks it; the arrays are float64 and must not be modified.
    """

    rate_hz: float
    t0: float
    acc: np.ndarray
    gyro: np.ndarray | None = None
    seq: int | None = None
    device: str | None = None

    @property
    def n(self) -> int:
        """Samples in the block."""
        return int(self.acc.shape[0])

    @property
    def end(self) -> float:
        """Device time just past the last sample: where a contiguous next block starts."""
        return self.t0 + self.n / self.rate_hz

    def tail(self, start: int) -> ImuBlock:
        """The block without its first `start` samples (t0 moved on accordingly)."""
        return ImuBlock(self.rate_hz, self.t0 + start / self.rate_hz, self.acc[start:],
                        None if self.gyro is None else self.gyro[start:], self.seq, self.device)

    def summary(self) -> dict[str, Any]:
        """JSON-safe description (no samples): what to store or log about the block."""
        out: dict[str, Any] = {"rate_hz": self.rate_hz, "t0": self.t0, "n": self.n,
                               "gyro": self.gyro is not None}
        if self.seq is not None:
            out["seq"] = self.seq
        return out


def _finite_number(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise PayloadError(f"{name}: expected a number, got {v!r}")
    if not math.isfinite(v):
        raise PayloadError(f"{name}: expected a finite number, got {v!r}")
    return float(v)


def _check_samples(name: str, a: np.ndarray, limit: float, unit: str) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PayloadError(f"{name}: sample {i} is not a finite number ({float(a[i])}; NaN, "
                           f"infinity or null)")
    over = np.abs(a) > limit
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise PayloadError(f"{name}: sample {i} is {a[i]:g} {unit}, beyond ±{limit:g} {unit}")


def make_block(rate_hz: Any, t0: Any, acc: np.ndarray, gyro: np.ndarray | None = None,
               seq: Any = None, device: Any = None, *,
               axes: tuple[str, ...] = ACC_KEYS, gyro_axes: tuple[str, ...] = GYRO_KEYS
               ) -> ImuBlock:
    """A checked ImuBlock from (n, 3) arrays; PayloadError naming the field if it is wrong.

    `axes`/`gyro_axes` name the columns in error messages (the JSON keys by default).
    """
    rate = _finite_number("rate_hz", rate_hz)
    if not RATE_MIN_HZ <= rate <= RATE_MAX_HZ:
        raise PayloadError(f"rate_hz: {rate:g} is outside {RATE_MIN_HZ:g}..{RATE_MAX_HZ:g} Hz")
    start = _finite_number("t0", t0)
    if start < 0:
        raise PayloadError(f"t0: {start!r} is not a time (negative)")
    acc = np.asarray(acc, dtype=np.float64)
    n = acc.shape[0]
    if n == 0:
        raise PayloadError(f"{axes[0]}: the block is empty")
    if n > MAX_SAMPLES or n / rate > MAX_BLOCK_S:
        raise PayloadError(f"{axes[0]}: {n} samples at {rate:g} Hz is {n / rate:g} s; a block "
                           f"holds at most {MAX_SAMPLES} samples and {MAX_BLOCK_S:g} s")
    for j, name in enumerate(axes):
        _check_samples(name, acc[:, j], MAX_ABS_G, "g")
    if n / rate >= 1.0:
        median = float(np.median(np.sqrt(np.einsum("ij,ij->i", acc, acc))))
        if median > MAX_MEDIAN_G:
            raise PayloadError(f"{','.join(axes)}: median magnitude {median:.1f} over "
                               f"{n / rate:g} s is not in g (m/s² or raw counts?)")
    if gyro is not None:
        gyro = np.asarray(gyro, dtype=np.float64)
        for j, name in enumerate(gyro_axes):
            _check_samples(name, gyro[:, j], MAX_ABS_DPS, "deg/s")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 0):
        raise PayloadError(f"seq: expected an integer >= 0, got {seq!r}")
    if device is not None and (not isinstance(device, str) or not device):
        raise PayloadError(f"device: expected a device id (text), got {device!r}")
    return ImuBlock(rate, start, acc, gyro, seq, device)


def _json_axes(msg: Mapping[str, Any], keys: tuple[str, ...]) -> np.ndarray:
    columns = []
    for k in keys:
        v = msg[k]
        if not isinstance(v, list):
            raise PayloadError(f"{k}: expected a list of numbers, got {type(v).__name__}")
        try:
            # None becomes NaN here and is refused by the finiteness check with its index.
            col = np.array(v, dtype=np.float64)
        except (TypeError, ValueError):
            bad = next(i for i, e in enumerate(v)
                       if e is not None and (isinstance(e, bool)
                                             or not isinstance(e, int | float)))
            raise PayloadError(f"{k}: sample {bad} is {v[bad]!r}, not a number") from None
        if col.ndim != 1:
            raise PayloadError(f"{k}: expected a flat list of numbers")
        columns.append(col)
    lengths = {k: len(c) for k, c in zip(keys, columns, strict=True)}
    if len(set(lengths.values())) > 1:
        raise PayloadError("axes of different lengths: " + ", ".join(
            f"{k} has {n}" for k, n in lengths.items()))
    return np.column_stack(columns)


def from_mapping(msg: Mapping[str, Any]) -> ImuBlock:
    """An ImuBlock from the JSON object form (already decoded); PayloadError if wrong."""
    unknown = sorted(set(msg) - JSON_KEYS)
    if unknown:
        raise PayloadError(f"unknown key {unknown[0]!r} in an IMU block (known: "
                           f"{', '.join(sorted(JSON_KEYS))})")
    for k in ("rate_hz", "t0", *ACC_KEYS):
        if msg.get(k) is None:
            raise PayloadError(f"{k}: missing")
    acc = _json_axes(msg, ACC_KEYS)
    gyro = None
    present = [k for k in GYRO_KEYS if msg.get(k) is not None]
    if present:
        if len(present) != 3:
            missing = [k for k in GYRO_KEYS if k not in present]
            raise PayloadError(f"{missing[0]}: missing (a gyroscope sends gx, gy and gz)")
        gyro = _json_axes(msg, GYRO_KEYS)
        if gyro.shape[0] != acc.shape[0]:
            raise PayloadError(f"gx: {gyro.shape[0]} samples but x has {acc.shape[0]}")
    return make_block(msg["rate_hz"], msg["t0"], acc, gyro, msg.get("seq"), msg.get("device"))


def _parse_binary(payload: bytes) -> ImuBlock:
    if len(payload) < HEADER.size:
        raise PayloadError(f"binary IMU block: {len(payload)} bytes, shorter than the "
                           f"{HEADER.size}-byte header")
    _, version, flags, n, rate, seq, t0, acc_lsb, gyro_lsb = HEADER.unpack_from(payload)
    if version != VERSION:
        raise PayloadError(f"binary IMU block: version {version} is not supported "
                           f"(this gateway reads version {VERSION})")
    if flags & ~FLAG_GYRO:
        raise PayloadError(f"binary IMU block: unknown flags 0x{flags:02x}")
    has_gyro = bool(flags & FLAG_GYRO)
    expected = HEADER.size + 6 * n * (2 if has_gyro else 1)
    if len(payload) != expected:
        raise PayloadError(f"binary IMU block: n={n}{' with gyroscope' if has_gyro else ''} "
                           f"needs {expected} bytes, got {len(payload)}")
    if not (math.isfinite(acc_lsb) and acc_lsb > 0):
        raise PayloadError(f"acc_lsb: expected g per count > 0, got {acc_lsb!r}")
    counts = np.frombuffer(payload, dtype="<i2", count=3 * n, offset=HEADER.size)
    acc = counts.reshape(n, 3).astype(np.float64) * float(acc_lsb)
    gyro = None
    if has_gyro:
        if not (math.isfinite(gyro_lsb) and gyro_lsb > 0):
            raise PayloadError(f"gyro_lsb: expected deg/s per count > 0, got {gyro_lsb!r}")
        g = np.frombuffer(payload, dtype="<i2", count=3 * n, offset=HEADER.size + 6 * n)
        gyro = g.reshape(n, 3).astype(np.float64) * float(gyro_lsb)
    return make_block(float(rate), t0, acc, gyro, seq)


def parse_block(payload: bytes) -> ImuBlock:
    """One IMU block, JSON or binary (see the module docstring), or PayloadError."""
    if payload[:4] == MAGIC:
        return _parse_binary(payload)
    return from_mapping(json_object(payload))


def encode_binary(block: ImuBlock, acc_lsb: float = 1 / 2048, gyro_lsb: float = 1 / 16.4
                  ) -> bytes:
    """The binary form of `block` (what a device would send); values are rounded to counts.

    Raises ValueError when a value does not fit int16 at the chosen lsb.
    """
    parts = [block.acc]
    lsbs = [acc_lsb]
    if block.gyro is not None:
        parts.append(block.gyro)
        lsbs.append(gyro_lsb)
    out = [HEADER.pack(MAGIC, VERSION, FLAG_GYRO if block.gyro is not None else 0, block.n,
                       block.rate_hz, (block.seq or 0) & 0xFFFFFFFF, block.t0, acc_lsb,
                       gyro_lsb if block.gyro is not None else 0.0)]
    for values, lsb in zip(parts, lsbs, strict=True):
        counts = np.rint(values / lsb)
        if np.abs(counts).max() > 32767:
            raise ValueError(f"a value does not fit int16 at {lsb:g} per count")
        out.append(counts.astype("<i2").tobytes())
    return b"".join(out)


def to_mapping(block: ImuBlock) -> dict[str, Any]:
    """The JSON object form of `block` (lists of floats)."""
    out: dict[str, Any] = {"rate_hz": block.rate_hz, "t0": block.t0}
    if block.seq is not None:
        out["seq"] = block.seq
    if block.device is not None:
        out["device"] = block.device
    for j, k in enumerate(ACC_KEYS):
        out[k] = block.acc[:, j].tolist()
    if block.gyro is not None:
        for j, k in enumerate(GYRO_KEYS):
            out[k] = block.gyro[:, j].tolist()
    return out


# --- the `accel` Observation ---------------------------------------------------------------

def observation_value(block: ImuBlock) -> dict[str, Any]:
    """The value of an `accel` Observation: the block's summary plus the block itself.

    The "block" entry is not JSON: a store that serialises observation values keeps
    `block.summary()` (the other entries) instead.
    """
    return {**block.summary(), "block": block}


def block_from_value(value: Mapping[str, Any]) -> ImuBlock:
    """The ImuBlock in an `accel` Observation's value: `observation_value`'s, or the JSON form."""
    block = value.get("block")
    if isinstance(block, ImuBlock):
        return block
    if block is not None or "x" not in value:
        raise PayloadError("accel: the value holds no samples (a stored summary?)")
    return from_mapping(value)
