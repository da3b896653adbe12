"""Vital signs from bed sensors: heart and breathing rate from a raw bed signal, and findings.

**From a raw signal** (devices/bcg.py blocks: a ballistocardiogram or pressure signal at
50-250 Hz). Each device's blocks are put back in order (`devices.blocks.BlockAssembler`); a hole is
a discontinuity and the analysis restarts its filters there. Per contiguous run, streaming,
with the filter state carried from block to block (`sosfilt` with `zi`, so feeding a night
in 1 s blocks gives what feeding it in one piece gives):

1. Anti-alias and decimate by an integer to a working rate of 25-50 Hz.
2. Three causal band-passes: the heartbeat band (2.5-10 Hz: the BCG's I-J-K complex; the
   lower edge keeps breathing's harmonics out, which at 1 Hz made the envelope beat at half
   the heart rate), the envelope of that band (its square, band-passed 0.5-4 Hz: one bump
   per beat whatever the complex's shape) and the breathing band (0.05-0.8 Hz).
3. Every `update_s` (2 s, on a grid of the device clock) an assessment:
   - **heart rate** from the autocorrelation of the last 30 s of the envelope: the shortest
     lag whose peak reaches 60 % of the highest in 0.33-2 s (30-180 bpm), so a double
     period is not taken for the beat (the harmonic check); quality = the normalised
     autocorrelation at that lag (1 = perfectly periodic). Reported when quality >= 0.4.
   - **breathing rate** from the Hann-windowed spectrum of the last 60 s of the breathing
     band: the highest peak in 3-45 /min, halved where a peak at half the frequency holds
     half its power (the harmonic check); quality = the share of the band's power within
     0.04 Hz of the peak. Reported when quality >= 0.4, in bed, with no pause of 16 s in
     the window, and not within 10 % of the heart rate (the heartbeat leaking in).
   - **movement**: a 2 s segment whose heart-band RMS is 3x the median of the last minute's
     segments: no rate from any window holding one. (Relative to the last minute only: a
     test against the level of a good heartbeat locked out a resident whose signal came
     back strong after a weak spell, as movement for ever.)
   - **occupancy**: the device's own `in_bed` where it reports one. Else evidence: a
     periodic heartbeat or a breath is someone in bed; a heart-band level under 25 % of a
     recent good heartbeat's, or 30 s with neither heartbeat nor breath, is an empty bed
     (energy alone never says "in bed": an empty bed's noise on a poor sensor is as strong
     as a weak heartbeat). A bed that has shown neither is unknown.
   - **no breathing**: seconds since the breathing band last exceeded 30 % of the resident's
     recent breath amplitude (or anything moved), counted only in bed and over a heartbeat
     seen in the last 10 s (or the device's own in_bed): an empty bed has no heartbeat.

No rate is reported while the resident moves, is out of bed, or the signal is poor: a missing
rate is not a normal one (and is never a zero).

**From device-reported rates** (`heart_rate`, `respiration_rate`, `in_bed` Observations, from
the anxin bed sensor or a vendor's through `devices.bcg.vendor_vitals`): the same rules. A
reported heart rate of 0 is "no pulse found" (vendors send 0 when they lose it), not a rate;
a reported breathing rate of 0 while the device says the resident is in bed is "no breathing
detected", counted from the first such report. While a device streams raw blocks, its own
rates are ignored (the raw analysis has the quality index they lack).

**Findings** (Contact ID 100 medical for all; there is no more specific code):

- `no_breathing`: in bed, no breath for `no_breath_s` (20 s). Severity 1: respiratory
  arrest is the one where minutes matter.
- `bradycardia`: < 40 bpm over 2 min of good estimates. Severity 2: an old heart this slow
  (heart block, beta blockers, hypothermia) needs a call-back now, not a dispatch on sight.
- `tachycardia`: > 130 bpm over 5 min at rest (no rate is estimated while moving).
  Severity 2: in bed at rest this is an arrhythmia, fever or sepsis.
- `bradypnoea` (< 6 /min over 2 min) and `tachypnoea` (> 30 /min over 5 min): severity 2;
  pneumonia and heart failure show in the breathing rate first, and a rate under 6 is
  sedation or exhaustion. Not severity 1: periodic breathing can read as a slow rate.

Durations count good-quality time only: poor-quality or movement spells pause an episode,
and `max_gap_s` (60 s) without a good estimate ends it, so a restless minute never completes
one. Hysteresis: an episode continues until the rate is back `hr_hysteresis_bpm` (5) or
`rr_hysteresis` (2 /min) on the normal side; after a finding the rule is quiet until the rate
has been normal for `rearm_s` (5 min). Thresholds are per resident (`Limits`, by bed).
Evidence: the rate and quality series around the event (one point per 10 s), thresholds,
durations, the device time.

This detects *central* apnoea and respiratory arrest (no breathing movement); an obstructed
airway with the chest still heaving looks like breathing to a bed sensor. A heart that stops
with the breathing looks, to a signal without a load channel, like an empty bed: a bed
sensor that reports `in_bed` from a load cell closes that gap.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from detectors.finding import Finding
from devices.bcg import BcgBlock, block_from_value
from devices.blocks import BlockAssembler, Run
from devices.observation import Observation, PayloadError

NAME = "vitals"
CODE = 100
NO_BREATHING, BRADYCARDIA, TACHYCARDIA = "no_breathing", "bradycardia", "tachycardia"
BRADYPNOEA, TACHYPNOEA = "bradypnoea", "tachypnoea"
SEVERITY = {NO_BREATHING: 1, BRADYCARDIA: 2, TACHYCARDIA: 2, BRADYPNOEA: 2, TACHYPNOEA: 2}
RAW_KIND = "bcg"
"""The Observation kind for a raw block (value: `devices.bcg.observation_value(block)`, the
block itself, or its JSON object)."""
RAW_LIVE_S = 30.0  # a device that sent a raw block this recently: its own rates are ignored
HISTORY_S = 900.0  # assessments kept per bed for evidence
EVIDENCE_STEP_S = 10.0
EVIDENCE_BEFORE_S = 60.0


@dataclass(frozen=True, slots=True)
class Limits:
    """One resident's thresholds (a resident on beta blockers may need `brady_bpm` 35)."""

    brady_bpm: float = 40.0
    brady_s: float = 120.0
    tachy_bpm: float = 130.0
    tachy_s: float = 300.0
    rr_low: float = 6.0
    rr_low_s: float = 120.0
    rr_high: float = 30.0
    rr_high_s: float = 300.0
    no_breath_s: float = 20.0
    hr_hysteresis_bpm: float = 5.0
    rr_hysteresis: float = 2.0
    rearm_s: float = 300.0  # normal this long before the same rule can raise again
    max_gap_s: float = 60.0  # no good estimate this long ends an episode

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if not getattr(self, name) > 0:
                raise ValueError(f"vitals limits: {name} must be > 0, got {getattr(self, name)}")
        if self.brady_bpm + self.hr_hysteresis_bpm >= self.tachy_bpm:
            raise ValueError("vitals limits: brady_bpm + hr_hysteresis_bpm must be below "
                             "tachy_bpm")
        if self.rr_low + self.rr_hysteresis >= self.rr_high:
            raise ValueError("vitals limits: rr_low + rr_hysteresis must be below rr_high")


