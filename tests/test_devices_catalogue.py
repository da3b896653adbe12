"""The catalogue checked as data: every entry well-formed, every piece reversible."""

from __future__ import annotations

import json

import numpy as np
import pytest

from devices import bcg, imu
from devices.adapters import ADAPTERS
from devices.catalogue import CATALOGUE, SKIP, as_away_key, find_model, model_from_exposes
from devices.observation import KINDS, PayloadError

# The home-safety models in ../shared/data/z2m_payloads.json: each must have an entry.
SHARED_MODELS = [
    "RTCGQ11LM", "MCCGQ11LM", "SJCGQ11LM", "JTYJ-GD-01LM/BW", "JT-BZ-01AQ/A", "HS1CG",
    "HS3SA/HS1SA", "HS1WL/HS3WL", "HS1EB/HS1EB-E", "TS0215A_sos", "SNZB-04", "SNZB-06P",
    "RTCZCGQ11LM", "MIR-HE200-TY", "HS2FD-EF1-3.0", "ZY-M100-S_1",
]

# The classes the foundation must cover, each by at least one model.
REQUIRED_CLASSES = {"smoke", "gas", "water_leak", "contact", "motion", "sos", "presence", "fall"}


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_every_shared_model_has_an_entry(name):
    assert find_model(name) is not None


def test_slash_families_answer_to_each_model():
    assert find_model("HS1SA") is find_model("HS3SA") is find_model("HS3SA/HS1SA")
    assert find_model("HS1EB") is find_model("HS1EB-E") is find_model("HS1EB/HS1EB-E")
    assert find_model("HS1WL") is find_model("HS3WL")
    assert find_model("no-such-model") is None


def test_the_catalogue_has_at_least_25_models():
    assert len([m for m in CATALOGUE if m.source == "zigbee2mqtt"]) >= 25


# Entries whose fixture is composed from the documented properties, because no verbatim
# payload of the model could be found in public threads (the fixture says so). This list may
# only shrink: a new entry without a captured payload fails below.
NOT_YET_CAPTURED = {"JT-BZ-01AQ/A", "MIR-HE200-TY"}


@pytest.mark.parametrize("model", CATALOGUE, ids=[m.family for m in CATALOGUE])
def test_entry_is_complete(model):
    """Supervision, battery threshold, captured payloads: an entry lacking one fails here."""
    assert model.power in ("battery", "mains")
    # Supervised by its own reports, or (mains Zigbee devices) by Zigbee2MQTT's pings.
    assert model.supervision_s or model.availability, "no way to notice it has died"
    if model.power == "battery":
        assert model.supervision_s, "battery devices must declare how often they report"
        assert model.expose_for_kind("battery") or model.expose_for_kind("battery_low")
    if model.expose_for_kind("battery"):
        assert model.battery_low_pct is not None and 5 <= model.battery_low_pct <= 50
    else:
        assert model.battery_low_pct is None
    assert model.fixture.exists(), f"no captured payloads at {model.fixture}"
    fixture = json.loads(model.fixture.read_text(encoding="utf-8"))
    assert fixture["model"] == model.family
    assert fixture["payloads"]
    assert fixture.get("captured", True) is (model.family not in NOT_YET_CAPTURED)
    for case in fixture["payloads"]:
        assert case["source"] and isinstance(case["payload"], dict)
        assert any(model.expose(k) for k in case["payload"]), "nothing in it is exposed"


def test_required_classes_are_covered():
    covered = {c for m in CATALOGUE for c in m.classes}
    assert covered >= REQUIRED_CLASSES


@pytest.mark.parametrize("model", CATALOGUE, ids=[m.model for m in CATALOGUE])
def test_entry_is_well_formed(model):
    assert model.source in ADAPTERS
    props = [e.property for e in model.exposes]
    assert len(props) == len(set(props)), "a property is exposed twice"
    assert not set(props) & model.ignored, "a property is both exposed and ignored"
    for e in model.exposes:
        assert e.kinds and all(k in KINDS for k in e.kinds)
        assert e.decode(None) is SKIP  # null is unknown, never a reading


