"""The BCG emulator: seeded, plausible, labelled, and published in the devices/bcg.py format."""

import itertools

import numpy as np
import pytest
from scipy import signal as sps

from devices.bcg import parse_block
from simulator.bcg import (
    APNOEA,
    BRADYCARDIA,
    MOVEMENT,
    OUT_OF_BED,
    TACHYCARDIA,
    Event,
    Plan,
    score,
    simulate,
)

PLAN = Plan(apnoeas=2, bradycardias=1, tachycardias=1, bed_exits=1, weak_spells=1)


@pytest.fixture(scope="module")
def night():
    return simulate(3, 3600, 100, plan=PLAN)


def test_same_seed_same_recording_other_seed_other():
    a, b = simulate(5, 300, 50), simulate(5, 300, 50)
    assert np.array_equal(a.signal, b.signal) and a.truth.events == b.truth.events
    assert not np.array_equal(a.signal, simulate(6, 300, 50).signal)


def test_signal_is_12_bit_counts_at_the_rate(night):
    assert night.signal.shape == (360_000,)
    assert night.signal.min() >= 0 and night.signal.max() <= 4095
    assert np.array_equal(night.signal, np.round(night.signal))


def test_plan_places_every_event_without_overlap(night):
    kinds = [e.kind for e in night.truth.events if e.kind != MOVEMENT]
    assert sorted(kinds) == sorted([APNOEA, APNOEA, BRADYCARDIA, TACHYCARDIA, OUT_OF_BED,
                                    "weak_signal"])
    spans = sorted((e.start, e.end) for e in night.truth.events)
    assert all(a[1] <= b[0] + 6 for a, b in itertools.pairwise(spans))
    for e in night.truth.events:
        lo, hi = {APNOEA: (20, 60), BRADYCARDIA: (180, 360), TACHYCARDIA: (360, 540),
                  OUT_OF_BED: (120, 900), MOVEMENT: (2, 15)}.get(e.kind, (0, 1e9))
        assert lo <= e.end - e.start <= hi


def test_truth_rates_are_in_the_ranges_described(night):
    t = night.truth
    events = {e.kind: e for e in t.events}
    hr, rr = t.hr, t.rr
    quiet = np.ones(hr.shape, bool)
    for e in t.events:
        quiet[int(e.start) - 20:int(e.end) + 20] = False
    assert np.nanmin(hr[quiet]) >= 45 and np.nanmax(hr[quiet]) <= 100
    assert np.nanmin(rr) >= 6 and np.nanmax(rr) <= 28
    b, tc = events[BRADYCARDIA], events[TACHYCARDIA]
    assert np.nanmax(hr[int(b.start) + 20:int(b.end) - 20]) < 40
    assert np.nanmin(hr[int(tc.start) + 20:int(tc.end) - 20]) > 130
    out = events[OUT_OF_BED]
    assert not t.in_bed[int(out.start) + 1:int(out.end) - 1].any()
    assert np.isnan(hr[int(out.start) + 1:int(out.end) - 1]).all()
    for e in t.events:
        if e.kind == APNOEA:
            assert np.isnan(rr[int(e.start) + 1:int(e.end) - 1]).all()
            assert not np.isnan(hr[int(e.start) + 1:int(e.end) - 1]).any()  # the heart beats


def band_rms(rec, band, start, end):
    sos = sps.butter(2, band, "bandpass", fs=rec.rate_hz, output="sos")
    y = sps.sosfiltfilt(sos, rec.signal)
    return float(np.std(y[int(start * rec.rate_hz):int(end * rec.rate_hz)]))


def test_apnoea_silences_the_breathing_band_but_not_the_heartbeat():
    rec = simulate(1, 600, 100, plan=Plan(movements_per_h=0,
                                          events=(Event(APNOEA, 300, 340),)))
    before = band_rms(rec, (0.1, 0.7), 240, 290)
    during = band_rms(rec, (0.1, 0.7), 310, 335)
    assert during < 0.2 * before
    assert band_rms(rec, (3, 10), 310, 335) > 0.5 * band_rms(rec, (3, 10), 240, 290)


def test_an_empty_bed_is_noise_in_both_bands():
    rec = simulate(1, 900, 100, plan=Plan(movements_per_h=0,
                                          events=(Event(OUT_OF_BED, 400, 700),)))
    for band in ((0.1, 0.7), (3, 10)):
        assert band_rms(rec, band, 450, 650) < 0.3 * band_rms(rec, band, 200, 380)


def test_blocks_are_contiguous_and_parse_back_as_json_and_binary():
    rec = simulate(2, 10.5, 128)
    for binary in (False, True):
        out = [parse_block(p) for _, p in rec.payloads(1.0, binary=binary)]
        assert [b.seq for b in out] == list(range(11))
        assert np.array_equal(np.concatenate([b.signal for b in out]), rec.signal)
        for a, b in itertools.pairwise(out):
            assert b.t0 == pytest.approx(a.end)
        assert out[-1].n == 1344 - 10 * 128
    published = [t for t, _ in rec.payloads(2.0)]
    assert published[0] == pytest.approx(rec.t0 + 2.0)


def test_score_counts_within_tolerance_and_rates_without_truth(night):
    t = night.truth
    times = np.array([100.0, 200.0, 300.0, 400.0])
    true = np.array([t.window(t.hr, x, 30) for x in times])
    est = true + np.array([1.0, -6.0, np.nan, 0.0])
    s = score(t, times, est, "hr", 30, 5)
    assert (s["windows"], s["reported"], s["scored"], s["within"]) == (4, 3, 3, 2)
    out = next(e for e in t.events if e.kind == OUT_OF_BED)
    s = score(t, np.array([out.end - 10]), np.array([60.0]), "hr", 30, 5)
    assert s["reported_without_truth"] == 1 and s["scored"] == 0
