"""The wearable fall detector: falls caught and everyday movements not, at every rate; the
same decision however the stream is cut, reordered, duplicated or holed; the evidence; the
long lie; and the Observation/tick interface the core calls.

Recordings come from the physical model in simulator/wearable.py (a waist device,
SisFall's activities), fixed seeds.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from detectors import fall_imu
from detectors.fall_imu import FS, FallImuConfig, FallImuState, Where
from devices.imu import ImuBlock, make_block, observation_value, to_mapping
from devices.observation import Observation
from simulator import wearable

T0 = 1_795_400_000.0
CFG = FallImuConfig()
RATES = (25, 50, 100, 200)


def rec(code: str, seed: int, rate: int = 200, **kw: object) -> np.ndarray:
    rng = np.random.default_rng(seed)
    acc, _ = wearable.recording(code, rng, **kw)
    return wearable.at_rate(acc, rate)


def falls(found) -> list:
    return [f for f in found if f.event == "fall"]


# --- what is a fall -------------------------------------------------------------------------

FALLS = ("F01", "F02", "F03", "F08", "F11", "F15")
ADLS = ("D01", "D03", "D10", "D11", "D12", "D13", "D16", "D18", "D19")


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("code", FALLS)
def test_falls_are_caught_at_every_rate(code, rate):
    for seed in (1, 2):
        found, dev = fall_imu.stream_recording(rec(code, seed, rate, gets_up=False), rate, CFG,
                                               t0=T0)
        assert len(falls(found)) == 1, (code, seed, dev.counters)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("code", ADLS)
def test_everyday_movements_are_not_falls_at_any_rate(code, rate):
    kw = {"duration_s": 30.0} if code in ("D01", "D03") else {}
    for seed in (1, 2):
        found, dev = fall_imu.stream_recording(rec(code, seed, rate, **kw), rate, CFG, t0=T0)
        assert falls(found) == [], (code, seed, dev.counters)


def test_what_rejects_the_look_alikes():
    """Each everyday movement that has part of a fall's shape lacks another part."""
    upright = {"D03": 20.0,  # jogging: flight phases and 3 g landings, upright
               "D10": 20.0,  # sitting down hard: a 2-3 g spike, then a 20° tilt
               "D19": 20.0}  # a jump: free fall and a landing, upright
    for code, seconds in upright.items():
        _, dev = fall_imu.stream_recording(rec(code, 3, 50, duration_s=seconds), 50, CFG,
                                           trace=True)
        measured = [t for t in dev.trace if t["orientation_change_deg"] is not None]
        assert measured, code
        assert all(t["orientation_change_deg"] < CFG.angle_deg - 15 for t in measured), code
    # lying down quickly: an impact on the mattress, horizontal and still, but no free fall
    _, dev = fall_imu.stream_recording(rec("D13", 3, 50), 50, CFG, trace=True)
    (t,) = dev.trace
    assert t["orientation_change_deg"] > CFG.angle_deg and t["still_fraction"] == 1.0
    assert t["freefall_min_g"] > CFG.freefall_g and t["peak_g"] < CFG.strong_impact_g
    assert t["failed"] == "no_free_fall"


def test_lying_down_slowly_is_not_even_an_impact():
    _, dev = fall_imu.stream_recording(rec("D12", 4), 200, CFG)
    assert dev.counters.impacts == 0


# --- the evidence ---------------------------------------------------------------------------

def test_the_fall_finding_and_its_evidence():
    acc = rec("F01", 5, 100, gets_up=False)  # forward, from walking
    found, _ = fall_imu.stream_recording(acc, 100, CFG, t0=T0)
    (f,) = found
    assert (f.detector, f.code, f.event, f.severity) == ("fall_imu", 100, "fall", 1)
    e = f.evidence
    assert e["peak_g"] >= CFG.impact_g
    assert e["freefall_min_g"] <= CFG.freefall_g and e["free_fall"] is True
    assert 60 <= e["orientation_change_deg"] <= 120  # upright to prone, give or take
    assert 0.5 * CFG.still_s <= e["stillness_s"] <= CFG.still_s
    assert e["rate_hz"] == 100 and e["internal_rate_hz"] == FS
    assert e["decided_s_after_impact"] == 3.0 and e["setting"] == "default"
    # The impact time is where the SVM of the recording peaks (within the 5 Hz filter's lag).
    svm = np.linalg.norm(acc, axis=1)
    assert abs(e["device_time"] - (T0 + svm.argmax() / 100)) < 0.2
    # found when the block holding `decided_s_after_impact` of data arrived (1 s blocks)
    assert e["device_time"] + 3.0 <= f.at <= e["device_time"] + 4.0 + 1e-6


