"""Payloads that are almost right: mutations of real ones, for fuzzing the adapters.

Every catalogue model's captured payloads (devices/fixtures/) are the seeds; a mutation
drops, renames or retypes properties, swaps in hostile values (huge and non-finite numbers,
deep nesting, odd strings, `null`), truncates the JSON text or flips its bytes. Raw signal
blocks (wearable `/imu`, bed `/bcg`) are mutated the same way in JSON and in their binary
forms. The contract under test: an adapter either returns Observations whose values pass
their kind's check, or raises PayloadError naming the problem — never anything else.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np

from devices import bcg, imu
from devices.adapters import ADAPTERS
from devices.catalogue import CATALOGUE, Model
from devices.observation import Observation, PayloadError, check_value
from devices.registry import Device

HOSTILE: list[Any] = [
    None, True, False, 0, -1, 1, 2**63, -(2**63), 1e308, -1e308, 1e-308, math.nan,
    math.inf, -math.inf, "", " ", "null", "true", "NaN", "Infinity", "open", "closed",
    "emergency", "single", "\u0000", "安心" * 50, "x" * 5000, [], [1, 2], {}, {"a": {"b": {}}},
    [[[[[[[[[[]]]]]]]]]], 3.5, "87", -0.0,
]
_JSON_NONFINITE = {math.nan: "NaN", math.inf: "Infinity", -math.inf: "-Infinity"}


def seeds() -> list[tuple[Model, dict[str, Any]]]:
    """(model, a captured payload) for every catalogue entry."""
    out = []
    for model in CATALOGUE:
        for case in json.loads(model.fixture.read_text("utf-8"))["payloads"]:
            out.append((model, case["payload"]))
    return out


def _mutate_mapping(rng: random.Random, msg: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    msg = dict(msg)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        if op == 0 and msg:
            msg.pop(rng.choice(list(msg)))
        elif op == 1:
            msg[rng.choice(keys or ["x"])] = rng.choice(HOSTILE)
        elif op == 2 and msg:
            k = rng.choice(list(msg))
            msg[k] = rng.choice(HOSTILE)
        elif op == 3:
            msg[rng.choice(["", "ts", "state", "action", "unknown_" + str(rng.randrange(9))])] = \
                rng.choice(HOSTILE)
        elif op == 4 and msg:
            k = rng.choice(list(msg))
            msg[k + rng.choice(["_", "X", ""])] = msg.pop(k)
        elif msg:  # a value of the right name but the wrong shape
            k = rng.choice(list(msg))
            v = msg[k]
            msg[k] = [v] if rng.random() < 0.5 else {"value": v}
    return msg


def _dump(rng: random.Random, value: Any) -> bytes:
    try:
        text = json.dumps(value, allow_nan=True, ensure_ascii=rng.random() < 0.5)
    except (ValueError, TypeError):
        text = "{}"
    data = text.encode()
    r = rng.random()
    if r < 0.08:
        data = data[:rng.randrange(len(data) + 1)]  # truncated
    elif r < 0.14 and data:
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        data = bytes(b)
    elif r < 0.16:
        data = rng.randbytes(rng.randrange(64))
    elif r < 0.17:
        data = b"[" * 100_000  # deep nesting, over the size limit
    return data


def _corrupt(rng: random.Random, payload: bytes) -> bytes:
    """A binary block with a few bytes changed (header or samples), sometimes cut short."""
    data = bytearray(payload)
    for _ in range(rng.randint(0, 4)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    if rng.random() < 0.3:
        data = data[:rng.randrange(len(data) + 1)]
    return bytes(data)


def _block_payload(rng: random.Random) -> tuple[str, bytes]:
    """A mutated raw block: ("imu" | "bcg", payload)."""
    if rng.random() < 0.5:
        n = rng.randint(1, 120)
        block = imu.make_block(rng.choice([25, 50, 100, 200]), 1.79e9 + rng.random(),
                               np.ones((n, 3)) * rng.uniform(-2, 2))
        if rng.random() < 0.5:
            return "imu", _corrupt(rng, imu.encode_binary(block))
        msg = imu.to_mapping(block)
        return "imu", _dump(rng, _mutate_mapping(rng, msg, [*msg, "gx", "gy", "gz"]))
    n = rng.randint(1, 300)
    block = bcg.BcgBlock(rng.choice([50, 100, 128, 250]), 1.79e9, np.full(n, 2048.0))
    if rng.random() < 0.5:
        return "bcg", _corrupt(rng, bcg.encode_binary(block))
    msg = json.loads(bcg.encode_json(block))
    return "bcg", _dump(rng, _mutate_mapping(rng, msg, [*msg, "channels"]))


def payloads(rng: random.Random) -> Iterator[tuple[Device, Model, str, bytes]]:
    """An endless stream of (device, model, topic, payload) to throw at the adapters."""
    pool = seeds()
    devices = {m.model: Device("fuzz", "home-fuzz", m.source, f"t/{m.model}", m.model,
                               room="r") for m in CATALOGUE}
    wearable = devices["anxin-wearable-imu"]
    bed = devices["anxin-bed-sensor-raw"]
    models = {m.model: m for m in CATALOGUE}
    while True:
        r = rng.random()
        if r < 0.15:
            kind, data = _block_payload(rng)
            dev = wearable if kind == "imu" else bed
            yield dev, models[dev.model], f"{dev.topic}/{kind}", data
            continue
        model, seed = rng.choice(pool)
        dev = devices[model.model]
        keys = [e.property for e in model.exposes]
        topic = dev.topic + ("/availability" if r < 0.2 else "")
        yield dev, model, topic, _dump(rng, _mutate_mapping(rng, seed, keys))


def check(dev: Device, model: Model, topic: str, payload: bytes) -> str:
    """Run one payload through its adapter: "ok" or "refused"; anything else raises."""
    refused: PayloadError | None = None
    try:
        found = ADAPTERS[dev.source](dev, model, topic, payload, 1.79e9)
    except PayloadError as e:
        refused, found = e, list(e.partial)
    for o in found:
        _valid(o)
    if refused is None:
        return "ok"
    if not str(refused):
        raise AssertionError(f"a PayloadError must say what was wrong: {payload[:80]!r}")
    return "refused"


def _valid(o: Observation) -> None:
    if o.kind in ("accel", "bcg"):
        (imu if o.kind == "accel" else bcg).block_from_value(o.value)
        return
    check_value(o.kind, o.value)
    assert isinstance(o.at, float) and math.isfinite(o.at)
