"""Raw bed-signal blocks: JSON and binary, self-contradicting blocks, vendor names, ordering."""

import json
import struct

import numpy as np
import pytest

from devices.bcg import (
    MAGIC,
    BcgBlock,
    block_from_mapping,
    block_from_value,
    encode_binary,
    encode_json,
    observation_value,
    parse_block,
    vendor_vitals,
)
from devices.blocks import BlockAssembler
from devices.observation import PayloadError

T0 = 1_790_000_000.0


def payload(**fields):
    msg = {"rate_hz": 100, "t0": T0, "seq": 3, "signal": [2048, 2050, 2047, 2049]}
    msg.update(fields)
    return json.dumps({k: v for k, v in msg.items() if v is not ...}).encode()


def test_json_block_reads_rate_time_samples_and_channels():
    b = parse_block(payload(channels=[[1, 2, 3, 4.5]]))
    assert (b.rate_hz, b.t0, b.seq, b.n) == (100.0, T0, 3, 4)
    assert b.signal.tolist() == [2048, 2050, 2047, 2049]
    assert b.channels[0].tolist() == [1, 2, 3, 4.5]
    assert b.end == pytest.approx(T0 + 0.04)
    assert not b.signal.flags.writeable


def test_seq_and_channels_are_optional():
    b = parse_block(payload(seq=..., channels=None))
    assert b.seq is None and b.channels == ()


@pytest.mark.parametrize(("fields", "reason"), [
    ({"rate_hz": 0}, "rate_hz: 0 is outside 50..250"),
    ({"rate_hz": 400}, "rate_hz: 400 is outside 50..250"),
    ({"rate_hz": True}, "rate_hz: expected a number"),
    ({"rate_hz": ...}, "rate_hz: missing"),
    ({"t0": "yesterday"}, "t0: expected a number"),
    ({"signal": []}, "signal: empty"),
    ({"signal": [1, 2, None, 4]}, "signal[2]: expected a number, got None"),
    ({"signal": [1, True]}, "signal[1]: expected a number, got True"),
    ({"signal": [1, "2"]}, "signal[1]: expected a number, got '2'"),
    ({"signal": "1,2,3"}, "signal: expected an array of numbers"),
    ({"signal": [1] * 5000}, "signal: 5000 samples, the limit is 4096"),
    ({"rate_hz": 50, "signal": [1] * 1500}, "is 30.0 s; a block is at most 20 s"),
    ({"channels": [[1, 2, 3]]}, "channels[0]: 3 samples, signal has 4: lengths differ"),
    ({"seq": -1}, "seq: expected an integer >= 0"),
    ({"gain": 2}, "unknown key(s) gain"),
])
def test_self_contradicting_blocks_are_refused_naming_the_field(fields, reason):
    with pytest.raises(PayloadError) as e:
        parse_block(payload(**fields))
    assert reason in str(e.value)


def test_nan_and_infinity_are_refused_with_their_position():
    # Python's json reads these non-standard literals; they are still not samples.
    with pytest.raises(PayloadError, match=r"signal\[1\]: not a finite number"):
        parse_block(b'{"rate_hz": 100, "t0": 1, "signal": [1, NaN, 3]}')
    with pytest.raises(PayloadError, match=r"channels\[0\]\[0\]: not a finite"):
        parse_block(b'{"rate_hz": 100, "t0": 1, "signal": [1], "channels": [[Infinity]]}')


def test_garbage_is_refused_with_the_parse_problem():
    with pytest.raises(PayloadError, match="not valid JSON"):
        parse_block(b'{"rate_hz": 100, "signal": [1, 2')
    with pytest.raises(PayloadError, match="must be a JSON object"):
        parse_block(b"[1, 2, 3]")
    with pytest.raises(PayloadError, match="not UTF-8 text"):
        parse_block(b"\xff\xfe\x00")  # neither the binary magic nor JSON


