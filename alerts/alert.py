"""Alert: a Finding that a person must handle, with every state change timestamped and kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from detectors.finding import Finding


class AlertState(StrEnum):
    """Where an alert is in its life. See ARCHITECTURE.md."""

    PENDING_LOCAL = "pending_local"  # in the resident's cancel window; nothing sent yet
    RAISED = "raised"  # written with its outbox rows; being sent
    DELIVERED = "delivered"  # every hotline target acknowledged receipt
    ACCEPTED = "accepted"  # an operator took charge
    RESOLVED = "resolved"
    CANCELLED = "cancelled"  # the resident cancelled inside the window; recorded, never sent


# Which state may follow which. RAISED may go straight to ACCEPTED: an operator can take
# charge before the last transport has acknowledged.
_NEXT: dict[AlertState, frozenset[AlertState]] = {
    AlertState.PENDING_LOCAL: frozenset({AlertState.RAISED, AlertState.CANCELLED}),
    AlertState.RAISED: frozenset({AlertState.DELIVERED, AlertState.ACCEPTED,
                                  AlertState.RESOLVED}),
    AlertState.DELIVERED: frozenset({AlertState.ACCEPTED, AlertState.RESOLVED}),
    AlertState.ACCEPTED: frozenset({AlertState.RESOLVED}),
    AlertState.RESOLVED: frozenset(),
    AlertState.CANCELLED: frozenset(),
}

OPEN_STATES = frozenset({AlertState.PENDING_LOCAL, AlertState.RAISED, AlertState.DELIVERED,
                         AlertState.ACCEPTED})


# How an operator closes an alert (the hotline's resolution codes).
OUTCOMES = {
    "real_emergency": "真实紧急情况 / real emergency",
    "false_alarm": "误报 / false alarm",
    "test": "测试 / test",
    "no_answer_visit_sent": "无人应答，已派人上门 / no answer, visit sent",
    "resolved_by_phone": "电话确认无事 / resolved by phone",
}


class TransitionError(ValueError):
    """An alert was asked to move to a state that cannot follow its current one."""


@dataclass(slots=True)
class Alert:
    """One alert. `history` is the list of (state, unix time, note) in the order they happened."""

    id: str
    finding: Finding
    state: AlertState
    history: list[tuple[str, float, str]] = field(default_factory=list)
    tier: int = 0  # the highest escalation tier told so far
    repeats: int = 0  # further findings folded into this alert (e.g. repeated SOS presses)
    cancel_deadline: float | None = None
    tier_at: float | None = None  # when that tier was told
    notified_at: float | None = None  # when anyone was last told (raise, escalation, reminder)
    reminders: int = 0
    taken_by: str | None = None  # the operator who accepted it
    outcome: str | None = None  # how it was resolved

    @property
    def raised_at(self) -> float | None:
        """When the alert left the home's cancel window (None while pending or if cancelled)."""
        for state, at, _ in self.history:
            if state == AlertState.RAISED:
                return at
        return None

    @property
    def is_open(self) -> bool:
        """True until the alert is resolved or cancelled."""
        return self.state in OPEN_STATES

    def move(self, state: AlertState, now: float, note: str = "") -> None:
        """Move to `state` at `now`, recording it; raise TransitionError if not allowed."""
        if state not in _NEXT[self.state]:
            raise TransitionError(f"alert {self.id}: {self.state} cannot become {state}")
        self.state = state
        self.history.append((state.value, now, note))

    def to_record(self) -> dict[str, Any]:
        """A plain dict for the store."""
        f = self.finding
        return {
            "id": self.id, "home": f.home, "device": f.device, "room": f.room,
            "detector": f.detector, "code": f.code, "event": f.event, "severity": f.severity,
            "occurred_at": f.at, "test": f.test, "resident": f.resident,
            "evidence": f.evidence, "state": self.state.value, "history": self.history,
            "tier": self.tier, "repeats": self.repeats, "cancel_deadline": self.cancel_deadline,
            "tier_at": self.tier_at, "notified_at": self.notified_at,
            "reminders": self.reminders, "taken_by": self.taken_by, "outcome": self.outcome,
        }

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Alert:
        """Rebuild an alert from `to_record()` output."""
        f = Finding(detector=r["detector"], home=r["home"], code=r["code"], event=r["event"],
                    severity=r["severity"], at=r["occurred_at"], evidence=r["evidence"],
                    room=r["room"], device=r["device"], resident=r["resident"],
                    test=bool(r["test"]))
        return cls(id=r["id"], finding=f, state=AlertState(r["state"]),
                   history=[tuple(h) for h in r["history"]], tier=r["tier"],
                   repeats=r["repeats"], cancel_deadline=r["cancel_deadline"],
                   tier_at=r.get("tier_at"), notified_at=r.get("notified_at"),
                   reminders=r.get("reminders") or 0, taken_by=r.get("taken_by"),
                   outcome=r.get("outcome"))
