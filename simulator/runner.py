"""Run a scenario: bind its steps to the configured devices and publish on an MQTT broker.

`stream()` is pure (scenario + devices -> timed Messages), so tests can check a scenario
without a clock; `run()` publishes that stream in real time (divided by `speed`), and
`publish_stream()` publishes any precomputed stream (the walk test's) the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiomqtt

from devices.catalogue import find_model
from devices.registry import Device
from simulator.emulators import Emulator, Message
from simulator.scenarios import Scenario, ScenarioError, Step

logger = logging.getLogger(__name__)

OnEvent = Callable[[float, str], None]


@dataclass(frozen=True, slots=True)
class Timed:
    """A message to publish `t` seconds into the scenario, and what it means."""

    t: float
    message: Message
    note: str | None = None


def emulators(devices: list[Device]) -> dict[str, Emulator]:
    """An emulator per configured device, by device id."""
    out: dict[str, Emulator] = {}
    for d in devices:
        model = find_model(d.model)
        if model is None:
            raise ScenarioError(f"device {d.id}: unknown model {d.model!r}")
        out[d.id] = Emulator(d, model)
    return out


def bind(step: Step, index: int, ems: dict[str, Emulator]) -> Emulator:
    """The device that performs `step`."""
    where = f"steps[{index}] (t={step.at:g}s, {step.kind})"
    if step.device is not None:
        em = ems.get(step.device)
        if em is None:
            raise ScenarioError(f"{where}: no configured device {step.device!r} (devices: "
                                f"{', '.join(ems)})")
        if not em.reports(step.kind):
            raise ScenarioError(f"{where}: device {step.device!r} ({em.model.model}) does not "
                                f"report {step.kind!r}")
        return em
    matches = [em for em in ems.values()
               if em.reports(step.kind) and (step.room is None or em.device.room == step.room)]
    if not matches:
        place = f"in room {step.room!r} " if step.room is not None else ""
        raise ScenarioError(f"{where}: no configured device {place}reports {step.kind!r}; "
                            "add one to the config or name a device")
    # Several candidates (two buttons by the bed): the first in config order, so a
    # scenario runs unchanged on any home that has the right kind of device.
    return matches[0]


def stream(devices: list[Device], scenario: Scenario, start: float) -> list[Timed]:
    """Every message of the scenario with its time offset; `start` is the wall clock at t=0.

    Each device first says hello (online, whole state), as after a gateway or Zigbee
    restart; then the steps follow.
    """
    ems = emulators(devices)
    bound = [(step, bind(step, i, ems)) for i, step in enumerate(scenario.steps)]
    out = [Timed(0.0, m) for em in ems.values() for m in em.hello(start)]
    for step, em in bound:
        messages = em.set(step.kind, step.value, start + step.at)
        note = f"{em.device.id} ({em.device.room or '-'}): {step.kind} = {step.value!r}"
        if step.say:
            note = f"{step.say}  [{note}]"
        out += [Timed(step.at, m, note if j == 0 else None) for j, m in enumerate(messages)]
    return out


def describe(scenario: Scenario) -> str:
    """A few lines saying what the scenario does and what should come of it."""
    lines = [f"scenario {scenario.name}: {scenario.description}",
             f"  {len(scenario.steps)} step(s) over {scenario.duration_s:g} s"]
    for s in scenario.steps:
        target = s.device or (f"room {s.room}" if s.room else "any device")
        lines.append(f"  t={s.at:6.1f}s  {target}: {s.kind} = {s.value!r}"
                     + (f"  — {s.say}" if s.say else ""))
    lines.append(f"  expect: alerts {list(scenario.expect.alerts) or 'none'}, "
                 f"cancelled {list(scenario.expect.cancelled) or 'none'}")
    return "\n".join(lines)


def _client(broker_url: str) -> aiomqtt.Client:
    p = urlsplit(broker_url)
    if p.scheme not in ("mqtt", "mqtts") or not p.hostname:
        raise ScenarioError(f"not an MQTT URL: {broker_url!r} (e.g. mqtt://127.0.0.1:1883)")
    tls = p.scheme == "mqtts"
    return aiomqtt.Client(p.hostname, p.port or (8883 if tls else 1883),
                          username=unquote(p.username) if p.username else None,
                          password=unquote(p.password) if p.password else None,
                          tls_params=aiomqtt.TLSParameters() if tls else None)


async def _publish(client: aiomqtt.Client, timed: list[Timed], *, speed: float,
                   on_event: OnEvent | None, duration_s: float = 0.0) -> None:
    """Publish `timed` (QoS 1) in real time / `speed`, then wait out `duration_s`."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for item in timed:
        delay = t0 + item.t / speed - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        m = item.message
        await client.publish(m.topic, m.payload, qos=1, retain=m.retain)
        if item.note and on_event is not None:
            on_event(item.t, item.note)
    rest = t0 + duration_s / speed - loop.time()
    if rest > 0:
        await asyncio.sleep(rest)


def _check_speed(speed: float) -> None:
    if speed <= 0:
        raise ScenarioError(f"speed must be > 0, got {speed}")


async def publish_stream(timed: list[Timed], broker_url: str, *, speed: float = 1.0,
                         on_event: OnEvent | None = None) -> int:
    """Publish a precomputed stream (QoS 1) in real time / `speed`; returns 0 when done."""
    _check_speed(speed)
    async with _client(broker_url) as client:
        await _publish(client, timed, speed=speed, on_event=on_event)
    return 0


async def run(devices: list[Device], scenario: Scenario, broker_url: str, *,
              speed: float = 1.0, loop_forever: bool = False,
              on_event: OnEvent | None = None) -> int:
    """Publish the scenario (QoS 1) in real time / `speed`; returns 0 when it has run."""
    _check_speed(speed)
    stream(devices, scenario, time.time())  # bind now: a bad scenario fails before connecting
    async with _client(broker_url) as client:
        while True:
            # a fresh stream each round: native payloads carry the wall clock
            await _publish(client, stream(devices, scenario, time.time()), speed=speed,
                           on_event=on_event, duration_s=scenario.duration_s)
            if not loop_forever:
                return 0