def test_peak_and_posture_read_alike_at_every_rate():
    acc = rec("F03", 6, 200, gets_up=False)
    ev = []
    for rate in RATES:
        found, _ = fall_imu.stream_recording(wearable.at_rate(acc, rate) if rate != 200 else acc,
                                             rate, CFG)
        (f,) = found
        ev.append(f.evidence)
    peaks = [e["peak_g"] for e in ev]
    angles = [e["orientation_change_deg"] for e in ev]
    assert max(peaks) - min(peaks) < 0.25 * max(peaks)
    assert max(angles) - min(angles) < 5


# --- streaming: the decision does not depend on how the stream is cut ----------------------

def decisions(found) -> list[tuple]:
    return [(f.event, round(f.evidence.get("device_time", 0), 2),
             f.evidence.get("peak_g"), f.evidence.get("orientation_change_deg"),
             f.evidence.get("freefall_min_g")) for f in found]


@pytest.mark.parametrize("rate", [25, 200])
def test_state_carried_across_blocks_gives_the_decision_of_one_big_block(rate):
    acc = rec("F02", 7, rate, gets_up=False)
    one, dev1 = fall_imu.stream_recording(acc, rate, CFG, block_s=len(acc) / rate, t0=T0)
    assert len(falls(one)) == 1
    for block_s in (1.0, 0.1, 0.02 if rate == 200 else 0.04, 3.3):
        cut, dev = fall_imu.stream_recording(acc, rate, CFG, block_s=block_s, t0=T0)
        assert decisions(cut) == decisions(one), block_s
        # The 50 Hz history is the same samples, not merely the same verdict (to the 0.24 µs
        # a unix time in float64 resolves: each block's t0 is rounded to it).
        n = min(dev.used, dev1.used)
        a = dev.buf[dev.used - n:dev.used]
        b = dev1.buf[dev1.used - n:dev1.used]
        assert dev.k0 + dev.used == dev1.k0 + dev1.used
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_random_block_sizes_change_nothing():
    rng = np.random.default_rng(8)
    acc = rec("F12", 8, 100, gets_up=False)
    one, _ = fall_imu.stream_recording(acc, 100, CFG, block_s=100.0, t0=T0)
    cuts = np.cumsum(rng.integers(1, 120, 400))
    cuts = cuts[cuts < len(acc)]
    blocks = [ImuBlock(100.0, T0 + s / 100, acc[s:e])
              for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(acc)], strict=True)]
    found, _ = fall_imu.stream_blocks(blocks, CFG)
    assert decisions(found) == decisions(one) and len(one) == 1


def shuffled_within(blocks: list[ImuBlock], window: int, rng) -> list[ImuBlock]:
    """Blocks out of order by up to `window` places, some sent twice."""
    keys = np.arange(len(blocks)) + rng.uniform(0, window, len(blocks))
    out = [blocks[i] for i in np.argsort(keys)]
    for i in rng.choice(len(out), 5, replace=False):
        out.insert(int(i) + 1, out[int(i)])
    return out


def test_reordered_and_duplicated_blocks_give_the_same_decision():
    rng = np.random.default_rng(9)
    acc = rec("F04", 9, 50, gets_up=False)
    in_order = fall_imu.blocks_of(acc, 50, 0.5, T0)
    ref, _ = fall_imu.stream_blocks(in_order, CFG)
    messy = shuffled_within(in_order, 3, rng)  # up to 1.5 s late: inside the 2 s window
    dev = fall_imu.device_state(CFG)
    where = Where("home-1", "pendant", "living_room")
    found = []
    for i, b in enumerate(messy):
        found += fall_imu.push(dev, b, T0 + 0.5 * i, CFG, where)  # arrival order
    found += fall_imu.finish(dev, T0 + 100, CFG, where)
    assert decisions(found) == decisions(ref) and len(ref) == 1
    assert dev.assembler.stats.duplicates == 5
    assert dev.assembler.stats.gaps == 0 and dev.assembler.stats.late == 0


