"""`anxin sim --life` and `anxin run --clock-*`: a configured home's simulated days, and the
command-line errors that stop a bad run before it starts."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest

from gateway import cli
from gateway.clock import ScaledClock
from gateway.config import load
from simulator.life import LifeError, home_from_config, live, milestones, parse_incident, timeline
from simulator.resident import IncidentSpec
from tests.test_e2e_simulated_life import START, write

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def config(tmp_path):
    return write(tmp_path, 1, 1, "gw-simlife")


def run(*argv: str) -> int:
    return cli.main(list(argv))


# --- the simulated home ---------------------------------------------------------------------

def test_the_home_is_the_configured_one(config):
    import numpy as np  # noqa: PLC0415

    home = home_from_config(config.read_text(encoding="utf-8"), np.random.default_rng(1))
    assert home.home_id == "home-gw-simlife"
    (resident,) = home.residents
    assert (resident.name, resident.age, resident.ability_level) == ("周玉兰", 82, 2)
    assert sorted(home.devices) == ["door-entrance", "pir-bathroom", "pir-bedroom",
                                    "pir-kitchen", "pir-living", "sos-bedside"]
    assert home.devices["pir-living"].report_s == (3000.0, 3600.0)  # Aqara's heartbeat


def test_a_life_is_seeded_and_its_topics_are_the_configs(config):
    text = config.read_text(encoding="utf-8")
    a = live(text, START, 1, 3, [IncidentSpec("not_up", 0)])
    b = live(text, START, 1, 3, [IncidentSpec("not_up", 0)])
    assert a.messages == b.messages and a.incidents == b.incidents
    assert {topic.split("/")[1] for _, topic, _ in a.messages} >= {
        "front_door", "living_pir", "bedroom_pir", "kitchen_pir", "bathroom_pir"}
    assert all(START <= t < START + 86400 for t, _, _ in a.messages)
    (not_up,) = a.incidents
    assert not_up.kind == "not_up" and not_up.resident == "周玉兰"


def test_the_stream_marks_days_and_incidents(config):
    life = live(config.read_text(encoding="utf-8"), START, 2, 4,
                [IncidentSpec("long_lie", 1, hour=10.0, room="living_room")])
    notes = milestones(life, TZ)
    stream = timeline(life.messages, START, notes)
    said = [(item.t, item.note) for item in stream if item.note]
    assert said[0] == (0.0, "day 0: Mon 2026-03-02")
    assert [n for _, n in said[1:]] == ["day 1: Tue 2026-03-03", "long_lie begins (living_room)",
                                        "long_lie ends, found by family"]
    (lie,) = life.incidents
    begins = next(t for t, n in said if n.startswith("long_lie begins"))
    assert 0 <= START + begins - lie.start < 3600  # on the first message after the fall


@pytest.mark.parametrize(("text", "spec"), [
    ("long_lie@1", IncidentSpec("long_lie", 1)),
    ("not_up@0", IncidentSpec("not_up", 0)),
    ("bathroom_collapse@1/14.5", IncidentSpec("bathroom_collapse", 1, hour=14.5)),
])
def test_incidents_are_written_kind_at_day(text, spec):
    assert parse_incident(text, 2) == spec


@pytest.mark.parametrize(("text", "problem"), [
    ("fall@1", "KIND one of long_lie, bathroom_collapse"),
    ("long_lie", "write KIND@DAY"),
    ("long_lie@tomorrow", "DAY must be a whole number"),
    ("long_lie@2", "day 2 is not in the 2 simulated day(s) (0 to 1)"),
    ("long_lie@1/25", "hour 25 is not in 0-24"),
])
def test_a_bad_incident_says_what_is_wrong(text, problem):
    with pytest.raises(LifeError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_incident(text, 2)


def test_a_home_nobody_lives_in_cannot_be_simulated(config):
    import numpy as np  # noqa: PLC0415

    text = config.read_text(encoding="utf-8")
    nobody = text.replace('[[home.residents]]\nname = "周玉兰"\nage = 82\nability_level = 2\n', "")
    with pytest.raises(LifeError, match=r"no \[\[home.residents\]\]"):
        home_from_config(nobody, np.random.default_rng(1))
    elsewhere = text.replace('room = "', 'room = "卧室-')
    with pytest.raises(LifeError, match="no device in a room the simulation knows"):
        home_from_config(elsewhere, np.random.default_rng(1))


# --- the command line -----------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "problem"), [
    (["--clock-speed", "0"], "argument --clock-speed: must be > 0 (times real time), got 0"),
    (["--clock-speed", "-5"], "must be > 0"),
    (["--clock-speed", "fast"], "'fast' is not a number"),
    (["--clock-start", "2026-03-02T00:00"], "'2026-03-02T00:00' has no time zone"),
    (["--clock-start", "2026-03-02"], "has no time zone"),
    (["--clock-start", "Monday"], "'Monday' is not an ISO 8601 time"),
])
def test_run_refuses_a_bad_simulated_clock(config, capsys, argv, problem):
    with pytest.raises(SystemExit) as stop:
        run("run", "--config", str(config), *argv)
    assert stop.value.code == cli.EXIT_CONFIG
    assert problem in capsys.readouterr().err


def test_run_on_a_simulated_clock_gives_the_gateway_that_clock(config, monkeypatch):
    import gateway.runtime  # noqa: PLC0415

    made = {}

    class Gateway:
        def __init__(self, cfg, **kw) -> None:
            made.update(kw)

        async def run_forever(self) -> None:
            return None

    monkeypatch.setattr(gateway.runtime, "Gateway", Gateway)
    assert run("run", "--config", str(config), "--clock-start", "2026-03-02T00:00+08:00",
               "--clock-speed", "3600") == 0
    clock = made["clock"]
    assert isinstance(clock, ScaledClock)
    assert (clock.start, clock.speed) == (START, 3600.0)
    assert run("run", "--config", str(config)) == 0
    assert made["clock"] is None  # the wall clock


@pytest.mark.parametrize(("argv", "problem"), [
    (["--life", "0"], "argument --life: must be at least 1 day, got 0"),
    (["--life", "two"], "'two' is not a whole number of days"),
    (["--life", "2", "--speed", "0"], "argument --speed: must be > 0"),
])
def test_sim_life_refuses_bad_arguments(config, capsys, argv, problem):
    with pytest.raises(SystemExit) as stop:
        run("sim", "--config", str(config), *argv)
    assert stop.value.code == cli.EXIT_CONFIG
    assert problem in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "problem"), [
    (["--scenario", "sos_press", "--incident", "long_lie@1"],
     "--incident, --seed and --start go with --life"),
    (["--life", "2", "--incident", "long_lie@3"], "day 3 is not in the 2 simulated day(s)"),
    (["--life", "2", "--incident", "heart_attack@1"], "KIND one of long_lie"),
    (["--life", "1", "--start", "2026-03-02T08:00+08:00"], "give a local midnight"),
    (["--life", "1", "--start", "2026-03-02T00:00"], "--start '2026-03-02T00:00' has no time "
                                                     "zone"),
    (["--life", "1", "--loop"], "--life runs its days once"),
])
def test_sim_life_explains_what_it_cannot_do(config, capsys, argv, problem):
    assert run("sim", "--broker", "mqtt://127.0.0.1:1", "--config", str(config),
               *argv) == cli.EXIT_CONFIG
    assert problem in capsys.readouterr().err


def gateway_status(path, clock_now: float, speed: float) -> None:
    """What a gateway running on the config at `path` keeps in its status.json (the part
    `anxin sim --life` reads)."""
    data = load(path).data_path()
    data.mkdir(parents=True, exist_ok=True)
    (data / "status.json").write_text(json.dumps({
        "updated_at": time.time(), "clock": {"now": clock_now, "speed": speed}}))


def sim_life(host: str, port: int, path, *argv: str) -> tuple[int, list[str]]:
    """Run `anxin sim --life 2 --incident long_lie@1/10 --seed 4 …`; the exit code and the
    topics a subscriber saw."""
    got: list[str] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda _c, _u, m: got.append(m.topic)
    sub.connect(host, port)
    sub.subscribe("gw-simcli/#", qos=1)
    sub.loop_start()
    try:
        time.sleep(0.2)
        code = run("sim", "--broker", f"mqtt://{host}:{port}", "--config", str(path),
                   "--life", "2", "--incident", "long_lie@1/10", "--seed", "4", *argv)
        time.sleep(0.3)
    finally:
        sub.loop_stop()
        sub.disconnect()
    return code, got


@pytest.mark.mosquitto
def test_sim_life_publishes_the_days_and_prints_the_ground_truth(tmp_path, mosquitto,
                                                                  capsys):
    host, port = mosquitto
    path = write(tmp_path, port, 1, "gw-simcli")
    code, got = sim_life(host, port, path, "--start", "2026-03-02", "--speed", "200000")
    out = capsys.readouterr().out
    assert code == 0, out
    life = live(path.read_text(encoding="utf-8"), START, 2, 4,
                [parse_incident("long_lie@1/10", 2)])
    assert len(got) == len(life.messages)
    (lie,) = life.incidents
    began = datetime.fromtimestamp(lie.start, TZ)
    assert f"long_lie           from {began:%Y-%m-%d %H:%M}" in out
    assert "room living_room, 周玉兰" in out
    # no gateway running on this config: how to start one on the same clock
    assert (f"anxin run --config {path} --clock-start 2026-03-02T00:00+08:00 "
            "--clock-speed 200000") in out
    assert "long_lie begins (living_room)" in out


@pytest.mark.mosquitto
def test_sim_life_follows_the_clock_of_the_running_gateway(tmp_path, mosquitto, capsys):
    host, port = mosquitto
    path = write(tmp_path, port, 1, "gw-simcli")
    gateway_status(path, START + 3600, 200000.0)  # its clock reads 01:00 on the first day
    code, got = sim_life(host, port, path, "--start", "2026-03-02", "--speed", "200000")
    out = capsys.readouterr().out
    assert code == 0, out
    life = live(path.read_text(encoding="utf-8"), START, 2, 4,
                [parse_incident("long_lie@1/10", 2)])
    # its clock runs on while this starts (a real tenth of a second is hours at this speed)
    said = re.search(r"following the running gateway's clock, at (2026-03-0\d \d\d:\d\d): "
                     r"(\d+) message\(s\) from before it are sent at once", out)
    assert said, out
    clock = datetime.strptime(said[1], "%Y-%m-%d %H:%M").replace(tzinfo=TZ).timestamp()
    assert clock >= START + 3600
    before = [t for t, _, _ in life.messages if t < clock + 60]
    assert len([t for t in before if t < clock]) <= int(said[2]) <= len(before)
    assert "anxin run" not in out
    assert len(got) == len(life.messages)


def test_sim_life_refuses_a_speed_other_than_the_running_gateways(config, capsys):
    gateway_status(config, START, 3600.0)
    assert run("sim", "--broker", "mqtt://127.0.0.1:1", "--config", str(config), "--life",
               "1", "--speed", "7200") == cli.EXIT_CONFIG
    assert ("the gateway running on this config has a clock 3600 x real time; give "
            "--speed 3600") in capsys.readouterr().err
