"""The home's recent timeline for an alert body (issue 6): what the sensors said in the hours
before, as an operator reads it, kept in memory and seeded from the store at start.

An alert's `timeline` (alerts/wire.py) holds the last `wire.TIMELINE_WINDOW_S` of
observations, at most `wire.TIMELINE_MAX`, newest kept. Kept in memory rather than read from
the store on each alert: the store's observations are indexed by device, and a three-hour
scan of a month of them is time a severity-1 alert does not have. At start the runtime seeds
it from the same stored history it replays the home's state from, so a restart loses none.

What goes in: state changes and events (motion, doors, presence, in bed, presses, calls,
check-ins, away mode, alarms, availability). What stays out: raw signal blocks, snapshot
references (personal, sent only where consented), battery and radio reports (technical, and
periodic), a state repeated unchanged (Zigbee2MQTT republishes the whole state), and vital
signs more often than once per `VITALS_EVERY_S` per device.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from alerts import wire
from devices.observation import Observation

SKIPPED_KINDS = frozenset({"accel", "bcg", "snapshot", "intercom_request", "battery",
                           "battery_low", "link_quality", "test"})
EVENT_KINDS = frozenset({"sos", "cancel", "checkin", "intercom", "away_mode"})  # never folded
SAMPLED_KINDS = frozenset({"heart_rate", "respiration_rate", "temperature"})
VITALS_EVERY_S = 300.0
KEPT_S = wire.TIMELINE_WINDOW_S + 3600.0  # a little beyond, for an alert raised late
MAX_KEPT = 20 * wire.TIMELINE_MAX  # memory bound in a flood; the newest are what count


class Timeline:
    """The home's recent readable observations, oldest first."""

    def __init__(self) -> None:
        # [at, room, device, kind, value, its wire form once made]: an alert's body is on
        # the alarm path, so the newest are read from the end and each formatted only once
        self._entries: deque[list[Any]] = deque(maxlen=MAX_KEPT)
        self._last: dict[tuple[str, str], tuple[Any, float]] = {}  # (device, kind) -> (v, at)

    def __len__(self) -> int:
        return len(self._entries)

    def seed(self, history: Iterable[Observation], now: float) -> None:
        """Take the stored observations of the last hours (at start)."""
        for obs in history:
            if obs.at >= now - KEPT_S:
                self.add(obs)

    def add(self, obs: Observation) -> None:
        """One observation, if an operator would want to read it."""
        kind = obs.kind
        if kind in SKIPPED_KINDS or isinstance(obs.value, dict):
            return
        key = (obs.device, kind)
        last = self._last.get(key)
        if last is not None and kind not in EVENT_KINDS:
            value, at = last
            if kind in SAMPLED_KINDS:
                if obs.at - at < VITALS_EVERY_S:
                    return
            elif value == obs.value and type(value) is type(obs.value):
                return
        self._last[key] = (obs.value, obs.at)
        self._entries.append([obs.at, obs.room, obs.device, kind, obs.value, None])
        while self._entries and self._entries[0][0] < obs.at - KEPT_S:
            self._entries.popleft()

    def shift(self, dt: float) -> None:
        """The wall clock stepped by `dt` (NTP on a board without a real-time clock): what
        was stamped on the old clock moves with it, as the stored observations do."""
        for e in self._entries:
            e[0] += dt
            e[5] = None
        self._last = {k: (v, at + dt) for k, (v, at) in self._last.items()}

    def entries(self, start: float, until: float, tz: ZoneInfo) -> list[dict[str, Any]]:
        """The wire form of what happened in [start, until], the newest `TIMELINE_MAX`."""
        picked: list[list[Any]] = []
        for e in reversed(self._entries):  # newest first: the usual alert stops at 300
            if start <= e[0] <= until:
                picked.append(e)
                if len(picked) == wire.TIMELINE_MAX:
                    break
        out = []
        for e in sorted(picked, key=lambda e: e[0]):
            if e[5] is None or e[5][1] is not tz:
                e[5] = (wire.timeline_entry(e[0], e[1], e[2], e[3], e[4], tz), tz)
            out.append(dict(e[5][0]))
        return out

    def for_alert(self, occurred_at: float, until: float, tz: ZoneInfo) -> list[dict[str, Any]]:
        """An alert's timeline: the window before it happened, up to when it is sent."""
        return self.entries(occurred_at - wire.TIMELINE_WINDOW_S, until, tz)