CANONICAL_SAMPLES = {
    "motion": [True, False], "contact": ["open", "closed"], "smoke": [True, False],
    "gas": [True, False], "water_leak": [True, False], "presence": [True, False],
    "in_bed": [True, False], "battery": [0, 55, 100], "battery_low": [True, False],
    "link_quality": [0, 255], "tamper": [True, False], "test": [True, False],
    "trouble": [True, False], "vibration": [True], "temperature": [-5, 21.5], "heart_rate": [62],
    "respiration_rate": [15], "fall": ["fall", "suspected", "none"], "sos": [True],
    "cancel": [True], "checkin": [True],
    "intercom": ["call", "answered", "missed", "declined", "ended"],
    "intercom_request": ["01JDLOOKIN00000000000000AA"],
    "snapshot": [{"ref": "media/7f3a9c", "taken_at": 1795423447.5, "request_id": "R1"}],
    "away_mode": ["away", "home"],
}


@pytest.mark.parametrize("model", CATALOGUE, ids=[m.model for m in CATALOGUE])
def test_encode_then_decode_is_identity(model):
    """The simulator speaks through `encode`; the adapters read through `decode`."""
    for e in model.exposes:
        for kind in e.kinds:
            if kind == "bcg":  # a block of samples: compared by what it says
                value = bcg.observation_value(bcg.block_from_mapping(
                    {"rate_hz": 100, "t0": 1.0, "signal": [1.0] * 100}))
                back = e.decode(e.encode(kind, value))
                assert back[0] == kind and back[1]["n"] == 100, e.property
                continue
            if kind == "accel":  # a block of samples: compared by what it says
                value = imu.observation_value(imu.make_block(50, 1.0, np.ones((10, 3))))
                back = e.decode(e.encode(kind, value))
                assert back[0] == kind and back[1]["n"] == 10, e.property
                assert np.allclose(imu.block_from_value(back[1]).acc, 1.0)
                continue
            for value in CANONICAL_SAMPLES[kind]:
                assert e.decode(e.encode(kind, value)) == (kind, value), (e.property, kind)


def test_an_away_key_encodes_and_decodes_its_presses():
    key = as_away_key(find_model("WXKG11LM")).expose("action")
    for value in CANONICAL_SAMPLES["away_mode"]:
        assert key.decode(key.encode("away_mode", value)) == ("away_mode", value)


def test_enum_does_not_confuse_1_with_true():
    contact = find_model("MCCGQ11LM").expose("contact")
    with pytest.raises(PayloadError):
        contact.decode(1)
    fall = find_model("MIR-HE200-TY").expose("fall_down_status")
    with pytest.raises(PayloadError):
        fall.decode(1)


def test_a_model_the_catalogue_lacks_is_mapped_from_standard_exposes():
    model = model_from_exposes("ZG-NEW", ["contact", "battery", "linkquality", "voltage",
                                          "tamper"])
    assert model.classes == ("contact",)
    assert model.description == "mapped from Zigbee2MQTT exposes"
    assert [e.property for e in model.exposes] == ["contact", "battery", "linkquality",
                                                   "tamper"]
    assert model.expose("contact").decode(False) == ("contact", "open")  # true = closed
    assert (model.power, model.supervision_s, model.battery_low_pct) == (
        "battery", 62000.0, 15.0)
    radar = model_from_exposes("RADAR-X", ["presence"])
    assert (radar.power, radar.availability, radar.supervision_s) == ("mains", True, None)


def test_an_unknown_button_is_an_sos_only_when_its_action_says_so():
    button = model_from_exposes("BTN-X", ["action", "battery"])
    act = button.expose("action")
    assert act.decode("emergency") == ("sos", True)
    assert act.decode("single") is SKIP  # could be a light switch: not guessed


def test_a_model_exposing_nothing_watched_is_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"exposes nothing anxin watches.*temperature"):
        model_from_exposes("TH-1", ["temperature", "humidity"])
