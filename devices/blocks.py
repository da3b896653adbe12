"""Raw sample blocks put back in time order: one reassembler for every streaming device.

A wearable's IMU blocks (devices/imu.py) and a bed sensor's signal blocks (devices/bcg.py)
arrive over MQTT late, twice or out of order; both go through `BlockAssembler`, which
releases them as time-ordered `Run`s that say where the stream was broken. Pure: the caller
passes the gateway's `now`.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, Protocol, Self, TypeVar


class Block(Protocol):
    """What the assembler needs of a block: its rate, first-sample time, length, and a tail."""

    @property
    def rate_hz(self) -> float: ...

    @property
    def t0(self) -> float: ...

    @property
    def n(self) -> int: ...

    @property
    def end(self) -> float: ...

    def tail(self, start: int) -> Self: ...


B = TypeVar("B", bound=Block)


@dataclass(frozen=True, slots=True)
class Run(Generic[B]):
    """Samples released in time order. `discontinuity`: they do not continue what was
    released before (the stream's start, a gap, a rate change): filters must restart."""

    block: B
    discontinuity: bool
    gap_s: float | None = None  # the hole before it (None at the start or a rate change)


@dataclass(slots=True)
class AssemblerStats:
    """What the assembler did with a device's blocks (counted, never silent)."""

    received: int = 0
    released: int = 0
    duplicates: int = 0  # the same block again: dropped
    late: int = 0  # older than what was already released: dropped
    trimmed_samples: int = 0  # samples of partly overlapping blocks already released
    gaps: int = 0  # holes that never filled: released as discontinuities
    gap_s: float = 0.0  # their total length
    overflow: int = 0  # holes given up early because too many blocks were waiting
    restarts: int = 0  # the device's clock went back by more than `restart_s`: a new stream


@dataclass(slots=True)
class BlockAssembler(Generic[B]):
    """Puts one device's blocks back in time order (pure; `now` is the gateway's clock).

    - A block that continues the released stream (its `t0` within half a sample of where the
      last one ended) is released at once, and with it any waiting blocks it joins up with.
    - A block after a hole waits for the hole to fill, at most `reorder_s`: it is released
      (marked a discontinuity, the hole counted in `stats.gaps`) once blocks reaching
      `reorder_s` past its start have arrived (a missing block would now be more than
      `reorder_s` late), or `reorder_s` of the gateway's time has passed since it arrived
      (`push` or `poll` with a later `now`), or more than `max_waiting` blocks wait.
      The stream's first block waits the same way, for an earlier one still on its way.
    - A block whose samples were all released already is dropped: counted as a duplicate
      when it is one of the last `recent` blocks released (same start and length), else as
      late. One that overlaps the released stream in part loses the overlapping samples.
      A block equal to one already waiting is a duplicate.
    - A change of rate is a discontinuity (filters are rate-specific).
    - A block more than `restart_s` behind the released stream is the device's clock gone
      back (it restarted without a clock), not a late block: a new stream starts there,
      rather than the device being ignored until its clock catches up.

    Times are the device's (`t0`), so reordering does not depend on network delays; devices
    must stamp `t0` to better than half a sample or their stream is cut into pieces
    (discontinuities, never wrong data).
    """

    reorder_s: float = 2.0
    max_waiting: int = 64
    recent: int = 32
    restart_s: float = 60.0
    stats: AssemblerStats = field(default_factory=AssemblerStats)
    # (t0, arrival order, block, arrived at, key of the block as it arrived), sorted by t0
    _waiting: list[tuple[float, int, B, float, tuple[int, int]]] = field(
        default_factory=list)
    _counter: int = 0  # tie-breaker for equal t0 in the sorted list
    _end: float | None = None  # device time just past the last released sample
    _rate: float | None = None
    _newest: float = -math.inf  # the latest `end` of any block seen
    _released: deque[tuple[float, int]] = field(default_factory=deque)

    def push(self, block: B, now: float) -> list[Run[B]]:
        """Take a block that arrived at `now`; return the runs it lets out, in time order."""
        self.stats.received += 1
        tol = 0.5 / block.rate_hz
        if self._end is not None and block.end < self._end - self.restart_s:
            self._restart()
        if self._end is not None and block.end <= self._end + tol:
            if self._is_recent(block):
                self.stats.duplicates += 1
            else:
                self.stats.late += 1
            return self.poll(now)
        i = bisect.bisect_left(self._waiting, block.t0 - tol, key=lambda w: w[0])
        for t0, _, other, _, _ in self._waiting[i:]:
            if t0 > block.t0 + tol:
                break
            if other.n == block.n and other.rate_hz == block.rate_hz:
                self.stats.duplicates += 1
                return self.poll(now)
        self._counter += 1
        bisect.insort(self._waiting, (block.t0, self._counter, block, now, _key(block)),
                      key=lambda w: w[0])
        self._newest = max(self._newest, block.end)
        return self.poll(now)

    def poll(self, now: float) -> list[Run[B]]:
        """Runs due by `now` without a new block (call it from the detector's tick)."""
        out: list[Run[B]] = []
        while self._waiting:
            t0, _, block, arrived, _ = self._waiting[0]
            tol = 0.5 / block.rate_hz
            if self._end is not None:
                if block.end <= self._end + tol:  # released meanwhile by an overlapping block
                    self._waiting.pop(0)
                    self.stats.late += 1
                    continue
                if t0 < self._end - tol:
                    skip = round((self._end - t0) * block.rate_hz)
                    self.stats.trimmed_samples += skip
                    block = block.tail(skip)
                    t0 = block.t0
                if abs(t0 - self._end) <= tol and block.rate_hz == self._rate:
                    out.append(self._release(Run(block, False)))
                    continue
                if abs(t0 - self._end) <= tol:  # contiguous, but the rate changed
                    out.append(self._release(Run(block, True)))
                    continue
            # A block missing before this one would now be more than `reorder_s` late.
            due = self._newest - t0 >= self.reorder_s or now - arrived >= self.reorder_s
            crowded = len(self._waiting) > self.max_waiting
            if not (due or crowded):
                break
            if not due:
                self.stats.overflow += 1
            gap = None
            if self._end is not None:
                gap = t0 - self._end
                self.stats.gaps += 1
                self.stats.gap_s += gap
            out.append(self._release(Run(block, True, gap)))
        return out

    def flush(self) -> list[Run[B]]:
        """Release everything still waiting (the end of a recording)."""
        return self.poll(math.inf)

    @property
    def waiting(self) -> int:
        """Blocks held back, waiting for a hole to fill."""
        return len(self._waiting)

    def _release(self, run: Run[B]) -> Run[B]:
        key = self._waiting.pop(0)[4]
        b = run.block
        self._end, self._rate = b.end, b.rate_hz
        self.stats.released += 1
        self._released.append(key)
        if len(self._released) > self.recent:
            self._released.popleft()
        return run

    def _restart(self) -> None:
        self.stats.restarts += 1
        self._waiting.clear()
        self._released.clear()
        self._end = self._rate = None
        self._newest = -math.inf

    def _is_recent(self, block: B) -> bool:
        return _key(block) in self._released


def _key(block: Block) -> tuple[int, int]:
    """What makes two blocks the same: start (to the sample) and length."""
    return (round(block.t0 * block.rate_hz), block.n)
