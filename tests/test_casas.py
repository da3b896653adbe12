"""`anxin replay --casas`: real-home event logs (WSU CASAS layouts) through the detectors.

The fixtures under tests/fixtures/casas/ are synthetic days written in the real CASAS layouts
(the CASAS data may not be redistributed): a classic Aruba-style log whose resident stops
moving at 10:00 on the third day, and an hh/csh-style log with a night exit through the
entrance door and no return.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from detectors.activity import CODE, cold_start_limits
from devices.observation import check_value
from gateway import casas
from gateway.casas import (
    AREA,
    CLASSIC,
    HH,
    SKIPPED_SHOWN,
    LineError,
    Mapping,
    MappingError,
    SensorMap,
    load_mapping,
    parse_line,
    read_log,
    render_text,
    replay,
    replay_file,
    skipped_summary,
)
from gateway.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "casas"
CLASSIC_LOG, CLASSIC_MAP = FIXTURES / "classic-3days.txt", FIXTURES / "classic.toml"
HH_LOG, HH_MAP = FIXTURES / "hh-night-exit.txt", FIXTURES / "hh-dementia.toml"
LA = ZoneInfo("America/Los_Angeles")
HOUR = 3600.0

SIMPLE = Mapping(sensors={"M001": SensorMap("motion", "bedroom"),
                          "M002": SensorMap("motion", "kitchen"),
                          "D001": SensorMap("contact", "entrance", entrance=True),
                          "T001": SensorMap("ignore")},
                 timezone="America/Los_Angeles", home="h")


def la(text: str, fold: int = 0) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=LA, fold=fold).timestamp()


def lines(*text: str | bytes) -> list[bytes]:
    return [t if isinstance(t, bytes) else t.encode() + b"\n" for t in text]


def write_mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the catalogue of states ------------------------------------------------------------------

def test_every_state_value_is_a_valid_observation_of_its_kind():
    for kind, states in casas.STATES.items():
        assert kind in casas.KINDS
        for word, value in states.items():
            assert word == word.upper()
            if value is not None:
                assert check_value(kind, value) == value


# --- reading lines ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "sensor", "state", "layout"), [
    ("2010-11-04 00:03:50.209589 M003 ON", "M003", "ON", CLASSIC),
    ("2010-11-04 05:40:43.642664\tD002\tOPEN\tSleep end", "D002", "OPEN", CLASSIC),
    ("2010-11-04 05:40:43 \t M003 \t OFF", "M003", "OFF", CLASSIC),  # no fraction, mixed
    ("2009-02-02 12:18:44.50 T004 21.5", "T004", "21.5", CLASSIC),
    ("2012-07-18 12:54:45.682577\tMA016\tKitchen\tKitchen\tOFF\tControl4-MotionArea",
     "MA016", "OFF", HH),
    ("2012-07-18 12:54:45.723461\tD003\tBathroom\tBathroomDoor\tOPEN\tControl4-Door\tToilet",
     "D003", "OPEN", HH),
    ("2012-07-18 12:54:45.302398\tBATP102\tIgnore\tIgnore\t85\tControl4-BatteryPercent",
     "BATP102", "85", HH),
    ("2012-07-20 08:05:14.123456 Kitchen KitchenLight ON Cook", "KitchenLight", "ON", AREA),
    ("2010-11-04 00:03:50.209589 M003 closed", "M003", "CLOSED", CLASSIC),
])
def test_each_casas_layout_is_recognised_line_by_line(text, sensor, state, layout):
    line = parse_line(text)
    assert (line.sensor, line.state, line.layout) == (sensor, state, layout)


def test_a_mapped_sensor_first_is_never_read_as_the_area_first_layout():
    text = "2010-11-04 00:03:50.209589 M003 ONc 1"  # garbled state, numeric label
    assert parse_line(text).layout == AREA  # a name it does not know: could be an area
    with pytest.raises(LineError) as e:
        parse_line(text, {"M003"})
    assert e.value.category == "unknown_state"
    assert "M003 ONc 1" in str(e.value)


@pytest.mark.parametrize(("text", "category"), [
    ("2010-13-45 08:00:00.1 M003 ON", "bad_timestamp"),
    ("2010-02-30 08:00:00 M003 ON", "bad_timestamp"),
    ("08:00:00 2010-11-04 M003 ON", "bad_timestamp"),
    ("2010-11-04 08:00:00.1 M003", "missing_state"),
    ("2010-11-04 08:00:00.1", "missing_state"),
    ("2010-11-04 08:00:00.1 M003 ONc", "unknown_state"),
])
def test_unreadable_lines_say_why(text, category):
    with pytest.raises(LineError) as e:
        parse_line(text, {"M003"})
    assert e.value.category == category


# --- the log: skipped, out of order, clock changes -------------------------------------------

def test_malformed_lines_are_skipped_with_their_line_numbers_never_fatal():
    log = read_log(lines(
        "2010-11-04 08:00:00.100000 M001 ON",
        "2010-13-45 08:01:00.100000 M001 ON",  # 2: bad date
        "2010-11-04 08:02:00.100000 M001",  # 3: missing state
        "2010-11-04 08:03:00.100000 M001 ONc",  # 4: unknown state word (as in Aruba)
        b"\x00\x01\x02PK\x03\x04 junk\n",  # 5: binary junk
        b"2010-11-04 08:04:00 M001 \xff\xfeON\n",  # 6: not UTF-8
        "2010-11-04 08:05:00.100000 M001 OPEN",  # 7: not a motion state
        "",  # 8: blank, tolerated
        "2010-11-04 08:06:00.100000 M002 ON",
        "2010-11-04 08:07:00.100000\tENTERHOME\tD001",  # 10: an Aruba annotation row
    ), SIMPLE)
    assert [(s.line, s.category) for s in log.skipped] == [
        (2, "bad_timestamp"), (3, "missing_state"), (4, "unknown_state"), (5, "not_text"),
        (6, "not_text"), (7, "state_for_kind")]
    assert "M001 is mapped as motion: 'OPEN' is not one of ON, OFF" in log.skipped[5].reason
    assert (log.lines, log.blank, log.annotations, log.skipped_count) == (10, 1, 1, 6)
    assert [(e[1], e[3]) for e in log.events] == [("M001", True), ("M002", True)]


def test_beyond_the_first_twenty_skipped_lines_only_a_count(tmp_path):
    bad = [f"2010-11-04 08:{m:02d}:00.1 M001 ONc" for m in range(30)]
    log = read_log(lines("2010-11-04 07:59:00.1 M001 ON", *bad), SIMPLE)
    report = replay(log, SIMPLE, source="x.txt")
    summary = skipped_summary(report)
    assert len(summary) == SKIPPED_SHOWN + 1
    assert summary[0].startswith("x.txt:2: skipped: ")
    assert "10 more" in summary[-1] and "30 in all" in summary[-1]
    assert report.as_json()["skipped_lines"] == 30


def test_lines_out_of_time_order_are_sorted_and_counted():
    log = read_log(lines(
        "2010-11-04 08:00:10.500000 M001 ON",
        "2010-11-04 08:00:10.200000 M002 ON",  # 0.3 s back, as CASAS files do
        "2010-11-04 08:05:00.000000 T001 21.0",
        "2010-11-04 08:01:00.000000 M001 ON",  # 4 min back
    ), SIMPLE)
    assert log.out_of_order == 2
    assert log.max_step_back_s == pytest.approx(240.0)
    assert [e[0] for e in log.events] == sorted(e[0] for e in log.events)
    assert [e[1] for e in log.events] == ["M002", "M001", "M001"]
    assert log.first_at == la("2010-11-04 08:00:10.2") and log.last_at == la("2010-11-04 08:05")


def test_the_repeated_autumn_hour_is_read_as_its_second_pass_once_the_log_steps_back():
    log = read_log(lines(
        "2010-11-07 00:50:00.1 M001 ON",
        "2010-11-07 01:40:00.1 M001 ON",  # PDT
        "2010-11-07 01:55:00.1 M001 ON",
        "2010-11-07 01:05:00.1 M002 ON",  # the clocks went back: PST now
        "2010-11-07 01:30:00.1 M002 ON",
        "2010-11-07 02:10:00.1 M002 ON",
    ), SIMPLE)
    assert log.out_of_order == 0 and log.second_pass == 2
    assert [e[0] for e in log.events] == [
        la("2010-11-07 00:50:00.1"), la("2010-11-07 01:40:00.1"), la("2010-11-07 01:55:00.1"),
        la("2010-11-07 01:05:00.1", fold=1), la("2010-11-07 01:30:00.1", fold=1),
        la("2010-11-07 02:10:00.1")]
    assert log.events[3][0] - log.events[2][0] == pytest.approx(10 * 60)


# --- replaying the fixtures -------------------------------------------------------------------

def test_a_resident_still_from_10_00_raises_inactivity_after_the_day_limit():
    report = replay_file(CLASSIC_LOG, CLASSIC_MAP)
    log = report.log
    assert report.activity.limits_s == cold_start_limits(1)  # day limit 5 h
    (alert,) = report.alerts
    last_motion = la("2010-11-04 10:00:00.412345")
    assert (alert.event, alert.code, alert.severity, alert.room) == (
        "inactivity", CODE, 2, "living_room")
    assert last_motion + 5 * HOUR <= alert.at < last_motion + 5 * HOUR + casas.TICK_S
    assert alert.evidence["last_activity"]["device"] == "M006"
    # the day out (11:00-17:30 on the 3rd) is away, not quiet: the entrance door is mapped
    assert not any(datetime.fromtimestamp(f.at, LA).day == 3 for f in report.alerts)
    assert log.layouts == {CLASSIC: 620} and log.skipped_count == 0
    assert log.out_of_order == 3
    assert {s: n for s, n in log.seen.items() if s not in report.mapping.sensors} == {
        "M008": 6, "T002": 72}
    assert report.days == pytest.approx((la("2010-11-04 23:37:00.486680")
                                         - la("2010-11-02 00:07:00.753866")) / 86400)
    assert report.per_home_month == pytest.approx(1 / report.days * 30)
    text = render_text(report)
    assert "2010-11-04 15:01:00 PDT  inactivity" in text
    assert "unmapped (not used): M008 ×6, T002 ×72" in text


def test_without_the_entrance_door_a_day_out_reads_as_inactivity(tmp_path):
    text = CLASSIC_MAP.read_text().replace(", entrance = true", "")
    report = replay_file(CLASSIC_LOG, write_mapping(tmp_path, text))
    first, second = report.alerts
    door_closed = la("2010-11-03 11:00:25.552982")
    assert first.event == "inactivity" and first.evidence["last_activity"]["device"] == "D001"
    assert door_closed + 5 * HOUR <= first.at < door_closed + 5 * HOUR + casas.TICK_S
    assert second.at > la("2010-11-04 15:00")
    assert "no entrance door mapped" in render_text(report)


def test_a_night_exit_without_return_alarms_at_once_for_a_resident_with_dementia():
    report = replay_file(HH_LOG, HH_MAP)
    assert report.log.layouts == {HH: 439} and report.log.out_of_order == 2
    # the door opening itself; then, since nobody came back, the home's silence as well (a
    # door shut at night never makes the home "away")
    alert, quiet = report.alerts
    assert (alert.event, alert.severity) == ("night_wandering", 1)
    assert alert.at == la("2012-07-21 02:10:05.25")
    assert quiet.event == "inactivity" and quiet.evidence["home_state"] == "occupied"
    assert report.as_json()["unmapped_sensors"] == {"BATP102": 99}


def test_without_dementia_the_night_exit_waits_for_a_return(tmp_path):
    text = HH_MAP.read_text().replace('conditions = ["dementia"]', "conditions = []")
    report = replay_file(HH_LOG, write_mapping(tmp_path, text))
    alert = report.alerts[0]
    opened = la("2012-07-21 02:10:05.25")
    assert (alert.event, alert.severity) == ("night_wandering", 2)
    assert opened + 30 * 60 <= alert.at < opened + 30 * 60 + casas.TICK_S


# --- the mapping ------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "key", "words"), [
    ('[sensors]\nM001 = { kind = "pir", room = "bedroom" }', "sensors.M001.kind", "pir"),
    ('[sensors]\nM001 = { kind = "motion" }', "sensors.M001.room", "needs its room"),
    ('timezone = "Mars/Olympus"\n[sensors]\nM001 = { kind = "motion", room = "bedroom" }',
     "timezone", "unknown time zone"),
    ('timezone = "America"\n[sensors]\nM001 = { kind = "motion", room = "bedroom" }',
     "timezone", "unknown time zone"),
    ('[sensors]\nM001 = { kind = "motion", room = "hall", entrance = true }',
     "sensors.M001.entrance", "only a contact"),
    ('[sensors]\nM001 = { kind = "motion", room = "hall", rooms = "x" }',
     "sensors.M001.rooms", "unknown key"),
    ('ability_level = 7\n[sensors]\nM001 = { kind = "motion", room = "hall" }',
     "ability_level", "0-4"),
    ('zone = "UTC"\n[sensors]\nM001 = { kind = "motion", room = "hall" }', "zone",
     "unknown key"),
    ('timezone = "UTC"', "sensors", "missing"),
    ('[sensors]\nT001 = { kind = "ignore" }', "sensors", "every sensor is ignored"),
    ('[sensors\nM001 = 1', "(toml)", ""),
])
def test_a_bad_mapping_exits_2_naming_the_key(tmp_path, capsys, body, key, words):
    path = write_mapping(tmp_path, body)
    with pytest.raises(MappingError) as e:
        load_mapping(path)
    assert any(p == key and words in msg for p, msg in e.value.problems), e.value.problems
    assert main(["replay", "--casas", str(CLASSIC_LOG), "--mapping", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"  {key}: " in err and str(path) in err


def test_every_problem_in_a_mapping_is_reported_at_once(tmp_path):
    path = write_mapping(tmp_path, 'timezone = "Nowhere"\n[sensors]\n'
                                   'M001 = { kind = "pir", room = "bedroom" }\n'
                                   'M002 = { kind = "motion" }\n')
    with pytest.raises(MappingError) as e:
        load_mapping(path)
    assert [p for p, _ in e.value.problems] == ["timezone", "sensors.M001.kind",
                                                "sensors.M002.room"]


def test_the_default_timezone_is_the_gateways(tmp_path):
    path = write_mapping(tmp_path, '[sensors]\nM001 = { kind = "motion", room = "hall" }')
    mapping = load_mapping(path, home="x")
    assert (mapping.timezone, mapping.home, mapping.ability_level) == ("Asia/Shanghai", "x", None)
    cfg = casas.activity_config(mapping)
    assert cfg.limits_source == "cold start, ability level unknown (2)"
    assert cfg.limits_s == cold_start_limits(None) and cfg.wander_return_s == 1800


def test_an_unreadable_or_empty_log_exits_2(tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    assert main(["replay", "--casas", str(missing), "--mapping", str(CLASSIC_MAP)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["replay", "--casas", str(tmp_path), "--mapping", str(CLASSIC_MAP)]) == 2
    assert "cannot read" in capsys.readouterr().err
    junk = tmp_path / "aruba.zip"
    junk.write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" * 20)
    assert main(["replay", "--casas", str(junk), "--mapping", str(CLASSIC_MAP)]) == 2
    assert "no CASAS event line" in capsys.readouterr().err


# --- the command ------------------------------------------------------------------------------

def test_the_cli_reports_json_with_the_alerts_per_home_month(tmp_path, capsys):
    log = tmp_path / "home.txt"
    log.write_bytes(CLASSIC_LOG.read_bytes() + b"2010-11-05 00:01:00.5 M001 ONc\n")
    assert main(["replay", "--casas", str(log), "--mapping", str(CLASSIC_MAP), "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert f"{log}:621: skipped: " in err
    assert doc["days"] == pytest.approx(2.979, abs=1e-3)
    (alert,) = doc["alerts"]
    assert alert["time"].startswith("2010-11-04T15:01:00") and alert["time"].endswith("-07:00")
    assert (alert["detector"], alert["code"], alert["severity"]) == ("inactivity", 641, 2)
    assert doc["alerts_per_home_month"] == pytest.approx(round(30 / doc["days"], 2), abs=0.01)
    assert doc["events"] == 203 and doc["skipped_lines"] == 1
    assert doc["skipped_examples"][0]["line"] == 621
    assert doc["unmapped_sensors"] == {"M008": 6, "T002": 72}
    assert doc["sensors"]["T001"] == {"lines": 144, "events": 0, "kind": "ignore",
                                      "room": None}
    assert doc["not_used"] == {"motion OFF": 195}
    assert doc["settings"]["entrance"] == ["D001"] and doc["maintenance"] == []
    assert main(["replay", "--casas", str(log), "--mapping", str(CLASSIC_MAP)]) == 0
    assert "alerts: 1 in 2.98 days = 10.07 per home-month" in capsys.readouterr().out


# --- how fast --------------------------------------------------------------------------------

def _month(path: Path, days: int) -> int:
    """A synthetic month: motion every few minutes by day, temperature every 10 minutes."""
    start, out = datetime(2011, 1, 3), []
    rooms = ["M001", "M002", "M001", "D001"]
    for minute in range(days * 24 * 60):
        t = start + timedelta(minutes=minute)
        stamp = t.strftime("%Y-%m-%d %H:%M:%S")
        if minute % 10 == 0:
            out.append(f"{stamp}.250000\tT001\t21.5")
        if 7 <= t.hour < 22 and minute % 3 == 0:
            sensor = rooms[minute // 3 % len(rooms)]
            on, off = ("OPEN", "CLOSE") if sensor == "D001" else ("ON", "OFF")
            out.append(f"{stamp}.500000\t{sensor}\t{on}")
            out.append(f"{stamp}.900000\t{sensor}\t{off}")
    path.write_text("\n".join(out) + "\n")
    return len(out)


def test_replay_speed_is_measured(tmp_path):
    """Not a timed assertion: prints events/s so a slowdown shows in the test log."""
    log_path, map_path = tmp_path / "month.txt", tmp_path / "map.toml"
    n_lines = _month(log_path, 30)
    map_path.write_text('timezone = "America/Los_Angeles"\n[sensors]\n'
                        'M001 = { kind = "motion", room = "bedroom" }\n'
                        'M002 = { kind = "motion", room = "kitchen" }\n'
                        'D001 = { kind = "contact", room = "entrance", entrance = true }\n'
                        'T001 = { kind = "ignore" }\n')
    t0 = time.perf_counter()
    mapping = load_mapping(map_path)
    with log_path.open("rb") as f:
        log = read_log(f, mapping)
    t1 = time.perf_counter()
    report = replay(log, mapping)
    t2 = time.perf_counter()
    assert report.days == pytest.approx(30, abs=0.01) and log.skipped_count == 0
    print(f"\nCASAS replay, 30 days: {n_lines} lines read in {t1 - t0:.2f} s "
          f"({n_lines / (t1 - t0):,.0f} lines/s); {len(log.events)} events + "
          f"{30 * 24 * 60} ticks through the detectors in {t2 - t1:.2f} s "
          f"({len(log.events) / (t2 - t1):,.0f} events/s); "
          f"{len(log.events) / (t2 - t0):,.0f} events/s end to end")