@dataclass(frozen=True, slots=True)
class Bed:
    """A bed sensor (raw or reporting rates): whose bed, their limits, and other devices
    whose `in_bed` tells whether the bed is occupied (a pressure mat on the same bed)."""

    resident: str | None = None
    limits: Limits | None = None
    occupancy: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SignalSettings:
    """How raw signals are analysed (per installation; the defaults fit the simulator and
    under-mattress films)."""

    working_hz: float = 25.0
    update_s: float = 2.0
    settle_s: float = 5.0  # filters settle after a discontinuity
    hr_window_s: float = 30.0
    rr_window_s: float = 60.0
    heart_band_hz: tuple[float, float] = (2.5, 10.0)
    envelope_band_hz: tuple[float, float] = (0.5, 4.0)
    resp_band_hz: tuple[float, float] = (0.05, 0.8)
    resp_hz: float = 5.0  # the breathing band is looked at this often
    hr_range_bpm: tuple[float, float] = (30.0, 180.0)
    rr_range_per_min: tuple[float, float] = (3.0, 45.0)
    hr_quality_min: float = 0.4
    rr_quality_min: float = 0.4
    harmonic_ratio: float = 0.6
    rr_peak_hz: float = 0.04
    cardiac_leak: float = 0.1
    motion_ratio: float = 3.0
    occupied_off: float = 0.25
    breath_frac: float = 0.3
    heart_fresh_s: float = 10.0  # no breathing counts only with a heartbeat this recent
    vacant_s: float = 30.0  # neither heartbeat nor breath this long: the bed is empty
    pause_s: float = 16.0  # a breath gap this long: no breathing rate from windows holding it
    ref_alpha: float = 0.05
    reorder_s: float = 2.0


