"""Supervision: a device that goes silent is offline after two missed reports, once."""

from __future__ import annotations

from detectors.core import Core, CoreConfig
from detectors.supervision import GRACE_S, Expectation
from devices.observation import Observation

HOUR = 3600.0
LIMIT = 2 * HOUR + GRACE_S


def core() -> Core:
    return Core(CoreConfig(supervision=(Expectation("h1", "pir", HOUR, "living_room"),)))


def heard(c: Core, at: float, prime: bool = False) -> None:
    c.step(Observation("h1", "pir", "battery", 90, at, "living_room"), at, prime=prime)


def ticks(c: Core, start: float, end: float, every: float = 60.0) -> list:
    found, t = [], start
    while t <= end:
        found += c.tick(t)
        t += every
    return found


def test_a_device_reporting_on_time_is_never_offline():
    c = core()
    c.tick(0.0)
    for k in range(12):  # a report every 50 minutes for 10 hours
        heard(c, k * 3000.0)
        assert ticks(c, k * 3000.0, (k + 1) * 3000.0 - 1) == []


def test_silence_beyond_two_reports_is_one_offline_finding():
    c = core()
    c.tick(0.0)
    heard(c, 100.0)
    assert ticks(c, 100.0, 100.0 + LIMIT) == []
    (f,) = ticks(c, 100.0 + LIMIT + 1, 100.0 + LIMIT + 3 * HOUR)
    assert (f.code, f.severity, f.event, f.device, f.room) == (381, 4, "offline", "pir",
                                                               "living_room")
    assert f.evidence["expected_every_s"] == HOUR and f.evidence["silent_for_s"] > LIMIT
    assert f.evidence["never_heard_since_start"] is False
    # heard again: back; silent again: a new finding
    heard(c, 30_000.0)
    assert [d for d, _ in c.supervision.back] == ["pir"]
    (again,) = ticks(c, 30_000.0, 30_000.0 + LIMIT + 120)
    assert again.device == "pir"


def test_a_device_never_heard_since_start_is_offline_too():
    c = core()
    (f,) = ticks(c, 0.0, LIMIT + 120)
    assert f.evidence["never_heard_since_start"] is True


def test_a_retained_message_is_not_a_sign_of_life():
    c = core()
    c.tick(0.0)
    heard(c, LIMIT - 10, prime=True)  # the broker's memory, not the device
    (f,) = ticks(c, LIMIT - 10, LIMIT + 120)
    assert f.device == "pir"
