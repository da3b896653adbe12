"""Falls from a wearable's raw accelerometer stream (waist, belt clip or pendant on the trunk).

**Method**: the three-phase threshold rule of Kangas et al. 2008 (start of the fall, impact,
posture after it; waist sensors reached 97-98 % sensitivity at 100 % specificity on
intentional falls), made independent of how the device is worn by measuring the *change* of
orientation, as Bourke & Lyons 2008 threshold the trunk-angle change (0.59 rad, ~34°), and
with post-impact stillness (someone who goes on moving - rolling over in bed, playing with a
grandchild - is not a person lying on the floor):

1. **Signal**: acceleration low-passed per axis at 5 Hz (4th-order Butterworth, the cut-off
   used for threshold features on SisFall, Sucerquia et al. 2017) at the device's own rate,
   then linearly interpolated onto a fixed 50 Hz grid of device time (grid points at whole
   multiples of 20 ms). SVM = |a| of the filtered signal, in g. The same movement reads
   alike from 25 to 200 Hz because everything above 5 Hz is gone either way.
2. **Impact**: an SVM peak >= `impact_g` (1.5 g) that is the largest within ±0.5 s. The 5 Hz
   signal lowers short spikes: a 100 ms impact of 3.5 g raw (Bourke et al. 2007's upper
   trunk threshold is 3.52 g raw) reads 2.7 g here, a 50 ms one 1.9 g; 1.5 g is a 50 ms
   impact of ~2.7 g raw.
3. **Start of the fall**: the SVM's minimum in the second before the peak is <= `freefall_g`
   (0.6 g: Kangas et al.'s start-of-fall threshold at the waist; Bourke et al.'s trunk lower
   threshold is 0.41 g) - or the impact is hard enough (>= `strong_impact_g`, 2.8 g: a 100 ms
   impact of ~3.6 g raw) that the free-fall phase is not needed (a collapse from sitting has
   little free fall).
4. **Posture**: the mean filtered acceleration (gravity) over [peak + `settle_s`, peak +
   `settle_s` + `still_s`] is at least `angle_deg` (45°) from the mean over [peak - 3 s,
   peak - 1 s], in the window as a whole and in each whole second of it. Only the change
   counts: a chair tilts the pelvis back ~20°, lying is ~90° from standing.
5. **Stillness**: at least `still_fraction` of that window's samples have |SVM - 1 g| <=
   `still_dev_g` (0.08 g; someone walking is within it ~20-30 % of the time, jogging ~5 %).

A fall passing all of these is a **`fall` Finding** (Contact ID 100, severity 1, event
"fall", as a radar's fall in detectors/instant.py), decided `settle_s + still_s` after the
impact (3 s by default). The alert manager holds every `fall` in the resident's cancel window
(alerts/manager.py CANCELLABLE_EVENTS): that is the pre-alarm the resident can cancel.
While the person is down no further fall is raised. **Recovery**: the trunk back within
`recover_deg` (35°) of the pre-fall gravity vector for `recover_s` (5 s). **Long lie**: no
recovery `long_lie_s` (300 s) after the impact, by the device's data, is a second Finding,
event "long_lie" (Contact ID 100, severity 1; not in the cancel window), with how long, how
still and how far from upright. A device that stops sending cannot show a long lie: its
silence is the supervision detector's.

**Settings**: `FallImuConfig()` decides 3 s after the impact (posture and stillness over
[+1 s, +3 s]); `FallImuConfig.strict()` over [+1 s, +7 s] with 70 % stillness: fewer falls
raised for someone who gets straight back up (the cancel window is there for those too), a
later alarm, and a recording that ends less than 7 s after the impact cannot be decided.

Thresholds come from the literature above and from the physics of the synthetic recordings
in simulator/wearable.py; they have not been fitted to real recordings - run `anxin
eval-fall --sisfall` on the real dataset before trusting a figure.

**Streaming**: each device's blocks go through `devices.blocks.BlockAssembler` (late, duplicated
and reordered blocks; holes); the filter state (`sosfilt`'s `zi`) and the last filtered
sample are carried from block to block, so a stream cut into blocks yields the grid samples
of one block (to the 0.24 µs a float64 unix time resolves). At a discontinuity the filter
restarts from the first sample's steady state (nothing is filtered across a hole) and the
hole is NaN in the 50 Hz history; windows less than half data are not measured. Per-sample
work is vectorised numpy; Python loops run per block and per impact only. A gyroscope, when
sent, is not used: the rule needs acceleration only.

References: Kangas M. et al., Gait & Posture 28 (2008) 285-291; Bourke A.K. et al., Gait &
Posture 26 (2007) 194-199; Bourke A.K., Lyons G.M., Med. Eng. Phys. 30 (2008) 84-90;
Sucerquia A. et al., Sensors 17 (2017) 198 (SisFall).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np

from detectors.finding import Finding
from detectors.instant import FALL_CODE
from devices.blocks import BlockAssembler, Run
from devices.imu import ImuBlock, block_from_value
from devices.observation import Observation, PayloadError

NAME = "fall_imu"
FALL = (FALL_CODE, 1, "fall")
LONG_LIE = (FALL_CODE, 1, "long_lie")

FS = 50.0  # the internal rate, Hz
LOWPASS_HZ, LOWPASS_ORDER = 5.0, 4
PEAK_HALF_S = 0.5  # an impact is the largest SVM within ± this
PRE_FROM_S, PRE_TO_S = 3.0, 1.0  # pre-fall gravity: [peak - 3 s, peak - 1 s]
MIN_VALID = 0.5  # share of a window that must hold data (not a hole) to be measured
MIN_PRE_S = 0.5  # pre-fall gravity from less data than this: the last known one instead
MAX_HOLE_S = 30.0  # a longer hole restarts the history (pending impacts are undecided)
# A sample within 20 µs of a grid point counts as on it: device times in float64 unix seconds
# resolve 0.24 µs, so block boundaries must not decide which block yields that grid point.
GRID_SLACK = 1e-3  # in grid steps


@dataclass(frozen=True, slots=True)
class FallImuConfig:
    """Thresholds of the fall rule (see the module docstring); g on the 5 Hz signal."""

    impact_g: float = 1.5  # an SVM peak at least this high is an impact to examine
    strong_impact_g: float = 2.8  # an impact this hard needs no free-fall phase before it
    freefall_g: float = 0.6  # the SVM's minimum before the impact: the start of a fall
    freefall_window_s: float = 1.0  # how long before the peak the free fall is looked for
    angle_deg: float = 45.0  # orientation change from before to after: lying, not sitting
    settle_s: float = 1.0  # after the impact, before posture and stillness are measured
    still_s: float = 2.0  # the window they are measured over
    still_dev_g: float = 0.08  # a sample with |SVM - 1 g| within this is still
    still_fraction: float = 0.6  # share of still samples the window needs
    recover_deg: float = 35.0  # back within this of the pre-fall orientation is upright
    recover_s: float = 5.0  # upright this long is a recovery (no long lie)
    long_lie_s: float = 300.0  # still down this long after the impact: a long lie
    reorder_s: float = 2.0  # how long a device's blocks wait for a missing one
    setting: str = "default"  # the name in the evidence ("default", "strict")

    @classmethod
    def strict(cls, **changes: Any) -> FallImuConfig:
        """Posture and stillness over six seconds (decided 7 s after the impact)."""
        return replace(cls(still_s=6.0, still_fraction=0.7, setting="strict"), **changes)

    @property
    def decide_after_s(self) -> float:
        """How long after the impact a fall is decided."""
        return self.settle_s + self.still_s


# scipy is imported where it is used: a home without a raw-streaming device never loads it
# (scipy.signal is ~70 MB of a Pi's memory and a second of start-up).
@lru_cache(maxsize=64)
def _lowpass(rate_hz: float) -> np.ndarray:
    from scipy.signal import butter  # noqa: PLC0415 - see above

    return butter(LOWPASS_ORDER, LOWPASS_HZ, fs=rate_hz, output="sos")


@lru_cache(maxsize=64)
def _zi_unit(rate_hz: float) -> np.ndarray:
    from scipy.signal import sosfilt_zi  # noqa: PLC0415 - see above

    return sosfilt_zi(_lowpass(rate_hz))  # (sections, 2): steady state for a unit input


@dataclass(slots=True)
class _Filter:
    """Low-pass and interpolation state of one contiguous run."""

    rate: float
    zi: np.ndarray  # (sections, 2, 3)
    last_t: float  # time (from the epoch) of the last filtered input sample
    last_v: np.ndarray  # its filtered value, (3,)


@dataclass(slots=True)
class Down:
    """A person the detector has raised a fall for, until they are back up."""

    k: int  # grid index of the impact
    impact_time: float  # device time of the impact
    ref: np.ndarray  # unit pre-fall gravity vector
    peak_g: float
    upright_run: int = 0  # consecutive upright samples so far
    still: int = 0  # samples since the impact with |SVM - 1| <= still_dev_g
    moving: int = 0  # and with more
    angle_sum: float = 0.0
    long_lie_sent: bool = False


@dataclass(slots=True)
class Counters:
    """What one device's detector has seen (for status pages and evaluation)."""

    samples_in: int = 0
    impacts: int = 0  # impact candidates examined
    rejected: dict[str, int] = field(default_factory=dict)  # candidate -> first failed rule
    undecided: int = 0  # candidates whose windows never filled (holes, end of a recording)
    falls: int = 0
    long_lies: int = 0
    recoveries: int = 0
    bad_values: int = 0  # accel observations whose value was not a block


