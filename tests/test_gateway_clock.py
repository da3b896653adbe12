"""The gateway's clock: the wall clock in a home, a scaled one for simulated life."""

from __future__ import annotations

import math
import time

import pytest

from gateway.clock import ScaledClock, WallClock

START = 1_772_380_800.0  # 2026-03-02 00:00 Asia/Shanghai


class Ticks:
    """A monotonic clock a test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_wall_clock_is_real_time():
    clock = WallClock()
    before = time.time()
    assert before <= clock.now() <= time.time()
    assert clock.real(42.5) == 42.5
    assert clock.from_wall(before) == before


def test_a_scaled_clock_starts_at_its_start_and_runs_speed_times_faster():
    ticks = Ticks()
    clock = ScaledClock(START, 3600.0, ticks=ticks)
    assert clock.now() == START
    ticks.t += 2.5  # two and a half real seconds
    assert clock.now() == START + 2.5 * 3600
    assert clock.real(3600.0) == 1.0  # an hour's wait is slept in a second
    assert clock.real(60.0) == pytest.approx(1 / 60)


def test_a_scaled_clock_maps_wall_clock_stamps_onto_its_own_time():
    ticks = Ticks()
    clock = ScaledClock(START, 100.0, ticks=ticks)
    ticks.t += 10.0
    # two real seconds ago was 200 simulated seconds ago
    assert clock.from_wall(time.time() - 2.0) == pytest.approx(clock.now() - 200.0, abs=1.0)


def test_a_scaled_clock_runs_on_the_monotonic_clock_by_default():
    clock = ScaledClock(START, 1000.0)
    a = clock.now()
    time.sleep(0.01)
    assert clock.now() - a >= 10.0


@pytest.mark.parametrize("speed", [0.0, -1.0, math.nan, math.inf])
def test_a_speed_that_is_not_a_positive_number_is_refused(speed):
    with pytest.raises(ValueError, match="clock speed must be a number > 0"):
        ScaledClock(START, speed)


def test_a_start_that_is_not_a_time_is_refused():
    with pytest.raises(ValueError, match="clock start must be a finite unix time"):
        ScaledClock(math.nan, 10.0)


def test_a_clock_says_what_it_is():
    assert repr(WallClock()) == "WallClock()"
    assert repr(ScaledClock(START, 60.0)) == f"ScaledClock(start={START!r}, speed=60.0)"
