"""A bed-sensor emulator: a raw ballistocardiogram with breathing, heartbeat and ground truth.

`simulate(seed, duration_s, rate_hz, ...)` makes what a piezo film or pressure strap under
the mattress of one sleeper records, as 12-bit ADC counts, with what really happened:

- **Breathing**: 10-22 breaths/min (drawn per recording), wandering slowly (Ornstein-
  Uhlenbeck, sd 1/min, 60 s) with a little breath-to-breath jitter; a skewed waveform
  (inspiration quicker than expiration) whose amplitude drifts 0.6-1.4x and changes with
  each turn in bed.
- **Heartbeat**: 50-90 bpm, wandering (sd 3 bpm, 2 min), with respiratory sinus arrhythmia
  (2-4 bpm in phase with breathing) and beat-to-beat jitter (sd 15 ms); each beat is the
  BCG's H-I-J-K-L complex (five Gaussians, J the largest), 0.1-0.35 of the breathing
  amplitude and modulated by breathing.
- **Noise**: white (0.03-0.2 of the J amplitude) and a slow baseline wander; spells of
  **weak coupling** (lying off the film: heartbeat x0.1-0.25 for 2-8 min).
- **Movement** bursts (turning over, reaching out): 2-15 s of broadband movement 3-12x the
  breathing amplitude, Poisson `movements_per_h` (less those within 30 s of an apnoea, a
  spell or a bed exit, or 5 s of another burst); posture (amplitudes, baseline) changes.
- **Bed exits**: 2-15 min of an empty bed (noise only, lower baseline), with movement as the
  resident gets out and back in.
- **Labelled events**: apnoea (breathing stops for 20-60 s, heartbeat goes on, a little
  slower), bradycardia (32-38 bpm for 3-6 min) and tachycardia (135-150 bpm for 6-9 min)
  spells, each ramping in and out over 15 s.

`Recording.blocks()` cuts the signal into devices/bcg.py blocks (JSON or binary) as the
device would publish them. `Truth` holds per-second series (true heart rate, breathing rate,
in bed, moving, breathing) and the event intervals, times in seconds from the start of the
recording. `score` compares an estimator's rates with it. Pure and seeded: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import signal as sps

from devices.bcg import BcgBlock, encode_binary, encode_json

APNOEA, BRADYCARDIA, TACHYCARDIA = "apnoea", "bradycardia", "tachycardia"
MOVEMENT, OUT_OF_BED, WEAK = "movement", "out_of_bed", "weak_signal"
EVENT_KINDS = (APNOEA, BRADYCARDIA, TACHYCARDIA, MOVEMENT, OUT_OF_BED, WEAK)
ADC_MAX = 4095
RAMP_S = 15.0  # brady/tachy spells ramp in and out


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, from `start` to `end` seconds after the recording began."""

    kind: str
    start: float
    end: float


@dataclass(frozen=True, slots=True, eq=False)
class Truth:
    """What really happened, one value per second of the recording (second s covers
    [s, s+1)); rates are NaN where undefined (out of bed; no breathing in an apnoea)."""

    hr: np.ndarray  # bpm
    rr: np.ndarray  # breaths/min
    in_bed: np.ndarray  # bool
    moving: np.ndarray  # bool
    events: tuple[Event, ...]

    def window(self, series: np.ndarray, end_s: float, window_s: float) -> float:
        """The mean of `series` over [end_s - window_s, end_s); NaN if any second is NaN."""
        a, b = int(np.floor(end_s - window_s)), int(np.ceil(end_s))
        if a < 0 or b > series.shape[0]:
            return float("nan")
        return float(series[a:b].mean())


