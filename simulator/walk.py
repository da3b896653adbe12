"""The technician's walk test, simulated: every configured device is triggered once.

Pure (devices + start -> timed Messages), like `runner.stream()`: each device says hello,
then in turn does what a technician's action makes it report (devices/walktest.py ACTIONS),
and a moment later returns to rest. Publish the result with `runner.publish_stream()`.
"""

from __future__ import annotations

from typing import Any

from devices.catalogue import Model
from devices.registry import Device
from devices.walktest import ACTIONS, TRIGGERS
from simulator.emulators import Emulator
from simulator.runner import Timed
from simulator.scenarios import ScenarioError

# The value a triggered kind returns to when the technician moves on: the door closes, the
# PIR and the radar clear, the test button is let go, the probe dries. Kinds missing here
# happen rather than hold (a press, a check-in, an intercom call) and need no reset.
REST: dict[str, Any] = {
    "contact": "closed", "motion": False, "presence": False, "smoke": False, "test": False,
    "gas": False, "water_leak": False, "in_bed": False, "vibration": False,
}


def action_for(em: Emulator) -> tuple[str, str, str, Any] | None:
    """What the technician does to this device: (wording zh, wording en, kind, value).

    The first ACTIONS candidate the device reports, over its classes in order; None when
    it reports none of them.
    """
    for cls in em.model.classes:
        for kind, value in ACTIONS.get(cls, ()):
            if em.reports(kind):
                zh, en, _ = TRIGGERS[cls]
                return zh, en, kind, value
    return None


def walk_test(devices: list[tuple[Device, Model]], start: float,
              gap_s: float = 2.0) -> list[Timed]:
    """Every message of a walk test with its time offset; `start` is the wall clock at t=0.

    All devices say hello at t=0; device n (from 0) is triggered at (n + 1) * `gap_s` and
    returns to rest half a gap later. ScenarioError names a device that cannot be triggered.
    """
    if gap_s <= 0:
        raise ScenarioError(f"gap_s must be > 0, got {gap_s}")
    ems = [Emulator(device, model) for device, model in devices]
    # Check every device before anything is made: a home that cannot be walk-tested fails
    # before a single message is published.
    actions = []
    for em in ems:
        action = action_for(em)
        if action is None:
            tried = dict.fromkeys(k for c in em.model.classes for k, _ in ACTIONS.get(c, ()))
            raise ScenarioError(
                f"device {em.device.id} (model {em.model.model}): nothing a technician can "
                f"trigger: it reports none of {', '.join(tried) or 'the walk-test kinds'} "
                f"(classes: {', '.join(em.model.classes) or 'none'})")
        actions.append(action)
    out = [Timed(0.0, m) for em in ems for m in em.hello(start)]
    for n, (em, (zh, en, kind, value)) in enumerate(zip(ems, actions, strict=True)):
        at = (n + 1) * gap_s
        where = f"{em.device.id} ({em.device.room or '-'})"
        note = f"{where}: {zh} {en}  [{kind} = {value!r}]"
        out += [Timed(at, m, note if j == 0 else None)
                for j, m in enumerate(em.set(kind, value, start + at))]
        if kind in REST:
            back = at + gap_s / 2
            note = f"{where}: back to rest  [{kind} = {REST[kind]!r}]"
            out += [Timed(back, m, note if j == 0 else None)
                    for j, m in enumerate(em.set(kind, REST[kind], start + back))]
    return out
