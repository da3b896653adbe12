"""Wearable IMU blocks: the JSON and binary formats, refusals that name the field, and
reassembly of late, duplicated, reordered and missing blocks."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from devices.blocks import BlockAssembler
from devices.imu import (
    HEADER,
    MAGIC,
    ImuBlock,
    block_from_value,
    encode_binary,
    make_block,
    observation_value,
    parse_block,
    to_mapping,
)
from devices.observation import PayloadError, check_value

T0 = 1_795_423_445.2


def js(**fields: object) -> bytes:
    base: dict[str, object] = {"rate_hz": 50, "t0": T0, "x": [0.0, 0.1], "y": [0.0, 0.0],
                               "z": [1.0, 0.98]}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def block(t0: float, n: int = 50, rate: float = 50.0, value: float = 1.0) -> ImuBlock:
    acc = np.zeros((n, 3))
    acc[:, 2] = value
    return make_block(rate, t0, acc)


# --- JSON ------------------------------------------------------------------------------------

def test_json_block_as_documented():
    b = parse_block(js(device="pendant-1", seq=812, gx=[1, 2], gy=[0, 0], gz=[-3.5, 0]))
    assert b.rate_hz == 50.0 and b.t0 == T0 and b.seq == 812 and b.device == "pendant-1"
    assert b.acc.dtype == np.float64 and b.acc.shape == (2, 3)
    assert b.acc[1].tolist() == [0.1, 0.0, 0.98]
    assert b.gyro is not None and b.gyro[:, 2].tolist() == [-3.5, 0.0]
    assert b.n == 2 and b.end == pytest.approx(T0 + 0.04)
    assert b.summary() == {"rate_hz": 50.0, "t0": T0, "n": 2, "gyro": True, "seq": 812}


def test_json_without_the_optional_fields():
    b = parse_block(js())
    assert b.seq is None and b.device is None and b.gyro is None


def test_fractional_rates_in_range_are_fine():
    assert parse_block(js(rate_hz=52.0)).rate_hz == 52.0
    assert parse_block(js(rate_hz=25)).rate_hz == 25.0
    assert parse_block(js(rate_hz=200)).rate_hz == 200.0


@pytest.mark.parametrize(("payload", "message"), [
    (js(y=[0.0, 0.0, 0.0]), "axes of different lengths: x has 2, y has 3, z has 2"),
    (js(rate_hz=0), "rate_hz: 0 is outside 25..200 Hz"),
    (js(rate_hz=400), "rate_hz: 400 is outside 25..200 Hz"),
    (js(rate_hz=True), "rate_hz: expected a number, got True"),
    (js(rate_hz=...), "rate_hz: missing"),
    (js(t0=...), "t0: missing"),
    (js(t0="yesterday"), "t0: expected a number, got 'yesterday'"),
    (js(t0=-5), "t0: -5.0 is not a time (negative)"),
    (b'{"rate_hz": 50, "t0": Infinity, "x": [0], "y": [0], "z": [1]}',
     "t0: expected a finite number, got inf"),
    (b'{"rate_hz": 50, "t0": 1, "x": [0, NaN], "y": [0, 0], "z": [1, 1]}',
     "x: sample 1 is not a finite number (nan; NaN, infinity or null)"),
    (js(z=[1.0, None]), "z: sample 1 is not a finite number (nan; NaN, infinity or null)"),
    (js(x=[0, "a"]), "x: sample 1 is 'a', not a number"),
    (js(x=5), "x: expected a list of numbers, got int"),
    (js(x=[[0], [1]], y=[[0], [1]], z=[[1], [1]]), "x: expected a flat list of numbers"),
    (js(x=[], y=[], z=[]), "x: the block is empty"),
    (js(x=[0.0] * 501, y=[0.0] * 501, z=[1.0] * 501),
     "x: 501 samples at 50 Hz is 10.02 s; a block holds at most 2000 samples and 10 s"),
    (js(x=[100.0, 0], y=[0, 0], z=[1, 1]), "x: sample 0 is 100 g, beyond ±64 g"),
    (js(x=[0.0] * 50, y=[0.0] * 50, z=[9.81] * 50),
     "x,y,z: median magnitude 9.8 over 1 s is not in g (m/s² or raw counts?)"),
    (js(gx=[0, 0]), "gy: missing (a gyroscope sends gx, gy and gz)"),
    (js(gx=[0, 0, 0], gy=[0, 0, 0], gz=[0, 0, 0]), "gx: 3 samples but x has 2"),
    (js(gx=[5000, 0], gy=[0, 0], gz=[0, 0]), "gx: sample 0 is 5000 deg/s, beyond ±4000 deg/s"),
    (js(seq=-1), "seq: expected an integer >= 0, got -1"),
    (js(seq=1.5), "seq: expected an integer >= 0, got 1.5"),
    (js(device=""), "device: expected a device id (text), got ''"),
    (js(temperature=21), "unknown key 'temperature' in an IMU block"),
    (b"[1, 2]", "payload must be a JSON object, got list"),
    (b'{"rate_hz": 50', "payload is not valid JSON"),
])
def test_a_block_that_contradicts_itself_is_refused_naming_the_field(payload, message):
    with pytest.raises(PayloadError) as e:
        parse_block(payload)
    assert str(e.value).startswith(message)


def test_a_json_block_too_big_for_the_ingest_limit_says_so():
    long = [0.123456789] * 2000  # 10 s at 200 Hz with a gyroscope: ~150 KB of JSON
    payload = js(rate_hz=200, x=long, y=long, z=long, gx=long, gy=long, gz=long)
    with pytest.raises(PayloadError, match=r"payload is \d+ bytes; the limit is 65536"):
        parse_block(payload)
    b = make_block(200, T0, np.full((2000, 3), 0.5), np.full((2000, 3), 10.0))
    assert parse_block(encode_binary(b)).n == 2000  # the binary form fits: 24 KB


def test_a_short_loud_block_is_not_mistaken_for_m_per_s2():
    # 0.2 s of a 5 g impact is physics, not a unit error; only a second or more is judged.
    b = parse_block(js(x=[0.0] * 10, y=[0.0] * 10, z=[5.0] * 10))
    assert b.acc[:, 2].max() == 5.0


# --- binary ----------------------------------------------------------------------------------

def test_binary_round_trip_within_one_count():
    rng = np.random.default_rng(3)
    acc = rng.normal(0, 2, (100, 3))
    gyro = rng.normal(0, 200, (100, 3))
    b = make_block(100, T0, acc, gyro, seq=7)
    payload = encode_binary(b)
    assert payload[:4] == MAGIC and len(payload) == 32 + 12 * 100
    back = parse_block(payload)
    assert back.rate_hz == 100.0 and back.t0 == T0 and back.seq == 7
    assert np.abs(back.acc - acc).max() <= 0.5 / 2048 + 1e-12
    assert back.gyro is not None and np.abs(back.gyro - gyro).max() <= 0.5 / 16.4 + 1e-9


def test_binary_header_layout_is_as_documented():
    b = make_block(50, 1000.5, np.array([[0.0, 0.5, -1.0]]))
    payload = encode_binary(b, acc_lsb=1 / 1024)
    assert HEADER.size == 32 and len(payload) == 38
    assert payload[4] == 1 and payload[5] == 0  # version, flags
    assert struct.unpack_from("<H", payload, 6)[0] == 1
    assert struct.unpack_from("<f", payload, 8)[0] == 50.0
    assert struct.unpack_from("<d", payload, 16)[0] == 1000.5
    assert struct.unpack_from("<f", payload, 24)[0] == 1 / 1024
    assert struct.unpack_from("<3h", payload, 32) == (0, 512, -1024)


def binary(n: int = 2, *, version: int = 1, flags: int = 0, rate: float = 50.0,
           acc_lsb: float = 1 / 2048, extra: bytes = b"") -> bytes:
    head = HEADER.pack(MAGIC, version, flags, n, rate, 0, T0, acc_lsb, 0.0)
    return head + np.full(3 * n, 2048, "<i2").tobytes() + extra


@pytest.mark.parametrize(("payload", "message"), [
    (MAGIC + b"\x01", "binary IMU block: 5 bytes, shorter than the 32-byte header"),
    (binary(version=2), "binary IMU block: version 2 is not supported (this gateway reads "
                        "version 1)"),
    (binary(flags=0x04), "binary IMU block: unknown flags 0x04"),
    (binary(extra=b"\x00"), "binary IMU block: n=2 needs 44 bytes, got 45"),
    (binary(flags=1), "binary IMU block: n=2 with gyroscope needs 56 bytes, got 44"),
    (binary(rate=0.0), "rate_hz: 0 is outside 25..200 Hz"),
    (binary(n=0), "x: the block is empty"),
    (binary(acc_lsb=0.0), "acc_lsb: expected g per count > 0, got 0.0"),
])
def test_bad_binary_blocks_are_refused(payload, message):
    with pytest.raises(PayloadError) as e:
        parse_block(payload)
    assert str(e.value) == message


def test_json_and_binary_are_told_apart_by_the_magic():
    b = block(T0, n=4)
    assert parse_block(encode_binary(b)).n == 4
    assert parse_block(b"  " + json.dumps(to_mapping(b)).encode()).n == 4
    with pytest.raises(PayloadError, match="payload is not UTF-8 text"):
        parse_block(b"AXIX" + encode_binary(b)[4:])


def test_accel_observation_value_carries_the_block():
    b = block(T0)
    value = observation_value(b)
    assert check_value("accel", value) is value
    assert block_from_value(value) is b
    assert block_from_value(to_mapping(b)).acc.tolist() == b.acc.tolist()
    with pytest.raises(PayloadError, match="accel: the value holds no samples"):
        block_from_value(b.summary())
    with pytest.raises(PayloadError, match="rate_hz: missing"):
        block_from_value({"x": [0.0], "y": [0.0], "z": [1.0]})


# --- reassembly ------------------------------------------------------------------------------

def starts(runs) -> list[tuple[float, bool]]:
    return [(round(r.block.t0 - T0, 3), r.discontinuity) for r in runs]


def started(reorder_s: float = 2.0) -> tuple[BlockAssembler, list]:
    """An assembler that has released its first block (T0, 1 s)."""
    a = BlockAssembler(reorder_s=reorder_s)
    a.push(block(T0), T0 + 1)
    return a, a.poll(T0 + 1 + reorder_s)


def test_in_order_blocks_flow_through_at_once_after_the_first():
    a = BlockAssembler(reorder_s=2.0)
    assert a.push(block(T0), T0 + 1) == []  # the first waits for an earlier one
    assert a.waiting == 1
    assert starts(a.poll(T0 + 3.0)) == [(0.0, True)]
    assert starts(a.push(block(T0 + 1), T0 + 3.1)) == [(1.0, False)]
    assert starts(a.push(block(T0 + 2), T0 + 3.2)) == [(2.0, False)]
    assert a.stats.released == 3 and a.stats.gaps == 0


def test_the_first_block_goes_once_later_data_covers_the_window():
    a = BlockAssembler(reorder_s=2.0)
    a.push(block(T0, n=25), T0)
    assert a.push(block(T0 + 0.5, n=60), T0) == []  # data up to 1.7 s
    assert starts(a.push(block(T0 + 1.7, n=15), T0)) == [(0.0, True), (0.5, False),
                                                        (1.7, False)]


def test_out_of_order_blocks_are_put_back_in_order():
    a = BlockAssembler(reorder_s=2.0)
    runs = []
    for t in (0, 1, 3, 2, 5, 4, 6, 7):
        runs += a.push(block(T0 + t), T0 + t + 1)
    runs += a.flush()
    assert starts(runs) == [(float(t), t == 0) for t in range(8)]
    assert a.stats.gaps == 0 and a.stats.late == 0


def test_duplicates_are_dropped_and_counted():
    a = BlockAssembler(reorder_s=2.0)
    runs = []
    for t in (0, 0, 1, 2, 1, 3, 3):
        runs += a.push(block(T0 + t), T0 + t + 1)
    runs += a.flush()
    assert starts(runs) == [(0.0, True), (1.0, False), (2.0, False), (3.0, False)]
    assert a.stats.duplicates == 3 and a.stats.received == 7


def test_blocks_older_than_what_was_released_are_dropped_as_late():
    a = BlockAssembler(reorder_s=1.0)
    runs = a.push(block(T0 + 2), T0)
    runs += a.push(block(T0 + 3), T0 + 10)
    assert starts(runs) == [(2.0, True), (3.0, False)]
    assert a.push(block(T0 + 1), T0 + 10) == []  # 3 s late: the stream has moved on
    assert a.stats.late == 1 and a.stats.duplicates == 0


def test_a_hole_that_never_fills_becomes_a_discontinuity():
    a = BlockAssembler(reorder_s=2.0)
    runs = a.push(block(T0), T0)
    runs += a.push(block(T0 + 1), T0 + 2)
    runs += a.push(block(T0 + 3), T0 + 4)  # the block at +2 s is missing
    assert starts(runs) == [(0.0, True), (1.0, False)]
    runs = a.push(block(T0 + 4), T0 + 5)  # now data reaches 3 s past the hole's start
    assert starts(runs) == [(3.0, True), (4.0, False)]
    assert runs[0].gap_s == pytest.approx(1.0)
    assert a.stats.gaps == 1 and a.stats.gap_s == pytest.approx(1.0)


def test_a_hole_is_given_up_on_the_gateways_clock_when_the_device_goes_quiet():
    a = BlockAssembler(reorder_s=2.0)
    a.push(block(T0), T0)
    a.push(block(T0 + 1), T0 + 2)
    assert a.push(block(T0 + 3), T0 + 4) == []
    assert a.poll(T0 + 5.9) == []
    assert starts(a.poll(T0 + 6.0)) == [(3.0, True)]


def test_a_hole_filled_in_time_leaves_no_trace():
    a = BlockAssembler(reorder_s=2.0)
    runs = a.push(block(T0), T0)
    runs += a.push(block(T0 + 1), T0 + 2)
    runs += a.push(block(T0 + 3), T0 + 4)
    runs += a.push(block(T0 + 2), T0 + 4.5)
    assert starts(runs) == [(0.0, True), (1.0, False), (2.0, False), (3.0, False)]
    assert a.stats.gaps == 0


def test_a_partly_overlapping_block_loses_the_samples_already_released():
    a, runs = started()
    runs += a.push(block(T0 + 0.6, n=50), T0 + 10)  # 0.6..1.6 s overlaps 0.6..1.0
    assert starts(runs) == [(0.0, True), (1.0, False)]
    assert runs[1].block.n == 30
    assert a.stats.trimmed_samples == 20


def test_a_rate_change_restarts_the_filters_without_waiting():
    a, runs = started()
    runs += a.push(block(T0 + 1, n=100, rate=100.0), T0 + 10)
    assert starts(runs) == [(0.0, True), (1.0, True)]
    assert runs[1].gap_s is None


def test_too_many_waiting_blocks_give_up_the_hole():
    a = BlockAssembler(reorder_s=100.0, max_waiting=3)
    runs = a.push(block(T0, n=5), T0)
    runs += a.poll(T0 + 100)
    for i in range(2, 6):  # 0.1 s blocks after a hole at 0.1 s: little data, few seconds
        runs += a.push(block(T0 + 0.1 * i, n=5), T0 + 100)
    assert starts(runs)[:2] == [(0.0, True), (0.2, True)]
    assert a.stats.overflow == 1 and a.waiting == 0


def test_timestamps_within_half_a_sample_join_up():
    a, runs = started()
    runs += a.push(block(T0 + 1 + 0.009), T0 + 10)  # 9 ms off at 50 Hz (20 ms samples)
    runs += a.push(block(T0 + 2 + 0.011), T0 + 10)  # 11 ms after the previous one's end
    assert [r.discontinuity for r in runs] == [True, False, False]
