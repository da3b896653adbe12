"""Config loading: every problem named by key path, exit code 2, nothing started."""

import tomllib

import pytest

from devices.adapters import ADAPTERS
from gateway.cli import main
from gateway.config import ConfigError, demo_path, load, parse
from gateway.coreconfig import core_config

GOOD = """
[gateway]
id = "gw-001"
timezone = "Asia/Shanghai"
data_dir = "./var"

[mqtt]
url = "mqtt://127.0.0.1:1883"

[home]
id = "home-001"
address = "上海市"

[[home.residents]]
name = "张三"
age = 82
ability_level = 2
conditions = ["dementia"]

[[devices]]
id = "smoke-kitchen"
source = "zigbee2mqtt"
topic = "zigbee2mqtt/kitchen_smoke"
model = "HS1SA"
room = "kitchen"

[[hotline]]
kind = "webhook"
url = "http://127.0.0.1:9000/alerts"
secret = "s3cret"
"""


def problems(text, **kw):
    with pytest.raises(ConfigError) as e:
        parse(tomllib.loads(text), **kw)
    return dict(e.value.problems)


def test_the_issue_example_loads_with_defaults():
    cfg = parse(tomllib.loads(GOOD))
    assert cfg.gateway.id == "gw-001"
    assert cfg.home.residents[0].conditions == ["dementia"]
    assert cfg.devices[0].model == "HS1SA"
    assert cfg.alerts.fall_cancel_window_s == 30.0
    assert cfg.secret(0) == b"s3cret"
    assert cfg.mqtt.keepalive_s == 30


def test_demo_config_is_valid():
    cfg = load(demo_path())
    assert cfg.mqtt.url == "embedded"
    assert len(cfg.devices) >= 8


def test_unknown_key_names_its_path_and_suggests():
    p = problems(GOOD.replace('room = "kitchen"', 'room = "kitchen"\nrom = 1'))
    assert "devices[0].rom" in p
    p = problems(GOOD.replace("[mqtt]", "[mqtt]\nkeep_alive_s = 3"))
    assert "did you mean 'keepalive_s'" in p["mqtt.keep_alive_s"]


def test_wrong_types_and_ranges():
    p = problems(GOOD.replace("age = 82", 'age = "82"').replace("ability_level = 2",
                                                                "ability_level = 7"))
    assert "expected an integer" in p["home.residents[0].age"]
    assert "above the maximum 4" in p["home.residents[0].ability_level"]


def test_bool_is_not_a_number():
    p = problems(GOOD.replace("age = 82", "age = true"))
    assert "home.residents[0].age" in p


def test_unknown_model_and_duplicate_ids_and_topics():
    dup = GOOD + """
[[devices]]
id = "smoke-kitchen"
source = "zigbee2mqtt"
topic = "zigbee2mqtt/kitchen_smoke"
model = "NOPE-9000"
"""
    p = problems(dup)
    assert "duplicate id 'smoke-kitchen'" in p["devices[1].id"]
    assert "already used by devices[0]" in p["devices[1].topic"]
    assert "unknown model 'NOPE-9000'" in p["devices[1].model"]


def test_missing_required_and_bad_urls_and_zone():
    text = GOOD.replace('id = "home-001"\n', "").replace(
        "http://127.0.0.1:9000/alerts", "ftp://x").replace(
        "mqtt://127.0.0.1:1883", "tcp://broker").replace("Asia/Shanghai", "Mars/Olympus")
    p = problems(text)
    assert p["home.id"].startswith("required")
    # cross-checks run only once the file's shape is right; fix the shape, see the rest
    p = problems(GOOD.replace("http://127.0.0.1:9000/alerts", "ftp://x").replace(
        "mqtt://127.0.0.1:1883", "tcp://broker").replace("Asia/Shanghai", "Mars/Olympus"))
    assert set(p) >= {"hotline[0].url", "mqtt.url", "gateway.timezone"}