@dataclass(frozen=True, slots=True)
class Where:
    """Who a finding is about."""

    home: str
    device: str
    room: str | None


@dataclass(slots=True)
class DeviceFall:
    """One wearable's detector state: reassembly, filter, 50 Hz history, the person's state."""

    assembler: BlockAssembler[ImuBlock]
    epoch: float | None = None  # whole seconds subtracted from device time (precision)
    filt: _Filter | None = None
    k0: int = 0  # grid index of buf[0] (k = (t - epoch) * FS)
    buf: np.ndarray = field(default_factory=lambda: np.empty((0, 4)))  # x, y, z, svm
    used: int = 0
    next_k: int | None = None  # the next grid index to produce
    scanned: int = 0  # grid index up to which impacts were searched
    pending: list[int] = field(default_factory=list)  # impact grid indices to decide
    down: Down | None = None
    ref: np.ndarray | None = None  # gravity before the last discontinuity (a fallback)
    rate: float = 0.0  # the device's rate
    counters: Counters = field(default_factory=Counters)
    trace: list[dict[str, Any]] | None = None  # every decided candidate, when wanted
    where: Where | None = None  # home, device and room of the last block


@dataclass(slots=True)
class FallImuState:
    """Per-device detector state."""

    devices: dict[str, DeviceFall] = field(default_factory=dict)