def test_a_missing_block_before_the_fall_restarts_the_filter_and_the_fall_is_still_caught():
    acc = rec("F01", 10, 50, gets_up=False)
    blocks = fall_imu.blocks_of(acc, 50, 0.5, T0)
    peak_block = int(np.linalg.norm(acc, axis=1).argmax() / 25)
    holed = blocks[:peak_block - 4] + blocks[peak_block - 3:]  # 0.5 s lost, 1.5-2 s before
    found, dev = fall_imu.stream_blocks(holed, CFG)
    assert len(falls(found)) == 1
    assert dev.assembler.stats.gaps == 1 and dev.assembler.stats.gap_s == pytest.approx(0.5)
    assert np.isnan(dev.buf[:dev.used, 3]).sum() >= 24  # the hole is in the history as NaN


def test_after_a_hole_the_filter_starts_from_the_first_sample_not_from_zero():
    # Standing still, a 3 s hole, then the device turned over: no transient, no impact.
    still = np.tile([0.0, 0.0, 1.0], (200, 1))
    turned = np.tile([1.0, 0.0, 0.0], (200, 1))
    blocks = fall_imu.blocks_of(still, 50, 1.0, T0) + fall_imu.blocks_of(turned, 50, 1.0,
                                                                           T0 + 7)
    found, dev = fall_imu.stream_blocks(blocks, CFG)
    assert found == [] and dev.counters.impacts == 0
    valid = ~np.isnan(dev.buf[:dev.used, 3])
    np.testing.assert_allclose(dev.buf[:dev.used][valid, 3], 1.0, atol=1e-9)
    after = dev.buf[dev.used - 150:dev.used, :3]
    np.testing.assert_allclose(after, np.tile([1.0, 0.0, 0.0], (150, 1)), atol=1e-9)


def test_a_long_hole_after_the_impact_leaves_it_undecided_not_a_guess():
    acc = rec("F01", 11, 50, gets_up=False)
    peak = int(np.linalg.norm(acc, axis=1).argmax())
    # 1.2 s after the impact, then 40 s of nothing (beyond MAX_HOLE_S), then lying data
    cut = peak + 60
    blocks = fall_imu.blocks_of(acc[:cut], 50, 1.0, T0)
    blocks += fall_imu.blocks_of(np.tile(acc[-1], (50 * 10, 1)), 50, 1.0, T0 + cut / 50 + 40)
    found, dev = fall_imu.stream_blocks(blocks, CFG)
    assert falls(found) == []
    assert dev.counters.undecided >= 1


# --- settings, long lie, recovery ------------------------------------------------------------

def test_strict_waits_for_stillness_and_lets_a_quick_recovery_go():
    acc = rec("F01", 12, 50, gets_up=True)  # up again 6-9 s after the impact
    default, _ = fall_imu.stream_recording(acc, 50, CFG)
    assert len(falls(default)) == 1  # decided at 3 s: the cancel window is for this
    strict_cfg = FallImuConfig.strict(still_s=8.0)
    strict, dev = fall_imu.stream_recording(acc, 50, strict_cfg)
    assert falls(strict) == []
    assert set(dev.counters.rejected) & {"moving", "posture"}
    lying, _ = fall_imu.stream_recording(rec("F01", 12, 50, gets_up=False), 50, strict_cfg)
    assert len(falls(lying)) == 1 and lying[0].evidence["setting"] == "strict"
    assert lying[0].evidence["decided_s_after_impact"] == 9.0


def lie_on(acc: np.ndarray, seconds: float, rate: int, rng) -> np.ndarray:
    """The recording continued with the person still on the floor (breathing, noise)."""
    n = int(seconds * rate)
    tail = np.tile(acc[-50:].mean(axis=0), (n, 1))
    return np.vstack([acc, tail + rng.normal(0, 0.008, tail.shape)])


def test_a_long_lie_raises_a_second_finding_once():
    rng = np.random.default_rng(13)
    cfg = dataclasses.replace(CFG, long_lie_s=120.0)
    acc = lie_on(rec("F03", 13, 50, gets_up=False), 200, 50, rng)
    found, dev = fall_imu.stream_recording(acc, 50, cfg, t0=T0)
    assert [f.event for f in found] == ["fall", "long_lie"]
    fall, lie = found
    assert (lie.code, lie.severity, lie.detector) == (100, 1, "fall_imu")
    e = lie.evidence
    assert e["fall_device_time"] == fall.evidence["device_time"]
    assert 120 <= e["lying_s"] <= 122
    assert e["stillness_s"] > 100 and e["moving_s"] < 20
    assert e["mean_orientation_change_deg"] > 45
    assert lie.at - fall.evidence["device_time"] >= 120
    assert dev.counters.long_lies == 1