def test_secret_sources(tmp_path, monkeypatch):
    (tmp_path / "key").write_text("from-file\n")
    cfg = parse(tomllib.loads(GOOD.replace('secret = "s3cret"', 'secret_file = "key"')),
                base_dir=str(tmp_path))
    assert cfg.secret(0) == b"from-file"
    monkeypatch.setenv("HOTLINE_KEY", "from-env")
    cfg = parse(tomllib.loads(GOOD.replace('secret = "s3cret"', 'secret_env = "HOTLINE_KEY"')))
    assert cfg.secret(0) == b"from-env"
    p = problems(GOOD.replace('secret = "s3cret"', 'secret_file = "missing"'),
                 base_dir=str(tmp_path))
    assert "cannot read secret_file" in p["hotline[0].secret"]
    p = problems(GOOD.replace('secret = "s3cret"', ""))
    assert "exactly one of" in p["hotline[0].secret"]


def test_cancel_device_must_exist():
    p = problems(GOOD + '\n[alerts]\ncancel_devices = ["nope"]\n')
    assert "alerts.cancel_devices[0]" in p


def test_cli_check_config_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    assert main(["check-config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('model = "HS1SA"', 'model = "HS1SA"\ncolour = "red"'))
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "devices[0].colour: unknown key" in err
    broken = tmp_path / "broken.toml"
    broken.write_text("[gateway\n")
    assert main(["check-config", str(broken)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["check-config", str(tmp_path / "absent.toml")]) == 2


def test_one_run_lists_structural_and_cross_check_problems_together():
    text = GOOD.replace('model = "HS1SA"', 'model = "HS9SA"').replace(
        'timezone = "Asia/Shanghai"', 'timezone = "Asia/Shanghai"\ncolour = "red"')
    p = problems(text)
    assert set(p) == {"gateway.colour", "devices[0].model"}


ESCALATION = GOOD + """
[[hotline]]
name = "daughter"
kind = "sms"
url = "http://127.0.0.1:9000/notify"
to = "+8613800000000"
secret = "s"

[escalation]
renotify_s = [120, 600, 0, 0]

[[escalation.tiers]]
name = "centre"
targets = ["hotline-1"]

[[escalation.tiers]]
name = "family"
targets = ["daughter"]
after_s = [60, 300, 0, 0]
"""


def test_escalation_policy_from_config():
    cfg = parse(tomllib.loads(ESCALATION))
    policy = cfg.policy()
    assert [t.name for t in policy.tiers] == ["centre", "family"]
    assert policy.targets(1) == ("hotline-1", "daughter")
    assert policy.tiers[1].wait(1) == 60 and policy.renotify_every(2) == 600


def test_without_tiers_everyone_is_told_at_once():
    assert parse(tomllib.loads(GOOD)).policy().targets(0) == ("hotline-1",)


@pytest.mark.parametrize(("change", "path", "message"), [
    (('targets = ["daughter"]', 'targets = ["son"]'), "escalation.tiers[1].targets[0]",
     "no [[hotline]] target named 'son'"),
    (("after_s = [60, 300, 0, 0]", "after_s = [60, 300]"), "escalation.tiers[1].after_s",
     "give 4 numbers"),
    (("renotify_s = [120, 600, 0, 0]", "renotify_s = [-1, 0, 0, 0]"), "escalation.renotify_s",
     "give 4 numbers"),
    (('to = "+8613800000000"', 'to = "call me"'), "hotline[1].to", "phone number"),
    (('targets = ["daughter"]', 'targets = ["hotline-1"]'), "escalation.tiers",
     "'daughter' is in no tier"),
])
def test_escalation_problems_are_named(change, path, message):
    p = problems(ESCALATION.replace(*change))
    assert message in p[path]


def test_zones_default_to_position_and_must_not_clash():
    two = GOOD + """
[[devices]]
id = "sos"
source = "zigbee2mqtt"
topic = "zigbee2mqtt/sos"
model = "TS0215A_sos"
zone = 17
"""
    assert parse(tomllib.loads(two)).zones() == {"smoke-kitchen": 1, "sos": 17}
    p = problems(two.replace("zone = 17", "zone = 1"))
    assert "zone 1 is already smoke-kitchen's" in p["devices[1].zone"]


@pytest.mark.parametrize("zone", ["America", "Mars/Olympus", "../etc"])
def test_a_time_zone_that_is_not_one_is_named(zone):
    p = problems(GOOD.replace("Asia/Shanghai", zone))
    assert "unknown time zone" in p["gateway.timezone"]


AWAY_KEY = """
[[devices]]
id = "key-door"
source = "zigbee2mqtt"
topic = "zigbee2mqtt/door_key"
model = "{model}"
room = "entrance"
use = "away_key"
"""


def test_a_button_installed_as_the_away_key_sets_away_and_never_calls_for_help():
    cfg = parse(tomllib.loads(GOOD + AWAY_KEY.format(model="WXKG11LM")))
    entry = cfg.devices[1]
    model = entry.catalogue_model()
    assert model is not None and model.classes == ("away_key",)
    dev = cfg.device_list()[1]
    adapt = ADAPTERS["zigbee2mqtt"]
    read = {b: [(o.kind, o.value) for o in adapt(dev, model, dev.topic, b, 0.0)
                if o.kind in ("sos", "away_mode")]
            for b in (b'{"action":"single"}', b'{"action":"double"}', b'{"action":"hold"}',
                      b'{"action":""}')}
    assert read == {b'{"action":"single"}': [("away_mode", "away")],
                    b'{"action":"double"}': [("away_mode", "home")],
                    b'{"action":"hold"}': [], b'{"action":""}': []}
    # the activity detector hears it; it is not a watching sensor, nor an SOS button
    act = core_config(cfg).activity
    assert "key-door" in act.sensors and "key-door" not in act.passive


def test_an_away_key_needs_single_and_double_presses():
    p = problems(GOOD + AWAY_KEY.format(model="TS0215A_sos"))
    assert "cannot be an away key" in p["devices[1].use"]
    assert "emergency" in p["devices[1].use"]
    p = problems(GOOD + AWAY_KEY.format(model="WXKG11LM").replace('"away_key"', '"alarm"'))
    assert "devices[1].use" in p


def test_a_bed_bound_resident_is_watched_by_care_activity():
    text = GOOD.replace('conditions = ["dementia"]', 'conditions = ["卧床 (stroke, 2024)"]')
    act = core_config(parse(tomllib.loads(text))).activity
    assert act.bedbound and "bed-bound" in act.limits_source
    assert act.limits_s[12] == 8 * 3600 and act.limits_s[2] == 14 * 3600
    # a partner who gets about: bedroom movement may be theirs, so the usual rules
    couple = text.replace("[[devices]]", '[[home.residents]]\nname = "李四"\n\n[[devices]]', 1)
    assert len(parse(tomllib.loads(couple)).home.residents) == 2
    assert not core_config(parse(tomllib.loads(couple))).activity.bedbound


def test_a_residents_own_vital_sign_limits_reach_the_bed_sensor():
    text = GOOD.replace('conditions = ["dementia"]', 'conditions = ["dementia"]\n'
                        "heart_rate_low_bpm = 35    # beta blockers, per her doctor\n"
                        "breath_pause_s = 30") + """
[[devices]]
id = "bed-1"
source = "anxin"
topic = "anxin/sensor/bed-1"
model = "anxin-bed-sensor-raw"
room = "bedroom"
"""
    vit = core_config(parse(tomllib.loads(text))).vitals
    limits = vit.limits_for("bed-1")  # the only resident's bed
    assert (limits.brady_bpm, limits.tachy_bpm, limits.no_breath_s) == (35, 130, 30)
    assert vit.bed("bed-1").resident == "张三"
    p = problems(text.replace("breath_pause_s = 30", "heart_rate_high_bpm = 40"))
    assert "at least 10 above heart_rate_low_bpm" in p["home.residents[0].heart_rate_high_bpm"]
    assert "home.residents[0].breath_pause_s" in problems(text.replace("= 30", "= 5"))
