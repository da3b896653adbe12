"""The alert manager: turns Findings into Alerts and runs their life in the home.

It decides, from what came in and from `now` alone: whether a Finding opens a new alert or is a
repeat of an open one (an SOS button pressed five times is one call for help), whether the
alert waits in the resident's cancel window first (falls do; smoke, gas and SOS never), and
when that window has run out. The gateway persists what it returns and sends what is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from alerts.alert import Alert, AlertState
from alerts.ulid import ulid
from detectors.finding import Finding
from devices.observation import Observation

# Events that wait in the home for the resident to cancel. Only falls: a fall detector is
# wrong often enough that the person should get the first word; a smoke alarm or a press
# of the SOS button is never second-guessed.
CANCELLABLE_EVENTS = frozenset({"fall"})


class Change(StrEnum):
    """What happened to an alert, so the gateway knows what to store and send."""

    PENDING = "pending"  # new, waiting in the cancel window: store it
    RAISED = "raised"  # store it with its outbox rows in one transaction, then send
    CANCELLED = "cancelled"  # store the cancellation; nothing is sent
    REPEATED = "repeated"  # a repeat folded into an open alert: store the count


@dataclass(frozen=True, slots=True)
class ManagerConfig:
    """Alert policy in the home."""

    fall_cancel_window_s: float = 30.0
    dedupe_window_s: float = 120.0


class Manager:
    """Keeps the alerts still in the home's hands: pending ones and recent ones for dedupe."""

    def __init__(self, cfg: ManagerConfig | None = None,
                 new_id: Callable[[float], str] = ulid) -> None:
        self.cfg = cfg or ManagerConfig()
        self._new_id = new_id
        self.pending: dict[str, Alert] = {}
        # (home, device, event, test) -> (alert, time of the last finding folded into it)
        self._recent: dict[tuple[str, str | None, str, bool], tuple[Alert, float]] = {}

    def restore(self, alerts: Iterable[Alert], now: float) -> list[tuple[Alert, Change]]:
        """Take back alerts that were open when the gateway stopped; raise overdue ones."""
        for a in alerts:
            if a.state == AlertState.PENDING_LOCAL:
                self.pending[a.id] = a
            if a.is_open:
                key = (a.finding.home, a.finding.device, a.finding.event, a.finding.test)
                self._recent[key] = (a, a.finding.at)
        return self.tick(now)

    def on_finding(self, f: Finding, now: float) -> list[tuple[Alert, Change]]:
        """A detector concluded something: open an alert or fold it into an open one."""
        key = (f.home, f.device, f.event, f.test)
        seen = self._recent.get(key)
        if seen is not None:
            alert, last = seen
            if alert.is_open and now - last <= self.cfg.dedupe_window_s:
                alert.repeats += 1
                self._recent[key] = (alert, now)
                return [(alert, Change.REPEATED)]
        alert = Alert(id=self._new_id(now), finding=f, state=AlertState.PENDING_LOCAL)
        alert.history.append((AlertState.PENDING_LOCAL.value, now, ""))
        self._recent[key] = (alert, now)
        if f.event in CANCELLABLE_EVENTS and self.cfg.fall_cancel_window_s > 0:
            alert.cancel_deadline = now + self.cfg.fall_cancel_window_s
            self.pending[alert.id] = alert
            return [(alert, Change.PENDING)]
        alert.move(AlertState.RAISED, now, "no cancel window for this event")
        return [(alert, Change.RAISED)]

    def on_observation(self, obs: Observation, now: float) -> list[tuple[Alert, Change]]:
        """Observations the manager itself acts on: the resident's cancel."""
        if obs.kind != "cancel":
            return []
        changes = []
        for alert in list(self.pending.values()):
            if alert.finding.home == obs.home:
                alert.move(AlertState.CANCELLED, now, f"cancelled by the resident ({obs.device})")
                del self.pending[alert.id]
                changes.append((alert, Change.CANCELLED))
        return changes

    def tick(self, now: float) -> list[tuple[Alert, Change]]:
        """Raise pending alerts whose cancel window has run out; forget old dedupe entries."""
        changes = []
        for alert in sorted(self.pending.values(), key=lambda a: a.cancel_deadline or 0):
            if alert.cancel_deadline is not None and now >= alert.cancel_deadline:
                alert.move(AlertState.RAISED, now, "cancel window ran out")
                del self.pending[alert.id]
                changes.append((alert, Change.RAISED))
        horizon = now - self.cfg.dedupe_window_s
        for key in [k for k, (a, last) in self._recent.items()
                    if last < horizon and a.id not in self.pending]:
            del self._recent[key]
        return changes

    def known(self, alert_id: str) -> Alert | None:
        """The in-memory alert with this id, if the manager still holds it."""
        if alert_id in self.pending:
            return self.pending[alert_id]
        for alert, _ in self._recent.values():
            if alert.id == alert_id:
                return alert
        return None

    def next_deadline(self) -> float | None:
        """The earliest time `tick` has something to do, or None."""
        deadlines = [a.cancel_deadline for a in self.pending.values()
                     if a.cancel_deadline is not None]
        return min(deadlines) if deadlines else None
