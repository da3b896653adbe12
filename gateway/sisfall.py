"""The SisFall dataset through the wearable fall detector: `anxin eval-fall --sisfall DIR`.

**SisFall** (Sucerquia, López, Vargas-Bonilla, Sensors 17 (2017) 198) is a public set of
falls and activities of daily living (ADLs) recorded with a device on the waist (belt buckle):
23 young adults (`SA01`-`SA23`) did 19 ADLs and 15 kinds of fall, 15 people over 60
(`SE01`-`SE15`) did ADLs (SE06 did falls too). The data is not shipped with anxin; point the
command at the unpacked dataset (the folder holding the subject folders, or any folder above).

**Layout read here, exactly**: subject folders named `SA01`..`SA23`, `SE01`..`SE15`; in them
files `<activity>_<subject>_R<trial>.txt`, e.g. `F01_SA01_R01.txt` (falls `F01`..`F15`) or
`D01_SE03_R05.txt` (ADLs `D01`..`D19`), whose subject part is the folder's. Any other `.txt`
file (the dataset's Readme, a misnamed or misplaced recording) is reported and skipped.

**Lines**: one sample per line at 200 Hz, nine comma-separated raw integer counts ending with
`;` (spaces may follow commas; blank lines, at the end of every file, carry nothing):

- columns 1-3: ADXL345 accelerometer, ±16 g at 13 bit: g = count × 2·16 / 2^13;
- columns 4-6: ITG3200 gyroscope, ±2000 °/s at 16 bit: °/s = count × 2·2000 / 2^16;
- columns 7-9: MMA8451Q accelerometer, ±8 g at 14 bit: g = count × 2·8 / 2^14.

A line that is not nine integers ending in `;`, or whose count is beyond its part's range, is
reported with the file and line number and skipped; the samples either side of it are not
joined up (the missing 5 ms is a hole the detector restarts its filter after).

**Scoring**: each file is streamed through `detectors.fall_imu` (`block_s` blocks, the live
code path, a fresh detector per file). A fall file is detected if a `fall` is raised anywhere
in it (SisFall's falls are 15 s with the fall in the middle); an ADL file with any `fall` is a
false positive. Sensitivity = detected falls / fall files, specificity = ADL files without a
fall / ADL files. Both settings are scored: `default` (decided 3 s after the impact) and
`strict` (7 s): SisFall's recordings end some seconds after the fall, so an impact too close
to the end cannot be decided by a setting that waits longer - those files are counted as
`undecided` (and as missed), not hidden. Whether the volunteers lay still after falling is in
the data, not assumed: the per-activity table shows which rule rejected each missed fall.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detectors import fall_imu
from devices.imu import ImuBlock

RATE_HZ = 200.0
ADXL345_G = 2 * 16 / 2**13  # g per count
ITG3200_DPS = 2 * 2000 / 2**16  # deg/s per count
MMA8451Q_G = 2 * 8 / 2**14  # g per count
# (lowest, highest) count per column: 13-, 16- and 14-bit two's complement
COUNT_RANGE = np.array([(-(2**12), 2**12 - 1)] * 3 + [(-(2**15), 2**15 - 1)] * 3
                       + [(-(2**13), 2**13 - 1)] * 3)
SENSORS = {"adxl345": (slice(0, 3), ADXL345_G), "mma8451q": (slice(6, 9), MMA8451Q_G)}

SUBJECT_RE = re.compile(r"S([AE])(\d\d)")
FILE_RE = re.compile(r"([DF])(\d\d)_(S[AE]\d\d)_R(\d\d)\.txt")
SUBJECTS = {"A": range(1, 24), "E": range(1, 16)}
CODES = {"D": range(1, 20), "F": range(1, 16)}
SHOWN_PROBLEMS = 20

ACTIVITIES = {
    "D01": "Walking slowly", "D02": "Walking quickly", "D03": "Jogging slowly",
    "D04": "Jogging quickly", "D05": "Walking upstairs and downstairs slowly",
    "D06": "Walking upstairs and downstairs quickly",
    "D07": "Slowly sit in a half height chair, wait a moment, and up slowly",
    "D08": "Quickly sit in a half height chair, wait a moment, and up quickly",
    "D09": "Slowly sit in a low height chair, wait a moment, and up slowly",
    "D10": "Quickly sit in a low height chair, wait a moment, and up quickly",
    "D11": "Sitting a moment, trying to get up, and collapse into a chair",
    "D12": "Sitting a moment, lying slowly, wait a moment, and sit again",
    "D13": "Sitting a moment, lying quickly, wait a moment, and sit again",
    "D14": "Being on one's back change to lateral position, wait a moment, and change to "
           "one's back",
    "D15": "Standing, slowly bending at knees, and getting up",
    "D16": "Standing, slowly bending without bending knees, and getting up",
    "D17": "Standing, get into a car, remain seated and get out of the car",
    "D18": "Stumble while walking",
    "D19": "Gently jump without falling (trying to reach a high object)",
    "F01": "Fall forward while walking caused by a slip",
    "F02": "Fall backward while walking caused by a slip",
    "F03": "Lateral fall while walking caused by a slip",
    "F04": "Fall forward while walking caused by a trip",
    "F05": "Fall forward while jogging caused by a trip",
    "F06": "Vertical fall while walking caused by fainting",
    "F07": "Fall while walking, with use of hands in a table to dampen fall, caused by "
           "fainting",
    "F08": "Fall forward when trying to get up",
    "F09": "Lateral fall when trying to get up",
    "F10": "Fall forward when trying to sit down",
    "F11": "Fall backward when trying to sit down",
    "F12": "Lateral fall when trying to sit down",
    "F13": "Fall forward while sitting, caused by fainting or falling asleep",
    "F14": "Fall backward while sitting, caused by fainting or falling asleep",
    "F15": "Lateral fall while sitting, caused by fainting or falling asleep",
}


class SisfallError(Exception):
    """The directory cannot be evaluated (missing, or no SisFall file in it)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A line or a file that was skipped, and why."""

    path: Path
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}" if self.line else \
            f"{self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Entry:
    """A file in the naming scheme: what it records."""

    path: Path
    code: str  # "F01", "D13"
    subject: str  # "SA01"
    trial: int

    @property
    def is_fall(self) -> bool:
        """A fall recording (F..), else an ADL (D..)."""
        return self.code.startswith("F")


@dataclass(slots=True)
class Recording:
    """One file's samples: `index` is each row's sample number (a skipped line leaves a hole)."""

    entry: Entry
    counts: np.ndarray  # (n, 9) int64 raw counts
    index: np.ndarray  # (n,) int64 sample numbers
    problems: list[Problem]

    def acc(self, sensor: str = "adxl345") -> np.ndarray:
        """Acceleration in g (n, 3) from one of the two accelerometers."""
        cols, scale = SENSORS[sensor]
        return self.counts[:, cols] * scale

    def gyro(self) -> np.ndarray:
        """Angular velocity in deg/s (n, 3)."""
        return self.counts[:, 3:6] * ITG3200_DPS


def _entry(path: Path) -> Entry | str:
    """The file's place in the scheme, or why it has none."""
    m = FILE_RE.fullmatch(path.name)
    if m is None:
        return "not a SisFall recording name (expected e.g. F01_SA01_R01.txt)"
    kind, num, subject, trial = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
    if num not in CODES[kind]:
        last = CODES[kind][-1]
        return f"{kind}{num:02d} is not a SisFall activity ({kind}01..{kind}{last:02d})"
    sm = SUBJECT_RE.fullmatch(subject)
    assert sm is not None
    if int(sm.group(2)) not in SUBJECTS[sm.group(1)]:
        return f"{subject} is not a SisFall subject (SA01..SA23, SE01..SE15)"
    if path.parent.name != subject:
        return f"a recording of {subject} in folder {path.parent.name!r}"
    if trial < 1:
        return "trial R00 (trials count from R01)"
    return Entry(path, f"{kind}{num:02d}", subject, trial)


