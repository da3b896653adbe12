"""The weekly button self-test: when it starts, what counts as the test, what is a real call."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from alerts import selftest
from alerts.selftest import ASK, FAILED, REMIND, THANKS, SelfTestConfig, SelfTestState

TZ = ZoneInfo("Asia/Shanghai")
CFG = SelfTestConfig(buttons=("sos-bed", "pendant"), weekday=2, hour=10, window_s=1800,
                     remind_after_s=600)
WED_10 = datetime(2026, 11, 25, 10, 0, tzinfo=TZ).timestamp()  # a Wednesday


def tick(s: SelfTestState, t: float) -> selftest.Step:
    return selftest.tick(s, CFG, t, TZ)


def test_it_starts_on_its_day_and_hour_once_a_week():
    s = SelfTestState()
    assert tick(s, WED_10 - 60) == selftest.Step()  # 09:59
    assert tick(s, WED_10 - 86400) == selftest.Step()  # Tuesday 10:00
    step = tick(s, WED_10 + 5)
    assert step.started and step.say == ASK and s.run is not None
    assert s.last_week == "2026-W48"
    s.run = None  # finished somehow; the same week never starts again
    assert tick(s, WED_10 + 3600) == selftest.Step()
    assert tick(s, WED_10 + 7 * 86400).started  # next Wednesday


def test_a_gateway_off_at_the_hour_starts_late_but_not_at_night():
    s = SelfTestState()
    assert tick(s, WED_10 + 2.5 * 3600).started  # 12:30
    s2 = SelfTestState()
    assert tick(s2, WED_10 + 3 * 3600) == selftest.Step()  # 13:00: too late today


def test_first_press_is_the_test_a_second_press_is_a_real_call():
    s = SelfTestState()
    tick(s, WED_10)
    is_test, step = selftest.press(s, "sos-bed", WED_10 + 30)
    assert is_test and step == selftest.Step()
    assert selftest.press(s, "sos-bed", WED_10 + 40)[0] is False  # help is needed
    assert selftest.press(s, "kitchen-smoke", WED_10 + 50)[0] is False  # not a tested button


def test_all_buttons_pressed_finishes_at_once_with_thanks():
    s = SelfTestState()
    tick(s, WED_10)
    selftest.press(s, "sos-bed", WED_10 + 30)
    is_test, step = selftest.press(s, "pendant", WED_10 + 45)
    assert is_test and step.say == THANKS
    assert step.result is not None and step.result.failed == []
    assert step.result.pressed == {"sos-bed": WED_10 + 30, "pendant": WED_10 + 45}
    assert s.run is None
    assert selftest.press(s, "pendant", WED_10 + 50)[0] is False  # over: presses are real


def test_a_reminder_then_a_failed_button_at_the_end_of_the_window():
    s = SelfTestState()
    tick(s, WED_10)
    selftest.press(s, "sos-bed", WED_10 + 30)
    assert tick(s, WED_10 + 599) == selftest.Step()
    assert tick(s, WED_10 + 600).say == REMIND
    assert tick(s, WED_10 + 900) == selftest.Step()  # once
    step = tick(s, WED_10 + 1800)
    assert step.say == FAILED and step.result is not None
    assert step.result.failed == ["pendant"] and not step.result.manual


def test_a_manual_test_runs_any_day_and_no_buttons_means_no_test():
    s = SelfTestState()
    step = selftest.start(s, CFG, WED_10 - 2 * 86400, TZ, manual=True)
    assert step.started and s.run is not None and s.run.manual
    assert not selftest.start(s, CFG, WED_10, TZ).started  # one at a time
    empty = SelfTestState()
    assert not selftest.start(empty, SelfTestConfig(buttons=()), WED_10, TZ).started
    assert selftest.tick(empty, SelfTestConfig(buttons=()), WED_10, TZ) == selftest.Step()
