"""Where the live gateway reads the time: the steady wall clock, or a scaled one for simulated life.

Domain code (devices/, detectors/, alerts/) never reads a clock; the runtime reads `now()`
here and passes it in. On a Pi that is `SteadyClock`: wall time, but run on the monotonic
clock, so it moves only when the runtime says so. A Pi has no real-time clock, and its wall
clock steps when NTP synchronises; the runtime calls `check()` every tick, and on a step it
re-anchors (gateway/timesync.py shifts every open timer by the same step, so elapsed times
stay true). It never starts before `floor` (see timesync.floor). `WallClock` is the plain
wall clock, for tools that need no more. `ScaledClock` runs the same live gateway
(MQTT, store, outbox, hotline) through hours of simulated life in seconds: its time starts at
`start` and runs `speed` times faster than the monotonic clock, so a long lie that takes
hours to become an alarm takes seconds (`anxin run --clock-speed`, the simulated-life test).

A wait is computed in the clock's seconds and slept in real ones: `real(virtual_s)`.
Some stamps must stay on real time whatever the clock (a signed message's timestamp is
checked by the receiver against its own clock; retry backoff is about a real network):
`from_wall(t)` says what this clock read when the wall clock read `t`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["STEP_S", "Clock", "ScaledClock", "SteadyClock", "WallClock"]

# The wall clock moving this far against the monotonic one is a step (NTP, a technician
# setting the date). NTP slews smaller errors, and slewing moves both clocks alike.
STEP_S = 1.0


class Clock(Protocol):
    """What the runtime needs of a clock."""

    def now(self) -> float:
        """The time now, unix seconds."""
        ...

    def real(self, virtual_s: float) -> float:
        """How many real seconds pass while this clock moves on `virtual_s` seconds."""
        ...

    def from_wall(self, t: float) -> float:
        """This clock's time when the wall clock read `t`."""
        ...


class WallClock:
    """The real time (`time.time()`): what a gateway in a home runs on."""

    def now(self) -> float:
        """The wall clock."""
        return time.time()

    def real(self, virtual_s: float) -> float:
        """A second is a second."""
        return virtual_s

    def from_wall(self, t: float) -> float:
        """The same time."""
        return t

    def __repr__(self) -> str:
        return "WallClock()"


class SteadyClock:
    """Wall time on the monotonic clock: `now()` moves only with `ticks`, and follows a step
    of the wall clock only when `check()` is called (and the stepped time is not before
    `floor`). `wall` and `ticks` are injectable, so a test can step the wall clock."""

    __slots__ = ("_base", "_ticks", "_wall", "floor", "synced")

    def __init__(self, *, floor: float = 0.0, wall: Callable[[], float] = time.time,
                 ticks: Callable[[], float] = time.monotonic,
                 synced: Callable[[], bool | None] | None = None) -> None:
        self._wall = wall
        self._ticks = ticks
        self.floor = floor
        # Whether the OS says the wall clock is synchronised (None: gateway/timesync.py asks).
        self.synced = synced
        # A clock behind the floor (a Pi booted at 1970 or at a stale saved time) is known
        # to be wrong: start at the floor, the earliest the time can be.
        self._base = max(wall(), floor) - ticks()

    def now(self) -> float:
        """The gateway's time: the anchored wall time, moved on by the monotonic clock."""
        return self._ticks() + self._base

    def real(self, virtual_s: float) -> float:
        """A second is a second."""
        return virtual_s

    def from_wall(self, t: float) -> float:
        """The wall clock's `t` on this clock (they differ only between a step and check())."""
        return t + self.now() - self._wall()

    def wall(self) -> float:
        """The wall clock itself (what signatures and backoff run on)."""
        return self._wall()

    def wall_offset(self) -> float:
        """How far the wall clock is ahead of this clock now."""
        return self._wall() - self.now()

    def raise_floor(self, floor: float) -> None:
        """The time cannot be earlier than `floor` (known once the store is open): if this
        clock reads earlier, it moves on to it. Call before anything has read the time."""
        self.floor = max(self.floor, floor)
        self._base += max(0.0, self.floor - self.now())

    def check(self, *, synced: bool = False) -> float:
        """Follow a step of the wall clock: the step in seconds (+ forward), or 0.0 if there
        was none, or if the wall clock now reads earlier than the floor (still unset) and
        the OS does not say it is `synced` (then it is right, and the floor was not)."""
        wall, ticks = self._wall(), self._ticks()
        step = wall - (ticks + self._base)
        if abs(step) <= STEP_S or (wall < self.floor and not synced):
            return 0.0
        self.floor = min(self.floor, wall)
        self._base = wall - ticks
        return step

    def __repr__(self) -> str:
        return f"SteadyClock(floor={self.floor!r})"


class ScaledClock:
    """Simulated time: `start` at creation, then `speed` seconds per real second.

    Driven by the monotonic clock (`ticks`), so a wall-clock step (NTP, a Pi without RTC
    setting its time) does not jump simulated life. For simulation only.
    """

    __slots__ = ("_m0", "_ticks", "speed", "start")

    def __init__(self, start: float, speed: float, *,
                 ticks: Callable[[], float] = time.monotonic) -> None:
        if not math.isfinite(start):
            raise ValueError(f"clock start must be a finite unix time, got {start!r}")
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"clock speed must be a number > 0, got {speed!r}")
        self.start = float(start)
        self.speed = float(speed)
        self._ticks = ticks
        self._m0 = ticks()

    def now(self) -> float:
        """`start` plus the real time since creation, times `speed`."""
        return self.start + (self._ticks() - self._m0) * self.speed

    def real(self, virtual_s: float) -> float:
        """`virtual_s` / `speed`: the real seconds to sleep for a simulated wait."""
        return virtual_s / self.speed

    def from_wall(self, t: float) -> float:
        """Now, less the real time since the wall clock read `t`, times `speed`."""
        return self.now() - (time.time() - t) * self.speed

    def __repr__(self) -> str:
        return f"ScaledClock(start={self.start!r}, speed={self.speed!r})"