def test_binary_round_trip_int16_and_float32():
    ints = BcgBlock(128.0, T0, np.array([0.0, -5, 4095, 32767]), 7,
                    (np.array([1.0, 2, 3, 4]),))
    raw = encode_binary(ints)
    assert raw[:4] == MAGIC and len(raw) == 28 + 2 * 4 * 2  # int16 samples
    b = parse_block(raw)
    assert (b.rate_hz, b.t0, b.seq) == (128.0, T0, 7)
    assert b.signal.tolist() == [0, -5, 4095, 32767] and b.channels[0].tolist() == [1, 2, 3, 4]
    floats = BcgBlock(100.0, T0, np.array([0.5, -1.25]))
    b = parse_block(encode_binary(floats))
    assert b.signal.tolist() == [0.5, -1.25] and b.seq is None and b.channels == ()


def test_json_round_trip_keeps_counts_as_integers():
    block = BcgBlock(100.0, T0, np.array([2048.0, 2049.0]), 1)
    raw = encode_json(block)
    assert b'"signal":[2048,2049]' in raw
    assert parse_block(raw).signal.tolist() == [2048, 2049]


def test_binary_blocks_that_contradict_themselves_are_refused():
    good = encode_binary(BcgBlock(100.0, T0, np.arange(10.0)))
    with pytest.raises(PayloadError, match="lengths differ"):
        parse_block(good[:-1])  # truncated body
    with pytest.raises(PayloadError, match="header alone"):
        parse_block(good[:20])
    header = struct.Struct("<4sfdqHBB")
    with pytest.raises(PayloadError, match=r"rate_hz: 0\.0 is outside"):
        parse_block(header.pack(MAGIC, 0.0, T0, -1, 1, 1, 1) + b"\x00\x00")
    with pytest.raises(PayloadError, match="sample type: 9"):
        parse_block(header.pack(MAGIC, 100.0, T0, -1, 1, 1, 9) + b"\x00\x00")
    with pytest.raises(PayloadError, match="signal: empty"):
        parse_block(header.pack(MAGIC, 100.0, T0, -1, 0, 1, 1))
    nan = header.pack(MAGIC, 100.0, T0, -1, 2, 1, 2) + np.array([1, np.nan], "<f4").tobytes()
    with pytest.raises(PayloadError, match=r"signal\[1\]: not a finite number"):
        parse_block(nan)


def test_a_mapping_with_arrays_is_read_like_json():
    b = block_from_mapping({"rate_hz": 100, "t0": T0, "signal": np.array([1, 2, 3])})
    assert b.signal.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(PayloadError, match="signal: expected a 1-D array"):
        block_from_mapping({"rate_hz": 100, "t0": T0, "signal": np.ones((2, 2))})


def test_an_observation_value_keeps_a_summary_and_the_block():
    block = parse_block(payload())
    value = observation_value(block)
    assert {k: v for k, v in value.items() if k != "block"} == {
        "rate_hz": 100.0, "t0": T0, "seq": 3, "n": 4, "channels": 0}
    assert block_from_value(value) is block and block_from_value(block) is block
    assert block_from_value(json.loads(payload())).signal.tolist() == block.signal.tolist()
    with pytest.raises(PayloadError, match="holds no samples"):
        block_from_value({k: v for k, v in value.items() if k != "block"})
    with pytest.raises(PayloadError, match="expected a block, got list"):
        block_from_value([1, 2])


# --- vendor vitals ------------------------------------------------------------------------


@pytest.mark.parametrize(("msg", "expected"), [
    ({"heart_rate": 62, "respiration_rate": 15, "in_bed": True},
     {"heart_rate": 62.0, "respiration_rate": 15.0, "in_bed": True}),
    ({"heartRate": 58, "breathRate": 12, "inBed": False},
     {"heart_rate": 58.0, "respiration_rate": 12.0, "in_bed": False}),
    ({"hr": 70, "rr": 16, "pres": 1}, {"heart_rate": 70.0, "respiration_rate": 16.0,
                                       "in_bed": True}),  # Emfit QS, Withings
    ({"heartbeat_rate": 66, "breathe_rate": 14, "bed_status": "1"},
     {"heart_rate": 66.0, "respiration_rate": 14.0, "in_bed": True}),  # 60 GHz radars
    ({"breathing_rate": 18, "status": "on_the_bed"}, {"respiration_rate": 18.0}),  # FDS315
    ({"occupancy": True, "work_state": "presence_5min"}, {"in_bed": True}),  # Tuya strap
    ({"work_state": "none_30min"}, {"in_bed": False}),
    ({"bpm": 55, "breathing": 9, "presence": "on"},
     {"heart_rate": 55.0, "respiration_rate": 9.0, "in_bed": True}),
    ({"bed_status": "out"}, {"in_bed": False}),
    ({"in_bed": "Off"}, {"in_bed": False}),
    ({"heart_rate": None, "battery": 80, "linkquality": 90}, {}),
    ({"heart_rate": 0, "respiratory_rate": 0}, {"heart_rate": 0.0, "respiration_rate": 0.0}),
])
def test_vendor_field_names_map_to_canonical_kinds(msg, expected):
    assert vendor_vitals(msg) == expected