def scan(root: Path) -> tuple[list[Entry], list[Problem]]:
    """Every recording under `root` in the naming scheme, and every .txt file that is not."""
    if not root.is_dir():
        raise SisfallError(f"{root} is not a directory")
    entries, skipped = [], []
    for path in sorted(root.rglob("*.txt")):
        e = _entry(path)
        if isinstance(e, Entry):
            entries.append(e)
        else:
            skipped.append(Problem(path, None, e))
    return entries, skipped


def _line_problem(line: str) -> str:
    """Why a (stripped, non-blank) line is not a SisFall sample."""
    if not line.endswith(";"):
        return "does not end with ';'"
    fields = line[:-1].split(",")
    if len(fields) != 9:
        return f"{len(fields)} values, expected 9"
    for j, f in enumerate(fields, 1):
        try:
            int(f)
        except ValueError:
            return f"column {j}: {f.strip()!r} is not an integer count"
    return ""


def parse_text(text: str, path: Path) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    """(counts (n, 9), sample numbers (n,), problems) of one file's text."""
    lines = [ln.strip() for ln in text.split("\n")]
    numbered = [(i, ln) for i, ln in enumerate(lines, 1) if ln]
    problems: list[Problem] = []
    counts = None
    if all(ln.endswith(";") and ln.count(",") == 8 for _, ln in numbered):
        # Fast path: the whole file at once; any doubt falls back to line by line.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                flat = np.fromstring(",".join(ln[:-1] for _, ln in numbered), sep=",",
                                     dtype=np.int64)
            except (ValueError, DeprecationWarning):
                flat = None
        if flat is not None and flat.size == 9 * len(numbered):
            counts = flat.reshape(-1, 9)
    if counts is None:
        rows, good = [], []
        for k, (i, ln) in enumerate(numbered):
            reason = _line_problem(ln)
            if reason:
                problems.append(Problem(path, i, reason))
                continue
            rows.append([int(f) for f in ln[:-1].split(",")])
            good.append(k)
        counts = np.array(rows, dtype=np.int64).reshape(-1, 9)
        index = np.array(good, dtype=np.int64)
    else:
        index = np.arange(len(numbered), dtype=np.int64)
    line_of = np.array([i for i, _ in numbered], dtype=np.int64)
    out = (counts < COUNT_RANGE[:, 0]) | (counts > COUNT_RANGE[:, 1])
    if out.any():
        bad_rows = np.flatnonzero(out.any(axis=1))
        for r in bad_rows.tolist():
            j = int(np.flatnonzero(out[r])[0])
            lo, hi = COUNT_RANGE[j]
            problems.append(Problem(path, int(line_of[index[r]]),
                                    f"column {j + 1}: {counts[r, j]} is outside {lo}..{hi}"))
        keep = ~out.any(axis=1)
        counts, index = counts[keep], index[keep]
    problems.sort(key=lambda p: p.line or 0)
    return counts, index, problems


