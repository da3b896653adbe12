"""Device health: weak links and stuck contacts are found once, and their end is noticed."""

from __future__ import annotations

import pytest

from detectors.health import (
    STUCK_CONTACT,
    TROUBLE_CODE,
    WEAK_LINK,
    HealthConfig,
    HealthState,
    step,
    tick,
)
from devices.observation import Observation

CFG = HealthConfig()
HOUR, DAY = 3600.0, 86400.0


def obs(kind: str, value, at: float, device: str = "door") -> Observation:
    return Observation("h1", device, kind, value, at, "entrance")


def lqi(state: HealthState, values: list[float], start: float = 0.0,
        cfg: HealthConfig = CFG) -> list:
    found = []
    for n, v in enumerate(values):
        found += step(state, obs("link_quality", v, start + n * HOUR), start + n * HOUR, cfg)
    return found


def test_three_weak_readings_in_a_row_are_one_finding():
    s = HealthState()
    assert lqi(s, [30, 30]) == []
    (f,) = lqi(s, [25], start=2 * HOUR)
    assert (f.event, f.code, f.severity, f.device) == (WEAK_LINK, TROUBLE_CODE, 4, "door")
    assert f.evidence["link_quality"] == [30.0, 30.0, 25.0] and f.evidence["limit"] == 40.0
    assert lqi(s, [20, 20, 20], start=3 * HOUR) == []  # once


def test_one_bad_reading_among_good_ones_is_nothing():
    s = HealthState()
    assert lqi(s, [120, 10, 120, 15, 20, 90, 10]) == []


def test_a_weak_link_is_over_only_well_above_the_limit():
    s = HealthState()
    lqi(s, [30, 30, 30])
    lqi(s, [45, 45, 45], start=3 * HOUR)  # above the limit, inside the hysteresis
    assert s.cleared == []
    lqi(s, [60, 60, 60], start=6 * HOUR)
    assert s.cleared == [("door", WEAK_LINK)]
    assert len(lqi(s, [30, 30, 30], start=9 * HOUR)) == 1  # can be found again


def test_retained_link_quality_is_not_a_reading():
    s = HealthState()
    for n in range(3):
        assert step(s, obs("link_quality", 5, n), n, CFG, prime=True) == []
    assert lqi(s, [5, 5]) == []


def test_weak_link_rule_can_be_switched_off():
    assert lqi(HealthState(), [1, 1, 1, 1], cfg=HealthConfig(weak_link_lqi=0)) == []


def test_a_door_left_open_a_day_is_stuck_once_and_over_when_it_moves():
    s = HealthState()
    step(s, obs("contact", "closed", 0.0), 0.0, CFG)
    step(s, obs("contact", "open", 100.0), 100.0, CFG)
    step(s, obs("contact", "open", 5 * HOUR), 5 * HOUR, CFG)  # whole-state repeat
    assert tick(s, 100.0 + DAY - 1, CFG) == []
    (f,) = tick(s, 100.0 + DAY + 1, CFG)
    assert (f.event, f.device, f.room) == (STUCK_CONTACT, "door", "entrance")
    assert f.evidence["why"] == "open" and f.evidence["contact"] == "open"
    assert tick(s, 100.0 + 2 * DAY, CFG) == []
    step(s, obs("contact", "closed", 2 * DAY), 2 * DAY, CFG)
    assert s.cleared == [("door", STUCK_CONTACT)]


def test_a_contact_that_never_changes_for_two_weeks_is_stuck():
    s = HealthState()
    for d in range(15):  # closed, repeated with every battery report
        step(s, obs("contact", "closed", d * DAY), d * DAY, CFG)
        found = tick(s, d * DAY + 1, CFG)
        assert found == [] if d < 14 else found[0].evidence["why"] == "unchanged"


@pytest.mark.parametrize(("kind", "value", "event"), [
    ("tamper", False, "tamper"), ("availability", "online", "offline")])
def test_tamper_closed_and_back_online_end_those_troubles(kind, value, event):
    s = HealthState()
    step(s, obs(kind, value, 1.0), 1.0, CFG)
    assert s.cleared == [("door", event)]