@pytest.mark.parametrize(("msg", "reason"), [
    ({"heart_rate": 62, "hr": 70}, "heart_rate=62 and hr=70 disagree about heart_rate"),
    ({"hr": "62"}, "hr: heart_rate: expected a number"),
    ({"heartRate": 400}, "heartRate: heart_rate: 400 is outside 0..300"),
    ({"rr": float("nan")}, "rr: respiration_rate: expected a finite number"),
    ({"occupancy": "maybe"}, "occupancy: expected true/false, 0/1 or in/out/on/off"),
    ({"pres": 2}, "pres: expected true/false"),
    ({"in_bed": True, "presence": False}, "disagree about in_bed"),
])
def test_vendor_values_that_cannot_be_read_name_the_field(msg, reason):
    with pytest.raises(PayloadError) as e:
        vendor_vitals(msg)
    assert reason in str(e.value)


def test_agreeing_aliases_are_one_reading():
    assert vendor_vitals({"heart_rate": 62, "hr": 62.0}) == {"heart_rate": 62.0}


# --- ordering (devices.blocks.BlockAssembler, shared with the wearable) ---------------------


def blocks(n, rate=100.0, size=100):
    return [BcgBlock(rate, T0 + i * size / rate, np.full(size, float(i)), i) for i in range(n)]


def released(runs):
    return [(r.block.seq, not r.discontinuity) for r in runs]


def test_in_order_bed_blocks_come_out_contiguous():
    a = BlockAssembler()
    out = []
    for b in blocks(4):
        out += released(a.push(b, b.end))
    out += released(a.flush())
    assert out == [(0, False), (1, True), (2, True), (3, True)]
    assert a.stats.gaps == a.stats.duplicates == a.stats.late == 0


def test_a_redelivered_bed_block_is_dropped():
    bs = blocks(4)
    a = BlockAssembler()
    got = []
    for b in (bs[0], bs[1], bs[2], bs[1], bs[3]):
        got += released(a.push(b, b.end))
    assert got == [(0, False), (1, True), (2, True), (3, True)]
    assert a.stats.duplicates == 1 and a.flush() == []


def test_a_partial_overlap_is_trimmed_to_its_new_samples():
    a = BlockAssembler()
    a.push(BcgBlock(100.0, T0, np.zeros(100)), 1.0)
    a.poll(10.0)
    (r,) = a.push(BcgBlock(100.0, T0 + 0.5, np.arange(100.0)), 11.0)
    assert not r.discontinuity and r.block.t0 == pytest.approx(T0 + 1.0) and r.block.n == 50
    assert r.block.signal[0] == 50.0 and a.stats.trimmed_samples == 50


def test_a_payload_over_the_message_limit_is_refused_unread():
    with pytest.raises(PayloadError, match="the limit is 65536"):
        parse_block(b"{" + b" " * 70_000 + b"}")


def test_a_clock_gone_back_starts_a_new_run_instead_of_dropping_the_stream():
    a = BlockAssembler()
    for b in blocks(3):
        a.push(b, b.end)
    a.flush()
    back = BcgBlock(100.0, T0 - 3600, np.zeros(100), 0)  # restarted with its clock an hour off
    nxt = BcgBlock(100.0, T0 - 3599, np.zeros(100), 1)
    assert a.push(back, 10.0) == []  # a stream's first block waits for an earlier one
    assert released(a.push(nxt, 11.0) + a.poll(12.0)) == [(0, False), (1, True)]
    assert a.stats.restarts == 1 and a.stats.late == 0
