"""Repeated failures logged as episodes: once when they start, once when they end, with a count.

A device sending garbage every second, or a store that cannot write, must not write a log line
per message: on an SD card that is the log filling the disk, and for a technician it buries the
one line that matters. An episode opens on the first failure of its key (logged with the
reason), counts the repeats silently, and closes, logged with the count and the last reason,
when the key succeeds again or has been quiet for `quiet_s`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass


@dataclass(slots=True)
class _Open:
    first_at: float
    last_at: float
    count: int
    last_reason: str


class Episodes:
    """Open episodes by key (a device id, a topic, a kind of trouble)."""

    def __init__(self, logger: logging.Logger, what: str, *, quiet_s: float = 600.0,
                 level: int = logging.WARNING) -> None:
        self.logger = logger
        self.what = what  # e.g. "bad payloads": the noun the log lines count
        self.quiet_s = quiet_s
        self.level = level
        self.open: dict[str, _Open] = {}

    def failed(self, key: str, reason: str, now: float) -> bool:
        """One failure of `key`; True when it opened an episode (and was logged)."""
        ep = self.open.get(key)
        if ep is not None:
            ep.last_at, ep.count, ep.last_reason = now, ep.count + 1, reason
            return False
        self.open[key] = _Open(now, now, 1, reason)
        self.logger.log(self.level, "%s: %s: %s (repeats are counted, not logged, until it "
                        "stops)", key, self.what, reason)
        return True

    def ok(self, key: str, now: float) -> None:
        """`key` worked again: close its episode, if one is open."""
        if key in self.open:
            self._close(key, now, "works again")

    def expire(self, now: float) -> None:
        """Close the episodes quiet for `quiet_s`."""
        for key in [k for k, ep in self.open.items() if now - ep.last_at >= self.quiet_s]:
            self._close(key, now, "quiet again")

    def _close(self, key: str, now: float, how: str) -> None:
        ep = self.open.pop(key)
        self.logger.log(self.level, "%s: %s over (%s): %d in %.0f s, the last: %s", key,
                        self.what, how, ep.count, now - ep.first_at, ep.last_reason)