def read_recording(entry: Entry) -> Recording:
    """One file, its bad lines reported and skipped."""
    try:
        text = entry.path.read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        return Recording(entry, np.empty((0, 9), np.int64), np.empty(0, np.int64),
                         [Problem(entry.path, None, f"cannot be read: {e.strerror}")])
    counts, index, problems = parse_text(text, entry.path)
    return Recording(entry, counts, index, problems)


def blocks(rec: Recording, block_s: float = 1.0, sensor: str = "adxl345") -> Iterator[ImuBlock]:
    """The recording as the device would stream it: contiguous runs cut into blocks."""
    acc = rec.acc(sensor)
    if not len(acc):
        return
    breaks = np.flatnonzero(np.diff(rec.index) != 1) + 1
    for seg_start, seg_end in zip(np.r_[0, breaks], np.r_[breaks, len(acc)], strict=True):
        t0 = rec.index[seg_start] / RATE_HZ
        yield from fall_imu.blocks_of(acc[seg_start:seg_end], RATE_HZ, block_s, t0)


# --- evaluation ------------------------------------------------------------------------------

@dataclass(slots=True)
class Score:
    """One setting's results over the dataset."""

    setting: str
    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0
    undecided: Counter[str] = field(default_factory=Counter)  # class -> files
    by_code: dict[str, dict[str, Any]] = field(default_factory=dict)
    detect_s: float = 0.0

    def add(self, entry: Entry, fell: bool, undecided: bool, rule: str | None) -> None:
        """Count one file."""
        row = self.by_code.setdefault(entry.code, {"files": 0, "raised": 0, "missed_by": {}})
        row["files"] += 1
        row["raised"] += fell
        if entry.is_fall:
            self.tp += fell
            self.fn += not fell
            if not fell:
                why = "undecided" if undecided else (rule or "no_impact")
                row["missed_by"][why] = row["missed_by"].get(why, 0) + 1
        else:
            self.fp += fell
            self.tn += not fell
        if undecided and not fell:
            self.undecided["fall" if entry.is_fall else "adl"] += 1

    @property
    def sensitivity(self) -> float | None:
        """Detected falls / fall files."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def specificity(self) -> float | None:
        """ADL files without a fall / ADL files."""
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else None

    def as_json(self, samples: int) -> dict[str, Any]:
        """JSON-ready results; per activity: files, falls raised, missed falls by rule."""
        codes = {}
        for code in sorted(self.by_code):
            row = self.by_code[code]
            item: dict[str, Any] = {"activity": ACTIVITIES[code], "files": row["files"]}
            if code.startswith("F"):
                item["detected"] = row["raised"]
                item["missed"] = row["files"] - row["raised"]
                item["missed_by"] = row["missed_by"]
            else:
                item["false_alarms"] = row["raised"]
            codes[code] = item
        return {
            "tp": self.tp, "fn": self.fn, "fp": self.fp, "tn": self.tn,
            "sensitivity": _round(self.sensitivity), "specificity": _round(self.specificity),
            "undecided_files": dict(self.undecided),
            "detector_s": round(self.detect_s, 3),
            "samples_per_s": round(samples / self.detect_s) if self.detect_s else None,
            "by_activity": codes,
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _closest_rule(trace: list[dict[str, Any]]) -> str | None:
    """For a missed fall: the rule that stopped the impact that came closest to a fall."""
    order = ["no_data", "no_free_fall", "posture", "moving"]
    failed = [t["failed"] for t in trace if t["failed"] in order]
    return max(failed, key=order.index) if failed else None


@dataclass(slots=True)
class Report:
    """What `anxin eval-fall` prints."""

    root: Path
    sensor: str
    block_s: float
    files: Counter[str] = field(default_factory=Counter)  # "fall" / "adl" -> files scored
    subjects: set[str] = field(default_factory=set)
    samples: int = 0
    read_s: float = 0.0
    wall_s: float = 0.0
    scores: dict[str, Score] = field(default_factory=dict)
    skipped_files: list[Problem] = field(default_factory=list)
    bad_lines: list[Problem] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """One JSON object."""
        return {
            "dataset": "SisFall", "root": str(self.root), "sensor": self.sensor,
            "rate_hz": RATE_HZ, "block_s": self.block_s,
            "files": {"fall": self.files["fall"], "adl": self.files["adl"]},
            "subjects": len(self.subjects), "samples": self.samples,
            "settings": {name: s.as_json(self.samples) for name, s in self.scores.items()},
            "read_s": round(self.read_s, 3), "wall_s": round(self.wall_s, 3),
            "samples_per_s": round(self.samples / self.wall_s) if self.wall_s else None,
            "skipped_files": [{"path": str(p.path), "reason": p.reason}
                              for p in self.skipped_files],
            "bad_lines": {"count": len(self.bad_lines),
                          "first": [str(p) for p in self.bad_lines[:SHOWN_PROBLEMS]]},
            "scoring": "a fall file is detected if a fall is raised anywhere in it; an ADL "
                       "file with any fall raised is a false positive",
        }


SETTINGS: dict[str, Callable[[], fall_imu.FallImuConfig]] = {
    "default": fall_imu.FallImuConfig, "strict": fall_imu.FallImuConfig.strict}


def evaluate_sisfall(root: Path, *, settings: tuple[str, ...] = ("default", "strict"),
                     block_s: float = 1.0, sensor: str = "adxl345",
                     progress: Callable[[int, int, float], None] | None = None) -> Report:
    """Stream every SisFall file under `root` through the fall detector; score each setting."""
    start = time.perf_counter()
    entries, skipped = scan(root)
    if not entries:
        raise SisfallError(f"no SisFall recordings under {root} (subject folders SA01.., "
                           f"SE01.. with files like F01_SA01_R01.txt)")
    report = Report(root, sensor, block_s, skipped_files=skipped)
    report.scores = {name: Score(name) for name in settings}
    configs = {name: SETTINGS[name]() for name in settings}
    for done, entry in enumerate(entries, 1):
        t = time.perf_counter()
        rec = read_recording(entry)
        report.read_s += time.perf_counter() - t
        report.bad_lines += rec.problems
        if not len(rec.counts):
            report.skipped_files.append(Problem(entry.path, None, "no samples"))
            continue
        report.files["fall" if entry.is_fall else "adl"] += 1
        report.subjects.add(entry.subject)
        report.samples += len(rec.counts)
        file_blocks = list(blocks(rec, block_s, sensor))
        for name, cfg in configs.items():
            t = time.perf_counter()
            found, dev = fall_imu.stream_blocks(file_blocks, cfg, device=entry.path.name,
                                                home=entry.subject, trace=True)
            score = report.scores[name]
            score.detect_s += time.perf_counter() - t
            fell = any(f.event == "fall" for f in found)
            score.add(entry, fell, dev.counters.undecided > 0,
                      _closest_rule(dev.trace or []))
        if progress:
            progress(done, len(entries), time.perf_counter() - start)
    report.wall_s = time.perf_counter() - start
    return report


def render_text(report: Report) -> str:
    """A short human-readable summary."""
    j = report.as_json()
    out = [f"SisFall at {j['root']} ({j['sensor']}, {j['block_s']:g} s blocks): "
           f"{j['files']['fall']} fall files, {j['files']['adl']} ADL files, "
           f"{j['subjects']} subjects, {j['samples']} samples in {j['wall_s']:.1f} s"]
    for name, s in j["settings"].items():
        out.append(f"  {name:8s} sensitivity {s['sensitivity']}  specificity "
                   f"{s['specificity']}  (TP {s['tp']} FN {s['fn']} FP {s['fp']} "
                   f"TN {s['tn']}; undecided {s['undecided_files'] or 0}; detector "
                   f"{s['samples_per_s']} samples/s)")
        for code, row in s["by_activity"].items():
            if row.get("missed") or row.get("false_alarms"):
                what = (f"missed {row['missed']}/{row['files']} {row['missed_by']}"
                        if code.startswith("F") else
                        f"false alarms {row['false_alarms']}/{row['files']}")
                out.append(f"    {code} {what}  ({row['activity']})")
    if report.skipped_files:
        out.append(f"  skipped files: {len(report.skipped_files)}")
    if report.bad_lines:
        out.append(f"  bad lines: {len(report.bad_lines)}")
    return "\n".join(out)


def _say(stream: Any, text: str) -> None:
    stream.write(text + "\n")


def main(argv: list[str] | None = None) -> int:
    """`anxin eval-fall --sisfall DIR [--json]`: score the wearable fall detector on SisFall."""
    p = argparse.ArgumentParser(prog="anxin eval-fall", description=main.__doc__)
    p.add_argument("--sisfall", required=True, metavar="DIR",
                   help="the unpacked SisFall dataset (subject folders SA01.., SE01..)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--block-s", type=float, default=10.0,
                   help="seconds per streamed block (default 10, the fastest; 0.02..10: the "
                        "decisions are the same however a stream is cut, tested)")
    p.add_argument("--sensor", choices=sorted(SENSORS), default="adxl345",
                   help="which of the two accelerometers (default adxl345)")
    p.add_argument("--setting", choices=("default", "strict", "both"), default="both")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if not 0.02 <= args.block_s <= 10:
        _say(sys.stderr, "--block-s must be between 0.02 and 10 seconds")
        return 2
    settings = ("default", "strict") if args.setting == "both" else (args.setting,)
    shown = [0.0]

    def progress(done: int, total: int, elapsed: float) -> None:
        if done == total or elapsed - shown[0] >= 0.5:  # twice a second is enough
            shown[0] = elapsed
            sys.stderr.write(f"\r  file {done}/{total} · {elapsed:.1f} s"
                             + ("\n" if done == total else ""))
            sys.stderr.flush()

    try:
        report = evaluate_sisfall(Path(args.sisfall), settings=settings,
                                  block_s=args.block_s, sensor=args.sensor, progress=progress)
    except SisfallError as e:
        _say(sys.stderr, str(e))
        return 2
    for problem in (report.skipped_files + report.bad_lines)[:SHOWN_PROBLEMS]:
        _say(sys.stderr, f"skipped {problem}")
    hidden = len(report.skipped_files) + len(report.bad_lines) - SHOWN_PROBLEMS
    if hidden > 0:
        _say(sys.stderr, f"... and {hidden} more skipped (see --json)")
    if args.json:
        _say(sys.stdout, json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        _say(sys.stdout, render_text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