@dataclass(frozen=True, slots=True)
class VitalsConfig:
    """The home's bed sensors and the default limits."""

    home: str = ""
    limits: Limits = field(default_factory=Limits)
    beds: Mapping[str, Bed] = field(default_factory=dict)  # device id -> Bed
    signal: SignalSettings = field(default_factory=SignalSettings)

    def bed(self, device: str) -> Bed:
        return self.beds.get(device) or Bed()

    def limits_for(self, device: str) -> Limits:
        return self.bed(device).limits or self.limits


@dataclass(frozen=True, slots=True)
class Assessment:
    """What one update (or one device report) says. None: no estimate (poor quality,
    movement, out of bed, or not measured by this report)."""

    t: float  # device time
    hr: float | None = None
    hr_q: float | None = None
    rr: float | None = None
    rr_q: float | None = None
    occupied: bool | None = None
    motion: bool = False
    apnoea_s: float | None = None  # seconds without a breath while in bed
    measures: tuple[str, ...] = ("hr", "rr", "apnoea")
    source: str = "bcg"


# --- Signal analysis -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Filters:
    q: int
    r: float
    aa: np.ndarray | None
    heart: np.ndarray
    env: np.ndarray
    resp: np.ndarray
    q2: int
    wh: int
    wr: int
    nfft_hr: int
    nfft_rr: int
    hann: np.ndarray


# scipy is imported where it is used: a home without a raw-streaming device never loads it
# (scipy.signal is ~70 MB of a Pi's memory and a second of start-up).
@lru_cache(maxsize=32)
def _filters(rate_hz: float, s: SignalSettings) -> _Filters:
    from scipy import fft as sfft  # noqa: PLC0415 - see above
    from scipy import signal as sps  # noqa: PLC0415 - see above

    q = max(1, int(rate_hz // s.working_hz))
    r = rate_hz / q
    aa = sps.butter(4, 0.4 * r, fs=rate_hz, output="sos") if q > 1 else None
    heart = sps.butter(2, [s.heart_band_hz[0], min(s.heart_band_hz[1], 0.4 * r)], "bandpass",
                       fs=r, output="sos")
    env = sps.butter(2, s.envelope_band_hz, "bandpass", fs=r, output="sos")
    resp = sps.butter(2, s.resp_band_hz, "bandpass", fs=r, output="sos")
    q2 = max(1, round(r / s.resp_hz))
    wh, wr = round(s.hr_window_s * r), round(s.rr_window_s * r)
    w2 = len(range(0, wr, q2))
    return _Filters(q, r, aa, heart, env, resp, q2, wh, wr, sfft.next_fast_len(2 * wh),
                    1 << math.ceil(math.log2(2 * w2)), np.hanning(w2))


@dataclass(slots=True)
class Analyser:
    """One device's raw-signal analysis: a contiguous run's filters and buffers, and what is
    learned about the resident (kept across runs)."""

    rate_hz: float = 0.0
    t0: float = 0.0  # device time of the run's first sample
    n_in: int = 0
    n_y: int = 0  # working-rate samples in the run
    zi: list[np.ndarray] = field(default_factory=list)  # aa, heart, env, resp
    start: int = 0  # run index of the buffers' first sample
    h: np.ndarray = field(default_factory=lambda: np.empty(0))
    e: np.ndarray = field(default_factory=lambda: np.empty(0))
    b: np.ndarray = field(default_factory=lambda: np.empty(0))
    seg_rms: np.ndarray = field(default_factory=lambda: np.empty(0))  # last minute's segments
    last_t: float = -math.inf  # last update time
    last_motion_t: float = -math.inf
    last_breath_t: float = -math.inf
    last_pause_t: float = -math.inf
    last_heart_t: float = -math.inf
    last_life_t: float = -math.inf  # last breath seen (not movement)
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=3))
    occupied: bool | None = None
    ref_h: float | None = None  # heart-band RMS of a quiet, good heartbeat
    ref_b: float | None = None  # breath amplitude (sqrt 2 x RMS of the breathing band)

    def restart(self, block: BcgBlock) -> None:
        """A new contiguous run begins with `block` (after a hole, a rate change, or first)."""
        self.rate_hz, self.t0, self.n_in, self.n_y, self.zi = block.rate_hz, block.t0, 0, 0, []
        self.start = 0
        self.h = self.e = self.b = self.seg_rms = np.empty(0)
        self.last_t = self.last_motion_t = self.last_pause_t = self.last_heart_t = \
            self.last_life_t = -math.inf
        self.recent.clear()
        self.occupied = None
        # Nothing is known about the time in the hole: the no-breathing clock starts again.
        self.last_breath_t = block.t0


