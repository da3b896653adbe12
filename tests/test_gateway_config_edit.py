"""Assigning devices writes the config itself: comments kept, validated first, backed up."""

from __future__ import annotations

import difflib
import os
import tomllib

import pytest

from gateway.config import ConfigError, load
from gateway.config_edit import assign_device, backups
from tests.test_cli import config

NOW = 1_795_400_000.0


def test_a_new_device_is_appended_and_the_old_file_kept(tmp_path):
    path = config(tmp_path, 1883)
    os.chmod(path, 0o640)
    before = path.read_text(encoding="utf-8")
    cfg, backup = assign_device(path, "door-balcony", {
        "source": "zigbee2mqtt", "topic": "z2m-cli/balcony_door", "model": "SNZB-04",
        "room": "balcony", "name": "阳台门", "resident": "王秀英"}, now=NOW)
    assert backup.read_text(encoding="utf-8") == before
    assert backups(path) == [backup]
    after = path.read_text(encoding="utf-8")
    # Comments and layout untouched: the change only inserts lines.
    ops = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines()).get_opcodes()
    assert {op for op, *_ in ops} == {"equal", "insert"}
    assert 'name = "阳台门"' in after
    assert os.stat(path).st_mode & 0o777 == 0o640
    d = next(d for d in cfg.devices if d.id == "door-balcony")
    assert (d.room, d.name, d.resident, d.model) == ("balcony", "阳台门", "王秀英", "SNZB-04")
    assert load(path).devices[-1].id == "door-balcony"


def test_an_existing_device_is_updated_in_place(tmp_path):
    path = config(tmp_path, 1883)
    assign_device(path, "motion-living", {"room": "dining_room", "name": "餐厅"}, now=NOW)
    entries = tomllib.loads(path.read_text(encoding="utf-8"))["devices"]
    (e,) = [e for e in entries if e["id"] == "motion-living"]
    assert (e["room"], e["name"], e["model"]) == ("dining_room", "餐厅", "RTCGQ11LM")
    assign_device(path, "motion-living", {"name": None}, now=NOW + 1)
    entries = tomllib.loads(path.read_text(encoding="utf-8"))["devices"]
    assert "name" not in next(e for e in entries if e["id"] == "motion-living")
    assert len(backups(path)) == 2


def test_a_change_that_would_not_load_is_refused_and_nothing_is_written(tmp_path):
    path = config(tmp_path, 1883)
    before = path.read_text(encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        assign_device(path, "door-x", {"source": "zigbee2mqtt", "topic": "z2m-cli/kitchen_smoke",
                                       "model": "NOPE-1", "resident": "李四"}, now=NOW)
    text = str(e.value)
    assert "unknown model 'NOPE-1'" in text
    assert "already used by" in text  # the topic of the kitchen smoke detector
    assert "no resident named '李四'" in text
    assert path.read_text(encoding="utf-8") == before
    assert backups(path) == []


def test_a_model_outside_the_catalogue_is_assigned_with_its_exposes(tmp_path):
    path = config(tmp_path, 1883)
    cfg, _ = assign_device(path, "leak-kitchen", {
        "source": "zigbee2mqtt", "topic": "z2m-cli/kitchen_leak",
        "model": "ZG-LEAK-NEW", "exposes": ["water_leak", "battery_low", "tamper"],
        "room": "kitchen"}, now=NOW)
    entry = next(d for d in cfg.devices if d.id == "leak-kitchen")
    model = entry.catalogue_model()
    assert model is not None and model.classes == ("water_leak",)
    with pytest.raises(ConfigError, match="exposes nothing anxin watches"):
        assign_device(path, "th-kitchen", {"source": "zigbee2mqtt", "topic": "z2m-cli/th",
                                           "model": "TH-NEW", "exposes": ["temperature"]})


def test_unknown_fields_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot set secret"):
        assign_device(config(tmp_path, 1883), "x", {"secret": "s"})
