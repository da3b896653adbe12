"""`anxin eval`: simulated homes scored against their ground truth (small runs; the figures
come from `anxin eval --homes 50 --days 60`)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from detectors.activity import ActivityConfig, cold_start_limits
from gateway.cli import main
from gateway.evaluate import MATCH, _due, evaluate, evaluate_home

TZ = ZoneInfo("Asia/Shanghai")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp()


def test_a_small_run_scores_every_detector_and_is_repeatable():
    a = evaluate(2, 10, 5)
    b = evaluate(2, 10, 5)
    assert a["detectors"] == b["detectors"] and a["false_alerts"] == b["false_alerts"]
    assert set(a["detectors"]) == set(MATCH)
    for d in a["detectors"].values():
        assert d["detected"] <= d["incidents"]
        assert d["recall"] is None or 0.0 <= d["recall"] <= 1.0
    assert a["home_months"] == round(2 * 10 / 30, 2) and a["observations"] > 10_000
    assert a["false_alerts_per_home_month"] >= 0


def test_incidents_carry_their_ground_truth_and_what_caught_them():
    r = evaluate_home(1, 20, 1)  # this seed plans two not-ups and a long lie
    assert r.incidents, "plan_incidents gives a 20-day run incidents"
    for inc in r.incidents:
        assert inc["kind"] in MATCH and inc["due_s"] >= 0
        if inc["detected"]:
            assert inc["by"] in MATCH[inc["kind"]] and inc["delay_s"] >= 0


def test_due_follows_the_homes_rules():
    act = ActivityConfig(limits_s=cold_start_limits(2), tz=TZ, wake_by_h=9.5,
                         sensors={"pir-bath": "bathroom", "pir-living": "living_room"},
                         bathroom_limit_s=3600, wander_return_s=1800)
    start = at("2026-03-03T10:00:00")
    assert _due("long_lie", start, "living_room", act) == start + 4 * 3600  # the day limit
    assert _due("long_lie", start, "bathroom", act) == start + 1.5 * 3600  # PIR only
    radar = replace(act, sensors={**act.sensors, "radar": "bathroom"},
                    presence=frozenset({"radar"}))
    assert _due("bathroom_collapse", start, "bathroom", radar) == start + 3600
    unwatched = replace(act, sensors={"pir-living": "living_room"})
    assert _due("bathroom_collapse", start, "bathroom", unwatched) == start + 4 * 3600
    assert _due("night_wandering", start, None, act) == start + 1800
    assert _due("not_up", at("2026-03-03T07:00:00"), "bedroom", act) == at("2026-03-03T09:30:00")


def test_the_command_prints_json_with_progress(capsys):
    assert main(["eval", "--homes", "1", "--days", "8", "--json", "--fall-trials", "1",
                 "--bed-hours", "2"]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert {"detectors", "false_alerts_per_home_month", "wall_s", "home_months", "falls",
            "vitals"} <= set(report)
    assert "home 1/1" in out.err
    falls, bed = report["falls"], report["vitals"]
    assert falls["fall_recordings"] == 15 and falls["adl_recordings"] == 19
    assert falls["sensitivity"] >= 0.9 and falls["specificity"] >= 0.9
    assert bed["hours"] == 2 and bed["hr"]["within_5bpm"] >= 0.9
    assert bed["rr"]["within_2permin"] >= 0.9
    assert bed["events"]["apnoea"]["labelled"] == 4
    assert main(["eval", "--homes", "0"]) == 2
    assert main(["eval", "--homes", "1", "--bed-hours", "-1"]) == 2
    assert main(["eval", "--homes", "1", "--days", "2", "--fall-trials", "0"]) == 0
    assert "wearable falls" not in capsys.readouterr().out  # left out


def test_a_staged_decline_is_scored_by_the_routine_detector():
    # home 5 of seed 1 declines from day 28 over ~19 days; 56 days leave it four weeks
    r = evaluate_home(5, 56, 1)
    (dec,) = [i for i in r.incidents if i["kind"] == "decline"]
    assert dec["alone"] and dec["outlasted_limit"]
    assert dec["detected"], "the decline was not caught"
    assert dec["by"] == "routine_deviation" and 7 * 86400 < dec["delay_s"] < 28 * 86400
    # nothing about routine in a run too short to know the home
    assert all(i["kind"] != "decline" for i in evaluate_home(5, 30, 1).incidents)