def feed(an: Analyser, block: BcgBlock, continues: bool, s: SignalSettings,
         in_bed: bool | None = None) -> list[Assessment]:
    """Add a block to the analysis; return the assessments now due (`in_bed`: the device's
    own occupancy, if it reports one)."""
    from scipy import signal as sps  # noqa: PLC0415 - see _filters
    if not continues or block.rate_hz != an.rate_hz:
        an.restart(block)
    f = _filters(block.rate_hz, s)
    x = block.signal
    if not an.zi:
        y0 = x[0]
        an.zi = [sps.sosfilt_zi(f.aa) * y0 if f.aa is not None else np.empty(0),
                 sps.sosfilt_zi(f.heart) * y0, np.zeros((f.env.shape[0], 2)),
                 sps.sosfilt_zi(f.resp) * y0]
    if f.aa is not None:
        xf, an.zi[0] = sps.sosfilt(f.aa, x, zi=an.zi[0])
        y = xf[(-an.n_in) % f.q::f.q]
    else:
        y = x
    an.n_in += x.shape[0]
    if y.shape[0] == 0:
        return []
    h, an.zi[1] = sps.sosfilt(f.heart, y, zi=an.zi[1])
    e, an.zi[2] = sps.sosfilt(f.env, h * h, zi=an.zi[2])
    b, an.zi[3] = sps.sosfilt(f.resp, y, zi=an.zi[3])
    an.h, an.e, an.b = (np.concatenate((an.h, h)), np.concatenate((an.e, e)),
                        np.concatenate((an.b, b)))
    an.n_y += y.shape[0]
    out = _due(an, f, s, in_bed)
    keep = f.wr + math.ceil(s.update_s * f.r) + 2
    if an.h.shape[0] > keep:
        cut = an.h.shape[0] - keep
        an.h, an.e, an.b, an.start = an.h[cut:], an.e[cut:], an.b[cut:], an.start + cut
    return out


def _due(an: Analyser, f: _Filters, s: SignalSettings, in_bed: bool | None
         ) -> list[Assessment]:
    u = s.update_s
    last_sample_t = an.t0 + (an.n_y - 1) / f.r
    k0 = math.floor(an.last_t / u) + 1 if math.isfinite(an.last_t) else math.ceil(an.t0 / u)
    k1 = math.floor(last_sample_t / u)
    if k1 < k0:
        return []
    an.last_t = k1 * u
    tk = np.arange(k0, k1 + 1) * u
    end = np.floor((tk - an.t0) * f.r).astype(np.int64)  # last sample at or before t_k
    first = np.floor((tk - u - an.t0) * f.r).astype(np.int64) + 1  # of the 2 s segment
    ok = first >= math.ceil(s.settle_s * f.r)
    tk, end, first = tk[ok], end[ok], first[ok]
    out: list[Assessment] = []
    for i in range(0, tk.shape[0], 512):  # bounded memory for a night fed in one block
        out += _assess(an, f, s, tk[i:i + 512], end[i:i + 512], first[i:i + 512], in_bed)
    return out


def _assess(an: Analyser, f: _Filters, s: SignalSettings, tk: np.ndarray, end: np.ndarray,
            first: np.ndarray, in_bed: bool | None) -> list[Assessment]:
    if tk.shape[0] == 0:
        return []
    base = an.start
    settle = math.ceil(s.settle_s * f.r)
    # Per 2 s segment: heart-band RMS (movement, occupancy) and breathing-band peak.
    bounds = np.append(first - base, end[-1] + 1 - base)
    seg_len = np.diff(bounds)
    stop = bounds[-1]  # reduceat's last segment would run to the end of the buffer
    seg_rms = np.sqrt(np.add.reduceat(an.h[:stop] ** 2, bounds[:-1]) / seg_len)
    seg_b = np.maximum.reduceat(np.abs(an.b[:stop]), bounds[:-1])
    history = np.concatenate((np.full(max(0, 29 - an.seg_rms.shape[0]), np.nan),
                              an.seg_rms[-29:], seg_rms))
    median = np.nanmedian(np.lib.stride_tricks.sliding_window_view(history, 30), axis=1)
    an.seg_rms = history[-29:][~np.isnan(history[-29:])]
    moving = seg_rms > s.motion_ratio * median

    hr_ok = end - f.wh + 1 >= settle
    rr_ok = end - f.wr + 1 >= settle
    hr = np.full(tk.shape, np.nan)
    hr_q = np.zeros(tk.shape)
    rr = np.full(tk.shape, np.nan)
    rr_q = np.zeros(tk.shape)
    amp = np.full(tk.shape, np.nan)
    if hr_ok.any():
        idx = (end[hr_ok] - f.wh + 1 - base)[:, None] + np.arange(f.wh)
        hr[hr_ok], hr_q[hr_ok] = _heart_rate(an.e[idx], f, s)
    if rr_ok.any():
        idx = (end[rr_ok] - f.wr + 1 - base)[:, None] + np.arange(0, f.wr, f.q2)
        windows = an.b[idx]
        rr[rr_ok], rr_q[rr_ok] = _breathing_rate(windows, f, s)
        amp[rr_ok] = np.sqrt(2.0) * windows.std(axis=1)  # a sine's amplitude from its RMS

    out = []
    for k in range(tk.shape[0]):
        out.append(_judge_update(an, s, float(tk[k]), float(seg_rms[k]), bool(moving[k]),
                                 float(seg_b[k]), float(hr[k]), float(hr_q[k]), float(rr[k]),
                                 float(rr_q[k]), float(amp[k]), in_bed))
    return out


