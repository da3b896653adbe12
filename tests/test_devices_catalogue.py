"""The catalogue checked as data: every entry well-formed, every piece reversible."""

from __future__ import annotations

import pytest

from devices.adapters import ADAPTERS
from devices.catalogue import CATALOGUE, SKIP, find_model
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
    "trouble": [True, False], "temperature": [-5, 21.5], "heart_rate": [62],
    "respiration_rate": [15], "fall": ["fall", "suspected", "none"], "sos": [True],
    "cancel": [True], "checkin": [True], "intercom": ["call", "answered", "missed", "ended"],
}


@pytest.mark.parametrize("model", CATALOGUE, ids=[m.model for m in CATALOGUE])
def test_encode_then_decode_is_identity(model):
    """The simulator speaks through `encode`; the adapters read through `decode`."""
    for e in model.exposes:
        for kind in e.kinds:
            for value in CANONICAL_SAMPLES[kind]:
                assert e.decode(e.encode(kind, value)) == (kind, value), (e.property, kind)


def test_enum_does_not_confuse_1_with_true():
    contact = find_model("MCCGQ11LM").expose("contact")
    with pytest.raises(PayloadError):
        contact.decode(1)
    fall = find_model("MIR-HE200-TY").expose("fall_down_status")
    with pytest.raises(PayloadError):
        fall.decode(1)
