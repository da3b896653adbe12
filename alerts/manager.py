"""The alert manager: turns Findings into Alerts and runs their life in the home.

It decides, from what came in and from `now` alone: whether a Finding opens a new alert or is a
repeat of an open one (an SOS button pressed five times is one call for help), whether the
alert waits in the resident's cancel window first (falls do; smoke, gas and SOS never), when
that window has run out, and — until an operator accepts it — when the next escalation tier
is told and when everyone told so far is reminded (alerts/escalation.py). The gateway
persists what it returns and sends what is raised, escalated or reminded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from alerts.alert import OUTCOMES, Alert, AlertState
from alerts.escalation import Policy
from alerts.ulid import ulid
from detectors.finding import Finding
from devices.observation import Observation

# Events that wait in the home for the resident to cancel. Only falls: a fall detector is
# wrong often enough that the person should get the first word; a smoke alarm or a press
# of the SOS button is never second-guessed.
CANCELLABLE_EVENTS = frozenset({"fall"})
FALL_EVENTS = frozenset({"fall"})  # the same person's fall, whichever device saw it


class Change(StrEnum):
    """What happened to an alert, so the gateway knows what to store and send."""

    PENDING = "pending"  # new, waiting in the cancel window: store it
    RAISED = "raised"  # store it with its outbox rows in one transaction, then send
    CANCELLED = "cancelled"  # store the cancellation; nothing is sent
    REPEATED = "repeated"  # a repeat folded into an open alert: store the count
    ESCALATED = "escalated"  # unaccepted too long: tell the next tier (alert.tier) as well
    REMINDED = "reminded"  # still unaccepted: remind everyone told so far
    ACCEPTED = "accepted"  # an operator took charge: escalation stops
    RESOLVED = "resolved"  # closed, with an outcome


@dataclass(frozen=True, slots=True)
class ManagerConfig:
    """Alert policy in the home."""

    fall_cancel_window_s: float = 30.0
    dedupe_window_s: float = 120.0
    policy: Policy = field(default_factory=Policy)
    # One resident at home: every fall within the dedupe window is theirs, whichever device
    # saw it (a radar in the bathroom and the pendant they wear): one alert, not two.
    single_occupant: bool = False


def _cause(f: Finding, single_occupant: bool = False) -> tuple[str, str, str | None, bool]:
    """What makes two findings the same emergency: home, event, and room (else device) —
    or, for a fall where one person lives, the home (a fall radar's room and a wearable's
    configured room need not agree: the wearable goes where its wearer goes)."""
    if single_occupant and f.event in FALL_EVENTS:
        return (f.home, "fall", "resident", f.test)
    where = f"room:{f.room}" if f.room else f"device:{f.device}"
    return (f.home, f.event, where, f.test)


class FeedbackError(ValueError):
    """Feedback from a hotline that cannot apply to the alert (it says why)."""


class Manager:
    """Keeps the alerts still in the home's hands: pending ones and recent ones for dedupe."""

    def __init__(self, cfg: ManagerConfig | None = None,
                 new_id: Callable[[float], str] = ulid) -> None:
        self.cfg = cfg or ManagerConfig()
        self._new_id = new_id
        self.pending: dict[str, Alert] = {}
        # raised, not yet accepted, and with an escalation or reminder still to come
        self.watch: dict[str, Alert] = {}
        # (home, device, event, test) -> (alert, time of the last finding folded into it)
        # cause (see _cause) -> (alert, time of the last finding folded into it)
        self._recent: dict[tuple[str, str, str | None, bool], tuple[Alert, float]] = {}

    def restore(self, alerts: Iterable[Alert], now: float) -> list[tuple[Alert, Change]]:
        """Take back alerts that were open when the gateway stopped; raise overdue ones."""
        for a in alerts:
            if a.state == AlertState.PENDING_LOCAL:
                self.pending[a.id] = a
            if a.tier_at is None and a.raised_at is not None:  # stored before escalation
                a.tier_at = a.notified_at = a.raised_at
            self._watch(a)
            if a.is_open:
                self._recent[_cause(a.finding, self.cfg.single_occupant)] = (a, a.finding.at)
        return self.tick(now)

    def on_finding(self, f: Finding, now: float) -> list[tuple[Alert, Change]]:
        """A detector concluded something: open an alert or fold it into an open one.

        One cause, one alert: the same event in the same room (or from the same device,
        where the room is unknown) within `dedupe_window_s` of the last is folded into the
        open alert — its count goes up and the newest evidence and every device that
        reported it are recorded — so two smoke detectors in one kitchen, or an SOS button
        pressed five times, page the centre once.
        """
        key = _cause(f, self.cfg.single_occupant)
        seen = self._recent.get(key)
        if seen is not None:
            alert, last = seen
            if alert.is_open and now - last <= self.cfg.dedupe_window_s:
                alert.repeats += 1
                evidence = dict(alert.finding.evidence)
                devices = list(evidence.get("devices") or [alert.finding.device])
                if f.device not in devices:
                    devices.append(f.device)
                evidence.update(devices=devices, repeats=alert.repeats, latest=f.evidence,
                                latest_at=f.at)
                alert.finding = replace(alert.finding, evidence=evidence)
                self._recent[key] = (alert, now)
                return [(alert, Change.REPEATED)]
        alert = Alert(id=self._new_id(now), finding=f, state=AlertState.PENDING_LOCAL)
        alert.history.append((AlertState.PENDING_LOCAL.value, now, ""))
        self._recent[key] = (alert, now)
        if f.event in CANCELLABLE_EVENTS and self.cfg.fall_cancel_window_s > 0:
            alert.cancel_deadline = now + self.cfg.fall_cancel_window_s
            self.pending[alert.id] = alert
            return [(alert, Change.PENDING)]
        self._raise(alert, now, "no cancel window for this event")
        return [(alert, Change.RAISED)]

    def _raise(self, alert: Alert, now: float, note: str) -> None:
        alert.move(AlertState.RAISED, now, note)
        alert.tier, alert.tier_at, alert.notified_at = 0, now, now
        self._watch(alert)

    def _watch(self, alert: Alert) -> None:
        """Keep `alert` under escalation watch if anything is still to come for it."""
        p, sev = self.cfg.policy, alert.finding.severity
        if (alert.state in (AlertState.RAISED, AlertState.DELIVERED) and not alert.finding.test
                and alert.tier_at is not None
                and (p.next_tier_at(alert.tier, alert.tier_at, sev) is not None
                     or p.renotify_every(sev) > 0)):
            self.watch[alert.id] = alert
        else:
            self.watch.pop(alert.id, None)

    def on_feedback(self, alert: Alert, action: str, now: float, *, operator: str = "",
                    outcome: str | None = None, note: str = "") -> list[tuple[Alert, Change]]:
        """An operator accepted or resolved `alert` at the hotline.

        Repeats (a second "accepted" from a backup hotline) change nothing; an action that
        cannot apply raises FeedbackError saying why.
        """
        who = operator or "hotline"
        if action == "accepted":
            if alert.state in (AlertState.ACCEPTED, AlertState.RESOLVED):
                return []
            if alert.state not in (AlertState.RAISED, AlertState.DELIVERED):
                raise FeedbackError(f"alert {alert.id} is {alert.state}, it cannot be accepted")
            alert.move(AlertState.ACCEPTED, now, f"accepted by {who}" + (f": {note}" if note
                                                                         else ""))
            alert.taken_by = who
            self.watch.pop(alert.id, None)
            return [(alert, Change.ACCEPTED)]
        if action == "resolved":
            if alert.state is AlertState.RESOLVED:
                return []
            if outcome not in OUTCOMES:
                raise FeedbackError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
            if alert.state not in (AlertState.RAISED, AlertState.DELIVERED,
                                   AlertState.ACCEPTED):
                raise FeedbackError(f"alert {alert.id} is {alert.state}, it cannot be resolved")
            alert.move(AlertState.RESOLVED, now, f"resolved by {who}: {outcome}"
                       + (f": {note}" if note else ""))
            alert.outcome = outcome
            alert.taken_by = alert.taken_by or who
            self.watch.pop(alert.id, None)
            return [(alert, Change.RESOLVED)]
        raise FeedbackError(f"unknown action {action!r} (accepted or resolved)")

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
                del self.pending[alert.id]
                self._raise(alert, now, "cancel window ran out")
                changes.append((alert, Change.RAISED))
        changes += self._escalate(now)
        horizon = now - self.cfg.dedupe_window_s
        for key in [k for k, (a, last) in self._recent.items()
                    if last < horizon and a.id not in self.pending]:
            del self._recent[key]
        return changes

    def _escalate(self, now: float) -> list[tuple[Alert, Change]]:
        changes = []
        policy = self.cfg.policy
        for alert in list(self.watch.values()):
            sev = alert.finding.severity
            assert alert.tier_at is not None
            due = policy.next_tier_at(alert.tier, alert.tier_at, sev)
            if due is not None and now >= due:
                alert.tier += 1
                alert.tier_at = alert.notified_at = now
                tier = policy.tiers[alert.tier]
                alert.history.append((alert.state.value, now, f"escalated to tier {alert.tier} "
                                      f"({tier.name}): not accepted in time"))
                changes.append((alert, Change.ESCALATED))
            else:
                every = policy.renotify_every(sev)
                if every > 0 and alert.notified_at is not None \
                        and now >= alert.notified_at + every:
                    alert.reminders += 1
                    alert.notified_at = now
                    changes.append((alert, Change.REMINDED))
            self._watch(alert)
        return changes

    def known(self, alert_id: str) -> Alert | None:
        """The in-memory alert with this id, if the manager still holds it."""
        if alert_id in self.pending:
            return self.pending[alert_id]
        if alert_id in self.watch:
            return self.watch[alert_id]
        for alert, _ in self._recent.values():
            if alert.id == alert_id:
                return alert
        return None

    def next_deadline(self) -> float | None:
        """The earliest time `tick` has something to do, or None."""
        deadlines = [a.cancel_deadline for a in self.pending.values()
                     if a.cancel_deadline is not None]
        policy = self.cfg.policy
        for a in self.watch.values():
            sev = a.finding.severity
            assert a.tier_at is not None
            due = policy.next_tier_at(a.tier, a.tier_at, sev)
            if due is not None:
                deadlines.append(due)
            every = policy.renotify_every(sev)
            if every > 0 and a.notified_at is not None:
                deadlines.append(a.notified_at + every)
        return min(deadlines) if deadlines else None
