"""Device health beyond silence: a weak radio link, a contact sensor stuck in one state, and
when a trouble is over.

These are technical findings (severity 4): the home is still covered, but a technician should
look before it is not. They go to the maintenance queue and the daily digest, not the
emergency queue (gateway/runtime.py, alerts/maintenance.py).

- **Weak link**: Zigbee link quality (LQI) below `weak_link_lqi` on `weak_link_readings`
  reports in a row (one bad reading is a person standing in the way). It is over once as many
  readings in a row are `LINK_HYSTERESIS` above the limit.
- **Stuck contact**: a door/window contact open for longer than `stuck_open_s` (a door left
  open, or a magnet that fell off), or reporting the same state for longer than
  `stuck_unchanged_s` (a sensor that no longer sees the door move). Zigbee2MQTT repeats the
  whole state with every battery report, so "unchanged" is measured from the last *change*.
- **Trouble over**: `state.cleared` collects (device, event) whose condition has ended —
  link good again, contact moved, tamper closed, device back online, a button that failed
  its self-test pressed — for the gateway to
  close the maintenance item.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from detectors.finding import Finding
from devices.observation import Observation

NAME = "health"
TROUBLE_CODE = 380  # Contact ID 380: sensor trouble
WEAK_LINK = "weak_link"
STUCK_CONTACT = "stuck_contact"
LINK_HYSTERESIS = 10.0


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """Limits for the health rules; 0 switches a rule off."""

    weak_link_lqi: float = 40.0
    weak_link_readings: int = 3
    stuck_open_s: float = 24 * 3600.0
    stuck_unchanged_s: float = 14 * 86400.0


@dataclass(slots=True)
class _Device:
    lqi_run: list[float] = field(default_factory=list)  # the latest readings, newest last
    weak: bool = False
    contact: str | None = None
    contact_since: float | None = None  # when the contact last changed
    stuck: bool = False
    home: str = ""
    room: str | None = None


@dataclass(slots=True)
class HealthState:
    """Per-device link and contact history; troubles that ended since the gateway last looked."""

    devices: dict[str, _Device] = field(default_factory=dict)
    cleared: list[tuple[str, str]] = field(default_factory=list)  # (device, event)


def _finding(obs_home: str, device: str, room: str | None, event: str, at: float,
             evidence: dict[str, object]) -> Finding:
    return Finding(detector=NAME, home=obs_home, code=TROUBLE_CODE, event=event, severity=4,
                   at=at, evidence=evidence, room=room, device=device)


def step(state: HealthState, obs: Observation, now: float, cfg: HealthConfig,
         *, prime: bool = False) -> list[Finding]:
    """Take one Observation; Findings for a link that has just become weak."""
    d = state.devices.setdefault(obs.device, _Device())
    d.home, d.room = obs.home, obs.room
    if obs.kind == "tamper" and obs.value is False:
        state.cleared.append((obs.device, "tamper"))
    elif obs.kind == "availability" and obs.value == "online":
        state.cleared.append((obs.device, "offline"))
    elif obs.kind in ("sos", "cancel") and not prime:  # a button heard from works
        state.cleared.append((obs.device, "self_test_failed"))
    elif obs.kind == "contact":
        if obs.value != d.contact:
            if d.stuck:
                state.cleared.append((obs.device, STUCK_CONTACT))
            d.contact, d.contact_since, d.stuck = str(obs.value), obs.at, False
    elif obs.kind == "link_quality" and cfg.weak_link_lqi > 0 and not prime:
        return _link(state, d, obs, cfg)
    return []


def _link(state: HealthState, d: _Device, obs: Observation, cfg: HealthConfig) -> list[Finding]:
    n = max(cfg.weak_link_readings, 1)
    d.lqi_run = [*d.lqi_run[-(n - 1):], float(obs.value)] if n > 1 else [float(obs.value)]
    if len(d.lqi_run) < n:
        return []
    if not d.weak and all(v < cfg.weak_link_lqi for v in d.lqi_run):
        d.weak = True
        return [_finding(obs.home, obs.device, obs.room, WEAK_LINK, obs.at, {
            "link_quality": list(d.lqi_run), "limit": cfg.weak_link_lqi,
            "advice": "move the device or add a mains-powered Zigbee router nearer to it"})]
    if d.weak and all(v >= cfg.weak_link_lqi + LINK_HYSTERESIS for v in d.lqi_run):
        d.weak = False
        state.cleared.append((obs.device, WEAK_LINK))
    return []


def tick(state: HealthState, now: float, cfg: HealthConfig) -> list[Finding]:
    """Findings for contact sensors that have just been in one state too long."""
    found = []
    for device, d in state.devices.items():
        if d.stuck or d.contact is None or d.contact_since is None:
            continue
        held = now - d.contact_since
        limit = cfg.stuck_open_s if d.contact == "open" else 0.0
        why = "open"
        if not (limit and held > limit):
            limit, why = cfg.stuck_unchanged_s, "unchanged"
            if not (limit and held > limit):
                continue
        d.stuck = True
        found.append(_finding(d.home, device, d.room, STUCK_CONTACT, now, {
            "contact": d.contact, "held_s": round(held), "limit_s": limit, "why": why}))
    return found