@dataclass(frozen=True, slots=True, eq=False)
class Recording:
    """A simulated bed signal (ADC counts) and its ground truth."""

    rate_hz: float
    t0: float  # unix seconds of the first sample
    signal: np.ndarray
    truth: Truth
    seed: int

    @property
    def duration_s(self) -> float:
        return self.signal.shape[0] / self.rate_hz

    def blocks(self, block_s: float = 1.0) -> list[BcgBlock]:
        """The recording cut into consecutive blocks of `block_s`, numbered from 0."""
        n = max(1, round(block_s * self.rate_hz))
        return [BcgBlock(self.rate_hz, self.t0 + i / self.rate_hz, self.signal[i:i + n], k)
                for k, i in enumerate(range(0, self.signal.shape[0], n))]

    def payloads(self, block_s: float = 1.0, *, binary: bool = False
                 ) -> list[tuple[float, bytes]]:
        """(publish time = the block's last sample, payload) as the device would send them."""
        enc = encode_binary if binary else encode_json
        return [(b.end, enc(b)) for b in self.blocks(block_s)]


@dataclass(frozen=True, slots=True)
class Plan:
    """How much of each thing happens in a recording (counts are per recording)."""

    apnoeas: int = 0
    bradycardias: int = 0
    tachycardias: int = 0
    bed_exits: int = 0
    weak_spells: int = 0
    movements_per_h: float = 6.0
    events: tuple[Event, ...] = field(default=())  # placed by hand, besides the drawn ones


def simulate(seed: int, duration_s: float = 3600.0, rate_hz: float = 100.0, *,
             t0: float = 1_790_000_000.0, plan: Plan | None = None) -> Recording:
    """A seeded recording of `duration_s` at `rate_hz` with the events of `plan`."""
    plan = plan or Plan()
    rng = np.random.default_rng(seed)
    secs = int(np.ceil(duration_s))
    events = _place(rng, secs, plan)
    n = round(duration_s * rate_hz)
    t = np.arange(n) / rate_hz
    per_s = np.arange(secs + 1, dtype=float)

    def on(kind: str, ramp: float = 0.0) -> np.ndarray:
        """Per-second 0..1 envelope of the events of `kind` (ramped at the edges)."""
        env = np.zeros(secs + 1)
        for e in events:
            if e.kind == kind:
                if ramp:
                    env = np.maximum(env, np.clip(np.minimum(per_s - e.start, e.end - per_s)
                                                  / ramp + 0.5, 0, 1))
                else:
                    env[(per_s >= e.start) & (per_s < e.end)] = 1.0
        return env

    in_bed_s = on(OUT_OF_BED) < 0.5
    apnoea_s = on(APNOEA)
    moving_s = on(MOVEMENT)

    # Rates per second: a baseline that wanders, spells that take over.
    hr_base = rng.uniform(50, 90) + _ou(rng, secs + 1, 3.0, 120.0)
    brady, tachy = on(BRADYCARDIA, RAMP_S), on(TACHYCARDIA, RAMP_S)
    hr_spell = np.where(tachy > 0, rng.uniform(135, 150), rng.uniform(32, 38))
    hr_s = hr_base * (1 - brady - tachy) + hr_spell * (brady + tachy)
    hr_s = hr_s - 4.0 * apnoea_s  # the heart slows a little while breathing stops
    rr_s = np.clip(rng.uniform(10, 22) + _ou(rng, secs + 1, 1.0, 60.0), 7, 26)

    # Breathing: phase from the rate, a skewed wave, amplitude drifting and stopping.
    rr_t = np.interp(t, per_s, rr_s) * (1 + 0.04 * np.interp(t, per_s, rng.normal(size=secs + 1)))
    phase = 2 * np.pi * np.cumsum(rr_t / 60.0) / rate_hz
    wave = np.sin(phase) + 0.25 * np.sin(2 * phase + 0.8)
    posture = _posture(rng, secs, events)  # breath, heart and baseline change at each turn
    breath_amp = np.interp(t, per_s, np.exp(_ou(rng, secs + 1, 0.18, 300.0)) * posture[0])
    stop = np.interp(t, per_s, _smooth(apnoea_s, 2))  # breathing fades out/in over ~2 s
    present = np.interp(t, per_s, in_bed_s.astype(float))
    breathing = wave * breath_amp * (1 - stop) * present

    # Heartbeat: beats from the phase of the instantaneous rate, with RSA and jitter.
    rsa = rng.uniform(2, 4) * np.sin(phase - 0.5)
    hr_t = np.interp(t, per_s, hr_s) + rsa * (1 - stop)
    beat_phase = np.cumsum(hr_t / 60.0) / rate_hz
    beats = np.searchsorted(beat_phase, np.arange(1, int(beat_phase[-1]) + 1))
    beats = np.clip(beats + np.round(rng.normal(0, 0.015, beats.size) * rate_hz).astype(int),
                    0, n - 1)
    j_amp = rng.uniform(0.1, 0.35)
    weak = np.interp(t, per_s, 1 - on(WEAK, 20.0) * rng.uniform(0.75, 0.9))
    beat_gain = (j_amp * (1 + 0.2 * np.sin(phase)) * present * weak
                 * np.interp(t, per_s, posture[1]))[beats]
    impulses = np.zeros(n)
    np.add.at(impulses, beats, beat_gain * rng.lognormal(0, 0.08, beats.size))
    heart = sps.oaconvolve(impulses, _complex(rate_hz))[:n]

    # Movement: broadband bursts; noise and baseline.
    move_env = np.interp(t, per_s, _smooth(moving_s, 1))
    burst = sps.sosfilt(sps.butter(2, [0.3, 8.0], "bandpass", fs=rate_hz, output="sos"),
                        rng.normal(size=n))
    move = burst * move_env * rng.uniform(3, 12) * 3
    noise = rng.normal(0, rng.uniform(0.03, 0.2) * j_amp, n)
    baseline = np.interp(t, per_s, posture[2] + 0.3 * _ou(rng, secs + 1, 1.0, 600.0)
                         - 2.5 * ~in_bed_s)
    units = rng.uniform(120, 260)  # ADC counts per breathing amplitude unit
    x = 2048 + units * (breathing + heart + move + noise + baseline)
    counts = np.clip(np.round(x), 0, ADC_MAX)
    counts.flags.writeable = False

    truth = _truth(secs, rate_hz, hr_t, rr_t, in_bed_s, apnoea_s, moving_s, stop, events)
    return Recording(rate_hz, t0, counts, truth, seed)