def _history_len(cfg: FallImuConfig) -> int:
    return math.ceil((PRE_FROM_S + cfg.decide_after_s + 2 * PEAK_HALF_S + 1.0) * FS)


def device_state(cfg: FallImuConfig, *, trace: bool = False) -> DeviceFall:
    """A fresh state for one wearable."""
    return DeviceFall(BlockAssembler(reorder_s=cfg.reorder_s), trace=[] if trace else None)


def step(state: FallImuState, obs: Observation, now: float, cfg: FallImuConfig,
         *, prime: bool = False) -> list[Finding]:
    """Take one Observation; an `accel` block may complete a fall or a long lie."""
    if obs.kind != "accel" or prime:  # a retained block is old news
        return []
    dev = state.devices.get(obs.device)
    if dev is None:
        dev = state.devices[obs.device] = device_state(cfg)
    try:
        block = block_from_value(obs.value)  # type: ignore[arg-type]
    except PayloadError:
        # The adapter checks blocks; a value that still is not one is counted, not fatal.
        dev.counters.bad_values += 1
        return []
    return push(dev, block, now, cfg, Where(obs.home, obs.device, obs.room), at=obs.at)


def tick(state: FallImuState, now: float, cfg: FallImuConfig) -> list[Finding]:
    """Blocks that waited `reorder_s` for a missing one go on without it."""
    found: list[Finding] = []
    for device, dev in state.devices.items():
        if dev.assembler.waiting:
            where = dev.where or Where("", device, None)
            found += _runs(dev, dev.assembler.poll(now), cfg, where, now)
    return found


def push(dev: DeviceFall, block: ImuBlock, now: float, cfg: FallImuConfig, where: Where,
         *, at: float | None = None) -> list[Finding]:
    """One block from a device arrived at `now`; the findings it completes."""
    dev.where = where
    return _runs(dev, dev.assembler.push(block, now), cfg, where, now if at is None else at)


def finish(dev: DeviceFall, now: float, cfg: FallImuConfig, where: Where) -> list[Finding]:
    """End of a recording: release waiting blocks; impacts not yet decidable stay undecided."""
    found = _runs(dev, dev.assembler.flush(), cfg, where, now)
    dev.counters.undecided += len(dev.pending)
    dev.pending.clear()
    return found


def _runs(dev: DeviceFall, runs: list[Run[ImuBlock]], cfg: FallImuConfig, where: Where,
          at: float) -> list[Finding]:
    found: list[Finding] = []
    for run in runs:
        found += _run(dev, run, cfg, where, at)
    return found