def _judge_update(an: Analyser, s: SignalSettings, t: float, seg_rms: float, moving: bool,
                  seg_b: float, hr: float, hr_q: float, rr: float, rr_q: float, amp: float,
                  in_bed: bool | None) -> Assessment:
    """The sequential part of one update: references, occupancy, gates, the breath clock."""
    if moving:
        an.last_motion_t = t
    an.recent.append(seg_rms)
    still_hr = an.last_motion_t <= t - s.hr_window_s
    still_rr = an.last_motion_t <= t - s.rr_window_s
    # A periodic heartbeat is someone in bed, whatever the occupancy guess says.
    good_hr = still_hr and hr_q >= s.hr_quality_min and in_bed is not False
    if good_hr:
        an.ref_h = seg_rms if an.ref_h is None else an.ref_h + s.ref_alpha * (seg_rms - an.ref_h)
        an.last_heart_t = t
    breath = an.ref_b is not None and seg_b > s.breath_frac * an.ref_b
    if breath:
        an.last_life_t = t
    if in_bed is not None:
        an.occupied = in_bed
    elif good_hr or breath:
        an.occupied = True
    elif an.ref_h is not None and sum(an.recent) / len(an.recent) < s.occupied_off * an.ref_h:
        an.occupied = False
    elif an.occupied and max(an.last_heart_t, an.last_life_t) < t - s.vacant_s:
        # The empty bed of a noisy sensor has as much energy as a weak heartbeat: energy
        # alone never says someone is in bed, and a minute of nothing says nobody is.
        an.occupied = False
    # Breath clock: a breath, a movement or an empty bed resets it.
    if moving or breath or an.occupied is not True:
        an.last_breath_t = t  # (the clock of the no-breathing rule)
    # Counted only over a heartbeat (or where the device itself says in bed): a resident
    # whose breathing stopped still has one; an empty bed has neither.
    apnoea = (t - an.last_breath_t if an.occupied and an.ref_b is not None and (
        in_bed is True or an.last_heart_t >= t - s.heart_fresh_s) else None)
    if apnoea is not None and apnoea >= s.pause_s:
        an.last_pause_t = t
    good_rr = (still_rr and rr_q >= s.rr_quality_min and an.occupied is True
               and an.last_pause_t <= t - s.rr_window_s
               and (apnoea is None or apnoea <= 120.0 / rr + s.update_s)
               and not (good_hr and abs(rr - hr) <= s.cardiac_leak * hr))
    if good_rr:
        an.ref_b = amp if an.ref_b is None else an.ref_b + s.ref_alpha * (amp - an.ref_b)
    return Assessment(t, hr if good_hr else None, round(hr_q, 3), rr if good_rr else None,
                      round(rr_q, 3), an.occupied, moving, apnoea)


def _heart_rate(env: np.ndarray, f: _Filters, s: SignalSettings
                ) -> tuple[np.ndarray, np.ndarray]:
    """Heart rate (bpm) and quality per row of envelope windows, by autocorrelation."""
    from scipy import fft as sfft  # noqa: PLC0415 - see _filters
    w = env.shape[1]
    x = env - env.mean(axis=1, keepdims=True)
    spec = sfft.rfft(x, f.nfft_hr, axis=1)
    lo_lag = max(2, math.floor(60 * f.r / s.hr_range_bpm[1]))
    hi_lag = math.ceil(60 * f.r / s.hr_range_bpm[0]) + 1
    acf = sfft.irfft(spec.real ** 2 + spec.imag ** 2, f.nfft_hr, axis=1)[:, :hi_lag + 2]
    acf *= w / (w - np.arange(hi_lag + 2))  # unbiased: longer lags overlap less
    zero = acf[:, :1]
    acf /= np.where(zero > 0, zero, 1.0)
    mid = acf[:, lo_lag:hi_lag + 1]
    peaks = (mid > acf[:, lo_lag - 1:hi_lag]) & (mid >= acf[:, lo_lag + 1:hi_lag + 2])
    vals = np.where(peaks, mid, -np.inf)
    best = vals.max(axis=1)
    # Harmonic check: the first peak close to the best is the beat; a double period (every
    # other beat lines up as well as every beat) must not halve the rate.
    pick = np.argmax(vals >= s.harmonic_ratio * np.maximum(best, 0)[:, None], axis=1) + lo_lag
    rows = np.arange(acf.shape[0])
    y0, y1, y2 = acf[rows, pick - 1], acf[rows, pick], acf[rows, pick + 1]
    denom = y0 - 2 * y1 + y2
    delta = np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1.0), 0.0)
    lag = pick + np.clip(delta, -0.5, 0.5)
    valid = best > 0
    return np.where(valid, 60 * f.r / lag, np.nan), np.where(valid, y1, 0.0)