def _truth(secs: int, rate_hz: float, hr_t: np.ndarray, rr_t: np.ndarray, in_bed_s: np.ndarray,
           apnoea_s: np.ndarray, moving_s: np.ndarray, stop: np.ndarray,
           events: tuple[Event, ...]) -> Truth:
    n = hr_t.shape[0]
    idx = np.minimum(np.arange(n) * 1.0 / rate_hz, secs - 1).astype(int)
    counts = np.bincount(idx, minlength=secs)
    hr = np.bincount(idx, hr_t, minlength=secs) / np.maximum(counts, 1)
    rr = np.bincount(idx, rr_t, minlength=secs) / np.maximum(counts, 1)
    not_breathing = np.bincount(idx, stop, minlength=secs) / np.maximum(counts, 1) > 0.05
    in_bed = in_bed_s[:secs]
    hr = np.where(in_bed, hr, np.nan)
    rr = np.where(in_bed & ~not_breathing & (apnoea_s[:secs] == 0), rr, np.nan)
    return Truth(hr, rr, in_bed.copy(), moving_s[:secs] > 0, events)


def _place(rng: np.random.Generator, secs: int, plan: Plan) -> tuple[Event, ...]:
    """Events that do not overlap each other (movement fills in around them)."""
    taken: list[Event] = list(plan.events)
    wanted = ([(OUT_OF_BED, 120, 900)] * plan.bed_exits + [(APNOEA, 20, 60)] * plan.apnoeas
              + [(BRADYCARDIA, 180, 360)] * plan.bradycardias
              + [(TACHYCARDIA, 360, 540)] * plan.tachycardias
              + [(WEAK, 120, 480)] * plan.weak_spells)
    for kind, lo, hi in wanted:
        length = float(rng.uniform(lo, hi))
        for _ in range(200):
            start = float(rng.uniform(90, max(91.0, secs - length - 90)))
            e = Event(kind, start, start + length)
            if all(e.end + 120 < o.start or e.start > o.end + 120 for o in taken):
                taken.append(e)
                break
    moves: list[Event] = []
    for e in taken:  # getting out of and back into bed is movement
        if e.kind == OUT_OF_BED:
            moves += [Event(MOVEMENT, e.start - 4, e.start + 1), Event(MOVEMENT, e.end - 1,
                                                                        e.end + 5)]
    count = rng.poisson(plan.movements_per_h * secs / 3600.0)
    keep_clear = [o for o in taken if o.kind != WEAK]
    for start in np.sort(rng.uniform(30, max(31.0, secs - 20), count)):
        e = Event(MOVEMENT, float(start), float(start + rng.uniform(2, 15)))
        if all(e.end + 30 < o.start or e.start > o.end + 30 for o in keep_clear) and \
                all(e.end + 5 < o.start or e.start > o.end + 5 for o in moves):
            moves.append(e)
    return tuple(sorted(taken + moves, key=lambda e: e.start))