def _run(dev: DeviceFall, run: Run[ImuBlock], cfg: FallImuConfig, where: Where,
         at: float) -> list[Finding]:
    from scipy.signal import sosfilt  # noqa: PLC0415 - see _lowpass
    block = run.block
    dev.counters.samples_in += block.n
    dev.rate = block.rate_hz
    if dev.epoch is None:
        dev.epoch = math.floor(block.t0)
    t0 = block.t0 - dev.epoch
    if run.discontinuity or dev.filt is None or dev.filt.rate != block.rate_hz:
        dev.ref = _recent_gravity(dev) if dev.used else dev.ref
        zi = _zi_unit(block.rate_hz)[:, :, None] * block.acc[0][None, None, :]
        dev.filt = _Filter(block.rate_hz, zi, math.nan, block.acc[0])
        carry = False
    else:
        carry = True
    filt = dev.filt
    y, filt.zi = sosfilt(_lowpass(block.rate_hz), block.acc, axis=0, zi=filt.zi)
    times = t0 + np.arange(block.n) / block.rate_hz
    if carry:  # interpolate across the join from the previous block's last sample
        times = np.concatenate(([filt.last_t], times))
        y = np.concatenate((filt.last_v[None, :], y))
    filt.last_t, filt.last_v = float(times[-1]), y[-1]
    start_k = math.ceil(times[0] * FS - GRID_SLACK)
    if dev.next_k is not None:  # never a grid point twice (a new run may start within 20 ms)
        start_k = max(start_k, dev.next_k)
    end_k = math.floor(times[-1] * FS + GRID_SLACK)
    if end_k < start_k:
        return []
    grid = np.arange(start_k, end_k + 1) / FS
    new = np.empty((grid.size, 4))
    for j in range(3):
        new[:, j] = np.interp(grid, times, y[:, j])
    new[:, 3] = np.sqrt(np.einsum("ij,ij->i", new[:, :3], new[:, :3]))
    dev.next_k = end_k + 1
    _append(dev, start_k, new, cfg)
    found = _track_down(dev, new, cfg, where, at)
    _scan_impacts(dev, cfg)
    found += _decide(dev, cfg, where, at)
    return found


def _append(dev: DeviceFall, start_k: int, new: np.ndarray, cfg: FallImuConfig) -> None:
    """Put grid samples into the history; a hole becomes NaN, a long one restarts it."""
    keep = _history_len(cfg)
    end = dev.k0 + dev.used
    hole = start_k - end
    if dev.used == 0 or hole > MAX_HOLE_S * FS:
        dev.counters.undecided += len(dev.pending)
        dev.pending.clear()
        dev.k0, dev.used, dev.scanned = start_k, 0, start_k
        hole = 0
    need = dev.used + hole + len(new)
    if need > dev.buf.shape[0]:
        # Keep the last `keep` samples; grow the buffer when one append is bigger.
        drop = max(0, dev.used - keep)
        cap = max(2 * keep, need - drop + keep)
        buf = np.full((cap, 4), np.nan)
        buf[:dev.used - drop] = dev.buf[drop:dev.used]
        dev.buf, dev.used, dev.k0 = buf, dev.used - drop, dev.k0 + drop
    if hole:
        dev.buf[dev.used:dev.used + hole] = np.nan
        dev.used += hole
    dev.buf[dev.used:dev.used + len(new)] = new
    dev.used += len(new)


def _recent_gravity(dev: DeviceFall) -> np.ndarray | None:
    tail = dev.buf[max(0, dev.used - int(2 * FS)):dev.used, :3]
    return _unit(tail)


def _unit(samples: np.ndarray, min_n: int = 1) -> np.ndarray | None:
    """Mean direction of (n, 3) samples ignoring holes; None if under half of them (or
    under `min_n`) are data."""
    ok = ~np.isnan(samples[:, 0])
    n = int(ok.sum())
    if n < max(min_n, MIN_VALID * samples.shape[0], 1):
        return None
    v = samples[ok].mean(axis=0)
    norm = float(np.sqrt(v @ v))
    return v / norm if norm > 0.2 else None


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b)))))


