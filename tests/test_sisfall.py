"""`anxin eval-fall --sisfall`: SisFall's layout and line format read exactly, bad lines and
misnamed files reported, and the scoring over recordings generated in that format.

The dataset itself is not redistributable; tests write small SisFall-format files in tmp_path
from the physical model in simulator/wearable.py (raw counts, as the real files).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gateway import sisfall
from gateway.sisfall import (
    Entry,
    blocks,
    evaluate_sisfall,
    main,
    parse_text,
    read_recording,
    scan,
)
from simulator import wearable


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def entry(path: Path) -> Entry:
    e = sisfall._entry(path)
    assert isinstance(e, Entry), e
    return e


# --- the format ------------------------------------------------------------------------------

def test_counts_are_scaled_exactly_as_the_dataset_says(tmp_path):
    text = ("256,-256,0,16384,-16384,0,1024,-1024,0;\n"
            " 4095, -4096, 1, 32767, -32768, 1, 8191, -8192, 1;\n"
            "\n\n")
    rec = read_recording(entry(write(tmp_path / "SA01" / "D01_SA01_R01.txt", text)))
    assert rec.problems == []
    # ADXL345 ±16 g, 13 bit: 32/8192 g per count; ITG3200 ±2000 °/s, 16 bit; MMA8451Q ±8 g,
    # 14 bit
    assert rec.acc().tolist() == [[1.0, -1.0, 0.0], [4095 * 32 / 8192, -16.0, 32 / 8192]]
    assert rec.gyro().tolist() == [[1000.0, -1000.0, 0.0],
                                   [32767 * 4000 / 65536, -2000.0, 4000 / 65536]]
    assert rec.acc("mma8451q").tolist() == [[1.0, -1.0, 0.0], [8191 / 1024, -8.0, 1 / 1024]]
    assert rec.index.tolist() == [0, 1]


def test_generated_files_read_back_to_the_model_within_a_count(tmp_path):
    rng = np.random.default_rng(1)
    acc, gyro = wearable.recording("F03", rng)
    raw = wearable.counts(acc, gyro)
    rec = read_recording(entry(write(tmp_path / "SA02" / "F03_SA02_R03.txt",
                                     wearable.sisfall_text(raw, rng))))
    assert rec.problems == [] and rec.counts.tolist() == raw.tolist()
    assert np.abs(rec.acc() - acc).max() <= 0.5 * 32 / 8192 + 1e-12
    assert np.abs(rec.acc("mma8451q") - acc).max() <= 0.5 * 16 / 16384 + 1e-12


def test_malformed_lines_are_reported_with_their_numbers_and_skipped(tmp_path):
    good = "1,2,3,4,5,6,7,8,9;"
    lines = [good, good, "1,2,3,4,5,6,7,8,9", good, "1,2,3,4,5,6,7,8;", good,
             "1,2,x,4,5,6,7,8,9;", good, "1,2,3,4,5,6,7,8,9,10;", "5000,2,3,4,5,6,7,8,9;",
             "", good, "1.5,2,3,4,5,6,7,8,9;", good]
    path = tmp_path / "SA03" / "D05_SA03_R02.txt"
    counts, index, problems = parse_text("\n".join(lines) + "\n\n", path)
    assert [(p.line, p.reason) for p in problems] == [
        (3, "does not end with ';'"),
        (5, "8 values, expected 9"),
        (7, "column 3: 'x' is not an integer count"),
        (9, "10 values, expected 9"),
        (10, "column 1: 5000 is outside -4096..4095"),
        (13, "column 1: '1.5' is not an integer count"),
    ]
    assert str(problems[0]) == f"{path}:3: does not end with ';'"
    assert counts.shape == (7, 9) and (counts[:, 0] == 1).all()
    # sample numbers keep the holes where lines were skipped (the blank line is no sample)
    assert index.tolist() == [0, 1, 3, 5, 7, 10, 12]


def test_a_skipped_line_is_a_hole_in_the_stream_not_a_join(tmp_path):
    good = "0,0,256,0,0,0,0,0,1024;"
    text = "\n".join([good] * 300 + ["garbage"] + [good] * 300)
    rec = read_recording(entry(write(tmp_path / "SA04" / "D07_SA04_R01.txt", text)))
    bs = list(blocks(rec, block_s=1.0))
    assert [(round(b.t0, 3), b.n) for b in bs] == [(0.0, 200), (1.0, 100), (1.505, 200),
                                                   (2.505, 100)]


def test_windows_line_ends_and_spaces_are_fine(tmp_path):
    text = " 1, 2, 3, 4, 5, 6, 7, 8, 9;\r\n-1,-2,-3,-4,-5,-6,-7,-8,-9 ;\r\n\r\n"
    counts, index, problems = parse_text(text, tmp_path / "x.txt")
    assert problems == [] and counts[1].tolist() == list(range(-1, -10, -1))
    assert index.tolist() == [0, 1]


# --- the layout ------------------------------------------------------------------------------

def test_only_files_in_the_naming_scheme_are_read(tmp_path):
    ok = ["SA01/F01_SA01_R01.txt", "SA23/D19_SA23_R05.txt", "SE15/D01_SE15_R01.txt",
          "SisFall_dataset/SE06/F15_SE06_R03.txt"]
    bad = {
        "Readme.txt": "not a SisFall recording name (expected e.g. F01_SA01_R01.txt)",
        "SA01/F16_SA01_R01.txt": "F16 is not a SisFall activity (F01..F15)",
        "SA01/D20_SA01_R01.txt": "D20 is not a SisFall activity (D01..D19)",
        "SA24/D01_SA24_R01.txt": "SA24 is not a SisFall subject (SA01..SA23, SE01..SE15)",
        "SE16/D01_SE16_R01.txt": "SE16 is not a SisFall subject (SA01..SA23, SE01..SE15)",
        "SA01/F01_SA02_R01.txt": "a recording of SA02 in folder 'SA01'",
        "SA01/F01_SA01_R00.txt": "trial R00 (trials count from R01)",
        "SA01/f01_sa01_r01.txt": "not a SisFall recording name (expected e.g. F01_SA01_R01.txt)",
        "SA01/F01_SA01_R01.txt.txt": "not a SisFall recording name (expected e.g. "
                                     "F01_SA01_R01.txt)",
    }
    for name in [*ok, *bad]:
        write(tmp_path / name, "1,2,3,4,5,6,7,8,9;\n")
    write(tmp_path / "SA01" / "notes.csv", "not looked at")
    entries, skipped = scan(tmp_path)
    assert sorted(str(e.path.relative_to(tmp_path)) for e in entries) == sorted(ok)
    assert {str(p.path.relative_to(tmp_path)): p.reason for p in skipped} == bad
    f = next(e for e in entries if e.code == "F15")
    assert (f.subject, f.trial, f.is_fall) == ("SE06", 3, True)


def test_a_directory_without_sisfall_files_is_an_error(tmp_path):
    with pytest.raises(sisfall.SisfallError, match="not a directory"):
        evaluate_sisfall(tmp_path / "missing")
    write(tmp_path / "Readme.txt", "hello")
    with pytest.raises(sisfall.SisfallError, match="no SisFall recordings under"):
        evaluate_sisfall(tmp_path)


# --- scoring ---------------------------------------------------------------------------------

PLAN = {"SA01": ["F01", "F02", "F03", "F10", "D01", "D03", "D10", "D12", "D13", "D16"],
        "SA02": ["F01", "F05", "F09", "F14", "D02", "D08", "D11", "D19"],
        "SE01": ["D07", "D15", "D18"]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sisfall") / "SisFall_dataset"
    def short(code: str, rng: np.random.Generator, rot: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        # walking and jogging for 20 s instead of SisFall's 100 s, to keep the test quick
        kw = {"duration_s": 20.0} if code in ("D01", "D02", "D03", "D04") else {}
        return wearable.recording(code, rng, rot, **kw)

    wearable.write_dataset(root, PLAN, seed=3, make=short)
    write(root / "Readme.txt", "SisFall dataset")
    # a recording with a broken line in it
    path = root / "SA02" / "F01_SA02_R01.txt"
    lines = path.read_text().split("\n")
    lines[100] = "12,13;"
    path.write_text("\n".join(lines))
    return root


def test_evaluation_counts_files_and_scores_each_activity(dataset):
    report = evaluate_sisfall(dataset, block_s=1.0)
    j = report.as_json()
    assert j["files"] == {"fall": 8, "adl": 13} and j["subjects"] == 3
    assert j["rate_hz"] == 200.0 and j["sensor"] == "adxl345"
    assert [p["reason"] for p in j["skipped_files"]] == [
        "not a SisFall recording name (expected e.g. F01_SA01_R01.txt)"]
    assert j["bad_lines"]["count"] == 1
    assert j["bad_lines"]["first"][0].endswith("F01_SA02_R01.txt:101: 2 values, expected 9")
    for name in ("default", "strict"):
        s = j["settings"][name]
        assert s["tp"] + s["fn"] == 8 and s["fp"] + s["tn"] == 13
        assert s["sensitivity"] == round(s["tp"] / 8, 4)
        assert s["specificity"] == round(s["tn"] / 13, 4)
        assert sum(row["files"] for row in s["by_activity"].values()) == 21
        assert s["by_activity"]["F01"]["files"] == 2
        assert s["by_activity"]["D13"]["activity"].startswith("Sitting a moment, lying quickly")
        assert "false_alarms" in s["by_activity"]["D13"]
        assert "missed_by" in s["by_activity"]["F01"]
    d = j["settings"]["default"]
    assert (d["sensitivity"], d["specificity"]) == (1.0, 1.0)
    assert j["samples"] > 0 and j["samples_per_s"] > 0 and j["wall_s"] > 0
    assert d["samples_per_s"] > 0


def test_missed_falls_say_which_rule_stopped_them(tmp_path):
    # A "fall" that is only a hard sit: the fall file is missed, and the table says why.
    def hard_sit(code: str, rng: np.random.Generator, rot: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        return wearable.recording("D10", rng, rot)

    wearable.write_dataset(tmp_path, {"SA05": ["F04"]}, make=hard_sit)
    wearable.write_dataset(tmp_path, {"SA06": ["D01"]}, duration_s=15.0)
    s = evaluate_sisfall(tmp_path, settings=("default",)).as_json()["settings"]["default"]
    assert (s["tp"], s["fn"], s["tn"], s["fp"]) == (0, 1, 1, 0)
    assert s["by_activity"]["F04"]["missed_by"] == {"no_free_fall": 1}


def test_a_fall_too_close_to_the_end_is_undecided_and_counted(tmp_path):
    rng = np.random.default_rng(5)
    acc, gyro = wearable.recording("F01", rng, gets_up=False)
    peak = int(np.linalg.norm(acc, axis=1).argmax())
    raw = wearable.counts(acc, gyro)[:peak + 400]  # the recording stops 2 s after the impact
    write(tmp_path / "SA07" / "F01_SA07_R01.txt", wearable.sisfall_text(raw))
    s = evaluate_sisfall(tmp_path, settings=("default",)).as_json()["settings"]["default"]
    assert s["fn"] == 1 and s["undecided_files"] == {"fall": 1}
    assert s["by_activity"]["F01"]["missed_by"] == {"undecided": 1}


def test_block_size_does_not_change_the_scores(dataset):
    a = evaluate_sisfall(dataset, settings=("default",), block_s=1.0).as_json()
    b = evaluate_sisfall(dataset, settings=("default",), block_s=10.0).as_json()
    for k in ("tp", "fn", "fp", "tn"):
        assert a["settings"]["default"][k] == b["settings"]["default"][k]


# --- the command -----------------------------------------------------------------------------

def test_main_prints_one_json_object_and_progress_on_stderr(dataset, capsys):
    assert main(["--sisfall", str(dataset), "--json", "--setting", "default"]) == 0
    out, err = capsys.readouterr()
    j = json.loads(out)
    assert set(j["settings"]) == {"default"}
    assert j["settings"]["default"]["sensitivity"] == 1.0
    assert "file 21/21" in err
    assert "skipped " in err and "Readme.txt" in err
    assert "F01_SA02_R01.txt:101: 2 values, expected 9" in err


def test_main_text_summary(dataset, capsys):
    assert main(["--sisfall", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "8 fall files, 13 ADL files, 3 subjects" in out
    assert "default  sensitivity 1.0  specificity 1.0" in out
    assert "strict   sensitivity" in out


def test_main_refuses_what_it_cannot_evaluate(tmp_path, capsys):
    assert main(["--sisfall", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["--sisfall", str(tmp_path)]) == 2
    assert "no SisFall recordings" in capsys.readouterr().err
    assert main(["--sisfall", str(tmp_path), "--block-s", "60"]) == 2
    assert "--block-s must be between" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([])