def _posture(rng: np.random.Generator, secs: int, events: tuple[Event, ...]) -> np.ndarray:
    """Per-second breathing gain, heartbeat gain and baseline, changing at each movement."""
    out = np.empty((3, secs + 1))
    cur = np.array([1.0, 1.0, 0.0])
    edges = sorted(int(e.end) for e in events if e.kind == MOVEMENT)
    prev = 0
    for edge in [*edges, secs + 1]:
        out[:, prev:min(edge, secs + 1)] = cur[:, None]
        cur = np.array([rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.4), rng.normal(0, 1.0)])
        prev = min(edge, secs + 1)
    return out


def _complex(rate_hz: float) -> np.ndarray:
    """One heartbeat's H-I-J-K-L complex (J = 1), 0.45 s long."""
    t = np.arange(round(0.45 * rate_hz)) / rate_hz
    parts = ((0.25, 0.04, 0.02), (-0.55, 0.10, 0.02), (1.0, 0.16, 0.022),
             (-0.7, 0.23, 0.025), (0.3, 0.31, 0.03))
    return np.sum([a * np.exp(-0.5 * ((t - c) / w) ** 2) for a, c, w in parts], axis=0)


def _ou(rng: np.random.Generator, n: int, sd: float, tau_s: float) -> np.ndarray:
    """An Ornstein-Uhlenbeck path at 1 s steps with stationary sd `sd`."""
    a = np.exp(-1.0 / tau_s)
    shocks = rng.normal(0, sd * np.sqrt(1 - a * a), n)
    shocks[0] = rng.normal(0, sd)
    return sps.lfilter([1.0], [1.0, -a], shocks)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    k = np.ones(2 * width + 1) / (2 * width + 1)
    return np.convolve(x, k, mode="same")


def score(truth: Truth, times: np.ndarray, rates: np.ndarray, series: str, window_s: float,
          tolerance: float) -> dict[str, float | int]:
    """How many reported rates (`times` in seconds from the start, NaN = nothing reported)
    are within `tolerance` of the true mean over their window; and how many were reported
    where there was no true rate (out of bed, not breathing) or during movement."""
    true = getattr(truth, series)
    ref = np.array([truth.window(true, t, window_s) for t in times])
    moving = np.array([truth.window(truth.moving.astype(float), t, window_s) > 0
                       for t in times])
    reported = ~np.isnan(rates)
    scored = reported & ~np.isnan(ref)
    within = np.abs(rates[scored] - ref[scored]) <= tolerance
    still = ~np.isnan(ref) & ~moving
    return {
        "windows": int(times.shape[0]),
        "reported": int(reported.sum()),
        "scored": int(scored.sum()),
        "within": int(within.sum()),
        "fraction_within": float(within.mean()) if within.size else float("nan"),
        "coverage_at_rest": float((reported & still).sum() / max(1, still.sum())),
        "reported_without_truth": int((reported & np.isnan(ref)).sum()),
        "reported_while_moving": int((reported & moving).sum()),
    }


def events_of(rec: Recording, kinds: Sequence[str]) -> list[Event]:
    """The recording's events of these kinds, in time order."""
    return [e for e in rec.truth.events if e.kind in kinds]