def _scan_impacts(dev: DeviceFall, cfg: FallImuConfig) -> None:
    from scipy.ndimage import maximum_filter1d  # noqa: PLC0415 - see _lowpass
    half = int(PEAK_HALF_S * FS)
    end = dev.k0 + dev.used
    hi = end - half  # a peak needs half a second after it to be the largest
    lo = max(dev.scanned, dev.k0 + half)
    if hi <= lo:
        return
    i0, i1 = lo - dev.k0, hi - dev.k0
    seg = dev.buf[i0 - half:i1 + half, 3]
    seg = np.where(np.isnan(seg), -np.inf, seg)
    mx = maximum_filter1d(seg, size=2 * half + 1, mode="nearest")
    core = seg[half:-half]
    prev = seg[half - 1:-half - 1]
    peaks = np.flatnonzero((core >= cfg.impact_g) & (core == mx[half:-half]) & (core > prev))
    dev.pending.extend((peaks + lo).tolist())
    dev.scanned = hi


def _decide(dev: DeviceFall, cfg: FallImuConfig, where: Where, at: float) -> list[Finding]:
    found: list[Finding] = []
    after = round(cfg.decide_after_s * FS)
    end = dev.k0 + dev.used
    while dev.pending and dev.pending[0] + after < end:
        k = dev.pending.pop(0)
        dev.counters.impacts += 1
        if dev.down is not None:
            dev.counters.rejected["while_down"] = dev.counters.rejected.get("while_down", 0) + 1
            continue
        feats = _features(dev, k, cfg)
        if dev.trace is not None:
            dev.trace.append(feats)
        failed = feats["failed"]
        if failed is not None:
            dev.counters.rejected[failed] = dev.counters.rejected.get(failed, 0) + 1
            continue
        dev.counters.falls += 1
        impact_time = (dev.epoch or 0.0) + k / FS
        dev.down = Down(k, impact_time, feats["ref"], feats["peak_g"])
        evidence = {key: feats[key] for key in (
            "peak_g", "freefall_min_g", "free_fall", "orientation_change_deg", "stillness_s")}
        evidence.update(still_window_s=cfg.still_s, rate_hz=dev.rate, internal_rate_hz=FS,
                        device_time=round(impact_time, 3),
                        decided_s_after_impact=round(cfg.decide_after_s, 2),
                        setting=cfg.setting, method="impact+posture+stillness")
        found.append(_finding(FALL, where, at, evidence))
        # Samples after the impact already in the history count towards the long lie.
        i = k - dev.k0
        found += _track_down(dev, dev.buf[i + 1:dev.used], cfg, where, at)
    return found