def test_getting_up_is_a_recovery_no_long_lie_and_the_next_fall_counts_again():
    cfg = dataclasses.replace(CFG, long_lie_s=30.0)
    rng = np.random.default_rng(14)
    rot = wearable.mount(rng)  # one wearer, one way of wearing the device
    first = wearable.at_rate(wearable.recording("F01", rng, rot, gets_up=True)[0], 50)
    # standing about for 40 s after getting up (upright, small sway), then another fall
    standing = np.tile(first[-25:].mean(axis=0), (2000, 1)) + rng.normal(0, 0.01, (2000, 3))
    second = wearable.at_rate(wearable.recording("F02", rng, rot, gets_up=False)[0], 50)
    acc = np.vstack([first, standing, second])
    found, dev = fall_imu.stream_recording(acc, 50, cfg)
    assert [f.event for f in found] == ["fall", "fall"]
    assert dev.counters.recoveries >= 1 and dev.counters.long_lies == 0


def test_no_second_fall_while_the_person_is_down():
    rng = np.random.default_rng(16)
    acc = lie_on(rec("F02", 16, 50, gets_up=False), 20, 50, rng)
    # a knock on the floor while lying: an impact with a dip, still horizontal afterwards
    i = len(acc) - 500
    acc[i:i + 10] *= 0.3
    acc[i + 10:i + 15] *= 3.5
    found, dev = fall_imu.stream_recording(acc, 50, CFG)
    assert len(falls(found)) == 1
    assert dev.counters.rejected.get("while_down", 0) >= 1


# --- the core's interface --------------------------------------------------------------------

def obs_of(b: ImuBlock, at: float) -> Observation:
    return Observation("home-1", "pendant", "accel", observation_value(b), at,
                       room="living_room", device_at=b.t0)


def test_step_takes_accel_observations_and_names_who_fell():
    state = FallImuState()
    acc = rec("F11", 17, 50, gets_up=False)
    found = []
    for b in fall_imu.blocks_of(acc, 50, 1.0, T0):
        found += fall_imu.step(state, obs_of(b, b.end + 0.05), b.end + 0.05, CFG)
    found += fall_imu.tick(state, T0 + 100, CFG)
    (f,) = found
    assert (f.home, f.device, f.room) == ("home-1", "pendant", "living_room")
    assert f.at == pytest.approx(f.evidence["device_time"] + 3.05, abs=1.0)
    assert state.devices["pendant"].counters.falls == 1


def test_the_json_form_of_a_block_works_as_an_observation_value_too():
    state = FallImuState()
    acc = rec("F01", 18, 50, gets_up=False)
    found = []
    for b in fall_imu.blocks_of(acc, 50, 1.0, T0):
        o = dataclasses.replace(obs_of(b, b.end), value=to_mapping(b))
        found += fall_imu.step(state, o, b.end, CFG)
    assert len(falls(found)) == 1


def test_retained_other_and_unreadable_observations_are_ignored_or_counted():
    state = FallImuState()
    b = make_block(50, T0, np.tile([0.0, 0.0, 1.0], (50, 1)))
    assert fall_imu.step(state, obs_of(b, T0 + 1), T0 + 1, CFG, prime=True) == []
    assert state.devices == {}
    other = Observation("home-1", "pendant", "battery", 80, T0)
    assert fall_imu.step(state, other, T0, CFG) == []
    bad = Observation("home-1", "pendant", "accel", {"rate_hz": 50}, T0)
    assert fall_imu.step(state, bad, T0, CFG) == []
    assert state.devices["pendant"].counters.bad_values == 1


def test_tick_releases_blocks_held_for_a_missing_one():
    state = FallImuState()
    acc = rec("F01", 19, 50, gets_up=False)
    blocks = fall_imu.blocks_of(acc, 50, 0.5, T0)
    jp = int(np.linalg.norm(acc, axis=1).argmax() / 25)  # the block holding the impact
    # data to 3 s after the impact, the block 1.5-2 s after it lost; then the device is quiet
    sent = [b for j, b in enumerate(blocks[:jp + 7]) if j != jp + 3]
    found = []
    for b in sent:
        found += fall_imu.step(state, obs_of(b, b.end), b.end, CFG)
    assert falls(found) == []  # what came after the hole waits for it
    held_since = blocks[jp + 4].end
    assert fall_imu.tick(state, held_since + CFG.reorder_s - 0.1, CFG) == []
    found = fall_imu.tick(state, held_since + CFG.reorder_s, CFG)
    assert len(falls(found)) == 1
    assert found[0].room == "living_room" and found[0].at == held_since + CFG.reorder_s