def _breathing_rate(b: np.ndarray, f: _Filters, s: SignalSettings
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Breathing rate (/min) and quality per row of breathing-band windows, by spectrum."""
    from scipy import fft as sfft  # noqa: PLC0415 - see _filters
    fs = f.r / f.q2
    x = (b - b.mean(axis=1, keepdims=True)) * f.hann
    p = np.abs(sfft.rfft(x, f.nfft_rr, axis=1)) ** 2
    freqs = np.fft.rfftfreq(f.nfft_rr, 1 / fs)
    lo, hi = (v / 60 for v in s.rr_range_per_min)
    band = np.flatnonzero((freqs >= lo) & (freqs <= hi))
    pb = p[:, band]
    fb = freqs[band]
    rows = np.arange(pb.shape[0])
    k = np.argmax(pb, axis=1)
    # Harmonic check: a peak at half the frequency with half the power is the breath.
    half = np.searchsorted(fb, fb[k] / 2)
    near = np.clip(half[:, None] + np.arange(-3, 4), 0, fb.shape[0] - 1)
    j = near[rows, np.argmax(pb[rows[:, None], near], axis=1)]
    use_half = (fb[k] / 2 >= lo) & (pb[rows, j] >= 0.5 * pb[rows, k]) & (j > 0) & \
        (j < fb.shape[0] - 1)
    k = np.where(use_half, j, k)
    total = pb.sum(axis=1)
    cum = np.concatenate((np.zeros((pb.shape[0], 1)), np.cumsum(pb, axis=1)), axis=1)
    width = round(s.rr_peak_hz / (fs / f.nfft_rr))
    a = np.clip(k - width, 0, None)
    c = np.clip(k + width + 1, None, fb.shape[0])
    quality = (cum[rows, c] - cum[rows, a]) / np.where(total > 0, total, 1.0)
    kk = np.clip(k, 1, fb.shape[0] - 2)
    y0, y1, y2 = pb[rows, kk - 1], pb[rows, kk], pb[rows, kk + 1]
    denom = y0 - 2 * y1 + y2
    delta = np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1.0), 0.0)
    rate = (fb[kk] + np.clip(delta, -0.5, 0.5) * (fb[1] - fb[0])) * 60
    return np.where(total > 0, rate, np.nan), np.where(total > 0, quality, 0.0)


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    """A raw recording's assessments as arrays (NaN: no estimate)."""

    t: np.ndarray
    hr: np.ndarray
    hr_q: np.ndarray
    rr: np.ndarray
    rr_q: np.ndarray
    occupied: np.ndarray  # 1 in bed, 0 out, NaN unknown
    motion: np.ndarray
    apnoea_s: np.ndarray


def analyse(block: BcgBlock, settings: SignalSettings | None = None) -> Series:
    """Batch: every assessment of one long block (a night), as arrays."""
    return series(feed(Analyser(), block, False, settings or SignalSettings()))


def series(assessments: list[Assessment]) -> Series:
    """Assessments as arrays."""
    def col(name: str) -> np.ndarray:
        return np.array([np.nan if getattr(a, name) is None else float(getattr(a, name))
                         for a in assessments])
    return Series(col("t"), col("hr"), col("hr_q"), col("rr"), col("rr_q"), col("occupied"),
                  col("motion"), col("apnoea_s"))


# --- Findings ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    event: str
    series: str  # "hr" | "rr"
    below: bool
    threshold: str
    duration: str
    hysteresis: str


RULES = (
    _Rule(BRADYCARDIA, "hr", True, "brady_bpm", "brady_s", "hr_hysteresis_bpm"),
    _Rule(TACHYCARDIA, "hr", False, "tachy_bpm", "tachy_s", "hr_hysteresis_bpm"),
    _Rule(BRADYPNOEA, "rr", True, "rr_low", "rr_low_s", "rr_hysteresis"),
    _Rule(TACHYPNOEA, "rr", False, "rr_high", "rr_high_s", "rr_hysteresis"),
)


@dataclass(slots=True)
class Episode:
    """One rule's episode for one bed."""

    since: float | None = None  # first good estimate of the episode
    last: float | None = None  # latest good estimate in it
    good_s: float = 0.0  # good-quality time inside it
    alarmed: bool = False  # raised; quiet until normal for rearm_s
    normal_since: float | None = None


@dataclass(slots=True)
class BedState:
    """One bed sensor: ordering, analysis, episodes, recent assessments."""

    assembler: BlockAssembler[BcgBlock]
    analyser: Analyser = field(default_factory=Analyser)
    episodes: dict[str, Episode] = field(default_factory=dict)
    history: deque[Assessment] = field(default_factory=deque)
    in_bed: bool | None = None  # device-reported
    raw_at: float | None = None  # gateway time of the last raw block
    zero_rr_since: float | None = None
    home: str = ""
    room: str | None = None
    rejected: int = 0  # raw blocks that could not be read


@dataclass(slots=True)
class VitalsState:
    """Per bed sensor."""

    beds: dict[str, BedState] = field(default_factory=dict)


def _bed(state: VitalsState, device: str, obs: Observation, cfg: VitalsConfig) -> BedState:
    bed = state.beds.get(device)
    if bed is None:
        bed = state.beds[device] = BedState(BlockAssembler(reorder_s=cfg.signal.reorder_s))
    bed.home = obs.home
    if device == obs.device:
        bed.room = obs.room
    return bed


def step(state: VitalsState, obs: Observation, now: float, cfg: VitalsConfig,
         *, prime: bool = False) -> list[Finding]:
    """Take one Observation (a raw block, a reported rate, in_bed); return Findings."""
    if obs.kind == "in_bed":
        for device in [obs.device, *(d for d, b in cfg.beds.items() if obs.device in b.occupancy)]:
            if device == obs.device or device in state.beds:
                _bed(state, device, obs, cfg).in_bed = obs.value is True
        return []
    if prime or obs.kind not in (RAW_KIND, "heart_rate", "respiration_rate"):
        return []
    bed = _bed(state, obs.device, obs, cfg)
    if obs.kind == RAW_KIND:
        try:
            block = block_from_value(obs.value)
        except PayloadError:
            bed.rejected += 1
            return []
        bed.raw_at = now
        return _pieces(bed, obs.device, bed.assembler.push(block, now), now, cfg)
    if bed.raw_at is not None and now - bed.raw_at < RAW_LIVE_S:
        return []
    return _judge(bed, obs.device, _reported(bed, obs), now, cfg)


def tick(state: VitalsState, now: float, cfg: VitalsConfig) -> list[Finding]:
    """Release raw blocks held too long for a missing one (the hole becomes a discontinuity)."""
    found: list[Finding] = []
    for device, bed in state.beds.items():
        if bed.assembler.waiting:
            found += _pieces(bed, device, bed.assembler.poll(now), now, cfg)
    return found


def _pieces(bed: BedState, device: str, runs: list[Run[BcgBlock]], now: float,
            cfg: VitalsConfig) -> list[Finding]:
    found: list[Finding] = []
    for run in runs:
        for a in feed(bed.analyser, run.block, not run.discontinuity, cfg.signal, bed.in_bed):
            found += _judge(bed, device, a, now, cfg)
    return found


def _reported(bed: BedState, obs: Observation) -> Assessment:
    t = obs.device_at if obs.device_at is not None else obs.at
    v = float(obs.value)  # type: ignore[arg-type]
    if obs.kind == "heart_rate":
        return Assessment(t, hr=v if v > 0 else None, occupied=bed.in_bed, measures=("hr",),
                          source="device")
    apnoea = None
    if bed.in_bed:
        if v > 0:
            bed.zero_rr_since = None
        elif bed.zero_rr_since is None:
            bed.zero_rr_since = t
        apnoea = 0.0 if bed.zero_rr_since is None else t - bed.zero_rr_since
    else:
        bed.zero_rr_since = None
    return Assessment(t, rr=v if v > 0 else None, occupied=bed.in_bed, apnoea_s=apnoea,
                      measures=("rr", "apnoea"), source="device")


def _judge(bed: BedState, device: str, a: Assessment, now: float, cfg: VitalsConfig
           ) -> list[Finding]:
    limits = cfg.limits_for(device)
    bed.history.append(a)
    while bed.history and bed.history[0].t < a.t - HISTORY_S:
        bed.history.popleft()
    found: list[Finding] = []
    for rule in RULES:
        if rule.series in a.measures:
            ep = bed.episodes.setdefault(rule.event, Episode())
            value = a.hr if rule.series == "hr" else a.rr
            if _episode(ep, rule, a.t, value, limits):
                found.append(_finding(bed, device, rule.event, a, now, cfg, limits, ep, {
                    "threshold": getattr(limits, rule.threshold),
                    "below" if rule.below else "above": True,
                    "hysteresis": getattr(limits, rule.hysteresis),
                    "min_duration_s": getattr(limits, rule.duration),
                    "good_s": round(ep.good_s, 1),
                    "episode_s": round(a.t - (a.t if ep.since is None else ep.since), 1),
                    "rate": round(value, 1) if value is not None else None}))
    if "apnoea" in a.measures and _no_breathing(bed.episodes.setdefault(
            NO_BREATHING, Episode()), a, limits):
        found.append(_finding(bed, device, NO_BREATHING, a, now, cfg, limits,
                              bed.episodes[NO_BREATHING], {
                                  "no_breath_s": _r(a.apnoea_s),
                                  "min_duration_s": limits.no_breath_s,
                                  "in_bed_by": "device" if bed.in_bed is not None else "signal"}))
    return found


def _episode(ep: Episode, rule: _Rule, t: float, value: float | None, limits: Limits) -> bool:
    """Advance one rule's episode by one assessment; True when it should raise."""
    if ep.since is not None and ep.last is not None and t - ep.last > limits.max_gap_s:
        ep.since, ep.good_s = None, 0.0  # too long without a good estimate: over
    if value is None:
        return False
    threshold, hysteresis = getattr(limits, rule.threshold), getattr(limits, rule.hysteresis)
    inside = value < threshold if rule.below else value > threshold
    cleared = value >= threshold + hysteresis if rule.below else value <= threshold - hysteresis
    if (ep.since is None and inside) or (ep.since is not None and not cleared):
        if ep.since is None or ep.last is None:
            ep.since, ep.good_s = t, 0.0
        else:
            ep.good_s += t - ep.last
        ep.last, ep.normal_since = t, None
        if not ep.alarmed and ep.good_s >= getattr(limits, rule.duration):
            ep.alarmed = True
            return True
        return False
    ep.since, ep.good_s = None, 0.0
    _rearm(ep, t, limits)
    return False


def _no_breathing(ep: Episode, a: Assessment, limits: Limits) -> bool:
    if a.apnoea_s is None or a.apnoea_s < limits.no_breath_s:
        if a.apnoea_s is not None and a.apnoea_s < limits.no_breath_s / 2:
            ep.since = None
            _rearm(ep, a.t, limits)
        return False
    if ep.since is None:
        ep.since = a.t - a.apnoea_s
    ep.normal_since = None
    if not ep.alarmed:
        ep.alarmed = True
        return True
    return False


def _rearm(ep: Episode, t: float, limits: Limits) -> None:
    if ep.alarmed:
        if ep.normal_since is None:
            ep.normal_since = t
        elif t - ep.normal_since >= limits.rearm_s:
            ep.alarmed, ep.normal_since = False, None


def _finding(bed: BedState, device: str, event: str, a: Assessment, now: float,
             cfg: VitalsConfig, limits: Limits, ep: Episode, detail: dict[str, Any]
             ) -> Finding:
    start = (ep.since if ep.since is not None else a.t) - EVIDENCE_BEFORE_S
    points: list[list[float | None]] = []
    next_t = -math.inf
    for h in bed.history:
        if h.t >= start and h.t >= next_t:
            points.append([round(h.t - a.t, 1), _r(h.hr), _r(h.hr_q, 2), _r(h.rr),
                           _r(h.rr_q, 2), None if h.occupied is None else float(h.occupied),
                           _r(h.apnoea_s)])
            next_t = h.t + EVIDENCE_STEP_S
    evidence = {"source": a.source, **detail, "device_time": a.t,
                "series_columns": ["t_s", "hr_bpm", "hr_quality", "rr_per_min", "rr_quality",
                                   "in_bed", "no_breath_s"],
                "series": points}
    if a.source == "bcg":
        evidence["quality_min"] = {"hr": cfg.signal.hr_quality_min,
                                   "rr": cfg.signal.rr_quality_min}
    return Finding(detector=NAME, home=cfg.home or bed.home, code=CODE, event=event,
                   severity=SEVERITY[event], at=now, evidence=evidence, room=bed.room,
                   device=device, resident=cfg.bed(device).resident)


def _r(v: float | None, digits: int = 1) -> float | None:
    return None if v is None else round(v, digits)