def _features(dev: DeviceFall, k: int, cfg: FallImuConfig) -> dict[str, Any]:
    """The rule's measurements for the impact at grid index k, and the first rule failed."""
    i = k - dev.k0
    buf, fs = dev.buf, FS
    svm = buf[:dev.used, 3]
    peak = float(svm[i])
    ff = svm[max(0, i - int(cfg.freefall_window_s * fs)):i]
    ff_min = float(np.nanmin(ff)) if ff.size and not np.isnan(ff).all() else math.nan
    pre = _unit(buf[max(0, i - int(PRE_FROM_S * fs)):max(0, i - int(PRE_TO_S * fs)), :3],
                min_n=int(MIN_PRE_S * fs))
    if pre is None:
        pre = dev.ref
    a = i + round(cfg.settle_s * fs)
    b = i + round(cfg.decide_after_s * fs)
    window = buf[a:b]
    post = _unit(window[:, :3])
    out: dict[str, Any] = {
        "impact_time": round((dev.epoch or 0.0) + k / FS, 3), "peak_g": round(peak, 2),
        "freefall_min_g": None if math.isnan(ff_min) else round(ff_min, 2),
        "free_fall": not math.isnan(ff_min) and ff_min <= cfg.freefall_g,
        "orientation_change_deg": None, "stillness_s": None, "ref": pre, "failed": None}
    if pre is None or post is None:
        out["failed"] = "no_data"
        return out
    angle = _angle(pre, post)
    # Held: every whole second of the window is away from upright, not just the mean.
    per_s = int(fs)
    chunks = window[: (len(window) // per_s) * per_s, :3].reshape(-1, per_s, 3)
    held = min((_angle(pre, u) for c in chunks if (u := _unit(c)) is not None),
               default=angle)
    dev_g = np.abs(window[:, 3] - 1.0)
    valid = ~np.isnan(dev_g)
    still = int(np.count_nonzero(dev_g[valid] <= cfg.still_dev_g))
    frac = still / max(1, int(valid.sum()))
    out.update(orientation_change_deg=round(angle, 1), held_deg=round(held, 1),
               stillness_s=round(still / fs, 2), still_fraction=round(frac, 2))
    if not (out["free_fall"] or peak >= cfg.strong_impact_g):
        out["failed"] = "no_free_fall"
    elif min(angle, held) < cfg.angle_deg:
        out["failed"] = "posture"
    elif frac < cfg.still_fraction:
        out["failed"] = "moving"
    return out


def _track_down(dev: DeviceFall, new: np.ndarray, cfg: FallImuConfig, where: Where,
                at: float) -> list[Finding]:
    """After a fall: recovery (upright again) or, after `long_lie_s`, a long lie."""
    down = dev.down
    if down is None or len(new) == 0:
        return []
    acc, svm = new[:, :3], new[:, 3]
    valid = ~np.isnan(svm)
    cos = np.where(valid, (acc @ down.ref) / np.where(valid, svm, 1.0), -1.0)
    upright = cos >= math.cos(math.radians(cfg.recover_deg))
    need = int(cfg.recover_s * FS)
    # Longest run of upright samples, counting the run carried over from earlier blocks.
    edges = np.flatnonzero(np.diff(np.concatenate(([0], upright.view(np.int8), [0]))))
    starts, stops = edges[::2], edges[1::2]
    lengths = stops - starts
    if starts.size and starts[0] == 0:
        lengths[0] += down.upright_run
    if lengths.size and lengths.max() >= need:
        dev.down = None
        dev.counters.recoveries += 1
        return []
    down.upright_run = int(lengths[-1]) if stops.size and stops[-1] == len(upright) else 0
    dev_g = np.abs(svm[valid] - 1.0)
    n_still = int(np.count_nonzero(dev_g <= cfg.still_dev_g))
    down.still += n_still
    down.moving += int(valid.sum()) - n_still
    down.angle_sum += float(np.degrees(np.arccos(np.clip(cos[valid], -1, 1))).sum())
    latest = (dev.epoch or 0.0) + (dev.k0 + dev.used - 1) / FS
    lying = latest - down.impact_time
    if down.long_lie_sent or lying < cfg.long_lie_s:
        return []
    down.long_lie_sent = True
    dev.counters.long_lies += 1
    measured = down.still + down.moving
    evidence = {
        "fall_device_time": round(down.impact_time, 3), "lying_s": round(lying, 1),
        "stillness_s": round(down.still / FS, 1), "moving_s": round(down.moving / FS, 1),
        "mean_orientation_change_deg": round(down.angle_sum / max(1, measured), 1),
        "peak_g": down.peak_g, "rate_hz": dev.rate, "device_time": round(latest, 3),
        "recover_deg": cfg.recover_deg}
    return [_finding(LONG_LIE, where, at, evidence)]


def _finding(spec: tuple[int, int, str], where: Where, at: float,
             evidence: dict[str, Any]) -> Finding:
    code, severity, event = spec
    return Finding(detector=NAME, home=where.home, code=code, event=event, severity=severity,
                   at=at, evidence=evidence, room=where.room, device=where.device)


# --- whole recordings (evaluation, benchmarks, tests) --------------------------------------

def blocks_of(acc: np.ndarray, rate_hz: float, block_s: float = 1.0, t0: float = 0.0
              ) -> list[ImuBlock]:
    """A contiguous recording (n, 3) in g cut into blocks of `block_s` seconds."""
    per = max(1, round(block_s * rate_hz))
    return [ImuBlock(rate_hz, t0 + s / rate_hz, acc[s:s + per])
            for s in range(0, acc.shape[0], per)]


def stream_blocks(blocks: Iterable[ImuBlock], cfg: FallImuConfig, *,
                  device: str = "recording", home: str = "eval", trace: bool = False,
                  ) -> tuple[list[Finding], DeviceFall]:
    """Blocks through the streaming detector, each arriving when it ends (`now` = its end),
    then `finish`. Returns the findings and the device state (counters, trace)."""
    dev = device_state(cfg, trace=trace)
    where = Where(home, device, None)
    found: list[Finding] = []
    end = 0.0
    for b in blocks:
        found += push(dev, b, b.end, cfg, where)
        end = max(end, b.end)
    found += finish(dev, end, cfg, where)
    return found, dev


def stream_recording(acc: np.ndarray, rate_hz: float, cfg: FallImuConfig, *,
                     block_s: float = 1.0, t0: float = 0.0, trace: bool = False,
                     ) -> tuple[list[Finding], DeviceFall]:
    """A contiguous recording through the streaming detector in `block_s` blocks."""
    return stream_blocks(blocks_of(acc, rate_hz, block_s, t0), cfg, trace=trace)
