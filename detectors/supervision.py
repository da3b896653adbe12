"""Supervision: a device that has gone silent is offline, so a dead sensor never passes for a
quiet day.

Each catalogue model says how often a healthy device reports (`Model.supervision_s`): its
own heartbeat, or the longest battery-report interval Zigbee2MQTT configures for it. A
device not heard from for `MISSED_REPORTS` of those intervals (plus a grace period for the
radio) is offline: one technical finding (Contact ID 381, loss of supervision, severity 4)
when it goes. When it is heard again, it is back (`state.back` tells the gateway, to log it).
Zigbee2MQTT's own availability flag waits 25 h for battery devices; an Aqara sensor that
reports every 50 minutes is flagged here after two missed reports.

Devices whose model reports only on change (mains-powered radars) have no interval here and
are watched through Zigbee2MQTT's availability instead (detectors/instant.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from detectors.finding import Finding
from devices.observation import Observation

NAME = "supervision"
CODE, SEVERITY, EVENT = 381, 4, "offline"
MISSED_REPORTS = 2
GRACE_S = 300.0


@dataclass(frozen=True, slots=True)
class Expectation:
    """One supervised device: how often it should be heard from."""

    home: str
    device: str
    every_s: float
    room: str | None = None


@dataclass(slots=True)
class SupervisionState:
    """When each device was last heard, and which are offline now."""

    started_at: float | None = None
    last_seen: dict[str, float] = field(default_factory=dict)
    offline: dict[str, float] = field(default_factory=dict)  # device -> since when
    back: list[tuple[str, float]] = field(default_factory=list)  # (device, silent for s)


def step(state: SupervisionState, obs: Observation, now: float) -> list[Finding]:
    """A device was heard from."""
    state.last_seen[obs.device] = now
    since = state.offline.pop(obs.device, None)
    if since is not None:
        state.back.append((obs.device, now - since))
    return []


def tick(state: SupervisionState, now: float,
         expectations: tuple[Expectation, ...]) -> list[Finding]:
    """Findings for devices that have just gone silent."""
    if state.started_at is None:
        state.started_at = now  # nothing is overdue before the gateway has listened
    findings = []
    for exp in expectations:
        if exp.device in state.offline:
            continue
        last = state.last_seen.get(exp.device, state.started_at)
        limit = MISSED_REPORTS * exp.every_s + GRACE_S
        if now - last > limit:
            state.offline[exp.device] = now
            findings.append(Finding(
                detector=NAME, home=exp.home, code=CODE, event=EVENT, severity=SEVERITY,
                at=now, room=exp.room, device=exp.device,
                evidence={"silent_for_s": round(now - last),
                          "expected_every_s": exp.every_s,
                          "never_heard_since_start": exp.device not in state.last_seen}))
    return findings
