"""Instant alarm rules: transitions, not key presence; tests; pre-alarms; battery hysteresis."""

from detectors.core import Core, CoreConfig
from detectors.instant import InstantConfig
from devices.observation import Observation


def obs(kind, value, device="d1", at=100.0, room="kitchen"):
    return Observation(home="h1", device=device, kind=kind, value=value, at=at, room=room)


def test_smoke_fires_once_on_transition_not_on_repeats():
    core = Core()
    assert core.step(obs("smoke", False), 100.0) == []
    (f,) = core.step(obs("smoke", True), 101.0)
    assert (f.code, f.severity, f.event, f.room, f.device, f.test) == (
        111, 1, "smoke", "kitchen", "d1", False)
    # Heiman re-publishes smoke:true every ~3 s during an alarm: not a new alarm
    assert core.step(obs("smoke", True), 104.0) == []
    assert core.step(obs("smoke", False), 110.0) == []
    assert len(core.step(obs("smoke", True), 120.0)) == 1


def test_first_report_already_in_alarm_fires():
    # No previous value (gateway just started, device reports smoke:true) is still a fire.
    (f,) = Core().step(obs("smoke", True), 1.0)
    assert f.code == 111


def test_retained_alarm_state_at_startup_is_raised_and_marked():
    # The fire may have started while the gateway was down.
    core = Core()
    (f,) = core.step(obs("smoke", True), 1.0, prime=True)
    assert f.code == 111 and f.evidence["seen_at_startup"] is True
    assert core.step(obs("smoke", True), 2.0) == []  # still the same fire, already known
    (f,) = core.step(obs("fall", "fall", device="radar"), 1.0, prime=True)
    assert f.event == "fall" and f.evidence["seen_at_startup"] is True


def test_retained_presses_and_known_states_raise_nothing():
    core = Core()
    assert core.step(obs("sos", True), 1.0, prime=True) == []  # a stale press
    assert core.step(obs("smoke", False), 1.0, prime=True) == []
    assert core.step(obs("battery", 5), 1.0, prime=True) == []  # known, not news
    assert core.step(obs("availability", "offline"), 1.0, prime=True) == []


def test_codes_and_severities():
    expected = {"gas": (151, 1), "water_leak": (154, 2), "tamper": (383, 4)}
    for kind, (code, sev) in expected.items():
        (f,) = Core().step(obs(kind, True), 1.0)
        assert (f.code, f.severity, f.event) == (code, sev, kind)


def test_self_test_button_marks_the_alarm_as_test():
    core = Core()
    core.step(obs("test", True), 1.0)
    (f,) = core.step(obs("smoke", True), 1.0)
    assert f.test is True
    assert f.evidence["device_self_test"] is True
    core.step(obs("test", False), 5.0)
    core.step(obs("smoke", False), 5.0)
    (real,) = core.step(obs("smoke", True), 9.0)
    assert real.test is False


def test_every_sos_press_is_a_finding():
    core = Core()
    assert [f.code for f in core.step(obs("sos", True), 1.0)] == [101]
    assert [f.code for f in core.step(obs("sos", True), 2.0)] == [101]


def test_suspected_fall_is_a_pre_alarm_only():
    core = Core()
    assert core.step(obs("fall", "suspected", at=10.0), 10.0) == []
    (f,) = core.step(obs("fall", "fall", at=14.0), 14.0)
    assert (f.code, f.severity, f.event) == (100, 1, "fall")
    assert f.evidence["suspected_s_before"] == 4.0
    assert core.step(obs("fall", "fall", at=15.0), 15.0) == []  # repeat of the same fall
    assert core.step(obs("fall", "none"), 20.0) == []


def test_low_battery_from_level_with_hysteresis_and_from_flag():
    core = Core(CoreConfig(instant=InstantConfig(low_battery_pct=15)))
    assert core.step(obs("battery", 50), 1.0) == []
    (f,) = core.step(obs("battery", 15), 2.0)
    assert (f.code, f.severity, f.event) == (384, 4, "low_battery")
    assert core.step(obs("battery", 14), 3.0) == []
    assert core.step(obs("battery", 17), 4.0) == []  # inside the hysteresis band
    assert core.step(obs("battery", 12), 5.0) == []  # never cleared: no second page
    assert core.step(obs("battery", 40), 6.0) == []  # cleared
    assert len(core.step(obs("battery", 10), 7.0)) == 1
    other = Core()
    assert len(other.step(obs("battery_low", True, device="d2"), 1.0)) == 1
    assert other.step(obs("battery_low", True, device="d2"), 2.0) == []


def test_zero_is_a_reading_not_missing():
    (f,) = Core().step(obs("battery", 0), 1.0)
    assert f.evidence["value"] == 0


def test_device_going_offline_after_online():
    core = Core()
    assert core.step(obs("availability", "offline"), 1.0) == []  # first seen: no baseline
    core.step(obs("availability", "online"), 2.0)
    (f,) = core.step(obs("availability", "offline"), 3.0)
    assert (f.code, f.severity, f.event) == (381, 4, "offline")


def test_devices_are_independent():
    core = Core()
    core.step(obs("smoke", True, device="a"), 1.0)
    assert len(core.step(obs("smoke", True, device="b"), 1.0)) == 1
